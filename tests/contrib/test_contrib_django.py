"""The Django integration: settings checks, the portal views, the webhook views, the event store,
the testing helpers; real Django with its test client over a real SQLite file database."""

import functools
import json
import logging
import sys
import threading
import time
import types
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytest.importorskip("django")
pytest.importorskip("pytest_django")

import django
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connections
from django.http import HttpRequest
from django.test import Client, TestCase
from django.test.client import AsyncClient
from django.test.utils import override_settings
from django.urls import path

from djangoapp import billing
from djangoapp.stores import django_postgres_store, django_store
from doc_snippets import load_module, snippets, source
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.contrib import PORTAL_ERROR_MESSAGES
from lattice_stripe.contrib.django.apps import check_settings
from lattice_stripe.contrib.django.conf import get_client, read_settings
from lattice_stripe.contrib.django.models import WebhookEvent
from lattice_stripe.contrib.django.signals import event_signal
from lattice_stripe.contrib.django.store import DjangoEventStore
from lattice_stripe.contrib.django.testing import (
    StripeTestMixin,
    deliver,
    event_body,
    fake_stripe_django,  # noqa: F401  (the shipped fixture, used below)
    override_stripe,
    recording_transport,
)
from lattice_stripe.contrib.django.views import PortalView
from lattice_stripe.core.errors import EventStoreError
from lattice_stripe.core.webhooks import DEFAULT_PRUNE_BATCH as PRUNE_BATCH
from lattice_stripe.core.webhooks import Event
from lattice_stripe.webhooks import generate_signature_header
from services import PostgresServer
from store_contract import EventStoreContract, StoreRecipe

PORTAL = "/billing/portal/"
WEBHOOK = "/billing/webhook/"


@pytest.fixture
def fake() -> Iterator[RecordingTransport]:
    """The app's Stripe calls go to a fresh recording fake."""
    with override_stripe() as transport:
        yield transport


@pytest.fixture
def jo(db: None) -> User:
    """A user whose Stripe customer is cus_123."""
    return User.objects.create_user("jo", password="pw")


@pytest.fixture
def logged_in(jo: User) -> Client:
    """A test client logged in as jo."""
    client = Client()
    client.force_login(jo)
    return client


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    billing.SUBSCRIPTION_STATUS.clear()
    billing.HANDLED.clear()
    yield
    billing.SUBSCRIPTION_STATUS.clear()
    billing.HANDLED.clear()


def subscription_event(status: str, *, event_id: str = "evt_1", kind: str = "updated") -> bytes:
    return event_body(
        f"customer.subscription.{kind}",
        {"id": "sub_1", "object": "subscription", "customer": "cus_123", "status": status},
        event_id=event_id,
    )


def signed(body: bytes, secret: str = "whsec_new") -> dict[str, str]:
    return {"Stripe-Signature": generate_signature_header(body, secret)}


# -- settings and system checks -------------------------------------------------------


def check_ids(raw: object, *, debug: bool = False) -> set[str]:
    return {problem.id for problem in read_settings(raw, debug=debug)[1]}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "lattice_stripe.E001"),
        ({}, "lattice_stripe.E002"),
        ({"API_KEY": "sk_nope"}, "lattice_stripe.E002"),
        ({"API_KEY": "pk_test_abc"}, "lattice_stripe.E003"),
        ({"API_KEY": "sk_test_a", "WEBHOOK_SECRETS": ["secret"]}, "lattice_stripe.E004"),
        ({"API_KEY": "sk_test_a", "WEBHOOK_SECRETS": ["whsec_a\n"]}, "lattice_stripe.E004"),
        ({"API_KEY": "sk_test_a", "WEBHOOK_SECRETS": []}, "lattice_stripe.W001"),
        ({"API_KEY": "sk_test_a", "CUSTOMER_FOR": "no.such.module"}, "lattice_stripe.E005"),
        ({"API_KEY": "sk_test_a"}, "lattice_stripe.W002"),
        ({"API_KEY": "sk_test_a", "RETURN_URL": "http://shop.example/"}, "lattice_stripe.E006"),
        ({"API_KEY": "sk_test_a", "HANDLERS": {"x": "no.such.handler"}}, "lattice_stripe.E007"),
        ({"API_KEY": "sk_test_a", "TIMEOUT": "soon"}, "lattice_stripe.E009"),
        ({"API_KEY": "sk_test_a", "LEASE_SECONDS": 0}, "lattice_stripe.E009"),
        ({"API_KEY": "sk_test_a", "APIKEY": "sk_test_a"}, "lattice_stripe.E010"),
    ],
)
def test_each_settings_problem_has_its_check_id(raw: object, expected: str) -> None:
    """Each kind of settings problem is reported under its own check ID."""
    assert expected in check_ids(raw)


