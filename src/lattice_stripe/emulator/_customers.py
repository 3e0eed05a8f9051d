"""``/v1/customers`` and ``/v1/subscriptions`` reads and writes, as Stripe does them.

Customers are created (idempotently, like every POST here), retrieved and
updated: an update sets only what it is given, ``""`` clears a text field and
a metadata key, and publishes ``customer.updated`` with
``previous_attributes`` when something changed. Subscriptions are listed
newest first, filtered by ``customer``, ``price``, ``status`` (``all``,
``ended``, or by default everything but ``canceled``) and paged with
``starting_after``/``ending_before``; an unknown ID is a 404
``resource_missing``, an unknown cursor a 400 naming it.
"""

from typing import Any

from aiohttp import web

from lattice_stripe.emulator._api import REQUEST_ID, form, json_response, query
from lattice_stripe.emulator._engine import EMULATOR
from lattice_stripe.emulator._state import Change, Subscription, diff
from lattice_stripe.emulator._validation import (
    Array,
    Enum,
    Hash,
    Integer,
    MapOf,
    String,
    check,
    no_such,
)

__all__ = ["customer_routes"]

_ADDRESS = Hash(
    {
        key: String(clearable=True)
        for key in ("city", "country", "line1", "line2", "postal_code", "state")
    }
)

CUSTOMER_UPDATE = Hash(
    {
        "address": _ADDRESS,
        "description": String(clearable=True),
        "email": String(max_length=512, clearable=True),
        "expand": Array(String()),
        "metadata": MapOf(String(max_length=500, clearable=True)),
        "name": String(max_length=256, clearable=True),
        "phone": String(max_length=20, clearable=True),
        "preferred_locales": Array(String(), clearable=True),
    }
)

SUBSCRIPTION_LIST = Hash(
    {
        "collection_method": Enum(("charge_automatically", "send_invoice")),
        "customer": String(),
        "ending_before": String(),
        "expand": Array(String()),
        # The spec's description: "Limit can range between 1 and 100, and the default is 10."
        "limit": Integer(minimum=1, maximum=100),
        "price": String(),
        "starting_after": String(),
        "status": Enum(
            (
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
            )
        ),
        "test_clock": String(),
    }
)


async def update_customer(request: web.Request) -> web.Response:
    """``POST /v1/customers/{id}``: set what is given; ``customer.updated`` if anything changed."""
    emulator = request.app[EMULATOR]
    store = emulator.store
    customer = store.customers.get(request.match_info["id"])
    if customer is None:
        raise no_such("customer", request.match_info["id"][:100], "id", status=404)
    params = check(CUSTOMER_UPDATE, await form(request))
    before = store.customer_json(customer)
    for name in ("name", "email", "phone", "description"):
        if name in params:
            setattr(customer, name, params[name])
    if "address" in params:
        address = dict(customer.address or {})
        address.update(params["address"])
        customer.address = {
            key: address.get(key)
            for key in ("city", "country", "line1", "line2", "postal_code", "state")
        }
    if "metadata" in params:
        for key, value in params["metadata"].items():
            if value is None:
                customer.metadata.pop(key, None)
            else:
                customer.metadata[key] = value
    if "preferred_locales" in params:
        customer.preferred_locales = list(params["preferred_locales"])
    after = store.customer_json(customer)
    changed = diff(before, after)
    if changed:
        change = Change(type="customer.updated", object=after, previous_attributes=changed)
        emulator.webhooks.publish([change], request_id=request[REQUEST_ID])
    return json_response(request, after)


def _matches(sub: Subscription, params: dict[str, Any]) -> bool:
    status = params.get("status")
    return (
        params.get("customer") in (None, sub.customer)
        and (params.get("price") is None or any(i.price == params["price"] for i in sub.items))
        and (
            status == "all"
            or (status is None and sub.status != "canceled")
            or (status == "ended" and sub.status in ("canceled", "incomplete_expired"))
            or status == sub.status
        )
    )


async def list_subscriptions(request: web.Request) -> web.Response:
    """``GET /v1/subscriptions``: newest first, filtered, one page."""
    store = request.app[EMULATOR].store
    params = check(SUBSCRIPTION_LIST, query(request))
    order = {sub_id: index for index, sub_id in enumerate(store.subscriptions)}
    found = [
        sub
        for sub in sorted(
            store.subscriptions.values(), key=lambda sub: (-sub.created, -order[sub.id])
        )
        if _matches(sub, params)
    ]
    limit = params.get("limit", 10)
    ids = [sub.id for sub in found]
    if "starting_after" in params:
        cursor = params["starting_after"]
        if cursor not in store.subscriptions:
            raise no_such("subscription", cursor[:100], "starting_after")
        start = ids.index(cursor) + 1 if cursor in ids else 0
        window, has_more = found[start : start + limit], start + limit < len(found)
    elif "ending_before" in params:
        cursor = params["ending_before"]
        if cursor not in store.subscriptions:
            raise no_such("subscription", cursor[:100], "ending_before")
        end = ids.index(cursor) if cursor in ids else 0
        window, has_more = found[max(0, end - limit) : end], end - limit > 0
    else:
        window, has_more = found[:limit], len(found) > limit
    return json_response(
        request,
        {
            "object": "list",
            "data": [store.subscription_json(sub) for sub in window],
            "has_more": has_more,
            "url": "/v1/subscriptions",
        },
    )


def customer_routes() -> list[web.RouteDef]:
    """The customer and subscription routes, for :func:`lattice_stripe.emulator._api.routes`."""
    return [
        web.post("/v1/customers/{id}", update_customer),
        web.get("/v1/subscriptions", list_subscriptions, allow_head=False),
    ]
