"""``Urllib3Transport``: the synchronous transport, over one urllib3 ``PoolManager``.

Create one per application and share it (it is thread-safe). urllib3's own
retries and redirects are off: the core's retry policy decides, with the same
idempotency key on every attempt. Every urllib3 failure becomes an
:class:`~lattice_stripe.core.errors.APIConnectionError` here, in one place,
with urllib3's exception chained as ``__cause__``.
"""

import threading
from typing import Any

from lattice_stripe.adapters._watchdog import WATCHDOG, Watch
from lattice_stripe.core.config import DEFAULT_POOL_SIZE
from lattice_stripe.core.errors import (
    APIConnectionError,
    MissingDependencyError,
    ResponseTooLargeError,
    detach_tracebacks,
)
from lattice_stripe.core.http import HttpRequest, HttpResponse

try:
    import urllib3
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.poolmanager import PoolKey
    from urllib3.util import parse_url
except ImportError as error:
    raise MissingDependencyError(error.name or "urllib3", "urllib3", __name__) from error

__all__ = ["Urllib3Transport"]

# Entries kept per cache before it is emptied: a client uses one of each.
_CACHE_LIMIT = 32

# The attempt the current thread is sending, for its connection to hand its socket to.
_attempt = threading.local()


def _watched(base: type[Any]) -> type[Any]:
    """``base`` (an urllib3 connection class) handing its socket to the current attempt's watch.

    It does so once the request is written, whether the connection is new or
    kept alive, so the watchdog can cut off a response that trickles in past
    the attempt's deadline.
    """

    class Watched(base):  # type: ignore[misc]
        def request(self, *args: Any, **kwargs: Any) -> None:
            super().request(*args, **kwargs)
            watch: Watch | None = getattr(_attempt, "watch", None)
            if watch is not None:
                watch.sock = self.sock
                if watch.expired:  # expired while connecting or sending
                    watch.expire()

    Watched.__name__ = Watched.__qualname__ = f"Watched{base.__name__}"
    return Watched


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _watched(HTTPConnection)


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _watched(HTTPSConnection)


_WATCHED_POOLS = {
    HTTPConnectionPool: _WatchedHTTPConnectionPool,
    HTTPSConnectionPool: _WatchedHTTPSConnectionPool,
}


