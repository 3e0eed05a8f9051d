"""What the standard-library transports (StdlibTransport, AsyncioTransport) promise beyond.

The attempt's deadline against a trickling server, the idle timeout per read
(in the kernel for the sync one), a kept-alive connection the server closed,
framing (chunked, ``Connection: close``), TLS verification, the CA bundle,
the proxy tunnel, and one pool shared by 32 threads or tasks.
"""

import asyncio
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest

from faultserver import CloseSilently, FaultServer, Raw, Reply, SlowBody, Stall
from lattice_stripe import AsyncClient, Client
from lattice_stripe.adapters.asyncio import AsyncioTransport
from lattice_stripe.adapters.stdlib import StdlibTransport
from lattice_stripe.core.errors import APIConnectionError, ValidationError
from lattice_stripe.core.http import HttpRequest, HttpResponse
from lattice_stripe.core.ports import AsyncTransport, SyncTransport
from transports import LEAN_KINDS, Kind, client_trust, server_tls, throwaway_ca

API_KEY = "sk_test_51LeanTransportKey0123456789"
SIMPLE = {"customer": "cus_Lean", "return_url": "https://example.com/account"}
Outcome = HttpResponse | APIConnectionError


@pytest.fixture(params=LEAN_KINDS, ids=[kind.name for kind in LEAN_KINDS])
def kind(request: pytest.FixtureRequest) -> Kind:
    """Each test runs over both standard-library transports."""
    chosen: Kind = request.param
    return chosen


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """A fresh loopback server, stopped after the test."""
    with FaultServer() as running:
        yield running


def probe(base_url: str, **changes: object) -> HttpRequest:
    """A request to the loopback server with short limits."""
    request = HttpRequest(
        method="POST",
        url=f"{base_url}/v1/probe",
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "text/plain"},
        body=b"ping",
        timeout=2.0,
        connect_timeout=1.0,
        deadline=10.0,
    )
    return attrs.evolve(request, **changes)  # type: ignore[arg-type]


def exchange(
    kind: Kind,
    *requests: HttpRequest,
    transport: SyncTransport | AsyncTransport | None = None,
    between: float = 0.0,
) -> list[Outcome]:
    """Each request in turn through one transport (closed after): a response or the error.

    ``between`` waits that long between requests (in the event loop, for an
    async transport, so it sees what the server did meanwhile).
    """
    used = transport if transport is not None else kind.make(None)
    if isinstance(used, SyncTransport):
        outcomes: list[Outcome] = []
        try:
            for request in requests:
                try:
                    outcomes.append(used.send(request))
                except APIConnectionError as error:
                    outcomes.append(error)
                time.sleep(between)
        finally:
            used.close()
        return outcomes
    assert isinstance(used, AsyncTransport)

    async def run() -> list[Outcome]:
        found: list[Outcome] = []
        try:
            for request in requests:
                try:
                    found.append(await used.asend(request))
                except APIConnectionError as error:
                    found.append(error)
                await asyncio.sleep(between)
        finally:
            await used.aclose()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        return found

    return asyncio.run(run())


def failure(outcome: Outcome) -> APIConnectionError:
    """The outcome, which must be an APIConnectionError."""
    assert isinstance(outcome, APIConnectionError), outcome
    return outcome


# -- time limits -----------------------------------------------------------------------


def test_deadline_cuts_a_server_trickling_a_byte_every_0_4_s(
    kind: Kind, server: FaultServer
) -> None:
    """A body dribbled a byte at a time never trips the idle timeout; the deadline ends it."""
    server.script(SlowBody(pieces=100_000, gap=0.4))
    started = time.monotonic()
    [outcome] = exchange(kind, probe(server.base_url, timeout=2.0, deadline=1.0))
    elapsed = time.monotonic() - started
    error = failure(outcome)
    assert "timed out" in str(error)
    assert error.should_retry is True
    assert 0.95 <= elapsed < 1.3
    assert server.wait_all_closed()


def test_deadline_bounds_the_connect(kind: Kind, server: FaultServer) -> None:
    """A deadline shorter than the connect timeout is what the connection set-up gets."""
    [outcome] = exchange(kind, probe(server.base_url, deadline=0.0))
    assert "timed out" in str(failure(outcome))
    assert server.connection_count == 0


