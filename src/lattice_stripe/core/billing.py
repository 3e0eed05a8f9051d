"""Customers and subscriptions as values: the objects, the params of their operations, the state.

One set of response values serves the API reads (``client.customers``,
``client.subscriptions``) and the webhook events (``event.subscription``,
``event.customer``, ``event.payment_method``): :class:`Customer`,
:class:`Subscription`, :class:`SubscriptionItem`, :class:`Price` and
:class:`PaymentMethod`. They are frozen and tolerant, as
:class:`~lattice_stripe.core.session.Configuration` is: fields Stripe adds
later land in ``extra``; personal data (email, name, phone, address,
description, billing details) stays out of ``repr``.

An expandable reference (``subscription.customer``, ``price.product``) reads
as the referenced object's ID whether Stripe sent the ID or, expanded, the
object.

The params classes are read by :mod:`lattice_stripe.core.shape` (key sets,
checks, wire order); the ``guard_*`` functions add what an annotation cannot
say (an email's form, "nothing to update"). :func:`summarize` turns a
customer's subscriptions into the small :class:`BillingState` an app stores.
"""

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, NewType, NoReturn

import attrs

from lattice_stripe.core.codec import object_decoder, page_decoder
from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.operations import Operation, PathParam, encode_query
from lattice_stripe.core.session import Page, extra_field, to_dict
from lattice_stripe.core.shape import encode, list_field, structure

__all__ = [
    "CUSTOMER_CREATE",
    "CUSTOMER_RETRIEVE",
    "CUSTOMER_UPDATE",
    "SUBSCRIPTION_LIST",
    "SUBSCRIPTION_RETRIEVE",
    "Address",
    "AddressParams",
    "BillingState",
    "CancellationDetails",
    "Card",
    "Customer",
    "CustomerCreateParams",
    "CustomerInvoiceSettings",
    "CustomerRetrieveParams",
    "CustomerUpdateParams",
    "ExpandableId",
    "PauseCollection",
    "PaymentMethod",
    "Price",
    "Recurring",
    "Subscription",
    "SubscriptionItem",
    "SubscriptionItems",
    "SubscriptionListParams",
    "SubscriptionListStatus",
    "SubscriptionRetrieveParams",
    "SubscriptionState",
    "SubscriptionStatus",
    "guard_customer_create",
    "guard_customer_retrieve",
    "guard_customer_update",
    "guard_subscription_list",
    "guard_subscription_retrieve",
    "summarize",
]

ExpandableId = NewType("ExpandableId", str)
"""The ID of a referenced object; an expanded object is read as its ``id``."""


class _Value:
    def to_dict(self) -> dict[str, Any]:
        """Every field as Stripe's JSON shape, unknown fields included."""
        result: dict[str, Any] = to_dict(self)
        return result


# -- response values -----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Recurring(_Value):
    """``price.recurring``: how often the price bills."""

    interval: str
    interval_count: int | None = None
    usage_type: str | None = None
    meter: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class Price(_Value):
    """A ``price``, as a subscription item carries it (older API versions send only its ID)."""

    id: str
    object: str = "price"
    active: bool | None = None
    currency: str | None = None
    product: ExpandableId | None = None
    unit_amount: int | None = None
    nickname: str | None = None
    lookup_key: str | None = None
    recurring: Recurring | None = None
    type: str | None = None
    livemode: bool | None = None
    created: int | None = None
    metadata: dict[str, Any] | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class PauseCollection(_Value):
    """``pause_collection``: payment collection is paused (from the portal or the API)."""

    behavior: str
    resumes_at: int | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class CancellationDetails(_Value):
    """Why a subscription was canceled; ``comment`` is the customer's own words (not in repr)."""

    reason: str | None = None
    feedback: str | None = None
    comment: str | None = attrs.field(default=None, repr=False)
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class SubscriptionItem(_Value):
    """One item of a subscription: which price, how many, and its billing period."""

    id: str
    object: str = "subscription_item"
    price: Price | None = None
    quantity: int | None = None
    current_period_start: int | None = None
    current_period_end: int | None = None
    created: int | None = None
    subscription: str | None = None
    metadata: dict[str, Any] | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class SubscriptionItems(_Value):
    """``subscription.items``: a list object; iterate it for the items."""

    data: tuple[SubscriptionItem, ...] = ()
    has_more: bool = False
    total_count: int | None = None
    url: str | None = None
    object: str = "list"
    extra: Mapping[str, Any] = extra_field()

    def __iter__(self) -> Iterator[SubscriptionItem]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


SubscriptionStatus = Literal[
    "active",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
]


