"""The hosted portal: single-use URLs, expiry, CSRF, every flow's form, and the webhooks sent."""

import datetime
import json
import re
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator_support import (
    API_KEY,
    NOW,
    Browser,
    FakeClock,
    Receiver,
    api,
    browser,
    webhook_receiver,
)
from lattice_stripe.core.webhooks import Event
from lattice_stripe.emulator import (
    DEFAULT_WEBHOOK_SECRET,
    Emulator,
    RunningEmulator,
    load_seed,
    serve,
)
from lattice_stripe.webhooks import verify_signature

SESSIONS = "/v1/billing_portal/sessions"
HOME = "/p/portal"


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
async def customer_browser(running: RunningEmulator) -> AsyncIterator[Browser]:
    """The customer's browser."""
    async with browser(running.url) as client:
        yield client


async def portal_url(
    http: aiohttp.ClientSession, running: RunningEmulator, params: dict[str, Any]
) -> str:
    """Create a portal session and return its URL."""
    status, body, _ = await api(http, "POST", running.url + SESSIONS, params)
    assert status == 200, body
    url: str = body["url"]
    return url


async def open_portal(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    client: Browser,
    params: dict[str, Any] | None = None,
) -> str:
    """Create a session, open its URL in ``client``; return where the portal sent it."""
    url = await portal_url(
        http,
        running,
        params or {"customer": "cus_demo", "return_url": "https://app.example/account"},
    )
    opened = await client.get(url)
    assert opened.status == 303, opened.text
    assert opened.location is not None
    return opened.location


def deep_link(
    flow_type: str,
    detail: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    customer: str = "cus_demo",
) -> dict[str, Any]:
    """Session params for a ``flow_data`` deep link of ``flow_type``."""
    flow: dict[str, Any] = {"type": flow_type}
    if detail is not None:
        flow[flow_type] = detail
    if after is not None:
        flow["after_completion"] = after
    return {"customer": customer, "flow_data": flow}


@pytest.fixture
async def portal(
    http: aiohttp.ClientSession, running: RunningEmulator, customer_browser: Browser
) -> Browser:
    """The customer's browser with cus_demo's portal homepage open."""
    await open_portal(http, running, customer_browser)
    return customer_browser


def events(receiver: Receiver) -> list[Event]:
    """The deliveries the endpoint got, each checked by the library's signature verifier."""
    found = []
    for delivery in receiver.received:
        verify_signature(
            delivery.body, delivery.signature, DEFAULT_WEBHOOK_SECRET, clock=lambda: NOW
        )
        found.append(Event.from_json(delivery.body))
    return found


async def test_session_url_opens_the_portal_once(
    http: aiohttp.ClientSession, running: RunningEmulator, customer_browser: Browser
) -> None:
    """The first visit opens the portal; the same URL again shows an error page, not the portal."""
    url = await portal_url(http, running, {"customer": "cus_demo"})
    first = await customer_browser.get(url)
    assert (first.status, first.location) == (303, HOME)
    home = await customer_browser.get(HOME)
    assert home.status == 200
    assert "sub_demo" in home.text
    async with browser(running.url) as other:
        again = await other.get(url)
        assert again.status == 410
        assert "already been used" in again.text
        assert "csrf_token" not in again.text
        assert (await other.get(HOME)).status == 403


async def test_session_url_expires_after_five_minutes(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    customer_browser: Browser,
    clock: FakeClock,
) -> None:
    """An unopened URL works until 300 seconds and shows an error page after."""
    fresh = await portal_url(http, running, {"customer": "cus_demo"})
    stale = await portal_url(http, running, {"customer": "cus_demo"})
    clock.advance(299)
    assert (await customer_browser.get(fresh)).status == 303
    clock.advance(2)
    async with browser(running.url) as other:
        expired = await other.get(stale)
        assert expired.status == 410
        assert "expired" in expired.text
        assert "csrf_token" not in expired.text


async def test_expired_url_with_after_expiration_offers_a_new_login(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    customer_browser: Browser,
    clock: FakeClock,
) -> None:
    """With after_expiration customer_login, the expired page says how to get a new link."""
    url = await portal_url(
        http,
        running,
        {
            "customer": "cus_demo",
            "after_expiration": {
                "type": "customer_login",
                "customer_login": {"expires_at": int(clock.now) + 86_400},
            },
        },
    )
    clock.advance(301)
    page = await customer_browser.get(url)
    assert page.status == 410
    assert "Sign in again" in page.text


