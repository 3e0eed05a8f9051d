"""The one request and response every contender handles: a subscription_update_confirm flow."""

import json
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
