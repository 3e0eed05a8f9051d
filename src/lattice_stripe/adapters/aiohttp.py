"""``AiohttpTransport``: the asyncio transport, over one ``aiohttp.ClientSession``.

Create one per application (Starlette's lifespan is the place). The session is
made lazily inside the running loop on first use, or passed in. Every aiohttp
and timeout failure becomes an
:class:`~lattice_stripe.core.errors.APIConnectionError` here, in one place.
"""

import asyncio

import aiohttp

from lattice_stripe.core.errors import APIConnectionError, ResponseTooLargeError
from lattice_stripe.core.http import HttpRequest, HttpResponse

__all__ = ["AiohttpTransport"]

_CHUNK = 64 * 1024


class AiohttpTransport:
    """Sends requests through ``session`` (a new ``ClientSession`` if none is given).

    A session passed in is the caller's to close; one made here is closed by
    :meth:`aclose`.
    """

    def __init__(self, session: aiohttp.ClientSession | None = None, *, limit: int = 100) -> None:
        self._session = session
        self._owns_session = session is None
        self._limit = limit

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit),
                auto_decompress=True,
                raise_for_status=False,
            )
            self._owns_session = True
        return self._session

    async def asend(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` and read the whole response, refusing bodies over its limit."""
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=request.connect_timeout, sock_read=request.timeout
        )
        try:
            async with self._client_session().request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                timeout=timeout,
                allow_redirects=False,
            ) as raw:
                body = await _read_bounded(raw, request.max_response_bytes)
                return HttpResponse(status=raw.status, headers=raw.headers, body=body)
        except aiohttp.ClientError as error:
            raise _connection_error(error) from error
        except asyncio.TimeoutError as error:
            raise APIConnectionError(
                "timed out waiting for Stripe's response (TimeoutError)", should_retry=True
            ) from error

    async def aclose(self) -> None:
        """Close the session if this transport made it."""
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    def __repr__(self) -> str:
        return f"AiohttpTransport(owns_session={self._owns_session})"


async def _read_bounded(raw: aiohttp.ClientResponse, limit: int) -> bytes:
    if raw.content_length is not None and raw.content_length > limit:
        raw.close()
        raise _too_large(raw, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in raw.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raw.close()
            raise _too_large(raw, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(raw: aiohttp.ClientResponse, limit: int) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"response body is larger than max_response_bytes ({limit} bytes); refused",
        status=raw.status,
        request_id=raw.headers.get("request-id"),
    )


def _connection_error(error: aiohttp.ClientError) -> APIConnectionError:
    kind = type(error).__name__
    if isinstance(error, aiohttp.ServerTimeoutError):
        what = "timed out talking to Stripe"
    elif isinstance(error, aiohttp.ClientConnectorError):
        what = "could not connect to Stripe"
    elif isinstance(error, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        what = "the connection to Stripe broke"
    else:
        what = "the request to Stripe failed"
    return APIConnectionError(f"{what} ({kind})", should_retry=True)
