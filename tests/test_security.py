"""Secret-leak audit: portal session URLs and API keys never escape, on any path.

Every scenario runs with every logger at DEBUG and collects whatever a user
could see or store: log records (with tracebacks), exception messages and
reprs, tracebacks rendered with their frames' locals, pickles, session reprs
and the fake's recordings. None may contain the API key or a session URL.
"""

import asyncio
import copy
import logging
import pickle
import socket
import string
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import lattice_stripe
from lattice_stripe import (
    APIConnectionError,
    AsyncClient,
    Client,
    HttpResponse,
    LatticeStripeError,
    RedactingFilter,
    Session,
)
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.core.codec import decode_session
from lattice_stripe.core.config import ClientConfig, call_options
from lattice_stripe.core.http import Headers, HttpRequest
from lattice_stripe.core.redaction import PORTAL_URL_PLACEHOLDER, Secret, Unpicklable, scrub
from lattice_stripe.testing import session_body

API_KEY = "sk_test_51LeakAuditKey0000000000000000"
OTHER_KEY = "rk_live_51PerCallOverride000000000000"
PORTAL_URL = "https://billing.stripe.com/p/session/test_YWNjdF9sZWFrYXVkaXQ"
PARAMS = {"customer": "cus_audit1", "return_url": "https://example.com/account"}
SECRETS = (API_KEY, OTHER_KEY, PORTAL_URL, "test_YWNjdF9sZWFrYXVkaXQ", "/p/session/")


def _session_json(url: str = PORTAL_URL) -> bytes:
    return session_body(customer="cus_audit1", url=url)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _exception_views(error: BaseException) -> list[str]:
    views = [str(error), repr(error)]
    views.append(
        "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())
    )
    try:
        views.append(repr(pickle.dumps(error)))
    except TypeError as refusal:
        views.append(str(refusal))
    return views


@pytest.fixture
def audit(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Every logger at DEBUG; yields a list the scenario fills, then checks it and the logs."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    yield seen
    for record in caplog.records:
        seen.append(record.getMessage())
        if record.exc_info:
            seen.append("".join(traceback.format_exception(*record.exc_info)))
    for text in seen:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into: {text[:300]!r}"


def _run_failure(seen: list[str], call: Callable[[], Any]) -> None:
    with pytest.raises(LatticeStripeError) as caught:
        call()
    seen.extend(_exception_views(caught.value))
    logging.getLogger("app").exception("portal call failed")


SYNC_FAILURES: dict[str, Callable[[RecordingTransport], None]] = {
    "invalid request": lambda fake: fake.queue_error(
        400, message=f"No such customer; see {PORTAL_URL} and key {API_KEY}", param="customer"
    ),
    "authentication": lambda fake: fake.queue_error(
        401, type="invalid_request_error", message=f"Invalid API Key provided: {API_KEY}"
    ),
    "server error after retries": lambda fake: fake.queue(
        *[HttpResponse(status=500, body=b'{"error":{"type":"api_error"}}')] * 3
    ),
    "undecodable success": lambda fake: fake.queue(
        HttpResponse(
            status=200, body=session_body(customer="cus_audit1", url=PORTAL_URL, created="x")
        )
    ),
    "html from a proxy": lambda fake: fake.queue(
        *[HttpResponse(status=502, body=b"<html>" + PORTAL_URL.encode() + b"</html>")] * 3
    ),
    "network down": lambda fake: fake.queue(*[APIConnectionError("connection reset")] * 3),
}


@pytest.mark.parametrize("scenario", sorted(SYNC_FAILURES))
def test_failure_paths_leak_nothing(audit: list[str], scenario: str) -> None:
    """Stripe errors, decode errors and network errors leak no key or URL anywhere."""
    fake = RecordingTransport()
    SYNC_FAILURES[scenario](fake)
    client = Client(API_KEY, transport=fake, sleep=lambda _: None)
    _run_failure(audit, lambda: client.billing_portal.sessions.create(PARAMS))
    audit.extend(repr(request) for request in fake.requests)
    audit.extend(request.headers["Authorization"] for request in fake.requests)


def test_per_call_api_key_stays_out_of_traceback_locals(audit: list[str]) -> None:
    """A key passed per call is not in any frame's locals when the call fails."""
    fake = RecordingTransport()
    fake.queue_error(400, message="No such customer")
    client = Client(API_KEY, transport=fake)
    _run_failure(audit, lambda: client.billing_portal.sessions.create(PARAMS, api_key=OTHER_KEY))
    assert fake.last_request.headers["Authorization"] == "Bearer rk_live_[redacted]"


def test_validation_failure_leaks_nothing(audit: list[str]) -> None:
    """Bad input fails before the network; the error never echoes the offending values."""
    fake = RecordingTransport()
    client = Client(API_KEY, transport=fake)
    for bad in (
        {"customer": "jane@example.com", "return_url": "https://example.com/"},
        {"customer": "cus_1", "return_url": "http://evil.example/?jane@example.com"},
    ):
        with pytest.raises(LatticeStripeError) as caught:
            client.billing_portal.sessions.create(bad)
        assert "jane@example.com" not in str(caught.value)
        audit.extend(_exception_views(caught.value))
    assert fake.requests == []


def test_real_transport_connection_failure_leaks_nothing(audit: list[str]) -> None:
    """A refused connection through the default transport renders no key in its tracebacks."""
    client = Client(API_KEY, base_url=f"http://127.0.0.1:{_closed_port()}", max_retries=0)
    with client:
        _run_failure(audit, lambda: client.billing_portal.sessions.create(PARAMS))


def test_async_connection_failure_leaks_nothing(audit: list[str]) -> None:
    """The same through aiohttp and the AsyncClient."""

    async def scenario() -> None:
        async with AsyncClient(
            API_KEY, base_url=f"http://127.0.0.1:{_closed_port()}", max_retries=0
        ) as client:
            with pytest.raises(APIConnectionError) as caught:
                await client.billing_portal.sessions.create(PARAMS)
            audit.extend(_exception_views(caught.value))

    asyncio.run(scenario())


def test_success_path_leaks_nothing(audit: list[str]) -> None:
    """A created session's repr, str, the fake's recordings and the logs never show the URL."""
    fake = RecordingTransport()
    fake.queue(HttpResponse(status=200, body=_session_json()))
    client = Client(API_KEY, transport=fake)
    session = client.billing_portal.sessions.create(PARAMS)
    assert session.url == PORTAL_URL
    audit.extend([repr(session), str(session), f"{session}", repr(client), str(client)])
    audit.extend(repr(request) for request in fake.requests)
    audit.extend(str(request.body) for request in fake.requests)
    logging.getLogger("app").info("created %r for %s", session, session.customer)


def test_credential_carriers_refuse_pickling() -> None:
    """Sessions, requests, responses and configurations cannot be pickled into a cache."""
    fake = RecordingTransport()
    session = Client(API_KEY, transport=fake).billing_portal.sessions.create(PARAMS)
    carriers: list[object] = [
        session,
        HttpRequest(method="POST", url="https://api.stripe.com", headers={"A": "b"}),
        HttpResponse(status=200, body=_session_json()),
        ClientConfig(api_key=API_KEY),
        call_options(api_key=API_KEY),
    ]
    for carrier in carriers:
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(carrier)
    assert isinstance(session, Session)


@pytest.mark.parametrize(
    "carrier",
    [
        lambda: Headers({"Authorization": f"Bearer {API_KEY}"}),
        lambda: HttpRequest(method="POST", url="https://api.stripe.com", headers={"A": "b"}),
        lambda: HttpResponse(status=200, body=_session_json()),
        lambda: ClientConfig(api_key=API_KEY),
        lambda: call_options(api_key=API_KEY),
        lambda: Secret(API_KEY),
        lambda: decode_session(_session_json()),
    ],
    ids=["headers", "request", "response", "config", "options", "secret", "session"],
)
def test_every_credential_carrier_refuses_pickle_and_copy_naming_itself(
    carrier: Callable[[], object],
) -> None:
    """One rule for all: each carrier is an Unpicklable; pickle and copy refuse, naming the type."""
    value = carrier()
    assert isinstance(value, Unpicklable)
    for attempt in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match=f"^{type(value).__name__} cannot be pickled: ") as info:
            attempt(value)
        assert API_KEY not in str(info.value)
        assert PORTAL_URL not in str(info.value)


