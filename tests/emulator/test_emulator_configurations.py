# ruff: noqa: E501  (the rule tables read best one case per line)
"""Portal configurations end to end: both clients run one scenario table against the emulator."""

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from emulator_support import FakeClock, api, webhook_receiver
from lattice_stripe import (
    AsyncClient,
    Client,
    Configuration,
    CustomerUpdateFeature,
    Features,
    HttpRequest,
    HttpResponse,
    InvalidRequestError,
)
from lattice_stripe.adapters.aiohttp import AiohttpTransport
from lattice_stripe.adapters.urllib3 import Urllib3Transport
from lattice_stripe.emulator import (
    DEFAULT_API_KEY,
    DEFAULT_WEBHOOK_SECRET,
    Emulator,
    RunningEmulator,
    serve,
    serve_in_thread,
)
from lattice_stripe.webhooks import construct_event

PATH = "/v1/billing_portal/configurations"
DESIRED: dict[str, Any] = {
    "business_profile": {"headline": "Manage your plan"},
    "default_return_url": "https://example.com/account",
    "features": {
        "customer_update": {"enabled": True, "allowed_updates": ["email", "address"]},
        "invoice_history": {"enabled": True},
        "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
    },
}


@pytest.fixture
def threaded() -> Iterator[RunningEmulator]:
    """A fresh emulator per test, in a thread, so that the blocking client can call it."""
    with serve_in_thread(Emulator()) as running:
        yield running


class Calls:
    """One client's configuration calls, awaitable whichever client runs them; counts requests."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.url = url
        self.requests: list[HttpRequest] = []

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        resource = self.client.billing_portal.configurations
        result = getattr(resource, method)(*args, **kwargs)
        if method == "auto_paging_iter":
            if self.kind == "async":
                return [item async for item in result]
            return list(result)
        return await result if self.kind == "async" else result

    def open(self) -> None:
        calls = self

        class Counting:
            def __init__(self, inner: Any) -> None:
                self.inner = inner

            def send(self, request: HttpRequest) -> HttpResponse:
                calls.requests.append(request)
                response: HttpResponse = self.inner.send(request)
                return response

            async def asend(self, request: HttpRequest) -> HttpResponse:
                calls.requests.append(request)
                response: HttpResponse = await self.inner.asend(request)
                return response

            def close(self) -> None:
                self.inner.close()

            async def aclose(self) -> None:
                await self.inner.aclose()

        options: dict[str, Any] = {"base_url": self.url, "allow_http_localhost": True}
        if self.kind == "async":
            self.client: Any = AsyncClient(
                DEFAULT_API_KEY, transport=Counting(AiohttpTransport()), **options
            )
        else:
            self.client = Client(DEFAULT_API_KEY, transport=Counting(Urllib3Transport()), **options)

    async def close(self) -> None:
        if self.kind == "async":
            await self.client.aclose()
        else:
            self.client.close()


async def creates_and_retrieves(calls: Calls) -> None:
    """A created configuration has Stripe's defaults and reads back equal."""
    made = await calls("create", DESIRED)
    assert isinstance(made, Configuration)
    assert made.id.startswith("bpc_")
    assert (made.active, made.is_default, made.livemode) == (True, False, False)
    assert made.business_profile.headline == "Manage your plan"
    features = made.features
    assert features.customer_update is not None
    assert features.customer_update.allowed_updates == ("email", "address")
    assert features.payment_method_update is not None
    assert features.payment_method_update.enabled is False
    assert features.subscription_cancel is not None
    assert features.subscription_cancel.proration_behavior == "none"
    assert await calls("retrieve", made.id) == made
    assert calls.requests[-1].method == "GET"
    assert "Idempotency-Key" not in calls.requests[-1].headers


async def clears_a_list(calls: Calls) -> None:
    """An update with an empty allowed_updates clears it on the server."""
    made = await calls("create", DESIRED)
    cleared = Features(customer_update=CustomerUpdateFeature(allowed_updates=()))
    updated = await calls("update", made.id, {"features": cleared})
    assert updated.features.customer_update.allowed_updates == ()
    assert updated.features.customer_update.enabled is True
    assert updated.features.invoice_history.enabled is True


async def lists_and_pages(calls: Calls) -> None:
    """list gives a page; auto_paging_iter walks every page newest first."""
    made = [await calls("create", {**DESIRED, "name": f"n{number}"}) for number in range(3)]
    first = await calls("list", {"limit": 2})
    assert first.has_more is True
    assert first.url == PATH
    assert len(first.data) == 2
    every = await calls("auto_paging_iter", {"limit": 2})
    ids = [item.id for item in every]
    assert ids[:3] == [item.id for item in reversed(made)]
    assert ids[3] == "bpc_emulator"
    defaults = await calls("list", {"is_default": True})
    assert [item.id for item in defaults.data] == ["bpc_emulator"]


async def unknown_id_is_404(calls: Calls) -> None:
    """An unknown configuration ID is Stripe's 404 resource_missing."""
    with pytest.raises(InvalidRequestError) as info:
        await calls("retrieve", "bpc_nothing")
    assert info.value.status == 404
    assert info.value.code == "resource_missing"


