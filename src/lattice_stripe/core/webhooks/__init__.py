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

from lattice_stripe.core.billing import (
    CancellationDetails,
    Card,
    Customer,
    PauseCollection,
    PaymentMethod,
    Subscription,
    SubscriptionItem,
)
from lattice_stripe.core.webhooks.events import Event, TypedObject, construct_event
from lattice_stripe.core.webhooks.receiver import (
    DEFAULT_MAX_BODY_BYTES,
    Delivery,
    WebhookHandler,
    WebhookReceiver,
    WebhookReply,
)
from lattice_stripe.core.webhooks.signatures import (
    DEFAULT_TOLERANCE,
    MAX_HEADER_LENGTH,
    compute_signature,
    generate_signature_header,
    verify_signature,
)
from lattice_stripe.core.webhooks.store import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_PRUNE_BATCH,
    DEFAULT_RETENTION_SECONDS,
    AsyncEventStore,
    EventStore,
    InMemoryEventStore,
    check_prune_batch,
    check_seconds,
    is_async_store,
)

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
    "TypedObject",
]
