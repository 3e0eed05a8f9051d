"""The real transports on loopback: what arrives on the wire, pooling, ownership, closing.

The tests that hold for every transport run over each of ``transports.KINDS``
(sync ones through ``Client``, async ones through ``AsyncClient``), over HTTP
and HTTPS; the tests of one library's own features follow them.
"""

import asyncio
import ssl
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import aiohttp
import attrs
import pytest
import urllib3

from faultserver import FaultServer, Raw, ReceivedRequest, Stall
from lattice_stripe import AsyncClient, Client, Session
from lattice_stripe.adapters.aiohttp import AiohttpTransport
from lattice_stripe.adapters.urllib3 import Urllib3Transport
from lattice_stripe.core.config import API_VERSION
from lattice_stripe.core.errors import APIConnectionError
from lattice_stripe.core.http import HttpRequest, HttpResponse
from lattice_stripe.core.ports import AsyncTransport, SyncTransport
from transports import ASYNC_KINDS, KINDS, Kind, client_trust, server_tls

API_KEY = "sk_test_51TransportWireKey0123456789"
OTHER_KEY = "rk_test_51RestrictedWireKey0123456789"
PARAMS = {
    "customer": "cus_Wire",
    "return_url": "https://example.com/account?tab=billing&x=1",
    "locale": "fr-CA",
    "flow_data": {
        "type": "subscription_cancel",
        "subscription_cancel": {"subscription": "sub_Wire"},
        "after_completion": {
            "type": "redirect",
            "redirect": {"return_url": "https://example.com/done?next=%2Faccount&lang=fr"},
        },
    },
}
SIMPLE = {"customer": "cus_Wire", "return_url": "https://example.com/account"}


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """A fresh loopback server, stopped after the test."""
    with FaultServer() as running:
        yield running


@pytest.fixture(params=KINDS, ids=[kind.name for kind in KINDS])
def kind(request: pytest.FixtureRequest) -> Kind:
    """Each test runs over every transport."""
    chosen: Kind = request.param
    return chosen


@pytest.fixture(params=ASYNC_KINDS, ids=[kind.name for kind in ASYNC_KINDS])
def async_kind(request: pytest.FixtureRequest) -> Kind:
    """Each test runs over every async transport."""
    chosen: Kind = request.param
    return chosen


@pytest.fixture(params=["http", "https"])
def any_server(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[FaultServer, ssl.SSLContext | None]]:
    """A loopback server over HTTP, then over HTTPS (a throwaway CA), with the client trust."""
    if request.param == "http":
        with FaultServer() as running:
            yield running, None
    else:
        with FaultServer(tls=server_tls("127.0.0.1")) as running:
            yield running, client_trust()


def creates(
    kind: Kind,
    base_url: str,
    *calls: Mapping[str, Any],
    trust: ssl.SSLContext | None = None,
) -> tuple[list[Session], SyncTransport | AsyncTransport]:
    """Each call's create() arguments in turn, through one client over a fresh ``kind``.

    The client (and so its transport) is closed before this returns; an async
    kind runs in a fresh event loop that must end with no task left.
    """
    transport = kind.make(trust)
    if not kind.is_async:
        assert isinstance(transport, SyncTransport)
        with Client(API_KEY, transport=transport, base_url=base_url, sleep=no_sleep) as client:
            return [client.billing_portal.sessions.create(**call) for call in calls], transport
    assert isinstance(transport, AsyncTransport)

    async def run() -> list[Session]:
        async with AsyncClient(API_KEY, transport=transport, base_url=base_url) as client:
            made = [await client.billing_portal.sessions.create(**call) for call in calls]
        assert asyncio.all_tasks() == {asyncio.current_task()}
        return made

    return asyncio.run(run()), transport


def no_sleep(seconds: float) -> None:
    """Never wait between retries."""


def assert_create_arrived_intact(request: ReceivedRequest, *, api_key: str, key: str) -> None:
    """One create request as Stripe would receive it."""
    assert request.method == "POST"
    assert request.path == "/v1/billing_portal/sessions"
    assert request.params == PARAMS
    assert request.header("Authorization") == f"Bearer {api_key}"
    assert request.header("Stripe-Version") == API_VERSION
    assert request.header("Idempotency-Key") == key
    assert request.header("Content-Type") == "application/x-www-form-urlencoded"
    assert request.header("Content-Length") == str(len(request.body))
    assert request.header("Accept") == "application/json"
    assert (request.header("User-Agent") or "").startswith("lattice-stripe/")


