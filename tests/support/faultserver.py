"""A misbehaving HTTP/1.1 server on 127.0.0.1, scripted per test, for the real transports.

Each accepted connection is served by its own thread; each request it reads is
recorded (method, path, headers, body, which TCP connection it came on) and
answered by the next scripted :class:`Action`, or, once the script is used up,
by a Stripe-like ``billing_portal.session``. Actions misbehave on purpose:
reset mid-response, stall before the headers, trickle the body, close without
a word, lie about the length, send 50 MB.

Every wait is bounded and :meth:`FaultServer.close` unblocks and joins every
thread, so a broken client can fail a test but never hang the suite.
"""

import gc
import http
import itertools
import json
import select
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Any, Protocol

import attrs

from lattice_stripe.adapters.recording import stripe_error_response
from lattice_stripe.core.codec import decode_form
from lattice_stripe.testing import session_response

__all__ = [
    "Action",
    "CloseSilently",
    "FaultServer",
    "Huge",
    "Raw",
    "ReceivedRequest",
    "Reply",
    "Reset",
    "SlowBody",
    "Stall",
    "StripeSession",
    "Trickle",
    "Truncate",
    "free_port",
    "stripe_error",
    "unresponsive_port",
]

# Long enough for any test step, short enough that a leaked client connection
# cannot keep a server thread alive past the end of the suite.
_IDLE_SECONDS = 10.0
_JOIN_SECONDS = 5.0
_MAX_HEAD_BYTES = 64 * 1024
_CHUNK = 64 * 1024


@attrs.frozen(kw_only=True)
class ReceivedRequest:
    """One request as it arrived on the wire; ``headers`` keeps the sender's spelling."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    connection: int

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or ``None``."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    @property
    def params(self) -> dict[str, Any]:
        """The form body decoded into nested params."""
        return decode_form(self.body)


class Wire:
    """One accepted connection, as the actions see it."""

    def __init__(self, sock: socket.socket, stopping: threading.Event) -> None:
        self._sock = sock
        self._stopping = stopping
        self.bytes_sent = 0

    def send(self, data: bytes) -> None:
        """Write all of ``data`` (``OSError`` if the peer has gone)."""
        self._sock.sendall(data)
        self.bytes_sent += len(data)

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds``; ``False`` as soon as the peer hangs up or the server stops."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            readable, _, _ = select.select([self._sock], [], [], min(left, 0.05))
            if readable:
                # The plain socket's recv, even under TLS: a peek at the raw
                # bytes tells a hang-up from data without decrypting anything.
                if not socket.socket.recv(self._sock, 1, socket.MSG_PEEK):
                    return False
                # Bytes from the client (not EOF): keep waiting without spinning.
                self._stopping.wait(min(left, 0.05))
        return False

    def reset(self) -> None:
        """Abort the connection with a TCP RST instead of an orderly FIN."""
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._sock.close()


class Action(Protocol):
    """What the server does with one request; returns whether to keep the connection."""

    def perform(self, wire: Wire, request: ReceivedRequest) -> bool: ...


def _head(status: int, headers: Mapping[str, str], framing: str) -> bytes:
    lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(framing)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _slices(body: bytes) -> Iterator[bytes]:
    return (body[start : start + _CHUNK] for start in range(0, len(body), _CHUNK))


def _chunked(pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield b"%x\r\n%s\r\n" % (len(piece), piece)
    yield b"0\r\n\r\n"


@attrs.frozen(kw_only=True)
class Reply:
    """Answer with ``status``, ``headers`` and ``body``; ``chunked`` drops Content-Length."""

    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    chunked: bool = False

    @classmethod
    def json(
        cls, status: int, document: object, headers: Mapping[str, str] | None = None
    ) -> "Reply":
        """A JSON reply with Stripe's content type and a request id."""
        return cls(
            status=status,
            headers={
                "Content-Type": "application/json",
                "Request-Id": "req_json",
                **(headers or {}),
            },
            body=json.dumps(document).encode(),
        )

    def perform(self, wire: Wire, request: ReceivedRequest) -> bool:
        """Send the whole reply and keep the connection open."""
        if self.chunked:
            wire.send(_head(self.status, self.headers, "Transfer-Encoding: chunked"))
            for piece in _chunked(_slices(self.body)):
                wire.send(piece)
        else:
            wire.send(
                _head(self.status, self.headers, f"Content-Length: {len(self.body)}") + self.body
            )
        return True


