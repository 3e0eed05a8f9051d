"""``StdlibTransport``: the default synchronous transport, on the standard library alone.

HTTP/1.1 over keep-alive ``socket``/``ssl`` connections, framed and parsed by
:mod:`lattice_stripe.core.wire`, so ``pip install lattice-stripe`` needs no
transport extra. One transport is thread-safe: it keeps, per host, up to
``pool_size`` idle connections (a thread that finds none opens a new one; it
never waits). Certificates and host names are verified by default.

Timeouts live in the kernel: once connected, a socket is blocking with
``SO_RCVTIMEO``/``SO_SNDTIMEO`` set to the idle timeout, so a read costs one
system call, not a ``poll`` and a read. Near the attempt's deadline the
kernel timeout is shortened to what is left of it before each read, so a
server trickling a byte at a time cannot hold a call past its deadline.

Every failure becomes an :class:`~lattice_stripe.core.errors.APIConnectionError`
in one place, :func:`_connection_error`, with the original chained as
``__cause__`` and every traceback of the chain dropped.
"""

import base64
import contextlib
import select
import socket
import ssl
import struct
import sys
import time
import urllib.parse
from collections.abc import Callable

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

__all__ = ["StdlibTransport"]

# Under glibc's mmap threshold: each recv allocates its buffer whole.
_READ = 64 * 1024
_CACHE_LIMIT = 32
_MAX_PROXY_REPLY = 64 * 1024
# How a write to a connection the server has closed fails.
_PEER_CLOSED = (ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError)
# Where a blocking socket's kernel timeouts work as Python expects (a read
# past SO_RCVTIMEO fails with EAGAIN); elsewhere each read polls first.
_KERNEL_TIMEOUTS = sys.platform.startswith(("linux", "darwin", "freebsd")) and hasattr(
    socket, "SO_RCVTIMEO"
)

# What an attempt was doing when it failed: it decides the error's wording.
_CONNECT, _SEND, _RECEIVE = "connect", "send", "receive"


class _DeadlineError(TimeoutError):
    """The attempt's deadline passed (a TimeoutError, so it reads as one)."""


class _Attempt:
    """How far one attempt got, and the connection it holds, for the failure it may end in."""

    __slots__ = ("connection", "phase")

    def __init__(self) -> None:
        self.phase = _CONNECT
        self.connection: _Connection | None = None


class _Connection:
    """One open connection and the kernel read timeout last set on it."""

    __slots__ = ("read_timeout", "reused", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.read_timeout = -1.0
        self.reused = False

    def set_read_timeout(self, seconds: float) -> None:
        if seconds == self.read_timeout:
            return
        if _KERNEL_TIMEOUTS:
            whole = int(seconds)
            # A zero timeval means "wait forever": the shortest wait is 1 µs.
            micro = max(int((seconds - whole) * 1e6), 0 if whole else 1)
            packed = struct.pack("ll", whole, micro)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, packed)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, packed)
        else:
            self.sock.settimeout(seconds)
        self.read_timeout = seconds

    def dropped(self) -> bool:
        """Whether the idle connection was closed (or spoke out of turn) while it waited."""
        try:
            return _has_news(self.sock.fileno())
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        self.sock.close()


