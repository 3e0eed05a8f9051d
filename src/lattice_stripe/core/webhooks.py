"""Webhook signatures and events, pure: HMAC over the raw body bytes, then typed values.

Stripe signs each delivery with ``Stripe-Signature: t=<unix time>,v1=<hex>[,v1=...]``,
where each ``v1`` is HMAC-SHA256 of ``"{t}.{raw body}"`` under an endpoint's
``whsec_`` secret. :func:`verify_signature` checks it in constant time against
one or several secrets (rotation) within a tolerance on the injected clock;
:func:`construct_event` verifies and parses into an :class:`Event`.
Verify the raw bytes as received: a body re-encoded by a framework no longer
matches, and is rejected.

The portal's events read as typed values: ``event.subscription``
(``customer.subscription.updated``, ``.deleted``, ``.paused``, ...),
``event.payment_method`` (``payment_method.attached``) and ``event.customer``
(``customer.updated``); ``event.typed_object`` is whichever applies, or
``None`` for any other object, which stays available, untouched, as
``event.data_object``. Unknown event types and unknown fields are never errors.

:class:`WebhookReceiver` is an endpoint's whole decision, without I/O: verify,
skip events already handled (an :class:`EventStore`), pick the handler for the
event type, and say what to answer. The framework integrations only read the
body, run the handler and write the reply.
"""

import hashlib
import hmac
import inspect
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar, cast

import attrs

from lattice_stripe.core.billing import (
    CancellationDetails,
    Card,
    Customer,
    PauseCollection,
    PaymentMethod,
    Subscription,
    SubscriptionItem,
)
from lattice_stripe.core.codec import read_object
from lattice_stripe.core.errors import SignatureVerificationError, ValidationError
from lattice_stripe.core.ports import Clock

_logger = logging.getLogger("lattice_stripe.webhooks")

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PRUNE_BATCH",
    "DEFAULT_RETENTION_SECONDS",
    "DEFAULT_TOLERANCE",
    "MAX_HEADER_LENGTH",
    "CancellationDetails",
    "Card",
    "Customer",
    "Delivery",
    "AsyncEventStore",
    "Event",
    "EventStore",
    "InMemoryEventStore",
    "PauseCollection",
    "PaymentMethod",
    "Subscription",
    "SubscriptionItem",
    "WebhookHandler",
    "WebhookReceiver",
    "WebhookReply",
    "compute_signature",
    "construct_event",
    "check_prune_batch",
    "check_seconds",
    "generate_signature_header",
    "is_async_store",
    "verify_signature",
]

DEFAULT_TOLERANCE = 300
MAX_HEADER_LENGTH = 8192
DEFAULT_MAX_BODY_BYTES = 1 << 20
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
# Ten digits last until the year 2286; a longer ``t`` is an attack on int().
_MAX_TIMESTAMP_DIGITS = 12

T = TypeVar("T")


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The hex ``v1`` signature of ``payload`` at ``timestamp`` under ``secret``."""
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def generate_signature_header(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value for ``payload``, as Stripe would send it (for tests)."""
    at = int(time.time()) if timestamp is None else timestamp
    return f"t={at},v1={compute_signature(payload, secret, at)}"


def _malformed(detail: str) -> SignatureVerificationError:
    return SignatureVerificationError("malformed_header", f"Stripe-Signature header {detail}")


def _parse_header(header: str) -> tuple[int, list[str]]:
    if len(header) > MAX_HEADER_LENGTH:
        raise _malformed(f"is longer than {MAX_HEADER_LENGTH} characters")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise _malformed("has a part without '='")
        if key == "t":
            if (
                timestamp is not None
                or not value.isascii()
                or not value.isdigit()
                or len(value) > _MAX_TIMESTAMP_DIGITS
            ):
                raise _malformed("has a bad or repeated timestamp")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None:
        raise _malformed("has no timestamp (t=...)")
    if not signatures:
        raise _malformed("has no v1 signature")
    return timestamp, signatures


