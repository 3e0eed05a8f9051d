"""Run an ASGI application (Starlette, FastAPI) on a loopback port, for the emulator to call.

Named after uvicorn, the one library it imports (as the house rule wants).

The emulator delivers webhooks over real HTTP, so an app under test must
listen somewhere: :func:`serve_asgi` runs it with uvicorn in a background
thread on ``127.0.0.1`` (a free port) for the length of a ``with`` block,
lifespan included. The pytest plugin's ``serve_app`` fixture does the same
per test. Needs uvicorn (the ``lattice-stripe[emulator]`` extra).
"""

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from lattice_stripe.core.errors import MissingDependencyError

__all__ = ["serve_asgi"]

_LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def serve_asgi(app: Any, *, timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` on ``http://127.0.0.1:<free port>`` until the block ends; yield that URL.

    The lifespan runs at start (a failing start-up raises ``RuntimeError``
    here) and at the end of the block.
    """
    try:
        import uvicorn
    except ImportError as error:
        raise MissingDependencyError(error.name or "uvicorn", "emulator", __name__) from error

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((_LOOPBACK, 0))
        server = uvicorn.Server(
            uvicorn.Config(
                app, log_config=None, log_level="warning", access_log=False, lifespan="on"
            )
        )

        def run() -> None:
            # uvicorn ends a failed start-up with sys.exit(3): here, that is "did not start".
            with contextlib.suppress(SystemExit):
                server.run(sockets=[sock])

        # Not the main thread: uvicorn leaves the process's signal handlers alone.
        thread = threading.Thread(target=run, name="lattice-stripe-app", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            if not server.started:
                raise RuntimeError("the application did not start (see its log)")
            yield f"http://{_LOOPBACK}:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            thread.join(timeout)
    finally:
        sock.close()
