"""The emulator's REST API: Stripe's protocol, validation, idempotency and objects."""

import asyncio
import base64
import json
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from emulator_support import API_KEY, FakeClock, api, raw_get
from lattice_stripe.core.codec import decode_session, encode_form
from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.expand import SESSION_EXPANDABLE
from lattice_stripe.core.guard import guard
from lattice_stripe.emulator import Emulator, RunningEmulator, SeedError, load_seed, serve
from lattice_stripe.emulator import _api as emulator_api
from lattice_stripe.emulator._api import Handler

SESSIONS = "/v1/billing_portal/sessions"
SESSION_FIELDS = {
    "after_expiration",
    "configuration",
    "created",
    "customer",
    "customer_account",
    "flow",
    "id",
    "livemode",
    "locale",
    "object",
    "on_behalf_of",
    "return_url",
    "url",
}
FLOW_FIELDS = {
    "after_completion",
    "customer_update",
    "subscription_cancel",
    "subscription_pause",
    "subscription_update",
    "subscription_update_confirm",
    "type",
}


async def create(
    http: aiohttp.ClientSession, running: RunningEmulator, params: dict[str, Any], **kwargs: Any
) -> tuple[int, dict[str, Any], Any]:
    """POST /v1/billing_portal/sessions."""
    return await api(http, "POST", running.url + SESSIONS, params, **kwargs)


