"""Response values: the portal ``Session``, the portal ``Configuration``, a list ``Page``.

Values are frozen and tolerant: fields Stripe adds later land in ``extra``
(a read-only mapping) instead of failing the decode, and enum-like fields are
plain strings so a new flow type or locale never breaks a running app.

``Session.url`` is a single-use bearer credential, so ``repr(session)`` and
``str(session)`` leave ``url`` and ``flow`` out entirely, and a session refuses
to be pickled (caches and task queues pickle; the URL must not be stored).
Read ``session.url`` directly to redirect; ``session.to_dict()`` gives every
field, URL included, when you really need it.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import attrs

from lattice_stripe.core.redaction import Unpicklable

__all__ = [
    "Configuration",
    "ConfigurationAdjustableQuantity",
    "ConfigurationBusinessProfile",
    "ConfigurationCancellationReason",
    "ConfigurationCustomerUpdate",
    "ConfigurationFeatures",
    "ConfigurationInvoiceHistory",
    "ConfigurationLoginPage",
    "ConfigurationPauseDuration",
    "ConfigurationPauseIntervalOption",
    "ConfigurationPaymentMethodUpdate",
    "ConfigurationProduct",
    "ConfigurationScheduleAtPeriodEnd",
    "ConfigurationScheduleCondition",
    "ConfigurationSubscriptionCancel",
    "ConfigurationSubscriptionPause",
    "ConfigurationSubscriptionUpdate",
    "Flow",
    "FlowAfterCompletion",
    "FlowCouponOffer",
    "FlowCustomerUpdate",
    "FlowHostedConfirmation",
    "FlowRedirect",
    "FlowRetention",
    "FlowSubscriptionCancel",
    "FlowSubscriptionPause",
    "FlowSubscriptionUpdate",
    "FlowSubscriptionUpdateConfirm",
    "FlowUpdateConfirmDiscount",
    "FlowUpdateConfirmItem",
    "Page",
    "Session",
    "SessionAfterExpiration",
    "to_dict",
]

NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
T = TypeVar("T")


def extra_field() -> Any:
    """The ``extra`` field of a response value: the unknown keys Stripe sent, kept, not shown."""
    return attrs.field(default=NO_EXTRA, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class FlowHostedConfirmation:
    """``flow.after_completion.hosted_confirmation``."""

    custom_message: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class FlowRedirect:
    """``flow.after_completion.redirect``."""

    return_url: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class FlowAfterCompletion:
    """``flow.after_completion``: ``type`` and the matching detail."""

    type: str
    hosted_confirmation: FlowHostedConfirmation | None = None
    redirect: FlowRedirect | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class FlowCouponOffer:
    """``flow.subscription_cancel.retention.coupon_offer``."""

    coupon: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class FlowRetention:
    """``flow.subscription_cancel.retention``."""

    type: str
    coupon_offer: FlowCouponOffer | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class FlowSubscriptionCancel:
    """``flow.subscription_cancel``."""

    subscription: str
    retention: FlowRetention | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class FlowSubscriptionUpdate:
    """``flow.subscription_update``."""

    subscription: str
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class FlowUpdateConfirmItem:
    """One item of ``flow.subscription_update_confirm.items``."""

    id: str | None = None
    price: str | None = None
    quantity: int | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class FlowUpdateConfirmDiscount:
    """One entry of ``flow.subscription_update_confirm.discounts``."""

    coupon: str | None = None
    promotion_code: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class FlowSubscriptionUpdateConfirm:
    """``flow.subscription_update_confirm``."""

    subscription: str
    items: tuple[FlowUpdateConfirmItem, ...] = ()
    discounts: tuple[FlowUpdateConfirmDiscount, ...] | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class FlowSubscriptionPause:
    """``flow.subscription_pause``."""

    subscription: str
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class FlowCustomerUpdate:
    """``flow.customer_update`` (no fields yet)."""

    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class Flow:
    """The deep-link flow a session was created with."""

    type: str
    after_completion: FlowAfterCompletion
    subscription_cancel: FlowSubscriptionCancel | None = None
    subscription_update: FlowSubscriptionUpdate | None = None
    subscription_update_confirm: FlowSubscriptionUpdateConfirm | None = None
    subscription_pause: FlowSubscriptionPause | None = None
    customer_update: FlowCustomerUpdate | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationBusinessProfile:
    """``business_profile``: the headline and policy links the portal shows."""

    headline: str | None = None
    privacy_policy_url: str | None = None
    terms_of_service_url: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationCustomerUpdate:
    """``features.customer_update``: which customer details the customer may change."""

    enabled: bool
    allowed_updates: tuple[str, ...] = ()
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationInvoiceHistory:
    """``features.invoice_history``."""

    enabled: bool
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationPaymentMethodUpdate:
    """``features.payment_method_update``."""

    enabled: bool
    payment_method_configuration: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationCancellationReason:
    """``features.subscription_cancel.cancellation_reason``: the reasons a customer picks from."""

    enabled: bool
    options: tuple[str, ...] = ()
    feedback_options: tuple[str, ...] | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationSubscriptionCancel:
    """``features.subscription_cancel``: whether, when and with what prorations customers cancel."""

    enabled: bool
    mode: str | None = None
    proration_behavior: str | None = None
    cancellation_reason: ConfigurationCancellationReason | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationAdjustableQuantity:
    """``...products[].adjustable_quantity``."""

    enabled: bool
    minimum: int | None = None
    maximum: int | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationProduct:
    """One of ``features.subscription_update.products``: a product and the prices offered."""

    product: str
    prices: tuple[str, ...] = ()
    adjustable_quantity: ConfigurationAdjustableQuantity | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationScheduleCondition:
    """One of ``schedule_at_period_end.conditions``."""

    type: str
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationScheduleAtPeriodEnd:
    """``features.subscription_update.schedule_at_period_end``."""

    conditions: tuple[ConfigurationScheduleCondition, ...] = ()
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationSubscriptionUpdate:
    """``features.subscription_update``: which plan changes customers may make."""

    enabled: bool
    default_allowed_updates: tuple[str, ...] = ()
    products: tuple[ConfigurationProduct, ...] | None = None
    proration_behavior: str | None = None
    billing_cycle_anchor: str | None = None
    schedule_at_period_end: ConfigurationScheduleAtPeriodEnd | None = None
    trial_update_behavior: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationPauseIntervalOption:
    """One of ``features.subscription_pause.duration.interval_options``."""

    interval: str
    interval_count: int | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationPauseDuration:
    """``features.subscription_pause.duration``."""

    type: str
    interval_options: tuple[ConfigurationPauseIntervalOption, ...] = ()
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationSubscriptionPause:
    """``features.subscription_pause`` (API 2026-10-28.endive)."""

    enabled: bool | None = None
    duration: ConfigurationPauseDuration | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationFeatures:
    """``features``: every portal feature and its settings."""

    customer_update: ConfigurationCustomerUpdate | None = None
    invoice_history: ConfigurationInvoiceHistory | None = None
    payment_method_update: ConfigurationPaymentMethodUpdate | None = None
    subscription_cancel: ConfigurationSubscriptionCancel | None = None
    subscription_update: ConfigurationSubscriptionUpdate | None = None
    subscription_pause: ConfigurationSubscriptionPause | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class ConfigurationLoginPage:
    """``login_page``: the hosted login page and its URL, when enabled."""

    enabled: bool
    url: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class Configuration:
    """A ``billing_portal.configuration``: what a portal session shows and allows.

    Returned by ``client.billing_portal.configurations`` and, expanded
    (``expand=["configuration"]``), in :attr:`Session.configuration`.
    """

    id: str
    object: str
    active: bool
    is_default: bool
    livemode: bool
    created: int
    updated: int
    business_profile: ConfigurationBusinessProfile
    features: ConfigurationFeatures
    login_page: ConfigurationLoginPage
    name: str | None = None
    default_return_url: str | None = None
    metadata: dict[str, Any] | None = None
    application: str | dict[str, Any] | None = None
    extra: Mapping[str, Any] = extra_field()

    def to_dict(self) -> dict[str, Any]:
        """Every field as Stripe's JSON shape, unknown fields included."""
        result: dict[str, Any] = to_dict(self)
        return result


