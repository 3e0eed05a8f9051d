"""The aiohttp application, and ways to run it: in a loop, or in a background thread.

:func:`create_app` wires the REST API (``/v1``), the hosted portal (``/p``)
and the test hooks (``GET /_emulator/webhooks``, the log of sent events;
``POST /_emulator/reset``, back to the seed, with the API key) around one
:class:`~lattice_stripe.emulator._engine.Emulator`. Every response carries a
``Request-Id`` header; API errors are Stripe's JSON, portal errors are pages.

:func:`serve` runs it on loopback inside the current event loop;
:func:`serve_in_thread` runs it in a thread of its own, for synchronous code
(the official SDK, :class:`~lattice_stripe.Client`)::

    with serve_in_thread(Emulator()) as url:
        client = Client(DEFAULT_API_KEY, base_url=url, allow_http_localhost=True)
"""

import asyncio
import contextlib
import errno
import threading
from collections.abc import AsyncIterator, Iterator
from html import escape

import attrs
from aiohttp import web

from lattice_stripe.emulator import _api as api
from lattice_stripe.emulator import _portal as portal
from lattice_stripe.emulator._engine import EMULATOR, Emulator
from lattice_stripe.emulator._state import new_id
from lattice_stripe.emulator._validation import ApiError

__all__ = ["PortInUseError", "RunningEmulator", "create_app", "serve", "serve_in_thread"]

LOOPBACK = "127.0.0.1"


@web.middleware
async def _protocol(request: web.Request, handler: api.Handler) -> web.StreamResponse:
    request_id = new_id("req")
    request[api.REQUEST_ID] = request_id
    is_api = request.path.startswith("/v1/")
    response: web.StreamResponse
    try:
        response = await (api.api_call(request, handler) if is_api else handler(request))
    except ApiError as error:
        response = api.error_response(request, error)
    except portal.PageError as error:
        # Every error page leads back to a site: the session's, else the account default.
        fallback = request.app[EMULATOR].store.configuration.get("default_return_url")
        response = portal.error_page(
            error.status, error.title, error.message, return_url=error.return_url or fallback
        )
    except web.HTTPException as error:
        if error.status < 400:
            error.headers["Request-Id"] = request_id
            raise
        if is_api:
            refusal = (
                api.unrecognized(request)
                if error.status in (404, 405)
                else ApiError(f"Request refused: {error.reason}.", status=error.status)
            )
            response = api.error_response(request, refusal)
        else:
            message = (
                "There is no such page."
                if error.status in (404, 405)
                else "The portal could not take this request: go back and try again."
            )
            fallback = request.app[EMULATOR].store.configuration.get("default_return_url")
            response = portal.error_page(error.status, error.reason, message, return_url=fallback)
    response.headers["Request-Id"] = request_id
    return response


async def _index(request: web.Request) -> web.Response:
    store = request.app[EMULATOR].store
    rows = "".join(
        f"<li><code>{escape(customer.id)}</code> {escape(customer.name or '')}: "
        + ", ".join(
            f"<code>{escape(sub.id)}</code> ({escape(sub.status)})"
            for sub in store.subscriptions_of(customer.id)
        )
        + "</li>"
        for customer in store.customers.values()
    )
    return web.Response(
        text=(
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>lattice-stripe emulator</title></head><body>"
            "<h1>lattice-stripe emulator</h1><p>A local Stripe stand-in (test mode). "
            "Create portal sessions with <code>POST /v1/billing_portal/sessions</code>; "
            "see sent webhooks at <code>GET /_emulator/webhooks</code> (with the API key); "
            "put everything back to the seed with <code>POST /_emulator/reset</code> "
            "(with the API key).</p>"
            f"<h2>Customers</h2><ul>{rows}</ul></body></html>"
        ),
        content_type="text/html",
    )


async def _webhook_log(request: web.Request) -> web.Response:
    # The events hold customer data (names, emails, addresses): the API key guards them.
    api.authenticate(request)
    dispatcher = request.app[EMULATOR].webhooks
    return web.json_response(
        {"url": dispatcher.url, "data": [delivery.to_json() for delivery in dispatcher.log]}
    )


async def _reset(request: web.Request) -> web.Response:
    # It wipes every change: only a caller holding the API key may do that.
    api.authenticate(request)
    await request.app[EMULATOR].reset()
    return web.json_response({"reset": True})


async def _close_webhooks(app: web.Application) -> None:
    await app[EMULATOR].webhooks.aclose()


def create_app(emulator: Emulator) -> web.Application:
    """The emulator's aiohttp application."""
    app = web.Application(middlewares=[_protocol], client_max_size=256 * 1024)
    app[EMULATOR] = emulator
    app.add_routes(api.routes())
    app.add_routes(portal.routes())
    app.add_routes(
        [
            web.get("/", _index, allow_head=False),
            web.get("/_emulator/webhooks", _webhook_log, allow_head=False),
            web.post("/_emulator/reset", _reset),
        ]
    )
    app.on_cleanup.append(_close_webhooks)
    return app


class PortInUseError(OSError):
    """A port held by another process; ``server`` says who wanted it: ``emulator`` or ``shop``."""

    def __init__(self, port: int, server: str) -> None:
        who = "the emulator" if server == "emulator" else "the demo shop"
        super().__init__(errno.EADDRINUSE, f"port {port} is in use, so {who} cannot listen on it")
        self.port = port
        self.server = server


@contextlib.contextmanager
def binding(port: int, server: str) -> Iterator[None]:
    """Raise :class:`PortInUseError` for "address in use" while ``server`` binds ``port``."""
    try:
        yield
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(port, server) from None
        raise


@attrs.frozen
class RunningEmulator:
    """A started emulator: its base ``url`` (``http://127.0.0.1:<port>``) and its ``port``."""

    url: str
    port: int
    emulator: Emulator


@contextlib.asynccontextmanager
async def serve(emulator: Emulator, *, port: int = 0) -> AsyncIterator[RunningEmulator]:
    """Run the emulator on ``127.0.0.1:port`` (0: any free port) until the block ends."""
    runner = web.AppRunner(create_app(emulator), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, LOOPBACK, port)
        with binding(port, "emulator"):
            await site.start()
        bound = runner.addresses[0][1]
        url = f"http://{LOOPBACK}:{bound}"
        emulator.bound_url = url
        yield RunningEmulator(url=url, port=bound, emulator=emulator)
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def serve_in_thread(
    emulator: Emulator, *, port: int = 0, timeout: float = 10.0
) -> Iterator[RunningEmulator]:
    """Run the emulator in a background thread with its own event loop, until the block ends."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()
    running: list[RunningEmulator] = []
    failure: list[Exception] = []

    async def main() -> None:
        try:
            async with serve(emulator, port=port) as started:
                running.append(started)
                ready.set()
                await stop.wait()
        except Exception as error:
            failure.append(error)
            ready.set()

    def run() -> None:
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    def request_stop() -> None:
        with contextlib.suppress(RuntimeError):  # the loop has already finished
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)

    thread = threading.Thread(target=run, name="lattice-stripe-emulator", daemon=True)
    thread.start()
    if not ready.wait(timeout) or failure:
        request_stop()
        raise RuntimeError("the emulator did not start") from (failure[0] if failure else None)
    try:
        yield running[0]
    finally:
        request_stop()
