"""The Starlette integration: lifespan client, portal redirects, the webhook endpoint, the guide."""

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("starlette.testclient")

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from doc_snippets import load_module, snippets
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.contrib import PORTAL_ERROR_MESSAGES
from lattice_stripe.contrib._shared import PORTAL_UNAVAILABLE_TEXT, UNTRUSTED_HOST_TEXT
from lattice_stripe.contrib.starlette import (
    get_client,
    portal_endpoint,
    portal_error,
    portal_url,
    redirect_to_portal,
    stripe_lifespan,
    webhook_endpoint,
)
from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.http import HttpRequest, HttpResponse
from lattice_stripe.core.webhooks import Event
from lattice_stripe.testing import session_body
from lattice_stripe.webhooks import InMemoryEventStore, generate_signature_header

API_KEY = "sk_test_StarletteContrib"
SECRET = "whsec_starlette0secret"
OLD_SECRET = "whsec_starlette0old"
NOW = 1_700_000_000
SESSIONS = {"s1": "cus_123"}
Handlers = Mapping[str, Callable[[Event], object]]


def logged_in_customer(request: Request) -> str | None:
    """The app's login: the session cookie names the user, whose customer ID the app knows."""
    return SESSIONS.get(request.cookies.get("session", ""))


async def account(request: Request) -> Response:
    """The account page: shows the portal error message, if any."""
    return PlainTextResponse(portal_error(request) or "account")


def build_app(
    fake: RecordingTransport,
    *,
    handlers: Handlers | None = None,
    webhook_options: Mapping[str, Any] | None = None,
    extra_routes: tuple[Route, ...] = (),
    **lifespan_options: Any,
) -> Starlette:
    """An app with an account page, the portal endpoint and the webhook endpoint."""
    options: dict[str, Any] = {"clock": lambda: float(NOW), **(webhook_options or {})}
    return Starlette(
        routes=[
            Route("/account", account, name="account"),
            Route(
                "/portal",
                portal_endpoint(logged_in_customer, return_route="account"),
                methods=["POST"],
            ),
            Route(
                "/webhook",
                webhook_endpoint([OLD_SECRET, SECRET], handlers or {}, **options),
                methods=["POST"],
            ),
            *extra_routes,
        ],
        lifespan=stripe_lifespan(API_KEY, transport=fake, **lifespan_options),
    )


@contextlib.contextmanager
def running(app: Starlette, base_url: str = "https://testserver") -> Iterator[TestClient]:
    """A TestClient with the lifespan running and the user logged in."""
    with TestClient(app, base_url=base_url, cookies={"session": "s1"}) as client:
        yield client


@pytest.fixture
def fake() -> RecordingTransport:
    """The fake Stripe the app's client talks to."""
    return RecordingTransport()


def session_response(url: str) -> Callable[[HttpRequest], HttpResponse]:
    """A fake-Stripe handler answering every create with a session whose URL is ``url``."""

    def answer(request: HttpRequest) -> HttpResponse:
        body = session_body(url=url, created=NOW, customer="cus_123")
        return HttpResponse(status=200, headers={}, body=body)

    return answer


# -- the lifespan ----------------------------------------------------------------


def test_the_lifespan_owns_one_client_and_closes_it_at_shutdown(fake: RecordingTransport) -> None:
    """Every request sees the same client; its transport is closed when the app stops."""
    seen: list[object] = []

    async def which(request: Request) -> Response:
        seen.append(get_client(request))
        return PlainTextResponse("ok")

    app = build_app(fake, extra_routes=(Route("/which", which),))
    with running(app) as client:
        client.get("/which")
        client.get("/which")
        assert fake.closed is False
    assert fake.closed is True
    assert len(seen) == 2
    assert seen[0] is seen[1]


def test_the_default_transport_is_aiohttp() -> None:
    """Without a transport, the lifespan's client sends through aiohttp (nothing is sent here)."""
    pytest.importorskip("aiohttp")
    shown: list[str] = []

    async def show(request: Request) -> Response:
        shown.append(repr(get_client(request)))
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", show)], lifespan=stripe_lifespan(API_KEY))
    with TestClient(app) as client:
        client.get("/")
    [description] = shown
    assert "transport=AsyncioTransport" in description
    assert API_KEY not in description


