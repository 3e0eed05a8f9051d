"""Run the demo: the emulator and the demo app (uvicorn) side by side, in one event loop."""

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import TextIO

import uvicorn

from lattice_stripe.demo.app import DemoSettings, create_app
from lattice_stripe.emulator import Emulator, Seed, SeedError, serve
from lattice_stripe.emulator._app import LOOPBACK, binding

__all__ = ["run_demo"]

_START_POLLS = 1000


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # run_demo owns the signals: it must stop the emulator too, after uvicorn.
        yield


def _listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, port))
    except OSError:
        sock.close()
        raise
    return sock


async def run_demo(
    *,
    stop: asyncio.Event,
    out: TextIO,
    port: int = 8000,
    emulator_port: int = 12111,
    seed: Seed | None = None,
) -> None:
    """Serve the demo on ``127.0.0.1:port`` and the emulator on ``emulator_port`` until ``stop``.

    Port 0 picks a free port; the URLs are printed to ``out`` once both are up.
    """
    emulator = Emulator(seed=seed)
    customers = emulator.store.customers
    customer = "cus_demo" if "cus_demo" in customers else next(iter(customers), None)
    if customer is None:
        raise SeedError("the seed has no customer for the demo user")
    with binding(port, "shop"):
        sock = _listening_socket(port)
    try:
        async with serve(emulator, port=emulator_port) as running:
            demo_url = f"http://{LOOPBACK}:{sock.getsockname()[1]}"
            emulator.webhooks.url = f"{demo_url}/webhooks/stripe"
            settings = DemoSettings(
                stripe_url=running.url,
                api_key=emulator.api_key,
                webhook_secret=emulator.webhook_secret,
                customer_id=customer,
            )
            server = _Server(
                uvicorn.Config(
                    create_app(settings),
                    log_config=None,
                    log_level="warning",
                    access_log=False,
                    lifespan="on",
                )
            )
            serving = asyncio.ensure_future(server.serve(sockets=[sock]))
            for _ in range(_START_POLLS):
                if server.started or serving.done():
                    break
                await asyncio.sleep(0.01)
            if not server.started:
                server.should_exit = True
                await asyncio.gather(serving, return_exceptions=True)
                raise RuntimeError("the demo app did not start (see the log above)")
            name = customers[customer].name or customer
            print(
                f"Demo running: {demo_url}/\n"
                f"  Open it in your browser. You are signed in as {name} ({customer});\n"
                '  "Manage billing" opens the portal on the local Stripe emulator.\n'
                f"  Emulator: {running.url} (API key {emulator.api_key}, "
                f"webhook secret {emulator.webhook_secret})\n"
                f"  Webhooks: {emulator.webhooks.url}\n"
                "Press Ctrl+C to stop.",
                file=out,
                flush=True,
            )
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True
            stopping.cancel()
            await serving
    finally:
        sock.close()
