"""Where a webhook endpoint remembers the events it handled: the store protocols and a memory store.

An event is claimed for a lease before its handler runs, completed after, and
released if the handler fails, so that a redelivery while it runs is refused
and one after a crash is handled again.
"""

import inspect
import math
import threading
from collections import OrderedDict
from typing import Protocol

import attrs

from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.ports import Clock

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_PRUNE_BATCH",
    "DEFAULT_RETENTION_SECONDS",
    "AsyncEventStore",
    "EventStore",
    "InMemoryEventStore",
    "check_prune_batch",
    "check_seconds",
    "is_async_store",
]

DEFAULT_LEASE_SECONDS = 300.0
"""How long a claim holds an event against redeliveries: five minutes.

Longer than a handler should ever run (Stripe itself gives up on an endpoint
after about 10 s and retries later), short enough that an event whose worker
crashed mid-handler is handled again on one of Stripe's next retries, which
come minutes to hours apart.
"""
DEFAULT_RETENTION_SECONDS = 30 * 24 * 3600.0
"""How long a completed event ID is remembered: 30 days, ten times Stripe's 3-day retry window."""
DEFAULT_PRUNE_BATCH = 100
"""The most expired IDs a store forgets in one call, so that no call is ever slow."""


class EventStore(Protocol):
    """Remembers which events were handled, so a redelivery is not handled twice.

    ``claim`` takes an event for ``lease_seconds`` and says whether it got it,
    in one atomic step: ``True`` for an event never seen, one released, or one
    whose earlier claim's lease ran out (its worker crashed or hung);
    ``False`` while it is completed or claimed under a live lease.
    ``complete`` marks it handled, durably; ``release`` frees a claim after
    its handler failed, so that Stripe's retry is handled; ``is_complete``
    tells a finished event from one whose handler is still running (a
    concurrent redelivery of that one must not be acknowledged, or it would be
    lost if the running handler then fails).

    The shipped stores also forget completed IDs after a retention period
    (:data:`DEFAULT_RETENTION_SECONDS`), a bounded number per call, so that
    no clean-up job is needed.
    """

    def claim(self, event_id: str, lease_seconds: float) -> bool: ...

    def complete(self, event_id: str) -> None: ...

    def is_complete(self, event_id: str) -> bool: ...

    def release(self, event_id: str) -> None: ...


class AsyncEventStore(Protocol):
    """:class:`EventStore` with coroutine methods, for an asyncio database driver.

    The Starlette endpoint awaits such a store on the event loop instead of
    calling it in the thread pool.
    """

    async def claim(self, event_id: str, lease_seconds: float) -> bool: ...

    async def complete(self, event_id: str) -> None: ...

    async def is_complete(self, event_id: str) -> bool: ...

    async def release(self, event_id: str) -> None: ...


def is_async_store(store: object) -> bool:
    """Whether ``store``'s methods are coroutine functions (an :class:`AsyncEventStore`)."""
    return inspect.iscoroutinefunction(getattr(store, "claim", None))


def check_seconds(field: str, seconds: float) -> float:
    """``seconds`` if a positive, finite number (a lease, a retention); else ValidationError."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 < seconds < math.inf
    ):
        raise ValidationError(field, "expected a positive, finite number of seconds")
    return float(seconds)


def check_prune_batch(prune_batch: int) -> int:
    """``prune_batch`` if it is a whole number of at least 1; else ValidationError."""
    if isinstance(prune_batch, bool) or not isinstance(prune_batch, int) or prune_batch < 1:
        raise ValidationError("prune_batch", "expected a whole number of at least 1")
    return prune_batch


@attrs.define
class _Entry:
    """An event's state in memory: claimed until ``deadline``, or completed at ``completed_at``."""

    deadline: float
    completed_at: float | None = None


class InMemoryEventStore:
    """An :class:`EventStore` in this process's memory, holding the newest ``max_size`` IDs.

    Good for one process. Stripe retries for up to three days; an app with
    several processes, or that restarts, needs a shared store
    (:mod:`lattice_stripe.adapters.stores`). Thread-safe. Leases and retention
    are timed on ``clock`` (a monotonic one: :class:`lattice_stripe.InMemoryEventStore`
    passes ``time.monotonic``); completed IDs
    older than ``retention_seconds`` are forgotten, at most ``prune_batch``
    per :meth:`complete`.
    """

    def __init__(
        self,
        max_size: int = 10_000,
        *,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        prune_batch: int = DEFAULT_PRUNE_BATCH,
        clock: Clock,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._max_size = max_size
        self._retention = check_seconds("retention_seconds", retention_seconds)
        self._prune_batch = check_prune_batch(prune_batch)
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # Completed IDs in the order they completed: the oldest are pruned first.
        self._completed: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, event_id: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Take ``event_id`` for ``lease_seconds``; ``False`` if completed or claimed and live."""
        with self._lock:
            now = self._clock()
            entry = self._entries.get(event_id)
            if entry is not None and (entry.completed_at is not None or entry.deadline > now):
                return False
            self._entries[event_id] = _Entry(deadline=now + lease_seconds)
            self._entries.move_to_end(event_id)
            if len(self._entries) > self._max_size:
                oldest, _ = self._entries.popitem(last=False)
                self._completed.pop(oldest, None)
            return True

    def complete(self, event_id: str) -> None:
        """Mark ``event_id`` handled; forget up to ``prune_batch`` expired ones."""
        with self._lock:
            now = self._clock()
            entry = self._entries.get(event_id)
            if entry is not None:
                entry.completed_at = now
                self._completed[event_id] = now
                self._completed.move_to_end(event_id)
            self._prune(now, self._prune_batch)

    def is_complete(self, event_id: str) -> bool:
        """``True`` once ``event_id``'s handler has succeeded (and until it is pruned)."""
        with self._lock:
            entry = self._entries.get(event_id)
            return entry is not None and entry.completed_at is not None

    def release(self, event_id: str) -> None:
        """Forget a claim on ``event_id`` that was not completed."""
        with self._lock:
            entry = self._entries.get(event_id)
            if entry is not None and entry.completed_at is None:
                del self._entries[event_id]

    def prune(self, limit: int = DEFAULT_PRUNE_BATCH) -> int:
        """Forget up to ``limit`` IDs completed more than ``retention_seconds`` ago; how many."""
        with self._lock:
            return self._prune(self._clock(), limit)

    def _prune(self, now: float, limit: int) -> int:
        removed = 0
        while self._completed and removed < limit:
            event_id, completed_at = next(iter(self._completed.items()))
            if now - completed_at < self._retention:
                break
            del self._completed[event_id]
            self._entries.pop(event_id, None)
            removed += 1
        return removed

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return f"InMemoryEventStore(size={len(self)}, max_size={self._max_size})"
