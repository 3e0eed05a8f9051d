"""``DjangoEventStore``: the webhook event store in your Django database (shipped migration).

Claims are atomic under concurrent deliveries on SQLite and PostgreSQL alike:
a claim is one ``INSERT`` on the event ID (the primary key decides between two
workers), or, for an event whose earlier claim's lease has expired, one
conditional ``UPDATE`` that only one worker's ``WHERE`` can match. Never a read
followed by a write.
"""

import time
from typing import Any

from django.db import IntegrityError, router, transaction
from django.db.models import Q

from lattice_stripe.contrib.django.conf import DEFAULT_LEASE_SECONDS
from lattice_stripe.contrib.django.models import WebhookEvent
from lattice_stripe.core.ports import Clock

__all__ = ["DEFAULT_RETENTION_SECONDS", "PRUNE_BATCH", "DjangoEventStore"]

DEFAULT_RETENTION_SECONDS = 30 * 24 * 3600.0
"""Handled event IDs are kept this long: Stripe retries a delivery for up to three days."""

PRUNE_BATCH = 100
"""At most this many expired rows are deleted per completed event, so no call takes long."""


class DjangoEventStore:
    """An :class:`~lattice_stripe.core.webhooks.EventStore` over the ``WebhookEvent`` model.

    ``using`` is the database alias (the router's choice for writes by default);
    ``clock`` gives Unix seconds. Handled IDs older than ``retention_seconds``
    are pruned as new events complete, at most :data:`PRUNE_BATCH` per call.
    """

    def __init__(
        self,
        *,
        using: str | None = None,
        clock: Clock = time.time,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        self._using = using or router.db_for_write(WebhookEvent)
        self._clock = clock
        self.retention_seconds = retention_seconds

    def _rows(self) -> Any:
        return WebhookEvent.objects.using(self._using)

    def claim(self, event_id: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """``True`` for a new event, a released one, or one whose claim's lease expired."""
        now = self._clock()
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
        """Record ``event_id`` as handled, and prune a batch of expired handled IDs."""
        now = self._clock()
        rows = self._rows()
        if not rows.filter(event_id=event_id).update(completed_at=now, lease_until=None):
            rows.get_or_create(event_id=event_id, defaults={"completed_at": now})
        expired = list(
            rows.filter(completed_at__lt=now - self.retention_seconds).values_list(
                "event_id", flat=True
            )[:PRUNE_BATCH]
        )
        if expired:
            rows.filter(event_id__in=expired).delete()

    def is_complete(self, event_id: str) -> bool:
        """``True`` once ``event_id``'s handler has succeeded."""
        return bool(self._rows().filter(event_id=event_id, completed_at__isnull=False).exists())

    def release(self, event_id: str) -> None:
        """Free a failed claim so that Stripe's retry is handled; a handled event stays."""
        self._rows().filter(event_id=event_id, completed_at__isnull=True).delete()

    def __repr__(self) -> str:
        return f"DjangoEventStore(using={self._using!r})"
