"""The portal loop in Starlette and Pyramid against the emulator: the customer, the return check."""

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("pyramid")  # imported under the filter that hides webob's cgi warning
pytest.importorskip("webtest")

import webtest
from pyramid.config import Configurator
from pyramid.request import Request as PyramidRequest
from pyramid.response import Response as PyramidResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from lattice_stripe import BillingState
from lattice_stripe.contrib import CUSTOMER_USER_METADATA_KEY, customer_idempotency_key
from lattice_stripe.contrib.pyramid import get_client, return_view
from lattice_stripe.contrib.starlette import customer_for, return_endpoint, stripe_lifespan
from lattice_stripe.emulator import DEFAULT_API_KEY, Emulator, RunningEmulator, serve_in_thread


@pytest.fixture
def running() -> Iterator[RunningEmulator]:
    """A fresh emulator per test, in a thread."""
    with serve_in_thread(Emulator()) as running:
        yield running


def state_json(state: BillingState) -> dict[str, Any]:
    """What the test apps answer: the state as JSON."""
    return state.to_dict()


def created_for(running: RunningEmulator, user_id: str) -> list[str]:
    """The IDs of the emulator's customers created for ``user_id``."""
    return [
        customer.id
        for customer in running.emulator.store.customers.values()
        if customer.metadata.get(CUSTOMER_USER_METADATA_KEY) == user_id
    ]


def first_visits(visit: Callable[[], str], count: int = 2) -> list[str]:
    """``count`` concurrent first visits; the customer ID each one got."""
    start = threading.Barrier(count)
    got: list[str] = []

    def one() -> None:
        start.wait()
        got.append(visit())

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return got


def test_the_idempotency_key_is_derived_from_the_user_alone() -> None:
    """The same user gets the same key, another user another, and the ID is not in it."""
    assert customer_idempotency_key("user-1") == customer_idempotency_key("user-1")
    assert customer_idempotency_key("user-1") != customer_idempotency_key("user-2")
    assert "user-1" not in customer_idempotency_key("user-1")
    assert len(customer_idempotency_key("u" * 10_000)) <= 255


# -- Starlette -----------------------------------------------------------------------


def starlette_app(running: RunningEmulator, customer: str | None) -> Starlette:
    """An app whose logged-in user is ``customer``, with a first-visit and a return route."""

    async def first_visit(request: Request) -> Response:
        found = await customer_for(request, "user-42", email="jo@example.com")
        return JSONResponse({"customer": found})

    async def on_state(request: Request, state: BillingState) -> Response:
        return JSONResponse(state_json(state))

    return Starlette(
        routes=[
            Route("/first-visit", first_visit),
            Route("/billing/return", return_endpoint(lambda request: customer, on_state)),
        ],
        lifespan=stripe_lifespan(DEFAULT_API_KEY, base_url=running.url, allow_http_localhost=True),
    )


def test_starlette_return_endpoint_hands_stripes_state_to_the_callback(
    running: RunningEmulator,
) -> None:
    """The return endpoint re-reads every subscription of the logged-in customer from Stripe."""
    with TestClient(starlette_app(running, "cus_team")) as client:
        answer = client.get("/billing/return")
    assert answer.status_code == 200
    state = answer.json()
    assert state["customer"] == "cus_team"
    assert {sub["id"]: sub["quantity"] for sub in state["subscriptions"]} == {
        "sub_team": 5,
        "sub_team_addon": 1,
    }


def test_starlette_return_endpoint_refuses_without_a_customer(running: RunningEmulator) -> None:
    """No logged-in customer is a 403, and nothing is read."""
    with TestClient(starlette_app(running, None)) as client:
        assert client.get("/billing/return").status_code == 403


def test_starlette_return_endpoint_answers_503_when_stripe_cannot_be_read() -> None:
    """Stripe unreachable is a plain 503 with the error logged, never a traceback page."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening

    async def on_state(request: Request, state: BillingState) -> Response:
        raise AssertionError("no state without Stripe")  # pragma: no cover

    app = Starlette(
        routes=[Route("/billing/return", return_endpoint(lambda request: "cus_team", on_state))],
        lifespan=stripe_lifespan(
            DEFAULT_API_KEY, base_url=url, allow_http_localhost=True, max_retries=0
        ),
    )
    with TestClient(app) as client:
        answer = client.get("/billing/return")
    assert answer.status_code == 503
    assert "could not be checked" in answer.text


def test_starlette_concurrent_first_visits_create_one_customer(running: RunningEmulator) -> None:
    """Two concurrent first visits of one user get the same customer; Stripe holds one."""
    with TestClient(starlette_app(running, None)) as client:
        got = first_visits(lambda: str(client.get("/first-visit").json()["customer"]))
    assert len(set(got)) == 1
    assert created_for(running, "user-42") == got[:1]


# -- Pyramid -------------------------------------------------------------------------


@contextlib.contextmanager
def pyramid_app(running: RunningEmulator, customer: str | None) -> Iterator[webtest.TestApp]:
    """A Pyramid app over the emulator whose logged-in user is ``customer``; its client closed."""

    def first_visit(request: PyramidRequest) -> PyramidResponse:
        found = request.stripe_portal.customer_for("user-7", name="Sam")
        return PyramidResponse(json_body={"customer": found})

    def on_state(request: PyramidRequest, state: BillingState) -> PyramidResponse:
        return PyramidResponse(json_body=state_json(state))

    settings = {
        "lattice_stripe.api_key": DEFAULT_API_KEY,
        "lattice_stripe.base_url": running.url,
        "lattice_stripe.allow_http_localhost": "true",
    }
    with Configurator(settings=settings) as config:
        config.include("lattice_stripe.contrib.pyramid")
        config.add_route("first_visit", "/first-visit")
        config.add_view(first_visit, route_name="first_visit")
        config.add_route("billing_return", "/billing/return")
        config.add_view(
            return_view(lambda request: customer, on_state), route_name="billing_return"
        )
    try:
        yield webtest.TestApp(config.make_wsgi_app())
    finally:
        get_client(config.registry).close()


def test_pyramid_return_view_hands_stripes_state_to_the_callback(running: RunningEmulator) -> None:
    """The return view re-reads the customer's subscriptions, canceled ones included."""
    with pyramid_app(running, "cus_lapsed") as app:
        answer = app.get("/billing/return")
    assert answer.json["customer"] == "cus_lapsed"
    assert [(sub["id"], sub["status"]) for sub in answer.json["subscriptions"]] == [
        ("sub_lapsed", "canceled")
    ]


def test_pyramid_return_view_refuses_without_a_customer(running: RunningEmulator) -> None:
    """No logged-in customer is a 403."""
    with pyramid_app(running, None) as app:
        app.get("/billing/return", status=403)


def test_pyramid_concurrent_first_visits_create_one_customer(running: RunningEmulator) -> None:
    """Two concurrent first visits of one user get the same customer; Stripe holds one."""
    with pyramid_app(running, None) as app:
        got = first_visits(lambda: str(app.get("/first-visit").json["customer"]))
    assert len(set(got)) == 1
    assert created_for(running, "user-7") == got[:1]
