"""Portal configurations as values: the params of every configuration operation and their rules.

Every field of ``POST /v1/billing_portal/configurations`` (and its update,
list and retrieve) is a typed, frozen field here; :mod:`lattice_stripe.core.shape`
reads the classes to check a mapping or an instance and to encode it, so a
field is written once. What an annotation cannot say (rules Stripe states only
in its descriptions) is checked by the ``guard_*`` functions below, each
failure naming the field path and the fix.

An empty tuple means "clear this list" and is sent as Stripe's empty value
(``features[customer_update][allowed_updates]=``); ``None`` means "leave it".
"""

from collections.abc import Mapping
from typing import Any, Literal, NoReturn, cast

import attrs

from lattice_stripe.core.codec import decode_configuration, decode_configuration_page
from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.guard import check_return_url
from lattice_stripe.core.operations import Operation, PathParam, encode_query
from lattice_stripe.core.session import Configuration, Page
from lattice_stripe.core.shape import encode, list_field, list_to_tuple, structure

__all__ = [
    "CONFIGURATION_CREATE",
    "CONFIGURATION_LIST",
    "CONFIGURATION_RETRIEVE",
    "CONFIGURATION_UPDATE",
    "AdjustableQuantity",
    "BusinessProfile",
    "ENSURE_METADATA_KEY",
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
    "guard_configuration_create",
    "guard_configuration_list",
    "guard_configuration_retrieve",
    "guard_configuration_update",
    "plan_update",
    "default_configuration_json",
    "default_features_json",
    "with_ensure_key",
]

CustomerUpdate = Literal["address", "email", "name", "phone", "shipping", "tax_id"]
CancellationOption = Literal[
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
]
ProrationBehavior = Literal["always_invoice", "create_prorations", "none"]
SubscriptionUpdate = Literal["price", "promotion_code", "quantity"]
MAX_PRODUCTS = 10


def default_configuration_json(
    *, id: str, created: int, livemode: bool, is_default: bool
) -> dict[str, Any]:
    """A ``billing_portal.configuration`` as Stripe returns one just created without options:
    active, every feature off, no business profile (a fresh copy each call)."""
    return {
        "id": id,
        "object": "billing_portal.configuration",
        "active": True,
        "application": None,
        "business_profile": {
            "headline": None,
            "privacy_policy_url": None,
            "terms_of_service_url": None,
        },
        "created": created,
        "default_return_url": None,
        "features": default_features_json(),
        "is_default": is_default,
        "livemode": livemode,
        "login_page": {"enabled": False, "url": None},
        "metadata": {},
        "name": None,
        "updated": created,
    }


def default_features_json() -> dict[str, Any]:
    """``features`` as Stripe returns them for a configuration created without any (every
    feature off), a fresh copy each call."""
    return {
        "customer_update": {"allowed_updates": [], "enabled": False},
        "invoice_history": {"enabled": False},
        "payment_method_update": {"enabled": False, "payment_method_configuration": None},
        "subscription_cancel": {
            "cancellation_reason": {"enabled": False, "options": []},
            "enabled": False,
            "mode": "at_period_end",
            "proration_behavior": "none",
        },
        "subscription_update": {
            "billing_cycle_anchor": None,
            "default_allowed_updates": [],
            "enabled": False,
            "products": [],
            "proration_behavior": "none",
            "schedule_at_period_end": {"conditions": []},
            "trial_update_behavior": "end_trial",
        },
    }


def _url() -> Any:
    return attrs.field(default=None, metadata={"url": True, "clearable": True})


@attrs.frozen(kw_only=True)
class BusinessProfile:
    """The business information the portal shows (headline up to 60 characters, policy links)."""

    headline: str | None = attrs.field(default=None, metadata={"max_length": 60, "clearable": True})
    privacy_policy_url: str | None = _url()
    terms_of_service_url: str | None = _url()


