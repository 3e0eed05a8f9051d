"""The Pyramid integration: settings, stripe_portal, the webhook view, the testing include."""

import configparser
import importlib
import json
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyramid")
pytest.importorskip("webtest")

import webtest
from pyramid.config import Configurator
from pyramid.csrf import CookieCSRFStoragePolicy
from pyramid.events import NewResponse
from pyramid.exceptions import ConfigurationError
from pyramid.httpexceptions import HTTPForbidden
from pyramid.request import Request
from pyramid.response import Response

from doc_snippets import snippets, source
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.client import Client
from lattice_stripe.contrib import PORTAL_ERROR_MESSAGES
from lattice_stripe.contrib._shared import PORTAL_UNAVAILABLE_TEXT, UNTRUSTED_HOST_TEXT
from lattice_stripe.contrib.pyramid import SETTINGS_KEY, StripeSettings, get_client
from lattice_stripe.contrib.pyramid.testing import TEST_API_KEY, recording_transport
from lattice_stripe.core.http import HttpRequest, HttpResponse
from lattice_stripe.core.webhooks import Event
from lattice_stripe.testing import session_body
from lattice_stripe.webhooks import InMemoryEventStore, generate_signature_header

SECRET = "whsec_pyramid0secret"
OLD_SECRET = "whsec_pyramid0old"
NOW = 1_700_000_000
SESSIONS = {"s1": "cus_123"}
HTTPS = {"wsgi.url_scheme": "https", "HTTP_HOST": "shop.example"}
Handlers = Mapping[str, Callable[[Event], object]]


def logged_in_customer(request: Request) -> str | None:
    """The app's login: the session cookie names the user, whose customer ID the app knows."""
    return SESSIONS.get(request.cookies.get("session", ""))


def portal_view(request: Request) -> Response:
    """The app's portal view: the logged-in user's portal, back to the account page."""
    customer = logged_in_customer(request)
    if customer is None:
        raise HTTPForbidden()
    return request.stripe_portal.redirect(customer=customer, return_route="account")


def account_view(request: Request) -> Response:
    """The account page: shows the portal error message, if any."""
    return Response(request.stripe_portal.error_message or "account")


def configure(
    config: Configurator,
    *,
    handlers: Handlers | None = None,
    webhook_options: Mapping[str, Any] | None = None,
) -> None:
    """Routes and views of a small app using the integration (already included)."""
    config.add_route("account", "/account")
    config.add_route("portal", "/portal")
    config.add_route("hook", "/hook")
    config.add_view(account_view, route_name="account")
    config.add_view(portal_view, route_name="portal", request_method="POST")
    options: dict[str, Any] = {"clock": lambda: float(NOW), **(webhook_options or {})}
    config.add_stripe_webhook_view("hook", handlers or {}, **options)


def make_app(
    settings: Mapping[str, Any] | None = None,
    *,
    transport: RecordingTransport | None = None,
    handlers: Handlers | None = None,
    webhook_options: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] = HTTPS,
) -> Any:
    """A WebTest app, through the testing include or over ``transport``, logged in as cus_123."""
    all_settings = {
        "lattice_stripe.webhook_secrets": f"{OLD_SECRET}, {SECRET}",
        "lattice_stripe.allowed_hosts": "shop.example",
        **(settings or {}),
    }
    with Configurator(settings=all_settings) as config:
        if transport is None:
            config.include("lattice_stripe.contrib.pyramid.testing")
        else:
            config.include("lattice_stripe.contrib.pyramid")
            config.set_stripe_transport(transport)
        configure(config, handlers=handlers, webhook_options=webhook_options)
    app = webtest.TestApp(config.make_wsgi_app(), extra_environ=dict(environ))
    app.set_cookie("session", "s1")
    return app


def commit(settings: Mapping[str, Any]) -> Configurator:
    """Include the integration (over a fake transport) with ``settings`` and commit."""
    config = Configurator(settings=dict(settings))
    config.include("lattice_stripe.contrib.pyramid")
    config.set_stripe_transport(RecordingTransport())
    config.commit()
    return config