async def test_unknown_session_url_is_an_error_page(
    running: RunningEmulator, customer_browser: Browser
) -> None:
    """A made-up session secret gets a 404 page."""
    page = await customer_browser.get("/p/session/test_madeup")
    assert page.status == 404
    assert "not valid" in page.text


async def test_open_portal_times_out(
    portal: Browser,
    clock: FakeClock,
) -> None:
    """An opened portal stops working once its visit time is over."""
    clock.advance(3601)
    page = await portal.get(HOME)
    assert page.status == 410
    assert "timed out" in page.text


async def test_portal_pages_send_no_referrer_and_are_not_cached(portal: Browser) -> None:
    """Portal pages forbid Referer leaks, framing and caching."""
    page = await portal.get(HOME)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


async def test_homepage_lists_subscriptions_payment_method_and_return_link(
    http: aiohttp.ClientSession, running: RunningEmulator, customer_browser: Browser
) -> None:
    """The homepage shows each live plan, the default card and the way back."""
    async with browser(running.url) as team:
        await open_portal(http, running, team, {"customer": "cus_team"})
        page = await team.get(HOME)
    assert 'id="subscription-sub_team"' in page.text
    assert 'id="subscription-sub_team_addon"' in page.text
    assert "Trial ends" in page.text
    assert "4444" in page.text
    await open_portal(http, running, customer_browser)
    page = await customer_browser.get(HOME)
    assert 'href="https://app.example/account"' in page.text


async def test_forms_without_the_csrf_token_change_nothing(
    running: RunningEmulator,
    portal: Browser,
    receiver: Receiver,
) -> None:
    """A POST with a missing or foreign CSRF token is refused with 403 and sends no event."""
    missing = await portal.post(f"{HOME}/cancel/sub_demo", {"when": "now"})
    forged = await portal.post(f"{HOME}/cancel/sub_demo", {"when": "now", "csrf_token": "guess"})
    assert (missing.status, forged.status) == (403, 403)
    assert running.emulator.store.subscriptions["sub_demo"].status == "active"
    assert running.emulator.webhooks.log == []
    assert receiver.received == []


async def test_an_oversized_form_is_a_413_page_that_says_so(portal: Browser) -> None:
    """A form body over the size limit gets a 413 page about the request, not 'no such page'."""
    page = await portal.post(f"{HOME}/customer", {"name": "x" * 300_000})
    assert page.status == 413
    assert "could not take this request" in page.text
    assert "no such page" not in page.text


def cancel_at_period_end(running: RunningEmulator) -> None:
    """Switch the default configuration's cancellation mode to ``at_period_end``."""
    running.emulator.store.configuration["features"]["subscription_cancel"]["mode"] = (
        "at_period_end"
    )


async def test_cancel_at_period_end_sends_subscription_updated(
    running: RunningEmulator,
    portal: Browser,
    receiver: Receiver,
) -> None:
    """Canceling at period end sets cancel_at_period_end and sends a signed .updated event."""
    cancel_at_period_end(running)
    done = await portal.submit(f"{HOME}/cancel/sub_demo", {"reason": "too_expensive"})
    assert (done.status, done.location) == (303, HOME)
    page = await portal.get(HOME)
    assert "will be canceled on" in page.text
    assert "Cancels on" in page.text
    [event] = events(receiver)
    assert event.type == "customer.subscription.updated"
    assert event.id.startswith("evt_")
    assert (event.livemode, event.api_version) == (False, "2026-10-28.endive")
    assert event.data_object["cancel_at_period_end"] is True
    assert event.data_object["cancellation_details"]["feedback"] == "too_expensive"
    assert event.previous_attributes is not None
    assert event.previous_attributes["cancel_at_period_end"] is False
    assert event.previous_attributes["cancel_at"] is None


async def test_cancel_now_sends_subscription_deleted(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    portal: Browser,
    receiver: Receiver,
) -> None:
    """Canceling immediately ends the plan and sends .deleted; the plan leaves the homepage."""
    await portal.submit(f"{HOME}/cancel/sub_demo", {})
    [event] = events(receiver)
    assert event.type == "customer.subscription.deleted"
    assert event.data_object["status"] == "canceled"
    assert event.previous_attributes is None
    page = await portal.get(HOME)
    assert 'id="no-subscriptions"' in page.text
    status, sub, _ = await api(http, "GET", running.url + "/v1/subscriptions/sub_demo")
    assert (status, sub["status"]) == (200, "canceled")


