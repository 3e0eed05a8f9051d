"""The wire module: the request head it writes and the responses its parser accepts or refuses."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lattice_stripe.core.wire import (
    InvalidHeaderError,
    ResponseParser,
    WireProtocolError,
    encode_request,
)

BODY = b'{"id": "bps_1", "object": "billing_portal.session"}'
LENGTH = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-A: 1\r\nx-a: 2\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (BODY[:10], BODY[10:]))
    + b"0\r\n\r\n"
)


def parse(*pieces: bytes, limit: int = 1 << 20, eof: bool = False) -> ResponseParser:
    """A parser fed ``pieces`` in order (and the close, if ``eof``)."""
    parser = ResponseParser(limit)
    for piece in pieces:
        parser.feed(piece)
    if eof:
        parser.feed_eof()
    return parser


def test_request_head_frames_the_body() -> None:
    """The request line, Host, Content-Length and the caller's headers, then the body."""
    data = encode_request("POST", "/v1/x?a=1", "api.stripe.com", {"Accept": "*/*"}, b"a=1")
    assert data == (
        b"POST /v1/x?a=1 HTTP/1.1\r\nHost: api.stripe.com\r\nContent-Length: 3\r\n"
        b"Accept: */*\r\n\r\na=1"
    )


@pytest.mark.parametrize("bad", ["a\r\nX-Evil: 1", "a\nb", "a\0b"])
def test_request_header_with_a_line_break_is_refused(bad: str) -> None:
    """A header value with CR, LF or NUL raises, naming the header but not the value."""
    with pytest.raises(InvalidHeaderError) as caught:
        encode_request("POST", "/", "h", {"Authorization": bad}, b"")
    assert "Authorization" in str(caught.value)
    assert bad not in str(caught.value)


def test_caller_cannot_override_the_framing_headers() -> None:
    """Host, Content-Length and Transfer-Encoding come from the transport, never the caller."""
    data = encode_request("POST", "/", "h", {"Content-Length": "99", "Transfer-Encoding": "x"}, b"")
    assert data.count(b"Content-Length") == 1
    assert b"Transfer-Encoding" not in data


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=20), st.booleans())
def test_any_split_parses_the_same(cuts: list[int], chunked: bool) -> None:
    """However the bytes arrive, the parser reads the same status, headers and body."""
    data = CHUNKED if chunked else LENGTH
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(data[start : start + cut])
        start += cut
    pieces.append(data[start:])
    parser = parse(*[piece for piece in pieces if piece])
    assert parser.done
    assert parser.status == 200
    assert parser.body == BODY
    assert parser.keep_alive


def test_repeated_headers_are_joined() -> None:
    """A header repeated under any case is one lower-case name with the values joined."""
    assert parse(LENGTH).headers["x-a"] == "1, 2"


def test_interim_response_is_skipped() -> None:
    """A 100 Continue before the answer is read past."""
    parser = parse(b"HTTP/1.1 100 Continue\r\n\r\n" + LENGTH)
    assert parser.status == 200
    assert parser.body == BODY


@pytest.mark.parametrize(
    ("head", "keep_alive"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", True),
    ],
)
def test_keep_alive_follows_the_version_and_connection(head: bytes, keep_alive: bool) -> None:
    """HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 only when asked."""
    parser = parse(head)
    assert parser.done
    assert parser.keep_alive is keep_alive


def test_body_framed_by_the_close_ends_at_eof() -> None:
    """No length and no chunking: the body is everything until the close, not kept alive."""
    parser = parse(b"HTTP/1.1 200 OK\r\n\r\n", b"ab", b"cd")
    assert not parser.done
    parser.feed_eof()
    assert parser.body == b"abcd"
    assert not parser.keep_alive


@pytest.mark.parametrize(
    "data",
    [
        LENGTH.replace(b"Content-Length: 51", b"Content-Length: 50"),
        CHUNKED + b"H",
        CHUNKED[:-5] + b"\r\nzz\r\n",
    ],
    ids=["extra-bytes", "after-last-chunk", "bad-chunk-size"],
)
def test_bytes_that_break_the_framing_are_refused(data: bytes) -> None:
    """Bytes past the declared end, or a chunk size that is not hex, raise WireProtocolError."""
    with pytest.raises(WireProtocolError):
        parse(data)


@pytest.mark.parametrize(
    "head",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno-colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * (70 * 1024),
    ],
    ids=[
        "not-http",
        "http2",
        "short-status",
        "folded-header",
        "no-colon",
        "conflicting-lengths",
        "negative-length",
        "unknown-coding",
        "head-too-long",
    ],
)
def test_malformed_heads_are_refused(head: bytes) -> None:
    """A head this strict parser does not accept raises WireProtocolError."""
    with pytest.raises(WireProtocolError):
        parse(head)


def test_length_and_chunking_together_do_not_keep_the_connection() -> None:
    """Chunking wins over a Content-Length beside it, and the connection is not reused."""
    parser = parse(CHUNKED.replace(b"chunked\r\n", b"chunked\r\nContent-Length: 3\r\n"))
    assert parser.body == BODY
    assert not parser.keep_alive


@pytest.mark.parametrize("data", [LENGTH, CHUNKED], ids=["content-length", "chunked"])
def test_body_over_the_limit_is_reported_not_kept(data: bytes) -> None:
    """One byte over the limit sets too_large (declared or streamed); at the limit it is whole."""
    assert parse(data, limit=len(BODY)).done
    parser = parse(data, limit=len(BODY) - 1)
    assert parser.too_large
    assert not parser.done
    assert parser.body == b""


def test_cut_response_is_refused_at_the_close() -> None:
    """A close before the response is whole raises; a close before any byte says so."""
    with pytest.raises(WireProtocolError, match="middle"):
        parse(LENGTH[:-3], eof=True)
    with pytest.raises(WireProtocolError, match="before a response"):
        parse(eof=True)