def test_an_http_return_url_is_fine_in_debug() -> None:
    """DEBUG allows an http:// return URL (local development)."""
    assert "lattice_stripe.E006" not in check_ids(
        {"API_KEY": "sk_test_a", "RETURN_URL": "http://localhost:8000/"}, debug=True
    )


def test_problems_never_show_a_secret() -> None:
    """The messages and hints name the key, never its value."""
    raw = {"API_KEY": "pk_test_SECRETVALUE", "WEBHOOK_SECRETS": ["nothex_SECRETVALUE"]}
    _, problems = read_settings(raw)
    assert problems
    assert not any("SECRETVALUE" in p.message + p.hint for p in problems)


def test_manage_py_check_reports_the_problems_with_hints() -> None:
    """The registered system check turns problems into Django errors with IDs and hints."""
    with override_settings(LATTICE_STRIPE={"API_KEY": "pk_live_x"}):
        found = check_settings()
    errors = [message for message in found if message.id == "lattice_stripe.E003"]
    assert errors
    assert errors[0].is_serious()
    assert errors[0].hint
    from django.core.management.base import SystemCheckError

    with override_settings(LATTICE_STRIPE={}), pytest.raises(SystemCheckError, match="E002"):
        call_command("check")


def test_a_project_without_messages_is_warned() -> None:
    """Without django.contrib.messages a failed redirect cannot say why: warning W003."""
    apps = [app for app in settings.INSTALLED_APPS if app != "django.contrib.messages"]
    with override_settings(INSTALLED_APPS=apps):
        ids = {message.id for message in check_settings()}
    assert "lattice_stripe.W003" in ids
    assert "lattice_stripe.W003" not in {message.id for message in check_settings()}


def test_the_project_settings_pass_the_checks() -> None:
    """The test project's settings are clean: manage.py check finds nothing serious."""
    assert not [message for message in check_settings() if message.is_serious()]


def test_a_broken_setting_fails_the_view_not_silently() -> None:
    """Using the client with an unusable setting raises ImproperlyConfigured naming the ID."""
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(LATTICE_STRIPE={}), pytest.raises(ImproperlyConfigured, match="E002"):
        get_client()


def test_the_shipped_migration_matches_the_model(db: None) -> None:
    """makemigrations finds nothing to do for the app: the migration is the model's table."""
    call_command("makemigrations", "lattice_stripe", "--check", "--dry-run", verbosity=0)
    assert WebhookEvent.objects.count() == 0


# -- the portal view ---------------------------------------------------------------------


def test_the_portal_view_answers_303_to_the_session_never_cached(
    fake: RecordingTransport, logged_in: Client
) -> None:
    """A logged-in POST creates a session for the user's customer and answers 303 to it."""
    response = logged_in.post(PORTAL, secure=True)
    assert response.status_code == 303
    assert response["Location"].startswith("https://billing.stripe.com/p/session/")
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    assert fake.last_request.params == {
        "customer": "cus_123",
        "return_url": "https://testserver/account/",
    }
    assert b"billing.stripe.com" not in response.content
    assert "billing.stripe.com" not in repr(response)
    assert "billing.stripe.com" not in str(response)


def test_the_customer_never_comes_from_the_request(
    fake: RecordingTransport, logged_in: Client
) -> None:
    """A customer or return URL in the form or the query is ignored."""
    logged_in.post(
        PORTAL + "?customer=cus_evil",
        {"customer": "cus_evil", "return_url": "https://evil.example"},
        secure=True,
    )
    assert fake.last_request.params["customer"] == "cus_123"
    assert fake.last_request.params["return_url"] == "https://testserver/account/"


def test_the_portal_view_is_post_only(fake: RecordingTransport, logged_in: Client) -> None:
    """GET is answered 405 and sends nothing."""
    assert logged_in.get(PORTAL, secure=True).status_code == 405
    assert fake.requests == []


