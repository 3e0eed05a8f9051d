"""The downstream testing kit: the pytest plugin's fixtures, the recorder's assertions, the
emulator server, and the testing guide run as a downstream test module."""

import ast
import http.server
import importlib.metadata
import json
import socket
import threading
from collections.abc import Iterator
from importlib import resources

import pytest
import urllib3

from doc_pages import DOCS, pytest_module
from lattice_stripe import APIError, InvalidRequestError
from lattice_stripe.testing import ANY, EmulatorServer, StripeRecorder, emulator_server
from lattice_stripe.webhooks import construct_event

pytest_plugins = ["pytester"]

# What a downstream project's pytest configuration would hold.
INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""
CANCEL = {"type": "subscription_cancel", "subscription_cancel": {"subscription": "sub_1"}}


@pytest.fixture
def downstream(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project directory with a strict pytest configuration and no conftest."""
    pytester.makeini(INI)
    return pytester


def test_the_plugin_is_registered_under_pytest11() -> None:
    """Installing the package registers lattice_stripe.testing.plugin as a pytest plugin."""
    plugins = {
        entry.name: entry.value for entry in importlib.metadata.entry_points(group="pytest11")
    }
    assert plugins["lattice_stripe"] == "lattice_stripe.testing.plugin"


def test_the_testing_guide_passes_as_a_downstream_test_module(downstream: pytest.Pytester) -> None:
    """Every test of docs/testing.md, the Manage billing example included, passes."""
    for module in ("starlette", "pyramid", "webtest", "aiohttp"):
        pytest.importorskip(module)
    source = pytest_module(DOCS / "testing.md")
    expected = sum(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
        for node in ast.walk(ast.parse(source))
    )
    downstream.makepyfile(test_guide=source)
    result = downstream.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=expected)
    assert expected >= 10


def test_a_failed_assertion_lists_the_calls_and_hides_secrets(downstream: pytest.Pytester) -> None:
    """The failure message lists every call and its outcome; keys and portal URLs are masked."""
    downstream.makepyfile(
        test_app="""
        import pytest
        from lattice_stripe import InvalidRequestError


        def test_wrong_customer(stripe_recorder):
            with stripe_recorder.client("sk_test_TopSecret123") as client:
                client.billing_portal.sessions.create(
                    {"customer": "cus_1",
                     "return_url": "https://shop.example/?k=sk_test_Leaked999"}
                )
                stripe_recorder.queue_error(400, message="No such customer")
                with pytest.raises(InvalidRequestError):
                    client.billing_portal.sessions.create(
                        {"customer": "cus_2",
                         "return_url": "https://billing.stripe.com/p/session/test_Bearer42"}
                    )
            stripe_recorder.assert_portal_session_created(customer="cus_2")
        """
    )
    result = downstream.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    message = "\n".join(line for line in result.outlines if line.startswith("E "))
    expected = [
        "no billing portal session was created with customer='cus_2'",
        "portal session calls recorded (2):",
        "1. created: customer='cus_1', return_url='https://shop.example/?k=sk_test_[redacted]'",
        "2. NOT created (1 attempt(s)): customer='cus_2', return_url='[portal-session-url]'",
    ]
    for line in expected:
        assert line in message
    for secret in ("TopSecret123", "Leaked999", "Bearer42"):
        assert secret not in message


def test_the_recorder_imports_no_framework(downstream: pytest.Pytester) -> None:
    """A session that uses only stripe_recorder imports neither aiohttp nor starlette."""
    downstream.makepyfile(
        test_light="""
        import sys


        def test_light(stripe_recorder):
            with stripe_recorder.client() as client:
                client.billing_portal.sessions.create({"customer": "cus_1"})
            stripe_recorder.assert_portal_session_created(customer="cus_1")
            loaded = {name.split(".")[0] for name in sys.modules}
            assert not loaded & {"aiohttp", "starlette", "pyramid"}, loaded
            ours = [name for name in sys.modules if name.startswith("lattice_stripe.")]
            assert not [
                name for name in ours
                if name.startswith(("lattice_stripe.adapters.", "lattice_stripe.contrib",
                                    "lattice_stripe.emulator"))
                and name != "lattice_stripe.adapters.recording"
            ], ours
        """
    )
    result = downstream.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_emulator_runs_once_per_session_and_stops(downstream: pytest.Pytester) -> None:
    """Two tests share one emulator on loopback; it no longer listens after the session."""
    record = downstream.path / "urls.txt"
    downstream.makepyfile(
        test_twice=f"""
        import pathlib

        RECORD = pathlib.Path({str(record)!r})


        def test_first(stripe_emulator):
            with stripe_emulator.client() as client:
                client.billing_portal.sessions.create({{"customer": "cus_demo"}})
            with RECORD.open("a") as out:
                out.write(stripe_emulator.base_url + "\\n")


        def test_second(stripe_emulator):
            with RECORD.open("a") as out:
                out.write(stripe_emulator.base_url + "\\n")
        """
    )
    result = downstream.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    first, second = record.read_text().split()
    assert first == second
    assert first.startswith("http://127.0.0.1:")
    port = int(first.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass


def test_fresh_stripe_emulator_starts_each_test_from_the_seed(downstream: pytest.Pytester) -> None:
    """Each test gets the seed, no events and no webhook URL, though the one before changed them."""
    record = downstream.path / "runs.txt"
    downstream.makepyfile(
        test_fresh=f"""
        import pathlib
        import re

        import pytest
        import urllib3

        RECORD = pathlib.Path({str(record)!r})
        CANCEL_PAGE = "/p/portal/cancel/sub_demo"


        def call(stripe, method, path, **options):
            with urllib3.PoolManager() as http:
                return http.request(
                    method,
                    stripe.base_url + path,
                    headers={{"Authorization": f"Bearer {{stripe.api_key}}"}},
                    **options,
                )


        def cancel_in_the_portal(stripe):
            with stripe.client() as client:
                session = client.billing_portal.sessions.create({{"customer": "cus_demo"}})
            with urllib3.PoolManager() as http:
                opened = http.request("GET", session.url, redirect=False)
                cookie = {{"Cookie": opened.headers["Set-Cookie"].split(";")[0]}}
                form = http.request("GET", stripe.base_url + CANCEL_PAGE, headers=cookie)
                csrf = re.search('name="csrf_token" value="([^"]+)"', form.data.decode())
                done = http.request(
                    "POST",
                    stripe.base_url + CANCEL_PAGE,
                    fields={{"csrf_token": csrf.group(1), "version": "0", "when": "now"}},
                    encode_multipart=False,
                    headers=cookie,
                    redirect=False,
                )
            assert done.status == 303


        @pytest.mark.parametrize("run", [1, 2])
        def test_starts_from_the_seed(fresh_stripe_emulator, run):
            stripe = fresh_stripe_emulator
            assert stripe.webhook_url is None
            assert stripe.webhooks() == []
            assert call(stripe, "GET", "/v1/subscriptions/sub_demo").json()["status"] == "active"
            for line in RECORD.read_text().splitlines() if RECORD.exists() else []:
                earlier = line.split()[1]
                assert call(stripe, "GET", f"/v1/customers/{{earlier}}").status == 404

            cancel_in_the_portal(stripe)
            stripe.webhook_url = "http://127.0.0.1:9/hooks"
            created = call(
                stripe, "POST", "/v1/customers", fields={{"name": "Jo"}}, encode_multipart=False
            ).json()

            assert call(stripe, "GET", "/v1/subscriptions/sub_demo").json()["status"] == "canceled"
            with RECORD.open("a") as out:
                out.write(f"{{stripe.port}} {{created['id']}}\\n")
        """
    )
    result = downstream.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    (first_port, first_customer), (second_port, second_customer) = (
        line.split() for line in record.read_text().splitlines()
    )
    assert first_port == second_port
    assert first_customer != second_customer


def test_the_emulator_seed_comes_from_the_ini_file(downstream: pytest.Pytester) -> None:
    """stripe_emulator_seed, relative to the ini file, replaces the packaged seed."""
    seed = json.loads(
        resources.files("lattice_stripe.emulator").joinpath("seed.json").read_text("utf-8")
    )
    seed["customers"] = [{"id": "cus_fromseed", "name": "Seeded"}]
    (downstream.path / "seeds").mkdir()
    (downstream.path / "seeds" / "stripe.json").write_text(json.dumps(seed))
    downstream.makeini(INI + "stripe_emulator_seed = seeds/stripe.json\n")
    downstream.makepyfile(
        test_seed="""
        import pytest
        from lattice_stripe import InvalidRequestError


        def test_seeded_customers(stripe_emulator):
            with stripe_emulator.client() as client:
                client.billing_portal.sessions.create({"customer": "cus_fromseed"})
                with pytest.raises(InvalidRequestError):
                    client.billing_portal.sessions.create({"customer": "cus_demo"})
        """
    )
    result = downstream.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_missing_seed_file_fails_the_fixture(downstream: pytest.Pytester) -> None:
    """A seed path that does not exist is an error naming the file, not a silent default."""
    downstream.makeini(INI + "stripe_emulator_seed = nowhere.json\n")
    downstream.makepyfile(test_seed="def test_it(stripe_emulator):\n    pass\n")
    result = downstream.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot read the seed file*nowhere.json*"])


# -- the recorder, directly ------------------------------------------------------------


def test_a_call_retried_to_success_is_one_created_call(stripe_recorder: StripeRecorder) -> None:
    """The attempts of one create share an idempotency key and count as one created call."""
    stripe_recorder.queue_connection_error()
    stripe_recorder.queue_error(500, type="api_error", message="boom")
    with stripe_recorder.client() as client:
        client.billing_portal.sessions.create({"customer": "cus_1", "locale": "fr"})

    (call,) = stripe_recorder.portal_session_calls
    assert (call.attempts, call.created, call.params) == (
        3,
        True,
        {"customer": "cus_1", "locale": "fr"},
    )
    assert call.idempotency_key == stripe_recorder.last_request.idempotency_key
    assert stripe_recorder.assert_portal_session_created(customer="cus_1", locale="fr") == call


def test_a_call_that_never_succeeded_was_not_created(stripe_recorder: StripeRecorder) -> None:
    """A create whose every attempt failed is listed, but not counted as created."""
    for _ in range(3):
        stripe_recorder.queue_error(500, type="api_error", message="boom")
    with stripe_recorder.client() as client, pytest.raises(APIError):
        client.billing_portal.sessions.create({"customer": "cus_1"})

    stripe_recorder.assert_no_portal_session_created()
    with pytest.raises(AssertionError, match=r"NOT created \(3 attempt\(s\)\)"):
        stripe_recorder.assert_portal_session_created(customer="cus_1")


def test_criteria_are_checked_only_when_given(stripe_recorder: StripeRecorder) -> None:
    """flow_type=None means the homepage, ANY (the default) means unchecked."""
    with stripe_recorder.client() as client:
        client.billing_portal.sessions.create(
            {"customer": "cus_1", "return_url": "https://x.test/", "flow_data": CANCEL}
        )

    call = stripe_recorder.assert_portal_session_created(flow_type=ANY, subscription="sub_1")
    assert (call.customer, call.flow_type, call.return_url) == (
        "cus_1",
        "subscription_cancel",
        "https://x.test/",
    )
    with pytest.raises(AssertionError, match="flow_type=None"):
        stripe_recorder.assert_portal_session_created(customer="cus_1", flow_type=None)
    with pytest.raises(AssertionError, match="subscription='sub_2'"):
        stripe_recorder.assert_portal_session_created(subscription="sub_2")
    with pytest.raises(AssertionError, match="locale='fr'"):
        stripe_recorder.assert_portal_session_created(locale="fr")


def test_the_newest_matching_call_is_returned(stripe_recorder: StripeRecorder) -> None:
    """With several matching calls, the assertion returns the most recent."""
    with stripe_recorder.client() as client:
        client.billing_portal.sessions.create({"customer": "cus_1", "locale": "de"})
        client.billing_portal.sessions.create({"customer": "cus_1", "locale": "fr"})

    assert stripe_recorder.assert_portal_session_created(customer="cus_1").params["locale"] == "fr"
    assert stripe_recorder.last_params == {"customer": "cus_1", "locale": "fr"}


def test_nothing_recorded_says_so(stripe_recorder: StripeRecorder) -> None:
    """With no request at all, the message says nothing was recorded; last_params raises."""
    with pytest.raises(AssertionError, match=r"no portal session call was recorded \(0 request"):
        stripe_recorder.assert_portal_session_created()
    with pytest.raises(AssertionError, match="no request"):
        stripe_recorder.last_params  # noqa: B018
    stripe_recorder.assert_no_portal_session_created()


def test_an_unexpected_session_fails_assert_no_portal_session_created(
    stripe_recorder: StripeRecorder,
) -> None:
    """assert_no_portal_session_created fails once a create succeeded, listing it."""
    with stripe_recorder.client() as client:
        client.billing_portal.sessions.create({"customer": "cus_1"})
    with pytest.raises(AssertionError, match=r"1\. created: customer='cus_1'"):
        stripe_recorder.assert_no_portal_session_created()


async def test_the_async_client_records_the_same(stripe_recorder: StripeRecorder) -> None:
    """An AsyncClient from the recorder sends through it and retries without sleeping."""
    stripe_recorder.queue_connection_error()
    async with stripe_recorder.async_client() as client:
        session = await client.billing_portal.sessions.create({"customer": "cus_9"})
    call = stripe_recorder.assert_portal_session_created(customer="cus_9", flow_type=None)
    assert call.attempts == 2
    assert session.customer == "cus_9"
    assert stripe_recorder.closed


def test_the_recorder_repr_and_client_repr_show_no_key(stripe_recorder: StripeRecorder) -> None:
    """The recorder and its clients print without the API key."""
    client = stripe_recorder.client("sk_test_NeverShown1")
    assert "NeverShown1" not in repr(client) + repr(stripe_recorder)
    assert repr(stripe_recorder).startswith("StripeRecorder(")


# -- the emulator server, directly -------------------------------------------------------


Received = list[tuple[bytes, str | None]]


@pytest.fixture
def webhook_endpoint() -> Iterator[tuple[str, Received]]:
    """A loopback HTTP endpoint that records each POST body and Stripe-Signature."""
    received: Received = []

    class Hooks(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers.get("Stripe-Signature")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads what was received."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", received
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def _create_customer(stripe: EmulatorServer, email: str) -> str:
    with urllib3.PoolManager() as http_pool:
        response = http_pool.request(
            "POST",
            f"{stripe.base_url}/v1/customers",
            fields={"email": email},
            encode_multipart=False,
            headers={"Authorization": f"Bearer {stripe.api_key}"},
        )
    assert response.status == 200
    customer_id: str = response.json()["id"]
    return customer_id


def test_webhooks_are_signed_and_sent_to_the_given_endpoint(
    stripe_emulator: EmulatorServer,
    webhook_endpoint: tuple[str, Received],
) -> None:
    """Inside send_webhooks_to, events are POSTed signed with webhook_secret; after, only logged."""
    url, received = webhook_endpoint
    start = len(stripe_emulator.webhooks())
    with stripe_emulator.send_webhooks_to(url):
        customer = _create_customer(stripe_emulator, "jo@example.com")
        sent = stripe_emulator.wait_for_webhook("customer.created", since=start)
    assert stripe_emulator.webhook_url is None
    assert (sent.state, sent.url, sent.attempts) == ("delivered", url, 1)
    ((body, signature),) = received
    event = construct_event(body, signature, stripe_emulator.webhook_secret)
    assert event.id == sent.event.id
    assert event.customer.id == customer

    _create_customer(stripe_emulator, "al@example.com")
    later = stripe_emulator.wait_for_webhook("customer.created", since=start + 1)
    assert (later.state, later.url) == ("no_endpoint", None)
    assert len(received) == 1


def test_webhooks_filter_by_type_and_since(stripe_emulator: EmulatorServer) -> None:
    """webhooks(type, since=...) returns only the newer events of that type."""
    start = len(stripe_emulator.webhooks())
    customer = _create_customer(stripe_emulator, "kim@example.com")
    (sent,) = stripe_emulator.webhooks("customer.created", since=start)
    assert sent.type == "customer.created"
    assert sent.event.customer.id == customer
    assert stripe_emulator.webhooks("customer.deleted", since=start) == []


def test_waiting_for_a_webhook_that_never_comes_fails_clearly(
    stripe_emulator: EmulatorServer,
) -> None:
    """wait_for_webhook gives up after its timeout, naming what was sent instead."""
    start = len(stripe_emulator.webhooks())
    _create_customer(stripe_emulator, "lee@example.com")
    with pytest.raises(AssertionError, match=r"no invoice.paid .*\['customer.created'\]"):
        stripe_emulator.wait_for_webhook("invoice.paid", since=start, timeout=0.1)


def test_the_emulator_server_outside_pytest_fixtures() -> None:
    """emulator_server() runs a private emulator with the given secret, stopped at exit."""
    with emulator_server(webhook_secret="whsec_private") as stripe:
        assert stripe.webhook_secret == "whsec_private"
        assert stripe.webhooks() == []
        with stripe.client() as client:
            session = client.billing_portal.sessions.create({"customer": "cus_team"})
        assert session.url.startswith(stripe.base_url + "/p/session/")
        assert repr(stripe) == f"EmulatorServer(base_url={stripe.base_url!r}, webhook_url=None)"
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", stripe.port), 2),
    ):
        pass


def test_emulator_server_reset_forgets_what_was_done_and_keeps_the_webhook_url(
    webhook_endpoint: tuple[str, Received],
) -> None:
    """reset() forgets created customers and sent webhooks; webhook_url and the key stay."""
    url, received = webhook_endpoint
    with emulator_server(webhook_url=url) as stripe, urllib3.PoolManager() as http_pool:
        customer = _create_customer(stripe, "jo@example.com")
        assert stripe.wait_for_webhook("customer.created").state == "delivered"

        stripe.reset()

        assert stripe.webhooks() == []
        assert stripe.webhook_url == url
        fetched = http_pool.request(
            "GET",
            f"{stripe.base_url}/v1/customers/{customer}",
            headers={"Authorization": f"Bearer {stripe.api_key}"},
        )
        assert fetched.status == 404
        _create_customer(stripe, "al@example.com")
        assert stripe.wait_for_webhook("customer.created").state == "delivered"
    assert len(received) == 2


async def test_the_async_client_of_the_emulator(stripe_emulator: EmulatorServer) -> None:
    """async_client() talks to the emulator over aiohttp; its errors are Stripe's."""
    async with stripe_emulator.async_client() as client:
        session = await client.billing_portal.sessions.create(
            {
                "customer": "cus_demo",
                "flow_data": {**CANCEL, "subscription_cancel": {"subscription": "sub_demo"}},
            }
        )
        with pytest.raises(InvalidRequestError, match="cus_nobody"):
            await client.billing_portal.sessions.create({"customer": "cus_nobody"})
    assert session.flow is not None
    assert session.flow.type == "subscription_cancel"
