"""``AsyncioTransport``: an asyncio transport on the standard library alone.

An :class:`asyncio.Protocol` per connection speaks HTTP/1.1, framed and parsed
by :mod:`lattice_stripe.core.wire` (the parser the sync
:class:`~lattice_stripe.adapters.stdlib.StdlibTransport` uses), so it needs no
extra. Idle keep-alive connections are kept per host, up to ``pool_size``; a
task that finds none opens a new one and never waits. The transport belongs
to the event loop that first uses it. One timer per request, on the loop,
enforces both the idle timeout (re-armed only when it fires, from the time of
the last bytes received) and the attempt's deadline.

Every failure becomes an :class:`~lattice_stripe.core.errors.APIConnectionError`
in one place, :func:`_connection_error`, with the original chained as
``__cause__`` and every traceback of the chain dropped.
"""

import asyncio
import select
import ssl

from lattice_stripe.core.config import DEFAULT_POOL_SIZE
from lattice_stripe.core.errors import (
    APIConnectionError,
    ValidationError,
    detach_tracebacks,
)
from lattice_stripe.core.http import HttpRequest, HttpResponse
from lattice_stripe.core.wire import (
    InvalidHeaderError,
    InvalidURLError,
    ResponseParser,
    Route,
    WireProtocolError,
    encode_request,
    parse_url,
    too_large,
)

__all__ = ["AsyncioTransport"]

_CACHE_LIMIT = 32
_CLOSE_WAIT = 1.0
_CONNECT, _SEND, _RECEIVE = "connect", "send", "receive"


class _DeadlineError(TimeoutError):
    """The attempt's deadline passed (a TimeoutError, so it reads as one)."""


class _Connection(asyncio.Protocol):
    """One connection: feeds what arrives to the current request's parser."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = loop.create_future()
        self._parser: ResponseParser | None = None
        self._waiter: asyncio.Future[ResponseParser] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timeout = 0.0
        self._deadline_at = 0.0
        self._last_data = 0.0
        self.reused = False

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:
            # Bytes nobody asked for: the connection cannot be trusted again.
            self.abort()
            return
        self._last_data = self._loop.time()
        try:
            parser.feed(data)
        except WireProtocolError as error:
            self._fail(error)
            return
        if parser.done or parser.too_large:
            self._finish(parser)

    def eof_received(self) -> bool:
        parser = self._parser
        if parser is not None:
            try:
                parser.feed_eof()
            except WireProtocolError as error:
                self._fail(error)
            else:
                self._finish(parser)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if self._parser is not None:
            self._fail(exc if exc is not None else ConnectionResetError("the connection closed"))

    # -- one exchange ----------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Whether this idle connection is still open, with nothing waiting to be read.

        The loop marks a connection it saw close; the poll catches a close
        that arrived since the loop last looked, before anything is written.
        """
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        sock = transport.get_extra_info("socket")
        try:
            return not _has_news(sock.fileno())
        except (OSError, ValueError, AttributeError):
            return False

    def exchange(
        self, data: bytes, limit: int, timeout: float, deadline_at: float
    ) -> "asyncio.Future[ResponseParser]":
        """Write the request; the future resolves with the parsed response."""
        assert self.transport is not None
        self._parser = ResponseParser(limit)
        waiter = self._waiter = self._loop.create_future()
        self._timeout = timeout
        self._deadline_at = deadline_at
        self._last_data = now = self._loop.time()
        self._timer = self._loop.call_at(min(now + timeout, deadline_at), self._on_timer)
        self.transport.write(data)
        return waiter

    def _on_timer(self) -> None:
        self._timer = None
        if self._parser is None:
            return
        now = self._loop.time()
        if now >= self._deadline_at:
            self._fail(_DeadlineError("the attempt's deadline passed waiting for the response"))
        elif now - self._last_data >= self._timeout:
            self._fail(TimeoutError("no bytes from the server within the timeout"))
        else:
            wake = min(self._last_data + self._timeout, self._deadline_at)
            self._timer = self._loop.call_at(wake, self._on_timer)

    def _settle(self) -> "asyncio.Future[ResponseParser] | None":
        waiter, self._waiter, self._parser = self._waiter, None, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return waiter if waiter is not None and not waiter.done() else None

    def _finish(self, parser: ResponseParser) -> None:
        waiter = self._settle()
        if waiter is not None:
            waiter.set_result(parser)

    def _fail(self, error: BaseException) -> None:
        waiter = self._settle()
        self.abort()
        if waiter is not None:
            waiter.set_exception(error)

    def abort(self) -> None:
        """Drop the connection at once (no drain, no TLS goodbye)."""
        self._settle()
        if self.transport is not None:
            self.transport.abort()


