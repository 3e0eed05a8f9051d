"""``Urllib3Transport``: the synchronous transport, over one urllib3 ``PoolManager``.

Create one per application and share it (it is thread-safe). urllib3's own
retries and redirects are off: the core's retry policy decides, with the same
idempotency key on every attempt. Every urllib3 failure becomes an
:class:`~lattice_stripe.core.errors.APIConnectionError` here, in one place.
"""

import urllib3

from lattice_stripe.core.errors import APIConnectionError, ResponseTooLargeError
from lattice_stripe.core.http import HttpRequest, HttpResponse

__all__ = ["Urllib3Transport"]

_CHUNK = 64 * 1024


class Urllib3Transport:
    """Sends requests through ``pool`` (a new ``PoolManager`` if none is given).

    A pool passed in is the caller's to close; one made here is closed by
    :meth:`close`.
    """

    def __init__(self, pool: urllib3.PoolManager | None = None, *, maxsize: int = 10) -> None:
        self._owns_pool = pool is None
        self._pool = pool if pool is not None else urllib3.PoolManager(maxsize=maxsize, block=False)

    def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` and read the whole response, refusing bodies over its limit."""
        try:
            raw = self._pool.request(
                request.method,
                request.url,
                body=request.body,
                headers=dict(request.headers),
                timeout=urllib3.Timeout(connect=request.connect_timeout, read=request.timeout),
                retries=False,
                redirect=False,
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as error:
            raise _connection_error(error) from error
        try:
            body = _read_bounded(raw, request.max_response_bytes)
        except urllib3.exceptions.HTTPError as error:
            raise _connection_error(error) from error
        finally:
            raw.release_conn()
        return HttpResponse(status=raw.status, headers=raw.headers, body=body)

    def close(self) -> None:
        """Close the pool if this transport made it."""
        if self._owns_pool:
            self._pool.clear()

    def __repr__(self) -> str:
        return f"Urllib3Transport(owns_pool={self._owns_pool})"


def _read_bounded(raw: urllib3.BaseHTTPResponse, limit: int) -> bytes:
    declared = raw.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raw.drain_conn()
        raise _too_large(raw, limit)
    chunks: list[bytes] = []
    size = 0
    for chunk in raw.stream(_CHUNK, decode_content=True):
        size += len(chunk)
        if size > limit:
            raw.drain_conn()
            raise _too_large(raw, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(raw: urllib3.BaseHTTPResponse, limit: int) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"response body is larger than max_response_bytes ({limit} bytes); refused",
        status=raw.status,
        request_id=raw.headers.get("request-id"),
    )


def _connection_error(error: urllib3.exceptions.HTTPError) -> APIConnectionError:
    kind = type(error).__name__
    if isinstance(error, urllib3.exceptions.ConnectTimeoutError):
        what = "timed out connecting to Stripe"
    elif isinstance(error, urllib3.exceptions.ReadTimeoutError):
        what = "timed out waiting for Stripe's response"
    elif isinstance(error, urllib3.exceptions.NewConnectionError):
        what = "could not connect to Stripe"
    elif isinstance(error, urllib3.exceptions.SSLError):
        what = "TLS failed talking to Stripe"
    elif isinstance(error, urllib3.exceptions.ProtocolError):
        what = "the connection to Stripe broke"
    else:
        what = "the request to Stripe failed"
    return APIConnectionError(f"{what} ({kind})", should_retry=True)