_CARD = {"exp_month": "12", "exp_year": "2039", "cvc": "314"}
REFUSED_FORMS = [
    ("cancel", {"reason": "boredom"}, "Choose a reason from the list"),
    ("update/sub_demo", {"price": "price_legacy_monthly"}, "plans offered"),
    ("update/sub_demo", {"price": "price_pro_monthly", "quantity": "1"}, "different plan"),
    ("update/sub_demo", {"price": "price_pro_monthly", "quantity": "0"}, "between 1 and 50"),
    ("update/sub_demo", {"price": "price_pro_monthly", "quantity": "lots"}, "whole number"),
    ("payment-method", {**_CARD, "number": "4000000000000002"}, "declined"),
    ("payment-method", {**_CARD, "number": "4242424242424241"}, "number is invalid"),
    (
        "payment-method",
        {**_CARD, "number": "4242424242424242", "exp_year": "2001"},
        "in the past",
    ),
    (
        "payment-method",
        {**_CARD, "number": "4242424242424242", "exp_month": "13"},
        "expiration date is invalid",
    ),
    ("payment-method", {**_CARD, "number": "4242424242424242", "cvc": "1"}, "security code"),
    ("customer", {"email": "ada"}, "valid email"),
    ("customer", {"country": "Britain"}, "2-letter code"),
]


@pytest.mark.parametrize(("page", "fields", "message"), REFUSED_FORMS)
async def test_refused_forms_say_why_and_change_nothing(
    running: RunningEmulator, portal: Browser, page: str, fields: dict[str, str], message: str
) -> None:
    """A refused form comes back with status 400 and the reason; no state changes, no event."""
    path = f"{HOME}/{page}/sub_demo" if page == "cancel" else f"{HOME}/{page}"
    before = running.emulator.store.subscription_json(
        running.emulator.store.subscriptions["sub_demo"]
    )
    refused = await portal.submit(path, fields)
    assert refused.status == 400
    assert 'id="form-error"' in refused.text
    assert message in refused.text.replace("&#x27;", "'")
    after = running.emulator.store.subscription_json(
        running.emulator.store.subscriptions["sub_demo"]
    )
    assert after == before
    assert running.emulator.webhooks.log == []