@attrs.frozen(kw_only=True)
class Subscription(_Value):
    """A ``subscription``, from ``client.subscriptions`` or a ``customer.subscription.*`` event.

    ``status`` is a plain string (one of :data:`SubscriptionStatus` today), so a
    status Stripe adds later never breaks a running app.
    """

    id: str
    object: str = "subscription"
    status: str
    customer: ExpandableId | None = None
    livemode: bool = False
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None
    created: int | None = None
    start_date: int | None = None
    trial_start: int | None = None
    trial_end: int | None = None
    currency: str | None = None
    collection_method: str | None = None
    default_payment_method: ExpandableId | None = None
    latest_invoice: ExpandableId | None = None
    test_clock: ExpandableId | None = None
    pause_collection: PauseCollection | None = None
    cancellation_details: CancellationDetails | None = None
    items: SubscriptionItems = SubscriptionItems()
    metadata: dict[str, Any] | None = attrs.field(default=None, repr=False)
    extra: Mapping[str, Any] = extra_field()

    @property
    def current_period_end(self) -> int | None:
        """When the current period ends: the earliest item's end (API versions from 2025-03-31
        keep it on each item), else the subscription's own field of older versions."""
        ends = [item.current_period_end for item in self.items if item.current_period_end]
        if ends:
            return min(ends)
        older = self.extra.get("current_period_end")
        return older if isinstance(older, int) and not isinstance(older, bool) else None


@attrs.frozen(kw_only=True)
class Card(_Value):
    """The displayable details of a card: safe to show the customer."""

    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    country: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class PaymentMethod(_Value):
    """A ``payment_method``, as ``payment_method.attached`` carries it.

    ``card`` is set for card payment methods; ``billing_details`` (personal
    data) stays out of ``repr``.
    """

    id: str
    object: str = "payment_method"
    type: str
    customer: ExpandableId | None = None
    livemode: bool = False
    created: int | None = None
    card: Card | None = None
    billing_details: dict[str, Any] | None = attrs.field(default=None, repr=False)
    metadata: dict[str, Any] | None = attrs.field(default=None, repr=False)
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class Address(_Value):
    """A postal address (personal data: never in a customer's ``repr``)."""

    city: str | None = None
    country: str | None = None
    line1: str | None = None
    line2: str | None = None
    postal_code: str | None = None
    state: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class CustomerInvoiceSettings(_Value):
    """``customer.invoice_settings``: the default payment method and invoice options."""

    default_payment_method: ExpandableId | None = None
    footer: str | None = None
    extra: Mapping[str, Any] = extra_field()


@attrs.frozen(kw_only=True)
class Customer(_Value):
    """A ``customer``. ``email``, ``name``, ``phone``, ``address``, ``description``,
    ``shipping`` and ``metadata`` stay out of ``repr``; a deleted customer has ``deleted``."""

    id: str
    object: str = "customer"
    livemode: bool = False
    created: int | None = None
    email: str | None = attrs.field(default=None, repr=False)
    name: str | None = attrs.field(default=None, repr=False)
    phone: str | None = attrs.field(default=None, repr=False)
    address: Address | None = attrs.field(default=None, repr=False)
    description: str | None = attrs.field(default=None, repr=False)
    shipping: dict[str, Any] | None = attrs.field(default=None, repr=False)
    preferred_locales: tuple[str, ...] | None = None
    currency: str | None = None
    balance: int | None = None
    delinquent: bool | None = None
    invoice_settings: CustomerInvoiceSettings | None = None
    test_clock: ExpandableId | None = None
    deleted: bool | None = None
    metadata: dict[str, Any] | None = attrs.field(default=None, repr=False)
    extra: Mapping[str, Any] = extra_field()

    @property
    def default_payment_method(self) -> str | None:
        """``invoice_settings.default_payment_method``: the ID of the card on file, if any."""
        settings = self.invoice_settings
        return None if settings is None else settings.default_payment_method


RESPONSE_TYPES: tuple[type, ...] = (
    Recurring,
    Price,
    PauseCollection,
    CancellationDetails,
    SubscriptionItem,
    SubscriptionItems,
    Subscription,
    Card,
    PaymentMethod,
    Address,
    CustomerInvoiceSettings,
    Customer,
)
"""The classes the codec decodes keeping unknown keys in ``extra``."""


# -- params --------------------------------------------------------------------------


def _text(max_length: int) -> Any:
    return attrs.field(default=None, repr=False, metadata={"max_length": max_length})


@attrs.frozen(kw_only=True)
class AddressParams:
    """A customer's address, every line optional."""

    city: str | None = None
    country: str | None = None
    line1: str | None = None
    line2: str | None = None
    postal_code: str | None = None
    state: str | None = None