@attrs.frozen(kw_only=True)
class CustomerUpdateFeature:
    """Let customers change their details; an empty ``allowed_updates`` allows none."""

    enabled: bool | None = None
    allowed_updates: tuple[CustomerUpdate, ...] | None = list_field()

    @classmethod
    def allowing(cls, *updates: CustomerUpdate) -> "CustomerUpdateFeature":
        """Enabled, allowing exactly ``updates`` (e.g. ``"email", "address"``)."""
        return cls(enabled=True, allowed_updates=updates)


@attrs.frozen(kw_only=True)
class InvoiceHistoryFeature:
    """Show the customer's invoice history."""

    enabled: bool


@attrs.frozen(kw_only=True)
class PaymentMethodUpdateFeature:
    """Let customers update their payment methods (optionally with a ``pmc_`` configuration)."""

    enabled: bool
    payment_method_configuration: str | None = attrs.field(
        default=None, metadata={"prefix": "pmc_", "clearable": True}
    )


@attrs.frozen(kw_only=True)
class CancellationReason:
    """Ask why a customer cancels, from ``options`` (and, on endive, custom feedback options)."""

    enabled: bool
    options: tuple[CancellationOption, ...] | None = list_field()
    feedback_options: tuple[str, ...] | None = list_field()


@attrs.frozen(kw_only=True)
class SubscriptionCancelFeature:
    """Let customers cancel: ``mode`` says when, ``proration_behavior`` whether to credit.

    ``create_prorations`` only goes with ``mode="immediately"``; Stripe refuses
    ``always_invoice`` for cancellations.
    """

    enabled: bool | None = None
    mode: Literal["at_period_end", "immediately"] | None = None
    proration_behavior: ProrationBehavior | None = None
    cancellation_reason: CancellationReason | None = None

    @classmethod
    def at_period_end(
        cls, *, reasons: "tuple[CancellationOption, ...] | None" = None
    ) -> "SubscriptionCancelFeature":
        """Cancel when the paid period ends, optionally asking for one of ``reasons``."""
        return cls(
            enabled=True,
            mode="at_period_end",
            proration_behavior="none",
            cancellation_reason=None
            if reasons is None
            else CancellationReason(enabled=True, options=reasons),
        )

    @classmethod
    def immediately(cls, *, prorate: bool = False) -> "SubscriptionCancelFeature":
        """Cancel at once; with ``prorate``, credit the unused time."""
        return cls(
            enabled=True,
            mode="immediately",
            proration_behavior="create_prorations" if prorate else "none",
        )


@attrs.frozen(kw_only=True)
class AdjustableQuantity:
    """Whether the customer may change the quantity, and its bounds."""

    enabled: bool
    maximum: int | None = attrs.field(default=None, metadata={"minimum": 1})
    minimum: int | None = attrs.field(default=None, metadata={"minimum": 0})


@attrs.frozen(kw_only=True)
class ProductOption:
    """A product (``prod_``) whose ``prices`` (``price_``) customers may switch between."""

    product: str = attrs.field(metadata={"prefix": "prod_"})
    prices: tuple[str, ...] = attrs.field(
        converter=list_to_tuple, metadata={"item_prefix": "price_"}
    )
    adjustable_quantity: AdjustableQuantity | None = None

    @classmethod
    def of(
        cls, product: str, *prices: str, quantity: tuple[int, int] | None = None
    ) -> "ProductOption":
        """``product`` with ``prices``; ``quantity=(minimum, maximum)`` makes it adjustable."""
        return cls(
            product=product,
            prices=prices,
            adjustable_quantity=None
            if quantity is None
            else AdjustableQuantity(enabled=True, minimum=quantity[0], maximum=quantity[1]),
        )


@attrs.frozen(kw_only=True)
class ScheduleCondition:
    """When an update is scheduled for the period end instead of applied at once."""

    type: Literal["decreasing_item_amount", "shortening_interval"]


@attrs.frozen(kw_only=True)
class ScheduleAtPeriodEnd:
    """The conditions under which updates wait for the end of the period."""

    conditions: tuple[ScheduleCondition, ...] | None = list_field()


