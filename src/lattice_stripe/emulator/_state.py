"""The emulator's memory: Stripe objects, their JSON, and the changes that become events.

A :class:`Store` is built from a seed (``seed.json`` in this package, or your
own file in the same shape) and an injected clock. Objects are plain mutable
records; ``*_json`` renders them in Stripe's shape for the API version the
emulator speaks. Every mutation returns the :class:`Change` values that the
webhook dispatcher turns into events, with ``previous_attributes`` computed
by diffing the JSON before and after, as Stripe reports them.
"""

import calendar
import datetime
import json
import secrets
import string
from collections.abc import Callable, Mapping, Sequence
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
_INTERVALS = ("day", "week", "month", "year")


def add_months(timestamp: float, months: int) -> int:
    """``timestamp`` moved by calendar months (UTC), the day clamped to the month's end.

    As Stripe counts billing periods and pause durations: January 31 plus one
    month is February 28 (or 29), not March 2.
    """
    moment = datetime.datetime.fromtimestamp(int(timestamp), datetime.timezone.utc)
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return int(moment.replace(year=year, month=month + 1, day=day).timestamp())


def add_interval(timestamp: float, interval: str, count: int = 1) -> int:
    """One billing period after ``timestamp``: calendar months and years, fixed days and weeks."""
    if interval == "month":
        return add_months(timestamp, count)
    if interval == "year":
        return add_months(timestamp, 12 * count)
    return int(timestamp) + count * (7 if interval == "week" else 1) * _DAY


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
    if not isinstance(document, dict):
        kind = (
            "a list"
            if isinstance(document, list)
            else "a string"
            if isinstance(document, str)
            else "a single value"
        )
        raise SeedError(
            f"{where} must hold a JSON object (keys configuration, products, prices, customers, "
            f"...), not {kind}: start from a copy of the packaged seed.json"
        )
    try:
        seed = _seed_converter.structure(document, Seed)
    except Exception as error:
        details = (
            "; ".join(cattrs.transform_error(error, path="seed"))
            if isinstance(error, cattrs.BaseValidationError)
            else str(error)
        )
        raise SeedError(f"{where} does not have the seed's shape: {details}") from None
    _check_unique(seed, where)
    return seed


def _check_unique(seed: "Seed", where: str) -> None:
    """Refuse two records of one kind with the same ID (the second would replace the first)."""
    kinds = {
        "customer": [customer.id for customer in seed.customers],
        "subscription": [sub.id for customer in seed.customers for sub in customer.subscriptions],
        "payment method": [
            card.id for customer in seed.customers for card in customer.payment_methods
        ],
        "price": [price.id for price in seed.prices],
        "product": [product.id for product in seed.products],
        "coupon": [coupon.id for coupon in seed.coupons],
    }
    for kind, ids in kinds.items():
        seen: set[str] = set()
        for record_id in ids:
            if record_id in seen:
                raise SeedError(f"{where} has two {kind} records with the ID {record_id}")
            seen.add(record_id)


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
    billing_cycle_anchor: int = 0
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


@attrs.frozen(kw_only=True)
class Invoice:
    """A paid invoice of one billing period (or of a plan change billed at once)."""

    id: str
    number: str
    customer: str
    subscription: str
    created: int
    period_start: int
    period_end: int
    amount_paid: int
    currency: str
    description: str
    status: str = "paid"


