"""The emulated REST API under ``/v1``: Stripe's protocol, checked as Stripe checks it.

Every ``/v1`` call passes :func:`api_call` first: the API key (Bearer, or
Basic with the key as user name, as ``curl -u`` sends it), the
``Stripe-Version`` header, and ``Idempotency-Key`` replay for POSTs (a 409
while the first request with the key is still running). Handlers
read the form body with :func:`lattice_stripe.core.codec.decode_form`,
validate it with :mod:`lattice_stripe.emulator._validation` and the state's
rules, and answer with Stripe's JSON objects or Stripe's error shape.
"""

import base64
import binascii
import hmac
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import web

from lattice_stripe.core.codec import decode_form
from lattice_stripe.core.config import API_VERSION
from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.expand import MAX_EXPAND_DEPTH, SESSION_EXPANDABLE
from lattice_stripe.core.flow import MAX_IDEMPOTENCY_KEY
from lattice_stripe.core.guard import check_return_url
from lattice_stripe.core.redaction import mask_key
from lattice_stripe.emulator._engine import EMULATOR, Emulator, IdempotentResult, remember
from lattice_stripe.emulator._state import Customer, PortalSession, Store, Subscription, new_id
from lattice_stripe.emulator._validation import (
    CUSTOMER_CREATE,
    EXPAND_ONLY,
    SESSION_CREATE,
    SUBSCRIPTION_CREATE,
    ApiError,
    check,
    missing,
    no_such,
)

__all__ = [
    "REQUEST_ID",
    "api_call",
    "authenticate",
    "error_response",
    "json_response",
    "routes",
]