def test_spent_deadline_sends_nothing_and_keeps_the_pool(kind: Kind, server: FaultServer) -> None:
    """An attempt whose deadline is already spent fails at once and leaves the idle connection."""
    outcomes = exchange(
        kind, probe(server.base_url), probe(server.base_url, deadline=0.0), probe(server.base_url)
    )
    assert "timed out" in str(failure(outcomes[1]))
    assert isinstance(outcomes[2], HttpResponse)
    assert [request.connection for request in server.requests] == [0, 0]


def test_idle_timeout_bounds_each_wait(kind: Kind, server: FaultServer) -> None:
    """A server silent past the idle timeout fails the attempt long before its deadline."""
    server.script(Stall(seconds=3.0))
    started = time.monotonic()
    [outcome] = exchange(kind, probe(server.base_url, timeout=0.3, deadline=10.0))
    elapsed = time.monotonic() - started
    assert str(failure(outcome)).startswith("timed out waiting for Stripe's response")
    assert 0.25 <= elapsed < 1.5


def test_sync_read_timeouts_live_in_the_kernel(server: FaultServer) -> None:
    """A pooled stdlib connection is a blocking socket whose SO_RCVTIMEO is the idle timeout."""
    transport = StdlibTransport()
    try:
        transport.send(probe(server.base_url, timeout=2.5))
        [[connection]] = transport._idle.values()
        sock = connection.sock
        assert sock.gettimeout() is None
        seconds, micros = struct.unpack(
            "ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.calcsize("ll"))
        )
        assert seconds + micros / 1e6 == pytest.approx(2.5, abs=0.01)
    finally:
        transport.close()


# -- keep-alive ------------------------------------------------------------------------

# A whole response with no "Connection: close", after which the server hangs up.
ANSWER_THEN_HANG_UP = Raw(
    data=b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
)


def test_idle_connection_the_server_closed_is_replaced_before_sending(
    kind: Kind, server: FaultServer
) -> None:
    """A kept-alive connection the server closed is not written to: a fresh one sends, once."""
    server.script(ANSWER_THEN_HANG_UP)
    outcomes = exchange(kind, probe(server.base_url), probe(server.base_url), between=0.2)
    assert [outcome.status for outcome in outcomes if isinstance(outcome, HttpResponse)] == [
        200,
        200,
    ]
    assert [request.connection for request in server.requests] == [0, 1]


def test_reused_connection_that_breaks_after_sending_is_not_resent(
    kind: Kind, server: FaultServer
) -> None:
    """Once the request went out on a reused connection, a break is an error, not a resend."""
    server.script(Reply(status=200, body=b"{}"), CloseSilently())
    first, second = exchange(kind, probe(server.base_url), probe(server.base_url))
    assert isinstance(first, HttpResponse)
    error = failure(second)
    assert str(error).startswith("the connection to Stripe broke")
    assert error.should_retry is True
    assert [request.connection for request in server.requests] == [0, 0]


def test_connection_close_is_honoured(kind: Kind, server: FaultServer) -> None:
    """A response saying ``Connection: close`` ends its connection; the next opens another."""
    closing = Reply(status=200, headers={"Connection": "close"}, body=b"{}")
    server.script(closing, closing)
    outcomes = exchange(kind, probe(server.base_url), probe(server.base_url))
    assert all(isinstance(outcome, HttpResponse) for outcome in outcomes)
    assert [request.connection for request in server.requests] == [0, 1]
    assert server.wait_all_closed()


def test_chunked_body_with_extensions_and_trailers(kind: Kind, server: FaultServer) -> None:
    """Chunk extensions are ignored and trailers dropped; the body is the chunks joined."""
    server.script(
        Raw(
            data=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'3;name=value\r\n{"a\r\n4\r\n": 1\r\n1\r\n}\r\n0\r\nX-Checksum: 1\r\n\r\n'
        )
    )
    [outcome] = exchange(kind, probe(server.base_url))
    assert isinstance(outcome, HttpResponse)
    assert outcome.body == b'{"a": 1}'


