"""Helpers for the emulator tests: a settable clock, a webhook receiver, a portal browser."""

import asyncio
import contextlib
import os
import re
import selectors
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import attrs
from aiohttp import web

from lattice_stripe.core.codec import encode_form

API_KEY = "sk_test_emulator"
NOW = 1_790_000_000.0
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_VERSION = re.compile(r'name="version" value="([^"]+)"')


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@attrs.define
class Received:
    """One webhook delivery as the endpoint saw it."""

    body: bytes
    signature: str | None


@attrs.define
class Receiver:
    """A webhook endpoint on loopback that answers ``failures`` times with 500, then 200."""

    url: str = ""
    failures: int = 0
    received: list[Received] = attrs.Factory(list)

    async def handle(self, request: web.Request) -> web.Response:
        """Record the delivery; fail while failures remain."""
        self.received.append(
            Received(body=await request.read(), signature=request.headers.get("Stripe-Signature"))
        )
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=500, text="endpoint failure")
        return web.json_response({"received": True})


@contextlib.asynccontextmanager
async def webhook_receiver(failures: int = 0) -> AsyncIterator[Receiver]:
    """Run a :class:`Receiver` on 127.0.0.1 (an ephemeral port) for the block."""
    receiver = Receiver(failures=failures)
    app = web.Application()
    app.router.add_post("/webhooks", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks"
        yield receiver
    finally:
        await runner.cleanup()


@attrs.frozen
class Page:
    """A response as a browser sees it, redirects not followed."""

    status: int
    text: str
    location: str | None
    headers: Mapping[str, str]

    @property
    def csrf(self) -> str:
        """The CSRF token of the page's forms."""
        match = _CSRF.search(self.text)
        assert match is not None, "the page has no form"
        return match.group(1)

    @property
    def form(self) -> dict[str, str]:
        """The hidden fields every portal form carries: the CSRF token and the state version."""
        version = _VERSION.search(self.text)
        assert version is not None, "the page has no form"
        return {"csrf_token": self.csrf, "version": version.group(1)}


async def _page(response: aiohttp.ClientResponse) -> Page:
    return Page(
        status=response.status,
        text=await response.text(),
        location=response.headers.get("Location"),
        headers=dict(response.headers),
    )


class Browser:
    """A cookie-keeping HTTP client that does not follow redirects."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    async def get(self, path: str) -> Page:
        """GET ``path`` (relative to the emulator, or absolute)."""
        async with self.session.get(self._url(path), allow_redirects=False) as response:
            return await _page(response)

    async def post(self, path: str, fields: Mapping[str, Any]) -> Page:
        """POST a form to ``path``."""
        async with self.session.post(
            self._url(path),
            data=encode_form(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
        ) as response:
            return await _page(response)

    async def submit(self, path: str, fields: Mapping[str, Any]) -> Page:
        """Load the form page at ``path`` and post ``fields`` to it with its CSRF token."""
        form = await self.get(path)
        assert form.status == 200, form.text
        return await self.post(path, {**form.form, **fields})

    async def aclose(self) -> None:
        """Close the client session."""
        await self.session.close()


@contextlib.asynccontextmanager
async def browser(base_url: str) -> AsyncIterator[Browser]:
    """A :class:`Browser` for the block."""
    client = Browser(base_url)
    try:
        yield client
    finally:
        await client.aclose()


async def api(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    params: Mapping[str, Any] | None = None,
    *,
    api_key: str | None = API_KEY,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, Any], Mapping[str, str]]:
    """Call the emulator's REST API with a form body; return status, JSON and headers."""
    sent = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    if api_key is not None:
        sent["Authorization"] = f"Bearer {api_key}"
    async with http.request(
        method, url, data=encode_form(params or {}), headers=sent, allow_redirects=False
    ) as response:
        return response.status, await response.json(), dict(response.headers)


def read_until(process: "subprocess.Popen[str]", marker: str, *, timeout: float = 15.0) -> str:
    """Read the process's stdout until it contains ``marker``; fail after ``timeout``.

    Reads the raw pipe (``os.read``): a buffered ``readline`` could hold text that
    ``select`` no longer sees.
    """
    assert process.stdout is not None
    descriptor = process.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(descriptor, selectors.EVENT_READ)
        while marker.encode() not in seen:
            left = deadline - time.monotonic()
            ready = left > 0 and selector.select(left)
            assert ready, f"no {marker!r} in time; got {seen!r}"
            chunk = os.read(descriptor, 4096)
            assert chunk, f"the process exited ({process.poll()}); got {seen!r}"
            seen += chunk
    return seen.decode()


async def raw_get(base_url: str, path: str, headers: Mapping[str, bytes]) -> tuple[int, bytes]:
    """GET ``path`` with header values sent as raw bytes (which an HTTP client would refuse)."""
    host, _, port = base_url.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        lines = [f"GET {path} HTTP/1.1".encode(), f"Host: {host}".encode(), b"Connection: close"]
        lines += [name.encode() + b": " + value for name, value in headers.items()]
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
        head, _, body = (await reader.read()).partition(b"\r\n\r\n")
    finally:
        writer.close()
        await writer.wait_closed()
    return int(head.split(b" ", 2)[1]), body
