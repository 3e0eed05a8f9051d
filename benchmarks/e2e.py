"""End to end on loopback: every contender creates sessions against the same local server.

Sync contenders: lattice-stripe's Client over each sync transport
(``StdlibTransport``, the default, and ``Urllib3Transport``), the official SDK
(its default requests client), and the bare clients: urllib3 through
``HTTPConnectionPool.urlopen`` (the path ``Urllib3Transport`` itself takes),
``http.client`` keep-alive connections, and a raw-socket limit that writes
prebuilt bytes and reads a known number back. Async: AsyncClient over
``AsyncioTransport`` and ``AiohttpTransport``, the SDK's ``create_async``,
bare aiohttp, and an ``asyncio.Protocol`` limit. Two floors per family put
the least work any client must do on top of the bare POST: the stdlib floor
(``urlencode`` of the flattened pairs + ``json.loads``) and the fair floor
(an encoder written for exactly these params + ``json.loads``).

Each family runs over HTTP and HTTPS (a throwaway CA), sequentially and
100-way concurrent (threads for sync, tasks for async); contenders take turns
in rounds so drift on the machine hits all alike. A last pass measures client
CPU per create against a server that waits 100 ms before each answer.
"""

import asyncio
import http.client
import json
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import stripe
import trustme
import urllib3

from benchmarks.payloads import API_KEY, PARAMS, fair_encode, stdlib_encode
from benchmarks.server import REPLY_SIZE
from lattice_stripe import AsyncClient, Client
from lattice_stripe.adapters.aiohttp import AiohttpTransport
from lattice_stripe.adapters.asyncio import AsyncioTransport
from lattice_stripe.adapters.stdlib import StdlibTransport
from lattice_stripe.adapters.urllib3 import Urllib3Transport
from lattice_stripe.core.config import ClientConfig

CONCURRENCY = 100
PATH = "/v1/billing_portal/sessions"
BARE_BODY = stdlib_encode()
# The bare POSTs send the very headers lattice-stripe sends (one fixed
# idempotency key), so the comparison measures the library, not header count.
BARE_HEADERS = {**ClientConfig(api_key=API_KEY).base_headers, "Idempotency-Key": "bench-bare"}
BARE = {"sync": "bare urllib3", "async": "bare aiohttp"}
LIMIT = {"sync": "raw-socket limit", "async": "asyncio.Protocol limit"}
FLOOR = {"sync": "stdlib floor over bare urllib3", "async": "stdlib floor over bare aiohttp"}
FAIR_FLOOR = {"sync": "fair floor over bare urllib3", "async": "fair floor over bare aiohttp"}
LATTICE = {
    "sync": ("lattice-stripe (stdlib)", "lattice-stripe (urllib3)"),
    "async": ("lattice-stripe (asyncio)", "lattice-stripe (aiohttp)"),
}
SDK = "stripe SDK"
SLOW_SECONDS = 0.1
Result = dict[str, float]
# The official SDK types its params as TypedDicts; the same plain dict goes to every contender.
STRIPE_PARAMS: Any = PARAMS


class TLS(NamedTuple):
    """A throwaway CA's files and a client context that trusts it."""

    ca_file: str
    cert_file: str
    key_file: str
    trust: ssl.SSLContext


@contextmanager
def throwaway_tls() -> Iterator[TLS]:
    """A CA and a certificate for 127.0.0.1, as files for the server process."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="lattice-bench-tls-") as folder:
        paths = [str(Path(folder) / name) for name in ("ca.pem", "cert.pem", "key.pem")]
        ca.cert_pem.write_to_path(paths[0])
        cert.cert_chain_pems[0].write_to_path(paths[1])
        cert.private_key_pem.write_to_path(paths[2])
        trust = ssl.create_default_context(cafile=paths[0])
        yield TLS(paths[0], paths[1], paths[2], trust)


class LoopbackServer:
    """The benchmark server in its own process (its own core), stopped on exit."""

    def __init__(self, delay: float = 0.0, tls: TLS | None = None) -> None:
        self._args = [str(delay)] + ([tls.cert_file, tls.key_file] if tls else [])
        self._scheme = "https" if tls else "http"

    def __enter__(self) -> str:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.server", "0", *self._args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        port = int(self._process.stdout.readline())
        return f"{self._scheme}://127.0.0.1:{port}"

    def __exit__(self, *exc_info: object) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()


class Part(NamedTuple):
    """One batch of one contender: its latencies, wall time and this process's CPU time."""

    latencies: list[float]
    elapsed: float
    cpu: float


