"""``/v1/billing_portal/configurations``: create, retrieve, update and list, as Stripe does them.

New configurations start from Stripe's defaults (every feature present,
disabled), are never the default and are active; ``livemode`` follows the
key. Lists are newest first, paged with ``starting_after``/``ending_before``.
Creates and updates publish signed ``billing_portal.configuration.created`` /
``.updated`` events (the latter with ``previous_attributes``). Validation is
the emulator's own (:mod:`lattice_stripe.emulator._validation`), independent of
the client library's guard, with Stripe's error shape and ``param``.
"""

import copy
import itertools
from collections.abc import Mapping
from typing import Any, get_args

from aiohttp import web

from lattice_stripe.core.configuration import (
    CancellationOption,
    CustomerUpdate,
    ProrationBehavior,
    SubscriptionUpdate,
    default_configuration_json,
)
from lattice_stripe.emulator._api import REQUEST_ID, form, json_response, query
from lattice_stripe.emulator._engine import EMULATOR
from lattice_stripe.emulator._state import Change, Store, diff, new_id
from lattice_stripe.emulator._validation import (
    ApiError,
    Array,
    Boolean,
    Enum,
    Hash,
    Integer,
    MapOf,
    Schema,
    String,
    check,
    missing,
    no_such,
)

__all__ = ["configuration_routes", "new_configuration"]

JSON = dict[str, Any]
_PATH = "/v1/billing_portal/configurations"
_PRORATION = Enum(get_args(ProrationBehavior))
_URL = String(max_length=None, clearable=True)


def _features(creating: bool) -> Hash:
    enabled = ("enabled",) if creating else ()
    return Hash(
        {
            "customer_update": Hash(
                {
                    "allowed_updates": Array(
                        Enum(get_args(CustomerUpdate)),
                        clearable=True,
                    ),
                    "enabled": Boolean(),
                },
                required=enabled,
            ),
            "invoice_history": Hash({"enabled": Boolean()}, required=("enabled",)),
            "payment_method_update": Hash(
                {"enabled": Boolean(), "payment_method_configuration": String(clearable=True)},
                required=("enabled",),
            ),
            "subscription_cancel": Hash(
                {
                    "cancellation_reason": Hash(
                        {
                            "enabled": Boolean(),
                            "feedback_options": Array(String(), clearable=True),
                            "options": Array(
                                Enum(get_args(CancellationOption)),
                                clearable=True,
                            ),
                        },
                        required=("enabled", "options") if creating else ("enabled",),
                    ),
                    "enabled": Boolean(),
                    "mode": Enum(("at_period_end", "immediately")),
                    "proration_behavior": _PRORATION,
                },
                required=enabled,
            ),
            "subscription_pause": Hash(
                {
                    "duration": Hash(
                        {
                            "interval_options": Array(
                                Hash(
                                    {
                                        "interval": Enum(("day", "month", "week", "year")),
                                        "interval_count": Integer(minimum=1),
                                    },
                                    required=("interval",),
                                ),
                                clearable=True,
                            ),
                            "type": Enum(("indefinite", "interval_options")),
                        },
                        required=("type",),
                    ),
                    "enabled": Boolean(),
                }
            ),
            "subscription_update": Hash(
                {
                    "billing_cycle_anchor": Enum(("now", "unchanged")),
                    "default_allowed_updates": Array(
                        Enum(get_args(SubscriptionUpdate)), clearable=True
                    ),
                    "enabled": Boolean(),
                    "products": Array(
                        Hash(
                            {
                                "adjustable_quantity": Hash(
                                    {
                                        "enabled": Boolean(),
                                        "maximum": Integer(minimum=1),
                                        "minimum": Integer(minimum=0),
                                    },
                                    required=("enabled",),
                                ),
                                "prices": Array(String()),
                                "product": String(),
                            },
                            required=("prices", "product"),
                        ),
                        clearable=True,
                    ),
                    "proration_behavior": _PRORATION,
                    "schedule_at_period_end": Hash(
                        {
                            "conditions": Array(
                                Hash(
                                    {
                                        "type": Enum(
                                            ("decreasing_item_amount", "shortening_interval")
                                        )
                                    },
                                    required=("type",),
                                ),
                                clearable=True,
                            )
                        }
                    ),
                    "trial_update_behavior": Enum(("continue_trial", "end_trial")),
                },
                required=enabled,
            ),
        }
    )


