"""The Flask integration: the extension, the portal redirect, the webhook blueprint, the testing
helper, on real Flask with its test client."""

import json
import logging
from collections.abc import Callable

import pytest

pytest.importorskip("flask")

from flask import Flask, get_flashed_messages, request
from werkzeug.test import TestResponse
from werkzeug.wrappers import Response

from doc_snippets import load_module, snippets
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.contrib import PORTAL_ERROR_MESSAGES
from lattice_stripe.contrib.flask import LatticeStripe, portal_error, recording_transport
from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.webhooks import Event
from lattice_stripe.webhooks import InMemoryEventStore, generate_signature_header

SECRET = "whsec_flask_new"
OLD_SECRET = "whsec_flask_old"
USERS = {"s1": "cus_123"}


def event_body(event_id: str = "evt_1", status: str = "canceled") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "customer.subscription.deleted",
            "created": 1_700_000_000,
            "data": {
                "object": {
                    "id": "sub_1",
                    "object": "subscription",
                    "customer": "cus_123",
                    "status": status,
                }
            },
        }
    ).encode()


def make_app(
    handler: Callable[[Event], object] | None = None, **config: object
) -> tuple[Flask, list[Event]]:
    """A small shop: login by cookie, the portal button, the account page, the webhook."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="tests",
        TRUSTED_HOSTS=["shop.example", "localhost"],
        LATTICE_STRIPE_API_KEY="sk_test_flask",
        LATTICE_STRIPE_WEBHOOK_SECRETS=[SECRET, OLD_SECRET],
        LATTICE_STRIPE_TRANSPORT=RecordingTransport(),
        **config,
    )
    stripe = LatticeStripe(app)
    seen: list[Event] = []

    @app.post("/billing/portal")
    def billing_portal() -> Response | tuple[str, int]:
        customer = USERS.get(request.cookies.get("session", ""))
        if customer is None:
            return "Forbidden", 403
        return stripe.redirect_to_portal(customer=customer, return_endpoint="account")

    @app.get("/account")
    def account() -> str:
        return f"account {get_flashed_messages()} {portal_error()}"

    app.register_blueprint(
        stripe.webhook_blueprint(
            {"customer.subscription.deleted": handler or seen.append},
            store=InMemoryEventStore(),
        ),
        url_prefix="/stripe",
    )
    return app, seen


def post_portal(app: Flask, host: str = "shop.example") -> TestResponse:
    client = app.test_client()
    client.set_cookie("session", "s1", domain=host)
    return client.post("/billing/portal", base_url=f"https://{host}")


def test_the_portal_redirect_is_a_303_never_cached() -> None:
    """The logged-in user's customer, the absolute return URL, 303, no-store, no-referrer."""
    app, _ = make_app()
    response = post_portal(app)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("https://billing.stripe.com/p/session/")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert b"billing.stripe.com" not in response.data
    assert recording_transport(app).last_request.params == {
        "customer": "cus_123",
        "return_url": "https://shop.example/account",
    }


def test_an_untrusted_host_is_refused_and_nothing_is_sent() -> None:
    """A Host outside TRUSTED_HOSTS is answered 400 before the view: nothing goes to Stripe."""
    app, _ = make_app()
    response = post_portal(app, host="evil.example")
    assert response.status_code == 400
    assert recording_transport(app).requests == []


def test_a_stripe_error_goes_back_with_a_user_safe_flash() -> None:
    """Stripe's failure: 303 back with the code and a flashed message, never Stripe's text."""
    app, _ = make_app()
    recording_transport(app).queue_error(400, message="No such customer: 'cus_123'")
    client = app.test_client()
    client.set_cookie("session", "s1", domain="shop.example")
    response = client.post("/billing/portal", base_url="https://shop.example")
    assert response.headers["Location"] == (
        "https://shop.example/account?billing_portal_error=failed"
    )
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert page.count(PORTAL_ERROR_MESSAGES["failed"]) == 2  # flashed, and from the code
    assert "No such customer" not in page


