"""The webhook apps that tests/adapters/test_multiprocess_webhooks.py runs in worker processes.

Configured by environment variables, since each worker process builds its own:

- ``LS_STORE``: ``sqlite``, ``postgres`` or ``redis``; ``LS_STORE_TARGET``: the
  SQLite file, the PostgreSQL DSN or the Redis URL; ``LS_STORE_NAME``: the
  table or key prefix;
- ``LS_RUNS``: the file each handler run appends a line to (``start`` and
  ``done`` with the event ID and the worker's PID): the test counts them;
- ``LS_LEASE``: the lease of ``/crash``, in seconds; ``/webhook`` has the default
  lease, which a slow moment of a loaded machine never outlasts.

``/pid`` answers the worker's PID, so that the test can wait for every worker.

An event whose ID starts with ``evt_crash`` hangs in its handler on its
first run, after writing ``start``, so that the test can kill that worker.

Both endpoints share one store.
Starlette (``uvicorn --factory webhook_workers:starlette_app``) uses the async
PostgreSQL and Redis stores; Pyramid (``python webhook_workers.py FD``, one
waitress process on the inherited listening socket ``FD``) the sync ones.
"""

import asyncio
import logging
import os
import socket
import sys
import time
from typing import Any

SECRET = "whsec_multiprocess0test"
EVENT_TYPE = "customer.updated"
CRASH_PREFIX = "evt_crash"


def _record(step: str, event_id: str) -> None:
    # One write(2) on an O_APPEND file: lines from several processes never interleave.
    descriptor = os.open(os.environ["LS_RUNS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, f"{step} {event_id} {os.getpid()}\n".encode())
    finally:
        os.close(descriptor)


def _first_crash_run(event_id: str) -> bool:
    """Whether this is the first run of a crash event (decided once, across processes)."""
    if not event_id.startswith(CRASH_PREFIX):
        return False
    marker = os.environ["LS_RUNS"] + "." + event_id
    try:
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    return True


def _crash_lease() -> float:
    return float(os.environ["LS_LEASE"])


def _store(asynchronous: bool) -> Any:
    kind = os.environ["LS_STORE"]
    target = os.environ["LS_STORE_TARGET"]
    name = os.environ["LS_STORE_NAME"]
    if kind == "sqlite":
        from lattice_stripe.adapters.stores.sqlite import SqliteEventStore

        return SqliteEventStore(target, table=name)
    if kind == "postgres":
        from lattice_stripe.adapters.stores import postgres

        if asynchronous:
            return postgres.AsyncPostgresEventStore(target, table=name, max_connections=4)
        return postgres.PostgresEventStore(target, table=name, max_connections=4)
    from lattice_stripe.adapters.stores import redis

    if asynchronous:
        return redis.AsyncRedisEventStore(target, prefix=name)
    return redis.RedisEventStore(target, prefix=name)


def starlette_app() -> Any:
    """One uvicorn worker's app: the Starlette webhook endpoint on ``/webhook``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from lattice_stripe.contrib.starlette import webhook_endpoint
    from lattice_stripe.core.webhooks import Event

    async def handle(event: Event) -> None:
        _record("start", event.id)
        if _first_crash_run(event.id):
            await asyncio.sleep(3600)  # until the test kills this worker
        _record("done", event.id)

    async def pid(request: Request) -> Response:
        return PlainTextResponse(str(os.getpid()))

    store = _store(asynchronous=os.environ["LS_STORE"] != "sqlite")
    handlers = {EVENT_TYPE: handle}
    routes = [
        Route("/webhook", webhook_endpoint(SECRET, handlers, store=store), methods=["POST"]),
        Route(
            "/crash",
            webhook_endpoint(SECRET, handlers, store=store, lease_seconds=_crash_lease()),
            methods=["POST"],
        ),
        Route("/pid", pid),
    ]
    return Starlette(routes=routes)


def pyramid_app() -> Any:
    """One waitress process's app: the Pyramid webhook view on ``/webhook``."""
    from pyramid.config import Configurator
    from pyramid.request import Request
    from pyramid.response import Response

    from lattice_stripe.core.webhooks import Event

    def pid(request: Request) -> Response:
        return Response(str(os.getpid()))

    def handle(event: Event) -> None:
        _record("start", event.id)
        if _first_crash_run(event.id):
            time.sleep(3600)  # until the test kills this process
        _record("done", event.id)

    settings = {
        "lattice_stripe.api_key": "sk_test_multiprocess0key",
        "lattice_stripe.webhook_secrets": SECRET,
    }
    with Configurator(settings=settings) as config:
        config.include("lattice_stripe.contrib.pyramid")
        config.add_route("pid", "/pid")
        config.add_view(pid, route_name="pid")
        store = _store(asynchronous=False)
        config.add_route("webhook", "/webhook")
        config.add_stripe_webhook_view("webhook", {EVENT_TYPE: handle}, store=store)
        config.add_route("crash", "/crash")
        config.add_stripe_webhook_view(
            "crash", {EVENT_TYPE: handle}, store=store, lease_seconds=_crash_lease()
        )
        return config.make_wsgi_app()


def _serve_pyramid(descriptor: int) -> None:
    import waitress

    # A burst of deliveries queues up behind the threads; that is the point, not news.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    listener = socket.socket(fileno=descriptor)
    waitress.serve(pyramid_app(), sockets=[listener], threads=8, _quiet=True)


if __name__ == "__main__":
    _serve_pyramid(int(sys.argv[1]))