@attrs.frozen(kw_only=True)
class ChangePreview:
    """What a plan change costs: due now, and the next invoice (amounts in the smallest unit).

    ``proration`` is the credit (negative) or charge for the rest of the current
    period; ``resets_anchor`` is true when the billing interval changes, which
    starts a new period today, billed today, as Stripe does.
    """

    due_today: int
    proration: int
    next_amount: int
    next_date: int
    currency: str
    resets_anchor: bool


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
    # Stripe's customer balance: negative is credit (an immediate cancellation's proration).
    balance: int = 0
    metadata: dict[str, str] = attrs.Factory(dict)
    description: str | None = None
    # Not nullable in the spec: present only when set.
    business_name: str | None = None
    individual_name: str | None = None
    preferred_locales: list[str] = attrs.Factory(list)
    test_clock: str | None = None


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
    # Bumped by every change made in the visit: a form rendered before it is stale.
    version: int = 0


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
        self.invoices: dict[str, Invoice] = {}
        self._check_catalogue()
        for customer in seed.customers:
            self._add_seed_customer(customer, now)

    def _check_catalogue(self) -> None:
        for price in self.prices.values():
            if price.product not in self.products:
                raise SeedError(f"price {price.id} refers to an unknown product {price.product}")
            if price.interval not in _INTERVALS:
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
                    raise SeedError(
                        f"subscription {sub.id} of customer {seed.id} refers to the price "
                        f"{item.price}, which the seed's prices do not have"
                    )
            price = self.prices[sub.items[0].price]
            start = now - 10 * _DAY
            # Two earlier periods of history for monthly plans (an invoice each), none for yearly.
            earlier = 2 if price.interval in ("day", "week", "month") else 0
            created = add_interval(start, price.interval, -earlier * price.interval_count)
            subscription = Subscription(
                id=sub.id,
                customer=seed.id,
                items=[
                    SubscriptionItem(
                        id=item.id, price=item.price, quantity=item.quantity, created=created
                    )
                    for item in sub.items
                ],
                status=sub.status,
                created=created,
                current_period_start=start,
                current_period_end=add_interval(start, price.interval, price.interval_count),
                billing_cycle_anchor=created,
            )
            if sub.status == "trialing":
                subscription.trial_end = subscription.current_period_end
            if sub.status == "canceled":
                subscription.canceled_at = subscription.ended_at = start
                subscription.cancellation_details["reason"] = "cancellation_requested"
            self.subscriptions[sub.id] = subscription
            if sub.status != "trialing":
                self._seed_invoices(
                    subscription, until=start, include_last=sub.status != "canceled"
                )

    def _seed_invoices(self, sub: Subscription, *, until: int, include_last: bool) -> None:
        """A paid invoice for each period from the subscription's start up to ``until``."""
        price = self.prices[sub.items[0].price]
        period_start = sub.created
        while period_start < until or (include_last and period_start == until):
            period_end = add_interval(period_start, price.interval, price.interval_count)
            self._add_invoice(sub, period_start, period_end, self.period_amount(sub))
            period_start = period_end

    def _add_invoice(self, sub: Subscription, start: int, end: int, amount: int) -> Invoice:
        count = sum(1 for invoice in self.invoices.values() if invoice.customer == sub.customer)
        prefix = "".join(char for char in sub.customer.upper() if char.isalnum())[-8:]
        invoice = Invoice(
            id=new_id("in"),
            number=f"{prefix}-{count + 1:04d}",
            customer=sub.customer,
            subscription=sub.id,
            created=start,
            period_start=start,
            period_end=end,
            amount_paid=amount,
            currency=self.prices[sub.items[0].price].currency,
            description=", ".join(
                self.products[self.prices[i.price].product].name for i in sub.items
            ),
        )
        self.invoices[invoice.id] = invoice
        return invoice

    # -- lookups -------------------------------------------------------------------

    def customer_by_account(self, account: str) -> Customer | None:
        """The customer linked to an Accounts v2 ``acct_`` ID, if any."""
        return next((c for c in self.customers.values() if c.account == account), None)

    def subscriptions_of(self, customer_id: str) -> list[Subscription]:
        """The customer's subscriptions, oldest first."""
        found = [sub for sub in self.subscriptions.values() if sub.customer == customer_id]
        return sorted(found, key=lambda sub: sub.created)

    def invoices_of(self, customer_id: str) -> list[Invoice]:
        """The customer's invoices, newest first."""
        found = [invoice for invoice in self.invoices.values() if invoice.customer == customer_id]
        return sorted(found, key=lambda invoice: (-invoice.created, invoice.number))

    def discounted(self, amount: int, coupons: Sequence[str]) -> int:
        """``amount`` after the coupons (percent off, then amount off), never below zero."""
        for coupon_id in coupons:
            coupon = self.coupons.get(coupon_id)
            if coupon is None:
                continue
            if coupon.percent_off is not None:
                amount = round(amount * (100 - coupon.percent_off) / 100)
            if coupon.amount_off is not None:
                amount -= coupon.amount_off
        return max(0, amount)

    def period_amount(self, sub: Subscription, coupons: Sequence[str] | None = None) -> int:
        """What one period of ``sub`` costs, its discounts (or ``coupons``) applied."""
        gross = sum(self.prices[item.price].unit_amount * item.quantity for item in sub.items)
        return self.discounted(gross, sub.discounts if coupons is None else coupons)

    def preview_change(
        self,
        sub: Subscription,
        item: SubscriptionItem,
        *,
        price: str,
        quantity: int,
        configuration: JSON,
        coupons: Sequence[str] = (),
    ) -> ChangePreview:
        """What switching ``item`` to ``price`` x ``quantity`` costs, as the portal shows it.

        Same interval: the period stays; with ``create_prorations`` the next invoice
        carries the difference for the time left, with ``always_invoice`` it is due
        now, with ``none`` nothing is prorated. Another interval: a new period starts
        now and is billed now, less the unused time of the current one (unless the
        proration behaviour is ``none``).
        """
        now = int(self.clock())
        old, new = self.prices[item.price], self.prices[price]
        discounts = [*sub.discounts, *(c for c in coupons if c not in sub.discounts)]
        old_amount = self.discounted(old.unit_amount * item.quantity, sub.discounts)
        new_amount = self.discounted(new.unit_amount * quantity, discounts)
        behavior = configuration["features"]["subscription_update"].get("proration_behavior")
        behavior = behavior or "none"
        span = max(1, sub.current_period_end - sub.current_period_start)
        left = min(span, max(0, sub.current_period_end - now))
        if (new.interval, new.interval_count) != (old.interval, old.interval_count):
            credit = 0 if behavior == "none" else round(old_amount * left / span)
            return ChangePreview(
                due_today=max(0, new_amount - credit),
                proration=-credit,
                next_amount=new_amount,
                next_date=add_interval(now, new.interval, new.interval_count),
                currency=new.currency,
                resets_anchor=True,
            )
        proration = 0 if behavior == "none" else round((new_amount - old_amount) * left / span)
        due_today = max(0, proration) if behavior == "always_invoice" else 0
        return ChangePreview(
            due_today=due_today,
            proration=proration,
            # A credit larger than the next period waits on the balance: the invoice is never < 0.
            next_amount=(
                new_amount if behavior == "always_invoice" else max(0, new_amount + proration)
            ),
            next_date=sub.current_period_end,
            currency=new.currency,
            resets_anchor=False,
        )

    def configuration_for(self, session: PortalSession) -> JSON:
        """The configuration a portal session renders: the one it named, else the default."""
        return self.configurations.get(session.configuration or "", self.configuration)

    @staticmethod
    def offered_prices(configuration: JSON) -> list[str]:
        """The price IDs ``configuration`` lets a customer switch to."""
        products = configuration["features"]["subscription_update"]["products"] or []
        return [price for product in products for price in product["prices"]]

    @staticmethod
    def quantity_limits(price_id: str, configuration: JSON) -> tuple[int, int | None] | None:
        """(minimum, maximum) quantity for ``price_id``, or None if it is not adjustable."""
        products = configuration["features"]["subscription_update"]["products"] or []
        for product in products:
            if price_id in product["prices"]:
                adjustable = product["adjustable_quantity"]
                if adjustable["enabled"]:
                    return adjustable.get("minimum", 1), adjustable.get("maximum")
        return None

    @staticmethod
    def feature(name: str, configuration: JSON) -> JSON:
        """``configuration.features[name]`` (empty when the configuration lacks it)."""
        feature: JSON = configuration["features"].get(name) or {}
        return feature

    def unused_credit(self, sub: Subscription) -> int:
        """What the rest of the current period is worth: an immediate cancellation's proration."""
        now = int(self.clock())
        span = max(1, sub.current_period_end - sub.current_period_start)
        left = min(span, max(0, sub.current_period_end - now))
        return round(self.period_amount(sub) * left / span)

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
        document: JSON = {
            "id": customer.id,
            "object": "customer",
            "address": customer.address,
            "balance": customer.balance,
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
            "preferred_locales": list(customer.preferred_locales),
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": customer.test_clock,
        }
        for name in ("business_name", "individual_name"):
            if getattr(customer, name) is not None:
                document[name] = getattr(customer, name)
        return document

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
            "billing_cycle_anchor": sub.billing_cycle_anchor,
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
        # Expanding a nested path (configuration.application) expands its parents too.
        if any(path.partition(".")[0] == "configuration" for path in expand):
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
            business_name=fields.get("business_name"),
            individual_name=fields.get("individual_name"),
            preferred_locales=list(fields.get("preferred_locales") or []),
            test_clock=fields.get("test_clock"),
        )
        self.customers[customer.id] = customer
        return customer, [Change(type="customer.created", object=self.customer_json(customer))]

    def create_subscription(
        self, customer: Customer, *, price: str, quantity: int
    ) -> tuple[Subscription, list[Change]]:
        """A new active subscription, its first period billed now: ``.created``."""
        now = int(self.clock())
        plan = self.prices[price]
        sub = Subscription(
            id=new_id("sub"),
            customer=customer.id,
            items=[SubscriptionItem(id=new_id("si"), price=price, quantity=quantity, created=now)],
            status="active",
            created=now,
            current_period_start=now,
            current_period_end=add_interval(now, plan.interval, plan.interval_count),
            billing_cycle_anchor=now,
        )
        self.subscriptions[sub.id] = sub
        self._add_invoice(sub, now, sub.current_period_end, self.period_amount(sub))
        created = Change(type="customer.subscription.created", object=self.subscription_json(sub))
        return sub, [created]

    def cancel_subscription(
        self, sub: Subscription, *, immediately: bool, feedback: str | None, prorate: bool = False
    ) -> list[Change]:
        """Cancel now (``customer.subscription.deleted``) or at the end of the period.

        ``prorate`` (an immediate cancellation under ``create_prorations``) credits
        the unused time to the customer's balance, with a ``customer.updated``.
        """
        before = self.subscription_json(sub)
        now = int(self.clock())
        credit = self.unused_credit(sub) if immediately and prorate else 0
        sub.canceled_at = now
        sub.cancellation_details = {
            "comment": None,
            "feedback": feedback,
            "reason": "cancellation_requested",
        }
        if not immediately:
            sub.cancel_at_period_end = True
            sub.cancel_at = sub.current_period_end
            return [self._subscription_updated(sub, before)]
        sub.status = "canceled"
        sub.ended_at = now
        sub.cancel_at_period_end = False
        sub.cancel_at = None
        sub.pause_collection = None
        changes = [Change(type="customer.subscription.deleted", object=self.subscription_json(sub))]
        if credit:
            customer = self.customers[sub.customer]
            was = self.customer_json(customer)
            customer.balance -= credit
            now_json = self.customer_json(customer)
            changes.append(
                Change(
                    type="customer.updated",
                    object=now_json,
                    previous_attributes=diff(was, now_json),
                )
            )
        return changes

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
        configuration: JSON,
        discounts: tuple[str, ...] = (),
    ) -> list[Change]:
        """Switch an item's price and/or quantity, and add discounts (coupon IDs)."""
        before = self.subscription_json(sub)
        item = next(item for item in sub.items if item.id == item_id)
        preview = self.preview_change(
            sub,
            item,
            price=price or item.price,
            quantity=item.quantity if quantity is None else quantity,
            configuration=configuration,
            coupons=discounts,
        )
        if price is not None:
            item.price = price
        if quantity is not None:
            item.quantity = quantity
        for discount in discounts:
            if discount not in sub.discounts:
                sub.discounts.append(discount)
        if preview.resets_anchor:
            # Another billing interval: Stripe starts a new period now and bills it now.
            now = int(self.clock())
            new = self.prices[item.price]
            sub.current_period_start = sub.billing_cycle_anchor = now
            sub.current_period_end = add_interval(now, new.interval, new.interval_count)
            if sub.cancel_at_period_end:
                sub.cancel_at = sub.current_period_end
        if preview.due_today:
            self._add_invoice(
                sub, sub.current_period_start, sub.current_period_end, preview.due_today
            )
        return [self._subscription_updated(sub, before)]

    def apply_coupon(self, sub: Subscription, coupon: str) -> list[Change]:
        """Accept a retention offer: the coupon joins the subscription's discounts."""
        before = self.subscription_json(sub)
        if coupon not in sub.discounts:
            sub.discounts.append(coupon)
        return [self._subscription_updated(sub, before)]

    def pause_subscription(self, sub: Subscription, *, resumes_at: int | None) -> list[Change]:
        """Pause payment collection: ``pause_collection`` is set, one ``.updated`` event.

        As Stripe does: "the subscription status will be unchanged and will not
        be updated to ``paused``" (the spec's ``pause_collection``), so no
        ``customer.subscription.paused`` event, which marks a status change.
        """
        before = self.subscription_json(sub)
        sub.pause_collection = {"behavior": "void", "resumes_at": resumes_at}
        return [self._subscription_updated(sub, before)]

    def resume_subscription(self, sub: Subscription) -> list[Change]:
        """Resume payment collection: ``pause_collection`` back to null, one ``.updated`` event."""
        before = self.subscription_json(sub)
        sub.pause_collection = None
        return [self._subscription_updated(sub, before)]

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
