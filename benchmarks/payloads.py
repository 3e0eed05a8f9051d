"""The one request and response every contender handles: a subscription_update_confirm flow."""

import functools
import json
import re
import urllib.parse
from typing import Any

PARAMS: dict[str, Any] = {
    "customer": "cus_abc123",
    "return_url": "https://example.com/account",
    "flow_data": {
        "type": "subscription_update_confirm",
        "after_completion": {
            "type": "redirect",
            "redirect": {"return_url": "https://example.com/account/done"},
        },
        "subscription_update_confirm": {
            "subscription": "sub_1",
            "items": [{"id": "si_1", "price": "price_pro", "quantity": 3}],
        },
    },
}

# What a form encoder must produce for PARAMS, flattened: the stdlib floor
# encodes exactly these pairs.
FLAT_PAIRS: list[tuple[str, str]] = [
    ("customer", "cus_abc123"),
    ("return_url", "https://example.com/account"),
    ("flow_data[type]", "subscription_update_confirm"),
    ("flow_data[after_completion][type]", "redirect"),
    ("flow_data[after_completion][redirect][return_url]", "https://example.com/account/done"),
    ("flow_data[subscription_update_confirm][subscription]", "sub_1"),
    ("flow_data[subscription_update_confirm][items][0][id]", "si_1"),
    ("flow_data[subscription_update_confirm][items][0][price]", "price_pro"),
    ("flow_data[subscription_update_confirm][items][0][quantity]", "3"),
]

RESPONSE: dict[str, Any] = {
    "id": "bps_1PgBENCH00000000000000",
    "object": "billing_portal.session",
    "after_expiration": None,
    "configuration": "bpc_1PgBENCH00000000000000",
    "created": 1795000000,
    "customer": "cus_abc123",
    "customer_account": None,
    "flow": {
        "type": "subscription_update_confirm",
        "after_completion": {
            "type": "redirect",
            "hosted_confirmation": None,
            "redirect": {"return_url": "https://example.com/account/done"},
        },
        "customer_update": None,
        "subscription_cancel": None,
        "subscription_pause": None,
        "subscription_update": None,
        "subscription_update_confirm": {
            "discounts": None,
            "items": [{"id": "si_1", "price": "price_pro", "quantity": 3}],
            "subscription": "sub_1",
        },
    },
    "livemode": False,
    "locale": None,
    "on_behalf_of": None,
    "return_url": "https://example.com/account",
    "url": "https://billing.stripe.com/p/session/test_YmVuY2htYXJrc2VjcmV0",
}
RESPONSE_BODY: bytes = json.dumps(RESPONSE, separators=(",", ":")).encode()
API_KEY = "sk_test_benchmark0000000000"

_quote = functools.partial(urllib.parse.quote, safe="")
_plain = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch
_KEYS = [f"{_quote(name)}=" for name, _ in FLAT_PAIRS]


def fair_encode(params: dict[str, Any]) -> bytes:
    """The fair floor's encoder: PARAMS' pairs by a function written for exactly this shape.

    Keys are encoded once, ahead of time; only the values are looked up and
    quoted per call (a value of unreserved characters only is taken as it
    is). It produces the very bytes lattice-stripe sends, with none of its
    checks: no encoder of these params can do much less work.
    """
    flow = params["flow_data"]
    after = flow["after_completion"]
    confirm = flow["subscription_update_confirm"]
    item = confirm["items"][0]
    values = (
        params["customer"],
        params["return_url"],
        flow["type"],
        after["type"],
        after["redirect"]["return_url"],
        confirm["subscription"],
        item["id"],
        item["price"],
        str(item["quantity"]),
    )
    return "&".join(
        [
            key + (value if _plain(value) else _quote(value))
            for key, value in zip(_KEYS, values, strict=True)
        ]
    ).encode()


def stdlib_encode() -> bytes:
    """The old floor's encoder: ``urllib.parse.urlencode`` of the flattened pairs."""
    return urllib.parse.urlencode(FLAT_PAIRS).encode()
