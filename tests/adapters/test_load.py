"""Load against the local emulator: many concurrent creates over one client, zero errors."""

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("aiohttp")

from lattice_stripe import AsyncClient, Client, Session
from lattice_stripe.adapters.aiohttp import AiohttpTransport
from lattice_stripe.adapters.urllib3 import Urllib3Transport
from lattice_stripe.emulator import DEFAULT_API_KEY, Emulator, RunningEmulator, serve_in_thread

PARAMS = {
    "customer": "cus_demo",
    "return_url": "http://127.0.0.1:8000/account",
    "flow_data": {"type": "payment_method_update"},
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    """One emulator on a free loopback port, in its own thread and event loop."""
    with serve_in_thread(Emulator()) as running:
        yield running


def test_a_thousand_concurrent_async_creates_over_one_session(emulator: RunningEmulator) -> None:
    """1,000 concurrent creates over one AsyncClient and aiohttp session all succeed, distinct."""

    async def load() -> list[Session]:
        async with AsyncClient(
            DEFAULT_API_KEY,
            base_url=emulator.url,
            allow_http_localhost=True,
            transport=AiohttpTransport(limit=100),
        ) as client:
            return await asyncio.gather(
                *(client.billing_portal.sessions.create(PARAMS) for _ in range(1000))
            )

    sessions = asyncio.run(load())
    assert len(sessions) == 1000
    assert len({session.id for session in sessions}) == 1000
    assert len({session.url for session in sessions}) == 1000
    assert all(session.customer == "cus_demo" for session in sessions)


def test_one_sync_client_shared_by_sixteen_threads(emulator: RunningEmulator) -> None:
    """A sync Client shared by 16 threads creates 320 sessions without an error or a mix-up."""
    with Client(
        DEFAULT_API_KEY,
        base_url=emulator.url,
        allow_http_localhost=True,
        transport=Urllib3Transport(maxsize=16),
    ) as client:

        def create(index: int) -> tuple[int, Session]:
            customer = ("cus_demo", "cus_team")[index % 2]
            params = {**PARAMS, "customer": customer}
            return index, client.billing_portal.sessions.create(params)

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(create, range(320)))
    assert len({session.id for _, session in results}) == 320
    for index, session in results:
        assert session.customer == ("cus_demo", "cus_team")[index % 2]