def assert_session_echoes(session: Session, request: ReceivedRequest) -> None:
    """The decoded session is the one the server made for ``request``."""
    assert session.object == "billing_portal.session"
    assert session.id.startswith("bps_1Loopback")
    assert session.customer == "cus_Wire"
    assert session.return_url == PARAMS["return_url"]
    assert session.livemode is False
    assert session.url.startswith("https://billing.stripe.com/p/session/test_")


# -- what arrives ----------------------------------------------------------------------


def test_create_arrives_intact(
    kind: Kind, any_server: tuple[FaultServer, ssl.SSLContext | None]
) -> None:
    """Method, path, form body and headers reach the server, over HTTP and HTTPS."""
    server, trust = any_server
    [session], _ = creates(
        kind, server.base_url, {"params": PARAMS, "idempotency_key": "wire-key-1"}, trust=trust
    )
    [request] = server.requests
    assert_create_arrived_intact(request, api_key=API_KEY, key="wire-key-1")
    assert_session_echoes(session, request)


def test_per_call_options_arrive(kind: Kind, server: FaultServer) -> None:
    """Per-call api_key, stripe_account and stripe_version reach the wire."""
    creates(
        kind,
        server.base_url,
        {
            "params": PARAMS,
            "idempotency_key": "wire-key-3",
            "api_key": OTHER_KEY,
            "stripe_account": "acct_1Wire",
            "stripe_version": "2025-01-27.acacia",
        },
    )
    [request] = server.requests
    assert request.header("Authorization") == f"Bearer {OTHER_KEY}"
    assert request.header("Stripe-Account") == "acct_1Wire"
    assert request.header("Stripe-Version") == "2025-01-27.acacia"


DUPLICATE_HEADERS = Raw(
    data=(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Trace: a\r\nX-Trace: b\r\n"
        b"Request-Id: req_dup\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
)


def probe(server: FaultServer) -> HttpRequest:
    """A bare request to the loopback server, for the transports' port methods."""
    return HttpRequest(
        method="POST",
        url=f"{server.base_url}/v1/probe",
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "text/plain"},
        body=b"ping",
        timeout=2.0,
        connect_timeout=1.0,
    )


def send_each(
    kind: Kind, *requests: HttpRequest, trust: ssl.SSLContext | None = None
) -> list[HttpResponse]:
    """Send each request in turn through one fresh transport of ``kind``, then close it."""
    transport = kind.make(trust)
    if isinstance(transport, SyncTransport):
        try:
            return [transport.send(request) for request in requests]
        finally:
            transport.close()
    assert isinstance(transport, AsyncTransport)

    async def run() -> list[HttpResponse]:
        try:
            return [await transport.asend(request) for request in requests]
        finally:
            await transport.aclose()

    return asyncio.run(run())


def test_response_headers_are_lower_case_and_joined(kind: Kind, server: FaultServer) -> None:
    """The transport's response: lower-case names, a repeated header joined with ', '."""
    server.script(DUPLICATE_HEADERS)
    [response] = send_each(kind, probe(server))
    assert response.status == 200
    assert response.body == b"{}"
    assert response.headers["x-trace"] == "a, b"
    assert response.request_id == "req_dup"


def test_transports_fit_the_ports(kind: Kind) -> None:
    """Each real transport satisfies its port Protocol."""
    port = AsyncTransport if kind.is_async else SyncTransport
    assert isinstance(kind.make(None), port)


# -- one pool, reused ------------------------------------------------------------------


def test_reuses_one_connection(
    kind: Kind, any_server: tuple[FaultServer, ssl.SSLContext | None]
) -> None:
    """Five sequential creates through one client travel over one TCP connection."""
    server, trust = any_server
    creates(kind, server.base_url, *[{"params": SIMPLE}] * 5, trust=trust)
    assert server.connection_count == 1
    assert [request.connection for request in server.requests] == [0] * 5


def test_invalid_url_is_refused(kind: Kind, server: FaultServer) -> None:
    """A URL with no host is a non-retryable APIConnectionError, and nothing is sent."""
    with pytest.raises(APIConnectionError) as caught:
        send_each(kind, attrs.evolve(probe(server), url="http:///v1/probe"))
    assert caught.value.should_retry is False
    assert "the Stripe URL is invalid" in str(caught.value)
    assert server.connection_count == 0


# -- ownership and closing -------------------------------------------------------------


def test_owned_connections_are_closed(kind: Kind, server: FaultServer) -> None:
    """Closing the client closes what its transport opened: the server sees every connection end."""
    _, transport = creates(kind, server.base_url, {"params": SIMPLE})
    assert getattr(transport, "closed", True)
    assert server.wait_all_closed()
    assert server.connection_count == 1


