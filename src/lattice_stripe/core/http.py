"""HTTP request and response values: what the core hands to a transport and gets back.

They are plain data (bytes in, bytes out), so the core never touches a socket
and every transport, real or fake, speaks the same two types.
"""

from collections.abc import Mapping
from types import MappingProxyType

import attrs

from lattice_stripe.core.config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
)
from lattice_stripe.core.redaction import Unpicklable, mask_key

__all__ = ["Headers", "HttpRequest", "HttpResponse", "redacted_headers"]

_SECRET_HEADERS = frozenset({"authorization", "stripe-signature"})


def redacted_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return a copy of ``headers`` with credentials masked (safe to print or record)."""
    return {
        name: (_mask_credential(value) if name.lower() in _SECRET_HEADERS else value)
        for name, value in headers.items()
    }


def _mask_credential(value: str) -> str:
    scheme, _, token = value.partition(" ")
    if token:
        return f"{scheme} {mask_key(token)}"
    return "[redacted]"


class Headers(Unpicklable, dict[str, str]):
    """Request headers whose ``repr`` masks credentials and which refuse to be pickled.

    A plain dict of headers would print the API key in any traceback rendered
    with its locals; this one prints ``Bearer sk_test_[redacted]`` instead.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(redacted_headers(self))

    _refusal = "request headers carry the API key"


def _headers_repr(headers: Mapping[str, str]) -> str:
    return repr(redacted_headers(headers))


def _as_headers(headers: Mapping[str, str]) -> Headers:
    return headers if isinstance(headers, Headers) else Headers(headers)


@attrs.frozen(kw_only=True, getstate_setstate=False)
class HttpRequest(Unpicklable):
    """One HTTP request to send. ``repr`` masks the ``Authorization`` header.

    In seconds: ``timeout`` bounds each wait for the server's next bytes,
    ``connect_timeout`` the connection set-up, and ``deadline`` the whole
    attempt (pool wait, connect, send, headers and body), counted from the
    moment the transport is handed the request. A transport raises
    :class:`~lattice_stripe.core.errors.APIConnectionError` (its message says
    "timed out") once any of them is exceeded, and refuses a body over
    ``max_response_bytes``.
    """

    method: str
    url: str
    headers: Mapping[str, str] = attrs.field(repr=_headers_repr, converter=_as_headers)
    body: bytes = b""
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    deadline: float = DEFAULT_DEADLINE
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


def _lower_names(headers: Mapping[str, str]) -> Mapping[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _body_repr(body: bytes) -> str:
    return f"<{len(body)} bytes>"


@attrs.frozen(kw_only=True, getstate_setstate=False)
class HttpResponse(Unpicklable):
    """One HTTP response: status, headers with lower-case names, and the whole body.

    The body is left out of ``repr``: a portal session's body carries its URL.
    """

    status: int
    headers: Mapping[str, str] = attrs.field(default=_NO_HEADERS, converter=_lower_names)
    body: bytes = attrs.field(default=b"", repr=_body_repr)

    def header(self, name: str) -> str | None:
        """Return the header ``name`` (any case), or ``None``."""
        return self.headers.get(name.lower())

    @property
    def request_id(self) -> str | None:
        """Stripe's ``Request-Id`` for this response, if any."""
        return self.headers.get("request-id")
