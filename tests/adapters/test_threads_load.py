"""Concurrency on loopback: one sync Client shared by threads, one AsyncClient under load."""

import asyncio
import threading
from collections.abc import Iterator

import pytest

from faultserver import FaultServer
from lattice_stripe import AsyncClient, Client, Session
from lattice_stripe.adapters.aiohttp import AiohttpTransport
from lattice_stripe.adapters.urllib3 import Urllib3Transport

API_KEY = "sk_test_51ConcurrentLoadKey0123456789"
THREADS = 16
CALLS_PER_THREAD = 4
CONCURRENT_CREATES = 200
CONNECTION_LIMIT = 20


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """A fresh loopback server, stopped after the test."""
    with FaultServer() as running:
        yield running


def customer(number: int) -> str:
    """The customer of call ``number``: it tells the calls apart on the server."""
    return f"cus_Load{number:04d}"


def params(number: int) -> dict[str, object]:
    """Create parameters for call ``number``."""
    return {"customer": customer(number), "return_url": "https://example.com/account"}


def test_one_client_shared_by_sixteen_threads(server: FaultServer) -> None:
    """16 threads share one Client: every create succeeds with its own idempotency key."""
    transport = Urllib3Transport(maxsize=THREADS)
    sessions: dict[str, Session] = {}
    failures: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS, timeout=10)

    def worker(index: int, client: Client) -> None:
        try:
            start.wait()
            for call in range(CALLS_PER_THREAD):
                number = index * CALLS_PER_THREAD + call
                session = client.billing_portal.sessions.create(params(number))
                with lock:
                    sessions[customer(number)] = session
        except BaseException as error:  # reported by the main thread's assertion
            with lock:
                failures.append(error)

    with Client(API_KEY, transport=transport, base_url=server.base_url, timeout=10) as client:
        threads = [
            threading.Thread(target=worker, args=(index, client), name=f"load-{index}")
            for index in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in threads)

    total = THREADS * CALLS_PER_THREAD
    assert failures == []
    assert len(sessions) == total
    assert all(session.customer == name for name, session in sessions.items())
    assert len({session.id for session in sessions.values()}) == total
    requests = server.requests
    assert len(requests) == total
    keys = [request.header("Idempotency-Key") for request in requests]
    assert None not in keys
    assert len(set(keys)) == total
    assert server.connection_count <= THREADS
    assert server.wait_all_closed()


async def test_two_hundred_concurrent_creates_over_one_session(server: FaultServer) -> None:
    """200 concurrent creates over one aiohttp session: no errors, 200 keys, pooled sockets."""
    transport = AiohttpTransport(limit=CONNECTION_LIMIT)
    async with AsyncClient(
        API_KEY, transport=transport, base_url=server.base_url, timeout=10
    ) as client:
        results = await asyncio.wait_for(
            asyncio.gather(
                *(
                    client.billing_portal.sessions.create(params(number))
                    for number in range(CONCURRENT_CREATES)
                ),
                return_exceptions=True,
            ),
            timeout=30,
        )
    errors = [result for result in results if isinstance(result, BaseException)]
    assert errors == []
    customers = [result.customer for result in results if isinstance(result, Session)]
    assert customers == [customer(number) for number in range(CONCURRENT_CREATES)]
    requests = server.requests
    assert len(requests) == CONCURRENT_CREATES
    assert len({request.header("Idempotency-Key") for request in requests}) == CONCURRENT_CREATES
    assert 1 < server.connection_count <= CONNECTION_LIMIT
    assert server.wait_all_closed()
    assert asyncio.all_tasks() == {asyncio.current_task()}


def test_thirty_two_threads_on_the_default_pool_discard_no_connection(
    server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    """32 threads on a default Urllib3Transport: no "pool is full" warning, no lost connection."""
    threads = 32
    start = threading.Barrier(threads, timeout=10)
    failures: list[BaseException] = []

    def worker(index: int, client: Client) -> None:
        try:
            start.wait()
            for call in range(3):
                client.billing_portal.sessions.create(params(index * 3 + call))
        except BaseException as error:  # reported below
            failures.append(error)

    with (
        caplog.at_level("WARNING", logger="urllib3"),
        Client(API_KEY, transport=Urllib3Transport(), base_url=server.base_url) as client,
    ):
        workers = [threading.Thread(target=worker, args=(i, client)) for i in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout=30)
    assert not failures
    assert len(server.requests) == threads * 3
    assert [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()] == []
    # Every thread's connection went back to the pool and was reused.
    assert server.connection_count <= threads
