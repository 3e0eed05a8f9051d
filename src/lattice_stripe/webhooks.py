"""The webhook API on the system's clocks: what applications use, from ``lattice_stripe``.

The core's webhook code (:mod:`lattice_stripe.core.webhooks`) reads no clock:
every time it needs is injected. These are the same functions and classes with
the clocks an application wants by default: wall-clock time for a signature's
tolerance (``time.time``), a monotonic clock for leases and retention
(``time.monotonic``), and an :class:`InMemoryEventStore` for a receiver given
no store. Pass ``clock=`` to use another (a test's fixed clock).
"""

import time
from collections.abc import Iterable, Mapping

from lattice_stripe.core.ports import Clock
from lattice_stripe.core.webhooks import events as _events
from lattice_stripe.core.webhooks import receiver as _receiver
from lattice_stripe.core.webhooks import signatures as _signatures
from lattice_stripe.core.webhooks import store as _store
from lattice_stripe.core.webhooks.events import Event
from lattice_stripe.core.webhooks.receiver import DEFAULT_MAX_BODY_BYTES, WebhookHandler
from lattice_stripe.core.webhooks.signatures import DEFAULT_TOLERANCE
from lattice_stripe.core.webhooks.store import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_PRUNE_BATCH,
    DEFAULT_RETENTION_SECONDS,
    AsyncEventStore,
    EventStore,
)

__all__ = [
    "InMemoryEventStore",
    "WebhookReceiver",
    "construct_event",
    "generate_signature_header",
    "verify_signature",
]


def generate_signature_header(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value for ``payload``, signed now unless ``timestamp`` is
    given, as Stripe would send it (for tests)."""
    at = int(time.time()) if timestamp is None else timestamp
    return _signatures.generate_signature_header(payload, secret, timestamp=at)


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: str | Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock = time.time,
) -> int:
    """:func:`lattice_stripe.core.webhooks.verify_signature` against the wall clock."""
    return _signatures.verify_signature(payload, header, secrets, tolerance=tolerance, clock=clock)


def construct_event(
    payload: bytes,
    header: str | None,
    secrets: str | Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock = time.time,
) -> Event:
    """:func:`lattice_stripe.core.webhooks.construct_event` against the wall clock."""
    return _events.construct_event(payload, header, secrets, tolerance=tolerance, clock=clock)


class InMemoryEventStore(_store.InMemoryEventStore):
    """:class:`lattice_stripe.core.webhooks.InMemoryEventStore` timed on ``time.monotonic``."""

    def __init__(
        self,
        max_size: int = 10_000,
        *,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        prune_batch: int = DEFAULT_PRUNE_BATCH,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(
            max_size, retention_seconds=retention_seconds, prune_batch=prune_batch, clock=clock
        )


class WebhookReceiver(_receiver.WebhookReceiver):
    """:class:`lattice_stripe.core.webhooks.WebhookReceiver` on the wall clock, remembering
    handled events in an :class:`InMemoryEventStore` unless given a ``store``."""

    def __init__(
        self,
        secrets: str | Iterable[str],
        handlers: Mapping[str, WebhookHandler],
        *,
        store: EventStore | AsyncEventStore | None = None,
        tolerance: int = DEFAULT_TOLERANCE,
        clock: Clock = time.time,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        super().__init__(
            secrets,
            handlers,
            store=InMemoryEventStore() if store is None else store,
            tolerance=tolerance,
            clock=clock,
            max_body_bytes=max_body_bytes,
            lease_seconds=lease_seconds,
        )
