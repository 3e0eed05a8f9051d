"""HTTP/1.1 on the wire, without I/O: a request head out, an incremental response parser in.

The standard-library transports (:mod:`lattice_stripe.adapters.stdlib` and
:mod:`lattice_stripe.adapters.asyncio`) share it, so both frame and refuse
responses by the same rules. It speaks the small part of HTTP/1.1 a client of
one JSON API needs, strictly: a status line, headers (a head of at most
64 KiB and 200 lines), and a body framed by ``Content-Length``, by chunked
transfer coding or by the end of the connection. Anything else is a
:class:`WireProtocolError`; a body over the caller's limit is reported, not
buffered.
"""

import re
import urllib.parse
from collections.abc import Mapping
from typing import NamedTuple

from lattice_stripe.core.errors import ResponseTooLargeError
from lattice_stripe.core.http import HttpRequest

__all__ = [
    "MAX_HEAD_BYTES",
    "InvalidHeaderError",
    "InvalidURLError",
    "ResponseParser",
    "Route",
    "WireProtocolError",
    "encode_request",
    "parse_url",
    "too_large",
]

MAX_HEAD_BYTES = 64 * 1024
"""The longest response head (status line and headers) accepted."""

_MAX_HEADER_LINES = 200
_MAX_CHUNK_LINE = 1024
_FORBIDDEN = ("\r", "\n", "\0")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+").fullmatch
# One header line: a token name, optional blanks, the value (no CR or LF).
_HEADER_LINES = re.compile(r"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*\r\n)*").fullmatch


class WireProtocolError(Exception):
    """The peer's bytes are not an HTTP/1.1 response this parser accepts."""


class InvalidHeaderError(ValueError):
    """A request header whose name or value would break the request's framing."""


class InvalidURLError(ValueError):
    """A URL with no host, a bad port, or a scheme other than http and https."""


class Route(NamedTuple):
    """Where a URL's request goes, and what its request line and Host header say."""

    scheme: str
    host: str
    port: int
    target: str
    host_header: str