@attrs.frozen(kw_only=True)
class CustomerCreateParams:
    """The portal's parameters of ``POST /v1/customers`` (all optional)."""

    email: str | None = _text(512)
    name: str | None = _text(256)
    description: str | None = _text(5000)
    phone: str | None = _text(20)
    address: AddressParams | None = attrs.field(default=None, repr=False)
    metadata: Mapping[str, str] | None = attrs.field(default=None, repr=False)
    preferred_locales: tuple[str, ...] | None = list_field()
    test_clock: str | None = attrs.field(default=None, metadata={"prefix": "clock_"})
    expand: tuple[str, ...] | None = list_field()


@attrs.frozen(kw_only=True)
class CustomerUpdateParams:
    """The portal's parameters of ``POST /v1/customers/{customer}``; only what is given is sent."""

    email: str | None = _text(512)
    name: str | None = _text(256)
    description: str | None = _text(5000)
    phone: str | None = _text(20)
    address: AddressParams | None = attrs.field(default=None, repr=False)
    metadata: Mapping[str, str] | None = attrs.field(default=None, repr=False)
    preferred_locales: tuple[str, ...] | None = list_field()
    expand: tuple[str, ...] | None = list_field()


@attrs.frozen(kw_only=True)
class CustomerRetrieveParams:
    """``GET /v1/customers/{customer}``: only ``expand``."""

    expand: tuple[str, ...] | None = list_field()


@attrs.frozen(kw_only=True)
class SubscriptionRetrieveParams:
    """``GET /v1/subscriptions/{subscription}``: only ``expand``."""

    expand: tuple[str, ...] | None = list_field()


SubscriptionListStatus = Literal[
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
]


@attrs.frozen(kw_only=True)
class SubscriptionListParams:
    """The filters and cursor of ``GET /v1/subscriptions`` (default: all but canceled)."""

    customer: str | None = attrs.field(default=None, metadata={"prefix": "cus_"})
    price: str | None = attrs.field(default=None, metadata={"prefix": "price_"})
    status: SubscriptionListStatus | None = None
    collection_method: Literal["charge_automatically", "send_invoice"] | None = None
    test_clock: str | None = attrs.field(default=None, metadata={"prefix": "clock_"})
    limit: int | None = attrs.field(default=None, metadata={"minimum": 1})
    starting_after: str | None = attrs.field(default=None, metadata={"prefix": "sub_"})
    ending_before: str | None = attrs.field(default=None, metadata={"prefix": "sub_"})
    expand: tuple[str, ...] | None = list_field()


# -- the rules an annotation cannot state --------------------------------------------


def _fail(path: str, reason: str) -> NoReturn:
    raise ValidationError(path, reason)


def _no_urls(value: object, path: str) -> str:  # pragma: no cover - no URL fields here
    _fail(path, "unexpected URL field")


# One "@", no spaces or control characters, a dot in the domain: what Stripe accepts,
# without echoing the address (personal data) in the error.
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f.]+(\.[^@\s\x00-\x1f\x7f.]+)+")
_LOCALE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")


def _check_customer(params: CustomerCreateParams | CustomerUpdateParams) -> None:
    if params.email is not None and _EMAIL.fullmatch(params.email) is None:
        _fail("email", "not an email address: expected name@example.com")
    for index, locale in enumerate(params.preferred_locales or ()):
        if _LOCALE.fullmatch(locale) is None:
            _fail(f"preferred_locales[{index}]", "expected a language tag such as 'en' or 'fr-CA'")


def guard_customer_create(
    params: object, *, allow_http_localhost: bool = False
) -> CustomerCreateParams:
    """Return ``params`` as checked :class:`CustomerCreateParams`, or raise ValidationError."""
    checked = structure(CustomerCreateParams, {} if params is None else params, "", _no_urls)
    _check_customer(checked)
    return checked


def guard_customer_update(
    params: object, *, allow_http_localhost: bool = False
) -> CustomerUpdateParams:
    """Return ``params`` as checked :class:`CustomerUpdateParams`; an empty update is refused."""
    checked = structure(CustomerUpdateParams, params, "", _no_urls)
    names = [field.name for field in attrs.fields(CustomerUpdateParams) if field.name != "expand"]
    if all(getattr(checked, name) is None for name in names):
        _fail("params", "nothing to update: pass at least one of " + ", ".join(names))
    _check_customer(checked)
    return checked


def guard_customer_retrieve(
    params: object, *, allow_http_localhost: bool = False
) -> CustomerRetrieveParams:
    """Return retrieve params as checked :class:`CustomerRetrieveParams`."""
    return structure(CustomerRetrieveParams, {} if params is None else params, "", _no_urls)


def guard_subscription_retrieve(
    params: object, *, allow_http_localhost: bool = False
) -> SubscriptionRetrieveParams:
    """Return retrieve params as checked :class:`SubscriptionRetrieveParams`."""
    return structure(SubscriptionRetrieveParams, {} if params is None else params, "", _no_urls)