async def server_rules_name_the_param(calls: Calls) -> None:
    """What only the server knows (unknown prices, the default's activity) names its param."""
    products = {"enabled": True, "products": [{"product": "prod_basic", "prices": ["price_x"]}]}
    with pytest.raises(InvalidRequestError) as price:
        await calls("create", {"features": {"subscription_update": products}})
    assert price.value.param == "features[subscription_update][products][0][prices][0]"
    with pytest.raises(InvalidRequestError) as default:
        await calls("update", "bpc_emulator", {"active": False})
    assert default.value.param == "active"


async def ensure_is_idempotent(calls: Calls) -> None:
    """ensure creates once, then finds it and sends nothing beyond the lookup; changes go alone."""
    first = await calls("ensure", DESIRED, key="main")
    assert first.created is True
    assert first.configuration.metadata == {"lattice_stripe_key": "main"}
    before = len(calls.requests)
    second = await calls("ensure", DESIRED, key="main")
    assert second.in_sync
    assert second.configuration.id == first.configuration.id
    assert all(request.method == "GET" for request in calls.requests[before:])
    changed = {**DESIRED, "business_profile": {"headline": "Your account"}}
    third = await calls("ensure", changed, key="main")
    assert [str(change) for change in third.changes] == [
        "business_profile.headline: 'Manage your plan' -> 'Your account'"
    ]
    assert calls.requests[-1].body == b"business_profile%5Bheadline%5D=Your%20account"
    assert third.configuration.business_profile.headline == "Your account"
    other = await calls("ensure", DESIRED, key="other")
    assert other.created is True
    assert other.configuration.id != first.configuration.id


async def edits_metadata(calls: Calls) -> None:
    """Metadata keys are set, one is removed with '', and {} removes them all."""
    made = await calls("create", {**DESIRED, "metadata": {"a": "1", "b": "2"}})
    one_less = await calls("update", made.id, {"metadata": {"a": "", "c": "3"}})
    assert one_less.metadata == {"b": "2", "c": "3"}
    emptied = await calls("update", made.id, {"metadata": {}})
    assert emptied.metadata == {}


SCENARIOS: list[Callable[[Calls], Awaitable[None]]] = [
    edits_metadata,
    creates_and_retrieves,
    clears_a_list,
    lists_and_pages,
    unknown_id_is_404,
    server_rules_name_the_param,
    ensure_is_idempotent,
]


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.__name__)
def test_configuration_scenarios(
    kind: str, scenario: Callable[[Calls], Awaitable[None]], threaded: RunningEmulator
) -> None:
    """Both clients pass every configuration scenario against the same emulator."""
    calls = Calls(kind, threaded.url)

    async def run() -> None:
        calls.open()
        try:
            await scenario(calls)
        finally:
            await calls.close()

    asyncio.run(run())


async def test_create_and_update_publish_signed_events(clock: FakeClock) -> None:
    """Creating and updating send signed billing_portal.configuration.created/.updated events."""
    import aiohttp

    async with webhook_receiver() as receiver:
        emulator = Emulator(clock=clock, webhook_url=receiver.url)
        async with serve(emulator) as running, aiohttp.ClientSession() as http:
            status, made, _ = await api(http, "POST", running.url + PATH, DESIRED)
            assert status == 200, made
            clock.advance(60)
            status, updated, _ = await api(
                http, "POST", f"{running.url}{PATH}/{made['id']}", {"name": "Main"}
            )
            assert status == 200, updated
            assert updated["updated"] == made["updated"] + 60
            for _ in range(200):
                if len(receiver.received) >= 2:
                    break
                await asyncio.sleep(0.01)
    events = [
        construct_event(
            delivery.body, delivery.signature, DEFAULT_WEBHOOK_SECRET, clock=lambda: clock.now
        )
        for delivery in receiver.received
    ]
    assert [event.type for event in events] == [
        "billing_portal.configuration.created",
        "billing_portal.configuration.updated",
    ]
    raw = [json.loads(delivery.body) for delivery in receiver.received]
    assert raw[0]["data"]["object"]["id"] == made["id"]
    assert raw[1]["data"]["previous_attributes"]["name"] is None


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({}, "features"),
        ({"features": {"invoice_history": {"enabled": "maybe"}}}, "features[invoice_history][enabled]"),
        ({"features": {"customer_update": {"allowed_updates": ["email"]}}}, "features[customer_update][enabled]"),
        ({"features": {"subscription_cancel": {"enabled": True, "proration_behavior": "always_invoice"}}},
         "features[subscription_cancel][proration_behavior]"),
        ({"features": {"invoice_history": {"enabled": True}}, "colour": "red"}, "colour"),
    ],
)  # fmt: skip
async def test_emulator_validates_creates_as_stripe_does(
    running: RunningEmulator, http: Any, params: dict[str, Any], param: str
) -> None:
    """A bad create from any client is a 400 invalid_request_error naming the param."""
    status, body, _ = await api(http, "POST", running.url + PATH, params)
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param