def test_client_context_manager_closes(kind: Kind, server: FaultServer) -> None:
    """Leaving the client's ``with`` block closes its transport, even when the block raises."""
    transport = kind.make(None)
    if isinstance(transport, SyncTransport):

        def create_then_fail_sync(client: Client) -> None:
            with client:
                client.billing_portal.sessions.create(SIMPLE)
                raise KeyError("leaving the block")

        with pytest.raises(KeyError):
            create_then_fail_sync(Client(API_KEY, transport=transport, base_url=server.base_url))
    else:
        assert isinstance(transport, AsyncTransport)

        async def create_then_fail() -> None:
            async with AsyncClient(
                API_KEY, transport=transport, base_url=server.base_url
            ) as client:
                await client.billing_portal.sessions.create(SIMPLE)
                raise KeyError("leaving the block")

        with pytest.raises(KeyError):
            asyncio.run(create_then_fail())
    assert getattr(transport, "closed", True)
    assert server.wait_all_closed()


async def test_cancelled_call_leaves_nothing_open(async_kind: Kind, server: FaultServer) -> None:
    """A call the caller cancels mid-wait propagates the cancellation and drops its socket."""
    server.script(Stall(seconds=5.0))
    transport = async_kind.async_()
    async with AsyncClient(API_KEY, transport=transport, base_url=server.base_url) as client:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.billing_portal.sessions.create(SIMPLE), timeout=0.2)
        assert server.wait_all_closed()
        assert len(server.requests) == 1
    assert asyncio.all_tasks() == {asyncio.current_task()}


def test_closed_transport_refuses(kind: Kind, server: FaultServer) -> None:
    """A closed transport sends nothing: a non-retryable APIConnectionError, no connection."""
    transport = kind.make(None)
    if isinstance(transport, SyncTransport):
        transport.close()
        with (
            Client(
                API_KEY, transport=transport, base_url=server.base_url, sleep=no_sleep
            ) as client,
            pytest.raises(APIConnectionError) as caught,
        ):
            client.billing_portal.sessions.create(SIMPLE)
    else:
        assert isinstance(transport, AsyncTransport)

        async def create_after_close() -> None:
            await transport.aclose()
            client = AsyncClient(API_KEY, transport=transport, base_url=server.base_url)
            await client.billing_portal.sessions.create(SIMPLE)

        with pytest.raises(APIConnectionError) as caught:
            asyncio.run(create_after_close())
    assert caught.value.should_retry is False
    assert server.connection_count == 0


def test_async_transport_is_built_outside_a_loop(async_kind: Kind, server: FaultServer) -> None:
    """Building the transport and client with no running loop neither warns nor fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        transport = async_kind.async_()
        client = AsyncClient(API_KEY, transport=transport, base_url=server.base_url)

    async def use() -> Session:
        async with client:
            return await client.billing_portal.sessions.create(SIMPLE)

    session = asyncio.run(use())
    assert session.customer == "cus_Wire"
    assert getattr(transport, "closed", True)
    assert server.wait_all_closed()


def test_async_transport_is_bound_to_its_first_loop(async_kind: Kind, server: FaultServer) -> None:
    """An owned transport used from a second event loop is refused, not corrupted."""
    transport = async_kind.async_()
    client = AsyncClient(API_KEY, transport=transport, base_url=server.base_url)
    first = asyncio.new_event_loop()
    try:
        first.run_until_complete(client.billing_portal.sessions.create(SIMPLE))
        with pytest.raises(APIConnectionError) as caught:
            asyncio.run(client.billing_portal.sessions.create(SIMPLE))
        assert caught.value.should_retry is False
        assert "another event loop" in str(caught.value)
        assert len(server.requests) == 1
        first.run_until_complete(client.aclose())
    finally:
        first.close()
    assert server.wait_all_closed()


def test_default_async_transport_is_built_outside_a_loop(server: FaultServer) -> None:
    """``AsyncClient()`` with its default transport can be built at import time."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client = AsyncClient(API_KEY, base_url=server.base_url)

    async def use() -> Session:
        async with client:
            return await client.billing_portal.sessions.create(SIMPLE)

    assert asyncio.run(use()).customer == "cus_Wire"
    assert server.wait_all_closed()


# -- urllib3's own features ------------------------------------------------------------


def test_urllib3_sends_after_a_shared_manager_evicts_its_pool(server: FaultServer) -> None:
    """A pool a caller's manager evicted is let go (its socket ends); a fresh one sends next."""
    with urllib3.PoolManager(num_pools=1) as manager, FaultServer() as other:
        transport = Urllib3Transport(manager)
        assert transport.send(probe(server)).status == 200
        reply = manager.request("POST", f"{other.base_url}/v1/other", body=b"x", retries=False)
        assert reply.status == 200
        assert server.wait_all_closed()
        assert transport.send(probe(server)).status == 200
        assert len(other.requests) == 1
    assert [request.connection for request in server.requests] == [0, 1]