def test_the_portal_view_is_csrf_protected(fake: RecordingTransport, jo: User) -> None:
    """Without the CSRF token the POST is refused 403 and nothing is sent."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(jo)
    assert client.post(PORTAL, secure=True).status_code == 403
    assert fake.requests == []


def test_an_anonymous_user_is_sent_to_log_in(fake: RecordingTransport, db: None) -> None:
    """Anonymous: a redirect to LOGIN_URL, back to the account page; nothing sent."""
    response = Client().post(PORTAL, secure=True)
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/account/"
    assert fake.requests == []


def test_a_user_without_a_customer_is_forbidden(fake: RecordingTransport, db: None) -> None:
    """A logged-in user with no Stripe customer is answered 403; nothing is sent."""
    client = Client()
    client.force_login(User.objects.create_user("ann"))
    assert client.post(PORTAL, secure=True).status_code == 403
    assert fake.requests == []


def test_a_forged_host_is_refused_before_stripe(
    fake: RecordingTransport, logged_in: Client
) -> None:
    """A Host outside ALLOWED_HOSTS is answered 400 (DisallowedHost); nothing is sent."""
    response = logged_in.post(PORTAL, secure=True, headers={"host": "evil.example"})
    assert response.status_code == 400
    assert fake.requests == []


def test_an_allowed_host_chooses_the_return_url(
    fake: RecordingTransport, logged_in: Client
) -> None:
    """The return URL is absolute on the request's (validated) host."""
    logged_in.post(PORTAL, secure=True, headers={"host": "shop.example"})
    assert fake.last_request.params["return_url"] == "https://shop.example/account/"


def test_a_stripe_error_goes_back_with_a_user_safe_message(
    fake: RecordingTransport, logged_in: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Stripe's failure: 303 back with a user-safe message; Stripe's text only in the log."""
    fake.queue_error(400, message="No such customer: 'cus_123'")
    with caplog.at_level(logging.WARNING, "lattice_stripe.contrib"):
        response = logged_in.post(PORTAL, secure=True)
    assert response.status_code == 303
    assert response["Location"] == "https://testserver/account/?billing_portal_error=failed"
    assert response["Cache-Control"] == "no-store"
    page = logged_in.get(response["Location"], secure=True).content.decode()
    assert PORTAL_ERROR_MESSAGES["failed"] in page
    assert "No such customer" not in page
    assert any("No such customer" in record.getMessage() for record in caplog.records)


def test_an_unreachable_stripe_is_unavailable(fake: RecordingTransport, logged_in: Client) -> None:
    """A connection failure goes back as ``unavailable``."""
    for _ in range(3):
        fake.queue_connection_error()
    with override_stripe(transport=fake, MAX_RETRIES=0):
        response = logged_in.post(PORTAL, secure=True)
    assert response["Location"].endswith("billing_portal_error=unavailable")


def test_an_http_return_url_becomes_a_logged_user_safe_redirect(
    fake: RecordingTransport, logged_in: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A ValidationError (http return URL) is logged and sent back with a message, not a 500."""
    with caplog.at_level(logging.ERROR, "lattice_stripe.contrib"):
        response = logged_in.post(PORTAL)  # plain http
    assert response.status_code == 303
    assert response["Location"] == "http://testserver/account/?billing_portal_error=failed"
    assert fake.requests == []
    assert any(
        record.levelno == logging.ERROR and "return_url" in record.getMessage()
        for record in caplog.records
    )


def test_http_localhost_is_allowed_with_the_setting(jo: User) -> None:
    """ALLOW_HTTP_LOCALHOST lets a development server on http://localhost open the portal."""
    client = Client()
    client.force_login(jo)
    with (
        override_stripe(ALLOW_HTTP_LOCALHOST=True) as fake,
        override_settings(ALLOWED_HOSTS=["localhost"]),
    ):
        response = client.post(PORTAL, headers={"host": "localhost"})
    assert response.status_code == 303
    assert fake.last_request.params["return_url"] == "http://localhost/account/"


class CancelView(PortalView):
    """A deep link: cancel the user's subscription (from the app's records)."""

    def get_session_params(self, request: HttpRequest) -> dict[str, object]:
        return {
            "flow_data": {
                "type": "subscription_cancel",
                "subscription_cancel": {"subscription": "sub_1"},
            }
        }


urlpatterns = [
    path("cancel/", CancelView.as_view(return_url="/account/?from=cancel"), name="cancel"),
    path("account/", billing.account, name="account"),
]


@pytest.mark.urls(__name__)
def test_the_class_based_view_takes_deep_link_params(
    fake: RecordingTransport, logged_in: Client
) -> None:
    """A PortalView subclass sends flow_data and its own return URL."""
    assert logged_in.post("/cancel/", secure=True).status_code == 303
    params = fake.last_request.params
    assert params["flow_data"]["type"] == "subscription_cancel"
    assert params["return_url"] == "https://testserver/account/?from=cancel"


# -- the webhook view ----------------------------------------------------------------


def test_a_signed_event_runs_the_settings_and_decorated_handlers(db: None) -> None:
    """Events under either secret reach the setting's and the decorated handlers, CSRF aside."""
    client = Client(enforce_csrf_checks=True)
    body = subscription_event("canceled", kind="deleted")
    response = client.post(WEBHOOK, body, "application/json", headers=signed(body, "whsec_old"))
    assert (response.status_code, json.loads(response.content)) == (200, {"outcome": "processed"})
    body = subscription_event("past_due", event_id="evt_2")
    assert client.post(WEBHOOK, body, "application/json", headers=signed(body)).status_code == 200
    assert billing.HANDLED == ["evt_1", "evt_2"]
    assert billing.SUBSCRIPTION_STATUS == {"sub_1": "past_due"}


def test_a_redelivery_is_handled_once(db: None) -> None:
    """The same event delivered again is answered 200 duplicate without running the handler."""
    body = subscription_event("active")
    first = deliver(Client(), body)
    second = deliver(Client(), body)
    assert json.loads(second.content) == {"outcome": "duplicate"}
    assert (first.status_code, billing.HANDLED) == (200, ["evt_1"])
    assert WebhookEvent.objects.get(event_id="evt_1").completed_at is not None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_header"),
        ({"Stripe-Signature": "t=1,v1=00"}, "no_matching_signature"),
        ({"Stripe-Signature": "garbage"}, "malformed_header"),
    ],
)
def test_bad_signatures_are_400_and_never_handled(
    db: None, headers: dict[str, str], reason: str
) -> None:
    """A missing, wrong or malformed signature is answered 400 with its reason."""
    response = Client().post(
        WEBHOOK, subscription_event("active"), "application/json", headers=headers
    )
    assert (response.status_code, json.loads(response.content)) == (400, {"outcome": reason})
    assert billing.HANDLED == []