async def test_renew_undoes_a_scheduled_cancellation(
    running: RunningEmulator,
    portal: Browser,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    """'Renew plan' clears the scheduled cancellation with an .updated event."""
    cancel_at_period_end(running)
    period_end = running.emulator.store.subscriptions["sub_demo"].current_period_end
    await portal.submit(f"{HOME}/cancel/sub_demo", {})
    home = await portal.get(HOME)
    await portal.post(f"{HOME}/renew/sub_demo", home.form)
    renewed = events(receiver)[-1]
    assert renewed.type == "customer.subscription.updated"
    assert renewed.data_object["cancel_at_period_end"] is False
    assert renewed.previous_attributes == {
        "cancel_at": period_end,
        "cancel_at_period_end": True,
        "canceled_at": int(clock.now),
        "cancellation_details": {"reason": "cancellation_requested"},
    }


async def test_switch_price_and_quantity(
    portal: Browser,
    receiver: Receiver,
) -> None:
    """The update form switches price and quantity; previous_attributes has the old items."""
    done = await portal.submit(
        f"{HOME}/update/sub_demo", {"price": "price_pro_yearly", "quantity": "3"}
    )
    assert done.status == 303
    [event] = events(receiver)
    assert event.type == "customer.subscription.updated"
    item = event.data_object["items"]["data"][0]
    assert (item["price"]["id"], item["quantity"]) == ("price_pro_yearly", 3)
    assert event.previous_attributes is not None
    old = event.previous_attributes["items"]["data"][0]
    assert (old["price"]["id"], old["quantity"]) == ("price_pro_monthly", 1)


async def test_update_confirm_flow_redirects_after_completion(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    customer_browser: Browser,
    receiver: Receiver,
) -> None:
    """A prepared change is confirmed, discounts applied, and the customer sent to the redirect."""
    location = await open_portal(
        http,
        running,
        customer_browser,
        deep_link(
            "subscription_update_confirm",
            {
                "subscription": "sub_demo",
                "items": [{"id": "si_demo", "price": "price_pro_yearly", "quantity": 2}],
                "discounts": [{"coupon": "SAVE25"}],
            },
            {"type": "redirect", "redirect": {"return_url": "https://app.example/thanks"}},
        ),
    )
    assert location == f"{HOME}/confirm/sub_demo"
    assert (await customer_browser.get(HOME)).location == location
    review = await customer_browser.get(location)
    assert "25% off for 3 months (&minus;$145.00)" in review.text
    assert "The new billing period starts today" in review.text
    done = await customer_browser.post(location, review.form)
    assert (done.status, done.location) == (303, "https://app.example/thanks")
    [event] = events(receiver)
    assert event.data_object["discounts"] == ["SAVE25"]
    assert event.data_object["items"]["data"][0]["quantity"] == 2
    ended = await customer_browser.get(HOME)
    assert ended.status in (403, 410)


_SUB = {"subscription": "sub_demo"}
_RETENTION = {**_SUB, "retention": {"type": "coupon_offer", "coupon_offer": {"coupon": "SAVE25"}}}
DEEP_LINKS = [
    (deep_link("subscription_cancel", _SUB), "cancel/sub_demo"),
    (deep_link("subscription_update", _SUB), "update/sub_demo"),
    (deep_link("subscription_pause", _SUB), "pause/sub_demo"),
    (
        deep_link(
            "subscription_update_confirm",
            {**_SUB, "items": [{"id": "si_demo", "price": "price_pro_yearly"}]},
        ),
        "confirm/sub_demo",
    ),
    (deep_link("payment_method_update"), "payment-method"),
    (deep_link("customer_update"), "customer"),
]


@pytest.mark.parametrize(("params", "page"), DEEP_LINKS)
async def test_flow_session_shows_only_its_flow(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    customer_browser: Browser,
    params: dict[str, Any],
    page: str,
) -> None:
    """A deep-linked session lands on its flow's page and redirects every other page there."""
    location = await open_portal(http, running, customer_browser, params)
    assert location == f"{HOME}/{page}"
    assert (await customer_browser.get(location)).status == 200
    for path in (HOME, f"{HOME}/update/sub_demo", f"{HOME}/payment-method", f"{HOME}/customer"):
        if path != location:
            other = await customer_browser.get(path)
            assert (other.status, other.location) == (303, location), path


async def test_hosted_confirmation_shows_the_custom_message(
    http: aiohttp.ClientSession, running: RunningEmulator, customer_browser: Browser
) -> None:
    """after_completion hosted_confirmation ends on a page with the (escaped) custom message."""
    await open_portal(
        http,
        running,
        customer_browser,
        deep_link(
            "subscription_pause",
            _SUB,
            {
                "type": "hosted_confirmation",
                "hosted_confirmation": {"custom_message": "<b>Enjoy the break</b>"},
            },
        ),
    )
    done = await customer_browser.submit(f"{HOME}/pause/sub_demo", {"resume": "never"})
    assert done.location == f"{HOME}/done"
    page = await customer_browser.get(done.location)
    assert "&lt;b&gt;Enjoy the break&lt;/b&gt;" in page.text
    assert "<b>Enjoy" not in page.text
    assert (await customer_browser.get(HOME)).status == 410


async def test_portal_homepage_after_completion_returns_to_the_homepage(
    http: aiohttp.ClientSession, running: RunningEmulator, customer_browser: Browser
) -> None:
    """after_completion portal_homepage lands on the homepage, which is then open."""
    await open_portal(
        http,
        running,
        customer_browser,
        deep_link("payment_method_update", after={"type": "portal_homepage"}),
    )
    done = await customer_browser.submit(
        f"{HOME}/payment-method",
        {"number": "5555 5555 5555 4444", "exp_month": "8", "exp_year": "2040", "cvc": "123"},
    )
    assert done.location == HOME
    page = await customer_browser.get(HOME)
    assert page.status == 200
    assert "Mastercard &bull;&bull;&bull;&bull; 4444" in page.text


def utc(year: int, month: int, day: int, moment: float = NOW) -> int:
    """The timestamp of ``moment``'s time of day on the given UTC date."""
    time_of_day = datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).time()
    return int(
        datetime.datetime.combine(
            datetime.date(year, month, day), time_of_day, tzinfo=datetime.timezone.utc
        ).timestamp()
    )


