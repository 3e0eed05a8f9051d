"""The library's own clients against the emulator: real HTTP on loopback, both drivers."""

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web

from emulator_support import browser
from lattice_stripe import (
    AfterCompletion,
    AsyncClient,
    AuthenticationError,
    Client,
    FlowData,
    IdempotencyError,
    InvalidRequestError,
    Retention,
    SessionCreateParams,
    UpdateConfirmDiscount,
    UpdateConfirmItem,
)
from lattice_stripe.adapters.aiohttp import AiohttpTransport
from lattice_stripe.adapters.urllib3 import Urllib3Transport
from lattice_stripe.emulator import (
    DEFAULT_API_KEY,
    Emulator,
    RunningEmulator,
    serve,
    serve_in_thread,
)
from lattice_stripe.emulator import _api as emulator_api

RETURN_URL = "http://127.0.0.1:9/account"


async def _no_sleep(seconds: float) -> None:
    """Retries must not wait on the wall clock."""


@pytest.fixture(scope="module")
def threaded() -> Iterator[RunningEmulator]:
    """One emulator in a background thread for the synchronous client."""
    with serve_in_thread(Emulator()) as running:
        yield running


@pytest.fixture
def client(threaded: RunningEmulator) -> Iterator[Client]:
    """The synchronous client over urllib3, pointed at the emulator."""
    with Client(
        DEFAULT_API_KEY,
        transport=Urllib3Transport(),
        base_url=threaded.url,
        allow_http_localhost=True,
        sleep=lambda seconds: None,
    ) as client:
        yield client


@pytest.fixture
async def running() -> AsyncIterator[RunningEmulator]:
    """An emulator in the test's event loop."""
    async with serve(Emulator()) as running:
        yield running


@pytest.fixture
async def async_client(running: RunningEmulator) -> AsyncIterator[AsyncClient]:
    """The asyncio client over aiohttp, pointed at the emulator."""
    async with AsyncClient(
        DEFAULT_API_KEY,
        transport=AiohttpTransport(),
        base_url=running.url,
        allow_http_localhost=True,
        sleep=_no_sleep,
    ) as client:
        yield client


def test_serve_in_thread_reports_a_failed_start() -> None:
    """A port already taken makes serve_in_thread raise instead of hanging."""
    with (
        serve_in_thread(Emulator()) as first,
        pytest.raises(RuntimeError, match="did not start"),
        serve_in_thread(Emulator(), port=first.port),
    ):
        pass


def test_sync_client_creates_a_session(client: Client, threaded: RunningEmulator) -> None:
    """Client.create returns a decoded Session whose URL is the emulator's portal."""
    session = client.billing_portal.sessions.create(
        {"customer": "cus_demo", "return_url": RETURN_URL}
    )
    assert session.id.startswith("bps_")
    assert session.customer == "cus_demo"
    assert session.return_url == RETURN_URL
    assert session.url.startswith(threaded.url + "/p/session/")
    assert session.url not in repr(session)


def test_sync_client_gets_stripes_errors(client: Client) -> None:
    """What only the server can know (unknown IDs, ownership) comes back as typed errors."""
    with pytest.raises(InvalidRequestError) as unknown:
        client.billing_portal.sessions.create({"customer": "cus_nobody"})
    assert (unknown.value.status, unknown.value.param) == (400, "customer")
    assert unknown.value.code == "resource_missing"
    assert (unknown.value.request_id or "").startswith("req_")
    with pytest.raises(InvalidRequestError) as foreign:
        client.billing_portal.sessions.create(
            {
                "customer": "cus_demo",
                "flow_data": {
                    "type": "subscription_cancel",
                    "subscription_cancel": {"subscription": "sub_team"},
                },
            }
        )
    assert foreign.value.param == "flow_data[subscription_cancel][subscription]"


