"""``AiohttpTransport``: the asyncio transport, over one ``aiohttp.ClientSession``.

Create one per application (Starlette's lifespan is the place). The session is
made lazily inside the running loop on first use, or passed in. Every aiohttp
and timeout failure becomes an
:class:`~lattice_stripe.core.errors.APIConnectionError` here, in one place,
with aiohttp's exception chained as ``__cause__``.
"""

import asyncio

from lattice_stripe.core.errors import (
    APIConnectionError,
    MissingDependencyError,
    ResponseTooLargeError,
    detach_tracebacks,
)
from lattice_stripe.core.http import HttpRequest, HttpResponse, redacted_headers

try:
    import aiohttp
    from multidict import CIMultiDict, CIMultiDictProxy
except ImportError as error:
    raise MissingDependencyError(error.name or "aiohttp", "aiohttp", __name__) from error

__all__ = ["AiohttpTransport"]

_CHUNK = 64 * 1024


class AiohttpTransport:
    """Sends requests through ``session`` (a new ``ClientSession`` if none is given).

    A session passed in is the caller's to close; one made here is closed by
    :meth:`aclose`, and belongs to the event loop that first used it. A closed
    transport refuses to send.
    """

    def __init__(self, session: aiohttp.ClientSession | None = None, *, limit: int = 100) -> None:
        self._session = session
        self._owns_session = session is None
        self._limit = limit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._timeouts: dict[tuple[float, float, float], aiohttp.ClientTimeout] = {}

    def _timeout(self, request: HttpRequest) -> aiohttp.ClientTimeout:
        # One ClientTimeout per setting, reused: a client sends the same one on every
        # first attempt. ``total`` is the attempt's deadline: it covers the pool
        # wait, connect, send, headers and the body, which aiohttp reads under it.
        key = (request.connect_timeout, request.timeout, request.deadline)
        timeout = self._timeouts.get(key)
        if timeout is None:
            if len(self._timeouts) > 32:
                self._timeouts.clear()
            timeout = aiohttp.ClientTimeout(
                total=request.deadline,
                sock_connect=min(request.connect_timeout, request.deadline),
                sock_read=request.timeout,
            )
            self._timeouts[key] = timeout
        return timeout

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`aclose` has been called."""
        return self._closed

    def _client_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise APIConnectionError("the transport is closed", should_retry=False)
        if self._session is None:
            # Made here, not in __init__: a ClientSession binds to the running loop.
            self._loop = asyncio.get_running_loop()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit),
                raise_for_status=False,
            )
        elif self._loop is not None and self._loop is not asyncio.get_running_loop():
            raise APIConnectionError(
                "the transport's aiohttp session belongs to another event loop; "
                "create one transport per loop",
                should_retry=False,
            )
        elif self._session.closed:
            raise APIConnectionError(
                "the aiohttp session given to the transport is closed", should_retry=False
            )
        return self._session

    async def asend(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` and read the whole response, refusing bodies over its limit.

        A body over ``request.max_response_bytes`` raises
        :class:`~lattice_stripe.core.errors.ResponseTooLargeError` and its
        connection is dropped.
        """
        session = self._client_session()
        timeout = self._timeout(request)
        try:
            async with session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                timeout=timeout,
                allow_redirects=False,
            ) as raw:
                body = await _read_bounded(raw, request.max_response_bytes)
                if body is None:
                    raise _too_large(raw, request)
                return HttpResponse(status=raw.status, headers=_joined(raw.headers), body=body)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise _connection_error(error, request) from detach_tracebacks(
                error, _mask_request_headers
            )

    async def aclose(self) -> None:
        """Close the session if this transport made it; later sends are refused."""
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> "AiohttpTransport":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AiohttpTransport(owns_session={self._owns_session}, closed={self._closed})"


async def _read_bounded(raw: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or ``None`` (and the connection dropped) once it exceeds ``limit``.

    The caller raises, so no frame of the error's traceback holds the partial body.
    """
    declared = raw.content_length
    if declared is not None and declared > limit:
        raw.close()
        return None
    if declared is not None and "Content-Encoding" not in raw.headers:
        # A declared, uncompressed length within the limit: aiohttp reads exactly that much.
        return await raw.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in raw.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raw.close()
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _joined(headers: "CIMultiDictProxy[str]") -> dict[str, str]:
    """The headers by lower-case name, a repeated header's values joined with ", "."""
    joined: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        earlier = joined.get(key)
        joined[key] = value if earlier is None else f"{earlier}, {value}"
    return joined


def _too_large(raw: aiohttp.ClientResponse, request: HttpRequest) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"response body is larger than max_response_bytes "
        f"({request.max_response_bytes} bytes); refused",
        status=raw.status,
        request_id=raw.headers.get("request-id"),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )


def _mask_request_headers(error: BaseException) -> None:
    """A ``ClientResponseError`` prints the request headers in its ``repr``: mask them."""
    if isinstance(error, aiohttp.ClientResponseError):
        _mask_request_info(error)


def _mask_request_info(error: aiohttp.ClientResponseError) -> None:
    original = error.request_info
    masked = original._replace(
        headers=CIMultiDictProxy(CIMultiDict(redacted_headers(original.headers)))
    )
    error.request_info = masked
    error.args = tuple(masked if arg is original else arg for arg in error.args)


def _connection_error(
    error: aiohttp.ClientError | asyncio.TimeoutError, request: HttpRequest
) -> APIConnectionError:
    # Order matters: ServerTimeoutError is a ClientConnectionError, and
    # ClientSSLError a ClientConnectorError.
    should_retry = True
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        what = "timed out connecting to Stripe"
    elif isinstance(error, aiohttp.ServerTimeoutError):
        what = "timed out waiting for Stripe's response"
    elif isinstance(error, asyncio.TimeoutError):
        # Neither a connect nor an idle read timeout: the whole attempt's.
        what = f"timed out: no whole response within the deadline ({request.deadline:g} s)"
    elif isinstance(error, aiohttp.ClientSSLError):
        # A certificate or protocol mismatch does not heal on its own.
        what, should_retry = "TLS failed talking to Stripe", False
    elif isinstance(error, aiohttp.ClientConnectorError):
        what = "could not connect to Stripe"
    elif isinstance(error, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
        what = "the connection to Stripe broke"
    elif isinstance(error, aiohttp.InvalidURL):
        what, should_retry = "the Stripe URL is invalid", False
    else:
        what = "the request to Stripe failed"
    return APIConnectionError(f"{what} ({type(error).__name__})", should_retry=should_retry)