async def test_pausing_sets_pause_collection_and_keeps_the_status(
    portal: Browser, receiver: Receiver
) -> None:
    """Pausing and resuming each send one .updated; status stays active, as Stripe keeps it."""
    assert datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc).date() == (
        datetime.date(2026, 9, 21)
    )
    form = await portal.get(f"{HOME}/pause/sub_demo")
    assert "payments resume October 21, 2026" in form.text
    assert "payments resume December 21, 2026" in form.text
    await portal.submit(f"{HOME}/pause/sub_demo", {"resume": "3"})
    home = await portal.get(HOME)
    assert "Payments resume on December 21, 2026" in home.text
    await portal.post(f"{HOME}/resume/sub_demo", home.form)
    sent = events(receiver)
    assert [event.type for event in sent] == ["customer.subscription.updated"] * 2
    paused, resumed = (event.data_object for event in sent)
    assert paused["status"] == resumed["status"] == "active"
    assert paused["pause_collection"] == {"behavior": "void", "resumes_at": utc(2026, 12, 21)}
    assert sent[0].previous_attributes == {"pause_collection": None}
    assert resumed["pause_collection"] is None
    assert sent[1].previous_attributes == {"pause_collection": paused["pause_collection"]}


async def test_periods_are_calendar_months_and_an_interval_switch_moves_the_anchor(
    running: RunningEmulator, portal: Browser, receiver: Receiver
) -> None:
    """Monthly periods end on the same day next month; switching to yearly starts a period now."""
    sub = running.emulator.store.subscriptions["sub_demo"]
    start = datetime.datetime.fromtimestamp(sub.current_period_start, datetime.timezone.utc)
    assert (start.month, start.day) == (9, 11)
    assert sub.current_period_end == utc(2026, 10, 11, sub.current_period_start)
    await portal.submit(f"{HOME}/update/sub_demo", {"price": "price_basic_monthly"})
    [same_interval] = events(receiver)
    assert same_interval.data_object["billing_cycle_anchor"] == sub.billing_cycle_anchor
    assert "current_period_start" not in (same_interval.previous_attributes or {})
    page = await portal.get(f"{HOME}/update/sub_demo")
    await portal.post(
        f"{HOME}/update/sub_demo", {**page.form, "price": "price_pro_yearly", "quantity": "1"}
    )
    yearly = events(receiver)[-1].data_object
    assert yearly["billing_cycle_anchor"] == int(NOW)
    assert yearly["items"]["data"][0]["current_period_start"] == int(NOW)
    assert yearly["items"]["data"][0]["current_period_end"] == utc(2027, 9, 21)


async def test_invoice_history_lists_a_paid_invoice_per_period_with_hosted_pages(
    portal: Browser,
) -> None:
    """The homepage lists each past period's paid invoice (date, amount, status) and links it."""
    home = await portal.get(HOME)
    assert 'id="invoice-history"' in home.text
    rows = re.findall(
        r'<tr id="invoice-(in_\w+)"><td>([^<]+)</td><td>([^<]+)</td>.*?(Paid)', home.text
    )
    assert [(row[1], row[2], row[3]) for row in rows] == [
        ("September 11, 2026", "$29.00", "Paid"),
        ("August 11, 2026", "$29.00", "Paid"),
        ("July 11, 2026", "$29.00", "Paid"),
    ]
    hosted = await portal.get(f"{HOME}/invoices/{rows[0][0]}")
    assert hosted.status == 200
    assert "September 11, 2026 &ndash; October 11, 2026" in hosted.text
    assert f'href="{HOME}"' in hosted.text
    everything = await portal.get(f"{HOME}/invoices")
    assert everything.text.count('<tr id="invoice-') == 3


async def test_someone_elses_invoice_is_not_shown(
    running: RunningEmulator, portal: Browser
) -> None:
    """An invoice of another customer is a 404 page, never its content."""
    other = next(
        invoice
        for invoice in running.emulator.store.invoices.values()
        if invoice.customer != "cus_demo"
    )
    page = await portal.get(f"{HOME}/invoices/{other.id}")
    assert page.status == 404
    assert other.number not in page.text