def test_sync_client_wrong_key_is_an_authentication_error(threaded: RunningEmulator) -> None:
    """A key the emulator does not know raises AuthenticationError, without the key in it."""
    with (
        Client("sk_test_notTheKey", base_url=threaded.url, allow_http_localhost=True) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.billing_portal.sessions.create({"customer": "cus_demo"})
    assert caught.value.status == 401
    assert "notTheKey" not in str(caught.value)


def test_idempotency_key_replays_and_guards(client: Client) -> None:
    """The same key returns the same session; with other params it is an IdempotencyError."""
    first = client.billing_portal.sessions.create({"customer": "cus_demo"}, idempotency_key="k-1")
    again = client.billing_portal.sessions.create({"customer": "cus_demo"}, idempotency_key="k-1")
    assert (again.id, again.url) == (first.id, first.url)
    with pytest.raises(IdempotencyError):
        client.billing_portal.sessions.create({"customer": "cus_team"}, idempotency_key="k-1")


async def test_async_client_sends_every_typed_flow(async_client: AsyncClient) -> None:
    """Each typed flow is accepted by the emulator and decodes back into the same flow."""
    flows = [
        FlowData.subscription_cancel(
            "sub_demo",
            retention=Retention.coupon_offer("SAVE25"),
            after_completion=AfterCompletion.redirect(RETURN_URL),
        ),
        FlowData.subscription_update("sub_demo"),
        FlowData.subscription_update_confirm(
            "sub_demo",
            [UpdateConfirmItem(id="si_demo", price="price_pro_yearly", quantity=2)],
            discounts=[UpdateConfirmDiscount(coupon="SAVE25")],
            after_completion=AfterCompletion.hosted_confirmation("Done!"),
        ),
        FlowData.subscription_pause("sub_demo"),
        FlowData.payment_method_update(after_completion=AfterCompletion.portal_homepage()),
        FlowData.customer_update(),
    ]
    for flow in flows:
        session = await async_client.billing_portal.sessions.create(
            SessionCreateParams(customer="cus_demo", return_url=RETURN_URL, flow_data=flow)
        )
        assert session.flow is not None
        assert session.flow.type == flow.type
        if flow.type != "payment_method_update":
            assert getattr(session.flow, flow.type) is not None


async def test_async_client_session_url_opens_the_portal(
    async_client: AsyncClient, running: RunningEmulator
) -> None:
    """The URL the client got opens the hosted portal once."""
    session = await async_client.billing_portal.sessions.create(
        {
            "customer": "cus_demo",
            "flow_data": {
                "type": "subscription_update_confirm",
                "subscription_update_confirm": {
                    "subscription": "sub_demo",
                    "items": [{"id": "si_demo", "quantity": 4}],
                },
            },
        }
    )
    assert session.flow is not None
    assert session.flow.subscription_update_confirm is not None
    assert session.flow.subscription_update_confirm.items[0].quantity == 4
    async with browser(running.url) as customer:
        opened = await customer.get(session.url)
        assert opened.location == "/p/portal/confirm/sub_demo"
        review = await customer.get(opened.location)
        assert "Lattice Pro &times; 4" in review.text


async def test_async_client_expands_the_configuration(async_client: AsyncClient) -> None:
    """``expand=["configuration"]`` decodes into a Configuration value."""
    session = await async_client.billing_portal.sessions.create(
        SessionCreateParams(customer="cus_demo", expand=("configuration",))
    )
    assert not isinstance(session.configuration, str)
    assert session.configuration.id == "bpc_emulator"
    assert session.configuration.features is not None


async def test_a_concurrent_duplicate_create_is_retried_into_the_same_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two creates with one key at once: the second's 409 is retried and both get one session."""
    entered, release, first_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    real = emulator_api.create_session

    async def slow_first(request: web.Request) -> web.Response:
        if not entered.is_set():
            entered.set()
            await release.wait()
        return await real(request)

    async def sleep_until_the_first_is_answered(seconds: float) -> None:
        release.set()
        await first_done.wait()

    monkeypatch.setattr(emulator_api, "create_session", slow_first)
    params = {"customer": "cus_demo"}
    async with (
        serve(Emulator()) as running,
        AsyncClient(
            DEFAULT_API_KEY,
            base_url=running.url,
            allow_http_localhost=True,
            sleep=sleep_until_the_first_is_answered,
        ) as client,
    ):
        first = asyncio.ensure_future(
            client.billing_portal.sessions.create(params, idempotency_key="dup-1")
        )
        first.add_done_callback(lambda _: first_done.set())
        await asyncio.wait_for(entered.wait(), 5)

        second = await client.billing_portal.sessions.create(params, idempotency_key="dup-1")

        release.set()
        assert (second.id, second.url) == ((await first).id, (await first).url)
        assert len(running.emulator.store.sessions) == 1