def session_response(url: str) -> Callable[[HttpRequest], HttpResponse]:
    """A fake-Stripe handler answering every create with a session whose URL is ``url``."""

    def answer(request: HttpRequest) -> HttpResponse:
        body = session_body(url=url, created=NOW, customer="cus_123")
        return HttpResponse(status=200, headers={}, body=body)

    return answer


# -- settings ----------------------------------------------------------------------


def test_a_missing_api_key_stops_the_start_naming_the_setting() -> None:
    """No lattice_stripe.api_key: committing raises ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=r"lattice_stripe\.api_key: required"):
        commit({})


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"lattice_stripe.api_key": "pk_test_PublishableKey"}, "api_key"),
        ({"lattice_stripe.api_key": "sk_test_x", "lattice_stripe.timeout": "soon"}, "timeout"),
        ({"lattice_stripe.api_key": "sk_test_x", "lattice_stripe.timeout": "0"}, "timeout"),
        (
            {"lattice_stripe.api_key": "sk_test_x", "lattice_stripe.max_retries": "-1"},
            "max_retries",
        ),
        (
            {"lattice_stripe.api_key": "sk_test_x", "lattice_stripe.max_retries": "two"},
            "max_retries",
        ),
        ({"lattice_stripe.api_key": "sk_test_x", "lattice_stripe.base_url": "ftp://x"}, "base_url"),
        (
            {"lattice_stripe.api_key": "sk_test_x", "lattice_stripe.allow_http_localhost": "maybe"},
            "allow_http_localhost",
        ),
        (
            {"lattice_stripe.api_key": "sk_live_x", "lattice_stripe.allow_http_localhost": "true"},
            "allow_http_localhost",
        ),
        ({"lattice_stripe.api_key": "sk_test_x", "lattice_stripe.max_retries": 2.7}, "max_retries"),
        (
            {"lattice_stripe.api_key": "sk_test_x", "lattice_stripe.max_retries": "2.0"},
            "max_retries",
        ),
        (
            {"lattice_stripe.api_key": "sk_test_x", "lattice_stripe.max_retries": True},
            "max_retries",
        ),
        ({"lattice_stripe.api_key": "sk_test_x", "lattice_stripe.timeout": True}, "timeout"),
        ({"lattice_stripe.api_key": "sk_test_x", "lattice_stripe.timeout": "inf"}, "timeout"),
        ({"lattice_stripe.api_key": "sk_test_x", "lattice_stripe.timeout": "1e400"}, "timeout"),
        (
            {"lattice_stripe.api_key": "sk_test_x", "lattice_stripe.webhook_secrets": 5},
            "webhook_secrets",
        ),
        (
            {
                "lattice_stripe.api_key": "sk_test_x",
                "lattice_stripe.webhook_secrets": ["whsec_a", 7],
            },
            "webhook_secrets",
        ),
    ],
)
def test_bad_settings_stop_the_start_naming_the_setting(
    settings: dict[str, object], named: str
) -> None:
    """Each bad value is a ConfigurationError naming lattice_stripe.<setting>, no key echoed."""
    with pytest.raises(ConfigurationError, match=rf"lattice_stripe\.{named}") as caught:
        commit(settings)
    assert "PublishableKey" not in str(caught.value)
    assert "whsec_a" not in str(caught.value)


def test_settings_are_parsed_into_the_client() -> None:
    """Strings from an .ini file become typed settings; secrets split on spaces and commas."""
    config = commit(
        {
            "lattice_stripe.api_key": " sk_test_FromIni ",
            "lattice_stripe.webhook_secrets": "whsec_a,whsec_b\n  whsec_c , ",
            "lattice_stripe.timeout": "20",
            "lattice_stripe.max_retries": "0",
            "lattice_stripe.base_url": "http://127.0.0.1:12111",
            "lattice_stripe.allow_http_localhost": "on",
        }
    )
    settings = config.registry[SETTINGS_KEY]
    assert settings == StripeSettings(
        api_key="sk_test_FromIni",
        webhook_secrets=("whsec_a", "whsec_b", "whsec_c"),
        timeout=20.0,
        max_retries=0,
        base_url="http://127.0.0.1:12111",
        allow_http_localhost=True,
    )
    assert "sk_test_FromIni" not in repr(settings)
    assert "whsec_a" not in repr(settings)


def test_settings_given_as_python_values_are_taken_as_they_are() -> None:
    """An app's own settings dict may hold ints, floats, bools and a list of secrets."""
    config = commit(
        {
            "lattice_stripe.api_key": "sk_test_x",
            "lattice_stripe.webhook_secrets": ["whsec_a ", "whsec_b"],
            "lattice_stripe.timeout": 12.5,
            "lattice_stripe.max_retries": 4,
            "lattice_stripe.allow_http_localhost": True,
        }
    )
    settings = config.registry[SETTINGS_KEY]
    assert settings.webhook_secrets == ("whsec_a", "whsec_b")
    assert (settings.timeout, settings.max_retries, settings.allow_http_localhost) == (
        12.5,
        4,
        True,
    )


