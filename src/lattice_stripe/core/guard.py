"""The pre-flight guard: every rule Stripe would enforce, checked before any network.

:func:`guard` takes the parameters as a plain mapping (string keys, like the
JSON in Stripe's docs) or as a :class:`~lattice_stripe.core.params.SessionCreateParams`
and returns the typed value, or raises :class:`~lattice_stripe.core.errors.ValidationError`
naming the exact field path and the fix. The offending value is never echoed.

Two stages share the work: ``_parse_*`` turns a mapping into typed values,
checking only its shape (known keys, string keys, mappings where mappings
belong), and ``_check_*`` checks the contents of typed values, however they
were built (type annotations are not enforced at run time).
"""

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, cast
from urllib.parse import urlsplit

import attrs

from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.expand import MAX_EXPAND_DEPTH, SESSION_EXPANDABLE
from lattice_stripe.core.params import (
    AFTER_COMPLETION_TYPES,
    FLOW_TYPES,
    LOCALES,
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
from lattice_stripe.core.shape import EXACT_TYPES, exact_copy

__all__ = ["MAX_CUSTOM_MESSAGE", "MAX_STRING", "check_return_url", "guard"]

MAX_STRING = 5000
MAX_CONFIRM_ITEMS = 1
"""How many items ``subscription_update_confirm`` takes ("Currently, only up to one may be
specified")."""
MAX_CUSTOM_MESSAGE = 500


def _names(cls: type) -> frozenset[str]:
    """The field names of a params class: the keys its mapping form accepts."""
    return frozenset(field.name for field in attrs.fields(cast(Any, cls)))


# Key sets are read from the params classes, so a new field is written once.
_TOP_KEYS = _names(SessionCreateParams)
# The plain fields of SessionCreateParams, passed through from a mapping as given.
_SCALAR_KEYS = tuple(
    field.name
    for field in attrs.fields(SessionCreateParams)
    if field.name not in ("flow_data", "after_expiration", "expand")
)
_SUBSCRIPTION_FLOWS: Mapping[str, type[FlowData]] = {
    "subscription_cancel": SubscriptionCancelFlow,
    "subscription_update": SubscriptionUpdateFlow,
    "subscription_update_confirm": SubscriptionUpdateConfirmFlow,
    "subscription_pause": SubscriptionPauseFlow,
}
_SUBSCRIPTION_FLOW_KEYS = frozenset(_SUBSCRIPTION_FLOWS)
_OTHER_SUB_HASHES = {flow: _SUBSCRIPTION_FLOW_KEYS - {flow} for flow in FLOW_TYPES}
_FLOW_KEYS = frozenset({"type", "after_completion", *_SUBSCRIPTION_FLOWS})
_SUB_HASH_KEYS: Mapping[str, frozenset[str]] = {
    flow: _names(cls) - {"after_completion"} for flow, cls in _SUBSCRIPTION_FLOWS.items()
}
_FLOW_TYPE_LIST = ", ".join(repr(t) for t in FLOW_TYPES)
_LOCALE_LIST = ", ".join(sorted(LOCALES))
_AFTER_COMPLETION_LIST = ", ".join(repr(t) for t in AFTER_COMPLETION_TYPES)
_ID_CHARS = re.compile(r"[A-Za-z0-9_]+")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
# The common case, accepted in one match: https, a lower-case host name, no
# port, user info or backslash. Anything else takes the slow path below,
# which also explains what is wrong.
_PLAIN_HTTPS_URL = re.compile(
    r"https://(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:[/?#][!-\[\]-~]*)?"
)
# Whole-ID matchers per prefix: the common, valid case is one C-level match,
# and a check's field path is only built when there is something to report.
_ID_MATCHERS = {
    prefix: re.compile(re.escape(prefix) + "[A-Za-z0-9_]+").fullmatch
    for prefix in ("cus_", "acct_", "bpc_", "sub_", "si_")
}
_AFTER_COMPLETION_RETURN_URL = "flow_data.after_completion.redirect.return_url"
_AFTER_COMPLETION_KEYS = frozenset({"type", "redirect", "hosted_confirmation"})
_RETURN_URL_KEYS = frozenset({"return_url"})
_CUSTOM_MESSAGE_KEYS = frozenset({"custom_message"})
_RETENTION_KEYS = frozenset({"type", "coupon_offer"})
_COUPON_KEYS = frozenset({"coupon"})
_ITEM_KEYS = _names(UpdateConfirmItem)
_DISCOUNT_KEYS = _names(UpdateConfirmDiscount)
_EXPIRATION_KEYS = frozenset({"type", "customer_login"})
_LOGIN_KEYS = frozenset({"expires_at"})


def guard(
    params: "Mapping[str, object] | SessionCreateParams",
    *,
    allow_http_localhost: bool = False,
) -> SessionCreateParams:
    """Return ``params`` as a checked :class:`SessionCreateParams`, or raise ValidationError.

    ``allow_http_localhost`` also accepts ``http://localhost`` and
    ``http://127.0.0.1`` return URLs, for local development only (the client
    refuses it with a live key).
    """
    if isinstance(params, SessionCreateParams):
        typed: SessionCreateParams = exact_copy(params, "")
    elif isinstance(params, Mapping):
        typed = _parse_params(_mapping(params, "params", "{'customer': 'cus_...'}"))
    else:
        _fail(
            "params",
            f"expected a mapping with string keys or a SessionCreateParams, got {_kind(params)}",
        )
    _check_params(typed, allow_http_localhost)
    return typed


# -- failures ------------------------------------------------------------------------


def _fail(path: str, reason: str) -> NoReturn:
    raise ValidationError(path, reason)


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _printable_key(key: str) -> str:
    if key and len(key) <= 40 and key.isprintable() and "." not in key:
        return key
    return repr(key[:40]) + ("..." if len(key) > 40 else "")


# -- stage 1: the shape of a mapping -------------------------------------------------


def _mapping(value: object, path: str, example: str) -> Mapping[str, Any]:
    """``value`` as a dict to read keys from: an exact dict as it is, any other mapping read once.

    An exact dict cannot answer differently the second time; its values are
    made exact one by one as they are taken (:func:`_leaf`).
    """
    if value.__class__ is dict:
        return value
    if not isinstance(value, Mapping):
        _fail(path, f"expected a mapping like {example}, got {_kind(value)}")
    copy: dict[str, Any] = exact_copy(value, path)
    return copy


def _check_keys(mapping: Mapping[Any, Any], path: str, allowed: frozenset[str]) -> None:
    if allowed.issuperset(mapping):
        return
    for key in mapping:
        if not isinstance(key, str):
            _fail(
                path or "params",
                f"every key must be a string, got a key of type {_kind(key)}; "
                "write keys as strings, e.g. {'customer': ...}",
            )
        if key not in allowed:
            where = f"'{path}'" if path else "the top level"
            _fail(
                _join(path, _printable_key(key)),
                f"unknown parameter; {where} accepts only: {', '.join(sorted(allowed))}",
            )


def _leaf(raw: Mapping[Any, Any], key: str, path: str) -> Any:
    """``raw[key]`` (``None`` when absent) as an exact builtin: the copy checked and sent."""
    value = raw.get(key)
    return value if value.__class__ in EXACT_TYPES else exact_copy(value, _join(path, key))


def _pick(
    raw: Mapping[Any, Any], keys: "tuple[str, ...] | frozenset[str]", path: str
) -> dict[str, Any]:
    """The values of ``keys`` in ``raw`` as exact builtins, ``None`` where absent."""
    picked = {key: raw.get(key) for key in keys}
    for key, value in picked.items():  # _leaf's rule, without a call per exact value
        if value.__class__ not in EXACT_TYPES:
            picked[key] = exact_copy(value, _join(path, key))
    return picked


def _sequence(value: object, path: str, what: str) -> Sequence[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        _fail(path, f"expected a list of {what}, got {_kind(value)}")
    entries: tuple[Any, ...] = exact_copy(value, path)  # read once, entries exact
    return entries


def _parse_params(raw: Mapping[Any, Any]) -> SessionCreateParams:
    _check_keys(raw, "", _TOP_KEYS)
    flow_data = raw.get("flow_data")
    after_expiration = raw.get("after_expiration")
    expand = raw.get("expand")
    return SessionCreateParams(
        **_pick(raw, _SCALAR_KEYS, ""),
        flow_data=None if flow_data is None else _parse_flow_data(flow_data),
        after_expiration=(
            None if after_expiration is None else _parse_after_expiration(after_expiration)
        ),
        expand=() if expand is None else tuple(_sequence(expand, "expand", "strings")),
    )


def _parse_flow_data(value: object) -> FlowData:
    raw = _mapping(value, "flow_data", "{'type': 'payment_method_update'}")
    _check_keys(raw, "flow_data", _FLOW_KEYS)
    flow_type = _leaf(raw, "type", "flow_data")
    if flow_type is None:
        _fail("flow_data.type", f"required; use one of {_FLOW_TYPE_LIST}")
    if not isinstance(flow_type, str) or flow_type not in FLOW_TYPES:
        _fail("flow_data.type", f"unknown flow type; use one of {_FLOW_TYPE_LIST}")
    others = _OTHER_SUB_HASHES[flow_type]
    for key in () if others.isdisjoint(raw) else sorted(others.intersection(raw)):
        _fail(
            f"flow_data.{key}",
            f"not allowed when flow_data.type is '{flow_type}'; "
            "send only the sub-hash of the chosen flow",
        )
    completion = raw.get("after_completion")
    after_completion = None if completion is None else _parse_after_completion(completion)
    if flow_type == "payment_method_update":
        return PaymentMethodUpdateFlow(after_completion=after_completion)
    if flow_type == "customer_update":
        return CustomerUpdateFlow(after_completion=after_completion)
    path = f"flow_data.{flow_type}"
    sub = raw.get(flow_type)
    if sub is None:
        _fail(
            path,
            f"required when flow_data.type is '{flow_type}': "
            "pass {'subscription': 'sub_...'}"
            + (
                " and a non-empty 'items' list"
                if flow_type == "subscription_update_confirm"
                else ""
            ),
        )
    sub = _mapping(sub, path, "{'subscription': 'sub_...'}")
    _check_keys(sub, path, _SUB_HASH_KEYS[flow_type])
    subscription = _leaf(sub, "subscription", path)
    if flow_type == "subscription_cancel":
        retention = sub.get("retention")
        return SubscriptionCancelFlow(
            subscription=subscription,  # checked in stage 2
            retention=None if retention is None else _parse_retention(retention, path),
            after_completion=after_completion,
        )
    if flow_type == "subscription_update_confirm":
        items = sub.get("items")
        discounts = sub.get("discounts")
        return SubscriptionUpdateConfirmFlow(
            subscription=subscription,  # checked in stage 2
            items=() if items is None else _parse_items(items, f"{path}.items"),
            discounts=None if discounts is None else _parse_discounts(discounts, path),
            after_completion=after_completion,
        )
    flow_class = _SUBSCRIPTION_FLOWS[flow_type]
    return flow_class(subscription=subscription, after_completion=after_completion)  # type: ignore[call-arg]


def _parse_after_completion(value: object) -> AfterCompletion:
    path = "flow_data.after_completion"
    raw = _mapping(value, path, "{'type': 'portal_homepage'}")
    _check_keys(raw, path, _AFTER_COMPLETION_KEYS)
    completion_type = _leaf(raw, "type", path)
    for key in ("redirect", "hosted_confirmation"):
        if key in raw and completion_type != key:
            _fail(f"{path}.{key}", f"only allowed when {path}.type is '{key}'")
    return_url = custom_message = None
    if "redirect" in raw:
        redirect = _mapping(raw["redirect"], f"{path}.redirect", "{'return_url': 'https://...'}")
        _check_keys(redirect, f"{path}.redirect", _RETURN_URL_KEYS)
        return_url = _leaf(redirect, "return_url", f"{path}.redirect")
    if "hosted_confirmation" in raw:
        hosted = _mapping(
            raw["hosted_confirmation"], f"{path}.hosted_confirmation", "{'custom_message': '...'}"
        )
        _check_keys(hosted, f"{path}.hosted_confirmation", _CUSTOM_MESSAGE_KEYS)
        custom_message = _leaf(hosted, "custom_message", f"{path}.hosted_confirmation")
    return AfterCompletion(
        type=completion_type,  # checked in stage 2
        return_url=return_url,
        custom_message=custom_message,
    )


def _parse_retention(value: object, parent: str) -> Retention:
    path = f"{parent}.retention"
    raw = _mapping(value, path, "{'type': 'coupon_offer', 'coupon_offer': {'coupon': '...'}}")
    _check_keys(raw, path, _RETENTION_KEYS)
    offer = raw.get("coupon_offer")
    if offer is None:
        _fail(f"{path}.coupon_offer", "required: pass {'coupon': 'COUPON_ID'}")
    offer = _mapping(offer, f"{path}.coupon_offer", "{'coupon': 'COUPON_ID'}")
    _check_keys(offer, f"{path}.coupon_offer", _COUPON_KEYS)
    return Retention(
        type=_leaf(raw, "type", path),
        coupon=_leaf(offer, "coupon", f"{path}.coupon_offer"),
    )


def _parse_items(value: object, path: str) -> tuple[UpdateConfirmItem, ...]:
    items = []
    for index, entry in enumerate(_sequence(value, path, "items")):
        item_path = f"{path}[{index}]"
        raw = _mapping(entry, item_path, "{'id': 'si_...', 'price': 'price_...'}")
        _check_keys(raw, item_path, _ITEM_KEYS)
        items.append(UpdateConfirmItem(**_pick(raw, _ITEM_KEYS, item_path)))
    return tuple(items)


def _parse_discounts(value: object, parent: str) -> tuple[UpdateConfirmDiscount, ...]:
    path = f"{parent}.discounts"
    discounts = []
    for index, entry in enumerate(_sequence(value, path, "discounts")):
        entry_path = f"{path}[{index}]"
        raw = _mapping(entry, entry_path, "{'coupon': 'COUPON_ID'}")
        _check_keys(raw, entry_path, _DISCOUNT_KEYS)
        discounts.append(UpdateConfirmDiscount(**_pick(raw, _DISCOUNT_KEYS, entry_path)))
    return tuple(discounts)


def _parse_after_expiration(value: object) -> AfterExpiration:
    path = "after_expiration"
    raw = _mapping(value, path, "{'type': 'customer_login'}")
    _check_keys(raw, path, _EXPIRATION_KEYS)
    expires_at = None
    if "customer_login" in raw:
        login = _mapping(
            raw["customer_login"], f"{path}.customer_login", "{'expires_at': 1735689600}"
        )
        _check_keys(login, f"{path}.customer_login", _LOGIN_KEYS)
        expires_at = _leaf(login, "expires_at", f"{path}.customer_login")
    return AfterExpiration(type=_leaf(raw, "type", path), expires_at=expires_at)


# -- stage 2: the contents of typed values -------------------------------------------


def _string(value: object, path: str, *, max_length: int = MAX_STRING) -> str:
    if not isinstance(value, str):
        _fail(path, f"expected a string, got {_kind(value)}")
    if not value:
        _fail(path, "must not be empty (Stripe reads an empty string as 'unset')")
    if len(value) > max_length:
        _fail(path, f"too long: at most {max_length} characters")
    if not value.isascii() and any("\ud800" <= char <= "\udfff" for char in value):
        _fail(path, "must be valid Unicode text: it contains a lone surrogate (U+D800-U+DFFF)")
    return value


def _is_id(value: object, prefix: str) -> bool:
    return (
        value.__class__ is str
        and len(value) <= MAX_STRING
        and _ID_MATCHERS[prefix](value) is not None
    )


def _stripe_id(value: object, path: str, prefix: str, what: str) -> None:
    if _is_id(value, prefix):
        return
    text = _string(value, path)
    if not text.startswith(prefix) or _ID_CHARS.fullmatch(text) is None:
        _fail(path, f"expected the ID of a {what}, starting with '{prefix}'")


def _required(value: object, path: str, hint: str) -> None:
    if value is None:
        _fail(path, f"required: {hint}")


def _integer(value: object, path: str, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, f"expected an integer, got {_kind(value)}")
    if value < minimum:
        _fail(path, f"must be {minimum} or more")


def _check_params(params: SessionCreateParams, allow_http_localhost: bool) -> None:
    if params.customer is None and params.customer_account is None:
        _fail(
            "customer",
            "required: pass the Stripe customer ID (cus_...) of the logged-in user "
            "(or customer_account for an Accounts v2 customer)",
        )
    if params.customer is not None and params.customer_account is not None:
        _fail("customer_account", "pass exactly one of customer and customer_account, not both")
    if params.customer is not None and not _is_id(params.customer, "cus_"):
        customer = _string(params.customer, "customer")
        if "@" in customer:
            _fail(
                "customer",
                "looks like an email address; pass the customer's Stripe ID (cus_...), "
                "stored on your user record or found with the Customers API",
            )
        _stripe_id(customer, "customer", "cus_", "Stripe customer")
    if params.customer_account is not None:
        _stripe_id(params.customer_account, "customer_account", "acct_", "Stripe account")
    if params.return_url is not None:
        check_return_url(params.return_url, "return_url", allow_http_localhost=allow_http_localhost)
    if params.configuration is not None:
        _stripe_id(params.configuration, "configuration", "bpc_", "portal configuration")
    if params.locale is not None and (
        not isinstance(params.locale, str) or params.locale not in LOCALES
    ):
        _fail("locale", f"unknown locale; use one of {_LOCALE_LIST}")
    if params.on_behalf_of is not None:
        _stripe_id(params.on_behalf_of, "on_behalf_of", "acct_", "connected account")
    if params.flow_data is not None:
        _check_flow_data(params.flow_data, allow_http_localhost)
    if params.after_expiration is not None:
        _check_after_expiration(params.after_expiration)
    if not isinstance(params.expand, tuple):
        _fail("expand", f"expected a tuple of strings, got {_kind(params.expand)}")
    for index, field in enumerate(params.expand):
        if field not in SESSION_EXPANDABLE:
            _check_expand(field, f"expand[{index}]")


def _check_flow_data(flow: object, allow_http_localhost: bool) -> None:
    if not isinstance(flow, FlowData) or type(flow) is FlowData:
        _fail(
            "flow_data",
            f"expected a flow built with FlowData's constructors, got {_kind(flow)}",
        )
    if flow.after_completion is not None:
        _check_after_completion(flow.after_completion, allow_http_localhost)
    if isinstance(flow, SubscriptionCancelFlow):
        _check_subscription(flow.subscription, flow.type, "cancel")
        if flow.retention is not None:
            _check_retention(flow.retention, f"flow_data.{flow.type}.retention")
    elif isinstance(flow, SubscriptionUpdateFlow):
        _check_subscription(flow.subscription, flow.type, "update")
    elif isinstance(flow, SubscriptionPauseFlow):
        _check_subscription(flow.subscription, flow.type, "pause")
    elif isinstance(flow, SubscriptionUpdateConfirmFlow):
        _check_subscription(flow.subscription, flow.type, "update")
        _check_items(flow.items, f"flow_data.{flow.type}.items")
        if flow.discounts is not None:
            _check_discounts(flow.discounts, f"flow_data.{flow.type}.discounts")


def _check_subscription(subscription: object, flow_type: str, verb: str) -> None:
    if _is_id(subscription, "sub_"):
        return
    path = f"flow_data.{flow_type}.subscription"
    _required(subscription, path, f"the ID (sub_...) of the subscription to {verb}")
    _stripe_id(subscription, path, "sub_", "subscription")


def _check_items(items: object, path: str) -> None:
    if not isinstance(items, tuple):
        _fail(path, f"expected a tuple of UpdateConfirmItem, got {_kind(items)}")
    if not items:
        _fail(
            path,
            "required: a non-empty list of items, each with the subscription item's id (si_...) "
            "and the new price and/or quantity",
        )
    if len(items) > MAX_CONFIRM_ITEMS:
        _fail(
            f"{path}[{MAX_CONFIRM_ITEMS}]",
            f"Stripe accepts at most {MAX_CONFIRM_ITEMS} item here today; confirm one subscription "
            "item's change per session",
        )
    for index, item in enumerate(items):
        if not isinstance(item, UpdateConfirmItem):
            _fail(f"{path}[{index}]", f"expected an UpdateConfirmItem, got {_kind(item)}")
        if not _is_id(item.id, "si_"):
            _required(item.id, f"{path}[{index}].id", "the subscription item's ID (si_...)")
            _stripe_id(item.id, f"{path}[{index}].id", "si_", "subscription item")
        price = item.price
        if price is not None and not (
            price.__class__ is str and 0 < len(price) <= MAX_STRING and price.isascii()
        ):
            _string(price, f"{path}[{index}].price")
        quantity = item.quantity
        if quantity is not None and not (quantity.__class__ is int and quantity >= 0):
            _integer(quantity, f"{path}[{index}].quantity", minimum=0)
        if price is None and quantity is None:
            _fail(
                f"{path}[{index}]",
                "pass the new price (price_...) or quantity (or both) beside the item's id",
            )


def _check_expand(field: object, path: str) -> None:
    _string(field, path)
    assert isinstance(field, str)
    if field.count(".") >= MAX_EXPAND_DEPTH:
        _fail(path, f"Stripe expands at most {MAX_EXPAND_DEPTH} levels (a.b.c.d)")
    head = field.partition(".")[0]
    near = sorted(p for p in SESSION_EXPANDABLE if p.partition(".")[0] == head) or sorted(
        p for p in SESSION_EXPANDABLE if "." not in p
    )
    _fail(
        path,
        f"{field[:80]!r} is not expandable on a portal session; use one of "
        f"{', '.join(near)} (every path: lattice_stripe.core.expand.SESSION_EXPANDABLE)",
    )


def _check_discounts(discounts: object, path: str) -> None:
    if not isinstance(discounts, tuple):
        _fail(path, f"expected a tuple of UpdateConfirmDiscount, got {_kind(discounts)}")
    for index, discount in enumerate(discounts):
        entry_path = f"{path}[{index}]"
        if not isinstance(discount, UpdateConfirmDiscount):
            _fail(entry_path, f"expected an UpdateConfirmDiscount, got {_kind(discount)}")
        if (discount.coupon is None) == (discount.promotion_code is None):
            _fail(entry_path, "pass exactly one of coupon and promotion_code")
        if discount.coupon is not None:
            _string(discount.coupon, f"{entry_path}.coupon")
        if discount.promotion_code is not None:
            _string(discount.promotion_code, f"{entry_path}.promotion_code")


def _check_retention(retention: object, path: str) -> None:
    if not isinstance(retention, Retention):
        _fail(path, f"expected a Retention, got {_kind(retention)}")
    if retention.type != "coupon_offer":
        _fail(f"{path}.type", "required; the only retention type is 'coupon_offer'")
    _required(retention.coupon, f"{path}.coupon_offer.coupon", "the ID of the coupon to offer")
    _string(retention.coupon, f"{path}.coupon_offer.coupon")


def _check_after_completion(completion: object, allow_http_localhost: bool) -> None:
    path = "flow_data.after_completion"
    if not isinstance(completion, AfterCompletion):
        _fail(path, f"expected an AfterCompletion, got {_kind(completion)}")
    if completion.type is None:
        _fail(f"{path}.type", f"required; use one of {_AFTER_COMPLETION_LIST}")
    if not isinstance(completion.type, str) or completion.type not in AFTER_COMPLETION_TYPES:
        _fail(f"{path}.type", f"unknown type; use one of {_AFTER_COMPLETION_LIST}")
    if completion.type == "redirect":
        _required(
            completion.return_url,
            f"{path}.redirect.return_url",
            "where to send the customer after the flow (absolute https URL)",
        )
    elif completion.return_url is not None:
        _fail(f"{path}.redirect", f"only allowed when {path}.type is 'redirect'")
    if completion.return_url is not None:
        check_return_url(
            completion.return_url,
            _AFTER_COMPLETION_RETURN_URL,
            allow_http_localhost=allow_http_localhost,
        )
    if completion.custom_message is not None:
        if completion.type != "hosted_confirmation":
            _fail(
                f"{path}.hosted_confirmation",
                f"only allowed when {path}.type is 'hosted_confirmation'",
            )
        _string(
            completion.custom_message,
            f"{path}.hosted_confirmation.custom_message",
            max_length=MAX_CUSTOM_MESSAGE,
        )


def _check_after_expiration(expiration: object) -> None:
    if not isinstance(expiration, AfterExpiration):
        _fail("after_expiration", f"expected an AfterExpiration, got {_kind(expiration)}")
    if expiration.type != "customer_login":
        _fail("after_expiration.type", "required; the only type is 'customer_login'")
    if expiration.expires_at is not None:
        _integer(expiration.expires_at, "after_expiration.customer_login.expires_at", minimum=1)


def check_return_url(url: object, path: str, *, allow_http_localhost: bool = False) -> str:
    """Check that ``url`` is a safe absolute https URL to send a customer to.

    Rejected: any scheme but https (``javascript:``, ``data:``, ``http:``),
    relative and protocol-relative URLs, user info (``https://bank.com@evil``),
    whitespace, control characters, backslashes, and non-ASCII text (a host must
    be in its punycode ``xn--`` form, which defeats look-alike characters).
    With ``allow_http_localhost``, ``http://localhost``, ``127.0.0.1`` and
    ``[::1]`` are accepted too.
    """
    if url.__class__ is str and len(url) <= MAX_STRING and _PLAIN_HTTPS_URL.fullmatch(url):
        return url
    text = _string(url, path)
    absolute = "must be an absolute https:// URL, e.g. request.url_for('account')"
    if not text.isascii():
        _fail(
            path,
            "must be ASCII: percent-encode the path and write the host in its punycode (xn--) form",
        )
    if any(char <= " " or char in "\x7f\\" for char in text):
        _fail(path, "must not contain whitespace, control characters or backslashes")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        _fail(path, f"is not a well-formed URL; it {absolute}")
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    is_local = f"[{host}]" in _LOCAL_HOSTS if ":" in host else host in _LOCAL_HOSTS
    if scheme == "http" and allow_http_localhost and is_local:
        pass
    elif scheme != "https":
        hint = (
            " (http://localhost needs allow_http_localhost=True, for local development)"
            if scheme == "http" and is_local
            else ""
        )
        _fail(path, f"{absolute}{hint}")
    if not parts.netloc or not host:
        _fail(path, absolute)
    if "@" in parts.netloc:
        _fail(path, "must not contain user info (user@host): it is a phishing trick")
    if port == 0:
        _fail(path, "has an invalid port")
    if ":" in host or parts.netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            _fail(path, "has an invalid IPv6 host")
    elif not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
        _fail(path, "has an invalid host name")
    return text