def test_a_failing_handler_is_500_released_and_retried(
    db: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising handler: bare 500, logged, its writes undone, and Stripe's retry runs it."""
    calls: list[str] = []

    def flaky(sender: str, event: Event, **kwargs: object) -> None:
        User.objects.create_user(f"created-by-{len(calls)}")
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("database is down")

    event_signal("invoice.paid").connect(flaky)
    try:
        body = event_body("invoice.paid", {"id": "in_1", "object": "invoice"})
        with caplog.at_level(logging.ERROR, "lattice_stripe.contrib"):
            failed = deliver(Client(), body)
        assert (failed.status_code, json.loads(failed.content)) == (
            500,
            {"outcome": "handler_failed"},
        )
        assert b"database is down" not in failed.content
        assert not User.objects.filter(username="created-by-0").exists()
        assert deliver(Client(), body).status_code == 200
        assert calls == ["evt_test_1", "evt_test_1"]
        assert User.objects.filter(username="created-by-1").exists()
        assert any(record.exc_info for record in caplog.records)
    finally:
        event_signal("invoice.paid").disconnect(flaky)


def test_a_signal_receiver_gets_the_typed_event(db: None) -> None:
    """event_signal(type) is sent with the event; the type is then no longer ignored."""
    seen: list[str] = []

    def attached(sender: str, event: Event, **kwargs: object) -> None:
        seen.append(f"{sender}:{event.payment_method.id}")

    body = event_body(
        "payment_method.attached",
        {"id": "pm_1", "object": "payment_method", "type": "card", "customer": "cus_123"},
    )
    assert json.loads(deliver(Client(), body).content) == {"outcome": "ignored"}
    event_signal("payment_method.attached").connect(attached)
    try:
        assert json.loads(deliver(Client(), body).content) == {"outcome": "processed"}
    finally:
        event_signal("payment_method.attached").disconnect(attached)
    assert seen == ["payment_method.attached:pm_1"]


@pytest.mark.django_db(transaction=True)
def test_the_webhook_view_stays_outside_atomic_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ATOMIC_REQUESTS the claim commits at once; handlers run in their own transaction."""
    monkeypatch.setitem(connections["default"].settings_dict, "ATOMIC_REQUESTS", True)
    depth: list[int] = []

    def handler(sender: str, event: Event, **kwargs: object) -> None:
        depth.append(len(connections["default"].atomic_blocks))

    event_signal("invoice.paid").connect(handler)
    try:
        body = event_body("invoice.paid", {"id": "in_1", "object": "invoice"})
        assert deliver(Client(), body).status_code == 200
    finally:
        event_signal("invoice.paid").disconnect(handler)
    assert depth == [1]


def test_an_oversized_body_is_413(db: None) -> None:
    """A body over MAX_BODY_BYTES is refused 413 before it is verified."""
    body = subscription_event("active")
    with override_stripe(MAX_BODY_BYTES=len(body) - 1):
        response = deliver(Client(), body, secret="whsec_new")
    assert response.status_code == 413


def test_the_webhook_view_is_post_only(db: None) -> None:
    """GET is answered 405."""
    assert Client().get(WEBHOOK).status_code == 405


def slow_handler(event: Event) -> None:
    """Holds its claim long enough for the concurrent duplicates to arrive."""
    time.sleep(0.5)
    billing.subscription_changed(event)


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_deliveries_run_the_handler_exactly_once() -> None:
    """Eight threads delivering one event at once run its handlers exactly once."""
    body = subscription_event("active")
    start = threading.Barrier(8)

    def post(_: int) -> int:
        start.wait()
        try:
            response = deliver(Client(), body)
            return int(response.status_code)
        finally:
            connections.close_all()

    handlers = {"customer.subscription.updated": slow_handler}
    with override_stripe(HANDLERS=handlers), ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(post, range(8)))
    # slow_handler and the decorated handler of the type, each exactly once.
    assert billing.HANDLED == ["evt_1", "evt_1"]
    assert set(statuses) <= {200, 409}
    assert statuses.count(409) >= 1  # the deliveries did overlap
    assert WebhookEvent.objects.get(event_id="evt_1").completed_at is not None


# -- async views ------------------------------------------------------------------------


@pytest.mark.skipif(django.VERSION < (5, 0), reason="the async views need Django 5.0 or newer")
@pytest.mark.django_db(transaction=True)
async def test_the_async_views_redirect_and_handle_events() -> None:
    """The ASGI views redirect, run sync handlers and await async receivers."""
    from asgiref.sync import sync_to_async

    user = await sync_to_async(User.objects.create_user)("jo")
    client = AsyncClient()
    await client.aforce_login(user)
    awaited: list[str] = []

    async def on_invoice(sender: str, event: Event, **kwargs: object) -> None:
        awaited.append(event.id)

    with override_stripe() as fake:
        assert (await client.get("/async/portal/", secure=True)).status_code == 405
        assert (await client.get("/async/webhook/")).status_code == 405
        assert fake.requests == []
        response = await client.post("/async/portal/", secure=True)
        assert response.status_code == 303
        assert response["Cache-Control"] == "no-store"
        assert fake.last_request.params["customer"] == "cus_123"

        body = subscription_event("paused")
        response = await client.post(
            "/async/webhook/", body, "application/json", headers=signed(body)
        )
        assert response.status_code == 200
        assert billing.SUBSCRIPTION_STATUS == {"sub_1": "paused"}

        event_signal("invoice.paid").connect(on_invoice)
        try:
            body = event_body("invoice.paid", {"id": "in_1", "object": "invoice"}, event_id="evt_9")
            response = await client.post(
                "/async/webhook/", body, "application/json", headers=signed(body)
            )
        finally:
            event_signal("invoice.paid").disconnect(on_invoice)
    assert (response.status_code, awaited) == (200, ["evt_9"])


# -- the event store --------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_store_claims_once_under_a_live_lease_and_again_after_it(db: None) -> None:
    """A claim holds until its lease expires (a crashed worker), then another can take it."""
    clock = FakeClock()
    store = DjangoEventStore(clock=clock)
    assert store.claim("evt_1", 60) is True
    assert store.claim("evt_1", 60) is False
    clock.now += 61
    assert store.claim("evt_1", 60) is True
    assert store.claim("evt_1", 60) is False


def test_the_store_completes_releases_and_prunes(db: None) -> None:
    """Completed IDs are never claimed again until retention prunes them; released ones are."""
    clock = FakeClock()
    store = DjangoEventStore(clock=clock, retention_seconds=100)
    assert store.claim("evt_a", 60)
    store.release("evt_a")
    assert store.claim("evt_a", 60)
    store.complete("evt_a")
    assert store.is_complete("evt_a")
    assert not store.claim("evt_a", 60)
    store.release("evt_a")  # a handled event stays handled
    assert store.is_complete("evt_a")
    for index in range(PRUNE_BATCH + 5):
        WebhookEvent.objects.create(event_id=f"old_{index}", completed_at=clock.now)
    clock.now += 101
    store.claim("evt_b", 60)
    store.complete("evt_b")
    expired = WebhookEvent.objects.filter(completed_at__lt=clock.now - 100)
    assert expired.count() == PRUNE_BATCH + 6 - PRUNE_BATCH  # one batch per call
    store.claim("evt_c", 60)
    store.complete("evt_c")
    assert expired.count() == 0
    assert not store.is_complete("evt_a")
    assert store.claim("evt_a", 60)


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_one_event_let_exactly_one_through() -> None:
    """Ten threads claim one ID at once on the SQLite file: exactly one wins."""
    store = DjangoEventStore()
    start = threading.Barrier(10)

    def claim(_: int) -> bool:
        start.wait()
        try:
            return store.claim("evt_race", 60)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(claim, range(10)))
    assert results.count(True) == 1


@pytest.mark.django_db(transaction=True)
class TestDjangoEventStoreContract(EventStoreContract):
    """The shared EventStore contract on the test database's SQLite file, the migration applied."""

    @pytest.fixture
    def store_recipe(self) -> StoreRecipe:
        """Stores on the test database; a worker process opens the same file."""
        return functools.partial(django_store, str(connections["default"].settings_dict["NAME"]))


@pytest.fixture(scope="module")
def django_postgres(
    postgres_server: PostgresServer, django_db_blocker: Any
) -> Iterator[dict[str, Any]]:
    """A database of its own on the session's PostgreSQL, as the Django alias ``postgres``,
    with the migrations applied."""
    import psycopg

    name = f"django_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    database = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": postgres_server.user,
        "HOST": "127.0.0.1",
        "PORT": str(postgres_server.port),
    }
    connections.settings["postgres"] = connections.configure_settings({"default": database})[
        "default"
    ]
    try:
        with django_db_blocker.unblock():
            call_command("migrate", database="postgres", verbosity=0)
            connections["postgres"].close()
        yield database
    finally:
        connections["postgres"].close()
        del connections.settings["postgres"]
        with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