def test_a_setting_left_blank_in_the_ini_file_takes_its_default() -> None:
    """``lattice_stripe.timeout =`` with nothing after it is unset, as Pyramid's own flags are."""
    blank = {
        f"lattice_stripe.{name}": " "
        for name in (
            "webhook_secrets",
            "timeout",
            "max_retries",
            "base_url",
            "allow_http_localhost",
        )
    }
    settings = commit({"lattice_stripe.api_key": "sk_test_x", **blank}).registry[SETTINGS_KEY]
    assert settings == StripeSettings(api_key="sk_test_x")


def test_settings_are_read_at_commit_not_at_include() -> None:
    """A setting changed after the include but before the commit is the one used."""
    config = Configurator(settings={"lattice_stripe.api_key": "sk_test_x"})
    config.include("lattice_stripe.contrib.pyramid")
    config.set_stripe_transport(RecordingTransport())
    config.get_settings()["lattice_stripe.timeout"] = "7"
    config.commit()
    assert config.registry[SETTINGS_KEY].timeout == 7.0


def test_production_uses_one_default_client_per_application() -> None:
    """Without a transport set, the app's single Client sends through the stdlib transport."""
    config = Configurator(settings={"lattice_stripe.api_key": "sk_test_x"})
    config.include("lattice_stripe.contrib.pyramid")
    config.commit()
    client = get_client(config.registry)
    assert isinstance(client, Client)
    assert "transport=StdlibTransport" in repr(client)
    assert get_client(config.registry) is client
    client.close()


def test_a_webhook_view_without_secrets_stops_the_start() -> None:
    """add_stripe_webhook_view with no lattice_stripe.webhook_secrets is a ConfigurationError."""
    config = Configurator(settings={"lattice_stripe.api_key": "sk_test_x"})
    config.include("lattice_stripe.contrib.pyramid.testing")
    config.add_route("hook", "/hook")
    config.add_stripe_webhook_view("hook", {})
    with pytest.raises(ConfigurationError, match=r"lattice_stripe\.webhook_secrets"):
        config.commit()


def test_without_the_include_the_error_says_how_to_set_it_up() -> None:
    """get_client on a bare registry raises RuntimeError naming the include."""
    with pytest.raises(RuntimeError, match=r"lattice_stripe\.contrib\.pyramid"):
        get_client(Configurator().registry)


# -- the portal redirect ---------------------------------------------------------


def test_the_redirect_is_a_303_to_the_session_never_cached() -> None:
    """303 to the session URL with no-store and no-referrer; the URL is not in the body."""
    fake = RecordingTransport(session_response("https://billing.stripe.com/p/session/test_abc"))
    app = make_app({"lattice_stripe.api_key": "sk_test_x"}, transport=fake)
    response = app.post("/portal", status=303)
    assert response.headers["Location"] == "https://billing.stripe.com/p/session/test_abc"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert b"test_abc" not in response.body


def test_the_return_url_is_the_absolute_url_of_the_return_route() -> None:
    """return_route="account" becomes https://<host>/account via request.route_url."""
    app = make_app()
    app.post("/portal", status=303)
    fake = recording_transport(app.app.registry)
    assert fake.last_request.params["return_url"] == "https://shop.example/account"


