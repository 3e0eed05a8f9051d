"""Request values for ``POST /v1/billing_portal/sessions`` (API version 2026-10-28.endive).

Each value is a frozen attrs class with a dumb ``__init__``: construction never
fails, and :func:`lattice_stripe.core.guard.guard` checks every rule before a
request is built. Named constructors read like the intent::

    SessionCreateParams(
        customer="cus_abc123",
        return_url="https://example.com/account",
        flow_data=FlowData.subscription_cancel(
            "sub_1", retention=Retention.coupon_offer("SAVE25")
        ),
    )

``flow_data`` is one of six variants, one per flow type, each carrying exactly
the fields its flow takes; the encoder writes Stripe's ``flow_data[type]`` and
sub-hash from the variant.
"""

from typing import ClassVar, Literal, get_args

import attrs

from lattice_stripe.core.shape import list_to_tuple

__all__ = [
    "AFTER_COMPLETION_TYPES",
    "FLOW_TYPES",
    "LOCALES",
    "AfterCompletion",
    "AfterCompletionType",
    "AfterExpiration",
    "CustomerUpdateFlow",
    "FlowData",
    "FlowType",
    "Locale",
    "PaymentMethodUpdateFlow",
    "Retention",
    "SessionCreateParams",
    "SubscriptionCancelFlow",
    "SubscriptionPauseFlow",
    "SubscriptionUpdateConfirmFlow",
    "SubscriptionUpdateFlow",
    "UpdateConfirmDiscount",
    "UpdateConfirmItem",
]

FlowType = Literal[
    "payment_method_update",
    "subscription_cancel",
    "subscription_update",
    "subscription_update_confirm",
    "subscription_pause",
    "customer_update",
]
FLOW_TYPES: tuple[str, ...] = get_args(FlowType)

AfterCompletionType = Literal["hosted_confirmation", "portal_homepage", "redirect"]
AFTER_COMPLETION_TYPES: tuple[str, ...] = get_args(AfterCompletionType)

Locale = Literal[
    "auto", "bg", "cs", "da", "de", "el", "en", "en-AU", "en-CA", "en-GB", "en-IE", "en-IN",
    "en-NZ", "en-SG", "es", "es-419", "et", "fi", "fil", "fr", "fr-CA", "hr", "hu", "id", "it",
    "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl", "pl", "pt", "pt-BR", "ro", "ru", "sk", "sl",
    "sv", "th", "tr", "vi", "zh", "zh-HK", "zh-TW",
]  # fmt: skip
LOCALES: frozenset[str] = frozenset(get_args(Locale))


