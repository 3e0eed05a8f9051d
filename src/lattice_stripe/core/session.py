"""Response values: the portal ``Session`` and everything inside it.

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
from typing import Any, Generic, NoReturn, TypeVar

import attrs

__all__ = [
    "Configuration",
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


def _extra() -> Any:
    return attrs.field(default=NO_EXTRA, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class FlowHostedConfirmation:
    """``flow.after_completion.hosted_confirmation``."""

    custom_message: str | None = None
    extra: Mapping[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FlowRedirect:
    """``flow.after_completion.redirect``."""

    return_url: str | None = None
    extra: Mapping[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FlowAfterCompletion:
    """``flow.after_completion``: ``type`` and the matching detail."""

    type: str
    hosted_confirmation: FlowHostedConfirmation | None = None
    redirect: FlowRedirect | None = None
    extra: Mapping[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FlowCouponOffer:
    """``flow.subscription_cancel.retention.coupon_offer``."""

    coupon: str | None = None
    extra: Mapping[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FlowRetention:
    """``flow.subscription_cancel.retention``."""

    type: str
    coupon_offer: FlowCouponOffer | None = None
    extra: Mapping[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FlowSubscriptionCancel:
    """``flow.subscription_cancel``."""

    subscription: str
    retention: FlowRetention | None = None
    extra: Mapping[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FlowSubscriptionUpdate:
    """``flow.subscription_update``."""

    subscription: str
    extra: Mapping[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FlowUpdateConfirmItem:
    """One item of ``flow.subscription_update_confirm.items``."""

    id: str | None = None
    price: str | None = None
    quantity: int | None = None
    extra: Mapping[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FlowUpdateConfirmDiscount:
    """One entry of ``flow.subscription_update_confirm.discounts``."""

    coupon: str | None = None
    promotion_code: str | None = None
    extra: Mapping[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FlowSubscriptionUpdateConfirm:
    """``flow.subscription_update_confirm``."""

    subscription: str
    items: tuple[FlowUpdateConfirmItem, ...] = ()
    discounts: tuple[FlowUpdateConfirmDiscount, ...] | None = None
    extra: Mapping[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FlowSubscriptionPause:
    """``flow.subscription_pause``."""

    subscription: str
    extra: Mapping[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class FlowCustomerUpdate:
    """``flow.customer_update`` (no fields yet)."""

    extra: Mapping[str, Any] = _extra()


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
    extra: Mapping[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class Configuration:
    """An expanded ``billing_portal.configuration`` (``expand=["configuration"]``).

    Nested feature settings are kept as plain mappings.
    """

    id: str
    object: str = "billing_portal.configuration"
    active: bool | None = None
    is_default: bool | None = None
    livemode: bool | None = None
    created: int | None = None
    updated: int | None = None
    name: str | None = None
    default_return_url: str | None = None
    metadata: dict[str, Any] | None = None
    application: str | dict[str, Any] | None = None
    business_profile: dict[str, Any] | None = None
    features: dict[str, Any] | None = None
    login_page: dict[str, Any] | None = None
    extra: Mapping[str, Any] = _extra()


@attrs.frozen(kw_only=True)
class SessionAfterExpiration:
    """``after_expiration``: what the customer can do once the URL has expired."""

    type: str
    customer_login: dict[str, Any] | None = None
    extra: Mapping[str, Any] = _extra()


@attrs.frozen(kw_only=True, getstate_setstate=False)
class Session:
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
    extra: Mapping[str, Any] = _extra()

    def to_dict(self) -> dict[str, Any]:
        """Every field as Stripe's JSON shape, ``url`` and unknown fields included."""
        result: dict[str, Any] = to_dict(self)
        return result

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "a portal Session cannot be pickled: its url is a single-use credential that "
            "must not be cached or queued; store session.id, or create a new session"
        )


@attrs.frozen(kw_only=True, getstate_setstate=False)
class Page(Generic[T]):
    """One page of a Stripe list: ``data`` in Stripe's order, ``has_more``, the list's ``url``."""

    data: tuple[T, ...]
    has_more: bool
    url: str
    object: str = "list"
    extra: Mapping[str, Any] = _extra()


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