def guard_subscription_list(
    params: object, *, allow_http_localhost: bool = False
) -> SubscriptionListParams:
    """Return list filters as checked :class:`SubscriptionListParams` (``limit`` 1 to 100)."""
    checked = structure(SubscriptionListParams, {} if params is None else params, "", _no_urls)
    if checked.limit is not None and checked.limit > 100:
        _fail("limit", "must be 100 or less (Stripe's largest page)")
    if checked.starting_after is not None and checked.ending_before is not None:
        _fail("ending_before", "pass at most one of starting_after and ending_before")
    return checked


# -- the state an app stores ---------------------------------------------------------


@attrs.frozen(kw_only=True)
class SubscriptionState:
    """One subscription as an app needs it: what it is on, and whether and when it ends.

    ``price`` and ``quantity`` are the first item's (the portal changes
    single-item subscriptions); ``pause_collection`` is the pause behaviour
    (``"void"``, ...) or ``None``.
    """

    id: str
    status: str
    price: str | None
    quantity: int | None
    cancel_at_period_end: bool
    cancel_at: int | None
    pause_collection: str | None
    current_period_end: int | None

    @property
    def entitled(self) -> bool:
        """True while the customer should have access: active, trialing or past due."""
        return self.status in ("active", "trialing", "past_due")


@attrs.frozen(kw_only=True)
class BillingState:
    """A customer's subscriptions as Stripe has them now, newest first: store it, compare it."""

    customer: str
    subscriptions: tuple[SubscriptionState, ...]

    @property
    def entitled(self) -> bool:
        """True when any subscription grants access (see :attr:`SubscriptionState.entitled`)."""
        return any(subscription.entitled for subscription in self.subscriptions)

    def to_dict(self) -> dict[str, Any]:
        """The state as plain JSON-ready data (for a session, a cache or a database column)."""
        return {
            "customer": self.customer,
            "subscriptions": [attrs.asdict(state) for state in self.subscriptions],
        }


def summarize(customer: str, subscriptions: Iterable[Subscription]) -> BillingState:
    """The :class:`BillingState` of ``customer`` from its ``subscriptions`` (as listed)."""
    states = []
    for subscription in subscriptions:
        first = next(iter(subscription.items), None)
        pause = subscription.pause_collection
        states.append(
            SubscriptionState(
                id=subscription.id,
                status=subscription.status,
                price=None if first is None or first.price is None else first.price.id,
                quantity=None if first is None else first.quantity,
                cancel_at_period_end=subscription.cancel_at_period_end,
                cancel_at=subscription.cancel_at,
                pause_collection=None if pause is None else pause.behavior,
                current_period_end=subscription.current_period_end,
            )
        )
    return BillingState(customer=customer, subscriptions=tuple(states))


# -- the operations --------------------------------------------------------------
# Defined beside their params, so that importing the core builds no billing value:
# lattice_stripe loads this module on the first customer or subscription call.

_CUSTOMER = PathParam(name="customer", prefix="cus_", what="customer")
_SUBSCRIPTION = PathParam(name="subscription", prefix="sub_", what="subscription")
_decode_customer = object_decoder(Customer, "customer")
_decode_subscription = object_decoder(Subscription, "subscription")

CUSTOMER_CREATE: Operation[CustomerCreateParams, Customer] = Operation(
    name="customers.create",
    method="POST",
    path="/v1/customers",
    guard=guard_customer_create,
    encode=encode,
    decode=_decode_customer,
)
CUSTOMER_UPDATE: Operation[CustomerUpdateParams, Customer] = Operation(
    name="customers.update",
    method="POST",
    path="/v1/customers/{customer}",
    path_params=(_CUSTOMER,),
    guard=guard_customer_update,
    encode=encode,
    decode=_decode_customer,
)
CUSTOMER_RETRIEVE: Operation[CustomerRetrieveParams, Customer] = Operation(
    name="customers.retrieve",
    method="GET",
    path="/v1/customers/{customer}",
    path_params=(_CUSTOMER,),
    guard=guard_customer_retrieve,
    encode=encode_query,
    decode=_decode_customer,
)
SUBSCRIPTION_RETRIEVE: Operation[SubscriptionRetrieveParams, Subscription] = Operation(
    name="subscriptions.retrieve",
    method="GET",
    path="/v1/subscriptions/{subscription}",
    path_params=(_SUBSCRIPTION,),
    guard=guard_subscription_retrieve,
    encode=encode_query,
    decode=_decode_subscription,
)
SUBSCRIPTION_LIST: Operation[SubscriptionListParams, Page[Subscription]] = Operation(
    name="subscriptions.list",
    method="GET",
    path="/v1/subscriptions",
    guard=guard_subscription_list,
    encode=encode_query,
    decode=page_decoder(Subscription, "subscription"),
    lists=True,
)