def test_body_framed_by_the_close(kind: Kind, server: FaultServer) -> None:
    """A response with neither length nor chunking ends when the server closes."""
    server.script(Raw(data=b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}"))
    [outcome] = exchange(kind, probe(server.base_url))
    assert isinstance(outcome, HttpResponse)
    assert outcome.body == b"{}"


def test_header_with_a_line_break_is_refused_unsent(kind: Kind, server: FaultServer) -> None:
    """A header value holding CR LF is refused before any byte goes out, and not retried."""
    smuggling = probe(server.base_url, headers={"Stripe-Account": "acct_1\r\nX-Evil: 1"})
    [outcome] = exchange(kind, smuggling)
    error = failure(outcome)
    assert error.should_retry is False
    assert "Stripe-Account" in str(error)
    assert server.connection_count == 0


# -- TLS -------------------------------------------------------------------------------


def test_untrusted_certificate_fails_once_unretried(kind: Kind) -> None:
    """A certificate from an authority the client does not trust: TLS failed, one attempt."""
    with FaultServer(tls=server_tls("127.0.0.1")) as tls_server:
        outcome = create_with_client(kind, tls_server.base_url, max_retries=2)
        error = failure(outcome)
        assert str(error).startswith("TLS failed talking to Stripe")
        assert error.should_retry is False
        assert tls_server.connection_count == 1
        assert tls_server.requests == []


def test_certificate_for_another_host_fails(kind: Kind) -> None:
    """A trusted certificate whose names do not include the host is refused."""
    with FaultServer(tls=server_tls("stripe.invalid")) as tls_server:
        transport = kind.make(client_trust())
        [outcome] = exchange(kind, probe(tls_server.base_url), transport=transport)
        assert str(failure(outcome)).startswith("TLS failed talking to Stripe")
        assert tls_server.requests == []


def test_ca_bundle_is_trusted(kind: Kind, tmp_path: Path) -> None:
    """``ca_bundle=`` (a PEM file) makes the default context trust that authority."""
    bundle = tmp_path / "ca.pem"
    throwaway_ca().cert_pem.write_to_path(str(bundle))
    transport: SyncTransport | AsyncTransport = (
        AsyncioTransport(ca_bundle=str(bundle))
        if kind.is_async
        else StdlibTransport(ca_bundle=str(bundle))
    )
    with FaultServer(tls=server_tls("127.0.0.1")) as tls_server:
        [outcome] = exchange(kind, probe(tls_server.base_url), transport=transport)
        assert isinstance(outcome, HttpResponse)
        assert outcome.status == 200


@pytest.mark.parametrize("make", [StdlibTransport, AsyncioTransport])
def test_context_and_bundle_together_are_refused(make: type[StdlibTransport]) -> None:
    """Giving both ``ssl_context`` and ``ca_bundle`` is a ValidationError naming the fix."""
    with pytest.raises(ValidationError) as caught:
        make(ssl_context=ssl.create_default_context(), ca_bundle="ca.pem")
    assert caught.value.path == "ca_bundle"
    assert "not both" in caught.value.reason


def create_with_client(kind: Kind, base_url: str, *, max_retries: int) -> Outcome:
    """One create through a client over a fresh ``kind`` with default TLS trust."""

    def no_sleep(seconds: float) -> None:
        """Never wait between retries."""

    async def no_async_sleep(seconds: float) -> None:
        """Never wait between retries."""

    transport = kind.make(None)
    try:
        if isinstance(transport, SyncTransport):
            with Client(
                API_KEY,
                transport=transport,
                base_url=base_url,
                sleep=no_sleep,
                max_retries=max_retries,
            ) as client:
                client.billing_portal.sessions.create(SIMPLE)
        else:

            async def run() -> None:
                async with AsyncClient(
                    API_KEY,
                    transport=transport,
                    base_url=base_url,
                    sleep=no_async_sleep,
                    max_retries=max_retries,
                ) as client:
                    await client.billing_portal.sessions.create(SIMPLE)

            asyncio.run(run())
    except APIConnectionError as error:
        return error
    raise AssertionError("the create succeeded")


# -- one pool, many callers ------------------------------------------------------------


def test_32_threads_share_one_pool_without_discarding(server: FaultServer) -> None:
    """32 threads creating through one Client open at most 32 connections and close none."""
    with (
        Client(API_KEY, transport=StdlibTransport(), base_url=server.base_url) as client,
        ThreadPoolExecutor(32) as threads,
    ):
        gate = threading.Barrier(32)

        def burst(_: int) -> int:
            gate.wait(timeout=10)
            return sum(
                client.billing_portal.sessions.create(SIMPLE).customer == "cus_Lean"
                for _ in range(5)
            )

        assert sum(threads.map(burst, range(32))) == 160
        assert sum(threads.map(burst, range(32))) == 160
        assert server.ended_count == 0
    assert server.connection_count <= 32
    assert len(server.requests) == 320
    assert server.wait_all_closed()


def test_32_tasks_share_one_pool_without_discarding(server: FaultServer) -> None:
    """32 concurrent tasks open at most 32 connections and close none."""

    async def run() -> int:
        async with AsyncClient(
            API_KEY, transport=AsyncioTransport(), base_url=server.base_url
        ) as client:

            async def burst() -> list[object]:
                calls = (client.billing_portal.sessions.create(SIMPLE) for _ in range(32))
                return list(await asyncio.gather(*calls))

            assert len(await burst()) == 32
            assert len(await burst()) == 32
            return server.ended_count

    assert asyncio.run(run()) == 0
    assert server.connection_count <= 32
    assert server.wait_all_closed()


# -- the proxy tunnel ------------------------------------------------------------------


class TunnelProxy:
    """A CONNECT proxy on 127.0.0.1 (to 127.0.0.1 only) that records each tunnel it opens."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.tunnels: list[str] = []
        self.authorizations: list[str | None] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(4096)
                if not data:
                    return
                head += data
            lines = head.decode("latin-1").split("\r\n")
            method, authority, _ = lines[0].split(" ")
            self.tunnels.append(f"{method} {authority}")
            self.authorizations.append(
                next(
                    (
                        line.split(":", 1)[1].strip()
                        for line in lines
                        if ":" in line and line.lower().startswith("proxy-authorization")
                    ),
                    None,
                )
            )
            host, _, port = authority.rpartition(":")
            if self.refuse or method != "CONNECT" or host != "127.0.0.1":
                client.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
                )
                return
            with socket.create_connection((host, int(port)), timeout=5) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._pump(client, upstream)

    def _pump(self, one: socket.socket, other: socket.socket) -> None:
        peers = {one: other, other: one}
        while not self._stopping.is_set():
            readable, _, _ = select.select(list(peers), [], [], 0.05)
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)

    def __enter__(self) -> "TunnelProxy":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._listener.close()
        self._acceptor.join(5)
        for thread in self._threads:
            thread.join(5)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_proxy_tunnels_to_stripe(tls: bool) -> None:
    """``proxy=`` sends every connection through CONNECT; TLS runs end to end inside it."""
    context = server_tls("127.0.0.1") if tls else None
    with FaultServer(tls=context) as target, TunnelProxy() as proxy:
        transport = StdlibTransport(
            proxy=proxy.url.replace("http://", "http://user:p%40ss@"),
            ssl_context=client_trust() if tls else None,
        )
        with transport:
            responses = [transport.send(probe(target.base_url)) for _ in range(2)]
        assert [response.status for response in responses] == [200, 200]
        assert proxy.tunnels == [f"CONNECT 127.0.0.1:{target.port}"]
        assert proxy.authorizations == ["Basic dXNlcjpwQHNz"]
        assert [request.path for request in target.requests] == ["/v1/probe"] * 2
        assert "p@ss" not in repr(transport)


def test_proxy_refusal_is_a_connection_error() -> None:
    """A proxy that will not open the tunnel gives a retryable APIConnectionError saying so."""
    with FaultServer() as target, TunnelProxy(refuse=True) as proxy:
        [outcome] = exchange(
            LEAN_KINDS[0], probe(target.base_url), transport=StdlibTransport(proxy=proxy.url)
        )
        assert str(failure(outcome)).startswith("the proxy refused the tunnel to Stripe")
        assert target.connection_count == 0


def test_unsupported_proxy_points_to_urllib3() -> None:
    """A SOCKS or HTTPS proxy URL is a ValidationError that names Urllib3Transport."""
    with pytest.raises(ValidationError) as caught:
        StdlibTransport(proxy="socks5://127.0.0.1:1080")
    assert caught.value.path == "proxy"
    assert "Urllib3Transport" in caught.value.reason