@attrs.frozen(kw_only=True)
class SubscriptionUpdateFeature:
    """Let customers change plans: which changes, for which products (at most 10)."""

    enabled: bool | None = None
    default_allowed_updates: tuple[SubscriptionUpdate, ...] | None = list_field()
    products: tuple[ProductOption, ...] | None = list_field(max_items=MAX_PRODUCTS)
    proration_behavior: ProrationBehavior | None = None
    billing_cycle_anchor: Literal["now", "unchanged"] | None = None
    schedule_at_period_end: ScheduleAtPeriodEnd | None = None
    trial_update_behavior: Literal["continue_trial", "end_trial"] | None = None

    @classmethod
    def for_products(
        cls,
        *products: ProductOption,
        allowed: "tuple[SubscriptionUpdate, ...]" = ("price", "quantity"),
        proration_behavior: ProrationBehavior = "create_prorations",
    ) -> "SubscriptionUpdateFeature":
        """Enabled for ``products``, allowing the ``allowed`` changes."""
        return cls(
            enabled=True,
            default_allowed_updates=allowed,
            products=products,
            proration_behavior=proration_behavior,
        )


@attrs.frozen(kw_only=True)
class PauseIntervalOption:
    """A preset pause length: ``interval_count`` (default 1) ``interval`` units."""

    interval: Literal["day", "month", "week", "year"]
    interval_count: int | None = attrs.field(default=None, metadata={"minimum": 1})


@attrs.frozen(kw_only=True)
class PauseDuration:
    """How long a pause lasts: ``indefinite``, or one of ``interval_options``."""

    type: Literal["indefinite", "interval_options"]
    interval_options: tuple[PauseIntervalOption, ...] | None = list_field()


@attrs.frozen(kw_only=True)
class SubscriptionPauseFeature:
    """Let customers pause subscriptions (API 2026-10-28.endive, redesigned portal)."""

    enabled: bool | None = None
    duration: PauseDuration | None = None


@attrs.frozen(kw_only=True)
class Features:
    """The portal's features; a feature left ``None`` keeps Stripe's (or the current) setting."""

    customer_update: CustomerUpdateFeature | None = None
    invoice_history: InvoiceHistoryFeature | None = None
    payment_method_update: PaymentMethodUpdateFeature | None = None
    subscription_cancel: SubscriptionCancelFeature | None = None
    subscription_update: SubscriptionUpdateFeature | None = None
    subscription_pause: SubscriptionPauseFeature | None = None


@attrs.frozen(kw_only=True)
class LoginPage:
    """The hosted login page; disabling it deactivates its URL."""

    enabled: bool


@attrs.frozen(kw_only=True)
class ConfigurationCreateParams:
    """Every parameter of ``POST /v1/billing_portal/configurations``; ``features`` is required."""

    features: Features
    business_profile: BusinessProfile | None = None
    default_return_url: str | None = _url()
    login_page: LoginPage | None = None
    metadata: Mapping[str, str] | None = None
    name: str | None = attrs.field(default=None, metadata={"max_length": 256, "clearable": True})
    expand: tuple[str, ...] | None = list_field()

    @classmethod
    def self_service(
        cls,
        *,
        default_return_url: str | None = None,
        headline: str | None = None,
        cancel: SubscriptionCancelFeature | None = None,
        update: SubscriptionUpdateFeature | None = None,
        customer_updates: "tuple[CustomerUpdate, ...]" = ("email", "address"),
        name: str | None = None,
    ) -> "ConfigurationCreateParams":
        """The common portal: invoices, payment methods, customer details, and cancel/update."""
        return cls(
            default_return_url=default_return_url,
            business_profile=None if headline is None else BusinessProfile(headline=headline),
            name=name,
            features=Features(
                invoice_history=InvoiceHistoryFeature(enabled=True),
                payment_method_update=PaymentMethodUpdateFeature(enabled=True),
                customer_update=CustomerUpdateFeature.allowing(*customer_updates),
                subscription_cancel=cancel or SubscriptionCancelFeature.at_period_end(),
                subscription_update=update,
            ),
        )