async def test_plan_changes_show_the_amount_due_before_confirming(portal: Browser) -> None:
    """The update page previews each plan: prorations on the next invoice, or due today."""
    page = await portal.get(f"{HOME}/update/sub_demo")
    same = re.search(r'id="preview-price_basic_monthly">(.*?)</span>', page.text)
    other = re.search(r'id="preview-price_pro_yearly">(.*?)</span>', page.text)
    assert same is not None
    assert other is not None
    # 20 of the period's 30 days left: a $20 downgrade prorates to -$13.33, so the next
    # $9 invoice is covered (never below zero).
    assert "Amount due today: <strong>$0.00</strong>" in same.group(1)
    assert "Next invoice on October 11, 2026: $0.00" in same.group(1)
    assert "including -$13.33 of prorations" in same.group(1)
    # Yearly: a new period now, $290 less the unused $19.33 of this month.
    assert "Amount due today: <strong>$270.67</strong>" in other.group(1)
    assert "renews on September 21, 2027" in other.group(1)


async def test_new_card_attaches_and_becomes_the_default(
    portal: Browser,
    receiver: Receiver,
) -> None:
    """A valid test card sends payment_method.attached then customer.updated."""
    await portal.submit(
        f"{HOME}/payment-method",
        {"number": "4242424242424242", "exp_month": "12", "exp_year": "2039", "cvc": "314"},
    )
    attached, updated = events(receiver)
    assert attached.type == "payment_method.attached"
    assert attached.data_object["customer"] == "cus_demo"
    assert attached.data_object["card"]["last4"] == "4242"
    assert updated.type == "customer.updated"
    assert (
        updated.data_object["invoice_settings"]["default_payment_method"]
        == attached.data_object["id"]
    )
    assert updated.previous_attributes == {
        "invoice_settings": {"default_payment_method": "pm_demo_visa"}
    }


async def test_customer_update_sends_only_what_changed(
    portal: Browser,
    receiver: Receiver,
) -> None:
    """Changing the email sends customer.updated whose previous_attributes holds only the email."""
    form = await portal.get(f"{HOME}/customer")
    fields = {
        **form.form,
        "name": "Ada Lovelace",
        "email": "countess@example.com",
        "phone": "+15555550100",
        "line1": "12 Analytical Row",
        "city": "London",
        "postal_code": "N1 9GU",
        "country": "gb",
    }
    await portal.post(f"{HOME}/customer", fields)
    [event] = events(receiver)
    assert event.type == "customer.updated"
    assert event.data_object["email"] == "countess@example.com"
    assert event.previous_attributes == {"email": "ada@example.com"}


async def test_retention_offer_keeps_the_plan_with_a_coupon(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    customer_browser: Browser,
    receiver: Receiver,
) -> None:
    """Accepting the retention coupon adds the discount, shown by name and amount on the home."""
    await open_portal(
        http,
        running,
        customer_browser,
        deep_link(
            "subscription_cancel",
            _RETENTION,
        ),
    )
    form = await customer_browser.get(f"{HOME}/cancel/sub_demo")
    assert "25% off for 3 months" in form.text
    await customer_browser.post(f"{HOME}/retention/sub_demo", form.form)
    [event] = events(receiver)
    assert event.data_object["discounts"] == ["SAVE25"]
    assert event.data_object["status"] == "active"
    home = await customer_browser.get(HOME)
    assert "Discount: 25% off for 3 months (&minus;$7.25)" in home.text
    assert "SAVE25" not in home.text


async def test_user_data_is_escaped_in_pages(
    http: aiohttp.ClientSession, running: RunningEmulator, customer_browser: Browser
) -> None:
    """A customer name with markup is shown as text, never as HTML."""
    status, customer, _ = await api(
        http, "POST", running.url + "/v1/customers", {"name": "<script>alert(1)</script>"}
    )
    assert status == 200
    await open_portal(http, running, customer_browser, {"customer": customer["id"]})
    page = await customer_browser.get(HOME)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>" not in page.text