class _Attempt:
    """How far one attempt got, and the connection it holds, for the failure it may end in."""

    __slots__ = ("connection", "phase")

    def __init__(self) -> None:
        self.phase = _CONNECT
        self.connection: _Connection | None = None


class AsyncioTransport:
    """Sends requests over keep-alive connections of its own, per host, on one event loop.

    ``ssl_context`` replaces the default verifying context; ``ca_bundle`` (a
    PEM file) makes the default context trust those authorities instead of
    the system's. It speaks to Stripe directly: for a proxy, use
    :class:`~lattice_stripe.adapters.aiohttp.AiohttpTransport`. A closed
    transport refuses to send.
    """

    def __init__(
        self,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        ssl_context: ssl.SSLContext | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        if ssl_context is not None and ca_bundle is not None:
            raise ValidationError(
                "ca_bundle",
                "give either ssl_context or ca_bundle, not both (load it into the context)",
            )
        if pool_size < 0:
            raise ValidationError("pool_size", "must be 0 or more idle connections per host")
        self._pool_size = pool_size
        self._ssl_context = ssl_context
        self._ca_bundle = ca_bundle
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._routes: dict[str, Route] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`aclose` has been called."""
        return self._closed

    async def asend(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` and read the whole response, within every limit it carries.

        A body over ``request.max_response_bytes`` raises
        :class:`~lattice_stripe.core.errors.ResponseTooLargeError` and its
        connection is dropped, not drained.
        """
        loop = asyncio.get_running_loop()
        deadline_at = loop.time() + request.deadline
        if self._closed:
            raise APIConnectionError("the transport is closed", should_retry=False)
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise APIConnectionError(
                "the transport's connections belong to another event loop; "
                "create one transport per loop",
                should_retry=False,
            )
        attempt = _Attempt()
        try:
            parser = await self._attempt(loop, request, deadline_at, attempt)
        except (
            OSError,
            asyncio.TimeoutError,
            WireProtocolError,
            InvalidHeaderError,
            InvalidURLError,
        ) as error:
            raise _connection_error(error, attempt.phase) from detach_tracebacks(error)
        finally:
            if attempt.connection is not None:
                # Failed or cancelled mid-exchange: the connection is in an unknown state.
                self._busy.discard(attempt.connection)
                attempt.connection.abort()
        if parser.too_large:
            raise too_large(parser, request)
        return HttpResponse(status=parser.status, headers=parser.headers, body=parser.body)

    async def _attempt(
        self,
        loop: asyncio.AbstractEventLoop,
        request: HttpRequest,
        deadline_at: float,
        attempt: _Attempt,
    ) -> ResponseParser:
        """One exchange; its frame alone holds the encoded request (API key included)."""
        scheme, host, port, target, host_header = self._route(request.url)
        data = encode_request(request.method, target, host_header, request.headers, request.body)
        key = (scheme, host, port)
        if loop.time() >= deadline_at:
            # Checked before a connection is taken, so an idle one stays pooled.
            raise _DeadlineError("the attempt's deadline passed before it started")
        connection = attempt.connection = self._checkout(key)
        if connection is None:
            connection = attempt.connection = await self._connect(loop, key, request, deadline_at)
        attempt.phase = _SEND
        waiter = connection.exchange(data, request.max_response_bytes, request.timeout, deadline_at)
        attempt.phase = _RECEIVE
        parser = await waiter
        attempt.connection = None
        self._busy.discard(connection)
        if parser.keep_alive and not parser.too_large:
            self._checkin(key, connection)
        else:
            # Dropped, not drained, when the body is too large.
            connection.abort()
        return parser

    def _route(self, url: str) -> Route:
        route = self._routes.get(url)
        if route is None:
            route = parse_url(url)
            if len(self._routes) > _CACHE_LIMIT:
                self._routes.clear()
            self._routes[url] = route
        return route

    def _checkout(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            # A connection the server closed while it idled is known to the
            # loop already: it is skipped before anything is written to it.
            if connection.usable:
                connection.reused = True
                self._busy.add(connection)
                return connection
            connection.abort()
        return None

    def _checkin(self, key: tuple[str, str, int], connection: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if not self._closed and len(idle) < self._pool_size and connection.usable:
            idle.append(connection)
        else:
            connection.abort()

    async def _connect(
        self,
        loop: asyncio.AbstractEventLoop,
        key: tuple[str, str, int],
        request: HttpRequest,
        deadline_at: float,
    ) -> _Connection:
        scheme, host, port = key
        wait = min(request.connect_timeout, deadline_at - loop.time())
        if wait <= 0:
            raise _DeadlineError("the attempt's deadline passed before connecting")
        connection = _Connection(loop)
        context = self._context() if scheme == "https" else None
        opening = loop.create_connection(
            lambda: connection,
            host,
            port,
            ssl=context,
            server_hostname=host if context is not None else None,
        )
        await asyncio.wait_for(opening, wait)
        self._busy.add(connection)
        return connection

    def _context(self) -> ssl.SSLContext:
        context = self._ssl_context
        if context is None:
            context = ssl.create_default_context(cafile=self._ca_bundle)
            context.set_alpn_protocols(["http/1.1"])
            self._ssl_context = context
        return context

    async def aclose(self) -> None:
        """Close every connection and wait until the loop has let each go."""
        self._closed = True
        connections = [c for idle in self._idle.values() for c in idle] + list(self._busy)
        self._idle.clear()
        self._busy.clear()
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()
        if connections:
            lost = [connection.lost for connection in connections]
            _, pending = await asyncio.wait(lost, timeout=_CLOSE_WAIT)
            for connection in connections:
                if connection.lost in pending:
                    connection.abort()

    async def __aenter__(self) -> "AsyncioTransport":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncioTransport(pool_size={self._pool_size}, closed={self._closed})"


def _has_news(fd: int) -> bool:
    """Whether idle socket ``fd`` has something to read (a close, a reset, stray bytes), now.

    ``poll`` where it exists: ``select`` refuses descriptors past 1023, which
    a busy server process reaches.
    """
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


def _connection_error(error: Exception, phase: str) -> APIConnectionError:
    # Order matters: _DeadlineError and timeouts are TimeoutErrors, and SSL and
    # socket failures are OSErrors.
    should_retry = True
    if isinstance(error, InvalidURLError):
        what, should_retry = "the Stripe URL is invalid", False
    elif isinstance(error, InvalidHeaderError):
        what, should_retry = f"the request could not be framed: {error}", False
    elif isinstance(error, _DeadlineError):
        what = "timed out: the attempt's deadline passed"
    elif isinstance(error, (TimeoutError, asyncio.TimeoutError)):
        what = (
            "timed out connecting to Stripe"
            if phase == _CONNECT
            else "timed out waiting for Stripe's response"
        )
    elif isinstance(error, ssl.SSLError) and phase == _CONNECT:
        # A certificate or protocol mismatch does not heal on its own.
        what, should_retry = "TLS failed talking to Stripe", False
    elif phase == _CONNECT:
        what = "could not connect to Stripe"
    elif isinstance(error, (OSError, WireProtocolError)):
        what = "the connection to Stripe broke"
    else:
        what = "the request to Stripe failed"
    return APIConnectionError(f"{what} ({type(error).__name__})", should_retry=should_retry)