class Urllib3Transport:
    """Sends requests through ``pool`` (a new ``PoolManager`` if none is given).

    A pool passed in is the caller's to close; one made here is closed by
    :meth:`close`, and keeps up to ``maxsize`` idle connections per host
    (enough for that many threads sharing one client without urllib3
    discarding connections). A closed transport refuses to send.

    Each attempt's ``deadline`` is kept to within about 50 ms, also against a
    server that trickles its answer: the pools the manager makes from now on
    hand their sockets to a watchdog thread, which shuts down the socket of an
    attempt past its deadline.
    """

    def __init__(
        self, pool: urllib3.PoolManager | None = None, *, maxsize: int = DEFAULT_POOL_SIZE
    ) -> None:
        self._owns_pool = pool is None
        self._pool = pool if pool is not None else urllib3.PoolManager(maxsize=maxsize, block=False)
        self._pool.pool_classes_by_scheme = {
            scheme: _WATCHED_POOLS.get(pool_class, pool_class)
            for scheme, pool_class in self._pool.pool_classes_by_scheme.items()
        }
        self._closed = False
        self._timeouts: dict[tuple[float, float], urllib3.Timeout] = {}
        # A plain PoolManager's urlopen parses the URL and rebuilds the pool
        # key on every call, only to find the same host pool: the key and the
        # request target are kept here instead. A ProxyManager (or any
        # subclass) rewrites the request in its urlopen, so it is always asked.
        self._direct = type(self._pool) is urllib3.PoolManager
        self._routes: dict[str, tuple[PoolKey, str]] = {}

    def _timeout(self, connect: float, read: float) -> urllib3.Timeout:
        # One Timeout per setting, reused: a client sends the same one every time.
        key = (connect, read)
        timeout = self._timeouts.get(key)
        if timeout is None:
            if len(self._timeouts) > _CACHE_LIMIT:
                self._timeouts.clear()
            timeout = self._timeouts[key] = urllib3.Timeout(connect=connect, read=read)
        return timeout

    def _route(self, url: str) -> tuple[urllib3.HTTPConnectionPool | urllib3.PoolManager, str]:
        """Who sends a request to ``url``, and the target to give it."""
        if not self._direct:
            return self._pool, url
        # Unlocked: threads racing here at worst work the same route out twice.
        route = self._routes.get(url)
        if route is not None:
            key, target = route
            # The pool is asked of the manager each time (its lock and LRU,
            # under a microsecond), not kept: the manager drops, unclosed, the
            # pools it evicts past num_pools or forgets in clear(), and a kept
            # one would live on outside it. Asking also keeps ours recent.
            host_pool = self._pool.pools.get(key)
            if host_pool is not None:
                return host_pool, target
        return self._open_route(url)

    def _open_route(self, url: str) -> tuple[urllib3.HTTPConnectionPool, str]:
        """The manager's pool for ``url``, its key remembered for the next request."""
        parsed = parse_url(url)
        scheme = (parsed.scheme or "http").lower()
        host_pool = self._pool.connection_from_host(parsed.host, port=parsed.port, scheme=scheme)
        # The key the manager filed the pool under, made as the manager makes
        # it; a key that missed would only cost this full lookup every time.
        context = {
            **self._pool.connection_pool_kw,
            "scheme": scheme,
            "host": parsed.host,
            "port": host_pool.port,
        }
        # The manager leaves the deprecated ``strict`` out of its keys too.
        context.pop("strict", None)
        key = self._pool.key_fn_by_scheme[scheme](context)
        if len(self._routes) > _CACHE_LIMIT:
            self._routes.clear()
        self._routes[url] = (key, parsed.request_uri)
        return host_pool, parsed.request_uri

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` has been called."""
        return self._closed

    def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` and read the whole response, refusing bodies over its limit.

        A body over ``request.max_response_bytes`` raises
        :class:`~lattice_stripe.core.errors.ResponseTooLargeError` and its
        connection is dropped, not drained.
        """
        if self._closed:
            raise APIConnectionError("the transport is closed", should_retry=False)
        watch = WATCHDOG.watch(request.deadline)
        _attempt.watch = watch
        try:
            try:
                opener, target = self._route(request.url)
                # urlopen, not request(): the body is already encoded, and request()
                # would copy the headers into a new HTTPHeaderDict on every call.
                raw = opener.urlopen(
                    request.method,
                    target,
                    body=request.body,
                    headers=request.headers,
                    timeout=self._timeout(
                        min(request.connect_timeout, request.deadline), request.timeout
                    ),
                    retries=False,
                    redirect=False,
                    assert_same_host=False,
                    preload_content=False,
                )
            except urllib3.exceptions.HTTPError as error:
                raise _connection_error(error, watch, request) from detach_tracebacks(error)
            try:
                body = _read_bounded(raw, request.max_response_bytes)
            except urllib3.exceptions.HTTPError as error:
                raise _connection_error(error, watch, request) from detach_tracebacks(error)
            finally:
                raw.release_conn()
        finally:
            _attempt.watch = None
            WATCHDOG.unwatch(watch)
        if watch.expired:
            # Cut off while http.client parsed the head, it may have taken the
            # missing rest for an empty body: what arrived is not the answer.
            raise _deadline_error(request)
        if body is None:
            raise _too_large(raw, request)
        # dict() joins repeated headers with ", " (HTTPHeaderDict.__getitem__).
        return HttpResponse(status=raw.status, headers=dict(raw.headers), body=body)

    def close(self) -> None:
        """Close the pool if this transport made it; later sends are refused."""
        self._closed = True
        self._routes.clear()
        if self._owns_pool:
            # PoolManager.clear() only forgets its pools: their sockets close
            # when the pools are garbage-collected, which a traceback held in a
            # reference cycle (any failed attempt) can put off indefinitely.
            pools = self._pool.pools
            # keys() is the container's locked snapshot; iterating it raises.
            for key in pools.keys():  # noqa: SIM118
                pool = pools.get(key)
                if pool is not None:
                    pool.close()
            self._pool.clear()

    def __enter__(self) -> "Urllib3Transport":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Urllib3Transport(owns_pool={self._owns_pool}, closed={self._closed})"


def _read_bounded(raw: urllib3.BaseHTTPResponse, limit: int) -> bytes | None:
    """The whole body, or ``None`` (and the connection dropped) once it exceeds ``limit``.

    Dropping, not draining: draining would read the whole oversized body, for
    as long as the server cares to send it. The caller raises, so no frame of
    the error's traceback holds the partial body.
    """
    declared = raw.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raw.close()
        return None
    # One read of at most limit + 1 bytes: it stops at the end of the body, so
    # getting more than limit bytes means the body is too large.
    body = raw.read(limit + 1, decode_content=True)
    if len(body) > limit:
        raw.close()
        return None
    return body


def _too_large(raw: urllib3.BaseHTTPResponse, request: HttpRequest) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"response body is larger than max_response_bytes "
        f"({request.max_response_bytes} bytes); refused",
        status=raw.status,
        request_id=raw.headers.get("request-id"),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )


def _deadline_error(request: HttpRequest) -> APIConnectionError:
    return APIConnectionError(
        f"timed out: no whole response within the attempt's deadline ({request.deadline:g} s)",
        should_retry=True,
    )


def _connection_error(
    error: urllib3.exceptions.HTTPError, watch: Watch, request: HttpRequest
) -> APIConnectionError:
    # Order matters: NewConnectionError subclasses ConnectTimeoutError.
    should_retry = True
    if watch.expired:
        # The watchdog cut the socket: whatever urllib3 made of that, it is the deadline.
        what = (
            f"timed out: no whole response within the attempt's deadline ({request.deadline:g} s)"
        )
    elif isinstance(error, urllib3.exceptions.NewConnectionError):
        what = "could not connect to Stripe"
    elif isinstance(error, urllib3.exceptions.ConnectTimeoutError):
        what = "timed out connecting to Stripe"
    elif isinstance(error, urllib3.exceptions.ReadTimeoutError):
        what = "timed out waiting for Stripe's response"
    elif isinstance(error, (urllib3.exceptions.ProtocolError, urllib3.exceptions.IncompleteRead)):
        what = "the connection to Stripe broke"
    elif isinstance(error, urllib3.exceptions.SSLError):
        # A certificate or protocol mismatch does not heal on its own.
        what, should_retry = "TLS failed talking to Stripe", False
    elif isinstance(error, urllib3.exceptions.LocationValueError):
        what, should_retry = "the Stripe URL is invalid", False
    else:
        what = "the request to Stripe failed"
    return APIConnectionError(f"{what} ({type(error).__name__})", should_retry=should_retry)
