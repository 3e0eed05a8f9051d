"""Every real transport, listed once: the transport suite and the fault matrix run over each.

A :class:`Kind` makes a fresh, owned transport, optionally trusting a test CA
(for the HTTPS runs), and names the exception roots of the library under it
(what a transport's ``APIConnectionError`` may chain as ``__cause__``).
"""

import asyncio
import functools
import http.client
import ssl
from collections.abc import Callable

import aiohttp
import attrs
import trustme
import urllib3

from lattice_stripe.adapters.aiohttp import AiohttpTransport
from lattice_stripe.adapters.asyncio import AsyncioTransport
from lattice_stripe.adapters.stdlib import StdlibTransport
from lattice_stripe.adapters.urllib3 import Urllib3Transport
from lattice_stripe.core.http import HttpRequest, HttpResponse
from lattice_stripe.core.ports import AsyncTransport, SyncTransport
from lattice_stripe.core.wire import WireProtocolError

__all__ = [
    "ASYNC_KINDS",
    "KINDS",
    "LEAN_KINDS",
    "SYNC_KINDS",
    "Kind",
    "client_trust",
    "server_tls",
    "throwaway_ca",
]

Trust = ssl.SSLContext | None
"""A client context that trusts the test CA, or ``None`` for the transport's default."""


@attrs.frozen(kw_only=True)
class Kind:
    """One transport under test."""

    name: str
    is_async: bool
    make: Callable[[Trust], SyncTransport | AsyncTransport]
    library_errors: tuple[type[BaseException], ...]

    def sync(self, trust: Trust = None) -> SyncTransport:
        """A fresh sync transport of this kind."""
        transport = self.make(trust)
        assert isinstance(transport, SyncTransport)
        return transport

    def async_(self, trust: Trust = None) -> AsyncTransport:
        """A fresh async transport of this kind."""
        transport = self.make(trust)
        assert isinstance(transport, AsyncTransport)
        return transport


def _urllib3(trust: Trust) -> Urllib3Transport:
    if trust is None:
        return Urllib3Transport()
    return Urllib3Transport(urllib3.PoolManager(ssl_context=trust))


class _TrustingAiohttp:
    """An ``AiohttpTransport`` over a session trusting the test CA, made in the running loop."""

    def __init__(self, trust: ssl.SSLContext) -> None:
        self._trust = trust
        self._session: aiohttp.ClientSession | None = None
        self._transport: AiohttpTransport | None = None

    async def asend(self, request: HttpRequest) -> HttpResponse:
        """Send through the transport, making its session on first use."""
        if self._transport is None:
            connector = aiohttp.TCPConnector(ssl=self._trust)
            self._session = aiohttp.ClientSession(connector=connector)
            self._transport = AiohttpTransport(self._session)
        return await self._transport.asend(request)

    async def aclose(self) -> None:
        """Close the transport and the session made for it."""
        if self._transport is not None:
            await self._transport.aclose()
        if self._session is not None:
            await self._session.close()


def _aiohttp(trust: Trust) -> AsyncTransport:
    if trust is None:
        return AiohttpTransport()
    return _TrustingAiohttp(trust)


def _stdlib(trust: Trust) -> StdlibTransport:
    return StdlibTransport(ssl_context=trust)


def _asyncio(trust: Trust) -> AsyncioTransport:
    return AsyncioTransport(ssl_context=trust)


_STDLIB_ERRORS = (OSError, WireProtocolError, http.client.HTTPException)

SYNC_KINDS = [
    Kind(
        name="stdlib",
        is_async=False,
        make=_stdlib,
        library_errors=_STDLIB_ERRORS,
    ),
    Kind(
        name="urllib3",
        is_async=False,
        make=_urllib3,
        library_errors=(urllib3.exceptions.HTTPError,),
    ),
]
ASYNC_KINDS = [
    Kind(
        name="asyncio",
        is_async=True,
        make=_asyncio,
        library_errors=(*_STDLIB_ERRORS, asyncio.TimeoutError),
    ),
    Kind(
        name="aiohttp",
        is_async=True,
        make=_aiohttp,
        library_errors=(aiohttp.ClientError, asyncio.TimeoutError),
    ),
]
KINDS = SYNC_KINDS + ASYNC_KINDS
LEAN_KINDS = [kind for kind in KINDS if kind.name in ("stdlib", "asyncio")]
"""The transports on the standard library alone."""


@functools.cache
def throwaway_ca() -> trustme.CA:
    """A throwaway certificate authority, made once per test session."""
    return trustme.CA()


def server_tls(*hosts: str) -> ssl.SSLContext:
    """A server context with a certificate from :func:`throwaway_ca` for ``hosts``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    throwaway_ca().issue_cert(*(hosts or ("127.0.0.1",))).configure_cert(context)
    return context


def client_trust() -> ssl.SSLContext:
    """A verifying client context that trusts :func:`throwaway_ca` (and nothing else)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    throwaway_ca().configure_trust(context)
    return context