def stripe_error(
    status: int,
    *,
    type: str = "api_error",
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """A Stripe error object, shaped by the library's own fake so both stay in step."""
    response = stripe_error_response(
        status, type=type, code=code, message=f"scripted {status}", headers=headers
    )
    return Reply(status=status, headers=dict(response.headers), body=response.body)


_session_numbers = itertools.count(1)


@attrs.frozen(kw_only=True)
class StripeSession:
    """Answer as Stripe does: a fresh ``billing_portal.session`` echoing the request."""

    def perform(self, wire: Wire, request: ReceivedRequest) -> bool:
        """Send a 200 with the session JSON and Stripe's response headers."""
        return self.reply(request).perform(wire, request)

    @staticmethod
    def reply(request: ReceivedRequest) -> Reply:
        """The reply Stripe would give to ``request``."""
        params = request.params
        number = next(_session_numbers)
        authorization = request.header("Authorization") or ""
        live = authorization.startswith(("Bearer sk_live_", "Bearer rk_live_"))
        mode = "live" if live else "test"
        session = session_response(
            id=f"bps_1Loopback{number:014d}",
            configuration=params.get("configuration", "bpc_1LoopbackDefault"),
            created=int(time.time()),
            customer=params.get("customer"),
            livemode=live,
            locale=params.get("locale"),
            on_behalf_of=params.get("on_behalf_of"),
            return_url=params.get("return_url"),
            url=f"https://billing.stripe.com/p/session/{mode}_Loopback{number:014d}",
        )
        headers = {
            "Content-Type": "application/json",
            "Request-Id": f"req_Loopback{number:014d}",
            "Idempotency-Key": request.header("Idempotency-Key") or "",
            "Stripe-Version": request.header("Stripe-Version") or "",
        }
        return Reply(status=200, headers=headers, body=json.dumps(session).encode())


@attrs.frozen(kw_only=True)
class Reset:
    """Send the head and ``sent`` bytes of a longer body, then abort with a TCP RST."""

    sent: bytes = b'{"id": "bps_'

    def perform(self, wire: Wire, request: ReceivedRequest) -> bool:
        """Break the response half-way."""
        head = {"Content-Type": "application/json"}
        wire.send(_head(200, head, f"Content-Length: {len(self.sent) + 4096}") + self.sent)
        wire.reset()
        return False


@attrs.frozen(kw_only=True)
class Stall:
    """Wait ``seconds`` before the status line, then answer with ``then``."""

    seconds: float
    then: Action = attrs.field(factory=StripeSession)

    def perform(self, wire: Wire, request: ReceivedRequest) -> bool:
        """Stall, and answer only if the client is still there."""
        return wire.pause(self.seconds) and self.then.perform(wire, request)


@attrs.frozen(kw_only=True)
class SlowBody:
    """Send a session's head at once and its body in ``pieces``, ``gap`` seconds apart."""

    pieces: int
    gap: float

    def perform(self, wire: Wire, request: ReceivedRequest) -> bool:
        """Trickle the body; give up when the client does."""
        reply = StripeSession.reply(request)
        wire.send(_head(reply.status, reply.headers, f"Content-Length: {len(reply.body)}"))
        size = -(-len(reply.body) // self.pieces)
        for start in range(0, len(reply.body), size):
            if not wire.pause(self.gap):
                return False
            wire.send(reply.body[start : start + size])
        return True


@attrs.frozen(kw_only=True)
class Trickle:
    """Send a whole session reply, status line first, ``size`` bytes every ``gap`` seconds."""

    gap: float
    size: int = 1

    def perform(self, wire: Wire, request: ReceivedRequest) -> bool:
        """Drip the reply; give up when the client does."""
        reply = StripeSession.reply(request)
        data = _head(reply.status, reply.headers, f"Content-Length: {len(reply.body)}")
        data += reply.body
        for start in range(0, len(data), self.size):
            if not wire.pause(self.gap):
                return False
            wire.send(data[start : start + self.size])
        return True


@attrs.frozen(kw_only=True)
class CloseSilently:
    """Read the request and hang up without a byte of response."""

    def perform(self, wire: Wire, request: ReceivedRequest) -> bool:
        """Close."""
        return False


@attrs.frozen(kw_only=True)
class Truncate:
    """Promise a whole session in Content-Length, send half of it, and close."""

    def perform(self, wire: Wire, request: ReceivedRequest) -> bool:
        """Send a head and half a body."""
        reply = StripeSession.reply(request)
        wire.send(_head(reply.status, reply.headers, f"Content-Length: {len(reply.body)}"))
        wire.send(reply.body[: len(reply.body) // 2])
        return False


@attrs.frozen(kw_only=True)
class Huge:
    """A 200 JSON body of ``size`` bytes, with Content-Length or chunked without it."""

    size: int
    chunked: bool = False

    def perform(self, wire: Wire, request: ReceivedRequest) -> bool:
        """Stream the body until done or the client hangs up."""
        head = {"Content-Type": "application/json", "Request-Id": "req_huge"}
        framing = "Transfer-Encoding: chunked" if self.chunked else f"Content-Length: {self.size}"
        wire.send(_head(200, head, framing))
        pieces = (b" " * min(_CHUNK, self.size - sent) for sent in range(0, self.size, _CHUNK))
        for piece in _chunked(pieces) if self.chunked else pieces:
            wire.send(piece)
        return True


@attrs.frozen(kw_only=True)
class Raw:
    """Answer with ``data`` verbatim (not necessarily HTTP), then close."""

    data: bytes

    def perform(self, wire: Wire, request: ReceivedRequest) -> bool:
        """Send the bytes and hang up."""
        wire.send(self.data)
        return False


@attrs.define
class _Connection:
    index: int
    sock: socket.socket
    thread: threading.Thread | None = None
    wire: Wire | None = None
    ended: threading.Event = attrs.field(factory=threading.Event)


class FaultServer:
    """The server. Use as a context manager; :attr:`base_url` is ``http://127.0.0.1:<port>``.

    Given ``tls`` (a server-side context), it speaks HTTPS and its
    :attr:`base_url` starts with ``https://``.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port: int = self._listener.getsockname()[1]
        scheme = "https" if tls is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._script: deque[Action] = deque()
        self._requests: list[ReceivedRequest] = []
        self._connections: list[_Connection] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultserver", daemon=True)
        self._acceptor.start()

    def __enter__(self) -> "FaultServer":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        # Collected here, a socket a client leaked raises its ResourceWarning
        # (an error under the suite's warning filter) in the test that leaked it.
        gc.collect()

    # -- scripting and inspection --------------------------------------------------

    def script(self, *actions: Action) -> None:
        """Answer the next requests with these actions, in order."""
        with self._lock:
            self._script.extend(actions)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request read so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def connection_count(self) -> int:
        """How many TCP connections the server has accepted."""
        with self._lock:
            return len(self._connections)

    @property
    def ended_count(self) -> int:
        """How many accepted connections have ended (by either side)."""
        with self._lock:
            return sum(connection.ended.is_set() for connection in self._connections)

    @property
    def bytes_sent(self) -> list[int]:
        """Response bytes the server managed to write, per connection."""
        with self._lock:
            return [c.wire.bytes_sent if c.wire else 0 for c in self._connections]

    def wait_all_closed(self, timeout: float = 2.0) -> bool:
        """``True`` once every accepted connection has ended, ``False`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            connections = list(self._connections)
        return all(
            connection.ended.wait(max(0.0, deadline - time.monotonic()))
            for connection in connections
        )

    # -- serving -------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            if self._stopping.is_set():
                sock.close()
                return
            with self._lock:
                connection = _Connection(index=len(self._connections), sock=sock)
                self._connections.append(connection)
            connection.thread = threading.Thread(
                target=self._serve, args=(connection,), name="faultserver-conn", daemon=True
            )
            connection.thread.start()

    def _serve(self, connection: _Connection) -> None:
        sock = connection.sock
        sock.settimeout(_IDLE_SECONDS)
        # Replies go out in several writes; Nagle's algorithm would hold each
        # back for the client's delayed ACK and add 40 ms to every exchange.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        try:
            if self._tls is not None:
                sock = connection.sock = self._tls.wrap_socket(sock, server_side=True)
            wire = connection.wire = Wire(sock, self._stopping)
            while not self._stopping.is_set():
                request, buffer = self._read_request(sock, buffer, connection.index)
                if request is None:
                    break
                with self._lock:
                    self._requests.append(request)
                    action: Action = self._script.popleft() if self._script else StripeSession()
                if not action.perform(wire, request):
                    break
        except OSError:
            pass
        finally:
            sock.close()
            connection.ended.set()

    def _read_request(
        self, sock: socket.socket, buffer: bytes, connection: int
    ) -> tuple[ReceivedRequest | None, bytes]:
        while b"\r\n\r\n" not in buffer:
            if len(buffer) > _MAX_HEAD_BYTES or (buffer and not buffer[:1].isalpha()):
                sock.sendall(_head(400, {"Connection": "close"}, "Content-Length: 0"))
                return None, b""
            data = sock.recv(_CHUNK)
            if not data:
                return None, b""
            buffer += data
        head, _, rest = buffer.partition(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name] = value.strip()
        length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
        while len(rest) < length:
            data = sock.recv(_CHUNK)
            if not data:
                return None, b""
            rest += data
        request = ReceivedRequest(
            method=method, path=path, headers=headers, body=rest[:length], connection=connection
        )
        return request, rest[length:]

    def close(self) -> None:
        """Stop accepting, cut every connection, and join every thread."""
        self._stopping.set()
        # A blocked accept() does not wake when its socket is closed from
        # another thread; one last connection does.
        with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
            pass
        self._acceptor.join(_JOIN_SECONDS)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)
        for connection in connections:
            if connection.thread is not None:
                connection.thread.join(_JOIN_SECONDS)
        alive = [c.index for c in connections if c.thread is not None and c.thread.is_alive()]
        if self._acceptor.is_alive() or alive:
            raise RuntimeError(f"fault server threads did not stop: connections {alive}")


@contextmanager
def unresponsive_port() -> Iterator[int]:
    """A loopback port whose accept queue is full, so a new connect() times out.

    The kernel drops SYNs to a listener with a full backlog; the client's
    connect then waits for its own timeout. Yields the port, or raises
    ``LookupError`` when this kernel answers anyway (then no connect timeout
    can be produced on loopback).
    """
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(8):
            probe = socket.socket()
            probe.settimeout(0.1)
            try:
                probe.connect(("127.0.0.1", port))
            except TimeoutError:
                probe.close()
                break
            fillers.append(probe)
        else:
            raise LookupError("the kernel accepted every connection; no full backlog on loopback")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def free_port() -> int:
    """A loopback port with no listener (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
