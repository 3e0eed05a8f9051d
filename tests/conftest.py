"""Generic fixtures: a recording fake Stripe, clients over it, and the Hypothesis profiles."""

import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from lattice_stripe import AsyncClient, Client
from lattice_stripe.adapters.recording import RecordingTransport
from services import postgres_server, redis_server  # noqa: F401  (session fixtures)

if TYPE_CHECKING:
    import aiohttp

    from emulator_support import FakeClock
    from lattice_stripe.emulator import RunningEmulator

# "ci" bounds property tests so the whole suite stays fast on two cores; "thorough"
# is for hunting bugs locally (HYPOTHESIS_PROFILE=thorough). Timing health checks
# are off: a loaded CI machine is slow, which says nothing about the code.
settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FIXED_NOW = 1_700_000_000.0


def _no_sleep(seconds: float) -> None:
    """Retries in tests must not wait on the wall clock."""


async def _no_async_sleep(seconds: float) -> None:
    """Retries in tests must not wait on the wall clock."""


@pytest.fixture
def fake_stripe() -> RecordingTransport:
    """A RecordingTransport whose default sessions have a fixed ``created`` time."""
    return RecordingTransport(clock=lambda: FIXED_NOW)


@pytest.fixture
def stripe_client(fake_stripe: RecordingTransport) -> Iterator[Client]:
    """A test-mode Client over ``fake_stripe`` that never sleeps between retries."""
    with Client("sk_test_fixture0key", transport=fake_stripe, sleep=_no_sleep) as client:
        yield client


@pytest.fixture
async def async_stripe_client(fake_stripe: RecordingTransport) -> AsyncIterator[AsyncClient]:
    """A test-mode AsyncClient over ``fake_stripe`` that never sleeps between retries."""
    async with AsyncClient(
        "sk_test_fixture0key", transport=fake_stripe, sleep=_no_async_sleep
    ) as client:
        yield client


# The emulator's fixtures import aiohttp and the emulator only when a test asks
# for them; a module may override them (the portal tests' emulator sends webhooks).
@pytest.fixture
def clock() -> "FakeClock":
    """Time that moves only when a test says so."""
    from emulator_support import FakeClock

    return FakeClock()


@pytest.fixture
async def running(clock: "FakeClock") -> "AsyncIterator[RunningEmulator]":
    """An emulator with the packaged seed on an ephemeral loopback port."""
    from lattice_stripe.emulator import Emulator, serve

    async with serve(Emulator(clock=clock)) as running:
        yield running


@pytest.fixture
async def http() -> "AsyncIterator[aiohttp.ClientSession]":
    """A plain HTTP client."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """Inner pytest runs without pytest-django: this session set Django up for the test project
    (pyproject.toml), once per process, and a downstream project has no such settings."""
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    # Pytester clears PYTEST_ADDOPTS when it starts; set after it, it reaches every inner run.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:django")
    return pytester