class StdlibTransport:
    """Sends requests over keep-alive connections of its own, per host.

    ``ssl_context`` replaces the default verifying context; ``ca_bundle`` (a
    PEM file) makes the default context trust those authorities instead of
    the system's. ``proxy`` (``http://[user:password@]host:port``) tunnels
    every connection through that proxy with ``CONNECT``; for anything more
    (SOCKS, proxy TLS, ``NO_PROXY`` rules) use
    :class:`~lattice_stripe.adapters.urllib3.Urllib3Transport`. Environment
    proxy variables are not read. A closed transport refuses to send.
    """

    def __init__(
        self,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        ssl_context: ssl.SSLContext | None = None,
        ca_bundle: str | None = None,
        proxy: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
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
        self._proxy = _parse_proxy(proxy) if proxy is not None else None
        self._monotonic = monotonic
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._routes: dict[str, Route] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` has been called."""
        return self._closed

    def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` and read the whole response, within every limit it carries.

        A body over ``request.max_response_bytes`` raises
        :class:`~lattice_stripe.core.errors.ResponseTooLargeError` and its
        connection is dropped, not drained.
        """
        deadline_at = self._monotonic() + request.deadline
        if self._closed:
            raise APIConnectionError("the transport is closed", should_retry=False)
        attempt = _Attempt()
        try:
            parser = self._attempt(request, deadline_at, attempt)
        except (OSError, WireProtocolError, InvalidHeaderError, InvalidURLError) as error:
            if attempt.connection is not None:
                attempt.connection.close()
            raise _connection_error(error, attempt.phase) from detach_tracebacks(error)
        except BaseException:
            # Interrupted (a signal handler, KeyboardInterrupt) half-way through
            # an exchange: the connection is in an unknown state, never reused.
            if attempt.connection is not None:
                attempt.connection.close()
            raise
        if parser.too_large:
            raise too_large(parser, request)
        return HttpResponse(status=parser.status, headers=parser.headers, body=parser.body)

    def _attempt(
        self, request: HttpRequest, deadline_at: float, attempt: "_Attempt"
    ) -> ResponseParser:
        """One exchange; its frame alone holds the encoded request (API key included).

        The caller's frame, which every traceback of the raised error shows,
        keeps only the masked ``request``.
        """
        scheme, host, port, target, host_header = self._route(request.url)
        data = encode_request(request.method, target, host_header, request.headers, request.body)
        key = (scheme, host, port)
        if self._monotonic() >= deadline_at:
            # Checked before a connection is taken, so an idle one stays pooled.
            raise _DeadlineError("the attempt's deadline passed before it started")
        fresh = False
        while True:
            connection = attempt.connection = None if fresh else self._checkout(key)
            if connection is None:
                connection = attempt.connection = self._connect(key, request, deadline_at)
            attempt.phase = _SEND
            try:
                self._send_all(connection, data, request.timeout, deadline_at)
            except _PEER_CLOSED:
                # A kept-alive connection the server closed as we took it:
                # nothing of the request went out, so a fresh one may send it.
                # (A timeout is not this: it is raised, never retried here.)
                if not connection.reused:
                    raise
                connection.close()
                attempt.connection = None
                attempt.phase, fresh = _CONNECT, True
                continue
            break
        attempt.phase = _RECEIVE
        parser = self._receive(connection, request, deadline_at)
        attempt.connection = None
        if parser.keep_alive and not parser.too_large:
            self._checkin(key, connection)
        else:
            # Dropped, not drained, when the body is too large.
            connection.close()
        return parser

    # -- routes and the pool ---------------------------------------------------------

    def _route(self, url: str) -> Route:
        route = self._routes.get(url)
        if route is None:
            route = parse_url(url)
            if len(self._routes) > _CACHE_LIMIT:
                self._routes.clear()
            self._routes[url] = route
        return route

    # The pool takes no lock: list.pop and list.append are single steps that no
    # interruption (a signal handler raising mid-call) can leave half done, where
    # a lock held by an interrupted call would stall every later call.
    def _checkout(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            try:
                connection = idle.pop()
            except IndexError:  # taken by another thread since the check
                return None
            if not connection.dropped():
                connection.reused = True
                return connection
            connection.close()
        return None

    def _checkin(self, key: tuple[str, str, int], connection: _Connection) -> None:
        if not self._closed:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self._pool_size:
                idle.append(connection)
                if not self._closed:
                    return
                # Closed meanwhile: close() may have missed it.
                with contextlib.suppress(ValueError):
                    idle.remove(connection)
        connection.close()

    # -- one attempt -----------------------------------------------------------------

    def _connect(
        self, key: tuple[str, str, int], request: HttpRequest, deadline_at: float
    ) -> _Connection:
        scheme, host, port = key
        wait = min(request.connect_timeout, deadline_at - self._monotonic())
        if wait <= 0:
            raise _DeadlineError("the attempt's deadline passed before connecting")
        address = (host, port) if self._proxy is None else self._proxy[:2]
        sock = socket.create_connection(address, timeout=wait)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._proxy is not None:
                self._tunnel(sock, host, port, request, deadline_at)
            if scheme == "https":
                sock.settimeout(min(request.connect_timeout, _left(self, deadline_at)))
                sock = self._context().wrap_socket(sock, server_hostname=host)
            # Blocking from here on: the kernel enforces the timeouts.
            sock.settimeout(None if _KERNEL_TIMEOUTS else request.timeout)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _tunnel(
        self, sock: socket.socket, host: str, port: int, request: HttpRequest, deadline_at: float
    ) -> None:
        assert self._proxy is not None
        authority = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
        if self._proxy[2] is not None:
            head += f"Proxy-Authorization: Basic {self._proxy[2]}\r\n"
        sock.sendall((head + "\r\n").encode("latin-1"))
        parser = ResponseParser(_MAX_PROXY_REPLY, head_only=True)
        while not parser.done:
            sock.settimeout(min(request.connect_timeout, _left(self, deadline_at)))
            data = sock.recv(_READ)
            if not data:
                parser.feed_eof()
            parser.feed(data)
        if parser.status != 200:
            raise _ProxyRefusedError(f"the proxy answered CONNECT with {parser.status}")

    def _send_all(
        self, connection: _Connection, data: bytes, timeout: float, deadline_at: float
    ) -> None:
        left = deadline_at - self._monotonic()
        if left <= 0:
            raise _DeadlineError("the attempt's deadline passed before sending")
        connection.set_read_timeout(timeout if timeout < left else left)
        view = memoryview(data)
        while view:
            try:
                sent = connection.sock.send(view)
            except OSError:
                if len(view) != len(data):
                    # Part of the request went out: it must not be sent again here.
                    connection.reused = False
                raise
            view = view[sent:]
            if view and self._monotonic() >= deadline_at:
                connection.reused = False
                raise _DeadlineError("the attempt's deadline passed while sending")

    def _receive(
        self, connection: _Connection, request: HttpRequest, deadline_at: float
    ) -> ResponseParser:
        parser = ResponseParser(request.max_response_bytes)
        timeout = request.timeout
        sock = connection.sock
        monotonic = self._monotonic
        while not (parser.done or parser.too_large):
            left = deadline_at - monotonic()
            if left <= 0:
                raise _DeadlineError("the attempt's deadline passed waiting for the response")
            connection.set_read_timeout(timeout if timeout < left else left)
            try:
                data = sock.recv(_READ)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError) as error:
                # A kernel timeout surfaces as EAGAIN, or as a TLS "want read".
                raise TimeoutError("no bytes from the server within the timeout") from error
            if data:
                parser.feed(data)
            else:
                parser.feed_eof()
        return parser

    def _context(self) -> ssl.SSLContext:
        context = self._ssl_context
        if context is None:
            context = ssl.create_default_context(cafile=self._ca_bundle)
            context.set_alpn_protocols(["http/1.1"])
            self._ssl_context = context
        return context

    # -- closing ---------------------------------------------------------------------

    def close(self) -> None:
        """Close every idle connection; connections in use close when their call ends."""
        self._closed = True
        pools, self._idle = self._idle, {}
        for idle in pools.values():
            for connection in idle:
                connection.close()

    def __enter__(self) -> "StdlibTransport":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        proxied = self._proxy is not None
        return (
            f"StdlibTransport(pool_size={self._pool_size}, proxy={proxied}, closed={self._closed})"
        )


class _ProxyRefusedError(OSError):
    """The proxy would not open the tunnel."""


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


def _left(transport: StdlibTransport, deadline_at: float) -> float:
    left = deadline_at - transport._monotonic()
    if left <= 0:
        raise _DeadlineError("the attempt's deadline passed while connecting")
    return left


def _parse_proxy(proxy: str) -> tuple[str, int, str | None]:
    parts = urllib.parse.urlsplit(proxy)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme.lower() != "http" or not parts.hostname or port is None:
        raise ValidationError(
            "proxy",
            "give an http://host:port proxy URL; for HTTPS or SOCKS proxies use "
            "lattice_stripe.adapters.urllib3.Urllib3Transport with a urllib3 ProxyManager",
        )
    credentials = None
    if parts.username is not None:
        pair = (
            f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        )
        credentials = base64.b64encode(pair.encode()).decode("ascii")
    return parts.hostname, port, credentials


def _connection_error(error: Exception, phase: str) -> APIConnectionError:
    # Order matters: _DeadlineError and socket timeouts are TimeoutErrors, and
    # every socket failure is an OSError.
    should_retry = True
    if isinstance(error, InvalidURLError):
        what, should_retry = "the Stripe URL is invalid", False
    elif isinstance(error, InvalidHeaderError):
        what, should_retry = f"the request could not be framed: {error}", False
    elif isinstance(error, _DeadlineError):
        what = "timed out: the attempt's deadline passed"
    elif isinstance(error, TimeoutError):
        what = (
            "timed out connecting to Stripe"
            if phase == _CONNECT
            else "timed out waiting for Stripe's response"
        )
    elif isinstance(error, ssl.SSLError) and phase == _CONNECT:
        # A certificate or protocol mismatch does not heal on its own.
        what, should_retry = "TLS failed talking to Stripe", False
    elif isinstance(error, _ProxyRefusedError):
        what = "the proxy refused the tunnel to Stripe"
    elif phase == _CONNECT:
        what = "could not connect to Stripe"
    elif isinstance(error, (OSError, WireProtocolError)):
        what = "the connection to Stripe broke"
    else:
        what = "the request to Stripe failed"
    return APIConnectionError(f"{what} ({type(error).__name__})", should_retry=should_retry)
