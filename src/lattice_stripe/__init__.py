"""lattice-stripe: open the Stripe Customer Portal from Python, sync or async.

Create a billing portal session for the logged-in customer and redirect to
``session.url``. Input is checked before any network; ``session.url`` and API
keys never appear in a repr, a log record or an error message.
"""

from lattice_stripe.client import AsyncClient, Client
from lattice_stripe.core.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    CardError,
    IdempotencyError,
    InvalidRequestError,
    LatticeStripeError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    SignatureVerificationError,
    StripeError,
    ValidationError,
)
from lattice_stripe.core.flow import API_VERSION
from lattice_stripe.core.guard import guard
from lattice_stripe.core.http import HttpRequest, HttpResponse
from lattice_stripe.core.params import (
    AfterCompletion,
    AfterExpiration,
    CustomerUpdateFlow,
    FlowData,
    PaymentMethodUpdateFlow,
    Retention,
    SessionCreateParams,
    SubscriptionCancelFlow,
    SubscriptionPauseFlow,
    SubscriptionUpdateConfirmFlow,
    SubscriptionUpdateFlow,
    UpdateConfirmDiscount,
    UpdateConfirmItem,
)
from lattice_stripe.core.ports import AsyncTransport, SyncTransport
from lattice_stripe.core.redaction import RedactingFilter
from lattice_stripe.core.session import Configuration, Flow, Session
from lattice_stripe.core.version import VERSION as __version__
from lattice_stripe.core.webhooks import (
    Event,
    InMemoryEventStore,
    WebhookReceiver,
    construct_event,
    verify_signature,
)

__all__ = [
    "API_VERSION",
    "APIConnectionError",
    "APIError",
    "AfterCompletion",
    "AfterExpiration",
    "AsyncClient",
    "AsyncTransport",
    "AuthenticationError",
    "CardError",
    "Client",
    "Configuration",
    "CustomerUpdateFlow",
    "Event",
    "Flow",
    "FlowData",
    "HttpRequest",
    "HttpResponse",
    "IdempotencyError",
    "InMemoryEventStore",
    "InvalidRequestError",
    "LatticeStripeError",
    "PaymentMethodUpdateFlow",
    "PermissionDeniedError",
    "RateLimitError",
    "RedactingFilter",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "Retention",
    "Session",
    "SessionCreateParams",
    "SignatureVerificationError",
    "StripeError",
    "SubscriptionCancelFlow",
    "SubscriptionPauseFlow",
    "SubscriptionUpdateConfirmFlow",
    "SubscriptionUpdateFlow",
    "SyncTransport",
    "UpdateConfirmDiscount",
    "UpdateConfirmItem",
    "ValidationError",
    "WebhookReceiver",
    "__version__",
    "construct_event",
    "guard",
    "verify_signature",
]