def test_an_http_return_url_is_logged_and_sent_back_not_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A ValidationError (http:// return URL) is logged as an error; the user goes back."""
    app, _ = make_app()
    client = app.test_client()
    client.set_cookie("session", "s1", domain="shop.example")
    with caplog.at_level(logging.ERROR, "lattice_stripe.contrib"):
        response = client.post("/billing/portal", base_url="http://shop.example")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("billing_portal_error=failed")
    assert recording_transport(app).requests == []
    assert any(record.levelno == logging.ERROR for record in caplog.records)


def test_a_bad_api_key_stops_init_app_naming_the_key() -> None:
    """A publishable or missing key fails LatticeStripe(app) with the config key in the error."""
    for key in ("pk_test_123", None):
        app = Flask(__name__)
        app.config["LATTICE_STRIPE_API_KEY"] = key
        with pytest.raises(ValidationError, match="LATTICE_STRIPE_API_KEY"):
            LatticeStripe(app)


def test_a_webhook_blueprint_without_secrets_fails_registration() -> None:
    """Registering the webhook blueprint with no signing secret configured fails at once."""
    app = Flask(__name__)
    app.config.update(
        LATTICE_STRIPE_API_KEY="sk_test_1", LATTICE_STRIPE_TRANSPORT=RecordingTransport()
    )
    stripe = LatticeStripe(app)
    with pytest.raises(ValidationError, match="WEBHOOK_SECRETS"):
        app.register_blueprint(stripe.webhook_blueprint({}))


def test_init_app_later_and_the_trusted_hosts_warning(caplog: pytest.LogCaptureFixture) -> None:
    """init_app works on an app made later; without TRUSTED_HOSTS outside debug it warns."""
    stripe = LatticeStripe()
    app = Flask(__name__)
    app.config.update(
        LATTICE_STRIPE_API_KEY="sk_test_1", LATTICE_STRIPE_TRANSPORT=RecordingTransport()
    )
    with caplog.at_level(logging.WARNING, "lattice_stripe.contrib"):
        stripe.init_app(app)
    assert any("TRUSTED_HOSTS" in record.getMessage() for record in caplog.records)
    with app.app_context():
        assert stripe.client is not None


def test_signed_events_reach_the_handler_once_under_either_secret() -> None:
    """Rotation: both secrets verify; a redelivery is a duplicate; bad signatures are 400."""
    app, seen = make_app()
    client = app.test_client()
    body = event_body()
    for secret in (OLD_SECRET, SECRET):
        response = client.post(
            "/stripe/webhook",
            data=body,
            headers={"Stripe-Signature": generate_signature_header(body, secret)},
        )
        assert response.status_code == 200
    assert json.loads(response.data) == {"outcome": "duplicate"}
    assert [event.subscription.status for event in seen] == ["canceled"]
    response = client.post("/stripe/webhook", data=body, headers={"Stripe-Signature": "t=1,v1=0"})
    assert (response.status_code, json.loads(response.data)) == (
        400,
        {"outcome": "no_matching_signature"},
    )
    assert client.get("/stripe/webhook").status_code == 405


def test_a_failing_handler_is_a_bare_500_and_the_retry_runs() -> None:
    """A raising handler: 500 without detail, the event released, Stripe's retry handled."""
    calls: list[str] = []

    def flaky(event: Event) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("secret detail")

    app, _ = make_app(flaky)
    client = app.test_client()
    body = event_body()
    headers = {"Stripe-Signature": generate_signature_header(body, SECRET)}
    failed = client.post("/stripe/webhook", data=body, headers=headers)
    assert (failed.status_code, b"secret detail" in failed.data) == (500, False)
    assert client.post("/stripe/webhook", data=body, headers=headers).status_code == 200
    assert calls == ["evt_1", "evt_1"]


def test_an_async_handler_is_run_through_ensure_sync() -> None:
    """A coroutine function handler is awaited (Flask's ensure_sync, asgiref)."""
    pytest.importorskip("asgiref")
    done: list[str] = []

    async def handler(event: Event) -> None:
        done.append(event.id)

    app, _ = make_app(handler)
    body = event_body()
    response = app.test_client().post(
        "/stripe/webhook",
        data=body,
        headers={"Stripe-Signature": generate_signature_header(body, SECRET)},
    )
    assert (response.status_code, done) == (200, ["evt_1"])


def test_an_oversized_webhook_body_is_413() -> None:
    """A body over the limit is refused before verification."""
    app = Flask(__name__)
    app.config.update(
        LATTICE_STRIPE_API_KEY="sk_test_1",
        LATTICE_STRIPE_WEBHOOK_SECRETS=SECRET,
        LATTICE_STRIPE_TRANSPORT=RecordingTransport(),
    )
    stripe = LatticeStripe(app)
    app.register_blueprint(stripe.webhook_blueprint({}, max_body_bytes=10))
    assert app.test_client().post("/webhook", data=b"x" * 11).status_code == 413


def test_recording_transport_says_how_to_set_it_up() -> None:
    """Without the fake configured, the testing helper names the config key."""
    app = Flask(__name__)
    app.config["LATTICE_STRIPE_API_KEY"] = "sk_test_1"
    LatticeStripe(app)
    with pytest.raises(RuntimeError, match="LATTICE_STRIPE_TRANSPORT"):
        recording_transport(app)
    app.extensions["lattice_stripe"].client.close()


def test_the_guide_shows_exactly_these_flask_snippets() -> None:
    """Every Flask snippet of docs/frameworks.md is one this module runs."""
    assert {name for name in snippets() if name.startswith("flask")} == {"flask-app", "flask-test"}


def test_the_guides_flask_test_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide's own Flask test runs against the guide's app."""
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_FlaskGuide")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", "whsec_FlaskGuide")
    guide = load_module("flask_guide", "flask-app", "flask-test")
    guide.test_the_flask_portal_and_a_webhook()


def test_the_guides_flask_app_refuses_a_visitor_without_a_customer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guide's portal view answers 403 when the session names no customer."""
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_FlaskGuide")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", "whsec_FlaskGuide")
    guide = load_module("flask_guide", "flask-app")
    app = guide.create_flask_app(LATTICE_STRIPE_TRANSPORT=RecordingTransport())
    response = app.test_client().post("/billing/portal", base_url="https://shop.example")
    assert response.status_code == 403
    assert recording_transport(app).requests == []