def _secret_list(secrets: str | Iterable[str]) -> list[str]:
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys:
        raise ValueError("at least one webhook signing secret (whsec_...) is needed")
    if any(not isinstance(key, str) or not key.strip() for key in keys):
        # An empty key is a key anyone can sign with.
        raise ValueError("a webhook signing secret is empty; expected whsec_...")
    return keys


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: str | Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock = time.time,
) -> int:
    """Check ``header`` against ``payload`` for any of ``secrets``; return the signed timestamp.

    ``payload`` must be the body bytes exactly as received. Several secrets are
    tried at once, so a secret can be rolled without dropping deliveries.
    Raises :class:`SignatureVerificationError` with ``reason`` ``missing_header``,
    ``malformed_header``, ``no_matching_signature``, or, for an authentic
    delivery signed more than ``tolerance`` seconds before (a replay) or after
    (clock skew) now, ``timestamp_out_of_tolerance``. A bad ``secrets`` value
    (none, or an empty one) is a configuration error: ``ValueError``.
    """
    if not isinstance(payload, bytes):
        raise TypeError("verify the raw request body bytes, not a decoded or re-encoded body")
    keys = _secret_list(secrets)
    if not header:
        raise SignatureVerificationError("missing_header", "no Stripe-Signature header")
    timestamp, signatures = _parse_header(header)
    expected = [compute_signature(payload, key, timestamp).encode() for key in keys]
    matched = False
    for candidate in signatures:
        presented = candidate.encode("ascii", "replace")
        for signature in expected:
            # Compare every pair: the time taken does not depend on which one matches.
            matched |= hmac.compare_digest(presented, signature)
    if not matched:
        raise SignatureVerificationError(
            "no_matching_signature",
            "no Stripe-Signature v1 signature matches the payload for the configured secret(s)",
        )
    if abs(clock() - timestamp) > tolerance:
        raise SignatureVerificationError(
            "timestamp_out_of_tolerance",
            f"Stripe-Signature timestamp is more than {tolerance}s from now (replay or clock skew)",
        )
    return timestamp


# -- typed objects ---------------------------------------------------------------

TypedObject = Subscription | PaymentMethod | Customer


def _raw() -> Any:
    return attrs.field(repr=False, eq=False)


_TYPED_OBJECTS: Mapping[str, type[TypedObject]] = {
    "subscription": Subscription,
    "payment_method": PaymentMethod,
    "customer": Customer,
}


@attrs.frozen(kw_only=True)
class Event:
    """A Stripe event: ``type`` names what happened, ``data_object`` is the object as it is now.

    ``previous_attributes`` holds the changed fields' old values (updates only);
    ``account`` is the connected account for Connect events; ``raw`` is the
    whole event JSON. The typed views (``subscription``, ``payment_method``,
    ``customer``, ``typed_object``) are read from ``data_object`` on each
    access: keep the result rather than asking twice. A typed view of an object
    whose known fields have the wrong type raises ``ValueError`` naming the field.
    """

    id: str
    type: str
    created: int
    livemode: bool
    api_version: str | None
    account: str | None = None
    data_object: Mapping[str, Any] = attrs.field(repr=False)
    previous_attributes: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, payload: bytes) -> "Event":
        """Parse an event body; a malformed one raises SignatureVerificationError."""
        try:
            document = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise SignatureVerificationError("malformed_event", "event body is not JSON") from None
        if not isinstance(document, dict) or document.get("object") != "event":
            raise SignatureVerificationError("malformed_event", "body is not a Stripe event object")
        data = document.get("data")
        fields = (document.get("id"), document.get("type"), document.get("created"))
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("object"), dict)
            or not isinstance(fields[0], str)
            or not isinstance(fields[1], str)
            or isinstance(fields[2], bool)
            or not isinstance(fields[2], int)
        ):
            raise SignatureVerificationError(
                "malformed_event", "event is missing id, type, created or data.object"
            )
        previous = data.get("previous_attributes")
        version = document.get("api_version")
        account = document.get("account")
        return cls(
            id=fields[0],
            type=fields[1],
            created=fields[2],
            livemode=document.get("livemode") is True,
            api_version=version if isinstance(version, str) else None,
            account=account if isinstance(account, str) else None,
            data_object=data["object"],
            previous_attributes=previous if isinstance(previous, dict) else None,
            raw=document,
        )

    @property
    def object_type(self) -> str | None:
        """The kind of ``data_object`` (``"subscription"``, ``"invoice"``, ...)."""
        kind = self.data_object.get("object")
        return kind if isinstance(kind, str) else None

    @property
    def typed_object(self) -> TypedObject | None:
        """``data_object`` as a :class:`Subscription`, :class:`PaymentMethod` or
        :class:`Customer`; ``None`` for any other kind of object."""
        name = self.object_type or ""
        kind = _TYPED_OBJECTS.get(name)
        return None if kind is None else read_object(kind, self.data_object, name)

    @property
    def subscription(self) -> Subscription:
        """The :class:`Subscription` of a ``customer.subscription.*`` event (else TypeError)."""
        return _expect(self, Subscription)

    @property
    def payment_method(self) -> PaymentMethod:
        """The :class:`PaymentMethod` of a ``payment_method.*`` event (else TypeError)."""
        return _expect(self, PaymentMethod)

    @property
    def customer(self) -> Customer:
        """The :class:`Customer` of a ``customer.*`` event such as ``customer.updated``
        (else TypeError)."""
        return _expect(self, Customer)


