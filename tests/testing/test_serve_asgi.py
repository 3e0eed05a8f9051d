"""Running an app under test on loopback, so that the emulator's webhooks reach it."""

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

pytest.importorskip("uvicorn")

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from doc_snippets import load_module
from lattice_stripe.testing import EmulatorServer, serve_asgi

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _app(received: list[dict[str, Any]]) -> Starlette:
    async def hook(request: Request) -> JSONResponse:
        received.append(json.loads(await request.body()))
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def test_serve_app_fixture_runs_the_app_for_the_emulator(
    serve_app: Callable[[Any], str], fresh_stripe_emulator: EmulatorServer
) -> None:
    """serve_app(app) answers on 127.0.0.1, and the emulator's webhooks reach it."""
    received: list[dict[str, Any]] = []
    url = serve_app(_app(received))
    assert url.startswith("http://127.0.0.1:")
    with fresh_stripe_emulator.send_webhooks_to(url + "/hook"):
        request = urllib.request.Request(
            fresh_stripe_emulator.base_url + "/v1/customers",
            data=b"name=Jo",
            headers={"Authorization": f"Bearer {fresh_stripe_emulator.api_key}"},
        )
        with _OPENER.open(request, timeout=10) as response:
            response.read()
        for _ in range(200):
            if received:
                break
            fresh_stripe_emulator.webhooks()  # a round trip, giving the delivery time
    assert [event["type"] for event in received] == ["customer.created"]


def test_serve_asgi_raises_when_the_lifespan_fails_and_stops_after_the_block() -> None:
    """A start-up failure is a RuntimeError; after the block the port no longer answers."""

    @contextlib.asynccontextmanager
    async def broken(app: Starlette) -> AsyncIterator[None]:
        raise OSError("no database")
        yield

    with pytest.raises(RuntimeError, match="did not start"), serve_asgi(Starlette(lifespan=broken)):
        pass
    with serve_asgi(_app([])) as url:
        pass
    with pytest.raises(urllib.error.URLError, match="refused"):
        _OPENER.open(url + "/hook", timeout=2)


def test_the_guides_fastapi_app_opens_the_portal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The FastAPI example of the guide runs, its deep link and lifespan working."""
    pytest.importorskip("fastapi")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_guide")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", "whsec_guide")
    guide = load_module(
        "frameworks_guide_fastapi",
        "starlette-app",
        "starlette-deep-link",
        "starlette-test",
        "deep-link-fastapi",
    )
    assert guide.fake.last_request.params["customer"] == "cus_123"
