"""The emulator's memory: Stripe objects, their JSON, and the changes that become events.

A :class:`Store` is built from a seed (``seed.json`` in this package, or your
own file in the same shape) and an injected clock. Objects are plain mutable
records; ``*_json`` renders them in Stripe's shape for the API version the
emulator speaks. Every mutation returns the :class:`Change` values that the
webhook dispatcher turns into events, with ``previous_attributes`` computed
by diffing the JSON before and after, as Stripe reports them.
"""

import json
import secrets
import string
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import cattrs

__all__ = [
    "Change",
    "Customer",
    "PaymentMethod",
    "PortalSession",
    "PortalVisit",
    "Seed",
    "SeedError",
    "Store",
    "Subscription",
    "SubscriptionItem",
    "load_seed",
    "new_id",
]

Clock = Callable[[], float]
JSON = dict[str, Any]

_ALPHANUMERIC = string.ascii_letters + string.digits
_DAY = 86_400
_PERIOD_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


def new_id(prefix: str) -> str:
    """A fresh Stripe-style ID: ``prefix_`` and 24 random letters and digits."""
    return prefix + "_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(24))


# -- the seed ------------------------------------------------------------------------


class SeedError(ValueError):
    """A seed file that is not valid JSON, not the seed's shape, or refers to missing IDs."""


@attrs.frozen(kw_only=True)
class SeedProduct:
    id: str
    name: str


@attrs.frozen(kw_only=True)
class SeedPrice:
    id: str
    product: str
    unit_amount: int
    currency: str
    interval: str
    interval_count: int = 1
    nickname: str | None = None
    lookup_key: str | None = None
    active: bool = True


@attrs.frozen(kw_only=True)
class SeedCoupon:
    id: str
    name: str | None = None
    percent_off: float | None = None
    amount_off: int | None = None
    currency: str | None = None
    duration: str = "once"
    duration_in_months: int | None = None


@attrs.frozen(kw_only=True)
class SeedPromotionCode:
    id: str
    code: str
    coupon: str


@attrs.frozen(kw_only=True)
class SeedCard:
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@attrs.frozen(kw_only=True)
class SeedItem:
    id: str
    price: str
    quantity: int = 1


@attrs.frozen(kw_only=True)
class SeedSubscription:
    id: str
    items: tuple[SeedItem, ...]
    status: str = "active"


@attrs.frozen(kw_only=True)
class SeedCustomer:
    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: dict[str, str] | None = None
    account: str | None = None
    payment_methods: tuple[SeedCard, ...] = ()
    subscriptions: tuple[SeedSubscription, ...] = ()


@attrs.frozen(kw_only=True)
class Seed:
    """The starting state: a portal configuration (Stripe's JSON), a catalogue, customers."""

    configuration: dict[str, Any]
    products: tuple[SeedProduct, ...]
    prices: tuple[SeedPrice, ...]
    customers: tuple[SeedCustomer, ...]
    coupons: tuple[SeedCoupon, ...] = ()
    promotion_codes: tuple[SeedPromotionCode, ...] = ()


_seed_converter = cattrs.Converter(forbid_extra_keys=True)


def load_seed(path: str | Path | None = None) -> Seed:
    """Read a seed file (the packaged ``seed.json`` when ``path`` is None)."""
    if path is None:
        text = resources.files(__package__).joinpath("seed.json").read_text("utf-8")
        where = "the packaged seed.json"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as error:
            raise SeedError(f"cannot read the seed file {path}: {error.strerror}") from None
        where = str(path)
    try:
        document = json.loads(text)
    except ValueError as error:
        raise SeedError(f"{where} is not valid JSON: {error}") from None
    try:
        return _seed_converter.structure(document, Seed)
    except Exception as error:
        details = (
            "; ".join(cattrs.transform_error(error, path="seed"))
            if isinstance(error, cattrs.BaseValidationError)
            else str(error)
        )
        raise SeedError(f"{where} does not have the seed's shape: {details}") from None


# -- records -------------------------------------------------------------------------


@attrs.define(kw_only=True)
class PaymentMethod:
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    created: int
    customer: str | None = None


@attrs.define(kw_only=True)
class SubscriptionItem:
    id: str
    price: str
    quantity: int
    created: int