def test_the_customer_comes_from_the_login_never_the_request() -> None:
    """A customer in the query string or the form is ignored; the session's user counts."""
    app = make_app()
    app.post("/portal?customer=cus_evil", {"customer": "cus_evil"}, status=303)
    assert recording_transport(app.app.registry).last_request.params["customer"] == "cus_123"


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (400, "invalid_request_error", "failed"),
        (401, "invalid_request_error", "failed"),
        (429, "invalid_request_error", "unavailable"),
        (503, "api_error", "unavailable"),
    ],
)
def test_a_stripe_error_redirects_back_with_a_user_safe_message(
    status: int, error_type: str, code: str
) -> None:
    """Stripe errors become a 303 back with a code; the page shows a fixed message only."""
    app = make_app({"lattice_stripe.max_retries": "0"})
    recording_transport(app.app.registry).queue_error(
        status, type=error_type, message="Internal detail: no customer cus_123"
    )
    response = app.post("/portal", status=303)
    assert response.headers["Location"] == (
        f"https://shop.example/account?billing_portal_error={code}"
    )
    assert response.headers["Cache-Control"] == "no-store"
    page = response.follow().text
    assert page == PORTAL_ERROR_MESSAGES[code]
    assert "Internal detail" not in page


def test_an_unreachable_stripe_redirects_back_as_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A connection failure: 303 back with unavailable, and a warning in the log."""
    app = make_app({"lattice_stripe.max_retries": "0"})
    recording_transport(app.app.registry).queue_connection_error("connection reset")
    with caplog.at_level(logging.WARNING, "lattice_stripe.contrib"):
        response = app.post("/portal", status=303)
    assert response.headers["Location"].endswith("?billing_portal_error=unavailable")
    assert any("APIConnectionError" in record.getMessage() for record in caplog.records)


def test_an_unknown_error_code_shows_nothing() -> None:
    """error_message is None for a code the library did not set."""
    app = make_app()
    assert app.get("/account", {"billing_portal_error": "<b>pwned</b>"}).text == "account"


def test_url_returns_the_session_url_and_params_pass_through() -> None:
    """stripe_portal.url gives the session URL; flow_data and locale reach Stripe."""
    fake = RecordingTransport(session_response("https://billing.stripe.com/p/session/test_u"))
    urls: list[str] = []

    def deep_link(request: Request) -> Response:
        urls.append(
            request.stripe_portal.url(
                customer="cus_123",
                return_url="https://shop.example/account",
                locale="de",
                flow_data={"type": "payment_method_update"},
            )
        )
        return Response("ok")

    with Configurator(settings={"lattice_stripe.api_key": "sk_test_x"}) as config:
        config.include("lattice_stripe.contrib.pyramid")
        config.set_stripe_transport(fake)
        config.add_route("deep", "/deep")
        config.add_view(deep_link, route_name="deep")
    webtest.TestApp(config.make_wsgi_app()).get("/deep")
    assert urls == ["https://billing.stripe.com/p/session/test_u"]
    assert fake.last_request.params["locale"] == "de"
    assert fake.last_request.params["flow_data"] == {"type": "payment_method_update"}


@pytest.mark.parametrize(
    "where", [{}, {"return_route": "account", "return_url": "https://shop.example/account"}]
)
def test_exactly_one_return_target_is_required(where: dict[str, str]) -> None:
    """Neither or both of return_route and return_url is a TypeError."""
    errors: list[Exception] = []

    def view(request: Request) -> Response:
        try:
            request.stripe_portal.redirect(customer="cus_123", **where)
        except TypeError as error:
            errors.append(error)
        return Response("ok")

    with Configurator() as config:
        config.include("lattice_stripe.contrib.pyramid.testing")
        config.add_route("v", "/v")
        config.add_view(view, route_name="v")
    webtest.TestApp(config.make_wsgi_app()).get("/v")
    [error] = errors
    assert "exactly one" in str(error)


def test_http_localhost_needs_the_setting() -> None:
    """allow_http_localhost = true lets http://localhost return URLs through."""
    local = {"wsgi.url_scheme": "http", "HTTP_HOST": "localhost:6543"}
    hosts = {"lattice_stripe.allowed_hosts": "localhost"}
    app = make_app({**hosts, "lattice_stripe.allow_http_localhost": "true"}, environ=local)
    app.post("/portal", status=303)
    fake = recording_transport(app.app.registry)
    assert fake.last_request.params["return_url"] == "http://localhost:6543/account"
    strict = make_app(hosts, environ=local)
    assert strict.post("/portal", status=500).text == PORTAL_UNAVAILABLE_TEXT
    assert recording_transport(strict.app.registry).requests == []