def _expect(event: Event, kind: type[T]) -> T:
    value = event.typed_object
    if not isinstance(value, kind):
        raise TypeError(
            f"event {event.id} ({event.type}) carries a {event.object_type!r} object, "
            f"not a {kind.__name__}"
        )
    return value


def construct_event(
    payload: bytes,
    header: str | None,
    secrets: str | Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock = time.time,
) -> Event:
    """Verify the signature of ``payload`` and parse it into an :class:`Event`.

    An authentic body that is not a Stripe event raises
    :class:`SignatureVerificationError` with reason ``malformed_event``.
    """
    verify_signature(payload, header, secrets, tolerance=tolerance, clock=clock)
    return Event.from_json(payload)


# -- receiving -------------------------------------------------------------------

WebhookHandler = Callable[[Event], object]
"""Handles one event. The Starlette integration also awaits coroutine functions."""


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
    are timed on ``clock`` (``time.monotonic`` unless given); completed IDs
    older than ``retention_seconds`` are forgotten, at most ``prune_batch``
    per :meth:`complete`.
    """

    def __init__(
        self,
        max_size: int = 10_000,
        *,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        prune_batch: int = DEFAULT_PRUNE_BATCH,
        clock: Clock = time.monotonic,
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


@attrs.frozen(kw_only=True)
class WebhookReply:
    """What a webhook endpoint answers: ``status`` and a one-word ``outcome``.

    Stripe retries anything but 2xx. Outcomes: ``processed``, ``duplicate``
    and ``ignored`` (no handler) answer 200; a signature problem answers 400
    with its reason; ``in_progress`` (a redelivery while the first is still
    being handled) 409; ``body_too_large`` 413; ``handler_failed`` 500, with
    no detail of the failure; ``store_failed`` 500 when the handler ran but
    the event store could not record it.
    """

    status: int
    outcome: str

    @property
    def body(self) -> bytes:
        """The JSON body: ``{"outcome": "..."}``."""
        return json.dumps({"outcome": self.outcome}).encode()


@attrs.frozen(kw_only=True)
class Delivery:
    """A verified, first-seen event and the handler to run for it."""

    event: Event
    handler: WebhookHandler


class WebhookReceiver:
    """One webhook endpoint's logic, for any framework.

    ``handlers`` maps event types (``"customer.subscription.updated"``) to
    handlers; other types are acknowledged and ignored. Use::

        outcome = receiver.receive(body, request.headers.get("Stripe-Signature"))
        if isinstance(outcome, WebhookReply):
            return outcome                      # rejected, duplicate or ignored
        try:
            outcome.handler(outcome.event)
        except Exception:
            return receiver.failed(outcome)     # 500: Stripe will retry
        return receiver.succeeded(outcome)

    With an :class:`AsyncEventStore`, await :meth:`areceive`,
    :meth:`asucceeded` and :meth:`afailed` instead.

    ``secrets`` (several while rolling a secret), ``tolerance`` and ``clock``
    are those of :func:`verify_signature`; ``store`` defaults to an
    :class:`InMemoryEventStore`; each event is claimed for ``lease_seconds``
    (a crashed worker's event is handled again once that has passed); bodies
    over ``max_body_bytes`` are refused.
    """

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
        self._secrets = tuple(_secret_list(secrets))
        if any(secret != secret.strip() for secret in self._secrets):
            # Read from a file or an environment variable with its newline, such
            # a secret matches no signature: every delivery would fail.
            raise ValueError(
                "a webhook signing secret has leading or trailing whitespace; strip it"
            )
        self._handlers = dict(handlers)
        self.store: EventStore | AsyncEventStore = InMemoryEventStore() if store is None else store
        self.is_async = is_async_store(self.store)
        self._tolerance = tolerance
        self._clock = clock
        self.max_body_bytes = max_body_bytes
        self.lease_seconds = check_seconds("lease_seconds", lease_seconds)

    def _sync_store(self) -> EventStore:
        if self.is_async:
            raise TypeError(
                "this receiver's event store is asynchronous: await areceive, asucceeded "
                "and afailed instead"
            )
        return cast(EventStore, self.store)

    def _async_store(self) -> AsyncEventStore:
        if not self.is_async:
            raise TypeError("this receiver's event store is synchronous: call receive instead")
        return cast(AsyncEventStore, self.store)

    def _verify(self, payload: bytes, header: str | None) -> Delivery | WebhookReply:
        if len(payload) > self.max_body_bytes:
            return WebhookReply(status=413, outcome="body_too_large")
        try:
            event = construct_event(
                payload, header, self._secrets, tolerance=self._tolerance, clock=self._clock
            )
        except SignatureVerificationError as error:
            return WebhookReply(status=400, outcome=error.reason)
        handler = self._handlers.get(event.type)
        if handler is None:
            return WebhookReply(status=200, outcome="ignored")
        return Delivery(event=event, handler=handler)

    def receive(self, payload: bytes, header: str | None) -> Delivery | WebhookReply:
        """Verify ``payload``; return the :class:`Delivery` to run, or the reply to send now."""
        outcome = self._verify(payload, header)
        if isinstance(outcome, WebhookReply):
            return outcome
        store = self._sync_store()
        event_id = outcome.event.id
        if store.claim(event_id, self.lease_seconds):
            return outcome
        return _not_claimed(store.is_complete(event_id))

    async def areceive(self, payload: bytes, header: str | None) -> Delivery | WebhookReply:
        """:meth:`receive` for an :class:`AsyncEventStore`."""
        outcome = self._verify(payload, header)
        if isinstance(outcome, WebhookReply):
            return outcome
        store = self._async_store()
        event_id = outcome.event.id
        if await store.claim(event_id, self.lease_seconds):
            return outcome
        return _not_claimed(await store.is_complete(event_id))

    def succeeded(self, delivery: Delivery) -> WebhookReply:
        """Mark ``delivery`` handled; the reply once its handler has returned.

        If the store cannot record it, the event is released and answered 500
        ``store_failed`` (logged with the store's exception): Stripe's retry
        runs the handler again, as Stripe's at-least-once delivery may anyway.
        Left claimed, every redelivery would be answered 409 until its lease ran out.
        """
        store = self._sync_store()
        event = delivery.event
        try:
            store.complete(event.id)
        except Exception:
            _log_store_failure(event)
            try:
                store.release(event.id)
            except Exception:
                _logger.exception("releasing webhook event %s failed too", event.id)
            return _STORE_FAILED
        return _PROCESSED

    async def asucceeded(self, delivery: Delivery) -> WebhookReply:
        """:meth:`succeeded` for an :class:`AsyncEventStore`."""
        store = self._async_store()
        event = delivery.event
        try:
            await store.complete(event.id)
        except Exception:
            _log_store_failure(event)
            try:
                await store.release(event.id)
            except Exception:
                _logger.exception("releasing webhook event %s failed too", event.id)
            return _STORE_FAILED
        return _PROCESSED

    def failed(self, delivery: Delivery) -> WebhookReply:
        """Forget ``delivery`` (so Stripe's retry is handled) and reply 500."""
        self._sync_store().release(delivery.event.id)
        return _HANDLER_FAILED

    async def afailed(self, delivery: Delivery) -> WebhookReply:
        """:meth:`failed` for an :class:`AsyncEventStore`."""
        await self._async_store().release(delivery.event.id)
        return _HANDLER_FAILED

    def __repr__(self) -> str:
        return f"WebhookReceiver(event_types={sorted(self._handlers)!r}, store={self.store!r})"


_PROCESSED = WebhookReply(status=200, outcome="processed")
_STORE_FAILED = WebhookReply(status=500, outcome="store_failed")
_HANDLER_FAILED = WebhookReply(status=500, outcome="handler_failed")


def _not_claimed(complete: bool) -> WebhookReply:
    if complete:
        return WebhookReply(status=200, outcome="duplicate")
    # Still being handled elsewhere: a non-2xx makes Stripe deliver it again
    # later, so nothing is lost if that handler fails (or its worker dies:
    # the lease then runs out and a later delivery is handled).
    return WebhookReply(status=409, outcome="in_progress")


def _log_store_failure(event: Event) -> None:
    _logger.exception(
        "recording webhook event %s (%s) as handled failed; "
        "released and answered 500 so that Stripe retries",
        event.type,
        event.id,
    )
