# ruff: noqa: E501  (the rule tables read best one case per line)
"""The hosted portal renders what the session's configuration describes, through real HTTP."""

import copy
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from emulator_support import Browser, FakeClock, Receiver, api, browser, webhook_receiver
from lattice_stripe.core.webhooks import Event
from lattice_stripe.emulator import Emulator, RunningEmulator, serve

CONFIGURATIONS = "/v1/billing_portal/configurations"
SESSIONS = "/v1/billing_portal/sessions"
HOME = "/p/portal"
_PRODUCTS = [
    {
        "product": "prod_basic",
        "prices": ["price_basic_monthly"],
        "adjustable_quantity": {"enabled": True, "maximum": 50},
    },
    {
        "product": "prod_pro",
        "prices": ["price_pro_monthly", "price_pro_yearly"],
        "adjustable_quantity": {"enabled": True, "maximum": 50},
    },
]
# Every feature on: each table row turns one thing off (or changes one setting) from here.
ALL_ON: dict[str, Any] = {
    "customer_update": {"enabled": True, "allowed_updates": ["address", "email", "name", "phone"]},
    "invoice_history": {"enabled": True},
    "payment_method_update": {"enabled": True},
    "subscription_cancel": {
        "enabled": True,
        "mode": "immediately",
        "cancellation_reason": {"enabled": True, "options": ["too_expensive", "unused"]},
    },
    "subscription_pause": {"enabled": True},
    "subscription_update": {
        "enabled": True,
        "default_allowed_updates": ["price", "quantity"],
        "products": _PRODUCTS,
        "proration_behavior": "create_prorations",
    },
}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """The app's webhook endpoint, on loopback."""
    async with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
async def running(clock: FakeClock, receiver: Receiver) -> AsyncIterator[RunningEmulator]:
    """An emulator sending webhooks to ``receiver``."""
    async with serve(Emulator(clock=clock, webhook_url=receiver.url)) as running:
        yield running


@pytest.fixture
async def customer(running: RunningEmulator) -> AsyncIterator[Browser]:
    """The customer's browser."""
    async with browser(running.url) as client:
        yield client


def features(**changes: dict[str, Any]) -> dict[str, Any]:
    """``ALL_ON`` with the named features' settings replaced by ``changes``."""
    chosen = copy.deepcopy(ALL_ON)
    for name, settings in changes.items():
        chosen[name] = {**chosen[name], **settings}
    return chosen


async def configuration(
    http: aiohttp.ClientSession, running: RunningEmulator, **params: Any
) -> str:
    """Create a configuration through the API; its ID."""
    status, body, _ = await api(http, "POST", running.url + CONFIGURATIONS, params)
    assert status == 200, body
    created: str = body["id"]
    return created


async def session(
    http: aiohttp.ClientSession, running: RunningEmulator, configuration_id: str, **params: Any
) -> tuple[int, dict[str, Any]]:
    """Create a session for cus_demo rendering ``configuration_id``: status and body."""
    status, body, _ = await api(
        http,
        "POST",
        running.url + SESSIONS,
        {"customer": "cus_demo", "configuration": configuration_id, **params},
    )
    return status, body


async def open_portal(
    http: aiohttp.ClientSession, running: RunningEmulator, client: Browser, **params: Any
) -> str:
    """A configuration from ``params``, a session on it opened in ``client``: the landing page."""
    configuration_id = await configuration(http, running, **params)
    status, body = await session(http, running, configuration_id)
    assert status == 200, body
    opened = await client.get(body["url"])
    assert opened.status == 303
    assert opened.location is not None
    return opened.location


def received(receiver: Receiver) -> list[Event]:
    """The events the endpoint got (configuration events left out), in order."""
    found = [Event.from_json(delivery.body) for delivery in receiver.received]
    return [event for event in found if not event.type.startswith("billing_portal.")]