@attrs.define(kw_only=True)
class Subscription:
    id: str
    customer: str
    items: list[SubscriptionItem]
    status: str
    created: int
    current_period_start: int
    current_period_end: int
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None
    cancellation_details: JSON = attrs.Factory(
        lambda: {"comment": None, "feedback": None, "reason": None}
    )
    pause_collection: JSON | None = None
    discounts: list[str] = attrs.Factory(list)
    trial_end: int | None = None

    @property
    def is_live(self) -> bool:
        """Not canceled: the portal may still change it."""
        return self.status not in ("canceled", "incomplete_expired")


@attrs.define(kw_only=True)
class Customer:
    id: str
    created: int
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: JSON | None = None
    account: str | None = None
    default_payment_method: str | None = None
    metadata: dict[str, str] = attrs.Factory(dict)
    description: str | None = None


@attrs.define(kw_only=True)
class PortalSession:
    """A ``billing_portal.session``; ``token`` is the secret in its URL."""

    id: str
    token: str = attrs.field(repr=False)
    url: str = attrs.field(repr=False)
    customer: str
    customer_account: str | None
    created: int
    expires_at: float
    return_url: str | None
    locale: str | None
    on_behalf_of: str | None
    flow: JSON | None
    after_expiration: JSON | None
    opened: bool = False
    configuration: str | None = None  # None: the default configuration


@attrs.define(kw_only=True)
class PortalVisit:
    """A browser inside the portal, after opening a session URL (held in a cookie)."""

    id: str = attrs.field(repr=False)
    csrf_token: str = attrs.field(repr=False)
    session: PortalSession
    expires_at: float
    flow: JSON | None
    finished: bool = False
    notice: str | None = None
    confirmation: str | None = None


@attrs.frozen(kw_only=True)
class Change:
    """One state change, in event terms: ``type``, the object now, and what it was."""

    type: str
    object: JSON
    previous_attributes: JSON | None = None


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> JSON:
    """Stripe's ``previous_attributes``: the old values of what changed, hashes recursed."""
    changed: JSON = {}
    for key, old in before.items():
        new = after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changed[key] = diff(old, new)
        else:
            changed[key] = old
    return changed