@attrs.frozen(kw_only=True)
class ConfigurationUpdateParams:
    """Every parameter of ``POST /v1/billing_portal/configurations/{configuration}``."""

    active: bool | None = None
    business_profile: BusinessProfile | None = None
    default_return_url: str | None = _url()
    features: Features | None = None
    login_page: LoginPage | None = None
    metadata: Mapping[str, str] | None = None
    name: str | None = attrs.field(default=None, metadata={"max_length": 256, "clearable": True})
    expand: tuple[str, ...] | None = list_field()


@attrs.frozen(kw_only=True)
class ConfigurationListParams:
    """The filters and cursor of ``GET /v1/billing_portal/configurations``."""

    active: bool | None = None
    is_default: bool | None = None
    limit: int | None = attrs.field(default=None, metadata={"minimum": 1})
    starting_after: str | None = attrs.field(default=None, metadata={"prefix": "bpc_"})
    ending_before: str | None = attrs.field(default=None, metadata={"prefix": "bpc_"})
    expand: tuple[str, ...] | None = list_field()


@attrs.frozen(kw_only=True)
class ConfigurationRetrieveParams:
    """``GET /v1/billing_portal/configurations/{configuration}``: only ``expand``."""

    expand: tuple[str, ...] | None = list_field()


# -- the rules an annotation cannot state --------------------------------------------


def _fail(path: str, reason: str) -> NoReturn:
    raise ValidationError(path, reason)


def _urls(allow_http_localhost: bool) -> Any:
    def check(value: object, path: str) -> str:
        return check_return_url(value, path, allow_http_localhost=allow_http_localhost)

    return check


def _check_features(features: Features | None, creating: bool) -> None:
    if features is None:
        return
    if creating:
        for name in ("customer_update", "subscription_cancel", "subscription_update"):
            feature = getattr(features, name)
            if feature is not None and feature.enabled is None:
                _fail(f"features.{name}.enabled", "required when creating: pass True or False")
    cancel = features.subscription_cancel
    if cancel is not None:
        _check_cancel(cancel, creating)
    update = features.subscription_update
    if update is not None and update.enabled and creating and update.products is not None:
        for index, product in enumerate(update.products):
            if not product.prices:
                _fail(
                    f"features.subscription_update.products[{index}].prices",
                    "required: at least one price (price_...) of the product",
                )
    if update is not None and update.products:
        for index, product in enumerate(update.products):
            quantity = product.adjustable_quantity
            if (
                quantity is not None
                and quantity.minimum is not None
                and quantity.maximum is not None
                and quantity.maximum < quantity.minimum
            ):
                _fail(
                    f"features.subscription_update.products[{index}].adjustable_quantity.maximum",
                    "must not be less than minimum",
                )
    pause = features.subscription_pause
    if pause is not None and pause.duration is not None:
        duration = pause.duration
        path = "features.subscription_pause.duration.interval_options"
        if duration.type == "interval_options" and not duration.interval_options:
            _fail(path, "required when duration.type is 'interval_options': at least one option")
        if duration.type == "indefinite" and duration.interval_options:
            _fail(path, "only allowed when duration.type is 'interval_options'")


def _check_cancel(cancel: SubscriptionCancelFeature, creating: bool) -> None:
    path = "features.subscription_cancel"
    if cancel.proration_behavior == "always_invoice":
        _fail(
            f"{path}.proration_behavior",
            "Stripe refuses 'always_invoice' for cancellations; use 'none' or "
            "'create_prorations' (with mode='immediately')",
        )
    if cancel.proration_behavior == "create_prorations" and (
        cancel.mode == "at_period_end" or (creating and cancel.mode is None)
    ):
        _fail(
            f"{path}.proration_behavior",
            "'create_prorations' only works with mode='immediately' (a cancellation at the "
            "period end has nothing to prorate); set mode or use 'none'",
        )
    reason = cancel.cancellation_reason
    if creating and reason is not None and reason.options is None:
        _fail(
            f"{path}.cancellation_reason.options",
            "required when creating: the reasons to offer (or [] for none)",
        )


