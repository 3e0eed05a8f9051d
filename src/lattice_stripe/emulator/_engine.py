"""The emulated Stripe account: its keys, its state, its webhooks, its idempotency memory.

One :class:`Emulator` serves one aiohttp application
(:func:`lattice_stripe.emulator._app.create_app`). Time is read from the
injected ``clock`` only, so session expiry and event timestamps are testable.
:meth:`Emulator.reset` puts the state back to the seed, for test isolation.
"""

import asyncio
import re
import time
from collections.abc import MutableMapping, Sequence
from typing import TypeVar

import attrs
from aiohttp import web

from lattice_stripe.core.config import check_api_key, is_live_key
from lattice_stripe.emulator._state import Clock, Seed, Store, load_seed
from lattice_stripe.emulator._webhooks import Sleep, WebhookDispatcher

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_WEBHOOK_SECRET",
    "EMULATOR",
    "Emulator",
    "IdempotentResult",
    "MAX_REMEMBERED",
    "remember",
]

DEFAULT_API_KEY = "sk_test_emulator"
DEFAULT_WEBHOOK_SECRET = "whsec_emulator"

_WEBHOOK_SECRET = re.compile(r"whsec_[0-9A-Za-z+/=]+")
_V = TypeVar("_V")

MAX_REMEMBERED = 10_000
"""The default bound on stored portal sessions, portal visits and idempotent answers, each."""


def remember(mapping: MutableMapping[str, _V], key: str, value: _V, limit: int) -> None:
    """Store ``value`` under ``key``, evicting the oldest entries beyond ``limit``.

    Dicts keep insertion order, so the first key is the oldest: a client that
    creates sessions in a loop cannot grow the emulator's memory without end.
    """
    mapping[key] = value
    while len(mapping) > limit:
        del mapping[next(iter(mapping))]


@attrs.frozen(kw_only=True)
class IdempotentResult:
    """A saved answer, replayed for a retry that carries the same ``Idempotency-Key``."""

    method: str
    path: str
    params: object
    status: int
    body: bytes = attrs.field(repr=False)
    request_id: str
    created: float


class Emulator:
    """A local, stateful stand-in for one Stripe test-mode account.

    ``session_ttl`` is how long a portal session URL may wait to be opened
    (Stripe: 5 minutes); ``visit_ttl`` how long the opened portal stays usable.
    ``settle_timeout`` bounds how long a portal page waits for the first
    delivery of its webhooks before redirecting (so the app has the news when
    the customer lands back on it). ``webhook_retry_delays`` and
    ``webhook_sleep`` shape the retries of a failing endpoint.

    ``public_url`` is the address written into session URLs (default: the
    address :func:`~lattice_stripe.emulator.serve` binds, never a request's
    ``Host`` header, which a client can forge). ``max_remembered`` bounds the
    portal sessions, the portal visits and the idempotent answers kept, each
    (oldest evicted first; default :data:`MAX_REMEMBERED`, 10,000).

    ``idempotent`` holds the saved answers by ``Idempotency-Key``;
    ``in_flight`` the keys of the requests still being processed.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        webhook_url: str | None = None,
        seed: Seed | None = None,
        clock: Clock = time.time,
        session_ttl: float = 300.0,
        visit_ttl: float = 3600.0,
        settle_timeout: float = 5.0,
        webhook_retry_delays: Sequence[float] = (1.0, 5.0, 25.0),
        webhook_timeout: float = 10.0,
        webhook_sleep: Sleep = asyncio.sleep,
        public_url: str | None = None,
        max_remembered: int = MAX_REMEMBERED,
    ) -> None:
        check_api_key(api_key)
        if is_live_key(api_key):
            raise ValueError("the emulator is test mode only: configure an sk_test_ key")
        if _WEBHOOK_SECRET.fullmatch(webhook_secret) is None:
            raise ValueError("the webhook secret must look like whsec_ followed by letters/digits")
        self.api_key = api_key
        self.clock = clock
        self.session_ttl = session_ttl
        self.visit_ttl = visit_ttl
        self.settle_timeout = settle_timeout
        if max_remembered < 1:
            raise ValueError("max_remembered must be at least 1")
        self.public_url = None if public_url is None else public_url.rstrip("/")
        self.max_remembered = max_remembered
        self.bound_url: str | None = None
        self._seed = load_seed() if seed is None else seed
        self.store = Store(self._seed, clock=clock)
        self.webhooks = WebhookDispatcher(
            secret=webhook_secret,
            clock=clock,
            url=webhook_url,
            retry_delays=webhook_retry_delays,
            timeout=webhook_timeout,
            sleep=webhook_sleep,
        )
        self.idempotent: dict[str, IdempotentResult] = {}
        self.in_flight: set[str] = set()

    async def reset(self) -> None:
        """Back to the seed: a new store, no saved answers, an empty webhook log.

        Pending webhook deliveries and retries are cancelled; the keys, the
        webhook URL and the other settings stay. Runs on the emulator's loop.
        """
        self.store = Store(self._seed, clock=self.clock)
        self.idempotent.clear()
        self.in_flight.clear()
        await self.webhooks.reset()

    @property
    def webhook_secret(self) -> str:
        """The ``whsec_`` secret that signs every webhook."""
        return self.webhooks.secret

    def __repr__(self) -> str:
        return f"Emulator(customers={len(self.store.customers)}, webhook_url={self.webhooks.url!r})"


EMULATOR = web.AppKey("emulator", Emulator)