REQUEST_ID = web.RequestKey("request_id", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_T = TypeVar("_T")

_IDEMPOTENCY_WINDOW = 24 * 3600
# The spec's POST /v1/subscriptions: "up to 500 active or scheduled subscriptions" per customer.
_MAX_SUBSCRIPTIONS = 500
_VERSION = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(\.[a-z]+)?")
_SUBSCRIPTION_FLOWS = (
    "subscription_cancel",
    "subscription_pause",
    "subscription_update",
    "subscription_update_confirm",
)
_FLOW_FEATURE = {
    "customer_update": "customer_update",
    "payment_method_update": "payment_method_update",
    "subscription_cancel": "subscription_cancel",
    "subscription_update": "subscription_update",
    "subscription_update_confirm": "subscription_update",
}


def json_response(request: web.Request, body: object, *, status: int = 200) -> web.Response:
    """A Stripe JSON answer (pretty-printed, as Stripe sends it)."""
    return web.Response(
        status=status,
        body=json.dumps(body, indent=2).encode(),
        content_type="application/json",
        headers={"Stripe-Version": request.headers.get("Stripe-Version", API_VERSION)},
    )


def error_response(request: web.Request, error: ApiError) -> web.Response:
    """An error in Stripe's shape, with ``WWW-Authenticate`` on a 401."""
    response = json_response(request, error.to_json(), status=error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="Stripe"'
    return response


def unrecognized(request: web.Request) -> ApiError:
    """Stripe's 404 for a URL or method it does not serve."""
    return ApiError(
        f"Unrecognized request URL ({request.method}: {request.path}). "
        "Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
        status=404,
    )


# -- the protocol ----------------------------------------------------------------------


def _presented_key(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    if scheme.lower() == "basic" and credentials.strip():
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        user = decoded.partition(":")[0]
        if user:
            return user
    raise ApiError(
        "You did not provide an API key. You need to provide your API key in the "
        "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
        "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
        "or we can help at https://support.stripe.com/.",
        status=401,
    )


def authenticate(request: web.Request) -> None:
    """Refuse, with Stripe's 401, a request that does not carry the emulator's API key."""
    key = _presented_key(request)
    expected = request.app[EMULATOR].api_key.encode()
    # aiohttp keeps header bytes that are not UTF-8 as surrogates: encode them back, never crash.
    if not hmac.compare_digest(key.encode("utf-8", "surrogateescape"), expected):
        raise ApiError(f"Invalid API Key provided: {mask_key(key)}", status=401)


async def api_call(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, check the version header, then run ``handler`` (replaying POSTs)."""
    emulator = request.app[EMULATOR]
    authenticate(request)
    version = request.headers.get("Stripe-Version")
    if version is not None and _VERSION.fullmatch(version) is None:
        raise ApiError(f"Invalid Stripe API version: {version[:40]}", param="Stripe-Version")
    idempotency_key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or idempotency_key is None:
        return await handler(request)
    return await _idempotent(request, handler, emulator, idempotency_key)


async def _idempotent(
    request: web.Request, handler: Handler, emulator: Emulator, key: str
) -> web.StreamResponse:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise ApiError(
            f"Invalid Idempotency-Key: must be 1 to {MAX_IDEMPOTENCY_KEY} characters.",
            param="Idempotency-Key",
        )
    params = await form(request)
    now = emulator.clock()
    _forget_expired(emulator.idempotent, now)
    saved = emulator.idempotent.get(key)
    if saved is not None:
        if (saved.method, saved.path, saved.params) != (request.method, request.path, params):
            raise ApiError(
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key[:40]}' if you meant "
                "to execute a different request.",
                type="idempotency_error",
            )
        return web.Response(
            status=saved.status,
            body=saved.body,
            content_type="application/json",
            headers={
                "Idempotency-Key": key,
                "Idempotent-Replayed": "true",
                "Original-Request": saved.request_id,
                "Stripe-Version": request.headers.get("Stripe-Version", API_VERSION),
            },
        )
    if key in emulator.in_flight:
        raise ApiError(
            "There is currently another in-progress request using this Idempotent Key "
            "(that probably means you submitted twice, and the other request is still "
            f"going through): {key[:40]}",
            status=409,
            type="idempotency_error",
            code="idempotency_key_in_use",
        )
    emulator.in_flight.add(key)
    try:
        response = await handler(request)
    finally:
        emulator.in_flight.discard(key)
    response.headers["Idempotency-Key"] = key
    if (
        isinstance(response, web.Response)
        and isinstance(response.body, bytes)
        and 200 <= response.status < 300
    ):
        result = IdempotentResult(
            method=request.method,
            path=request.path,
            params=params,
            status=response.status,
            body=response.body,
            request_id=request[REQUEST_ID],
            created=now,
        )
        remember(emulator.idempotent, key, result, emulator.max_remembered)
    return response


def _forget_expired(saved: dict[str, IdempotentResult], now: float) -> None:
    # Our own clients send a key with every POST: without this the memory grows per request.
    # Entries are kept in the order they were saved, so the expired ones are at the front.
    while saved:
        key, result = next(iter(saved.items()))
        if now - result.created <= _IDEMPOTENCY_WINDOW:
            return
        del saved[key]


async def form(request: web.Request) -> dict[str, Any]:
    """The form body as nested params (Stripe's ``a[b][0]=...`` notation)."""
    try:
        return decode_form(await request.read())
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(f"Invalid request body: {error}") from None


def query(request: web.Request) -> dict[str, Any]:
    """The query string as nested params."""
    try:
        # The raw string: aiohttp's ``query_string`` is already percent-decoded once.
        return decode_form(request.rel_url.raw_query_string)
    except ValueError as error:
        raise ApiError(f"Invalid query string: {error}") from None


# -- billing portal sessions -------------------------------------------------------------


def _check_url(value: str, param: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(char <= " " for char in value)
    ):
        raise ApiError("Not a valid URL", param=param, code="url_invalid")
    # The library's own rules for where a customer is sent (no backslash, no user info such as
    # bank.example\@evil.example, an ASCII host), applied to the scheme and host: plain http
    # stays allowed, as in Stripe's test mode, and the spec sets no length limit on the rest.
    refused = ApiError("Not a valid URL", param=param, code="url_invalid")
    if "\\" in value:
        raise refused
    try:
        check_return_url(f"https://{parts.netloc}/", param)
    except ValidationError:
        raise refused from None
    return value


def _own_subscription(store: Store, customer: Customer, sub_id: str, param: str) -> Subscription:
    sub = store.subscriptions.get(sub_id)
    if sub is None:
        raise no_such("subscription", sub_id, param)
    if sub.customer != customer.id:
        raise ApiError(
            f"The subscription {sub_id} does not belong to the customer {customer.id}.",
            param=param,
        )
    if not sub.is_live:
        raise ApiError(
            f"The subscription {sub_id} is canceled; the portal cannot change it.", param=param
        )
    return sub


def _after_completion(raw: dict[str, Any] | None) -> dict[str, Any]:
    completion = raw or {"type": "portal_homepage"}
    kind = completion["type"]
    for key in ("redirect", "hosted_confirmation"):
        if key in completion and kind != key:
            raise ApiError(
                f"You can only pass flow_data[after_completion][{key}] when "
                f"flow_data[after_completion][type] is {key}.",
                param=f"flow_data[after_completion][{key}]",
            )
    if kind == "redirect":
        if "redirect" not in completion:
            raise missing("flow_data[after_completion][redirect]")
        _check_url(
            completion["redirect"]["return_url"],
            "flow_data[after_completion][redirect][return_url]",
        )
    hosted = completion.get("hosted_confirmation") or {}
    return {
        "hosted_confirmation": (
            {"custom_message": hosted.get("custom_message")}
            if kind == "hosted_confirmation"
            else None
        ),
        "redirect": completion.get("redirect") if kind == "redirect" else None,
        "type": kind,
    }


def _update_confirm(
    store: Store, sub: Subscription, raw: dict[str, Any], param: str, configuration: dict[str, Any]
) -> dict[str, Any]:
    items = raw["items"]
    if len(items) != 1:
        raise ApiError(
            f"{param}[items] must hold exactly one item: currently, only up to one may be "
            "specified, and subscriptions with multiple items are not updatable.",
            param=f"{param}[items]",
        )
    if len(sub.items) != 1:
        raise ApiError(
            f"The subscription {sub.id} has several items; the portal cannot update it.",
            param=f"{param}[subscription]",
        )
    item, current = items[0], sub.items[0]
    item_param = f"{param}[items][0]"
    if item["id"] != current.id:
        raise ApiError(
            f"The subscription item {item['id']} does not belong to the subscription {sub.id}.",
            param=f"{item_param}[id]",
        )
    if "price" not in item and "quantity" not in item:
        raise ApiError(f"Pass a new price or quantity for {item_param}.", param=item_param)
    price = item.get("price", current.price)
    if "price" in item:
        if price not in store.prices:
            raise no_such("price", price, f"{item_param}[price]")
        if price not in store.offered_prices(configuration):
            raise ApiError(
                f"The price {price} is not offered in the portal configuration's "
                "features.subscription_update.products.",
                param=f"{item_param}[price]",
            )
    quantity = item.get("quantity", current.quantity)
    if "quantity" in item:
        limits = store.quantity_limits(price, configuration)
        if limits is None and quantity != current.quantity:
            raise ApiError(
                f"The quantity of {price} is not adjustable in the portal configuration.",
                param=f"{item_param}[quantity]",
            )
        low, high = limits or (quantity, quantity)
        if quantity < low or (high is not None and quantity > high):
            raise ApiError(
                f"Invalid {item_param}[quantity]: must be between {low} and {high}.",
                param=f"{item_param}[quantity]",
            )
    discounts = []
    for index, discount in enumerate(raw.get("discounts", [])):
        discount_param = f"{param}[discounts][{index}]"
        if ("coupon" in discount) == ("promotion_code" in discount):
            raise ApiError(
                f"Pass exactly one of coupon and promotion_code in {discount_param}.",
                param=discount_param,
            )
        if "coupon" in discount and discount["coupon"] not in store.coupons:
            raise no_such("coupon", discount["coupon"], f"{discount_param}[coupon]")
        code = discount.get("promotion_code")
        if code is not None and code not in store.promotion_codes:
            raise no_such("promotion code", code, f"{discount_param}[promotion_code]")
        discounts.append({"coupon": discount.get("coupon"), "promotion_code": code})
    return {
        "discounts": discounts or None,
        "items": [{"id": current.id, "price": item.get("price"), "quantity": quantity}],
        "subscription": sub.id,
    }


def _flow(
    store: Store, customer: Customer, raw: dict[str, Any], configuration: dict[str, Any]
) -> dict[str, Any]:
    flow_type = raw["type"]
    for other in _SUBSCRIPTION_FLOWS:
        if other in raw and other != flow_type:
            raise ApiError(
                f"You can only pass flow_data[{other}] when flow_data[type] is {other}.",
                param=f"flow_data[{other}]",
            )
    feature = _FLOW_FEATURE.get(flow_type, flow_type)
    # subscription_pause is optional in a configuration: absent, pausing stays offered.
    if not store.feature(feature, configuration).get("enabled", feature == "subscription_pause"):
        raise ApiError(
            f"The {feature} feature is disabled in the portal configuration "
            f"{configuration['id']}, so a session cannot start the {flow_type} flow. Enable "
            f"features[{feature}][enabled] in that configuration, or pass another one.",
            param="flow_data[type]",
        )
    flow: dict[str, Any] = {
        "after_completion": _after_completion(raw.get("after_completion")),
        "customer_update": {} if flow_type == "customer_update" else None,
        **{name: None for name in _SUBSCRIPTION_FLOWS},
        "type": flow_type,
    }
    if flow_type not in _SUBSCRIPTION_FLOWS:
        return flow
    param = f"flow_data[{flow_type}]"
    if flow_type not in raw:
        raise missing(param)
    detail = raw[flow_type]
    sub = _own_subscription(store, customer, detail["subscription"], f"{param}[subscription]")
    if flow_type == "subscription_cancel":
        if sub.cancel_at_period_end:
            raise ApiError(
                f"The subscription {sub.id} is already set to cancel at the end of its period.",
                param=f"{param}[subscription]",
            )
        retention = detail.get("retention")
        if retention is not None:
            coupon = retention["coupon_offer"]["coupon"]
            if coupon not in store.coupons:
                raise no_such("coupon", coupon, f"{param}[retention][coupon_offer][coupon]")
        flow[flow_type] = {"retention": retention, "subscription": sub.id}
    elif flow_type == "subscription_update_confirm":
        flow[flow_type] = _update_confirm(store, sub, detail, param, configuration)
    else:
        if flow_type == "subscription_pause" and sub.pause_collection is not None:
            raise ApiError(
                f"The subscription {sub.id} is already paused.", param=f"{param}[subscription]"
            )
        flow[flow_type] = {"subscription": sub.id}
    return flow


def _expansions(fields: list[str]) -> tuple[str, ...]:
    """The ``expand`` paths, each one the spec marks expandable (Stripe's errors otherwise)."""
    for index, field in enumerate(fields):
        if field.count(".") >= MAX_EXPAND_DEPTH:
            raise ApiError(
                f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property. "
                f"Property: {field[:200]}",
                param=f"expand[{index}]",
            )
        if field not in SESSION_EXPANDABLE:
            raise ApiError(
                f"This property cannot be expanded ({field[:200]}).", param=f"expand[{index}]"
            )
    return tuple(fields)


def _base_url(request: web.Request, emulator: Emulator) -> str:
    # Configured, or where the emulator listens: never the Host header, which the client chooses.
    url = emulator.public_url or emulator.bound_url
    if url is None:
        host, port = (
            request.transport.get_extra_info("sockname")[:2] if request.transport else ("", 0)
        )
        url = f"http://{host}:{port}"
    return url


async def create_session(request: web.Request) -> web.Response:
    """``POST /v1/billing_portal/sessions``."""
    emulator = request.app[EMULATOR]
    store = emulator.store
    params = check(SESSION_CREATE, await form(request))
    if "customer" in params and "customer_account" in params:
        raise ApiError(
            "You may only specify one of these parameters: customer, customer_account.",
            param="customer_account",
        )
    customer: Customer | None
    if "customer" in params:
        customer = store.customers.get(params["customer"])
        if customer is None:
            raise no_such("customer", params["customer"], "customer")
    elif "customer_account" in params:
        customer = store.customer_by_account(params["customer_account"])
        if customer is None:
            raise no_such("account", params["customer_account"], "customer_account")
    else:
        raise missing("customer")
    chosen = store.configurations.get(params.get("configuration", store.configuration["id"]))
    if chosen is None:
        raise no_such("configuration", params["configuration"], "configuration")
    if not chosen["active"]:
        raise ApiError(
            f"The configuration {chosen['id']} is not active; activate it or pass another.",
            param="configuration",
        )
    return_url = params.get("return_url", chosen.get("default_return_url"))
    if return_url is not None:
        _check_url(return_url, "return_url")
    now = emulator.clock()
    expiration = params.get("after_expiration")
    if expiration is not None:
        expires_at = expiration.get("customer_login", {}).get("expires_at")
        if expires_at is not None and expires_at <= now:
            raise ApiError(
                "after_expiration[customer_login][expires_at] must be in the future.",
                param="after_expiration[customer_login][expires_at]",
            )
        expiration = {"customer_login": {"expires_at": expires_at}, "type": "customer_login"}
    expand = _expansions(params.get("expand", ()))
    flow = (
        None if "flow_data" not in params else _flow(store, customer, params["flow_data"], chosen)
    )
    token = "test_" + secrets.token_urlsafe(32)
    session = PortalSession(
        id=new_id("bps"),
        token=token,
        url=f"{_base_url(request, emulator)}/p/session/{token}",
        customer=customer.id,
        customer_account=params.get("customer_account"),
        created=int(now),
        expires_at=now + emulator.session_ttl,
        return_url=return_url,
        locale=params.get("locale"),
        on_behalf_of=params.get("on_behalf_of"),
        flow=flow,
        after_expiration=expiration,
        configuration=chosen["id"],
    )
    remember(store.sessions, token, session, emulator.max_remembered)
    return json_response(request, store.session_json(session, expand=expand))


# -- customers, subscriptions, payment methods ------------------------------------------


async def create_customer(request: web.Request) -> web.Response:
    """``POST /v1/customers``: a new customer, and a ``customer.created`` event."""
    emulator = request.app[EMULATOR]
    params = check(CUSTOMER_CREATE, await form(request))
    customer, changes = emulator.store.create_customer(params)
    emulator.webhooks.publish(changes, request_id=request[REQUEST_ID])
    return json_response(request, emulator.store.customer_json(customer))


def _retrieve(
    request: web.Request, objects: Mapping[str, _T], what: str, render: Callable[[_T], object]
) -> web.Response:
    check(EXPAND_ONLY, query(request))
    found = objects.get(request.match_info["id"])
    if found is None:
        raise no_such(what, request.match_info["id"][:100], "id", status=404)
    return json_response(request, render(found))


async def get_customer(request: web.Request) -> web.Response:
    """``GET /v1/customers/{id}``."""
    store = request.app[EMULATOR].store
    return _retrieve(request, store.customers, "customer", store.customer_json)


async def get_subscription(request: web.Request) -> web.Response:
    """``GET /v1/subscriptions/{id}``."""
    store = request.app[EMULATOR].store
    return _retrieve(request, store.subscriptions, "subscription", store.subscription_json)


async def create_subscription(request: web.Request) -> web.Response:
    """``POST /v1/subscriptions``: one item, an active price; ``customer.subscription.created``."""
    emulator = request.app[EMULATOR]
    store = emulator.store
    params = check(SUBSCRIPTION_CREATE, await form(request))
    customer = store.customers.get(params["customer"])
    if customer is None:
        raise no_such("customer", params["customer"], "customer")
    live = [sub for sub in store.subscriptions_of(customer.id) if sub.is_live]
    if len(live) >= _MAX_SUBSCRIPTIONS:
        raise ApiError(
            f"The customer {customer.id} already has {_MAX_SUBSCRIPTIONS} active subscriptions, "
            "the most Stripe allows.",
            param="customer",
        )
    items = params["items"]
    if len(items) != 1:
        raise ApiError("The emulator creates subscriptions of exactly one item.", param="items")
    price = store.prices.get(items[0]["price"])
    if price is None:
        raise no_such("price", items[0]["price"], "items[0][price]")
    if not price.active:
        raise ApiError(
            "The price specified is inactive. This field only accepts active prices.",
            param="items[0][price]",
        )
    sub, changes = store.create_subscription(
        customer, price=price.id, quantity=items[0].get("quantity", 1)
    )
    emulator.webhooks.publish(changes, request_id=request[REQUEST_ID])
    return json_response(request, store.subscription_json(sub))


async def get_payment_method(request: web.Request) -> web.Response:
    """``GET /v1/payment_methods/{id}``."""
    store = request.app[EMULATOR].store
    return _retrieve(request, store.payment_methods, "payment_method", store.payment_method_json)


def routes() -> list[web.RouteDef]:
    """The ``/v1`` routes."""
    from lattice_stripe.emulator._configurations import configuration_routes
    from lattice_stripe.emulator._customers import customer_routes

    return [
        *configuration_routes(),
        *customer_routes(),
        web.post("/v1/billing_portal/sessions", create_session),
        web.post("/v1/customers", create_customer),
        web.get("/v1/customers/{id}", get_customer, allow_head=False),
        web.post("/v1/subscriptions", create_subscription),
        web.get("/v1/subscriptions/{id}", get_subscription, allow_head=False),
        web.get("/v1/payment_methods/{id}", get_payment_method, allow_head=False),
    ]
