"""Back to the seed: ``POST /_emulator/reset``, ``Emulator.reset`` and the webhook dispatcher's
reset, over real loopback HTTP."""

import asyncio
import base64
import json

import aiohttp
import attrs
import pytest
from aiohttp import web

from emulator_support import API_KEY, FakeClock, api, browser, webhook_receiver
from lattice_stripe.emulator import Emulator, RunningEmulator, load_seed
from lattice_stripe.emulator._state import Change
from lattice_stripe.emulator._webhooks import WebhookDispatcher

RESET = "/_emulator/reset"
HOME = "/p/portal"
SECRET = "whsec_reset"


async def logged_events(http: aiohttp.ClientSession, running: RunningEmulator) -> list[str]:
    """The types of the events in ``GET /_emulator/webhooks``."""
    async with http.get(
        running.url + "/_emulator/webhooks", headers={"Authorization": f"Bearer {API_KEY}"}
    ) as response:
        log = await response.json()
    return [entry["event"]["type"] for entry in log["data"]]


async def session_url(http: aiohttp.ClientSession, running: RunningEmulator) -> str:
    """A new portal session URL for cus_demo."""
    status, body, _ = await api(
        http,
        "POST",
        running.url + "/v1/billing_portal/sessions",
        {"customer": "cus_demo", "return_url": "https://app.example/account"},
    )
    assert status == 200, body
    url: str = body["url"]
    return url


def changes(*types: str) -> list[Change]:
    """One change per event type, about the same customer."""
    return [Change(type=kind, object={"id": "cus_1", "object": "customer"}) for kind in types]