def guard_configuration_create(
    params: object, *, allow_http_localhost: bool = False
) -> ConfigurationCreateParams:
    """Return ``params`` as checked :class:`ConfigurationCreateParams`, or raise ValidationError."""
    checked = structure(ConfigurationCreateParams, params, "", _urls(allow_http_localhost))
    if all(getattr(checked.features, field.name) is None for field in attrs.fields(Features)):
        _fail(
            "features",
            "required: at least one feature, e.g. {'invoice_history': {'enabled': True}}",
        )
    _check_features(checked.features, creating=True)
    return checked


def guard_configuration_update(
    params: object, *, allow_http_localhost: bool = False
) -> ConfigurationUpdateParams:
    """Return ``params`` as checked :class:`ConfigurationUpdateParams`, or raise ValidationError.

    An update that changes nothing (only ``expand``, or nothing at all) is refused.
    """
    checked = structure(ConfigurationUpdateParams, params, "", _urls(allow_http_localhost))
    if all(
        getattr(checked, field.name) is None
        for field in attrs.fields(ConfigurationUpdateParams)
        if field.name != "expand"
    ):
        _fail(
            "params",
            "nothing to update: pass at least one of "
            + ", ".join(
                field.name
                for field in attrs.fields(ConfigurationUpdateParams)
                if field.name != "expand"
            ),
        )
    _check_features(checked.features, creating=False)
    return checked


def guard_configuration_list(
    params: object, *, allow_http_localhost: bool = False
) -> ConfigurationListParams:
    """Return list filters as checked :class:`ConfigurationListParams` (``limit`` 1 to 100)."""
    checked = structure(ConfigurationListParams, {} if params is None else params, "", _urls(False))
    if checked.limit is not None and checked.limit > 100:
        _fail("limit", "must be 100 or less (Stripe's largest page)")
    if checked.starting_after is not None and checked.ending_before is not None:
        _fail("ending_before", "pass at most one of starting_after and ending_before")
    return checked


def guard_configuration_retrieve(
    params: object, *, allow_http_localhost: bool = False
) -> ConfigurationRetrieveParams:
    """Return retrieve params as checked :class:`ConfigurationRetrieveParams`."""
    return structure(
        ConfigurationRetrieveParams, {} if params is None else params, "", _urls(False)
    )


# -- configuration as code -----------------------------------------------------------

ENSURE_METADATA_KEY = "lattice_stripe_key"
"""The metadata key that ``configurations.ensure`` marks its configuration with."""


@attrs.frozen(kw_only=True)
class Change:
    """One field that differs: its dotted ``path``, the current and the desired value."""

    path: str
    current: object
    desired: object

    def __str__(self) -> str:
        return f"{self.path}: {self.current!r} -> {self.desired!r}"


def _same(desired: object, current: object) -> bool:
    if desired == "" and current is None:
        return True  # "" clears a value; a cleared value reads back as null
    return desired == current


def _differences(desired: object, current: object, path: str, out: list[Change]) -> None:
    """Append a Change for every leaf set in ``desired`` (a params value) that ``current`` lacks."""
    for field in attrs.fields(cast(Any, type(desired))):
        want = getattr(desired, field.name)
        if want is None or field.name == "expand":
            continue
        field_path = f"{path}.{field.name}" if path else field.name
        have = getattr(current, field.name, None) if current is not None else None
        if attrs.has(type(want)):
            _differences(want, have, field_path, out)
        elif isinstance(want, tuple) and want and attrs.has(type(want[0])):
            if not isinstance(have, tuple) or len(have) != len(want):
                out.append(Change(path=field_path, current=have, desired=want))
                continue
            before = len(out)
            for index, (item, existing) in enumerate(zip(want, have, strict=True)):
                _differences(item, existing, f"{field_path}[{index}]", out)
            if len(out) > before:  # a list is replaced whole: report it once
                del out[before:]
                out.append(Change(path=field_path, current=have, desired=want))
        elif isinstance(want, Mapping):
            existing = have if isinstance(have, Mapping) else {}
            for key, value in want.items():
                if existing.get(key) != value and not (value == "" and key not in existing):
                    out.append(
                        Change(path=f"{field_path}.{key}", current=existing.get(key), desired=value)
                    )
        elif not _same(want, have):
            out.append(Change(path=field_path, current=have, desired=want))