class TestDjangoEventStoreOnPostgresContract(EventStoreContract):
    """The shared EventStore contract with the Django store on a real PostgreSQL server."""

    @pytest.fixture
    def store_recipe(
        self, django_postgres: dict[str, Any], django_db_blocker: Any
    ) -> Iterator[StoreRecipe]:
        """Stores on the PostgreSQL alias, emptied first; a worker process connects the same."""
        with django_db_blocker.unblock():
            WebhookEvent.objects.using("postgres").all().delete()
            connections["postgres"].close()
            yield functools.partial(django_postgres_store, django_postgres)
            connections.close_all()


def test_a_database_failure_is_an_event_store_error(db: None) -> None:
    """A broken database surfaces as EventStoreError from the library's tree, chained."""
    store = DjangoEventStore(using="default")
    with connections["default"].cursor() as cursor:
        cursor.execute("DROP TABLE lattice_stripe_webhook_event")
    with pytest.raises(EventStoreError, match="claim failed") as caught:
        store.claim("evt_1")
    assert caught.value.__cause__ is not None


# -- the testing helpers --------------------------------------------------------------


def test_override_stripe_keeps_the_project_settings_and_records(
    fake: RecordingTransport,
) -> None:
    """override_stripe swaps in the fake and keeps the project's other values."""
    client = get_client()
    assert client.billing_portal is not None
    with override_stripe(RETURN_URL="/elsewhere/") as inner:
        assert inner is not fake
        from lattice_stripe.contrib.django.conf import stripe_settings

        assert stripe_settings().return_url == "/elsewhere/"
        assert stripe_settings().transport is inner
    from lattice_stripe.contrib.django.conf import stripe_settings

    assert stripe_settings().transport is fake