def test_the_apps_own_lifespan_runs_inside_with_its_state_kept(fake: RecordingTransport) -> None:
    """``inner``: the app's lifespan state sits next to the client's."""
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def inner(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        events.append("start")
        yield {"database": "db"}
        events.append("stop")

    async def both(request: Request) -> Response:
        return JSONResponse(
            {"database": request.state.database, "client": type(get_client(request)).__name__}
        )

    app = build_app(fake, inner=inner, extra_routes=(Route("/both", both),))
    with running(app) as client:
        assert client.get("/both").json() == {"database": "db", "client": "AsyncClient"}
    assert events == ["start", "stop"]
    assert fake.closed is True


def test_a_bad_api_key_fails_the_start_not_a_request(fake: RecordingTransport) -> None:
    """The client is built at startup, so a publishable key stops the app from starting."""
    app = Starlette(lifespan=stripe_lifespan("pk_test_123", transport=fake))
    with pytest.raises(ValidationError, match="publishable"), TestClient(app):
        pass


def test_without_the_lifespan_the_error_says_how_to_set_it_up() -> None:
    """get_client outside a stripe_lifespan app raises RuntimeError naming stripe_lifespan."""

    async def orphan(request: Request) -> Response:
        get_client(request)
        return PlainTextResponse("unreachable")

    with (
        TestClient(Starlette(routes=[Route("/", orphan)])) as client,
        pytest.raises(RuntimeError, match="stripe_lifespan"),
    ):
        client.get("/")


# -- the portal redirect ---------------------------------------------------------


def test_the_portal_endpoint_answers_303_to_the_session_never_cached(
    fake: RecordingTransport,
) -> None:
    """303 to the session URL with no-store and no-referrer; the URL is not in the body."""
    fake = RecordingTransport(session_response("https://billing.stripe.com/p/session/test_abc"))
    with running(build_app(fake)) as client:
        response = client.post("/portal", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "https://billing.stripe.com/p/session/test_abc"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert b"test_abc" not in response.content


def test_the_return_url_is_the_absolute_url_of_the_return_route(fake: RecordingTransport) -> None:
    """return_route="account" becomes https://<host>/account via request.url_for."""
    app = build_app(fake, allowed_hosts=["shop.example"])
    with running(app, base_url="https://shop.example") as client:
        client.post("/portal", follow_redirects=False)
    assert fake.last_request.params["return_url"] == "https://shop.example/account"


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "shop.example.evil.example",
        "evilshop.example",
        "shop.example@evil",
        "",
        "a b",
    ],
)
def test_a_forged_host_is_refused_with_a_400_and_nothing_is_sent(
    fake: RecordingTransport, host: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A Host header outside allowed_hosts gets a plain 400; Stripe is never called."""
    app = build_app(fake, allowed_hosts=["shop.example", "*.shop.example"])
    with running(app, base_url="https://shop.example") as client:
        response = client.post("/portal", headers={"host": host}, follow_redirects=False)
    assert response.status_code == 400
    assert response.text == UNTRUSTED_HOST_TEXT
    assert "location" not in response.headers
    assert fake.requests == []
    assert "billing portal redirect refused" in caplog.text


@pytest.mark.parametrize("host", ["shop.example", "SHOP.example:443", "eu.shop.example"])
def test_allowed_hosts_match_exactly_by_subdomain_pattern_and_ignore_the_port(
    fake: RecordingTransport, host: str
) -> None:
    """An exact name (any case, any port) and a '*.' pattern's subdomains are allowed."""
    app = build_app(fake, allowed_hosts=["shop.example", "*.shop.example"])
    with running(app, base_url="https://shop.example") as client:
        response = client.post("/portal", headers={"host": host}, follow_redirects=False)
    assert response.status_code == 303
    assert len(fake.requests) == 1


def test_by_default_only_development_hosts_are_trusted(fake: RecordingTransport) -> None:
    """With a test key and no allowed_hosts, testserver is trusted and another host is not."""
    with running(build_app(fake)) as client:
        assert client.post("/portal", follow_redirects=False).status_code == 303
        forged = client.post("/portal", headers={"host": "evil.example"}, follow_redirects=False)
    assert forged.status_code == 400
    assert len(fake.requests) == 1


def test_a_live_key_without_allowed_hosts_fails_the_start() -> None:
    """stripe_lifespan with a live key and no allowed_hosts stops the app at start-up."""
    app = build_app(RecordingTransport())
    app.router.lifespan_context = stripe_lifespan(
        "sk_live_51HostPolicy000", transport=RecordingTransport()
    )
    with pytest.raises(ValidationError, match="allowed_hosts"), TestClient(app):
        pass  # pragma: no cover


def test_the_customer_comes_from_the_login_never_the_request(fake: RecordingTransport) -> None:
    """A customer in the query string or the form is ignored; the session's user counts."""
    with running(build_app(fake)) as client:
        response = client.post(
            "/portal?customer=cus_evil", data={"customer": "cus_evil"}, follow_redirects=False
        )
    assert response.status_code == 303
    assert fake.last_request.params["customer"] == "cus_123"


def test_no_logged_in_user_is_forbidden_and_nothing_is_sent(fake: RecordingTransport) -> None:
    """The lookup returning None answers 403 without calling Stripe."""
    with TestClient(build_app(fake), base_url="https://testserver") as client:
        response = client.post("/portal", follow_redirects=False)
    assert response.status_code == 403
    assert fake.requests == []


def test_a_lookup_returning_an_empty_id_is_forbidden_too(fake: RecordingTransport) -> None:
    """A user record with no Stripe customer yet ('') answers 403, not a server error."""
    route = Route(
        "/portal-blank",
        portal_endpoint(lambda request: "", return_route="account"),
        methods=["POST"],
    )
    with running(build_app(fake, extra_routes=(route,))) as client:
        response = client.post("/portal-blank", follow_redirects=False)
    assert response.status_code == 403
    assert fake.requests == []


@pytest.mark.parametrize("asynchronous", [False, True])
def test_the_customer_lookup_may_be_sync_or_async(
    fake: RecordingTransport, asynchronous: bool
) -> None:
    """A plain function and a coroutine function both work as customer_for."""

    async def async_lookup(request: Request) -> str | None:
        return "cus_async"

    def sync_lookup(request: Request) -> str | None:
        return "cus_sync"

    lookup = async_lookup if asynchronous else sync_lookup
    route = Route("/p", portal_endpoint(lookup, return_route="account"), methods=["POST"])
    with running(build_app(fake, extra_routes=(route,))) as client:
        assert client.post("/p", follow_redirects=False).status_code == 303
    assert fake.last_request.params["customer"] == ("cus_async" if asynchronous else "cus_sync")


def _queue_failure(fake: RecordingTransport, failure: str) -> None:
    """Make the fake's next answer the named failure."""
    if failure == "connection":
        fake.queue_connection_error("connection refused by api.stripe.com")
    else:
        status = {"no_such_customer": 400, "bad_key": 401, "rate_limit": 429, "outage": 500}
        fake.queue_error(
            status[failure],
            type="api_error" if failure == "outage" else "invalid_request_error",
            message=f"Internal detail for {failure}: no customer cus_123; key sk_test_SECRETKEY",
        )


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        ("no_such_customer", "failed"),
        ("bad_key", "failed"),
        ("rate_limit", "unavailable"),
        ("outage", "unavailable"),
        ("connection", "unavailable"),
    ],
)
def test_a_stripe_failure_redirects_back_with_a_user_safe_message(
    fake: RecordingTransport, failure: str, code: str
) -> None:
    """Stripe errors and outages become a 303 back with a code; the page shows a fixed message."""
    _queue_failure(fake, failure)
    with running(build_app(fake, max_retries=0)) as client:
        response = client.post("/portal", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == (
            f"https://testserver/account?billing_portal_error={code}"
        )
        assert response.headers["cache-control"] == "no-store"
        page = client.get(response.headers["location"]).text
    assert page == PORTAL_ERROR_MESSAGES[code]
    assert "Internal detail" not in page
    assert "cus_123" not in page


def test_a_failure_is_logged_without_secrets(
    fake: RecordingTransport, caplog: pytest.LogCaptureFixture
) -> None:
    """The log says what Stripe said, with API keys masked."""
    _queue_failure(fake, "no_such_customer")
    with caplog.at_level(logging.WARNING, "lattice_stripe.contrib"), running(build_app(fake)) as c:
        c.post("/portal", follow_redirects=False)
    [record] = [r for r in caplog.records if r.name == "lattice_stripe.contrib"]
    assert "InvalidRequestError" in record.getMessage()
    assert "Internal detail for no_such_customer" in record.getMessage()
    assert "sk_test_SECRETKEY" not in record.getMessage()


def test_the_return_urls_own_query_is_kept_on_error(fake: RecordingTransport) -> None:
    """An error code is added to the return URL's query, not put in place of it."""

    async def portal(request: Request) -> Response:
        return await redirect_to_portal(
            request,
            customer="cus_123",
            return_url="https://testserver/account?tab=billing&billing_portal_error=old",
        )

    fake.queue_error(400)
    route = Route("/p", portal, methods=["POST"])
    with running(build_app(fake, extra_routes=(route,))) as client:
        response = client.post("/p", follow_redirects=False)
    assert response.headers["location"] == (
        "https://testserver/account?tab=billing&billing_portal_error=failed"
    )


def test_blank_values_of_the_return_urls_query_are_kept_on_error(fake: RecordingTransport) -> None:
    """``?tab=&page=2`` comes back with ``tab=`` still there, the error code added."""

    async def portal(request: Request) -> Response:
        return await redirect_to_portal(
            request, customer="cus_123", return_url="https://testserver/account?tab=&page=2"
        )

    fake.queue_error(400)
    route = Route("/p", portal, methods=["POST"])
    with running(build_app(fake, extra_routes=(route,))) as client:
        response = client.post("/p", follow_redirects=False)
    assert response.headers["location"] == (
        "https://testserver/account?tab=&page=2&billing_portal_error=failed"
    )


def test_an_unknown_error_code_shows_nothing(fake: RecordingTransport) -> None:
    """The account page never echoes a code it does not know."""
    with running(build_app(fake)) as client:
        page = client.get("/account", params={"billing_portal_error": "<script>x</script>"})
    assert page.text == "account"


def test_session_parameters_pass_through(fake: RecordingTransport) -> None:
    """flow_data, locale and friends reach Stripe as given."""

    async def cancel(request: Request) -> Response:
        return await redirect_to_portal(
            request,
            customer="cus_123",
            return_route="account",
            locale="fr",
            flow_data={
                "type": "subscription_cancel",
                "subscription_cancel": {"subscription": "sub_1"},
            },
        )

    with running(build_app(fake, extra_routes=(Route("/c", cancel, methods=["POST"]),))) as client:
        client.post("/c", follow_redirects=False)
    params = fake.last_request.params
    assert params["locale"] == "fr"
    assert params["flow_data"] == {
        "type": "subscription_cancel",
        "subscription_cancel": {"subscription": "sub_1"},
    }


def test_portal_url_returns_the_sessions_url(fake: RecordingTransport) -> None:
    """portal_url gives the session URL itself, for apps that redirect their own way."""
    fake = RecordingTransport(session_response("https://billing.stripe.com/p/session/test_xyz"))
    urls: list[str] = []

    async def url(request: Request) -> Response:
        urls.append(await portal_url(request, customer="cus_123", return_route="account"))
        return PlainTextResponse("done")

    with running(build_app(fake, extra_routes=(Route("/u", url),))) as client:
        client.get("/u")
    assert urls == ["https://billing.stripe.com/p/session/test_xyz"]


def test_an_invalid_return_url_is_a_plain_500_not_a_traceback(
    fake: RecordingTransport, caplog: pytest.LogCaptureFixture
) -> None:
    """A plain-http return URL is refused before anything is sent: a plain 500, reason logged."""

    async def portal(request: Request) -> Response:
        return await redirect_to_portal(
            request, customer="cus_123", return_url="http://shop.example/account"
        )

    route = Route("/p", portal, methods=["POST"])
    with running(build_app(fake, extra_routes=(route,))) as client:
        response = client.post("/p", follow_redirects=False)
    assert response.status_code == 500
    assert response.text == PORTAL_UNAVAILABLE_TEXT
    assert fake.requests == []
    assert "return_url: must be an absolute https:// URL" in caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(
    "where", [{}, {"return_route": "account", "return_url": "https://testserver/account"}]
)
def test_exactly_one_return_target_is_required(where: dict[str, str]) -> None:
    """Neither or both of return_route and return_url is a TypeError at set-up."""
    with pytest.raises(TypeError, match="exactly one"):
        portal_endpoint(logged_in_customer, **where)


def test_http_localhost_needs_the_opt_in(fake: RecordingTransport) -> None:
    """With allow_http_localhost an http://localhost return URL is sent; without, refused."""
    with running(build_app(fake, allow_http_localhost=True), "http://localhost") as client:
        assert client.post("/portal", follow_redirects=False).status_code == 303
    assert fake.last_request.params["return_url"] == "http://localhost/account"
    with running(build_app(RecordingTransport()), "http://localhost") as client:
        assert client.post("/portal", follow_redirects=False).status_code == 500


# -- the webhook endpoint ----------------------------------------------------------


def event_body(event_type: str, *, event_id: str = "evt_1") -> bytes:
    """A subscription event body as Stripe sends it."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": NOW,
            "livemode": False,
            "data": {
                "object": {
                    "id": "sub_1",
                    "object": "subscription",
                    "customer": "cus_123",
                    "status": "canceled",
                }
            },
        },
        indent=2,
    ).encode()


def post_event(
    client: TestClient,
    body: bytes,
    *,
    secret: str = SECRET,
    timestamp: int = NOW,
    header: str | None = None,
) -> Any:
    """POST ``body`` to the webhook with a signature header (or the given one)."""
    signature = (
        header
        if header is not None
        else generate_signature_header(body, secret, timestamp=timestamp)
    )
    return client.post("/webhook", content=body, headers={"Stripe-Signature": signature})


def test_a_signed_event_reaches_its_async_handler_typed(fake: RecordingTransport) -> None:
    """A valid delivery answers 200 processed and the handler gets the typed event."""
    seen: list[tuple[str, str]] = []

    async def canceled(event: Event) -> None:
        seen.append((event.id, event.subscription.status))

    with running(build_app(fake, handlers={"customer.subscription.deleted": canceled})) as client:
        response = post_event(client, event_body("customer.subscription.deleted"))
    assert (response.status_code, response.json()) == (200, {"outcome": "processed"})
    assert seen == [("evt_1", "canceled")]


def test_sync_handlers_run_off_the_event_loop_thread(fake: RecordingTransport) -> None:
    """A plain function runs in the thread pool, a coroutine function on the loop."""
    threads: dict[str, int] = {}

    def blocking(event: Event) -> None:
        threads["sync"] = threading.get_ident()

    async def awaited(event: Event) -> None:
        threads["async"] = threading.get_ident()

    handlers = {"customer.subscription.updated": blocking, "customer.subscription.deleted": awaited}
    with running(build_app(fake, handlers=handlers)) as client:
        post_event(client, event_body("customer.subscription.updated", event_id="evt_a"))
        post_event(client, event_body("customer.subscription.deleted", event_id="evt_b"))
    assert set(threads) == {"sync", "async"}
    assert threads["sync"] != threads["async"]


def test_an_async_callable_object_is_awaited(fake: RecordingTransport) -> None:
    """An object with an async __call__ is awaited like a coroutine function."""

    class Recorder:
        def __init__(self) -> None:
            self.ids: list[str] = []

        async def __call__(self, event: Event) -> None:
            self.ids.append(event.id)

    recorder = Recorder()
    with running(build_app(fake, handlers={"customer.subscription.deleted": recorder})) as client:
        assert post_event(client, event_body("customer.subscription.deleted")).status_code == 200
    assert recorder.ids == ["evt_1"]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("body", "no_matching_signature"),
        ("wrong_secret", "no_matching_signature"),
        ("old", "timestamp_out_of_tolerance"),
        ("future", "timestamp_out_of_tolerance"),
        ("missing", "missing_header"),
        ("no_t", "malformed_header"),
        ("no_v1", "malformed_header"),
        ("non_numeric_t", "malformed_header"),
        ("huge", "malformed_header"),
        ("reencoded", "no_matching_signature"),
    ],
)
def test_bad_deliveries_are_answered_400_and_never_handled(
    fake: RecordingTransport, tamper: str, reason: str
) -> None:
    """Tampered, foreign, stale, future, unsigned, malformed and re-encoded bodies get 400."""
    seen: list[Event] = []
    body = event_body("customer.subscription.deleted")
    good = generate_signature_header(body, SECRET, timestamp=NOW)
    signature = good.partition(",v1=")[2]
    cases: dict[str, tuple[bytes, str | None]] = {
        "body": (body.replace(b"canceled", b"active__"), good),
        "wrong_secret": (body, generate_signature_header(body, "whsec_x", timestamp=NOW)),
        "old": (body, generate_signature_header(body, SECRET, timestamp=NOW - 301)),
        "future": (body, generate_signature_header(body, SECRET, timestamp=NOW + 301)),
        "missing": (body, None),
        "no_t": (body, f"v1={signature}"),
        "no_v1": (body, f"t={NOW}"),
        "non_numeric_t": (body, f"t=now,v1={signature}"),
        "huge": (body, good + ",v0=" + "a" * 10_000),
        "reencoded": (json.dumps(json.loads(body)).encode(), good),
    }
    payload, header = cases[tamper]
    with running(build_app(fake, handlers={"customer.subscription.deleted": seen.append})) as c:
        headers = {} if header is None else {"Stripe-Signature": header}
        response = c.post("/webhook", content=payload, headers=headers)
    assert (response.status_code, response.json()) == (400, {"outcome": reason})
    assert seen == []


def test_a_rolled_secret_still_verifies(fake: RecordingTransport) -> None:
    """Signed by the old secret or the new one: both accepted while both are configured."""
    seen: list[str] = []
    handlers = {"customer.subscription.deleted": lambda event: seen.append(event.id)}
    with running(build_app(fake, handlers=handlers)) as client:
        first = post_event(client, event_body("customer.subscription.deleted"), secret=OLD_SECRET)
        second = post_event(
            client, event_body("customer.subscription.deleted", event_id="evt_2"), secret=SECRET
        )
    assert (first.status_code, second.status_code) == (200, 200)
    assert seen == ["evt_1", "evt_2"]


def test_a_redelivery_is_acknowledged_but_handled_once(fake: RecordingTransport) -> None:
    """The same event ID twice: 200 both times, the handler runs once."""
    seen: list[str] = []
    handlers = {"customer.subscription.deleted": lambda event: seen.append(event.id)}
    body = event_body("customer.subscription.deleted")
    with running(build_app(fake, handlers=handlers)) as client:
        first = post_event(client, body)
        again = post_event(client, body, timestamp=NOW + 60)
    assert first.json() == {"outcome": "processed"}
    assert (again.status_code, again.json()) == (200, {"outcome": "duplicate"})
    assert seen == ["evt_1"]


def test_a_custom_store_decides_what_is_a_duplicate(fake: RecordingTransport) -> None:
    """A store that has seen everything makes every delivery a duplicate."""

    class SeenItAll:
        def claim(self, event_id: str, lease_seconds: float) -> bool:
            return False

        def complete(self, event_id: str) -> None:
            raise AssertionError("nothing was claimed")

        def is_complete(self, event_id: str) -> bool:
            return True

        def release(self, event_id: str) -> None:
            raise AssertionError("nothing was claimed")

    seen: list[Event] = []
    app = build_app(
        fake,
        handlers={"customer.subscription.deleted": seen.append},
        webhook_options={"store": SeenItAll()},
    )
    with running(app) as client:
        response = post_event(client, event_body("customer.subscription.deleted"))
    assert response.json() == {"outcome": "duplicate"}
    assert seen == []


def test_the_event_store_is_called_off_the_event_loop_thread(fake: RecordingTransport) -> None:
    """A store backed by a database blocks: its calls run in the thread pool, not on the loop."""
    loop_threads: list[int] = []
    store_threads: dict[str, int] = {}

    class DatabaseStore(InMemoryEventStore):
        def claim(self, event_id: str, lease_seconds: float = 300.0) -> bool:
            store_threads["claim"] = threading.get_ident()
            return super().claim(event_id, lease_seconds)

        def complete(self, event_id: str) -> None:
            store_threads["complete"] = threading.get_ident()
            super().complete(event_id)

        def release(self, event_id: str) -> None:
            store_threads["release"] = threading.get_ident()
            super().release(event_id)

    async def failing_once(event: Event) -> None:
        loop_threads.append(threading.get_ident())
        if len(loop_threads) == 1:
            raise RuntimeError("the first delivery fails")

    app = build_app(
        fake,
        handlers={"customer.subscription.deleted": failing_once},
        webhook_options={"store": DatabaseStore()},
    )
    body = event_body("customer.subscription.deleted")
    with running(app) as client:
        assert post_event(client, body).status_code == 500
        assert post_event(client, body).status_code == 200
    assert set(store_threads) == {"claim", "complete", "release"}
    assert set(loop_threads).isdisjoint(store_threads.values())


def test_a_failing_handler_gives_500_without_details_and_the_retry_runs(
    fake: RecordingTransport, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler exception: 500 with no detail, logged with its traceback; the retry is handled."""
    calls: list[str] = []

    async def flaky(event: Event) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("password=hunter2 connection to db failed")

    body = event_body("customer.subscription.deleted")
    with running(build_app(fake, handlers={"customer.subscription.deleted": flaky})) as client:
        with caplog.at_level(logging.ERROR, "lattice_stripe.contrib"):
            failed = post_event(client, body)
        retried = post_event(client, body)
    assert (failed.status_code, failed.json()) == (500, {"outcome": "handler_failed"})
    assert b"hunter2" not in failed.content
    assert (retried.status_code, retried.json()) == (200, {"outcome": "processed"})
    [record] = caplog.records
    assert "evt_1" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def signed_request(body: bytes) -> Request:
    """A webhook POST of ``body``, signed now, as the ASGI server hands it to the endpoint."""
    header = generate_signature_header(body, SECRET, timestamp=NOW)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/webhook",
        "headers": [(b"stripe-signature", header.encode())],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


async def test_a_handler_cancelled_at_shutdown_leaves_the_event_to_stripes_retry() -> None:
    """A cancelled handler is not acknowledged; the redelivery is processed, not answered 409."""
    started = asyncio.Event()
    calls: list[str] = []

    async def slow(event: Event) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            started.set()
            await asyncio.Event().wait()

    endpoint = webhook_endpoint(
        SECRET, {"customer.subscription.deleted": slow}, clock=lambda: float(NOW)
    )
    body = event_body("customer.subscription.deleted")
    first = asyncio.ensure_future(endpoint(signed_request(body)))
    await asyncio.wait_for(started.wait(), timeout=5)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    retried = await endpoint(signed_request(body))
    assert (retried.status_code, json.loads(bytes(retried.body))) == (200, {"outcome": "processed"})
    assert calls == ["evt_1", "evt_1"]


def test_unknown_event_types_are_acknowledged(fake: RecordingTransport) -> None:
    """An event type without a handler gets 200 ignored, so Stripe stops sending it."""
    with running(build_app(fake, handlers={"customer.updated": lambda event: None})) as client:
        response = post_event(client, event_body("invoice.finalization_failed"))
    assert (response.status_code, response.json()) == (200, {"outcome": "ignored"})


def test_an_oversized_body_is_refused(fake: RecordingTransport) -> None:
    """A body over max_body_bytes gets 413 without being verified."""
    app = build_app(fake, webhook_options={"max_body_bytes": 64})
    with running(app) as client:
        response = post_event(client, event_body("customer.subscription.deleted"))
    assert (response.status_code, response.json()) == (413, {"outcome": "body_too_large"})


# -- the guide ---------------------------------------------------------------------


GUIDE_ENV = {
    "STRIPE_SECRET_KEY": "sk_test_GuideKey",
    "STRIPE_WEBHOOK_SECRETS": "whsec_new whsec_old",
}


@pytest.fixture
def guide(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The guide's Starlette application, deep-link endpoint and test, as one module."""
    for name, value in GUIDE_ENV.items():
        monkeypatch.setenv(name, value)
    return load_module("frameworks_guide_starlette", *STARLETTE_SNIPPETS)


STARLETTE_SNIPPETS = ("starlette-app", "starlette-deep-link", "starlette-test")


def test_the_guide_shows_exactly_these_starlette_snippets() -> None:
    """Every Starlette snippet of docs/frameworks.md is one these tests run."""
    assert {name for name in snippets() if name.startswith("starlette")} == set(STARLETTE_SNIPPETS)


def test_the_guides_own_test_passes(guide: Any) -> None:
    """The test shown in the guide passes against the application shown in the guide."""
    guide.test_the_portal_redirect_and_a_webhook()


def test_the_guides_deep_link_opens_the_users_subscription_cancel_flow(guide: Any) -> None:
    """cancel_subscription sends the logged-in user's subscription, from their record."""
    fake = RecordingTransport()
    app = guide.create_app(auth=guide.FakeLogin(), transport=fake)
    app.router.routes.append(Route("/cancel", guide.cancel_subscription, methods=["POST"]))
    with TestClient(app, base_url="https://testserver") as client:
        response = client.post("/cancel", follow_redirects=False)
    assert response.status_code == 303
    assert fake.last_request.params["flow_data"] == {
        "type": "subscription_cancel",
        "subscription_cancel": {"subscription": "sub_123"},
    }


def test_the_guides_app_refuses_anonymous_users(guide: Any) -> None:
    """Without a logged-in user, both portal endpoints of the guide answer 403."""

    class NoLogin(guide.AuthenticationBackend):  # type: ignore[misc]
        async def authenticate(self, conn: Any) -> None:
            return None

    fake = RecordingTransport()
    app = guide.create_app(auth=NoLogin(), transport=fake)
    app.router.routes.append(Route("/cancel", guide.cancel_subscription, methods=["POST"]))
    with TestClient(app, base_url="https://testserver") as client:
        assert client.post("/billing/portal").status_code == 403
        assert client.post("/cancel").status_code == 403
    assert fake.requests == []


def test_the_guides_webhook_handlers_update_the_apps_state(guide: Any) -> None:
    """The guide's handlers record a paused subscription and an attached payment method."""
    fake = RecordingTransport()
    paused = json.dumps(
        {
            "id": "evt_p",
            "object": "event",
            "type": "customer.subscription.paused",
            "created": NOW,
            "data": {
                "object": {
                    "id": "sub_9",
                    "object": "subscription",
                    "customer": "cus_9",
                    "status": "paused",
                }
            },
        }
    ).encode()
    attached = json.dumps(
        {
            "id": "evt_a",
            "object": "event",
            "type": "payment_method.attached",
            "created": NOW,
            "data": {
                "object": {
                    "id": "pm_9",
                    "object": "payment_method",
                    "type": "card",
                    "customer": "cus_9",
                }
            },
        }
    ).encode()
    with TestClient(guide.create_app(auth=guide.FakeLogin(), transport=fake)) as client:
        for body in (paused, attached):
            header = generate_signature_header(body, "whsec_old")
            response = client.post(
                "/stripe/webhook", content=body, headers={"Stripe-Signature": header}
            )
            assert response.status_code == 200
    assert guide.SUBSCRIPTION_STATUS["sub_9"] == "paused"
    assert guide.DEFAULT_PAYMENT_METHOD["cus_9"] == "pm_9"


def test_a_store_failing_to_record_completion_answers_500_and_the_retry_runs(
    fake: RecordingTransport,
) -> None:
    """complete() raising after the handler: 500 store_failed, then the redelivery is processed."""
    calls: list[str] = []
    completions: list[str] = []

    class FlakyStore(InMemoryEventStore):
        def complete(self, event_id: str) -> None:
            completions.append(event_id)
            if len(completions) == 1:
                raise ConnectionError("database unreachable")
            super().complete(event_id)

    app = build_app(
        fake,
        handlers={"customer.subscription.deleted": lambda event: calls.append(event.id)},
        webhook_options={"store": FlakyStore()},
    )
    body = event_body("customer.subscription.deleted")
    with running(app) as client:
        failed = post_event(client, body)
        retried = post_event(client, body)
    assert (failed.status_code, failed.json()) == (500, {"outcome": "store_failed"})
    assert (retried.status_code, retried.json()) == (200, {"outcome": "processed"})
    assert calls == ["evt_1", "evt_1"]


def test_an_async_event_store_is_awaited_on_the_event_loop(fake: RecordingTransport) -> None:
    """An async store's calls run on the loop's thread, not the thread pool, with the lease."""
    threads: dict[str, int] = {}
    leases: list[float] = []
    inner = InMemoryEventStore()

    class AsyncStore:
        async def claim(self, event_id: str, lease_seconds: float) -> bool:
            threads["claim"] = threading.get_ident()
            leases.append(lease_seconds)
            return inner.claim(event_id, lease_seconds)

        async def complete(self, event_id: str) -> None:
            threads["complete"] = threading.get_ident()
            inner.complete(event_id)

        async def is_complete(self, event_id: str) -> bool:
            return inner.is_complete(event_id)

        async def release(self, event_id: str) -> None:
            threads["release"] = threading.get_ident()
            inner.release(event_id)

    loop_threads: list[int] = []

    async def failing_once(event: Event) -> None:
        loop_threads.append(threading.get_ident())
        if len(loop_threads) == 1:
            raise RuntimeError("the first delivery fails")

    app = build_app(
        fake,
        handlers={"customer.subscription.deleted": failing_once},
        webhook_options={"store": AsyncStore(), "lease_seconds": 30.0},
    )
    body = event_body("customer.subscription.deleted")
    with running(app) as client:
        assert post_event(client, body).json() == {"outcome": "handler_failed"}
        assert post_event(client, body).json() == {"outcome": "processed"}
        assert post_event(client, body).json() == {"outcome": "duplicate"}
    assert set(threads.values()) == {loop_threads[0]}
    assert set(threads) == {"claim", "complete", "release"}
    assert leases == [30.0, 30.0, 30.0]


async def test_a_cancelled_delivery_releases_its_claim_in_an_async_store() -> None:
    """Cancelled mid-handler (a shutting-down server): the async store's claim is released."""
    inner = InMemoryEventStore()
    started = asyncio.Event()

    class AsyncStore:
        async def claim(self, event_id: str, lease_seconds: float) -> bool:
            return inner.claim(event_id, lease_seconds)

        async def complete(self, event_id: str) -> None:
            inner.complete(event_id)

        async def is_complete(self, event_id: str) -> bool:
            return inner.is_complete(event_id)

        async def release(self, event_id: str) -> None:
            inner.release(event_id)

    async def hang(event: Event) -> None:
        started.set()
        await asyncio.sleep(3600)

    endpoint = webhook_endpoint(
        SECRET, {"customer.subscription.deleted": hang}, store=AsyncStore(), clock=lambda: NOW
    )
    body = event_body("customer.subscription.deleted")
    header = generate_signature_header(body, SECRET, timestamp=NOW)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/stripe/webhook",
        "headers": [(b"stripe-signature", header.encode())],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    delivery: asyncio.Future[Response] = asyncio.ensure_future(endpoint(Request(scope, receive)))
    await started.wait()
    assert inner.claim("evt_1") is False  # held by the running handler
    delivery.cancel()
    with pytest.raises(asyncio.CancelledError):
        await delivery
    for _ in range(20):  # the release runs as a task of its own
        await asyncio.sleep(0)
    assert inner.claim("evt_1") is True
