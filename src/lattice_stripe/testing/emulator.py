"""The local Stripe emulator for tests: started in a background thread, read over HTTP.

::

    with emulator_server() as stripe:
        with stripe.client() as client:
            session = client.billing_portal.sessions.create({"customer": "cus_demo"})
        assert stripe.webhooks() == []
        stripe.reset()  # back to the seed: the session above no longer exists

Importing this module imports nothing heavy; :func:`emulator_server` imports
the emulator (aiohttp, the ``lattice-stripe[emulator]`` extra) when called.
"""

import contextlib
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from lattice_stripe.client import AsyncClient, Client
from lattice_stripe.core.webhooks import Event

if TYPE_CHECKING:
    from lattice_stripe.emulator import Emulator, RunningEmulator

__all__ = ["EmulatorServer", "SentWebhook", "emulator_server"]

# Loopback only: a proxy configured in the environment must not see the requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@attrs.frozen(kw_only=True)
class SentWebhook:
    """One event the emulator sent (or would have sent, with no endpoint set).

    ``state`` is ``pending``, ``delivered``, ``failed`` or ``no_endpoint``;
    ``attempts`` is how many POSTs were made; ``event`` is the event as your
    handler would receive it.
    """

    event: Event
    url: str | None
    state: str
    attempts: int

    @property
    def type(self) -> str:
        """The event type, such as ``customer.subscription.updated``."""
        return self.event.type


class EmulatorServer:
    """A running emulator: where it is, its credentials, and what it sent.

    ``base_url`` (``http://127.0.0.1:<port>``) goes in a client's ``base_url``
    with ``allow_http_localhost=True``; ``api_key`` is the only key it
    accepts; ``webhook_secret`` signs every webhook it sends to
    ``webhook_url`` (``None``: events are only logged).
    """

    def __init__(self, running: "RunningEmulator") -> None:
        self._emulator: Emulator = running.emulator
        self.base_url: str = running.url
        self.port: int = running.port

    @property
    def api_key(self) -> str:
        """The ``sk_test_`` key the emulator accepts."""
        return self._emulator.api_key

    @property
    def webhook_secret(self) -> str:
        """The ``whsec_`` secret that signs every webhook."""
        return self._emulator.webhook_secret

    @property
    def webhook_url(self) -> str | None:
        """Where events are POSTed; ``None`` logs them only."""
        return self._emulator.webhooks.url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        self._emulator.webhooks.url = url

    @contextlib.contextmanager
    def send_webhooks_to(self, url: str) -> Iterator[None]:
        """POST the events of the block to ``url`` (your app's endpoint), then stop."""
        before = self.webhook_url
        self.webhook_url = url
        try:
            yield
        finally:
            self.webhook_url = before

    def client(self, **options: Any) -> Client:
        """A :class:`~lattice_stripe.Client` for the emulator (the default transport).

        Close it: ``with stripe.client() as client: ...``.
        """
        options.setdefault("allow_http_localhost", True)
        return Client(self.api_key, base_url=self.base_url, **options)

    def async_client(self, **options: Any) -> AsyncClient:
        """An :class:`~lattice_stripe.AsyncClient` for the emulator (the default transport).

        Close it: ``async with stripe.async_client() as client: ...``.
        """
        options.setdefault("allow_http_localhost", True)
        return AsyncClient(self.api_key, base_url=self.base_url, **options)

    def reset(self) -> None:
        """Put the emulator back to its seed, so a test does not see what earlier ones changed.

        Every change, portal session, saved idempotent answer and logged webhook
        is forgotten, and pending deliveries are cancelled; ``webhook_url`` and
        the credentials stay as they are.
        """
        request = urllib.request.Request(
            f"{self.base_url}/_emulator/reset",
            data=b"",
            headers={"Authorization": f"Bearer {self.api_key}"},
            method="POST",
        )
        with _OPENER.open(request, timeout=10) as response:
            response.read()

    def webhooks(self, type: str | None = None, *, since: int = 0) -> list[SentWebhook]:
        """The events sent so far (of ``type``, if given), oldest first.

        ``since`` skips the first events of the log: take ``len(stripe.webhooks())``
        before acting to see only what the action sent.
        """
        request = urllib.request.Request(
            f"{self.base_url}/_emulator/webhooks",
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        with _OPENER.open(request, timeout=10) as response:
            log = json.loads(response.read())
        sent = [
            SentWebhook(
                event=Event.from_json(json.dumps(entry["event"]).encode()),
                url=entry["url"],
                state=entry["state"],
                attempts=len(entry["attempts"]),
            )
            for entry in log["data"][since:]
        ]
        return [webhook for webhook in sent if type is None or webhook.type == type]

    def wait_for_webhook(self, type: str, *, since: int = 0, timeout: float = 5.0) -> SentWebhook:
        """The newest ``type`` event (after the first ``since``) once its first delivery
        was tried; ``AssertionError`` after ``timeout`` seconds."""
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        while True:
            tried = [w for w in self.webhooks(type, since=since) if w.state != "pending"]
            if tried:
                return tried[-1]
            if time.monotonic() >= deadline:
                seen = sorted({webhook.type for webhook in self.webhooks(since=since)})
                raise AssertionError(
                    f"no {type} webhook was sent within {timeout}s; sent so far: {seen or 'none'}"
                )
            time.sleep(0.02)

    def __repr__(self) -> str:
        return f"EmulatorServer(base_url={self.base_url!r}, webhook_url={self.webhook_url!r})"


@contextlib.contextmanager
def emulator_server(
    *, seed: str | Path | None = None, webhook_url: str | None = None, **options: Any
) -> Iterator[EmulatorServer]:
    """Run the emulator on a free loopback port in a background thread until the block ends.

    ``seed`` is a seed file (the packaged one by default); ``options`` are
    those of :class:`~lattice_stripe.emulator.Emulator` (``api_key``,
    ``webhook_secret``, ``clock``, ...). Needs ``lattice-stripe[emulator]``.
    """
    from lattice_stripe.emulator import Emulator, load_seed, serve_in_thread

    emulator = Emulator(seed=load_seed(seed), webhook_url=webhook_url, **options)
    with serve_in_thread(emulator) as running:
        yield EmulatorServer(running)