@pytest.mark.usefixtures("fake_stripe_django")
def test_the_fixture_for_pytest_django_records(logged_in: Client) -> None:
    """The shipped fixture routes the app's calls to its fake, found by recording_transport."""
    logged_in.post(PORTAL, secure=True)
    assert recording_transport().last_request.params["customer"] == "cus_123"


def test_recording_transport_says_how_to_set_it_up() -> None:
    """Without the override, recording_transport names the ways to get the fake."""
    with pytest.raises(RuntimeError, match="override_stripe"):
        recording_transport()


class TestTheMixinWithDjangosTestCase(StripeTestMixin, TestCase):
    """StripeTestMixin in a plain Django TestCase."""

    def test_self_stripe_records_the_portal_call(self) -> None:
        """self.stripe is the fake the portal view sent through."""
        self.client.force_login(User.objects.create_user("jo"))
        response = self.client.post(PORTAL, secure=True)
        assert response.status_code == 303
        assert self.stripe.last_request.params["customer"] == "cus_123"


def test_no_secret_in_the_settings_repr(fake: RecordingTransport) -> None:
    """The parsed settings' repr shows neither the key nor the webhook secrets."""
    from lattice_stripe.contrib.django.conf import stripe_settings

    text = repr(stripe_settings())
    assert "sk_test_DjangoTests" not in text
    assert "whsec_" not in text