@pytest.mark.parametrize(
    "host", ["evil.example", "shop.example.evil.example", "shop..example", "bad host"]
)
def test_a_forged_host_is_refused_with_a_400_and_nothing_is_sent(host: str) -> None:
    """A Host outside lattice_stripe.allowed_hosts gets a plain 400; Stripe is never called."""
    app = make_app(environ={**HTTPS, "HTTP_HOST": host})
    response = app.post("/portal", status=400)
    assert response.text == UNTRUSTED_HOST_TEXT
    assert "Location" not in response.headers
    assert recording_transport(app.app.registry).requests == []


def test_allowed_hosts_accept_a_domain_pattern_and_any_port() -> None:
    """'.shop.example' admits the domain and its subdomains, whatever the port."""
    settings = {"lattice_stripe.allowed_hosts": ".shop.example"}
    for host in ("shop.example", "eu.shop.example:8443"):
        make_app(settings, environ={**HTTPS, "HTTP_HOST": host}).post("/portal", status=303)


def test_a_live_key_needs_allowed_hosts() -> None:
    """A live key without lattice_stripe.allowed_hosts stops the start, naming the setting."""
    with pytest.raises(ConfigurationError, match=r"lattice_stripe\.allowed_hosts"):
        commit({"lattice_stripe.api_key": "sk_live_51Hosts"})


def test_stripe_portal_is_made_once_per_request() -> None:
    """request.stripe_portal is reified: the same helper for the whole request."""
    same: list[bool] = []

    def view(request: Request) -> Response:
        same.append(request.stripe_portal is request.stripe_portal)
        return Response("ok")

    with Configurator() as config:
        config.include("lattice_stripe.contrib.pyramid.testing")
        config.add_route("v", "/v")
        config.add_view(view, route_name="v")
    webtest.TestApp(config.make_wsgi_app()).get("/v")
    assert same == [True]


# -- the webhook view --------------------------------------------------------------


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
                    "status": "active",
                    "cancel_at_period_end": True,
                }
            },
        },
        indent=2,
    ).encode()


def post_event(
    app: Any, body: bytes, *, secret: str = SECRET, timestamp: int = NOW, status: int = 200
) -> Any:
    """POST ``body`` to the webhook view, signed with ``secret`` at ``timestamp``."""
    return app.post(
        "/hook",
        body,
        headers={"Stripe-Signature": generate_signature_header(body, secret, timestamp=timestamp)},
        content_type="application/json",
        status=status,
    )


def test_a_signed_event_reaches_its_handler_typed() -> None:
    """A valid delivery answers 200 processed and the handler gets the typed event."""
    seen: list[bool] = []
    handlers = {
        "customer.subscription.updated": lambda event: seen.append(
            event.subscription.cancel_at_period_end
        )
    }
    response = post_event(make_app(handlers=handlers), event_body("customer.subscription.updated"))
    assert response.json == {"outcome": "processed"}
    assert seen == [True]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("body", "no_matching_signature"),
        ("wrong_secret", "no_matching_signature"),
        ("old", "timestamp_out_of_tolerance"),
        ("future", "timestamp_out_of_tolerance"),
        ("missing", "missing_header"),
        ("no_v1", "malformed_header"),
        ("non_numeric_t", "malformed_header"),
        ("huge", "malformed_header"),
        ("reencoded", "no_matching_signature"),
    ],
)
def test_bad_deliveries_are_answered_400_and_never_handled(tamper: str, reason: str) -> None:
    """Tampered, foreign, stale, future, unsigned, malformed and re-encoded bodies get 400."""
    seen: list[Event] = []
    app = make_app(handlers={"customer.subscription.updated": seen.append})
    body = event_body("customer.subscription.updated")
    good = generate_signature_header(body, SECRET, timestamp=NOW)
    cases: dict[str, tuple[bytes, str | None]] = {
        "body": (body.replace(b"active", b"paused"), good),
        "wrong_secret": (body, generate_signature_header(body, "whsec_x", timestamp=NOW)),
        "old": (body, generate_signature_header(body, SECRET, timestamp=NOW - 301)),
        "future": (body, generate_signature_header(body, SECRET, timestamp=NOW + 301)),
        "missing": (body, None),
        "no_v1": (body, f"t={NOW}"),
        "non_numeric_t": (body, "t=12:00," + good.partition(",")[2]),
        "huge": (body, good + ",v0=" + "a" * 10_000),
        "reencoded": (json.dumps(json.loads(body)).encode(), good),
    }
    payload, header = cases[tamper]
    response = app.post(
        "/hook",
        payload,
        headers={} if header is None else {"Stripe-Signature": header},
        content_type="application/json",
        status=400,
    )
    assert response.json == {"outcome": reason}
    assert seen == []