async def test_reset_restores_the_seed_and_forgets_everything_done_since(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """Reset revives a canceled seeded plan; customers, sessions, replays and events are gone."""
    async with browser(running.url) as customer:
        opened = await customer.get(await session_url(http, running))
        assert opened.location == HOME
        await customer.submit(f"{HOME}/cancel/sub_demo", {"when": "now"})
        _, canceled, _ = await api(http, "GET", running.url + "/v1/subscriptions/sub_demo")
        assert canceled["status"] == "canceled"
        params = {"email": "jo@example.com"}
        key = {"Idempotency-Key": "reset-1"}
        _, created, _ = await api(http, "POST", running.url + "/v1/customers", params, headers=key)
        unopened = await session_url(http, running)
        assert await logged_events(http, running) == [
            "customer.subscription.deleted",
            "customer.created",
        ]

        status, body, headers = await api(http, "POST", running.url + RESET)

        assert (status, body) == (200, {"reset": True})
        assert headers["Request-Id"].startswith("req_")
        _, restored, _ = await api(http, "GET", running.url + "/v1/subscriptions/sub_demo")
        assert (restored["status"], restored["canceled_at"]) == ("active", None)
        status, _, _ = await api(http, "GET", running.url + f"/v1/customers/{created['id']}")
        assert status == 404
        assert (await customer.get(HOME)).status == 403
        assert await logged_events(http, running) == []
        async with browser(running.url) as other:
            assert (await other.get(unopened)).status == 404
        status, again, headers = await api(
            http, "POST", running.url + "/v1/customers", params, headers=key
        )
        assert status == 200, again
        assert "Idempotent-Replayed" not in headers
        assert again["id"] != created["id"]


@pytest.mark.parametrize(
    ("api_key", "message"),
    [(None, "You did not provide an API key"), ("sk_test_notTheKey", "Invalid API Key provided")],
    ids=["missing key", "wrong key"],
)
async def test_reset_without_the_api_key_is_a_401_and_changes_nothing(
    http: aiohttp.ClientSession, running: RunningEmulator, api_key: str | None, message: str
) -> None:
    """A reset without the emulator's key gets Stripe's 401 error JSON and the state stays."""
    _, created, _ = await api(http, "POST", running.url + "/v1/customers", {"name": "Kept"})

    status, body, headers = await api(http, "POST", running.url + RESET, api_key=api_key)

    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith(message)
    assert "notTheKey" not in json.dumps(body)
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, _, _ = await api(http, "GET", running.url + f"/v1/customers/{created['id']}")
    assert status == 200
    assert await logged_events(http, running) == ["customer.created"]


async def test_reset_takes_the_key_as_basic_auth_too(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """``curl -u sk_test_...: -X POST .../_emulator/reset`` works, as the API's Basic auth does."""
    await api(http, "POST", running.url + "/v1/customers", {"name": "Gone"})
    token = base64.b64encode(f"{API_KEY}:".encode()).decode()

    status, body, _ = await api(
        http, "POST", running.url + RESET, api_key=None, headers={"Authorization": f"Basic {token}"}
    )

    assert (status, body) == (200, {"reset": True})
    assert await logged_events(http, running) == []


async def test_reset_answers_only_post(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """GET on the reset hook is a 405, like any other method a URL does not serve."""
    await api(http, "POST", running.url + "/v1/customers", {"name": "Kept"})
    async with http.get(running.url + RESET, headers={"Authorization": f"Bearer {API_KEY}"}) as got:
        assert got.status == 405
        assert got.headers["Request-Id"].startswith("req_")
    assert await logged_events(http, running) == ["customer.created"]


async def test_the_index_page_names_the_reset_hook(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """The emulator's home page tells how to reset it."""
    async with http.get(running.url + "/") as response:
        assert "POST /_emulator/reset" in await response.text()


async def test_dispatcher_reset_cancels_a_delivery_and_wakes_pages_waiting_for_it(
    clock: FakeClock,
) -> None:
    """Reset cancels deliveries in progress and queued, and frees a page waiting for them."""
    reached, release = asyncio.Event(), asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        reached.set()
        await release.wait()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hooks", hang)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    dispatcher = WebhookDispatcher(secret=SECRET, clock=clock)
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        dispatcher.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
        deliveries = dispatcher.publish(changes("customer.created", "customer.updated"))
        await asyncio.wait_for(reached.wait(), 5)
        page = asyncio.ensure_future(dispatcher.settle(deliveries, timeout=60))

        await dispatcher.reset()

        await asyncio.wait_for(page, 5)
        assert dispatcher.log == []
        await dispatcher.drain(timeout=1)
        assert [len(delivery.attempts) for delivery in deliveries] == [1, 0]
    finally:
        release.set()
        await dispatcher.aclose()
        await runner.cleanup()


async def test_dispatcher_reset_cancels_pending_retries_and_keeps_delivering(
    clock: FakeClock,
) -> None:
    """A retry waiting for its delay is cancelled by reset; later events are still delivered."""
    never = asyncio.Event()

    async def wait_forever(seconds: float) -> None:
        await never.wait()

    async with webhook_receiver(failures=1) as receiver:
        dispatcher = WebhookDispatcher(
            secret=SECRET, clock=clock, url=receiver.url, retry_delays=(1.0,), sleep=wait_forever
        )
        try:
            [failed] = dispatcher.publish(changes("customer.created"))
            await dispatcher.settle([failed], timeout=5)
            assert (failed.state, len(failed.attempts)) == ("pending", 1)

            await dispatcher.reset()

            await dispatcher.drain(timeout=1)
            assert dispatcher.log == []
            [later] = dispatcher.publish(changes("customer.updated"))
            await dispatcher.drain(timeout=5)
            assert (later.state, dispatcher.log) == ("delivered", [later])
            assert len(receiver.received) == 2
        finally:
            await dispatcher.aclose()


async def test_emulator_reset_rebuilds_from_its_own_seed_and_keeps_its_settings(
    clock: FakeClock,
) -> None:
    """Emulator.reset rebuilds from its own seed and keeps its key, secret and webhook URL."""
    packaged = load_seed()
    seed = attrs.evolve(packaged, customers=packaged.customers[:1])
    url = "http://127.0.0.1:9/hooks"
    emulator = Emulator(clock=clock, seed=seed, webhook_secret=SECRET, webhook_url=url)
    emulator.store.customers.clear()
    emulator.in_flight.add("stuck")

    await emulator.reset()

    assert list(emulator.store.customers) == [packaged.customers[0].id]
    assert emulator.in_flight == set()
    assert (emulator.api_key, emulator.webhook_secret, emulator.webhooks.url) == (
        API_KEY,
        SECRET,
        url,
    )
    await emulator.webhooks.aclose()