async def test_quantity_limits_from_the_seed_are_escaped(
    http: aiohttp.ClientSession, clock: FakeClock, tmp_path: Path
) -> None:
    """The quantity input's min and max come from the seed's configuration and are escaped."""
    seed = json.loads(resources.files("lattice_stripe.emulator").joinpath("seed.json").read_text())
    products = seed["configuration"]["features"]["subscription_update"]["products"]
    products[1]["adjustable_quantity"]["maximum"] = '9" autofocus onfocus="alert(1)'
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))
    emulator = Emulator(clock=clock, seed=load_seed(path))
    async with serve(emulator) as running, browser(running.url) as client:
        await open_portal(http, running, client)
        page = await client.get(f"{HOME}/update/sub_demo")
    assert page.status == 200
    assert 'max="9&quot; autofocus onfocus=&quot;alert(1)"' in page.text
    assert 'onfocus="' not in page.text


async def test_webhook_log_endpoint_lists_events_and_attempts(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    portal: Browser,
    receiver: Receiver,
) -> None:
    """GET /_emulator/webhooks shows each event, where it went and how each attempt went."""
    await portal.submit(f"{HOME}/cancel/sub_demo", {"when": "now"})
    async with http.get(
        running.url + "/_emulator/webhooks", headers={"Authorization": f"Bearer {API_KEY}"}
    ) as response:
        log = await response.json()
    [entry] = log["data"]
    assert log["url"] == receiver.url
    assert entry["event"]["type"] == "customer.subscription.deleted"
    assert entry["state"] == "delivered"
    assert [attempt["status"] for attempt in entry["attempts"]] == [200]
    assert json.loads(receiver.received[0].body) == entry["event"]