def test_urllib3_keeps_its_host_recent_in_a_shared_manager(server: FaultServer) -> None:
    """A shared manager evicting a pool picks an idler host's, not the transport's busy one."""
    with urllib3.PoolManager(num_pools=2) as manager, FaultServer() as idle, FaultServer() as new:
        transport = Urllib3Transport(manager)
        transport.send(probe(server))
        manager.request("POST", f"{idle.base_url}/v1/idle", body=b"x", retries=False)
        transport.send(probe(server))
        manager.request("POST", f"{new.base_url}/v1/new", body=b"x", retries=False)
        assert idle.wait_all_closed()
        transport.send(probe(server))
        assert not server.wait_all_closed(0.2)
    assert [request.connection for request in server.requests] == [0, 0, 0]


def test_urllib3_sends_after_a_shared_manager_is_cleared(server: FaultServer) -> None:
    """After clear() on a caller's manager, its old pool is let go and a fresh one sends."""
    with urllib3.PoolManager() as manager:
        transport = Urllib3Transport(manager)
        assert transport.send(probe(server)).status == 200
        manager.clear()
        assert server.wait_all_closed()
        assert transport.send(probe(server)).status == 200
    assert [request.connection for request in server.requests] == [0, 1]


def test_urllib3_keeps_each_origin_apart(server: FaultServer) -> None:
    """One transport sending to two origins delivers each request to its own server."""
    with Urllib3Transport() as transport, FaultServer() as other:
        for _ in range(2):
            transport.send(probe(server))
            transport.send(attrs.evolve(probe(other), url=f"{other.base_url}/v1/other"))
        assert [request.path for request in other.requests] == ["/v1/other"] * 2
    assert [request.path for request in server.requests] == ["/v1/probe"] * 2


def test_urllib3_proxy_manager_sends_absolute_urls(server: FaultServer) -> None:
    """A caller's ProxyManager still forms the request: the proxy sees the absolute URL."""
    target = "http://127.0.0.1:9"
    with urllib3.ProxyManager(server.base_url) as proxy:
        client = Client(API_KEY, transport=Urllib3Transport(proxy), base_url=target)
        with client:
            client.billing_portal.sessions.create(SIMPLE)
    [request] = server.requests
    assert request.path == f"{target}/v1/billing_portal/sessions"
    assert request.header("Host") == "127.0.0.1:9"


def test_urllib3_injected_pool_is_left_open(server: FaultServer) -> None:
    """Closing the client leaves a caller's PoolManager, and its connection, usable."""
    pool = urllib3.PoolManager()
    try:
        transport = Urllib3Transport(pool)
        with Client(API_KEY, transport=transport, base_url=server.base_url) as client:
            client.billing_portal.sessions.create(SIMPLE)
        assert transport.closed
        assert not server.wait_all_closed(0.2)
        reply = pool.request("POST", f"{server.base_url}/v1/after-close", body=b"x", retries=False)
        assert reply.status == 200
        assert server.connection_count == 1
    finally:
        pool.connection_from_url(server.base_url).close()
    assert server.wait_all_closed()


# -- aiohttp's own features ---------------------------------------------------------


async def test_aiohttp_injected_session_is_left_open(server: FaultServer) -> None:
    """Closing the client leaves a caller's ClientSession open and usable."""
    async with aiohttp.ClientSession() as session:
        transport = AiohttpTransport(session)
        async with AsyncClient(API_KEY, transport=transport, base_url=server.base_url) as client:
            await client.billing_portal.sessions.create(SIMPLE)
        assert transport.closed
        assert not session.closed
        async with session.post(f"{server.base_url}/v1/after-close", data=b"x") as reply:
            assert reply.status == 200
            await reply.read()
        assert server.connection_count == 1
    assert server.wait_all_closed()


async def test_aiohttp_closed_injected_session_is_refused(server: FaultServer) -> None:
    """A caller's session closed under the transport gives APIConnectionError, not RuntimeError."""
    session = aiohttp.ClientSession()
    await session.close()
    client = AsyncClient(API_KEY, transport=AiohttpTransport(session), base_url=server.base_url)
    with pytest.raises(APIConnectionError) as caught:
        await client.billing_portal.sessions.create(SIMPLE)
    assert caught.value.should_retry is False
    assert server.connection_count == 0
