""":class:`WebhookReceiver`: an endpoint's whole decision, without I/O.

Verify, skip events already handled (an :class:`EventStore`), pick the handler
for the event type, and say what to answer. The framework integrations only
read the body, run the handler and write the reply.
"""

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import cast

import attrs

from lattice_stripe.core.errors import SignatureVerificationError
from lattice_stripe.core.ports import Clock
from lattice_stripe.core.webhooks.events import Event, construct_event
from lattice_stripe.core.webhooks.signatures import DEFAULT_TOLERANCE, secret_list
from lattice_stripe.core.webhooks.store import (
    DEFAULT_LEASE_SECONDS,
    AsyncEventStore,
    EventStore,
    check_seconds,
    is_async_store,
)

_logger = logging.getLogger("lattice_stripe.webhooks")

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "Delivery",
    "WebhookHandler",
    "WebhookReceiver",
    "WebhookReply",
]

DEFAULT_MAX_BODY_BYTES = 1 << 20

WebhookHandler = Callable[[Event], object]
"""Handles one event. The Starlette integration also awaits coroutine functions."""


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
    are those of :func:`verify_signature`; ``store`` remembers handled events
    (:class:`lattice_stripe.WebhookReceiver` gives the system clock and an
    :class:`InMemoryEventStore` unless told otherwise); each event is claimed for ``lease_seconds``
    (a crashed worker's event is handled again once that has passed); bodies
    over ``max_body_bytes`` are refused.
    """

    def __init__(
        self,
        secrets: str | Iterable[str],
        handlers: Mapping[str, WebhookHandler],
        *,
        store: EventStore | AsyncEventStore,
        tolerance: int = DEFAULT_TOLERANCE,
        clock: Clock,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self._secrets = tuple(secret_list(secrets))
        if any(secret != secret.strip() for secret in self._secrets):
            # Read from a file or an environment variable with its newline, such
            # a secret matches no signature: every delivery would fail.
            raise ValueError(
                "a webhook signing secret has leading or trailing whitespace; strip it"
            )
        self._handlers = dict(handlers)
        self.store: EventStore | AsyncEventStore = store
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
