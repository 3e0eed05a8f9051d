"""The pytest plugin (entry point ``pytest11``: ``lattice_stripe``): four fixtures, safe asserts.

``stripe_recorder`` (per test) is a :class:`~lattice_stripe.testing.StripeRecorder`.
``stripe_emulator`` (per session) is the emulator running in a background
thread, an :class:`~lattice_stripe.testing.EmulatorServer`; its seed comes
from the ``stripe_emulator_seed`` ini option (a path relative to the ini
file) or the packaged one. ``fresh_stripe_emulator`` (per test) is that same
emulator, reset to its seed before the test. ``serve_app`` (per test) runs
ASGI apps on loopback ports (``url = serve_app(app)``), for the emulator's
webhooks to reach them. The emulator is imported only
by a session that uses it. Disable the plugin with ``-p no:lattice_stripe``.

A failed comparison whose sides carry a portal URL or an API key (a
``Session``, a configuration, a dict or list holding one) is explained
without their contents: pytest's own explanation would drill into the attrs
fields and diff the two URLs.
"""

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from lattice_stripe.core.redaction import scrub
from lattice_stripe.testing.emulator import EmulatorServer, emulator_server
from lattice_stripe.testing.recorder import StripeRecorder
from lattice_stripe.testing.uvicorn import serve_asgi

__all__ = [
    "fresh_stripe_emulator",
    "pytest_addoption",
    "pytest_assertrepr_compare",
    "serve_app",
    "stripe_emulator",
    "stripe_recorder",
]

SEED_OPTION = "stripe_emulator_seed"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``stripe_emulator_seed`` ini option."""
    parser.addini(
        SEED_OPTION,
        "seed file of the stripe_emulator fixture, relative to the ini file "
        "(default: the packaged seed)",
        default="",
    )


_DEPTH = 6
_SHOWN = 120


def _carries_secret(value: object, depth: int = 0) -> bool:
    """Whether ``value``, or anything it holds, has a portal URL or a key in it."""
    if depth > _DEPTH:
        return False
    if isinstance(value, str):
        return scrub(value) != value
    cls = type(value)
    if attrs.has(cls):
        return any(
            _carries_secret(getattr(value, field.name, None), depth + 1)
            for field in attrs.fields(cls)
        )
    if isinstance(value, Mapping):
        return any(
            _carries_secret(key, depth + 1) or _carries_secret(item, depth + 1)
            for key, item in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return any(_carries_secret(item, depth + 1) for item in value)
    return False


def _shown(value: object) -> str:
    try:
        text = scrub(repr(value))
    except Exception:  # a broken repr must not hide the failure
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


@pytest.hookimpl(tryfirst=True)
def pytest_assertrepr_compare(
    config: pytest.Config, op: str, left: object, right: object
) -> list[str] | None:
    """Explain a failed comparison of secret-carrying values without showing the secrets."""
    if not (_carries_secret(left) or _carries_secret(right)):
        return None
    lines = [
        f"{_shown(left)} {op} {_shown(right)}",
        "(contents hidden: the values hold a portal session URL or an API key)",
    ]
    cls = type(left)
    if cls is type(right) and attrs.has(cls):
        differing = [
            field.name
            for field in attrs.fields(cls)
            if field.eq and getattr(left, field.name) != getattr(right, field.name)
        ]
        lines.append(f"Differing attributes: {differing!r}")
    return lines


def _seed_path(config: pytest.Config) -> Path | None:
    value = str(config.getini(SEED_OPTION)).strip()
    if not value:
        return None
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    return base / value


@pytest.fixture
def stripe_recorder() -> StripeRecorder:
    """A fake Stripe that records requests; pass it as your client's ``transport``."""
    return StripeRecorder()


@pytest.fixture(scope="session")
def stripe_emulator(pytestconfig: pytest.Config) -> Iterator[EmulatorServer]:
    """The local Stripe emulator on 127.0.0.1, one per test session, stopped at the end."""
    try:
        import lattice_stripe.emulator  # noqa: F401  (here, so only a session that uses it pays)
    except ImportError as error:
        pytest.fail(
            f"the stripe_emulator fixture needs lattice-stripe[emulator]: {error}", pytrace=False
        )
    with emulator_server(seed=_seed_path(pytestconfig)) as server:
        yield server


@pytest.fixture
def fresh_stripe_emulator(stripe_emulator: EmulatorServer) -> EmulatorServer:
    """The session's emulator, back to its seed for this test, its webhooks sent nowhere."""
    stripe_emulator.webhook_url = None
    stripe_emulator.reset()
    return stripe_emulator


@pytest.fixture
def serve_app() -> Iterator[Callable[[Any], str]]:
    """Run ASGI apps on 127.0.0.1 for this test: ``url = serve_app(app)``; stopped after it."""
    with contextlib.ExitStack() as running:
        yield lambda app: running.enter_context(serve_asgi(app))
