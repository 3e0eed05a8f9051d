"""The emulator's own attack surface: its test hooks, its URLs and its memory."""

import aiohttp
import pytest

from emulator_support import API_KEY, FakeClock, api, browser
from lattice_stripe.emulator import Emulator, RunningEmulator, serve

SESSIONS = "/v1/billing_portal/sessions"


@pytest.mark.parametrize("authorization", [None, "Bearer sk_test_wrong", "Basic Og=="])
async def test_webhook_log_needs_the_api_key(
    http: aiohttp.ClientSession, running: RunningEmulator, authorization: str | None
) -> None:
    """GET /_emulator/webhooks (customer data) is a 401 without the emulator's API key."""
    headers = {} if authorization is None else {"Authorization": authorization}
    async with http.get(running.url + "/_emulator/webhooks", headers=headers) as refused:
        assert refused.status == 401
        assert "data" not in await refused.json()
    allowed = {"Authorization": f"Bearer {API_KEY}"}
    async with http.get(running.url + "/_emulator/webhooks", headers=allowed) as response:
        assert response.status == 200
        assert (await response.json())["data"] == []


async def test_session_urls_ignore_a_forged_host_header(
    http: aiohttp.ClientSession, running: RunningEmulator
) -> None:
    """A request's Host header never reaches the session URL: the bound address does."""
    status, body, _ = await api(
        http,
        "POST",
        running.url + SESSIONS,
        {"customer": "cus_demo"},
        headers={"Host": "evil.example"},
    )
    assert status == 200
    assert body["url"].startswith(running.url + "/p/session/test_")


async def test_session_urls_use_the_configured_public_url(
    http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """With public_url set (a proxy in front), session URLs start with it, whatever the Host."""
    emulator = Emulator(clock=clock, public_url="https://stripe.test.example/")
    async with serve(emulator) as running:
        status, body, _ = await api(
            http,
            "POST",
            running.url + SESSIONS,
            {"customer": "cus_demo"},
            headers={"Host": "evil.example"},
        )
    assert status == 200
    assert body["url"].startswith("https://stripe.test.example/p/session/test_")


@pytest.mark.parametrize(
    "url",
    [
        "https://bank.example\\@evil.example/",
        "https://bank.example\\evil.example/",
        "http://127.0.0.1:8000\\@evil.example/",
        "https://bank.example@evil.example/",
    ],
)
@pytest.mark.parametrize("where", ["return_url", "redirect"])
async def test_return_urls_with_backslash_or_user_info_tricks_are_refused(
    http: aiohttp.ClientSession, running: RunningEmulator, url: str, where: str
) -> None:
    """A return URL the library's guard refuses is refused by the emulator too, naming it."""
    if where == "return_url":
        params: dict[str, object] = {"customer": "cus_demo", "return_url": url}
        param = "return_url"
    else:
        params = {
            "customer": "cus_demo",
            "flow_data": {
                "type": "payment_method_update",
                "after_completion": {"type": "redirect", "redirect": {"return_url": url}},
            },
        }
        param = "flow_data[after_completion][redirect][return_url]"
    status, body, _ = await api(http, "POST", running.url + SESSIONS, params)
    assert status == 400
    assert (body["error"]["param"], body["error"]["code"]) == (param, "url_invalid")
    assert running.emulator.store.sessions == {}


async def test_stored_sessions_are_bounded_oldest_first(
    http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """Beyond max_remembered, the oldest unopened session is forgotten (its URL is a 404 page)."""
    emulator = Emulator(clock=clock, max_remembered=3)
    async with serve(emulator) as running:
        urls = []
        for _ in range(5):
            status, body, _ = await api(
                http, "POST", running.url + SESSIONS, {"customer": "cus_demo"}
            )
            assert status == 200
            urls.append(body["url"])
        assert len(emulator.store.sessions) == 3
        async with browser(running.url) as client:
            assert (await client.get(urls[0])).status == 404
            assert (await client.get(urls[-1])).status == 303


async def test_idempotent_answers_are_bounded_oldest_first(
    http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """Beyond max_remembered, the oldest saved answer is forgotten; the newest still replays."""
    emulator = Emulator(clock=clock, max_remembered=3)
    async with serve(emulator) as running:
        for index in range(5):
            status, _, _ = await api(
                http,
                "POST",
                running.url + SESSIONS,
                {"customer": "cus_demo"},
                headers={"Idempotency-Key": f"key-{index}"},
            )
            assert status == 200
        assert list(emulator.idempotent) == ["key-2", "key-3", "key-4"]
        _, _, replay = await api(
            http,
            "POST",
            running.url + SESSIONS,
            {"customer": "cus_demo"},
            headers={"Idempotency-Key": "key-4"},
        )
        assert replay["Idempotent-Replayed"] == "true"


def test_max_remembered_must_be_positive() -> None:
    """max_remembered=0 would forget every session at once: it is refused at construction."""
    with pytest.raises(ValueError, match="max_remembered"):
        Emulator(max_remembered=0)