@attrs.frozen(kw_only=True)
class SessionAfterExpiration:
    """``after_expiration``: what the customer can do once the URL has expired."""

    type: str
    customer_login: dict[str, Any] | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True, getstate_setstate=False)
class Session(Unpicklable):
    """A ``billing_portal.session``. Redirect the customer to ``url`` at once.

    ``url`` and ``flow`` never appear in ``repr``/``str``; the session cannot be
    pickled. Create a fresh session for every redirect: the URL is single-use
    and expires after about five minutes.
    """

    id: str
    object: str
    url: str = attrs.field(repr=False)
    created: int
    livemode: bool
    configuration: str | Configuration
    customer: str | None = None
    customer_account: str | None = None
    return_url: str | None = None
    locale: str | None = None
    on_behalf_of: str | None = None
    flow: Flow | None = attrs.field(default=None, repr=False)
    after_expiration: SessionAfterExpiration | None = None
    extra: Mapping[str, Any] = extra_field()

    def to_dict(self) -> dict[str, Any]:
        """Every field as Stripe's JSON shape, ``url`` and unknown fields included."""
        result: dict[str, Any] = to_dict(self)
        return result

    _refusal = (
        "its url is a single-use credential that must not be cached or queued; "
        "store session.id, or create a new session"
    )


@attrs.frozen(kw_only=True, getstate_setstate=False)
class Page(Generic[T]):
    """One page of a Stripe list: ``data`` in Stripe's order, ``has_more``, the list's ``url``."""

    data: tuple[T, ...]
    has_more: bool
    url: str
    object: str = "list"
    extra: Mapping[str, Any] = extra_field()


def to_dict(value: Any) -> Any:
    """Turn a response value (or a tuple of them) back into Stripe's JSON shape."""
    if attrs.has(type(value)):
        result: dict[str, Any] = {}
        for field in attrs.fields(type(value)):
            if field.name != "extra":
                result[field.name] = to_dict(getattr(value, field.name))
        result.update(getattr(value, "extra", NO_EXTRA))
        return result
    if isinstance(value, tuple):
        return [to_dict(item) for item in value]
    return value
