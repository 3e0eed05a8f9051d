"""``DjangoEventStore``: the webhook event store in your Django database (shipped migration).

Claims are atomic under concurrent deliveries on SQLite and PostgreSQL alike:
a claim is one ``INSERT`` on the event ID (the primary key decides between two
workers), or, for an event released or whose earlier claim's lease has
expired, one conditional ``UPDATE`` that only one worker's ``WHERE`` can
match. Never a read followed by a write.
"""

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from django.db import DatabaseError, IntegrityError, router, transaction
from django.db.models import Q, Subquery

from lattice_stripe.contrib.django.models import WebhookEvent
from lattice_stripe.core.errors import EventStoreError
from lattice_stripe.core.ports import Clock
from lattice_stripe.core.webhooks import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_PRUNE_BATCH,
    DEFAULT_RETENTION_SECONDS,
    check_prune_batch,
    check_seconds,
)

__all__ = ["DjangoEventStore"]


class DjangoEventStore:
    """An :class:`~lattice_stripe.core.webhooks.EventStore` over the ``WebhookEvent`` model.

    ``using`` is the database alias (the router's choice for writes by default);
    ``clock`` gives Unix seconds. IDs completed more than ``retention_seconds``
    ago are deleted as new events complete, at most ``prune_batch`` per call.
    A database failure is raised as :class:`~lattice_stripe.EventStoreError`.
    """

    def __init__(
        self,
        *,
        using: str | None = None,
        clock: Clock = time.time,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        prune_batch: int = DEFAULT_PRUNE_BATCH,
    ) -> None:
        self._using = using or router.db_for_write(WebhookEvent)
        self._clock = clock
        self._retention = check_seconds("retention_seconds", retention_seconds)
        self._prune_batch = check_prune_batch(prune_batch)

    def _rows(self) -> Any:
        return WebhookEvent.objects.using(self._using)

    @contextlib.contextmanager
    def _step(self, step: str) -> Iterator[None]:
        try:
            yield
        except DatabaseError as error:
            raise EventStoreError(f"{self!r}: {step} failed ({type(error).__name__})") from error

    def claim(self, event_id: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Take ``event_id`` for ``lease_seconds``: ``False`` if completed or claimed and live."""
        now = self._clock()
        with self._step("claim"):
            try:
                # A savepoint, so that the conflict does not break a surrounding transaction.
                with transaction.atomic(using=self._using):
                    self._rows().create(event_id=event_id, lease_until=now + lease_seconds)
                return True
            except IntegrityError:
                pass
            taken_over = (
                self._rows()
                .filter(event_id=event_id, completed_at__isnull=True)
                .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
                .update(lease_until=now + lease_seconds)
            )
        return bool(taken_over == 1)

    def complete(self, event_id: str) -> None:
        """Record ``event_id`` as handled, durably; delete up to ``prune_batch`` expired rows."""
        now = self._clock()
        with self._step("complete"), transaction.atomic(using=self._using):
            rows = self._rows()
            if not rows.filter(event_id=event_id).update(completed_at=now, lease_until=None):
                rows.get_or_create(event_id=event_id, defaults={"completed_at": now})
            self._prune(now, self._prune_batch)

    def is_complete(self, event_id: str) -> bool:
        """``True`` once ``event_id`` has been completed (until retention forgets it)."""
        with self._step("is_complete"):
            return bool(self._rows().filter(event_id=event_id, completed_at__isnull=False).exists())

    def release(self, event_id: str) -> None:
        """Free a claim on ``event_id`` that was not completed; a completed event stays."""
        with self._step("release"):
            self._rows().filter(event_id=event_id, completed_at__isnull=True).delete()

    def prune(self, limit: int = DEFAULT_PRUNE_BATCH) -> int:
        """Delete up to ``limit`` rows completed more than ``retention_seconds`` ago; how many."""
        with self._step("prune"):
            return self._prune(self._clock(), limit)

    def _prune(self, now: float, limit: int) -> int:
        # One DELETE ... WHERE event_id IN (SELECT ... LIMIT n) statement: the model has no
        # relations or signals, so Django deletes without reading the rows first.
        expired = (
            self._rows()
            .filter(completed_at__lt=now - self._retention)
            .order_by("completed_at")
            .values("event_id")[:limit]
        )
        deleted, _ = self._rows().filter(event_id__in=Subquery(expired)).delete()
        return int(deleted)

    def __repr__(self) -> str:
        return f"DjangoEventStore(using={self._using!r})"