# (what is turned off, the features, the home page's element that goes, the page that is refused)
TOGGLES = [
    (
        "subscription_cancel",
        features(subscription_cancel={"enabled": False}),
        'id="cancel-sub_demo"',
        "cancel/sub_demo",
    ),
    (
        "subscription_update",
        features(subscription_update={"enabled": False}),
        'id="update-sub_demo"',
        "update/sub_demo",
    ),
    (
        "no allowed updates",
        features(subscription_update={"default_allowed_updates": []}),
        'id="update-sub_demo"',
        "update/sub_demo",
    ),
    (
        "subscription_pause",
        features(subscription_pause={"enabled": False}),
        'id="pause-sub_demo"',
        "pause/sub_demo",
    ),
    (
        "payment_method_update",
        features(payment_method_update={"enabled": False}),
        'id="update-payment-method"',
        "payment-method",
    ),
    (
        "customer_update",
        features(customer_update={"enabled": False}),
        'id="update-customer"',
        "customer",
    ),
    (
        "invoice_history",
        features(invoice_history={"enabled": False}),
        'id="invoice-history"',
        "invoices",
    ),
]


@pytest.mark.parametrize(
    ("name", "chosen", "element", "page"), TOGGLES, ids=[row[0] for row in TOGGLES]
)
async def test_a_disabled_feature_has_no_link_and_no_page(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    customer: Browser,
    name: str,
    chosen: dict[str, Any],
    element: str,
    page: str,
) -> None:
    """Turned off in the session's configuration, a feature leaves the home page and its page is a 404."""
    async with browser(running.url) as control:
        await open_portal(http, running, control, features=ALL_ON)
        assert element in (await control.get(HOME)).text
        assert (await control.get(f"{HOME}/{page}")).status == 200
    await open_portal(http, running, customer, features=chosen)
    home = await customer.get(HOME)
    assert home.status == 200
    assert element not in home.text
    refused = await customer.get(f"{HOME}/{page}")
    assert refused.status == 404
    assert "turned off" in refused.text


async def test_the_default_configuration_is_not_what_a_named_one_renders(
    http: aiohttp.ClientSession, running: RunningEmulator, customer: Browser
) -> None:
    """A session naming a configuration renders it, even where the default configuration differs."""
    off = {name: {"enabled": False} for name in ALL_ON}
    await open_portal(http, running, customer, features=off)
    home = await customer.get(HOME)
    for element in (
        "cancel-sub_demo",
        "update-sub_demo",
        "pause-sub_demo",
        "update-payment-method",
        "update-customer",
        "invoice-history",
    ):
        assert f'id="{element}"' not in home.text, element


# (flow type, the feature it needs, that flow's detail)
DEEP_LINKS = [
    ("subscription_cancel", "subscription_cancel", {"subscription": "sub_demo"}),
    ("subscription_update", "subscription_update", {"subscription": "sub_demo"}),
    (
        "subscription_update_confirm",
        "subscription_update",
        {"subscription": "sub_demo", "items": [{"id": "si_demo", "price": "price_pro_yearly"}]},
    ),
    ("subscription_pause", "subscription_pause", {"subscription": "sub_demo"}),
    ("payment_method_update", "payment_method_update", None),
    ("customer_update", "customer_update", None),
]