class Store:
    """Every object the emulator knows, by ID, plus portal sessions and visits."""

    def __init__(self, seed: Seed, *, clock: Clock) -> None:
        self.clock = clock
        now = int(clock())
        self.configuration: JSON = {
            "created": now - 90 * _DAY,
            "updated": now - 90 * _DAY,
            **seed.configuration,
        }
        # Every configuration by ID (the seed's is the default one, also ``self.configuration``),
        # and the order they were made in, for lists of configurations made in one second.
        self.configurations: dict[str, JSON] = {self.configuration["id"]: self.configuration}
        self.configuration_order: dict[str, int] = {self.configuration["id"]: 0}
        self.products = {product.id: product for product in seed.products}
        self.prices = {price.id: price for price in seed.prices}
        self.coupons = {coupon.id: coupon for coupon in seed.coupons}
        self.promotion_codes = {code.id: code for code in seed.promotion_codes}
        self.customers: dict[str, Customer] = {}
        self.payment_methods: dict[str, PaymentMethod] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.sessions: dict[str, PortalSession] = {}
        self.visits: dict[str, PortalVisit] = {}
        self._check_catalogue()
        for customer in seed.customers:
            self._add_seed_customer(customer, now)

    def _check_catalogue(self) -> None:
        for price in self.prices.values():
            if price.product not in self.products:
                raise SeedError(f"price {price.id} refers to an unknown product {price.product}")
            if price.interval not in _PERIOD_DAYS:
                raise SeedError(f"price {price.id} has an unknown interval {price.interval}")
        for code in self.promotion_codes.values():
            if code.coupon not in self.coupons:
                raise SeedError(f"promotion code {code.id} refers to an unknown coupon")
        for product in self.configuration["features"]["subscription_update"]["products"] or []:
            for price_id in product["prices"]:
                if price_id not in self.prices:
                    raise SeedError(f"the configuration offers an unknown price {price_id}")

    def _add_seed_customer(self, seed: SeedCustomer, now: int) -> None:
        customer = Customer(
            id=seed.id,
            created=now - 120 * _DAY,
            name=seed.name,
            email=seed.email,
            phone=seed.phone,
            address=None if seed.address is None else _address(seed.address),
            account=seed.account,
        )
        self.customers[seed.id] = customer
        for card in seed.payment_methods:
            self.payment_methods[card.id] = PaymentMethod(
                id=card.id,
                brand=card.brand,
                last4=card.last4,
                exp_month=card.exp_month,
                exp_year=card.exp_year,
                created=now - 100 * _DAY,
                customer=seed.id,
            )
        if seed.payment_methods:
            customer.default_payment_method = seed.payment_methods[0].id
        for sub in seed.subscriptions:
            for item in sub.items:
                if item.price not in self.prices:
                    raise SeedError(f"subscription {sub.id} refers to an unknown price")
            period = _PERIOD_DAYS[self.prices[sub.items[0].price].interval] * _DAY
            start = now - 10 * _DAY
            subscription = Subscription(
                id=sub.id,
                customer=seed.id,
                items=[
                    SubscriptionItem(
                        id=item.id, price=item.price, quantity=item.quantity, created=start
                    )
                    for item in sub.items
                ],
                status=sub.status,
                created=now - 60 * _DAY,
                current_period_start=start,
                current_period_end=start + period,
            )
            if sub.status == "trialing":
                subscription.trial_end = start + period
            if sub.status == "canceled":
                subscription.canceled_at = subscription.ended_at = start
                subscription.cancellation_details["reason"] = "cancellation_requested"
            self.subscriptions[sub.id] = subscription

    # -- lookups -------------------------------------------------------------------

    def customer_by_account(self, account: str) -> Customer | None:
        """The customer linked to an Accounts v2 ``acct_`` ID, if any."""
        return next((c for c in self.customers.values() if c.account == account), None)

    def subscriptions_of(self, customer_id: str) -> list[Subscription]:
        """The customer's subscriptions, oldest first."""
        found = [sub for sub in self.subscriptions.values() if sub.customer == customer_id]
        return sorted(found, key=lambda sub: sub.created)

    def offered_prices(self) -> list[str]:
        """The price IDs the portal configuration lets a customer switch to."""
        products = self.configuration["features"]["subscription_update"]["products"] or []
        return [price for product in products for price in product["prices"]]

    def quantity_limits(self, price_id: str) -> tuple[int, int | None] | None:
        """(minimum, maximum) quantity for ``price_id``, or None if it is not adjustable."""
        products = self.configuration["features"]["subscription_update"]["products"] or []
        for product in products:
            if price_id in product["prices"]:
                adjustable = product["adjustable_quantity"]
                if adjustable["enabled"]:
                    return adjustable.get("minimum", 1), adjustable.get("maximum")
        return None

    def feature(self, name: str) -> JSON:
        """``configuration.features[name]``."""
        feature: JSON = self.configuration["features"][name]
        return feature

    # -- JSON ----------------------------------------------------------------------

    def price_json(self, price_id: str) -> JSON:
        price = self.prices[price_id]
        return {
            "id": price.id,
            "object": "price",
            "active": price.active,
            "billing_scheme": "per_unit",
            "created": self.configuration["created"],
            "currency": price.currency,
            "livemode": False,
            "lookup_key": price.lookup_key,
            "metadata": {},
            "nickname": price.nickname,
            "product": price.product,
            "recurring": {
                "interval": price.interval,
                "interval_count": price.interval_count,
                "usage_type": "licensed",
            },
            "tax_behavior": "unspecified",
            "type": "recurring",
            "unit_amount": price.unit_amount,
            "unit_amount_decimal": str(price.unit_amount),
        }

    def customer_json(self, customer: Customer) -> JSON:
        return {
            "id": customer.id,
            "object": "customer",
            "address": customer.address,
            "balance": 0,
            "created": customer.created,
            "currency": "usd",
            "customer_account": customer.account,
            "default_source": None,
            "delinquent": False,
            "description": customer.description,
            "email": customer.email,
            "invoice_prefix": customer.id[4:12].upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": customer.default_payment_method,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": dict(customer.metadata),
            "name": customer.name,
            "phone": customer.phone,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }

    def payment_method_json(self, method: PaymentMethod) -> JSON:
        customer = self.customers.get(method.customer or "")
        return {
            "id": method.id,
            "object": "payment_method",
            "allow_redisplay": "always",
            "billing_details": {
                "address": customer.address if customer else None,
                "email": customer.email if customer else None,
                "name": customer.name if customer else None,
                "phone": customer.phone if customer else None,
            },
            "card": {
                "brand": method.brand,
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "country": "US",
                "display_brand": method.brand,
                "exp_month": method.exp_month,
                "exp_year": method.exp_year,
                "funding": "credit",
                "last4": method.last4,
            },
            "created": method.created,
            "customer": method.customer,
            "livemode": False,
            "metadata": {},
            "type": "card",
        }

    def subscription_json(self, sub: Subscription) -> JSON:
        items = [
            {
                "id": item.id,
                "object": "subscription_item",
                "created": item.created,
                "current_period_end": sub.current_period_end,
                "current_period_start": sub.current_period_start,
                "discounts": [],
                "metadata": {},
                "price": self.price_json(item.price),
                "quantity": item.quantity,
                "subscription": sub.id,
                "tax_rates": [],
            }
            for item in sub.items
        ]
        return {
            "id": sub.id,
            "object": "subscription",
            "application": None,
            "billing_cycle_anchor": sub.current_period_start,
            "cancel_at": sub.cancel_at,
            "cancel_at_period_end": sub.cancel_at_period_end,
            "canceled_at": sub.canceled_at,
            "cancellation_details": dict(sub.cancellation_details),
            "collection_method": "charge_automatically",
            "created": sub.created,
            "currency": self.prices[sub.items[0].price].currency,
            "customer": sub.customer,
            "default_payment_method": None,
            "discounts": list(sub.discounts),
            "ended_at": sub.ended_at,
            "items": {
                "object": "list",
                "data": items,
                "has_more": False,
                "total_count": len(items),
                "url": f"/v1/subscription_items?subscription={sub.id}",
            },
            "latest_invoice": None,
            "livemode": False,
            "metadata": {},
            "pause_collection": None
            if sub.pause_collection is None
            else dict(sub.pause_collection),
            "start_date": sub.created,
            "status": sub.status,
            "trial_end": sub.trial_end,
            "trial_start": None if sub.trial_end is None else sub.current_period_start,
        }

    def session_json(self, session: PortalSession, *, expand: tuple[str, ...] = ()) -> JSON:
        chosen = self.configurations.get(session.configuration or "", self.configuration)
        configuration: str | JSON = chosen["id"]
        if "configuration" in expand:
            configuration = chosen
        return {
            "id": session.id,
            "object": "billing_portal.session",
            "after_expiration": session.after_expiration,
            "configuration": configuration,
            "created": session.created,
            "customer": session.customer,
            "customer_account": session.customer_account,
            "flow": session.flow,
            "livemode": False,
            "locale": session.locale,
            "on_behalf_of": session.on_behalf_of,
            "return_url": session.return_url,
            "url": session.url,
        }

    # -- changes -------------------------------------------------------------------

    def _subscription_updated(self, sub: Subscription, before: JSON) -> Change:
        after = self.subscription_json(sub)
        return Change(
            type="customer.subscription.updated",
            object=after,
            previous_attributes=diff(before, after),
        )

    def create_customer(self, fields: Mapping[str, Any]) -> tuple[Customer, list[Change]]:
        """Add a customer from ``POST /v1/customers`` parameters (already checked)."""
        customer = Customer(
            id=new_id("cus"),
            created=int(self.clock()),
            name=fields.get("name"),
            email=fields.get("email"),
            phone=fields.get("phone"),
            description=fields.get("description"),
            address=_address(fields["address"]) if "address" in fields else None,
            metadata=dict(fields.get("metadata") or {}),
        )
        self.customers[customer.id] = customer
        return customer, [Change(type="customer.created", object=self.customer_json(customer))]

    def cancel_subscription(
        self, sub: Subscription, *, immediately: bool, feedback: str | None
    ) -> list[Change]:
        """Cancel now (``customer.subscription.deleted``) or at the end of the period."""
        before = self.subscription_json(sub)
        now = int(self.clock())
        sub.canceled_at = now
        sub.cancellation_details = {
            "comment": None,
            "feedback": feedback,
            "reason": "cancellation_requested",
        }
        if immediately:
            sub.status = "canceled"
            sub.ended_at = now
            sub.cancel_at_period_end = False
            sub.cancel_at = None
            sub.pause_collection = None
            return [
                Change(type="customer.subscription.deleted", object=self.subscription_json(sub))
            ]
        sub.cancel_at_period_end = True
        sub.cancel_at = sub.current_period_end
        return [self._subscription_updated(sub, before)]

    def renew_subscription(self, sub: Subscription) -> list[Change]:
        """Undo a cancellation scheduled for the end of the period."""
        before = self.subscription_json(sub)
        sub.cancel_at_period_end = False
        sub.cancel_at = sub.canceled_at = None
        sub.cancellation_details = {"comment": None, "feedback": None, "reason": None}
        return [self._subscription_updated(sub, before)]

    def change_item(
        self,
        sub: Subscription,
        item_id: str,
        *,
        price: str | None,
        quantity: int | None,
        discounts: tuple[str, ...] = (),
    ) -> list[Change]:
        """Switch an item's price and/or quantity, and add discounts (coupon IDs)."""
        before = self.subscription_json(sub)
        item = next(item for item in sub.items if item.id == item_id)
        if price is not None and price != item.price:
            item.price = price
            period = _PERIOD_DAYS[self.prices[price].interval] * _DAY
            sub.current_period_end = sub.current_period_start + period
        if quantity is not None:
            item.quantity = quantity
        for discount in discounts:
            if discount not in sub.discounts:
                sub.discounts.append(discount)
        return [self._subscription_updated(sub, before)]

    def apply_coupon(self, sub: Subscription, coupon: str) -> list[Change]:
        """Accept a retention offer: the coupon joins the subscription's discounts."""
        before = self.subscription_json(sub)
        if coupon not in sub.discounts:
            sub.discounts.append(coupon)
        return [self._subscription_updated(sub, before)]

    def pause_subscription(self, sub: Subscription, *, resumes_at: int | None) -> list[Change]:
        """Pause collection: ``customer.subscription.updated`` then ``.paused``."""
        before = self.subscription_json(sub)
        sub.status = "paused"
        sub.pause_collection = {"behavior": "void", "resumes_at": resumes_at}
        updated = self._subscription_updated(sub, before)
        return [updated, Change(type="customer.subscription.paused", object=updated.object)]

    def resume_subscription(self, sub: Subscription) -> list[Change]:
        """Resume a paused subscription: ``customer.subscription.updated`` then ``.resumed``."""
        before = self.subscription_json(sub)
        sub.status = "active"
        sub.pause_collection = None
        updated = self._subscription_updated(sub, before)
        return [updated, Change(type="customer.subscription.resumed", object=updated.object)]

    def attach_card(
        self, customer: Customer, *, brand: str, last4: str, exp_month: int, exp_year: int
    ) -> list[Change]:
        """Attach a new card and make it the default: ``payment_method.attached``,
        then ``customer.updated``."""
        method = PaymentMethod(
            id=new_id("pm"),
            brand=brand,
            last4=last4,
            exp_month=exp_month,
            exp_year=exp_year,
            created=int(self.clock()),
            customer=customer.id,
        )
        self.payment_methods[method.id] = method
        before = self.customer_json(customer)
        customer.default_payment_method = method.id
        after = self.customer_json(customer)
        return [
            Change(type="payment_method.attached", object=self.payment_method_json(method)),
            Change(type="customer.updated", object=after, previous_attributes=diff(before, after)),
        ]

    def update_customer(self, customer: Customer, fields: Mapping[str, Any]) -> list[Change]:
        """Change name, email, phone or address; no change, no event."""
        before = self.customer_json(customer)
        for name in ("name", "email", "phone"):
            if name in fields:
                setattr(customer, name, fields[name])
        if "address" in fields:
            customer.address = _address(fields["address"])
        after = self.customer_json(customer)
        changed = diff(before, after)
        if not changed:
            return []
        return [Change(type="customer.updated", object=after, previous_attributes=changed)]


def _address(raw: Mapping[str, Any] | None) -> JSON:
    raw = raw or {}
    return {
        key: raw.get(key) or None
        for key in ("city", "country", "line1", "line2", "postal_code", "state")
    }