def _schema(creating: bool) -> Hash:
    fields: dict[str, Schema] = {
        "business_profile": Hash(
            {
                "headline": String(max_length=60, clearable=True),
                "privacy_policy_url": _URL,
                "terms_of_service_url": _URL,
            }
        ),
        "default_return_url": _URL,
        "expand": Array(String()),
        "features": _features(creating),
        "login_page": Hash({"enabled": Boolean()}, required=("enabled",)),
        "metadata": MapOf(String(max_length=500, clearable=True)),
        "name": String(max_length=256, clearable=True),
    }
    if not creating:
        fields["active"] = Boolean()
    return Hash(fields, required=("features",) if creating else ())


CREATE = _schema(creating=True)
UPDATE = _schema(creating=False)
LIST = Hash(
    {
        "active": Boolean(),
        "ending_before": String(),
        "expand": Array(String()),
        "is_default": Boolean(),
        "limit": Integer(minimum=1),
        "starting_after": String(),
    }
)
RETRIEVE = Hash({"expand": Array(String())})

_PRODUCT_DEFAULTS: JSON = {"adjustable_quantity": {"enabled": False, "maximum": None, "minimum": 1}}
_order = itertools.count()


def new_configuration(now: int, livemode: bool) -> JSON:
    """A configuration with Stripe's defaults: active, not the default, every feature off."""
    return default_configuration_json(
        id=new_id("bpc"), created=now, livemode=livemode, is_default=False
    )


async def _params(request: web.Request, schema: Hash) -> dict[str, Any]:
    """The checked form; ``metadata=`` (Stripe's empty value) reads as "remove every key"."""
    raw = await form(request)
    clear_metadata = raw.get("metadata") == ""
    if clear_metadata:
        del raw["metadata"]
    params: dict[str, Any] = check(schema, raw)
    if clear_metadata:
        params["metadata"] = _CLEAR_ALL
    return params


_CLEAR_ALL: JSON = {}