async def test_missing_api_key_is_401_in_stripes_error_shape(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """No Authorization header: 401 with an invalid_request_error naming the fix."""
    status, body, headers = await create(http, running, {"customer": "cus_demo"}, api_key=None)
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert "You did not provide an API key" in body["error"]["message"]
    assert headers["Request-Id"].startswith("req_")
    assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_wrong_api_key_is_401_and_never_echoed(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """A wrong key is refused and the message masks it."""
    status, body, _ = await create(
        http, running, {"customer": "cus_demo"}, api_key="sk_test_wrongSecretValue"
    )
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert "wrongSecretValue" not in json.dumps(body)


async def test_basic_auth_with_the_key_as_user_name_is_accepted(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """``curl -u sk_test_...:`` style authentication works, as on Stripe."""
    token = base64.b64encode(f"{API_KEY}:".encode()).decode()
    status, body, _ = await create(
        http,
        running,
        {"customer": "cus_demo"},
        api_key=None,
        headers={"Authorization": f"Basic {token}"},
    )
    assert status == 200, body
    assert body["customer"] == "cus_demo"


async def test_an_api_key_that_is_not_utf8_is_a_401_not_a_crash(running: RunningEmulator) -> None:
    """Authorization bytes that are not UTF-8 get Stripe's 401 JSON, not a 500."""
    status, body = await raw_get(
        running.url, "/v1/customers/cus_demo", {"Authorization": b"Bearer sk_test_\xff"}
    )
    assert status == 401
    assert json.loads(body)["error"]["message"].startswith("Invalid API Key provided")


async def test_session_has_every_field_of_the_session_object(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """The JSON carries every billing_portal.session field and decodes with the library."""
    status, body, headers = await create(
        http,
        running,
        {
            "customer": "cus_demo",
            "return_url": "https://example.com/account",
            "locale": "fr",
            "on_behalf_of": "acct_1",
        },
    )
    assert status == 200, body
    assert set(body) == SESSION_FIELDS
    assert body["object"] == "billing_portal.session"
    assert body["id"].startswith("bps_")
    assert body["livemode"] is False
    assert body["flow"] is None
    assert (body["locale"], body["on_behalf_of"]) == ("fr", "acct_1")
    assert body["url"].startswith(running.url + "/p/session/")
    assert headers["Request-Id"].startswith("req_")
    session = decode_session(json.dumps(body).encode())
    assert session.customer == "cus_demo"
    assert session.return_url == "https://example.com/account"


async def test_flow_echoes_every_flow_field(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """A cancel flow with retention and a hosted confirmation comes back in full."""
    status, body, _ = await create(
        http,
        running,
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_cancel",
                "subscription_cancel": {
                    "subscription": "sub_demo",
                    "retention": {"type": "coupon_offer", "coupon_offer": {"coupon": "SAVE25"}},
                },
                "after_completion": {
                    "type": "hosted_confirmation",
                    "hosted_confirmation": {"custom_message": "See you"},
                },
            },
        },
    )
    assert status == 200, body
    flow = body["flow"]
    assert set(flow) == FLOW_FIELDS
    assert flow["after_completion"] == {
        "type": "hosted_confirmation",
        "hosted_confirmation": {"custom_message": "See you"},
        "redirect": None,
    }
    assert flow["subscription_cancel"] == {
        "subscription": "sub_demo",
        "retention": {"type": "coupon_offer", "coupon_offer": {"coupon": "SAVE25"}},
    }
    assert flow["subscription_update"] is None


async def test_update_confirm_flow_fills_quantity_and_discounts(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """Items keep the current quantity when none is sent; quantities arrive as integers."""
    status, body, _ = await create(
        http,
        running,
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {
                    "subscription": "sub_demo",
                    "items": [{"id": "si_demo", "price": "price_pro_yearly"}],
                    "discounts": [{"promotion_code": "promo_welcome"}],
                },
            },
        },
    )
    assert status == 200, body
    confirm = body["flow"]["subscription_update_confirm"]
    assert confirm["items"] == [{"id": "si_demo", "price": "price_pro_yearly", "quantity": 1}]
    assert confirm["discounts"] == [{"coupon": None, "promotion_code": "promo_welcome"}]
    assert body["flow"]["after_completion"]["type"] == "portal_homepage"


async def test_customer_account_opens_the_linked_customer(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """``customer_account`` (Accounts v2) resolves to the customer linked to it."""
    status, body, _ = await create(http, running, {"customer_account": "acct_team"})
    assert status == 200, body
    assert (body["customer"], body["customer_account"]) == ("cus_team", "acct_team")


async def test_expand_configuration_returns_the_object(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """``expand[]=configuration`` embeds the portal configuration object."""
    status, body, _ = await create(
        http, running, {"customer": "cus_demo", "expand": ["configuration"]}
    )
    assert status == 200, body
    assert body["configuration"]["object"] == "billing_portal.configuration"
    assert body["configuration"]["features"]["subscription_cancel"]["enabled"] is True


@pytest.mark.parametrize("path", sorted(SESSION_EXPANDABLE))
async def test_every_path_the_spec_marks_expandable_is_accepted(
    http: aiohttp.ClientSession, running: RunningEmulator, path: str
) -> None:
    """Each expandable path (nested ones too) is accepted; a configuration path expands it."""
    status, body, _ = await create(http, running, {"customer": "cus_demo", "expand": [path]})
    assert status == 200, body
    if path.startswith("configuration"):
        assert body["configuration"]["object"] == "billing_portal.configuration"
    else:
        assert body["configuration"] == "bpc_emulator"


UNEXPANDABLE = [
    ("customer", "This property cannot be expanded (customer)."),
    ("configuration.id", "This property cannot be expanded (configuration.id)."),
    ("flow.subscription_pause", "This property cannot be expanded (flow.subscription_pause)."),
    ("configuration.application.owner", "This property cannot be expanded"),
    (
        "configuration.features.subscription_update.products.adjustable_quantity",
        "You cannot expand more than 4 levels of a property.",
    ),
]


@pytest.mark.parametrize(("path", "message"), UNEXPANDABLE)
async def test_paths_the_spec_does_not_mark_expandable_are_refused(
    http: aiohttp.ClientSession, running: RunningEmulator, path: str, message: str
) -> None:
    """Any other expand path is Stripe's 400 naming the expand entry, and no session is made."""
    status, body, _ = await create(
        http, running, {"customer": "cus_demo", "expand": ["flow", path]}
    )
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "expand[1]"
    assert body["error"]["message"].startswith(message)
    assert running.emulator.store.sessions == {}


@pytest.mark.parametrize("path", [path for path, _ in UNEXPANDABLE])
def test_the_guard_refuses_what_the_emulator_refuses(path: str) -> None:
    """The client's guard refuses each path the emulator refuses, at the same expand entry."""
    with pytest.raises(ValidationError) as info:
        guard({"customer": "cus_demo", "expand": ["flow", path]})
    assert info.value.path == "expand[1]"


async def test_after_expiration_is_echoed(
    http: aiohttp.ClientSession, running: RunningEmulator, clock: FakeClock
) -> None:
    """``after_expiration`` comes back with the login deadline as an integer."""
    deadline = int(clock.now) + 3600
    status, body, _ = await create(
        http,
        running,
        {
            "customer": "cus_demo",
            "after_expiration": {
                "type": "customer_login",
                "customer_login": {"expires_at": deadline},
            },
        },
    )
    assert status == 200, body
    assert body["after_expiration"] == {
        "type": "customer_login",
        "customer_login": {"expires_at": deadline},
    }


async def test_strings_without_a_max_length_in_the_spec_take_more_than_5000(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """return_url, the redirect's return_url and on_behalf_of have no maxLength in Stripe's spec."""
    long_url = "https://example.com/" + "a" * 6000
    status, body, _ = await create(
        http,
        running,
        {
            "customer": "cus_demo",
            "return_url": long_url,
            "on_behalf_of": "acct_" + "b" * 6000,
            "flow_data": {
                "type": "payment_method_update",
                "after_completion": {"type": "redirect", "redirect": {"return_url": long_url}},
            },
        },
    )
    assert status == 200, body
    assert body["return_url"] == long_url
    assert body["flow"]["after_completion"]["redirect"]["return_url"] == long_url


INVALID: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("unknown top-level", {"customer": "cus_demo", "colour": "red"}, "colour", "parameter_unknown"),
    (
        "unknown nested",
        {"customer": "cus_demo", "flow_data": {"type": "payment_method_update", "x": "1"}},
        "flow_data[x]",
        "parameter_unknown",
    ),
    ("neither customer", {"return_url": "https://example.com"}, "customer", "parameter_missing"),
    (
        "both customers",
        {"customer": "cus_demo", "customer_account": "acct_team"},
        "customer_account",
        None,
    ),
    ("empty string", {"customer": ""}, "customer", "parameter_invalid_empty"),
    ("hash for a string", {"customer": {"id": "cus_demo"}}, "customer", None),
    ("unknown customer", {"customer": "cus_nobody"}, "customer", "resource_missing"),
    (
        "unknown account",
        {"customer_account": "acct_nobody"},
        "customer_account",
        "resource_missing",
    ),
    ("bad locale", {"customer": "cus_demo", "locale": "xx"}, "locale", None),
    (
        "bad url",
        {"customer": "cus_demo", "return_url": "javascript:alert(1)"},
        "return_url",
        "url_invalid",
    ),
    (
        "relative url",
        {"customer": "cus_demo", "return_url": "/account"},
        "return_url",
        "url_invalid",
    ),
    (
        "unknown config",
        {"customer": "cus_demo", "configuration": "bpc_other"},
        "configuration",
        "resource_missing",
    ),
    ("bad expand", {"customer": "cus_demo", "expand": ["customer"]}, "expand[0]", None),
    (
        "bad flow type",
        {"customer": "cus_demo", "flow_data": {"type": "subscription_delete"}},
        "flow_data[type]",
        None,
    ),
    (
        "flow without type",
        {
            "customer": "cus_demo",
            "flow_data": {"subscription_cancel": {"subscription": "sub_demo"}},
        },
        "flow_data[type]",
        "parameter_missing",
    ),
    (
        "missing sub-hash",
        {"customer": "cus_demo", "flow_data": {"type": "subscription_cancel"}},
        "flow_data[subscription_cancel]",
        "parameter_missing",
    ),
    (
        "missing subscription",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_cancel",
                "subscription_cancel": {
                    "retention": {"type": "coupon_offer", "coupon_offer": {"coupon": "SAVE25"}}
                },
            },
        },
        "flow_data[subscription_cancel][subscription]",
        "parameter_missing",
    ),
    (
        "other flow's sub-hash",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "payment_method_update",
                "subscription_cancel": {"subscription": "sub_demo"},
            },
        },
        "flow_data[subscription_cancel]",
        None,
    ),
    (
        "unknown subscription",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_cancel",
                "subscription_cancel": {"subscription": "sub_nope"},
            },
        },
        "flow_data[subscription_cancel][subscription]",
        "resource_missing",
    ),
    (
        "someone else's subscription",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_pause",
                "subscription_pause": {"subscription": "sub_team"},
            },
        },
        "flow_data[subscription_pause][subscription]",
        None,
    ),
    (
        "canceled subscription",
        {
            "customer": "cus_lapsed",
            "flow_data": {
                "type": "subscription_update",
                "subscription_update": {"subscription": "sub_lapsed"},
            },
        },
        "flow_data[subscription_update][subscription]",
        None,
    ),
    (
        "unknown retention coupon",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_cancel",
                "subscription_cancel": {
                    "subscription": "sub_demo",
                    "retention": {"type": "coupon_offer", "coupon_offer": {"coupon": "NOPE"}},
                },
            },
        },
        "flow_data[subscription_cancel][retention][coupon_offer][coupon]",
        "resource_missing",
    ),
    (
        "confirm without items",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {"subscription": "sub_demo"},
            },
        },
        "flow_data[subscription_update_confirm][items]",
        "parameter_missing",
    ),
    (
        "item without price or quantity",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {
                    "subscription": "sub_demo",
                    "items": [{"id": "si_demo"}],
                },
            },
        },
        "flow_data[subscription_update_confirm][items][0]",
        None,
    ),
    (
        "two items",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {
                    "subscription": "sub_demo",
                    "items": [{"id": "si_demo", "quantity": 2}, {"id": "si_demo", "quantity": 3}],
                },
            },
        },
        "flow_data[subscription_update_confirm][items]",
        None,
    ),
    (
        "quantity not an integer",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {
                    "subscription": "sub_demo",
                    "items": [{"id": "si_demo", "quantity": "two"}],
                },
            },
        },
        "flow_data[subscription_update_confirm][items][0][quantity]",
        "parameter_invalid_integer",
    ),
    (
        "quantity with two signs",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {
                    "subscription": "sub_demo",
                    "items": [{"id": "si_demo", "quantity": "--5"}],
                },
            },
        },
        "flow_data[subscription_update_confirm][items][0][quantity]",
        "parameter_invalid_integer",
    ),
    (
        "negative quantity",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {
                    "subscription": "sub_demo",
                    "items": [{"id": "si_demo", "quantity": "-1"}],
                },
            },
        },
        "flow_data[subscription_update_confirm][items][0][quantity]",
        None,
    ),
    (
        "item of another subscription",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {
                    "subscription": "sub_demo",
                    "items": [{"id": "si_team", "quantity": 2}],
                },
            },
        },
        "flow_data[subscription_update_confirm][items][0][id]",
        None,
    ),
    (
        "price not offered",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {
                    "subscription": "sub_demo",
                    "items": [{"id": "si_demo", "price": "price_legacy_monthly"}],
                },
            },
        },
        "flow_data[subscription_update_confirm][items][0][price]",
        None,
    ),
    (
        "quantity over the maximum",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {
                    "subscription": "sub_demo",
                    "items": [{"id": "si_demo", "quantity": 51}],
                },
            },
        },
        "flow_data[subscription_update_confirm][items][0][quantity]",
        None,
    ),
    (
        "redirect without its hash",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "payment_method_update",
                "after_completion": {"type": "redirect"},
            },
        },
        "flow_data[after_completion][redirect]",
        "parameter_missing",
    ),
    (
        "hosted message with a redirect",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "payment_method_update",
                "after_completion": {
                    "type": "redirect",
                    "redirect": {"return_url": "https://example.com"},
                    "hosted_confirmation": {"custom_message": "hi"},
                },
            },
        },
        "flow_data[after_completion][hosted_confirmation]",
        None,
    ),
    (
        "custom message too long",
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "customer_update",
                "after_completion": {
                    "type": "hosted_confirmation",
                    "hosted_confirmation": {"custom_message": "m" * 501},
                },
            },
        },
        "flow_data[after_completion][hosted_confirmation][custom_message]",
        "parameter_invalid_string",
    ),
    (
        "expired login deadline",
        {
            "customer": "cus_demo",
            "after_expiration": {"type": "customer_login", "customer_login": {"expires_at": 1}},
        },
        "after_expiration[customer_login][expires_at]",
        None,
    ),
]


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
async def test_invalid_params_are_400_with_the_param(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    params: dict[str, Any],
    param: str,
    code: str | None,
) -> None:
    """Each invalid input is a 400 invalid_request_error naming the param (and Stripe's code)."""
    status, body, _ = await create(http, running, params)
    assert status == 400, body
    error = body["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error.get("code") == code
    assert error["message"]


async def test_contradictory_form_keys_are_a_400(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """A body whose keys contradict each other is refused, not a crash."""
    async with http.post(
        running.url + SESSIONS,
        data=b"customer=cus_demo&customer[id]=x",
        headers={
            "Authorization": f"Bearer {API_KEY}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    ) as response:
        body = await response.json()
    assert response.status == 400
    assert body["error"]["type"] == "invalid_request_error"


async def test_oversized_body_is_refused_in_stripes_shape(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """A body over the size limit is a 413 Stripe error, not a crash or a 404."""
    status, body, _ = await create(http, running, {"customer": "cus_demo", "x": "y" * 300_000})
    assert status == 413
    assert body["error"]["type"] == "invalid_request_error"


async def test_bad_stripe_version_header_is_a_400(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """A malformed Stripe-Version is refused."""
    status, body, _ = await create(
        http, running, {"customer": "cus_demo"}, headers={"Stripe-Version": "latest please"}
    )
    assert status == 400
    assert "version" in body["error"]["message"]


async def test_stripe_version_takes_ascii_digits_only(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """A Stripe-Version written with other scripts' digits (here fullwidth) is refused."""
    status, body, _ = await create(
        http,
        running,
        {"customer": "cus_demo"},
        headers={"Stripe-Version": "\uff12\uff10\uff12\uff16-10-28.endive"},
    )
    assert status == 400
    assert body["error"]["param"] == "Stripe-Version"


async def test_same_idempotency_key_and_params_replays_the_session(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """A retry with the same key and params gets the very same session, marked as replayed."""
    params = {"customer": "cus_demo", "return_url": "https://example.com/a"}
    key = {"Idempotency-Key": "retry-1"}
    first = await create(http, running, params, headers=key)
    second = await create(http, running, params, headers=key)
    assert first[0] == second[0] == 200
    assert first[1] == second[1]
    assert second[2]["Idempotent-Replayed"] == "true"
    assert second[2]["Original-Request"] == first[2]["Request-Id"]
    assert len(running.emulator.store.sessions) == 1


async def test_same_idempotency_key_with_other_params_is_an_idempotency_error(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """Reusing a key for different params is a 400 idempotency_error."""
    key = {"Idempotency-Key": "retry-2"}
    await create(http, running, {"customer": "cus_demo"}, headers=key)
    status, body, _ = await create(http, running, {"customer": "cus_team"}, headers=key)
    assert status == 400
    assert body["error"]["type"] == "idempotency_error"


async def test_a_failed_request_does_not_use_up_its_idempotency_key(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """A request rejected by validation saves nothing: the key works for the fixed request."""
    key = {"Idempotency-Key": "retry-3"}
    status, _, _ = await create(http, running, {"customer": "cus_nobody"}, headers=key)
    assert status == 400
    status, body, _ = await create(http, running, {"customer": "cus_demo"}, headers=key)
    assert status == 200, body


async def test_idempotency_keys_are_forgotten_after_a_day(
    http: aiohttp.ClientSession, running: RunningEmulator, clock: FakeClock
) -> None:
    """After 24 hours a key may be used again for another request."""
    key = {"Idempotency-Key": "retry-4"}
    await create(http, running, {"customer": "cus_demo"}, headers=key)
    clock.advance(24 * 3600 + 1)
    status, body, _ = await create(http, running, {"customer": "cus_team"}, headers=key)
    assert status == 200, body
    assert body["customer"] == "cus_team"


async def test_expired_idempotency_keys_are_dropped_not_kept_forever(
    http: aiohttp.ClientSession, running: RunningEmulator, clock: FakeClock
) -> None:
    """Answers saved more than a day ago are dropped on the next keyed request, whatever its key."""
    for key in ("old-1", "old-2"):
        await create(http, running, {"customer": "cus_demo"}, headers={"Idempotency-Key": key})
    clock.advance(3600)
    await create(http, running, {"customer": "cus_demo"}, headers={"Idempotency-Key": "recent"})
    clock.advance(23 * 3600 + 1)
    await create(http, running, {"customer": "cus_team"}, headers={"Idempotency-Key": "new"})
    assert list(running.emulator.idempotent) == ["recent", "new"]


CUSTOMERS = "/v1/customers"


def replace_first_customer_create(monkeypatch: pytest.MonkeyPatch, first: Handler) -> None:
    """Make ``POST /v1/customers`` run ``first`` for its first request only (before serve())."""
    real = emulator_api.create_customer
    calls: list[web.Request] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        calls.append(request)
        return await (first if len(calls) == 1 else real)(request)

    monkeypatch.setattr(emulator_api, "create_customer", handler)


async def test_a_concurrent_duplicate_is_a_409_and_the_first_request_completes(
    http: aiohttp.ClientSession, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A duplicate sent while the first runs is a 409 idempotency_error; a retry later replays."""
    entered, release = asyncio.Event(), asyncio.Event()
    real = emulator_api.create_customer

    async def slow(request: web.Request) -> web.StreamResponse:
        entered.set()
        await release.wait()
        return await real(request)

    replace_first_customer_create(monkeypatch, slow)
    params, key = {"email": "jo@example.com"}, {"Idempotency-Key": "in-flight-1"}
    async with serve(Emulator(clock=clock)) as running:
        url = running.url + CUSTOMERS
        first = asyncio.ensure_future(api(http, "POST", url, params, headers=key))
        await asyncio.wait_for(entered.wait(), 5)

        status, body, headers = await api(http, "POST", url, params, headers=key)

        assert status == 409
        assert body["error"]["type"] == "idempotency_error"
        assert body["error"]["code"] == "idempotency_key_in_use"
        assert "another in-progress request using this Idempotent Key" in body["error"]["message"]
        assert headers["Request-Id"].startswith("req_")
        assert not first.done()
        release.set()
        first_status, created, first_headers = await first
        assert first_status == 200, created
        status, replayed, headers = await api(http, "POST", url, params, headers=key)
        assert (status, replayed) == (200, created)
        assert headers["Idempotent-Replayed"] == "true"
        assert headers["Original-Request"] == first_headers["Request-Id"]
        logged = [delivery.event["type"] for delivery in running.emulator.webhooks.log]
        assert logged == ["customer.created"]


async def test_a_handler_that_fails_leaves_its_idempotency_key_free(
    http: aiohttp.ClientSession, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request whose handler crashes (a 500) holds its key no longer: the retry runs."""

    async def crash(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("the handler failed")

    replace_first_customer_create(monkeypatch, crash)
    params, key = {"email": "jo@example.com"}, {"Idempotency-Key": "crash-1"}
    async with serve(Emulator(clock=clock)) as running:
        url = running.url + CUSTOMERS
        async with http.post(
            url,
            data=encode_form(params),
            headers={"Authorization": f"Bearer {API_KEY}", **key},
        ) as crashed:
            assert crashed.status == 500
        status, body, headers = await api(http, "POST", url, params, headers=key)
        assert status == 200, body
        assert "Idempotent-Replayed" not in headers
        assert running.emulator.in_flight == set()


async def test_a_cancelled_handler_leaves_its_idempotency_key_free(
    http: aiohttp.ClientSession, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request whose handler is cancelled (the connection drops) holds its key no longer."""

    async def cancelled(request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.Event().wait()
        raise AssertionError("the cancellation did not reach the handler")

    replace_first_customer_create(monkeypatch, cancelled)
    params, key = {"email": "jo@example.com"}, {"Idempotency-Key": "cancel-1"}
    async with serve(Emulator(clock=clock)) as running:
        url = running.url + CUSTOMERS
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await api(http, "POST", url, params, headers=key)
        status, body, _ = await api(http, "POST", url, params, headers=key)
        assert status == 200, body
        assert running.emulator.in_flight == set()


async def test_unknown_url_is_a_stripe_404_with_a_request_id(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """Unknown /v1 URLs and wrong methods answer like Stripe, with a Request-Id."""
    for method, path in (("GET", "/v1/charges"), ("GET", SESSIONS)):
        status, body, headers = await api(http, method, running.url + path)
        assert status == 404
        assert body["error"]["message"].startswith("Unrecognized request URL")
        assert headers["Request-Id"].startswith("req_")


async def test_every_kind_of_response_has_a_request_id(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """Portal pages, the index, the webhook log and unknown pages all carry Request-Id."""
    for path in ("/", "/_emulator/webhooks", "/p/session/test_nothing", "/nowhere"):
        async with http.get(running.url + path, allow_redirects=False) as response:
            assert response.headers["Request-Id"].startswith("req_"), path


async def test_create_and_get_a_customer(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """POST /v1/customers creates a customer that GET returns, and logs customer.created."""
    status, created, _ = await api(
        http,
        "POST",
        running.url + "/v1/customers",
        {"email": "new@example.com", "name": "New", "metadata": {"user": "42"}},
    )
    assert status == 200, created
    assert created["id"].startswith("cus_")
    assert created["metadata"] == {"user": "42"}
    status, fetched, _ = await api(http, "GET", running.url + f"/v1/customers/{created['id']}")
    assert status == 200
    assert fetched == created
    events = [delivery.event for delivery in running.emulator.webhooks.log]
    assert [(event["type"], event["data"]["object"]["id"]) for event in events] == [
        ("customer.created", created["id"])
    ]
    status, session, _ = await create(http, running, {"customer": created["id"]})
    assert status == 200, session


async def test_customer_create_validates_its_params(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """An unknown customer parameter is a 400 naming it."""
    status, body, _ = await api(http, "POST", running.url + "/v1/customers", {"emial": "x@y.z"})
    assert status == 400
    assert body["error"]["param"] == "emial"


async def test_get_unknown_objects_is_a_404_resource_missing(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """Unknown customers, subscriptions and payment methods are 404 resource_missing."""
    for path in ("/v1/customers/cus_x", "/v1/subscriptions/sub_x", "/v1/payment_methods/pm_x"):
        status, body, _ = await api(http, "GET", running.url + path)
        assert status == 404, path
        assert body["error"]["code"] == "resource_missing"


async def test_get_subscription_in_stripes_shape(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """GET /v1/subscriptions/{id} returns the seeded subscription with its items and price."""
    status, sub, _ = await api(http, "GET", running.url + "/v1/subscriptions/sub_team")
    assert status == 200
    assert (sub["object"], sub["customer"], sub["status"]) == ("subscription", "cus_team", "active")
    item = sub["items"]["data"][0]
    assert (item["id"], item["quantity"], item["price"]["id"]) == (
        "si_team",
        5,
        "price_basic_monthly",
    )
    assert item["current_period_end"] > item["current_period_start"]
    assert item["price"]["recurring"]["interval"] == "month"


async def test_list_subscriptions_by_customer_and_status(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """The list filters by customer; canceled ones appear only with status=all or canceled."""
    base = running.url + "/v1/subscriptions"
    _, team, _ = await api(http, "GET", base + "?customer=cus_team")
    assert sorted(sub["id"] for sub in team["data"]) == ["sub_team", "sub_team_addon"]
    _, lapsed, _ = await api(http, "GET", base + "?customer=cus_lapsed")
    assert lapsed["data"] == []
    _, everything, _ = await api(http, "GET", base + "?customer=cus_lapsed&status=all")
    assert [sub["id"] for sub in everything["data"]] == ["sub_lapsed"]
    status, body, _ = await api(http, "GET", base + "?status=gone")
    assert (status, body["error"]["param"]) == (400, "status")


async def test_query_values_are_percent_decoded_once(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """``status=%2561ll`` is the literal ``%61ll`` (refused), never decoded twice into ``all``."""
    status, body, _ = await api(http, "GET", running.url + "/v1/subscriptions?status=%2561ll")
    assert (status, body["error"]["param"]) == (400, "status")
    status, body, _ = await api(http, "GET", running.url + "/v1/subscriptions?customer=cus%5Fteam")
    assert status == 200
    assert sorted(sub["id"] for sub in body["data"]) == ["sub_team", "sub_team_addon"]


async def test_get_payment_method(http: aiohttp.ClientSession, running: RunningEmulator) -> None:
    """The seeded default card is served in Stripe's payment_method shape."""
    status, method, _ = await api(http, "GET", running.url + "/v1/payment_methods/pm_demo_visa")
    assert status == 200
    assert (method["type"], method["customer"]) == ("card", "cus_demo")
    assert (method["card"]["brand"], method["card"]["last4"]) == ("visa", "4242")


def packaged_seed() -> Any:
    """The packaged seed, as JSON."""
    return json.loads(resources.files("lattice_stripe.emulator").joinpath("seed.json").read_text())


def test_custom_seed_file_is_loaded(tmp_path: Path) -> None:
    """A seed file of the same shape replaces the packaged one."""
    seed = packaged_seed()
    seed["customers"] = [{"id": "cus_only", "name": "Only One"}]
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))
    emulator = Emulator(seed=load_seed(path))
    assert list(emulator.store.customers) == ["cus_only"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('{"products": []}', "shape"),
    ],
)
def test_bad_seed_files_say_what_is_wrong(tmp_path: Path, content: str, fragment: str) -> None:
    """Invalid JSON and a wrong shape raise SeedError with a readable reason."""
    path = tmp_path / "seed.json"
    path.write_text(content)
    with pytest.raises(SeedError, match=fragment):
        load_seed(path)


def test_seed_with_a_dangling_price_is_refused(tmp_path: Path) -> None:
    """A subscription on a price the seed does not define is a SeedError."""
    seed = packaged_seed()
    seed["customers"][0]["subscriptions"][0]["items"][0]["price"] = "price_missing"
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))
    with pytest.raises(SeedError, match="refers to the price price_missing"):
        Emulator(seed=load_seed(path))


def test_emulator_refuses_live_keys_and_bad_secrets() -> None:
    """The emulator is test mode only, and its webhook secret must look like one."""
    with pytest.raises(ValueError, match="test mode"):
        Emulator(api_key="sk_live_abc")
    with pytest.raises(ValueError, match="whsec_"):
        Emulator(webhook_secret="secret")
    assert "sk_test" not in repr(Emulator())


async def test_create_a_subscription_sends_created_and_bills_the_first_period(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """POST /v1/subscriptions: active, one period from now, an invoice, and a .created event."""
    status, sub, _ = await api(
        http,
        "POST",
        running.url + "/v1/subscriptions",
        {"customer": "cus_lapsed", "items": [{"price": "price_basic_monthly", "quantity": 2}]},
    )
    assert status == 200, sub
    assert (sub["status"], sub["customer"]) == ("active", "cus_lapsed")
    assert sub["items"]["data"][0]["quantity"] == 2
    [event] = running.emulator.webhooks.log
    assert event.to_json()["event"]["type"] == "customer.subscription.created"
    store = running.emulator.store
    [invoice] = [i for i in store.invoices.values() if i.subscription == sub["id"]]
    assert invoice.amount_paid == 1800


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"customer": "cus_nobody", "items": [{"price": "price_basic_monthly"}]}, "customer"),
        ({"customer": "cus_demo", "items": [{"price": "price_legacy_monthly"}]}, "items[0][price]"),
        ({"customer": "cus_demo", "items": [{"price": "price_gone"}]}, "items[0][price]"),
        ({"customer": "cus_demo"}, "items"),
    ],
)
async def test_create_a_subscription_refuses_what_stripe_refuses(
    http: aiohttp.ClientSession, running: RunningEmulator, params: dict[str, Any], param: str
) -> None:
    """Unknown customer, inactive or unknown price, no items: Stripe's 400 naming the param."""
    status, body, _ = await api(http, "POST", running.url + "/v1/subscriptions", params)
    assert status == 400
    assert body["error"]["param"] == param
    assert running.emulator.webhooks.log == []


@pytest.mark.parametrize(("limit", "status"), [("100", 200), ("101", 400), ("0", 400)])
async def test_subscription_list_limit_is_1_to_100_as_the_spec_says(
    http: aiohttp.ClientSession, running: RunningEmulator, limit: str, status: int
) -> None:
    """GET /v1/subscriptions?limit=: 1 to 100 ("Limit can range between 1 and 100")."""
    async with http.get(
        f"{running.url}/v1/subscriptions?customer=cus_demo&limit={limit}",
        headers={"Authorization": f"Bearer {API_KEY}"},
    ) as response:
        assert response.status == status
        if status == 400:
            assert (await response.json())["error"]["param"] == "limit"


async def test_customer_business_and_individual_names_as_the_spec_has_them(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """POST /v1/customers takes business_name and individual_name, at most 150 characters."""
    status, customer, _ = await api(
        http,
        "POST",
        running.url + "/v1/customers",
        {"business_name": "Analytical Engines", "individual_name": "Ada"},
    )
    assert status == 200, customer
    assert (customer["business_name"], customer["individual_name"]) == ("Analytical Engines", "Ada")
    status, body, _ = await api(
        http, "POST", running.url + "/v1/customers", {"business_name": "x" * 151}
    )
    assert (status, body["error"]["param"]) == (400, "business_name")
    status, plain, _ = await api(http, "POST", running.url + "/v1/customers", {"name": "Jo"})
    assert "business_name" not in plain


async def test_a_customer_has_at_most_500_live_subscriptions(
    http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """The 501st subscription of one customer is refused, as the spec's limit says."""
    emulator = Emulator(clock=clock)
    customer = emulator.store.customers["cus_lapsed"]
    for _ in range(500):
        emulator.store.create_subscription(customer, price="price_basic_monthly", quantity=1)
    async with serve(emulator) as running:
        status, body, _ = await api(
            http,
            "POST",
            running.url + "/v1/subscriptions",
            {"customer": "cus_lapsed", "items": [{"price": "price_basic_monthly"}]},
        )
    assert (status, body["error"]["param"]) == (400, "customer")
    assert "500" in body["error"]["message"]