@pytest.mark.parametrize(
    ("flow_type", "feature", "detail"), DEEP_LINKS, ids=[row[0] for row in DEEP_LINKS]
)
async def test_a_deep_link_to_a_disabled_feature_is_refused(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    flow_type: str,
    feature: str,
    detail: dict[str, Any] | None,
) -> None:
    """flow_data of a feature the configuration disables is a 400 invalid_request_error; enabled, it opens."""
    flow: dict[str, Any] = {"type": flow_type, **({flow_type: detail} if detail else {})}
    enabled = await configuration(http, running, features=ALL_ON)
    status, body = await session(http, running, enabled, flow_data=flow)
    assert status == 200, body
    disabled = await configuration(
        http, running, features=features(**{feature: {"enabled": False}})
    )
    status, body = await session(http, running, disabled, flow_data=flow)
    assert status == 400
    error = body["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "flow_data[type]")
    assert (
        f"The {feature} feature is disabled in the portal configuration {disabled}"
        in error["message"]
    )


# (mode, proration_behavior, the page's sentence, event types, the customer's balance after)
CANCEL_MODES = [
    ("immediately", "none", "canceled immediately.", ["customer.subscription.deleted"], 0),
    (
        "immediately",
        "create_prorations",
        "is credited to your account balance",
        ["customer.subscription.deleted", "customer.updated"],
        -1,
    ),
    (
        "at_period_end",
        "none",
        "stays available until the end of your billing period",
        ["customer.subscription.updated"],
        0,
    ),
]


@pytest.mark.parametrize(("mode", "proration", "sentence", "types", "balance"), CANCEL_MODES)
async def test_cancellation_follows_the_configured_mode_and_proration(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    customer: Browser,
    receiver: Receiver,
    mode: str,
    proration: str,
    sentence: str,
    types: list[str],
    balance: int,
) -> None:
    """The mode decides when the plan ends; create_prorations credits the unused time to the balance."""
    cancel = {"mode": mode, "proration_behavior": proration}
    await open_portal(http, running, customer, features=features(subscription_cancel=cancel))
    store = running.emulator.store
    credit = store.unused_credit(store.subscriptions["sub_demo"])
    assert credit > 0
    form = await customer.get(f"{HOME}/cancel/sub_demo")
    assert sentence in form.text
    assert 'name="when"' not in form.text
    done = await customer.post(f"{HOME}/cancel/sub_demo", {**form.form, "when": "now"})
    assert done.status == 303
    got = received(receiver)
    assert [event.type for event in got] == types
    assert got[0].data_object["cancel_at_period_end"] is (mode == "at_period_end")
    status, body, _ = await api(http, "GET", running.url + "/v1/customers/cus_demo")
    assert (status, body["balance"]) == (200, balance * credit)


# (cancellation_reason, the options the form offers, a reason posted, whether it is accepted)
REASONS = [
    (
        {"enabled": True, "options": ["too_expensive", "unused"]},
        ["too_expensive", "unused"],
        "unused",
        True,
    ),
    (
        {"enabled": True, "options": ["too_expensive", "unused"]},
        ["too_expensive", "unused"],
        "other",
        False,
    ),
    ({"enabled": False, "options": ["too_expensive"]}, [], "too_expensive", False),
]


@pytest.mark.parametrize(("reason", "offered", "posted", "accepted"), REASONS)
async def test_cancellation_reasons_are_the_configured_ones(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    customer: Browser,
    receiver: Receiver,
    reason: dict[str, Any],
    offered: list[str],
    posted: str,
    accepted: bool,
) -> None:
    """The reason list shows only when enabled, with the configured options; others are refused."""
    chosen = features(subscription_cancel={"cancellation_reason": reason})
    await open_portal(http, running, customer, features=chosen)
    form = await customer.get(f"{HOME}/cancel/sub_demo")
    shown = [
        option
        for option in ("too_expensive", "unused", "other")
        if f'<option value="{option}"' in form.text
    ]
    assert shown == offered
    assert ('id="reason"' in form.text) is bool(offered)
    done = await customer.post(f"{HOME}/cancel/sub_demo", {**form.form, "reason": posted})
    if accepted:
        assert done.status == 303
        assert received(receiver)[0].data_object["cancellation_details"]["feedback"] == posted
    else:
        assert done.status == 400
        assert received(receiver) == []


def _update(**settings: Any) -> dict[str, Any]:
    return features(subscription_update=settings)


_ONLY_BASIC = [{"product": "prod_basic", "prices": ["price_basic_monthly"]}]
_PRO_FIXED = [{"product": "prod_pro", "prices": ["price_pro_monthly", "price_pro_yearly"]}]
_PRO_UP_TO_5 = [
    {
        "product": "prod_pro",
        "prices": ["price_pro_monthly"],
        "adjustable_quantity": {"enabled": True, "maximum": 5},
    }
]
# (case, features, prices offered, quantity input shown, promotion code field shown)
UPDATE_PAGES = [
    (
        "every price, quantity",
        _update(),
        ["price_basic_monthly", "price_pro_monthly", "price_pro_yearly"],
        True,
        False,
    ),
    ("one product", _update(products=_ONLY_BASIC), ["price_basic_monthly"], False, False),
    (
        "quantity not adjustable",
        _update(products=_PRO_FIXED),
        ["price_pro_monthly", "price_pro_yearly"],
        False,
        False,
    ),
    (
        "quantity up to 5",
        _update(products=_PRO_UP_TO_5, default_allowed_updates=["quantity"]),
        [],
        True,
        False,
    ),
    (
        "price only",
        _update(default_allowed_updates=["price"]),
        ["price_basic_monthly", "price_pro_monthly", "price_pro_yearly"],
        False,
        False,
    ),
    ("promotion codes", _update(default_allowed_updates=["promotion_code"]), [], False, True),
]


@pytest.mark.parametrize(
    ("case", "chosen", "prices", "quantity", "code"),
    UPDATE_PAGES,
    ids=[row[0] for row in UPDATE_PAGES],
)
async def test_the_plan_switcher_offers_what_the_configuration_allows(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    customer: Browser,
    case: str,
    chosen: dict[str, Any],
    prices: list[str],
    quantity: bool,
    code: bool,
) -> None:
    """Only configured prices (with price allowed), quantity only where adjustable and allowed, codes only when allowed."""
    await open_portal(http, running, customer, features=chosen)
    page = await customer.get(f"{HOME}/update/sub_demo")
    assert page.status == 200
    shown = [
        price
        for price in (
            "price_basic_monthly",
            "price_pro_monthly",
            "price_pro_yearly",
            "price_legacy_monthly",
        )
        if f'id="price-{price}"' in page.text
    ]
    assert shown == prices
    assert ('id="quantity"' in page.text) is quantity
    assert ('id="promotion-code"' in page.text) is code
    if case == "quantity up to 5":
        assert 'min="1" max="5"' in page.text


# (case, features, what is posted, accepted?, the item's (price, quantity) after, discounts after)
UPDATES = [
    (
        "offered price",
        _update(products=_ONLY_BASIC),
        {"price": "price_basic_monthly"},
        True,
        ("price_basic_monthly", 1),
        [],
    ),
    (
        "price not offered",
        _update(products=_ONLY_BASIC),
        {"price": "price_pro_yearly"},
        False,
        ("price_pro_monthly", 1),
        [],
    ),
    (
        "price not allowed",
        _update(default_allowed_updates=["quantity"]),
        {"price": "price_pro_yearly"},
        False,
        ("price_pro_monthly", 1),
        [],
    ),
    (
        "quantity in limits",
        _update(products=_PRO_UP_TO_5, default_allowed_updates=["quantity"]),
        {"quantity": "5"},
        True,
        ("price_pro_monthly", 5),
        [],
    ),
    (
        "quantity over the limit",
        _update(products=_PRO_UP_TO_5, default_allowed_updates=["quantity"]),
        {"quantity": "6"},
        False,
        ("price_pro_monthly", 1),
        [],
    ),
    (
        "quantity not allowed",
        _update(default_allowed_updates=["price"]),
        {"quantity": "3"},
        False,
        ("price_pro_monthly", 1),
        [],
    ),
    (
        "promotion code",
        _update(default_allowed_updates=["promotion_code"]),
        {"promotion_code": "welcome"},
        True,
        ("price_pro_monthly", 1),
        ["SAVE25"],
    ),
    (
        "unknown promotion code",
        _update(default_allowed_updates=["promotion_code"]),
        {"promotion_code": "NOPE"},
        False,
        ("price_pro_monthly", 1),
        [],
    ),
    (
        "promotion code not allowed",
        _update(),
        {"promotion_code": "WELCOME"},
        False,
        ("price_pro_monthly", 1),
        [],
    ),
]


@pytest.mark.parametrize(
    ("case", "chosen", "posted", "accepted", "item", "discounts"),
    UPDATES,
    ids=[row[0] for row in UPDATES],
)
async def test_plan_changes_are_held_to_the_configuration(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    customer: Browser,
    receiver: Receiver,
    case: str,
    chosen: dict[str, Any],
    posted: dict[str, str],
    accepted: bool,
    item: tuple[str, int],
    discounts: list[str],
) -> None:
    """A change the configuration does not allow is refused with nothing changed; an allowed one applies."""
    await open_portal(http, running, customer, features=chosen)
    done = await customer.submit(f"{HOME}/update/sub_demo", posted)
    assert done.status == (303 if accepted else 400), done.text
    sub = running.emulator.store.subscriptions["sub_demo"]
    assert (sub.items[0].price, sub.items[0].quantity) == item
    assert sub.discounts == discounts
    assert len(received(receiver)) == (1 if accepted else 0)


# (update proration_behavior, whether the yearly switch's preview credits the unused month)
PRORATIONS = [("create_prorations", True), ("always_invoice", True), ("none", False)]


@pytest.mark.parametrize(("behavior", "credited"), PRORATIONS)
async def test_plan_change_previews_follow_the_configured_proration(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    customer: Browser,
    behavior: str,
    credited: bool,
) -> None:
    """The switcher's preview credits unused time only when the configuration prorates."""
    await open_portal(http, running, customer, features=_update(proration_behavior=behavior))
    page = await customer.get(f"{HOME}/update/sub_demo")
    start = page.text.index('id="preview-price_pro_yearly"')
    preview = page.text[start : page.text.index("</span>", start)]
    assert ("for the unused time on your current plan" in preview) is credited
    assert "Amount due today" in preview


# (business_profile, texts the pages show, texts they must not show)
PROFILES = [
    (
        {
            "headline": "Acme billing",
            "privacy_policy_url": "https://acme.example/privacy",
            "terms_of_service_url": "https://acme.example/terms",
        },
        [
            "<strong>Acme billing</strong>",
            'id="privacy-policy" href="https://acme.example/privacy"',
            'id="terms-of-service" href="https://acme.example/terms"',
        ],
        [],
    ),
    (
        {"headline": "Acme billing"},
        ["<strong>Acme billing</strong>"],
        ['id="privacy-policy"', 'id="terms-of-service"'],
    ),
    (
        {"privacy_policy_url": "https://acme.example/privacy"},
        ["<strong>Billing portal</strong>", 'id="privacy-policy"'],
        ['id="terms-of-service"', "Lattice Demo"],
    ),
]


@pytest.mark.parametrize(("profile", "shown", "hidden"), PROFILES)
async def test_the_business_profile_heads_every_page(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    customer: Browser,
    profile: dict[str, str],
    shown: list[str],
    hidden: list[str],
) -> None:
    """The configured headline and policy links appear on the home page and the sub-pages."""
    await open_portal(http, running, customer, features=ALL_ON, business_profile=profile)
    for path in (HOME, f"{HOME}/cancel/sub_demo", f"{HOME}/invoices"):
        page = await customer.get(path)
        for text in shown:
            assert text in page.text, (path, text)
        for text in hidden:
            assert text not in page.text, (path, text)


# (allowed_updates, the inputs the form has)
CUSTOMER_UPDATES = [
    (["email"], ["email"]),
    (["name", "phone"], ["name", "phone"]),
    (["address"], ["line1", "line2", "city", "postal_code", "state", "country"]),
]


@pytest.mark.parametrize(("allowed", "inputs"), CUSTOMER_UPDATES)
async def test_billing_details_edit_only_the_allowed_fields(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    customer: Browser,
    allowed: list[str],
    inputs: list[str],
) -> None:
    """allowed_updates decides which inputs the form has; a field not allowed is ignored when posted."""
    chosen = features(customer_update={"allowed_updates": allowed})
    await open_portal(http, running, customer, features=chosen)
    form = await customer.get(f"{HOME}/customer")
    every = ("name", "email", "phone", "line1", "line2", "city", "postal_code", "state", "country")
    assert [name for name in every if f'id="field-{name}"' in form.text] == inputs
    await customer.post(
        f"{HOME}/customer", {**form.form, "name": "Someone Else", "email": "else@example.com"}
    )
    record = running.emulator.store.customers["cus_demo"]
    assert (record.name == "Someone Else") is ("name" in allowed)
    assert (record.email == "else@example.com") is ("email" in allowed)
