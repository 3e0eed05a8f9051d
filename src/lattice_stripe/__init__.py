"""lattice-stripe: open the Stripe Customer Portal from Python, sync or async.

Create a billing portal session for the logged-in customer and redirect to
``session.url``. Input is checked before any network; ``session.url`` and API
keys never appear in a repr, a log record or an error message.
"""

import importlib
from typing import TYPE_CHECKING

from lattice_stripe.client import AsyncClient, Client
from lattice_stripe.core.config import API_VERSION
from lattice_stripe.core.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    CardError,
    EventDecodeError,
    IdempotencyError,
    InvalidRequestError,
    LatticeStripeError,
    MissingDependencyError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    SignatureVerificationError,
    StripeError,
    ValidationError,
)
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
from lattice_stripe.core.session import Configuration, Flow, Page, Session
from lattice_stripe.core.version import VERSION as __version__

if TYPE_CHECKING:
    from lattice_stripe.billing import abilling_state, billing_state
    from lattice_stripe.configurations import Ensured
    from lattice_stripe.core.billing import (
        BillingState,
        Customer,
        CustomerCreateParams,
        CustomerUpdateParams,
        PaymentMethod,
        Price,
        Subscription,
        SubscriptionItem,
        SubscriptionListParams,
        SubscriptionState,
    )
    from lattice_stripe.core.configuration import (
        AdjustableQuantity,
        BusinessProfile,
        CancellationReason,
        Change,
        ConfigurationCreateParams,
        ConfigurationListParams,
        ConfigurationRetrieveParams,
        ConfigurationUpdateParams,
        CustomerUpdateFeature,
        Features,
        InvoiceHistoryFeature,
        LoginPage,
        PauseDuration,
        PauseIntervalOption,
        PaymentMethodUpdateFeature,
        ProductOption,
        ScheduleAtPeriodEnd,
        ScheduleCondition,
        SubscriptionCancelFeature,
        SubscriptionPauseFeature,
        SubscriptionUpdateFeature,
    )
    from lattice_stripe.core.webhooks import AsyncEventStore, Event, EventStore, WebhookReply
    from lattice_stripe.webhooks import (
        InMemoryEventStore,
        WebhookReceiver,
        construct_event,
        generate_signature_header,
        verify_signature,
    )

__all__ = [
    "API_VERSION",
    "APIConnectionError",
    "APIError",
    "AdjustableQuantity",
    "AfterCompletion",
    "AfterExpiration",
    "AsyncClient",
    "AsyncEventStore",
    "AsyncTransport",
    "AuthenticationError",
    "BillingState",
    "BusinessProfile",
    "CancellationReason",
    "CardError",
    "Change",
    "Client",
    "Configuration",
    "ConfigurationCreateParams",
    "ConfigurationListParams",
    "ConfigurationRetrieveParams",
    "ConfigurationUpdateParams",
    "Customer",
    "CustomerCreateParams",
    "CustomerUpdateFeature",
    "CustomerUpdateFlow",
    "CustomerUpdateParams",
    "Ensured",
    "Event",
    "EventDecodeError",
    "EventStore",
    "Features",
    "Flow",
    "FlowData",
    "HttpRequest",
    "HttpResponse",
    "IdempotencyError",
    "InMemoryEventStore",
    "InvalidRequestError",
    "InvoiceHistoryFeature",
    "LatticeStripeError",
    "LoginPage",
    "MissingDependencyError",
    "Page",
    "PauseDuration",
    "PauseIntervalOption",
    "PaymentMethod",
    "PaymentMethodUpdateFeature",
    "PaymentMethodUpdateFlow",
    "PermissionDeniedError",
    "Price",
    "ProductOption",
    "RateLimitError",
    "RedactingFilter",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "Retention",
    "ScheduleAtPeriodEnd",
    "ScheduleCondition",
    "Session",
    "SessionCreateParams",
    "SignatureVerificationError",
    "StripeError",
    "Subscription",
    "SubscriptionCancelFeature",
    "SubscriptionCancelFlow",
    "SubscriptionItem",
    "SubscriptionListParams",
    "SubscriptionPauseFeature",
    "SubscriptionPauseFlow",
    "SubscriptionState",
    "SubscriptionUpdateConfirmFlow",
    "SubscriptionUpdateFeature",
    "SubscriptionUpdateFlow",
    "SyncTransport",
    "UpdateConfirmDiscount",
    "UpdateConfirmItem",
    "ValidationError",
    "WebhookReceiver",
    "WebhookReply",
    "__version__",
    "abilling_state",
    "billing_state",
    "construct_event",
    "generate_signature_header",
    "guard",
    "verify_signature",
]

# Webhook verification (and the hashing it imports) loads on first use: a
# process that only opens the portal does not pay for it at start-up. Type
# checkers see the imports above and no __getattr__, so a misspelt name stays
# a type error.
_LAZY = {
    # Customers, subscriptions and portal configurations load on first use: a process that
    # only opens the portal does not build their values at start-up.
    **{name: "lattice_stripe.billing" for name in ("abilling_state", "billing_state")},
    "Ensured": "lattice_stripe.configurations",
    **{
        name: "lattice_stripe.core.billing"
        for name in (
            "BillingState",
            "Customer",
            "CustomerCreateParams",
            "CustomerUpdateParams",
            "PaymentMethod",
            "Price",
            "Subscription",
            "SubscriptionItem",
            "SubscriptionListParams",
            "SubscriptionState",
        )
    },
    **{
        name: "lattice_stripe.core.configuration"
        for name in (
            "AdjustableQuantity",
            "BusinessProfile",
            "CancellationReason",
            "Change",
            "ConfigurationCreateParams",
            "ConfigurationListParams",
            "ConfigurationRetrieveParams",
            "ConfigurationUpdateParams",
            "CustomerUpdateFeature",
            "Features",
            "InvoiceHistoryFeature",
            "LoginPage",
            "PauseDuration",
            "PauseIntervalOption",
            "PaymentMethodUpdateFeature",
            "ProductOption",
            "ScheduleAtPeriodEnd",
            "ScheduleCondition",
            "SubscriptionCancelFeature",
            "SubscriptionPauseFeature",
            "SubscriptionUpdateFeature",
        )
    },
    **{
        name: "lattice_stripe.core.webhooks"
        for name in ("AsyncEventStore", "Event", "EventStore", "WebhookReply")
    },
    # On the system's clocks (the core's own take them injected).
    **{
        name: "lattice_stripe.webhooks"
        for name in (
            "InMemoryEventStore",
            "WebhookReceiver",
            "construct_event",
            "generate_signature_header",
            "verify_signature",
        )
    },
}

if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'lattice_stripe' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
