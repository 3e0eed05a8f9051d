"""Events and their signed delivery to the configured endpoint, with bounded retries.

Each :class:`~lattice_stripe.emulator._state.Change` becomes a Stripe event
(``evt_...``, ``object: "event"``, ``data.object``, ``data.previous_attributes``
for updates), POSTed as JSON with a ``Stripe-Signature`` header made by
:func:`lattice_stripe.core.webhooks.generate_signature_header`, so the
library's own verifier is what checks it. The events of one change are sent in
order; an endpoint that fails (no answer, or a status outside 2xx) is retried
after each of ``retry_delays`` seconds, then given up. Every event and attempt
stays in :attr:`WebhookDispatcher.log` for tests (``GET /_emulator/webhooks``),
until :meth:`WebhookDispatcher.reset`.
"""

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import aiohttp
import attrs

from lattice_stripe.core.config import API_VERSION
from lattice_stripe.core.webhooks import generate_signature_header
from lattice_stripe.emulator._state import Change, Clock, new_id

__all__ = ["Attempt", "Delivery", "WebhookDispatcher"]

Sleep = Callable[[float], Awaitable[None]]

_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


@attrs.define(kw_only=True)
class Attempt:
    """One POST to the endpoint: when, and the HTTP status or the failure."""

    at: int
    status: int | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


@attrs.define(kw_only=True, eq=False)
class Delivery:
    """An event and what became of it: ``pending``, ``delivered``, ``failed`` or ``no_endpoint``."""

    event: dict[str, Any]
    url: str | None
    state: str
    attempts: list[Attempt] = attrs.Factory(list)
    first_attempt: asyncio.Event = attrs.Factory(asyncio.Event)

    def to_json(self) -> dict[str, Any]:
        """The log entry served by ``GET /_emulator/webhooks``."""
        return {
            "event": self.event,
            "url": self.url,
            "state": self.state,
            "attempts": [attrs.asdict(attempt) for attempt in self.attempts],
        }


class WebhookDispatcher:
    """Turns changes into events and delivers them to ``url`` (``None``: log only)."""

    def __init__(
        self,
        *,
        secret: str,
        clock: Clock,
        url: str | None = None,
        retry_delays: Sequence[float] = (1.0, 5.0, 25.0),
        timeout: float = 10.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.secret = secret
        self.url = url
        self.retry_delays = tuple(retry_delays)
        self.log: list[Delivery] = []
        self._clock = clock
        self._timeout = timeout
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"WebhookDispatcher(url={self.url!r}, events={len(self.log)})"

    def publish(
        self, changes: Iterable[Change], *, request_id: str | None = None
    ) -> list[Delivery]:
        """Log an event per change and start delivering them, in order."""
        deliveries = [self._record(change, request_id) for change in changes]
        if self.url is not None and deliveries:
            self._spawn(self._deliver_in_order(deliveries, self.url))
        return deliveries

    async def settle(self, deliveries: Iterable[Delivery], *, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until each delivery has been tried once."""
        waits = [delivery.first_attempt.wait() for delivery in deliveries]
        if waits:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), timeout)

    async def drain(self, *, timeout: float = 10.0) -> None:
        """Wait until every delivery, retries included, is finished (for tests)."""
        await asyncio.wait_for(self._until_idle(), timeout)

    async def _until_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def reset(self) -> None:
        """Cancel pending deliveries and retries, and empty the log; the HTTP session stays."""
        stopping = self._cancel_tasks()
        # A portal page may be waiting in settle() for a delivery that will now never be tried.
        for delivery in self.log:
            delivery.first_attempt.set()
        self.log.clear()
        await stopping

    async def aclose(self) -> None:
        """Stop pending retries and close the HTTP session."""
        await self._cancel_tasks()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- internals -----------------------------------------------------------------

    def _cancel_tasks(self) -> "asyncio.Future[list[BaseException | None]]":
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        return asyncio.gather(*tasks, return_exceptions=True)

    def _record(self, change: Change, request_id: str | None) -> Delivery:
        data: dict[str, Any] = {"object": change.object}
        if change.previous_attributes is not None:
            data["previous_attributes"] = change.previous_attributes
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(self._clock()),
            "data": data,
            "livemode": False,
            "pending_webhooks": 0 if self.url is None else 1,
            "request": {"id": request_id, "idempotency_key": None},
            "type": change.type,
        }
        delivery = Delivery(
            event=event,
            url=self.url,
            state="no_endpoint" if self.url is None else "pending",
        )
        if self.url is None:
            delivery.first_attempt.set()
        self.log.append(delivery)
        return delivery

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_in_order(self, deliveries: list[Delivery], url: str) -> None:
        for delivery in deliveries:
            try:
                delivered = await self._attempt(delivery, url)
            finally:
                delivery.first_attempt.set()
            if not delivered:
                self._spawn(self._retry(delivery, url))

    async def _retry(self, delivery: Delivery, url: str) -> None:
        for delay in self.retry_delays:
            await self._sleep(delay)
            if await self._attempt(delivery, url):
                return
        delivery.state = "failed"

    async def _attempt(self, delivery: Delivery, url: str) -> bool:
        payload = json.dumps(delivery.event, indent=2).encode()
        now = int(self._clock())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": _USER_AGENT,
            "Stripe-Signature": generate_signature_header(payload, self.secret, timestamp=now),
        }
        attempt = Attempt(at=now)
        delivery.attempts.append(attempt)
        try:
            async with self._client().post(
                url,
                data=payload,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                allow_redirects=False,
            ) as response:
                await response.content.read(64 * 1024)
                attempt.status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            attempt.error = type(error).__name__
        if attempt.succeeded:
            delivery.state = "delivered"
        return attempt.succeeded

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session