def test_a_rolled_secret_still_verifies_and_redeliveries_are_handled_once() -> None:
    """Both configured secrets verify; the same event twice is handled once."""
    seen: list[str] = []
    app = make_app(handlers={"customer.subscription.updated": lambda event: seen.append(event.id)})
    first = post_event(app, event_body("customer.subscription.updated"), secret=OLD_SECRET)
    again = post_event(app, event_body("customer.subscription.updated"), timestamp=NOW + 30)
    assert first.json == {"outcome": "processed"}
    assert again.json == {"outcome": "duplicate"}
    assert seen == ["evt_1"]


def test_a_failing_handler_raises_a_bare_500_and_the_retry_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The 500 is raised (request.exception is set, so pyramid_tm aborts) and has no detail."""
    calls: list[str] = []
    exceptions: list[object] = []

    def flaky(event: Event) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("password=hunter2 database unreachable")

    with Configurator(settings={"lattice_stripe.webhook_secrets": SECRET}) as config:
        config.include("lattice_stripe.contrib.pyramid.testing")
        configure(config, handlers={"customer.subscription.updated": flaky})
        config.add_subscriber(lambda event: exceptions.append(event.request.exception), NewResponse)
    app = webtest.TestApp(config.make_wsgi_app())
    body = event_body("customer.subscription.updated")
    with caplog.at_level(logging.ERROR, "lattice_stripe.contrib"):
        failed = post_event(app, body, status=500)
    assert failed.json == {"outcome": "handler_failed"}
    assert b"hunter2" not in failed.body
    assert getattr(exceptions[0], "status_code", None) == 500
    assert any(record.exc_info for record in caplog.records)
    assert post_event(app, body).json == {"outcome": "processed"}
    assert calls == ["evt_1", "evt_1"]


def test_a_worker_exiting_mid_handler_leaves_the_event_to_stripes_retry() -> None:
    """A handler cut short by SystemExit (a worker timeout) is not left running: the retry runs."""
    calls: list[str] = []

    def interrupted(event: Event) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise SystemExit(1)

    app = make_app(handlers={"customer.subscription.updated": interrupted})
    body = event_body("customer.subscription.updated")
    with pytest.raises(SystemExit):
        post_event(app, body)
    assert post_event(app, body).json == {"outcome": "processed"}
    assert calls == ["evt_1", "evt_1"]


def test_unknown_event_types_are_acknowledged() -> None:
    """An event type without a handler gets 200 ignored."""
    app = make_app(handlers={"customer.updated": lambda event: None})
    assert post_event(app, event_body("charge.refunded")).json == {"outcome": "ignored"}


def test_an_oversized_body_is_refused() -> None:
    """A body over max_body_bytes gets 413."""
    app = make_app(webhook_options={"max_body_bytes": 64})
    response = post_event(app, event_body("customer.subscription.updated"), status=413)
    assert response.json == {"outcome": "body_too_large"}


def test_the_webhook_view_is_exempt_from_csrf_and_post_only() -> None:
    """With CSRF required app-wide, Stripe's POST still passes; a GET finds no view."""
    with Configurator(settings={"lattice_stripe.webhook_secrets": SECRET}) as config:
        config.include("lattice_stripe.contrib.pyramid.testing")
        config.set_csrf_storage_policy(CookieCSRFStoragePolicy())
        config.set_default_csrf_options(require_csrf=True)
        configure(config, handlers={"customer.subscription.updated": lambda event: None})
    app = webtest.TestApp(config.make_wsgi_app())
    assert post_event(app, event_body("customer.subscription.updated")).status_code == 200
    app.set_cookie("session", "s1")
    app.post("/portal", status=400)
    app.get("/hook", status=404)