def _merge(target: JSON, changes: Mapping[str, Any]) -> None:
    """Apply checked params: hashes merge, lists and plain values replace."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _apply(store: Store, configuration: JSON, params: Mapping[str, Any], login_url: str) -> None:
    changes = {key: value for key, value in params.items() if key not in ("expand", "metadata")}
    products = changes.get("features", {}).get("subscription_update", {}).get("products")
    if products is not None:
        _check_products(store, products)
        changes["features"]["subscription_update"]["products"] = [
            {**copy.deepcopy(_PRODUCT_DEFAULTS), **product} for product in products
        ]
        for product in changes["features"]["subscription_update"]["products"]:
            product["adjustable_quantity"] = {
                **_PRODUCT_DEFAULTS["adjustable_quantity"],
                **product["adjustable_quantity"],
            }
    _merge(configuration, changes)
    metadata = params.get("metadata")
    if metadata is _CLEAR_ALL:
        configuration["metadata"] = {}
    elif metadata is not None:
        stored = configuration["metadata"]
        for key, value in metadata.items():
            if value is None:
                stored.pop(key, None)
            else:
                stored[key] = value
    _check_cancel(configuration["features"]["subscription_cancel"])
    login = configuration["login_page"]
    login["url"] = login_url if login["enabled"] else None


def _check_products(store: Store, products: list[JSON]) -> None:
    param = "features[subscription_update][products]"
    if len(products) > 10:
        raise ApiError("You can specify up to 10 products.", param=param)
    for index, product in enumerate(products):
        if product["product"] not in store.products:
            raise no_such("product", product["product"], f"{param}[{index}][product]")
        if not product["prices"]:
            raise missing(f"{param}[{index}][prices]")
        for number, price_id in enumerate(product["prices"]):
            price = store.prices.get(price_id)
            if price is None:
                raise no_such("price", price_id, f"{param}[{index}][prices][{number}]")
            if price.product != product["product"]:
                raise ApiError(
                    f"The price {price_id} does not belong to product {product['product']}.",
                    param=f"{param}[{index}][prices][{number}]",
                )


def _check_cancel(cancel: JSON) -> None:
    param = "features[subscription_cancel][proration_behavior]"
    if cancel["proration_behavior"] == "always_invoice":
        raise ApiError(
            "always_invoice is not supported for subscription cancellations.", param=param
        )
    if cancel["proration_behavior"] == "create_prorations" and cancel["mode"] != "immediately":
        raise ApiError("create_prorations is only compatible with mode=immediately.", param=param)


def _livemode(request: web.Request) -> bool:
    return "_live_" in request.app[EMULATOR].api_key


def _login_url(request: web.Request, configuration: JSON) -> str:
    emulator = request.app[EMULATOR]
    base = emulator.public_url or f"{request.scheme}://{request.host}"
    return f"{base}/p/login/{configuration['id']}"


def _find(store: Store, configuration_id: str) -> JSON:
    found = store.configurations.get(configuration_id)
    if found is None:
        raise no_such(
            "billing portal configuration", configuration_id[:100], "configuration", status=404
        )
    return found


async def create_configuration(request: web.Request) -> web.Response:
    """``POST /v1/billing_portal/configurations``."""
    emulator = request.app[EMULATOR]
    store = emulator.store
    params = await _params(request, CREATE)
    configuration = new_configuration(int(emulator.clock()), _livemode(request))
    _apply(store, configuration, params, _login_url(request, configuration))
    store.configurations[configuration["id"]] = configuration
    store.configuration_order[configuration["id"]] = next(_order)
    emulator.webhooks.publish(
        [Change(type="billing_portal.configuration.created", object=copy.deepcopy(configuration))],
        request_id=request[REQUEST_ID],
    )
    return json_response(request, configuration)


async def update_configuration(request: web.Request) -> web.Response:
    """``POST /v1/billing_portal/configurations/{configuration}``."""
    emulator = request.app[EMULATOR]
    store = emulator.store
    configuration = _find(store, request.match_info["configuration"])
    params = await _params(request, UPDATE)
    if params.get("active") is False and configuration["is_default"]:
        raise ApiError("The default configuration cannot be deactivated.", param="active")
    before = copy.deepcopy(configuration)
    after = copy.deepcopy(configuration)
    _apply(store, after, params, _login_url(request, after))
    if after != before:
        after["updated"] = int(emulator.clock())
        configuration.clear()
        configuration.update(after)
        emulator.webhooks.publish(
            [
                Change(
                    type="billing_portal.configuration.updated",
                    object=copy.deepcopy(configuration),
                    previous_attributes=diff(before, configuration),
                )
            ],
            request_id=request[REQUEST_ID],
        )
    return json_response(request, configuration)


async def retrieve_configuration(request: web.Request) -> web.Response:
    """``GET /v1/billing_portal/configurations/{configuration}``."""
    check(RETRIEVE, query(request))
    store = request.app[EMULATOR].store
    return json_response(request, _find(store, request.match_info["configuration"]))


async def list_configurations(request: web.Request) -> web.Response:
    """``GET /v1/billing_portal/configurations``: newest first, filtered, one page."""
    store = request.app[EMULATOR].store
    params = check(LIST, query(request))
    limit = params.get("limit", 10)
    if limit > 100:
        raise ApiError("Invalid limit: must be at most 100.", param="limit")
    ordered = sorted(
        store.configurations.values(),
        key=lambda item: (-item["created"], -store.configuration_order[item["id"]]),
    )
    found = [
        item
        for item in ordered
        if params.get("active") in (None, item["active"])
        and params.get("is_default") in (None, item["is_default"])
    ]
    if "starting_after" in params:
        ids = [item["id"] for item in found]
        if params["starting_after"] not in store.configurations:
            raise no_such(
                "billing portal configuration", params["starting_after"], "starting_after"
            )
        start = ids.index(params["starting_after"]) + 1 if params["starting_after"] in ids else 0
        window = found[start : start + limit]
        has_more = start + limit < len(found)
    elif "ending_before" in params:
        ids = [item["id"] for item in found]
        if params["ending_before"] not in store.configurations:
            raise no_such("billing portal configuration", params["ending_before"], "ending_before")
        end = ids.index(params["ending_before"]) if params["ending_before"] in ids else 0
        window = found[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        window = found[:limit]
        has_more = len(found) > limit
    return json_response(
        request, {"object": "list", "data": window, "has_more": has_more, "url": _PATH}
    )


def configuration_routes() -> list[web.RouteDef]:
    """The configuration routes, for :func:`lattice_stripe.emulator._api.routes`."""
    return [
        web.post(_PATH, create_configuration),
        web.get(_PATH, list_configurations, allow_head=False),
        web.post(_PATH + "/{configuration}", update_configuration),
        web.get(_PATH + "/{configuration}", retrieve_configuration, allow_head=False),
    ]