# -- the guide --------------------------------------------------------------------------


@pytest.fixture
def shop(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """The guide's Django snippets as the ``shop`` app: its settings, billing module and URLs."""
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_DjangoGuide")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", "whsec_DjangoGuide")
    guide_billing = load_module("shop.billing", "django-billing")
    package = types.ModuleType("shop")
    package.billing = guide_billing  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "shop", package)
    monkeypatch.setitem(sys.modules, "shop.billing", guide_billing)
    guide_settings = load_module("shop.settings", "django-settings")
    urls = types.ModuleType("shop.urls")
    urls.__dict__.update(vars(guide_billing))
    exec(
        compile(source("django-urls", "django-test"), "frameworks.md:shop.urls", "exec"), vars(urls)
    )
    with override_settings(LATTICE_STRIPE=guide_settings.LATTICE_STRIPE, ROOT_URLCONF=urls):
        yield urls


def test_the_guide_shows_exactly_these_django_snippets() -> None:
    """Every Django snippet of docs/frameworks.md is one these tests run."""
    assert {name for name in snippets() if name.startswith("django")} == {
        "django-settings",
        "django-billing",
        "django-urls",
        "django-test",
    }


def test_the_guides_settings_pass_the_checks(shop: types.ModuleType) -> None:
    """The guide's LATTICE_STRIPE setting has no serious problem for manage.py check."""
    assert not [message for message in check_settings() if message.is_serious()]


def test_the_guides_own_django_test_passes(shop: types.ModuleType, db: None) -> None:
    """The guide's test runs against the guide's app: portal, error path, webhook."""
    shop.test_the_django_portal_and_a_webhook()


def test_the_guides_deep_link_opens_the_cancel_flow(shop: types.ModuleType, jo: User) -> None:
    """The guide's cancel view sends the subscription_cancel flow for the user's subscription."""
    client = Client()
    client.force_login(jo)
    with override_stripe() as fake:
        assert client.post("/account/cancel/", secure=True).status_code == 303
    assert fake.last_request.params["flow_data"] == {
        "type": "subscription_cancel",
        "subscription_cancel": {"subscription": "sub_123"},
    }


def test_the_guides_account_page_has_the_csrf_protected_button(
    shop: types.ModuleType, jo: User
) -> None:
    """The guide's account page posts to the portal view with a CSRF token that it accepts."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(jo)
    page = client.get("/account/", secure=True).content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    with override_stripe():
        response = client.post(
            "/billing/portal/",
            {"csrfmiddlewaretoken": token},
            secure=True,
            headers={"referer": "https://testserver/account/"},  # Django checks it over https
        )
    assert response.status_code == 303