# -- the testing include -----------------------------------------------------------


def test_the_testing_include_works_from_pyramid_includes() -> None:
    """pyramid.includes = lattice_stripe.contrib.pyramid.testing swaps in the fake."""
    settings = {
        "pyramid.includes": "lattice_stripe.contrib.pyramid.testing",
        "lattice_stripe.webhook_secrets": SECRET,
        "lattice_stripe.allowed_hosts": "shop.example",
    }
    with Configurator(settings=settings) as config:
        config.include("lattice_stripe.contrib.pyramid")
        configure(config)
    app = webtest.TestApp(config.make_wsgi_app(), extra_environ=HTTPS)
    app.set_cookie("session", "s1")
    app.post("/portal", status=303)
    fake = recording_transport(config.registry)
    assert [request.path for request in fake.requests] == ["/v1/billing_portal/sessions"]
    assert config.registry[SETTINGS_KEY].api_key == TEST_API_KEY


def test_the_testing_include_keeps_an_api_key_that_is_set() -> None:
    """A configured lattice_stripe.api_key is not replaced by the test key."""
    config = Configurator(settings={"lattice_stripe.api_key": "sk_test_Mine"})
    config.include("lattice_stripe.contrib.pyramid.testing")
    config.commit()
    assert config.registry[SETTINGS_KEY].api_key == "sk_test_Mine"


def test_recording_transport_needs_the_testing_include() -> None:
    """recording_transport on a production set-up raises RuntimeError naming the include."""
    config = Configurator(settings={"lattice_stripe.api_key": "sk_test_x"})
    config.include("lattice_stripe.contrib.pyramid")
    config.commit()
    with pytest.raises(RuntimeError, match=r"contrib\.pyramid\.testing"):
        recording_transport(config.registry)
    get_client(config.registry).close()


# -- the guide ---------------------------------------------------------------------

PYRAMID_SNIPPETS = ("pyramid-ini", "pyramid-billing", "pyramid-test")


@pytest.fixture
def billing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The guide's billing module, with its test, importable as myapp.billing (as the .ini says).

    Pyramid includes only modules with a source file, so the snippets are written to one.
    """
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRETS"):
        monkeypatch.delenv(name, raising=False)
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "billing.py").write_text(source("pyramid-billing", "pyramid-test"))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield importlib.import_module("myapp.billing")
    finally:
        sys.modules.pop("myapp.billing", None)
        sys.modules.pop("myapp", None)


def test_the_guide_shows_exactly_these_pyramid_snippets() -> None:
    """Every Pyramid snippet of docs/frameworks.md is one these tests run."""
    assert {name for name in snippets() if name.startswith("pyramid")} == set(PYRAMID_SNIPPETS)


def test_the_guides_own_test_passes(billing: Any) -> None:
    """The test shown in the guide passes against the billing module shown in the guide."""
    billing.test_the_portal_redirect_and_a_webhook()


def guide_ini_settings() -> dict[str, str]:
    """The [app:main] settings of the guide's .ini snippet, as PasteDeploy hands them to main."""
    parser = configparser.ConfigParser()
    parser.read_string(snippets()["pyramid-ini"])
    return {key: value for key, value in parser["app:main"].items() if key != "use"}