def _expand(value: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    result: tuple[str, ...] = list_to_tuple(value)
    return result


@attrs.frozen(kw_only=True)
class AfterCompletion:
    """What the portal does once the flow is done.

    ``custom_message`` goes with ``hosted_confirmation``; ``return_url`` with
    ``redirect`` (where it is required).
    """

    type: AfterCompletionType
    custom_message: str | None = None
    return_url: str | None = None

    @classmethod
    def portal_homepage(cls) -> "AfterCompletion":
        """Send the customer to the portal homepage after the flow."""
        return cls(type="portal_homepage")

    @classmethod
    def hosted_confirmation(cls, custom_message: str | None = None) -> "AfterCompletion":
        """Show Stripe's confirmation page, optionally with your message (500 chars max)."""
        return cls(type="hosted_confirmation", custom_message=custom_message)

    @classmethod
    def redirect(cls, return_url: str) -> "AfterCompletion":
        """Redirect the customer to ``return_url`` (absolute https) after the flow."""
        return cls(type="redirect", return_url=return_url)


@attrs.frozen(kw_only=True)
class Retention:
    """A retention offer shown before a cancellation: a coupon (Stripe's ``coupon_offer``)."""

    coupon: str
    type: Literal["coupon_offer"] = "coupon_offer"

    @classmethod
    def coupon_offer(cls, coupon: str) -> "Retention":
        """Offer the coupon ``coupon`` to a customer about to cancel."""
        return cls(coupon=coupon)


@attrs.frozen(kw_only=True)
class UpdateConfirmItem:
    """One subscription item to change: its ``si_`` ID, and the new price and/or quantity."""

    id: str
    price: str | None = None
    quantity: int | None = None


@attrs.frozen(kw_only=True)
class UpdateConfirmDiscount:
    """A discount to apply with a confirmed update: a coupon or a promotion code."""

    coupon: str | None = None
    promotion_code: str | None = None


def _items(
    value: list[UpdateConfirmItem] | tuple[UpdateConfirmItem, ...],
) -> tuple[UpdateConfirmItem, ...]:
    result: tuple[UpdateConfirmItem, ...] = list_to_tuple(value)
    return result


def _discounts(
    value: list[UpdateConfirmDiscount] | tuple[UpdateConfirmDiscount, ...] | None,
) -> tuple[UpdateConfirmDiscount, ...] | None:
    result: tuple[UpdateConfirmDiscount, ...] | None = list_to_tuple(value)
    return result


@attrs.frozen(kw_only=True)
class FlowData:
    """A deep link into one portal flow. Build one with the named constructors.

    The variant class decides ``flow_data[type]``; ``after_completion`` is shared.
    """

    type: ClassVar[FlowType]
    after_completion: AfterCompletion | None = None

    @staticmethod
    def payment_method_update(
        *, after_completion: AfterCompletion | None = None
    ) -> "PaymentMethodUpdateFlow":
        """Open the page that adds or replaces the default payment method."""
        return PaymentMethodUpdateFlow(after_completion=after_completion)

    @staticmethod
    def subscription_cancel(
        subscription: str,
        *,
        retention: Retention | None = None,
        after_completion: AfterCompletion | None = None,
    ) -> "SubscriptionCancelFlow":
        """Open the cancellation of ``subscription``, optionally with a retention offer."""
        return SubscriptionCancelFlow(
            subscription=subscription, retention=retention, after_completion=after_completion
        )

    @staticmethod
    def subscription_update(
        subscription: str, *, after_completion: AfterCompletion | None = None
    ) -> "SubscriptionUpdateFlow":
        """Open the plan and quantity change screen of ``subscription``."""
        return SubscriptionUpdateFlow(subscription=subscription, after_completion=after_completion)

    @staticmethod
    def subscription_update_confirm(
        subscription: str,
        items: "tuple[UpdateConfirmItem, ...] | list[UpdateConfirmItem]",
        *,
        discounts: "tuple[UpdateConfirmDiscount, ...] | list[UpdateConfirmDiscount] | None" = None,
        after_completion: AfterCompletion | None = None,
    ) -> "SubscriptionUpdateConfirmFlow":
        """Ask the customer to confirm a prepared change of ``items`` on ``subscription``."""
        return SubscriptionUpdateConfirmFlow(
            subscription=subscription,
            items=items,
            discounts=discounts,
            after_completion=after_completion,
        )

    @staticmethod
    def subscription_pause(
        subscription: str, *, after_completion: AfterCompletion | None = None
    ) -> "SubscriptionPauseFlow":
        """Open the pause screen of ``subscription``."""
        return SubscriptionPauseFlow(subscription=subscription, after_completion=after_completion)

    @staticmethod
    def customer_update(*, after_completion: AfterCompletion | None = None) -> "CustomerUpdateFlow":
        """Open the customer details (name, email, address, tax IDs) form."""
        return CustomerUpdateFlow(after_completion=after_completion)


@attrs.frozen(kw_only=True)
class PaymentMethodUpdateFlow(FlowData):
    """``flow_data[type]=payment_method_update``: no sub-hash."""

    type: ClassVar[FlowType] = "payment_method_update"


@attrs.frozen(kw_only=True)
class SubscriptionCancelFlow(FlowData):
    """``flow_data[type]=subscription_cancel`` with ``subscription`` and an optional retention."""

    type: ClassVar[FlowType] = "subscription_cancel"
    subscription: str
    retention: Retention | None = None


@attrs.frozen(kw_only=True)
class SubscriptionUpdateFlow(FlowData):
    """``flow_data[type]=subscription_update`` with ``subscription``."""

    type: ClassVar[FlowType] = "subscription_update"
    subscription: str


@attrs.frozen(kw_only=True)
class SubscriptionUpdateConfirmFlow(FlowData):
    """``flow_data[type]=subscription_update_confirm``: ``subscription`` and non-empty ``items``."""

    type: ClassVar[FlowType] = "subscription_update_confirm"
    subscription: str
    items: tuple[UpdateConfirmItem, ...] = attrs.field(converter=_items)
    discounts: tuple[UpdateConfirmDiscount, ...] | None = attrs.field(
        default=None, converter=_discounts
    )


@attrs.frozen(kw_only=True)
class SubscriptionPauseFlow(FlowData):
    """``flow_data[type]=subscription_pause`` with ``subscription``."""

    type: ClassVar[FlowType] = "subscription_pause"
    subscription: str


@attrs.frozen(kw_only=True)
class CustomerUpdateFlow(FlowData):
    """``flow_data[type]=customer_update``: no sub-hash."""

    type: ClassVar[FlowType] = "customer_update"


@attrs.frozen(kw_only=True)
class AfterExpiration:
    """What happens once the session URL expires: offer the customer a login link.

    ``expires_at`` (Unix seconds) bounds how long that login link works.
    """

    type: Literal["customer_login"] = "customer_login"
    expires_at: int | None = None

    @classmethod
    def customer_login(cls, expires_at: int | None = None) -> "AfterExpiration":
        """After expiry, let the customer log in again until ``expires_at``."""
        return cls(expires_at=expires_at)


@attrs.frozen(kw_only=True)
class SessionCreateParams:
    """Every parameter of ``POST /v1/billing_portal/sessions``.

    Exactly one of ``customer`` (a ``cus_`` ID) and ``customer_account`` (an
    ``acct_`` ID) is required; everything else is optional.
    """

    customer: str | None = None
    customer_account: str | None = None
    return_url: str | None = None
    configuration: str | None = None
    locale: Locale | None = None
    on_behalf_of: str | None = None
    flow_data: FlowData | None = None
    after_expiration: AfterExpiration | None = None
    expand: tuple[str, ...] = attrs.field(default=(), converter=_expand)