def test_the_pickle_rule_is_written_once() -> None:
    """Only the redaction policy defines a refusing __reduce__; carriers inherit it."""
    package = Path(lattice_stripe.__file__).parent
    homes = sorted(
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if "-> NoReturn"
        in "".join(line for line in path.read_text().splitlines() if "def __reduce__" in line)
    )
    assert homes == ["core/redaction.py"]


def _record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("app", logging.INFO, __file__, 1, message, args, exc_info)


def test_redacting_filter_scrubs_message_args_and_traceback() -> None:
    """RedactingFilter removes URLs and keys from the message, its args and the traceback."""
    try:
        raise RuntimeError(f"boom at {PORTAL_URL} with {API_KEY}")
    except RuntimeError as error:
        record = _record("redirecting to %s using %s", PORTAL_URL, API_KEY, exc=error)
    assert RedactingFilter().filter(record) is True
    rendered = logging.Formatter().format(record)
    for secret in SECRETS:
        assert secret not in rendered
    assert PORTAL_URL_PLACEHOLDER in rendered
    assert "sk_test_[redacted]" in rendered


def test_redacting_filter_keeps_publishable_keys_and_plain_text() -> None:
    """Text without secrets, and publishable pk_ keys, pass through unchanged."""
    record = _record("user %s opened billing with pk_test_abc", "cus_123")
    RedactingFilter().filter(record)
    assert record.getMessage() == "user cus_123 opened billing with pk_test_abc"


def test_redacting_filter_survives_a_broken_format_string() -> None:
    """A record whose args do not match its format still logs, scrubbed."""
    record = _record("%s and %s", API_KEY)
    RedactingFilter().filter(record)
    assert API_KEY not in record.getMessage()


_token = st.text(alphabet=string.ascii_letters + string.digits, min_size=8)
_noise = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)


@given(
    before=_noise,
    after=_noise,
    token=_token,
    host=st.sampled_from(["billing.stripe.com", "127.0.0.1:12111", "localhost:8000"]),
    mode=st.sampled_from(["test", "live"]),
)
def test_scrub_removes_any_portal_url_and_key(
    before: str, after: str, token: str, host: str, mode: str
) -> None:
    """Whatever surrounds them, portal URLs and sk_/rk_ keys never survive scrub()."""
    assume(token not in before and token not in after)
    url = f"https://{host}/p/session/{mode}_{token}"
    key = f"sk_{mode}_{token}"
    restricted = f"rk_{mode}_{token}"
    cleaned = scrub(f"{before} {url} {after} {key},{restricted}")
    assert token not in cleaned