def test_the_guides_ini_and_environment_configure_the_app(
    billing: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The .ini's includes and settings, plus secrets from the environment, make a working app."""
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_FromEnvironment")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", "whsec_env1 whsec_env2")
    fake = RecordingTransport()
    with Configurator(settings=guide_ini_settings()) as config:
        config.set_stripe_transport(fake)
        config.set_security_policy(billing.FakeLogin())
    app = webtest.TestApp(config.make_wsgi_app(), extra_environ=HTTPS)
    settings = config.registry[SETTINGS_KEY]
    assert (settings.api_key, settings.timeout, settings.max_retries) == (
        "sk_test_FromEnvironment",
        20.0,
        2,
    )
    app.post("/billing/portal", status=303)
    assert fake.last_request.params["customer"] == "cus_123"
    body = event_body("customer.subscription.updated", event_id="evt_env")
    app.post(
        "/stripe/webhook",
        body,
        headers={"Stripe-Signature": generate_signature_header(body, "whsec_env2")},
        content_type="application/json",
        status=200,
    )
    assert billing.SUBSCRIPTION_STATUS["sub_1"] == "active"


def test_the_guides_app_needs_a_key_from_settings_or_environment(billing: Any) -> None:
    """Without STRIPE_SECRET_KEY and an api_key setting, the guide's app does not start."""
    with pytest.raises(ConfigurationError, match=r"lattice_stripe\.api_key"):
        Configurator(settings=guide_ini_settings()).commit()


def test_the_guides_portal_view_refuses_anonymous_users(billing: Any) -> None:
    """Without an identity, the guide's portal view answers 403 and calls nothing."""
    with Configurator(settings={"lattice_stripe.webhook_secrets": SECRET}) as config:
        config.include("lattice_stripe.contrib.pyramid.testing")
        config.include(billing.includeme)
    app = webtest.TestApp(config.make_wsgi_app())
    app.post("/billing/portal", status=403)
    assert recording_transport(config.registry).requests == []


def test_a_store_failing_to_record_completion_raises_500_and_the_retry_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """complete() raising after the handler: a raised 500 store_failed; the retry is handled."""
    calls: list[str] = []
    exceptions: list[object] = []
    completions: list[str] = []

    class FlakyStore(InMemoryEventStore):
        def complete(self, event_id: str) -> None:
            completions.append(event_id)
            if len(completions) == 1:
                raise ConnectionError("database unreachable")
            super().complete(event_id)

    with Configurator(settings={"lattice_stripe.webhook_secrets": SECRET}) as config:
        config.include("lattice_stripe.contrib.pyramid.testing")
        configure(
            config,
            handlers={"customer.subscription.updated": lambda event: calls.append(event.id)},
            webhook_options={"store": FlakyStore()},
        )
        config.add_subscriber(lambda event: exceptions.append(event.request.exception), NewResponse)
    app = webtest.TestApp(config.make_wsgi_app())
    body = event_body("customer.subscription.updated")
    with caplog.at_level(logging.ERROR, "lattice_stripe.webhooks"):
        failed = post_event(app, body, status=500)
    assert failed.json == {"outcome": "store_failed"}
    assert getattr(exceptions[0], "status_code", None) == 500
    assert any(record.exc_info for record in caplog.records)
    assert post_event(app, body).json == {"outcome": "processed"}
    assert calls == ["evt_1", "evt_1"]


def test_the_webhook_view_claims_events_for_the_lease_it_is_given() -> None:
    """lease_seconds reaches the store's claim of each event."""
    leases: list[float] = []

    class RecordingStore(InMemoryEventStore):
        def claim(self, event_id: str, lease_seconds: float = 0.0) -> bool:
            leases.append(lease_seconds)
            return super().claim(event_id, lease_seconds)

    app = make_app(
        handlers={"customer.subscription.updated": lambda event: None},
        webhook_options={"store": RecordingStore(), "lease_seconds": 42.0},
    )
    assert post_event(app, event_body("customer.subscription.updated")).json == {
        "outcome": "processed"
    }
    assert leases == [42.0]


def test_an_async_event_store_is_refused_by_the_synchronous_view() -> None:
    """Pyramid views are synchronous: an async store stops the configuration, saying why."""

    class AsyncStore:
        async def claim(self, event_id: str, lease_seconds: float) -> bool:
            return True

        async def complete(self, event_id: str) -> None: ...

        async def is_complete(self, event_id: str) -> bool:
            return False

        async def release(self, event_id: str) -> None: ...

    with pytest.raises(ConfigurationError, match="synchronous event store"):
        make_app(handlers={}, webhook_options={"store": AsyncStore()})