async def test_pagination_cursors_and_unknown_cursor(running: RunningEmulator, http: Any) -> None:
    """starting_after and ending_before page through; an unknown cursor is a 400 with its param."""
    ids = []
    for _ in range(3):
        status, made, _ = await api(http, "POST", running.url + PATH, DESIRED)
        assert status == 200
        ids.append(made["id"])
    newest_first = [*reversed(ids), "bpc_emulator"]
    status, page, _ = await api(
        http, "GET", f"{running.url}{PATH}?limit=2&starting_after={newest_first[0]}"
    )
    assert [item["id"] for item in page["data"]] == newest_first[1:3]
    assert page["has_more"] is True
    status, back, _ = await api(
        http, "GET", f"{running.url}{PATH}?limit=2&ending_before={newest_first[3]}"
    )
    assert [item["id"] for item in back["data"]] == newest_first[1:3]
    assert back["has_more"] is True
    status, error, _ = await api(http, "GET", f"{running.url}{PATH}?starting_after=bpc_nope")
    assert status == 400
    assert error["error"]["param"] == "starting_after"


def test_portal_config_apply_cli(
    threaded: RunningEmulator,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI dry-runs (4), creates, reports in sync (0), then shows and applies a change."""
    from lattice_stripe.__main__ import main

    monkeypatch.setenv("STRIPE_SECRET_KEY", DEFAULT_API_KEY)
    declared = tmp_path / "portal.json"
    declared.write_text(json.dumps(DESIRED))
    base = ["portal-config", "apply", str(declared), "--base-url", threaded.url]
    assert main([*base, "--dry-run"]) == 4
    assert "would create" in capsys.readouterr().out
    assert threaded.emulator.store.configurations.keys() == {"bpc_emulator"}
    assert main(base) == 0
    assert "did create" in capsys.readouterr().out
    assert main([*base, "--dry-run"]) == 0
    assert "is in sync" in capsys.readouterr().out
    declared.write_text(json.dumps({**DESIRED, "name": "Main portal"}))
    assert main([*base, "--dry-run"]) == 4
    assert "~ name: None -> 'Main portal'" in capsys.readouterr().out
    assert main(base) == 0
    names = {item["name"] for item in threaded.emulator.store.configurations.values()}
    assert "Main portal" in names


@pytest.mark.parametrize(
    ("content", "status"),
    [("{not json", 3), (json.dumps({"features": {}}), 3), (json.dumps({"nme": "x"}), 3)],
)
def test_portal_config_apply_refuses_an_invalid_file(
    content: str,
    status: int,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unreadable or invalid file exits 3 with the reason, before any request."""
    from lattice_stripe.__main__ import main

    monkeypatch.setenv("STRIPE_SECRET_KEY", DEFAULT_API_KEY)
    declared = tmp_path / "portal.json"
    declared.write_text(content)
    base_url = "http://127.0.0.1:9"  # nothing listens: a request would fail with exit 1
    assert main(["portal-config", "apply", str(declared), "--base-url", base_url]) == status
    assert "invalid file" in capsys.readouterr().err


def test_portal_config_apply_api_error_and_missing_key(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No reachable API exits 1; no STRIPE_SECRET_KEY exits 2; the key is never printed."""
    from lattice_stripe.__main__ import main

    declared = tmp_path / "portal.json"
    declared.write_text(json.dumps(DESIRED))
    args = ["portal-config", "apply", str(declared), "--base-url", "http://127.0.0.1:9"]
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    assert main(args) == 2
    monkeypatch.setenv("STRIPE_SECRET_KEY", DEFAULT_API_KEY)
    monkeypatch.setattr(
        "lattice_stripe.client._Settings.__init__.__defaults__", None, raising=False
    )
    assert main([*args]) == 1
    captured = capsys.readouterr()
    assert DEFAULT_API_KEY not in captured.out + captured.err


async def test_a_session_uses_the_configuration_it_names(
    running: RunningEmulator, http: Any
) -> None:
    """A session may name any active configuration (expanded as that one); inactive is refused."""
    status, made, _ = await api(http, "POST", running.url + PATH, DESIRED)
    assert status == 200
    sessions = running.url + "/v1/billing_portal/sessions"
    params = {"customer": "cus_demo", "configuration": made["id"], "expand": ["configuration"]}
    status, session, _ = await api(http, "POST", sessions, params)
    assert status == 200, session
    assert session["configuration"]["id"] == made["id"]
    assert session["return_url"] == DESIRED["default_return_url"]
    status, _, _ = await api(http, "POST", f"{running.url}{PATH}/{made['id']}", {"active": False})
    assert status == 200
    status, refused, _ = await api(http, "POST", sessions, params)
    assert status == 400
    assert refused["error"]["param"] == "configuration"
    status, missing_one, _ = await api(http, "POST", sessions, {**params, "configuration": "bpc_x"})
    assert (status, missing_one["error"]["param"]) == (400, "configuration")