async def test_failing_endpoint_is_retried_with_backoff(
    http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """Two failures then success: three signed attempts, waiting each retry delay in turn."""
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    async with webhook_receiver(failures=2) as receiver:
        emulator = Emulator(
            clock=clock,
            webhook_url=receiver.url,
            webhook_retry_delays=(1.0, 5.0, 25.0),
            webhook_sleep=sleep,
        )
        async with serve(emulator) as running, browser(running.url) as client:
            await open_portal(http, running, client)
            await client.submit(f"{HOME}/cancel/sub_demo", {"when": "now"})
            await emulator.webhooks.drain()
            [delivery] = emulator.webhooks.log
        assert waited == [1.0, 5.0]
        assert [attempt.status for attempt in delivery.attempts] == [500, 500, 200]
        assert delivery.state == "delivered"
        assert len(events(receiver)) == 3
        assert len({event.id for event in events(receiver)}) == 1


async def test_retries_are_bounded(http: aiohttp.ClientSession, clock: FakeClock) -> None:
    """An endpoint that always fails gets one try per delay plus one, then the event fails."""

    async def sleep(seconds: float) -> None:
        return None

    async with webhook_receiver(failures=100) as receiver:
        emulator = Emulator(
            clock=clock,
            webhook_url=receiver.url,
            webhook_retry_delays=(0.5, 0.5),
            webhook_sleep=sleep,
        )
        async with serve(emulator) as running, browser(running.url) as client:
            await open_portal(http, running, client)
            await client.submit(f"{HOME}/cancel/sub_demo", {"when": "now"})
            await emulator.webhooks.drain()
        [delivery] = emulator.webhooks.log
        assert [attempt.status for attempt in delivery.attempts] == [500, 500, 500]
        assert delivery.state == "failed"


async def test_unreachable_endpoint_is_recorded_as_a_connection_failure(
    http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """No server at the URL: each attempt records the error, and the portal still completes."""
    async with webhook_receiver() as receiver:
        closed_url = receiver.url
    emulator = Emulator(clock=clock, webhook_url=closed_url, webhook_retry_delays=())
    async with serve(emulator) as running, browser(running.url) as client:
        await open_portal(http, running, client)
        done = await client.submit(f"{HOME}/cancel/sub_demo", {"when": "now"})
        assert done.status == 303
        await emulator.webhooks.drain()
    [delivery] = emulator.webhooks.log
    assert delivery.state == "failed"
    assert delivery.attempts[0].status is None
    assert delivery.attempts[0].error


@pytest.mark.parametrize(
    "page",
    [
        "update/sub_demo",
        "cancel/sub_demo",
        "pause/sub_demo",
        "payment-method",
        "customer",
        "invoices",
    ],
)
async def test_every_sub_page_links_back_to_the_portal_home(portal: Browser, page: str) -> None:
    """Each page under the homepage has a link back to it, beside the way back to the site."""
    shown = await portal.get(f"{HOME}/{page}")
    assert shown.status == 200
    assert f'id="portal-home" class="button secondary" href="{HOME}"' in shown.text
    assert 'id="return-link"' in shown.text


async def test_error_pages_lead_back_to_the_site(
    http: aiohttp.ClientSession, running: RunningEmulator, portal: Browser, clock: FakeClock
) -> None:
    """An error page links to the session's site, else the default, else says how to go back."""
    missing = await portal.get(f"{HOME}/cancel/sub_nope")
    assert missing.status == 404
    assert 'id="return-link" class="button secondary" href="https://app.example/account"' in (
        missing.text
    )
    async with browser(running.url) as stranger:
        lost = await stranger.get(HOME)
        assert lost.status == 403
        assert 'id="return-hint"' in lost.text
        running.emulator.store.configuration["default_return_url"] = "https://app.example/home"
        lost = await stranger.get("/p/session/test_madeup")
        assert 'href="https://app.example/home"' in lost.text


async def test_a_stale_form_is_refused_with_a_clear_page(
    running: RunningEmulator, portal: Browser, receiver: Receiver
) -> None:
    """Back, then the same form again: a 409 page, nothing re-applied, no second event."""
    cancel_at_period_end(running)
    form = await portal.get(f"{HOME}/cancel/sub_demo")
    fields = {**form.form, "reason": "unused"}
    first = await portal.post(f"{HOME}/cancel/sub_demo", fields)
    assert first.status == 303
    canceled_at = running.emulator.store.subscriptions["sub_demo"].canceled_at
    again = await portal.post(f"{HOME}/cancel/sub_demo", {**fields, "reason": "other"})
    assert again.status == 409
    assert "out of date" in again.text
    assert f'href="{HOME}"' in again.text or 'id="return-link"' in again.text
    assert running.emulator.store.subscriptions["sub_demo"].canceled_at == canceled_at
    assert len(events(receiver)) == 1


async def test_a_stale_retention_offer_is_refused_not_answered_no_offer(
    http: aiohttp.ClientSession,
    running: RunningEmulator,
    customer_browser: Browser,
    receiver: Receiver,
) -> None:
    """Accepting the offer twice (Back, submit) is the stale-form page, and one event only."""
    await open_portal(
        http,
        running,
        customer_browser,
        deep_link(
            "subscription_cancel",
            _RETENTION,
            {"type": "portal_homepage"},
        ),
    )
    form = await customer_browser.get(f"{HOME}/cancel/sub_demo")
    assert (await customer_browser.post(f"{HOME}/retention/sub_demo", form.form)).status == 303
    again = await customer_browser.post(f"{HOME}/retention/sub_demo", form.form)
    assert again.status == 409
    assert "No offer" not in again.text
    assert len(events(receiver)) == 1


@pytest.mark.parametrize(
    ("page", "fields", "kept", "marked"),
    [
        (
            "customer",
            {"name": "Ada L.", "email": "ada-at-example", "city": "Paris"},
            ['value="Ada L."', 'value="ada-at-example"', 'value="Paris"'],
            'id="field-email" value="ada-at-example" class="invalid" aria-invalid="true"',
        ),
        (
            "payment-method",
            {"number": "4242 4242 4242 4242", "exp_month": "12", "exp_year": "2039", "cvc": "1"},
            ['value="4242 4242 4242 4242"', 'value="2039"'],
            'id="cvc" inputmode="numeric" value="" autocomplete="cc-csc" class="invalid"',
        ),
        (
            "update/sub_demo",
            {"price": "price_pro_yearly", "quantity": "80"},
            ['value="price_pro_yearly" checked', 'value="80"'],
            'value="80" min="1" max="50" class="invalid" aria-invalid="true"',
        ),
        (
            "cancel/sub_demo",
            {"reason": "boredom"},
            ["Choose a reason from the list"],
            'id="reason" class="invalid" aria-invalid="true"',
        ),
    ],
)
async def test_a_refused_form_keeps_what_was_typed_and_marks_the_field(
    portal: Browser, page: str, fields: dict[str, str], kept: list[str], marked: str
) -> None:
    """After a refusal the form shows the customer's input again, the faulty field marked."""
    refused = await portal.submit(f"{HOME}/{page}", fields)
    assert refused.status == 400
    for text in kept:
        assert text in refused.text
    assert marked in refused.text