def plan_update(
    desired: ConfigurationCreateParams, current: object
) -> tuple[ConfigurationUpdateParams | None, tuple[Change, ...]]:
    """What to send to turn ``current`` (a Configuration) into ``desired``, and the changes.

    Only what differs is sent: a top-level field or feature that differs is
    sent whole (as declared), metadata key by key. ``(None, ())`` means in sync.
    An inactive ``current`` is re-activated.
    """
    changes: list[Change] = []
    if getattr(current, "active", True) is False:
        changes.append(Change(path="active", current=False, desired=True))
    _differences(desired, current, "", changes)
    if not changes:
        return None, ()
    changed = {change.path.split(".")[0].split("[")[0] for change in changes}
    features = None
    if "features" in changed:
        feature_names = {
            change.path.split(".")[1].split("[")[0]
            for change in changes
            if change.path.startswith("features.")
        }
        features = Features(
            **{name: getattr(desired.features, name) for name in sorted(feature_names)}
        )
    metadata = None
    if "metadata" in changed:
        metadata = {
            change.path.split(".", 1)[1]: str(change.desired)
            for change in changes
            if change.path.startswith("metadata.")
        }
    update = ConfigurationUpdateParams(
        active=True if "active" in changed else None,
        business_profile=desired.business_profile if "business_profile" in changed else None,
        default_return_url=desired.default_return_url if "default_return_url" in changed else None,
        features=features,
        login_page=desired.login_page if "login_page" in changed else None,
        metadata=metadata,
        name=desired.name if "name" in changed else None,
    )
    return update, tuple(changes)


def with_ensure_key(desired: ConfigurationCreateParams, key: str) -> ConfigurationCreateParams:
    """``desired`` with the metadata mark that lets ensure find it again."""
    if not isinstance(key, str) or not key or len(key) > 500:
        _fail("key", "expected a non-empty string of at most 500 characters naming the portal")
    return attrs.evolve(desired, metadata={**(desired.metadata or {}), ENSURE_METADATA_KEY: key})


# -- the operations --------------------------------------------------------------
# Defined beside their params, so that importing the core builds no configuration value:
# lattice_stripe loads this module on the first configuration call.

_CONFIGURATION = PathParam(name="configuration", prefix="bpc_", what="portal configuration")
_CONFIGURATIONS = "/v1/billing_portal/configurations"


CONFIGURATION_CREATE: Operation[ConfigurationCreateParams, Configuration] = Operation(
    name="billing_portal.configurations.create",
    method="POST",
    path=_CONFIGURATIONS,
    guard=guard_configuration_create,
    encode=encode,
    decode=decode_configuration,
)
CONFIGURATION_UPDATE: Operation[ConfigurationUpdateParams, Configuration] = Operation(
    name="billing_portal.configurations.update",
    method="POST",
    path=_CONFIGURATIONS + "/{configuration}",
    path_params=(_CONFIGURATION,),
    guard=guard_configuration_update,
    encode=encode,
    decode=decode_configuration,
)
CONFIGURATION_RETRIEVE: Operation[ConfigurationRetrieveParams, Configuration] = Operation(
    name="billing_portal.configurations.retrieve",
    method="GET",
    path=_CONFIGURATIONS + "/{configuration}",
    path_params=(_CONFIGURATION,),
    guard=guard_configuration_retrieve,
    encode=encode_query,
    decode=decode_configuration,
)
CONFIGURATION_LIST: Operation[ConfigurationListParams, Page[Configuration]] = Operation(
    name="billing_portal.configurations.list",
    method="GET",
    path=_CONFIGURATIONS,
    guard=guard_configuration_list,
    encode=encode_query,
    decode=decode_configuration_page,
    lists=True,
)