def parse_url(url: str) -> Route:
    """The route to ``url``; :class:`InvalidURLError` unless it is http(s) with a host."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname
    try:
        port = parts.port
    except ValueError:
        raise InvalidURLError("the URL's port is not a number from 0 to 65535") from None
    if scheme not in ("http", "https") or not host:
        raise InvalidURLError("the URL needs http:// or https:// and a host")
    default = 443 if scheme == "https" else 80
    port = port or default
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    name = f"[{host}]" if ":" in host else host
    return Route(scheme, host, port, target, name if port == default else f"{name}:{port}")


def too_large(parser: "ResponseParser", request: HttpRequest) -> ResponseTooLargeError:
    """The error for a response whose body went over ``request.max_response_bytes``."""
    return ResponseTooLargeError(
        f"response body is larger than max_response_bytes "
        f"({request.max_response_bytes} bytes); refused",
        status=parser.status,
        request_id=parser.headers.get("request-id"),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )


def encode_request(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes
) -> bytes:
    """The whole request (head and body) as bytes, ready for one write.

    A line break or NUL in any name or value would let it smuggle a header or a
    second request: it raises :class:`InvalidHeaderError` naming the header
    (never its value, which may be the API key).
    """
    names = tuple(headers)
    plain = _PLAIN_NAMES.get(names)
    if plain is None:
        plain = _remember_names(names)
    pairs = (
        headers.items()
        if plain
        else [(name, value) for name, value in headers.items() if name.lower() not in _FRAMING]
    )
    block = "\r\n".join(map(": ".join, pairs))
    # Joined by len - 1 line breaks: any other CR or LF came from a value.
    breaks = len(pairs) - 1 if pairs else 0
    if block.count("\n") != breaks or block.count("\r") != breaks or "\0" in block:
        _refuse_values(headers)
    head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
    return (head + block + "\r\n\r\n" if block else head + "\r\n").encode("latin-1") + body


_FRAMING = frozenset({"host", "content-length", "transfer-encoding"})
# Whether a tuple of header names is free of the framing headers: a client
# sends the same names on every call, so each tuple is checked once.
_PLAIN_NAMES: dict[tuple[str, ...], bool] = {}


def _remember_names(names: tuple[str, ...]) -> bool:
    for name in names:
        if not _TOKEN(name):
            raise InvalidHeaderError(f"request header name {name!r} is not an HTTP token")
    plain = _FRAMING.isdisjoint(name.lower() for name in names)
    if len(_PLAIN_NAMES) > 64:
        _PLAIN_NAMES.clear()
    _PLAIN_NAMES[names] = plain
    return plain


def _refuse_values(headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        if any(bad in value for bad in _FORBIDDEN):
            raise InvalidHeaderError(f"request header {name!r} holds a line break or NUL")


class ResponseParser:
    """Reads one response from the bytes fed to it, refusing a body over ``limit`` bytes.

    Feed every received piece to :meth:`feed`, and :meth:`feed_eof` when the
    peer closes. :attr:`done` turns true once the response is whole; then
    :attr:`status`, :attr:`headers` (lower-case names, repeats joined with
    ", "), :attr:`body` and :attr:`keep_alive` hold it. :attr:`too_large` turns
    true instead as soon as the body is known to exceed the limit, and nothing
    more is buffered. ``head_only`` stops after the head (a proxy's answer to
    ``CONNECT``).
    """

    __slots__ = (
        "_buffer",
        "_chunk_left",
        "_chunks",
        "_length",
        "_limit",
        "_mode",
        "_received",
        "body",
        "done",
        "head_only",
        "headers",
        "keep_alive",
        "status",
        "too_large",
    )

    def __init__(self, limit: int, *, head_only: bool = False) -> None:
        self._limit = limit
        self.head_only = head_only
        self._buffer = b""
        # "head", then one of "length", "chunk-size", "chunk-data", "trailer", "eof".
        self._mode = "head"
        self._length = 0
        self._chunk_left = 0
        self._chunks: list[bytes] = []
        self._received = 0
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.keep_alive = False
        self.done = False
        self.too_large = False

    @property
    def started(self) -> bool:
        """Whether any byte of the response has arrived."""
        return bool(self._buffer) or self._mode != "head" or self.status != 0

    def feed(self, data: bytes) -> None:
        """Take the next bytes received; extra bytes after a whole response are an error."""
        if self.done or self.too_large:
            if data:
                raise WireProtocolError("bytes after the end of the response")
            return
        self._buffer = self._buffer + data if self._buffer else data
        if self._mode == "head" and not self._read_head():
            return
        if self.done or self.too_large:
            return
        if self._mode == "length":
            self._read_length()
        elif self._mode == "eof":
            self._read_eof()
        else:
            self._read_chunked()

    def feed_eof(self) -> None:
        """The peer closed: finish a body framed by the close, or raise for a cut response."""
        if self.done or self.too_large:
            return
        if self._mode == "eof":
            self.body = b"".join(self._chunks)
            self.done = True
            return
        if self._mode == "head" and not self._buffer:
            raise WireProtocolError("the connection closed before a response")
        raise WireProtocolError("the connection closed in the middle of the response")

    # -- the head --------------------------------------------------------------------

    def _read_head(self) -> bool:
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    raise WireProtocolError("the response head is too long")
                if self._buffer and not self._buffer.startswith(b"HTTP/"[: len(self._buffer)]):
                    raise WireProtocolError("the response is not HTTP")
                return False
            if end > MAX_HEAD_BYTES:
                raise WireProtocolError("the response head is too long")
            head = self._buffer[:end]
            self._buffer = self._buffer[end + 4 :]
            status = self._parse_head(head)
            # An interim answer (100 Continue, 103 Early Hints) precedes the real one.
            if 100 <= status < 200 and status != 101:
                self.headers = {}
                continue
            self.status = status
            return self._frame()

    def _parse_head(self, head: bytes) -> int:
        text = head.decode("latin-1")
        status_line, _, rest = text.partition("\r\n")
        version, _, reason = status_line.partition(" ")
        code = reason[:3]
        if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit():
            raise WireProtocolError("the response's status line is malformed")
        if reason[3:4] not in ("", " "):
            raise WireProtocolError("the response's status line is malformed")
        headers: dict[str, str] = {}
        if rest:
            # One C-speed pass checks every line (a token, a colon, no stray CR
            # or LF, no folding), then the lines are split without re-checking.
            if rest.count("\r\n") >= _MAX_HEADER_LINES:
                raise WireProtocolError("the response has too many headers")
            if not _HEADER_LINES(rest + "\r\n"):
                raise WireProtocolError("a response header line is malformed")
            for line in rest.split("\r\n"):
                name, _, value = line.partition(":")
                key = name.lower()
                value = value.strip(" \t")
                earlier = headers.get(key)
                headers[key] = value if earlier is None else f"{earlier}, {value}"
        self.headers = headers
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            self.keep_alive = "close" not in connection
        else:
            self.keep_alive = "keep-alive" in connection
        return int(code)

    def _frame(self) -> bool:
        """Choose how the body ends; ``False`` when the response is already decided."""
        if self.head_only or self.status in (204, 304):
            return self._finish(b"")
        coding = self.headers.get("transfer-encoding")
        if coding is not None:
            if coding.lower().rsplit(",", 1)[-1].strip() != "chunked":
                raise WireProtocolError("the response's transfer coding is not supported")
            # A length beside a transfer coding is a smuggling attempt or a broken
            # proxy: the coding wins, and the connection is not used again.
            if "content-length" in self.headers:
                self.keep_alive = False
            self._mode = "chunk-size"
            return True
        declared = self.headers.get("content-length")
        if declared is None:
            self._mode = "eof"
            self.keep_alive = False
            return True
        values = {value.strip() for value in declared.split(",")}
        if len(values) != 1:
            raise WireProtocolError("the response declares conflicting lengths")
        (length_text,) = values
        if not length_text.isdigit() or not length_text.isascii():
            raise WireProtocolError("the response's Content-Length is malformed")
        self._length = int(length_text)
        if self._length > self._limit:
            return self._refuse()
        self._mode = "length"
        return True

    def _finish(self, body: bytes) -> bool:
        if self._buffer:
            raise WireProtocolError("bytes after the end of the response")
        self.body = body
        self.done = True
        return False

    def _refuse(self) -> bool:
        self.too_large = True
        self._buffer = b""
        self._chunks = []
        return False

    # -- the body --------------------------------------------------------------------

    def _read_length(self) -> None:
        have = len(self._buffer)
        if have < self._length:
            return
        if have > self._length:
            raise WireProtocolError("bytes after the end of the response")
        body, self._buffer = self._buffer, b""
        self._finish(body)

    def _read_eof(self) -> None:
        self._received += len(self._buffer)
        if self._received > self._limit:
            self._refuse()
            return
        self._chunks.append(self._buffer)
        self._buffer = b""

    def _read_chunked(self) -> None:
        while True:
            if self._mode == "chunk-size":
                end = self._buffer.find(b"\r\n")
                if end < 0:
                    if len(self._buffer) > _MAX_CHUNK_LINE:
                        raise WireProtocolError("a chunk size line is too long")
                    return
                size_text = self._buffer[:end].split(b";", 1)[0].strip()
                self._buffer = self._buffer[end + 2 :]
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise WireProtocolError("a chunk size is malformed") from None
                if size < 0 or not size_text.isalnum():
                    raise WireProtocolError("a chunk size is malformed")
                if size == 0:
                    self._mode = "trailer"
                    continue
                self._received += size
                if self._received > self._limit:
                    self._refuse()
                    return
                self._chunk_left = size
                self._mode = "chunk-data"
            elif self._mode == "chunk-data":
                need = self._chunk_left + 2
                if len(self._buffer) < need:
                    return
                if self._buffer[self._chunk_left : need] != b"\r\n":
                    raise WireProtocolError("a chunk is not followed by CRLF")
                self._chunks.append(self._buffer[: self._chunk_left])
                self._buffer = self._buffer[need:]
                self._mode = "chunk-size"
            else:
                # Trailers are read and dropped: nothing the client uses comes in them.
                if self._buffer.startswith(b"\r\n"):
                    self._buffer = self._buffer[2:]
                else:
                    end = self._buffer.find(b"\r\n\r\n")
                    if end < 0:
                        if len(self._buffer) > MAX_HEAD_BYTES:
                            raise WireProtocolError("the response's trailers are too long")
                        return
                    self._buffer = self._buffer[end + 4 :]
                self._finish(b"".join(self._chunks))
                return