class _Clocks:
    """Wall and process CPU time since construction (the server's CPU is its own process's)."""

    def __init__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def part(self, latencies: list[float]) -> Part:
        return Part(latencies, time.perf_counter() - self._wall, time.process_time() - self._cpu)


def _merge(parts: list[Part]) -> Result:
    ordered = sorted(value for part in parts for value in part.latencies)
    return {
        "requests": len(ordered),
        "rps": len(ordered) / sum(part.elapsed for part in parts),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "cpu_us": sum(part.cpu for part in parts) / len(ordered) * 1e6,
    }


def _request_bytes(host: str) -> bytes:
    head = [f"POST {PATH} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(BARE_BODY)}"]
    head += [f"{name}: {value}" for name, value in BARE_HEADERS.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + BARE_BODY


# -- sync ----------------------------------------------------------------------------

SyncContender = tuple[Callable[[], object], Callable[[], None]]


class _PerThread:
    """One keep-alive connection per thread, all closed at the end."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def get(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
            with self._lock:
                self._all.append(connection)
        return connection

    def close(self) -> None:
        for connection in self._all:
            connection.close()


def _sync_contenders(base: str, tls: TLS | None) -> dict[str, SyncContender]:
    trust = tls.trust if tls else None
    host, port = base.rsplit("/", 1)[1].split(":")
    tls_options: dict[str, Any] = {"ssl_context": trust} if trust else {}
    pool = urllib3.connection_from_url(base, maxsize=CONCURRENCY, **tls_options)

    def post(body: bytes) -> bytes:
        reply = pool.urlopen(
            "POST", PATH, body=body, headers=BARE_HEADERS, retries=False, redirect=False
        )
        return reply.data

    def bare() -> object:
        return post(BARE_BODY)

    def stdlib_floor() -> object:
        return json.loads(post(stdlib_encode()))

    def fair_floor() -> object:
        return json.loads(post(fair_encode(PARAMS)))

    def http_connection() -> http.client.HTTPConnection:
        if trust is None:
            return http.client.HTTPConnection(host, int(port))
        return http.client.HTTPSConnection(host, int(port), context=trust)

    connections = _PerThread(http_connection)

    def bare_http_client() -> object:
        connection = connections.get()
        connection.request("POST", PATH, body=BARE_BODY, headers=BARE_HEADERS)
        return connection.getresponse().read()

    request = _request_bytes(f"{host}:{port}")

    def raw_socket() -> socket.socket:
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return trust.wrap_socket(sock, server_hostname=host) if trust else sock

    sockets = _PerThread(raw_socket)

    def raw() -> object:
        sock = sockets.get()
        sock.sendall(request)
        received = 0
        while received < REPLY_SIZE:
            received += len(sock.recv(65536))
        return received

    if tls is not None:
        stripe.ca_bundle_path = tls.ca_file
    # Every pool keeps CONCURRENCY idle connections, as bare urllib3's does.
    stdlib_client = Client(
        API_KEY,
        base_url=base,
        transport=StdlibTransport(pool_size=CONCURRENCY, ssl_context=trust),
    )
    manager = urllib3.PoolManager(maxsize=CONCURRENCY, block=False, **tls_options)
    urllib3_client = Client(API_KEY, base_url=base, transport=Urllib3Transport(manager))
    official = stripe.StripeClient(API_KEY, base_addresses={"api": base}, max_network_retries=0)
    return {
        BARE["sync"]: (bare, pool.close),
        "bare http.client": (bare_http_client, connections.close),
        LIMIT["sync"]: (raw, sockets.close),
        FLOOR["sync"]: (stdlib_floor, lambda: None),
        FAIR_FLOOR["sync"]: (fair_floor, lambda: None),
        LATTICE["sync"][0]: (
            lambda: stdlib_client.billing_portal.sessions.create(PARAMS),
            stdlib_client.close,
        ),
        LATTICE["sync"][1]: (
            lambda: urllib3_client.billing_portal.sessions.create(PARAMS),
            lambda: _close_both(urllib3_client, manager),
        ),
        SDK: (lambda: official.v1.billing_portal.sessions.create(STRIPE_PARAMS), lambda: None),
    }


def _close_both(client: Client, manager: urllib3.PoolManager) -> None:
    client.close()
    manager.clear()


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _sync_sequential(call: Callable[[], object], count: int) -> Part:
    clocks = _Clocks()
    return clocks.part([_timed(call) for _ in range(count)])


def _sync_concurrent(call: Callable[[], object], count: int, executor: ThreadPoolExecutor) -> Part:
    clocks = _Clocks()
    return clocks.part(list(executor.map(lambda _: _timed(call), range(count))))


def run_sync(
    base: str,
    sequential: int,
    concurrent: int,
    rounds: int,
    tls: TLS | None = None,
    only: tuple[str, ...] | None = None,
) -> dict[str, dict[str, Result]]:
    """Sequential and threaded results per sync contender (``sequential=0`` skips that mode)."""
    contenders = _sync_contenders(base, tls)
    chosen = {name: c for name, c in contenders.items() if only is None or name in only}
    modes = ("sequential", "concurrent") if sequential else ("concurrent",)
    parts: dict[str, dict[str, list[Part]]] = {
        mode: {name: [] for name in chosen} for mode in modes
    }
    try:
        with ThreadPoolExecutor(CONCURRENCY) as executor:
            for call, _ in chosen.values():
                _sync_sequential(call, 10)
                _sync_concurrent(call, CONCURRENCY, executor)
            for _ in range(rounds):
                for name, (call, _) in chosen.items():
                    if sequential:
                        parts["sequential"][name].append(
                            _sync_sequential(call, sequential // rounds)
                        )
                    parts["concurrent"][name].append(
                        _sync_concurrent(call, concurrent // rounds, executor)
                    )
    finally:
        for _, close in contenders.values():
            close()
    return {mode: {name: _merge(p) for name, p in by.items()} for mode, by in parts.items()}


# -- async ---------------------------------------------------------------------------

AsyncCall = Callable[[], Awaitable[object]]


async def _async_timed(call: AsyncCall) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def _async_sequential(call: AsyncCall, count: int) -> Part:
    clocks = _Clocks()
    return clocks.part([await _async_timed(call) for _ in range(count)])


async def _async_concurrent(call: AsyncCall, count: int) -> Part:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one() -> float:
        async with gate:
            return await _async_timed(call)

    clocks = _Clocks()
    return clocks.part(list(await asyncio.gather(*(one() for _ in range(count)))))


class _RawProtocol(asyncio.Protocol):
    """The asyncio.Protocol limit: write prebuilt bytes, wait for a known number back."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        if self._received >= REPLY_SIZE and self._waiter is not None:
            self._waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc or ConnectionResetError())

    def exchange(self, request: bytes) -> "asyncio.Future[None]":
        assert self.transport is not None
        self._received = 0
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter


async def _run_async(
    base: str,
    sequential: int,
    concurrent: int,
    rounds: int,
    tls: TLS | None,
    only: tuple[str, ...] | None,
) -> dict[str, dict[str, Result]]:
    trust = tls.trust if tls else None
    url = base + PATH
    host, port = base.rsplit("/", 1)[1].split(":")
    loop = asyncio.get_running_loop()
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONCURRENCY, ssl=trust if trust else True)
    )

    async def post(body: bytes) -> bytes:
        async with session.post(url, data=body, headers=BARE_HEADERS) as response:
            return await response.read()

    async def bare() -> object:
        return await post(BARE_BODY)

    async def stdlib_floor() -> object:
        return json.loads(await post(stdlib_encode()))

    async def fair_floor() -> object:
        return json.loads(await post(fair_encode(PARAMS)))

    request = _request_bytes(f"{host}:{port}")
    idle: list[_RawProtocol] = []
    opened: list[_RawProtocol] = []

    async def raw() -> object:
        protocol = idle.pop() if idle else None
        if protocol is None:
            protocol = _RawProtocol()
            await loop.create_connection(
                lambda: protocol,
                host,
                int(port),
                ssl=trust,
                server_hostname=host if trust else None,
            )
            opened.append(protocol)
        await protocol.exchange(request)
        idle.append(protocol)
        return None

    if tls is not None:
        stripe.ca_bundle_path = tls.ca_file
    asyncio_client = AsyncClient(
        API_KEY, base_url=base, transport=AsyncioTransport(pool_size=CONCURRENCY, ssl_context=trust)
    )
    aiohttp_session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONCURRENCY, ssl=trust if trust else True)
    )
    aiohttp_client = AsyncClient(
        API_KEY, base_url=base, transport=AiohttpTransport(aiohttp_session)
    )
    official_http = stripe.AIOHTTPClient()
    official = stripe.StripeClient(
        API_KEY, base_addresses={"api": base}, http_client=official_http, max_network_retries=0
    )
    contenders: dict[str, AsyncCall] = {
        BARE["async"]: bare,
        LIMIT["async"]: raw,
        FLOOR["async"]: stdlib_floor,
        FAIR_FLOOR["async"]: fair_floor,
        LATTICE["async"][0]: lambda: asyncio_client.billing_portal.sessions.create(PARAMS),
        LATTICE["async"][1]: lambda: aiohttp_client.billing_portal.sessions.create(PARAMS),
        SDK: lambda: official.v1.billing_portal.sessions.create_async(STRIPE_PARAMS),
    }
    chosen = {name: c for name, c in contenders.items() if only is None or name in only}
    modes = ("sequential", "concurrent") if sequential else ("concurrent",)
    parts: dict[str, dict[str, list[Part]]] = {
        mode: {name: [] for name in chosen} for mode in modes
    }
    try:
        for call in chosen.values():
            await _async_sequential(call, 10)
            await _async_concurrent(call, CONCURRENCY)
        for _ in range(rounds):
            for name, call in chosen.items():
                if sequential:
                    parts["sequential"][name].append(
                        await _async_sequential(call, sequential // rounds)
                    )
                parts["concurrent"][name].append(
                    await _async_concurrent(call, concurrent // rounds)
                )
    finally:
        await session.close()
        await asyncio_client.aclose()
        await aiohttp_client.aclose()
        await aiohttp_session.close()
        await official_http.close_async()  # type: ignore[no-untyped-call]
        for protocol in opened:
            if protocol.transport is not None:
                protocol.transport.close()
        await asyncio.sleep(0.05)
    return {mode: {name: _merge(p) for name, p in by.items()} for mode, by in parts.items()}


def run_async(
    base: str,
    sequential: int,
    concurrent: int,
    rounds: int,
    tls: TLS | None = None,
    only: tuple[str, ...] | None = None,
) -> dict[str, dict[str, Result]]:
    """Sequential and 100-way concurrent results per async contender."""
    return asyncio.run(_run_async(base, sequential, concurrent, rounds, tls, only))


def run(sequential: int, concurrent: int, rounds: int, slow: int) -> dict[str, Any]:
    """Every family over HTTP and HTTPS, then CPU per create against a 100 ms server."""
    results: dict[str, Any] = {}
    with LoopbackServer() as base:
        results["sync"] = run_sync(base, sequential, concurrent, rounds)
        results["async"] = run_async(base, sequential, concurrent, rounds)
    bundled = stripe.ca_bundle_path
    with throwaway_tls() as tls:
        try:
            with LoopbackServer(tls=tls) as base:
                results["sync https"] = run_sync(base, sequential, concurrent, rounds, tls)
                results["async https"] = run_async(base, sequential, concurrent, rounds, tls)
        finally:
            stripe.ca_bundle_path = bundled
    slow_sync = (BARE["sync"], *LATTICE["sync"], SDK)
    slow_async = (BARE["async"], *LATTICE["async"], SDK)
    with LoopbackServer(delay=SLOW_SECONDS) as base:
        results["sync, 100 ms server"] = run_sync(base, 0, slow, 1, only=slow_sync)
        results["async, 100 ms server"] = run_async(base, 0, slow, 1, only=slow_async)
    return results
