"""A minimal, fast HTTP/1.1 keep-alive server on loopback that answers every POST with the session.

Every contender of the end-to-end benchmark talks to this same server, run in
its own process, so the numbers compare clients, not servers. Run as
``python -m benchmarks.server PORT [DELAY_SECONDS [CERT_PEM KEY_PEM]]``; it
prints its port on the first line. With a delay, each answer waits that long
(Stripe-like latency); with a certificate and key, it speaks HTTPS.
"""

import asyncio
import ssl
import sys

from benchmarks.payloads import RESPONSE_BODY

_REPLY = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"Request-Id: req_bench\r\n"
    b"Connection: keep-alive\r\n"
    b"Content-Length: " + str(len(RESPONSE_BODY)).encode() + b"\r\n\r\n" + RESPONSE_BODY
)
_MAX_HEAD = 64 * 1024


REPLY_SIZE = len(_REPLY)
"""The exact size of every answer, for the raw-socket limit contenders."""


class _Connection(asyncio.Protocol):
    def __init__(self, delay: float = 0.0) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._delay = delay

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD:
                    self._transport.close()
                return
            head = bytes(self._buffer[:end]).lower()
            start = head.find(b"\ncontent-length:")
            length = 0
            if start >= 0:
                stop = head.find(b"\r\n", start + 1)
                length = int(head[start + 16 : stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(self._buffer) < total:
                return
            del self._buffer[:total]
            if self._delay:
                asyncio.get_running_loop().call_later(self._delay, self._reply)
            else:
                self._transport.write(_REPLY)

    def _reply(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(_REPLY)


async def _serve(port: int, delay: float, tls: ssl.SSLContext | None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(delay), "127.0.0.1", port, backlog=1024, ssl=tls
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Serve until killed; the port (0 = any free one), delay and certificate come from argv."""
    args = sys.argv[1:]
    port = int(args[0]) if args else 0
    delay = float(args[1]) if len(args) > 1 else 0.0
    tls = None
    if len(args) > 3:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args[2], args[3])
    asyncio.run(_serve(port, delay, tls))


if __name__ == "__main__":
    main()
