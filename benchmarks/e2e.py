"""End to end on loopback: every contender creates sessions against the same local server.

Sync: lattice-stripe's Client (urllib3), the official SDK (its default
requests client), and a bare urllib3 POST of a prebuilt body. Async:
lattice-stripe's AsyncClient (aiohttp), the official SDK's ``create_async``
over its aiohttp client, and a bare aiohttp POST. A fourth contender per
family, the stdlib floor over the bare transport (``urlencode`` of the
flattened params, the bare POST, ``json.loads`` of the reply), shows what the
least work any client must do costs on top of the bare POST. Each is run sequentially and
100-way concurrent (threads for sync, tasks for async); contenders take turns
in rounds so drift on the machine hits all alike.
"""

import asyncio
import json
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import aiohttp
import stripe
import urllib3

from benchmarks.payloads import API_KEY, FLAT_PAIRS, PARAMS
from lattice_stripe import AsyncClient, Client
from lattice_stripe.adapters.aiohttp import AiohttpTransport
from lattice_stripe.adapters.urllib3 import Urllib3Transport
from lattice_stripe.core.flow import ClientConfig

CONCURRENCY = 100
PATH = "/v1/billing_portal/sessions"
BARE_BODY = urllib.parse.urlencode(FLAT_PAIRS).encode()
# The bare POSTs send the very headers lattice-stripe sends (one fixed
# idempotency key), so the comparison measures the library, not header count.
BARE_HEADERS = {**ClientConfig(api_key=API_KEY).base_headers, "Idempotency-Key": "bench-bare"}
FLOOR = {
    "sync": "stdlib floor over bare urllib3",
    "async": "stdlib floor over bare aiohttp",
}
Result = dict[str, float]
# The official SDK types its params as TypedDicts; the same plain dict goes to every contender.
STRIPE_PARAMS: Any = PARAMS


class LoopbackServer:
    """The benchmark server in its own process (its own core), stopped on exit."""

    def __enter__(self) -> str:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.server", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        port = int(self._process.stdout.readline())
        return f"http://127.0.0.1:{port}"

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


# -- sync ----------------------------------------------------------------------------


def _sync_contenders(base: str) -> dict[str, tuple[Callable[[], object], Callable[[], None]]]:
    pool = urllib3.PoolManager(maxsize=CONCURRENCY)
    url = base + PATH

    def bare() -> object:
        return pool.request("POST", url, body=BARE_BODY, headers=BARE_HEADERS).data

    def floor() -> object:
        body = urllib.parse.urlencode(FLAT_PAIRS).encode()
        return json.loads(pool.request("POST", url, body=body, headers=BARE_HEADERS).data)

    client = Client(API_KEY, base_url=base, transport=Urllib3Transport(maxsize=CONCURRENCY))
    official = stripe.StripeClient(API_KEY, base_addresses={"api": base}, max_network_retries=0)
    return {
        "bare urllib3": (bare, pool.clear),
        FLOOR["sync"]: (floor, lambda: None),
        "lattice-stripe": (lambda: client.billing_portal.sessions.create(PARAMS), client.close),
        "stripe SDK": (
            lambda: official.v1.billing_portal.sessions.create(STRIPE_PARAMS),
            lambda: None,
        ),
    }


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
    base: str, sequential: int, concurrent: int, rounds: int
) -> dict[str, dict[str, Result]]:
    """Sequential and threaded results per sync contender."""
    contenders = _sync_contenders(base)
    parts: dict[str, dict[str, list[Part]]] = {
        "sequential": {name: [] for name in contenders},
        "concurrent": {name: [] for name in contenders},
    }
    with ThreadPoolExecutor(CONCURRENCY) as executor:
        for call, _ in contenders.values():
            _sync_sequential(call, 20)
            _sync_concurrent(call, CONCURRENCY, executor)
        for _ in range(rounds):
            for name, (call, _) in contenders.items():
                parts["sequential"][name].append(_sync_sequential(call, sequential // rounds))
                parts["concurrent"][name].append(
                    _sync_concurrent(call, concurrent // rounds, executor)
                )
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


async def _run_async(
    base: str, sequential: int, concurrent: int, rounds: int
) -> dict[str, dict[str, Result]]:
    url = base + PATH
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY))

    async def bare() -> object:
        async with session.post(url, data=BARE_BODY, headers=BARE_HEADERS) as response:
            return await response.read()

    async def floor() -> object:
        body = urllib.parse.urlencode(FLAT_PAIRS).encode()
        async with session.post(url, data=body, headers=BARE_HEADERS) as response:
            return json.loads(await response.read())

    client = AsyncClient(API_KEY, base_url=base, transport=AiohttpTransport(limit=CONCURRENCY))
    official_http = stripe.AIOHTTPClient()
    official = stripe.StripeClient(
        API_KEY, base_addresses={"api": base}, http_client=official_http, max_network_retries=0
    )
    contenders: dict[str, AsyncCall] = {
        "bare aiohttp": bare,
        FLOOR["async"]: floor,
        "lattice-stripe": lambda: client.billing_portal.sessions.create(PARAMS),
        "stripe SDK": lambda: official.v1.billing_portal.sessions.create_async(STRIPE_PARAMS),
    }
    parts: dict[str, dict[str, list[Part]]] = {
        "sequential": {name: [] for name in contenders},
        "concurrent": {name: [] for name in contenders},
    }
    try:
        for call in contenders.values():
            await _async_sequential(call, 20)
            await _async_concurrent(call, CONCURRENCY)
        for _ in range(rounds):
            for name, call in contenders.items():
                parts["sequential"][name].append(
                    await _async_sequential(call, sequential // rounds)
                )
                parts["concurrent"][name].append(
                    await _async_concurrent(call, concurrent // rounds)
                )
    finally:
        await session.close()
        await client.aclose()
        await official_http.close_async()  # type: ignore[no-untyped-call]
    return {mode: {name: _merge(p) for name, p in by.items()} for mode, by in parts.items()}


def run_async(
    base: str, sequential: int, concurrent: int, rounds: int
) -> dict[str, dict[str, Result]]:
    """Sequential and 100-way concurrent results per async contender."""
    return asyncio.run(_run_async(base, sequential, concurrent, rounds))


def run(sequential: int, concurrent: int, rounds: int) -> dict[str, Any]:
    """Both families against one server process."""
    with LoopbackServer() as base:
        return {
            "sync": run_sync(base, sequential, concurrent, rounds),
            "async": run_async(base, sequential, concurrent, rounds),
        }
