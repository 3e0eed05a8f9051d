"""The fault matrix: every real transport against a misbehaving server on loopback.

Every case runs once per transport of ``transports.KINDS`` (through ``Client``
for a sync one, ``AsyncClient`` for an async one), and pins the exact error
class from the library's tree (or success after a retry), how many attempts
the server saw, that every attempt carried the one idempotency key, and that
no connection, session or task outlived the client.
"""

import asyncio
import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from traceback import TracebackException

import attrs
import pytest

from faultserver import (
    Action,
    CloseSilently,
    FaultServer,
    Huge,
    Raw,
    Reply,
    Reset,
    SlowBody,
    Stall,
    Trickle,
    Truncate,
    free_port,
    stripe_error,
    unresponsive_port,
)
from lattice_stripe import AsyncClient, Client, Session
from lattice_stripe.core.errors import (
    APIConnectionError,
    APIError,
    LatticeStripeError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    StripeError,
)
from lattice_stripe.testing import session_response
from transports import KINDS, Kind

API_KEY = "sk_test_51FaultMatrixSecretKey0123456789"
PARAMS = {"customer": "cus_FaultMatrix", "return_url": "https://example.com/account"}
FIFTY_MB = 50 * 1024 * 1024


@attrs.frozen(kw_only=True)
class Settings:
    """The client settings a case needs: short timeouts keep the matrix fast."""

    timeout: float = 2.0
    connect_timeout: float = 1.0
    deadline: float = 30.0
    max_retries: int = 2


@attrs.frozen(kw_only=True)
class Outcome:
    """What one create call ended with, and what the client did on the way."""

    session: Session | None
    error: LatticeStripeError | None
    sleeps: tuple[float, ...]
    keys_made: tuple[str, ...]
    rendered: str = ""

    @property
    def attempts(self) -> int:
        """Attempts the client made: one, plus one per backoff sleep."""
        return len(self.sleeps) + 1


class KeyFactory:
    """An idempotency key factory that remembers every key it made."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def __call__(self) -> str:
        key = f"fault-matrix-key-{len(self.made)}"
        self.made.append(key)
        return key


def render(error: BaseException) -> str:
    """The error's whole chain as a traceback with every frame's locals, as trackers show it."""
    return "".join(TracebackException.from_exception(error, capture_locals=True).format())


def run_sync(kind: Kind, base_url: str, settings: Settings) -> Outcome:
    """One create through ``Client`` over an owned transport of ``kind``."""
    sleeps: list[float] = []
    keys = KeyFactory()
    transport = kind.sync()
    session: Session | None = None
    error: LatticeStripeError | None = None
    rendered = ""
    with Client(
        API_KEY,
        transport=transport,
        base_url=base_url,
        sleep=sleeps.append,
        idempotency_key_factory=keys,
        **attrs.asdict(settings),
    ) as client:
        try:
            session = client.billing_portal.sessions.create(PARAMS)
        except LatticeStripeError as caught:
            error = caught
            rendered = render(caught)
    assert getattr(transport, "closed", True)
    return Outcome(
        session=session,
        error=error,
        sleeps=tuple(sleeps),
        keys_made=tuple(keys.made),
        rendered=rendered,
    )


async def _create_async(kind: Kind, base_url: str, settings: Settings) -> Outcome:
    sleeps: list[float] = []
    keys = KeyFactory()

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    transport = kind.async_()
    session: Session | None = None
    error: LatticeStripeError | None = None
    rendered = ""
    async with AsyncClient(
        API_KEY,
        transport=transport,
        base_url=base_url,
        sleep=sleep,
        idempotency_key_factory=keys,
        **attrs.asdict(settings),
    ) as client:
        try:
            session = await client.billing_portal.sessions.create(PARAMS)
        except LatticeStripeError as caught:
            error = caught
            rendered = render(caught)
    assert getattr(transport, "closed", True)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    return Outcome(
        session=session,
        error=error,
        sleeps=tuple(sleeps),
        keys_made=tuple(keys.made),
        rendered=rendered,
    )


def run_async(kind: Kind, base_url: str, settings: Settings) -> Outcome:
    """One create through ``AsyncClient`` over an owned transport of ``kind``, in a fresh loop."""
    return asyncio.run(_create_async(kind, base_url, settings))


@attrs.frozen(kw_only=True)
class Driver:
    """One transport under test: how to run a create, and its library's exception roots."""

    name: str
    run: Callable[[str, Settings], Outcome]
    library_errors: tuple[type[BaseException], ...]


DRIVERS = [
    Driver(
        name=kind.name,
        run=functools.partial(run_async if kind.is_async else run_sync, kind),
        library_errors=kind.library_errors,
    )
    for kind in KINDS
]


@pytest.fixture(params=DRIVERS, ids=[driver.name for driver in DRIVERS])
def driver(request: pytest.FixtureRequest) -> Driver:
    """Each test runs over every transport."""
    chosen: Driver = request.param
    return chosen


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """A fresh fault server, stopped after the test."""
    with FaultServer() as running:
        yield running


def assert_connection_error(outcome: Outcome, driver: Driver, *, should_retry: bool) -> str:
    """The call failed with exactly ``APIConnectionError``, chained and secret-free."""
    error = outcome.error
    assert type(error) is APIConnectionError
    assert error.should_retry is should_retry
    assert isinstance(error.__cause__, driver.library_errors)
    assert not isinstance(error.__cause__, LatticeStripeError)
    assert_secret_free(outcome)
    return str(error)


def assert_secret_free(outcome: Outcome) -> None:
    """No view of the error, its chain or its frames' locals shows the key or a portal URL."""
    error = outcome.error
    assert error is not None
    views = [str(error), repr(error), outcome.rendered]
    if error.__cause__ is not None:
        views += [str(error.__cause__), repr(error.__cause__)]
    for text in views:
        assert API_KEY not in text
        assert "/p/session/" not in text


def assert_attempts(server: FaultServer, outcome: Outcome, attempts: int) -> None:
    """The server saw ``attempts`` requests, all with the call's single key, and no leak."""
    assert outcome.attempts == attempts
    assert len(server.requests) == attempts
    assert len(outcome.keys_made) == 1
    assert [request.header("Idempotency-Key") for request in server.requests] == [
        outcome.keys_made[0]
    ] * attempts
    if outcome.error is not None:
        assert_secret_free(outcome)
    assert server.wait_all_closed()


# -- the deadline ----------------------------------------------------------------------

# How late a call may end past its deadline: the watchdog's tick (sync) or the
# loop's timer (async), plus scheduling on a loaded two-core machine.
DEADLINE_MARGIN = 0.5


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(Trickle(gap=0.3, size=4), id="head-and-body"),
        pytest.param(SlowBody(pieces=60, gap=0.3), id="body"),
        pytest.param(Stall(seconds=0.6, then=Trickle(gap=0.3, size=4)), id="late-then-trickle"),
    ],
)
def test_a_trickling_server_cannot_hold_a_call_past_its_deadline(
    driver: Driver, server: FaultServer, action: Action
) -> None:
    """Bytes every 0.3 s never trip the 1 s idle timeout; the 1.5 s deadline ends the call."""
    server.script(action)
    started = time.monotonic()
    outcome = driver.run(server.base_url, Settings(timeout=1.0, deadline=1.5))
    elapsed = time.monotonic() - started
    assert type(outcome.error) is APIConnectionError
    assert str(outcome.error).startswith("timed out")
    assert outcome.error.should_retry
    assert 1.5 - 0.1 <= elapsed <= 1.5 + DEADLINE_MARGIN
    # The attempt used the whole deadline: no time was left for a retry.
    assert outcome.attempts == 1
    assert_secret_free(outcome)


def test_a_retry_gets_only_what_is_left_of_the_deadline(
    driver: Driver, server: FaultServer
) -> None:
    """After a quick 500, the retry is cut off when the call's deadline, not a fresh one, ends."""
    server.script(stripe_error(500), Trickle(gap=0.3, size=4))
    started = time.monotonic()
    outcome = driver.run(server.base_url, Settings(timeout=1.0, deadline=1.5))
    elapsed = time.monotonic() - started
    assert type(outcome.error) is APIConnectionError
    assert str(outcome.error).startswith("timed out")
    assert outcome.attempts == 2
    assert elapsed <= 1.5 + DEADLINE_MARGIN


# -- no answer at all ----------------------------------------------------------------


def test_connection_refused_is_retried_then_raised(driver: Driver) -> None:
    """A port with no listener: three attempts, then a retryable APIConnectionError."""
    outcome = driver.run(f"http://127.0.0.1:{free_port()}", Settings())
    message = assert_connection_error(outcome, driver, should_retry=True)
    assert message.startswith("could not connect to Stripe")
    assert outcome.attempts == 3
    assert outcome.keys_made == ("fault-matrix-key-0",)


def test_connect_timeout_is_retried_then_raised(driver: Driver) -> None:
    """A listener whose backlog is full never completes the handshake: connect times out."""
    with ExitStack() as stack:
        try:
            port = stack.enter_context(unresponsive_port())
        except LookupError as reason:
            pytest.skip(str(reason))
        outcome = driver.run(
            f"http://127.0.0.1:{port}", Settings(connect_timeout=0.2, max_retries=1)
        )
    message = assert_connection_error(outcome, driver, should_retry=True)
    assert message.startswith("timed out connecting to Stripe")
    assert outcome.attempts == 2


def test_tls_to_a_plain_http_port_is_not_retried(driver: Driver, server: FaultServer) -> None:
    """Speaking TLS to a plaintext server fails the handshake once and is not retried."""
    outcome = driver.run(server.base_url.replace("http://", "https://"), Settings())
    message = assert_connection_error(outcome, driver, should_retry=False)
    assert message.startswith("TLS failed talking to Stripe")
    assert outcome.attempts == 1
    assert server.connection_count == 1
    assert server.requests == []
    assert server.wait_all_closed()


# -- broken connections ----------------------------------------------------------------

BROKEN = {
    "reset-mid-response": Reset(),
    "close-without-response": CloseSilently(),
    "truncated-by-close": Truncate(),
    "not-http": Raw(data=b"SSH-2.0-OpenSSH_9.6\r\n"),
}


@pytest.mark.parametrize("fault", BROKEN.values(), ids=BROKEN.keys())
def test_broken_connection_is_retried_then_raised(
    driver: Driver, server: FaultServer, fault: Action
) -> None:
    """A connection that breaks on every attempt: three attempts, then APIConnectionError."""
    server.script(fault, fault, fault)
    outcome = driver.run(server.base_url, Settings())
    assert_connection_error(outcome, driver, should_retry=True)
    assert_attempts(server, outcome, 3)


@pytest.mark.parametrize("fault", BROKEN.values(), ids=BROKEN.keys())
def test_broken_connection_then_success(driver: Driver, server: FaultServer, fault: Action) -> None:
    """One broken attempt, then Stripe answers: the retry returns the session."""
    server.script(fault)
    outcome = driver.run(server.base_url, Settings())
    assert outcome.error is None
    assert outcome.session is not None
    assert outcome.session.customer == PARAMS["customer"]
    assert_attempts(server, outcome, 2)


# -- timeouts --------------------------------------------------------------------------

SLOW = {
    "stall-before-headers": Stall(seconds=1.5),
    "body-stalls-mid-way": SlowBody(pieces=2, gap=1.5),
}


@pytest.mark.parametrize("fault", SLOW.values(), ids=SLOW.keys())
def test_read_timeout_is_retried_then_raised(
    driver: Driver, server: FaultServer, fault: Action
) -> None:
    """A server silent for longer than the read timeout: each attempt times out."""
    server.script(fault, fault)
    outcome = driver.run(server.base_url, Settings(timeout=0.25, max_retries=1))
    message = assert_connection_error(outcome, driver, should_retry=True)
    assert message.startswith("timed out")
    assert_attempts(server, outcome, 2)


@pytest.mark.parametrize("fault", SLOW.values(), ids=SLOW.keys())
def test_read_timeout_then_success(driver: Driver, server: FaultServer, fault: Action) -> None:
    """One attempt times out, the retry gets the session."""
    server.script(fault)
    outcome = driver.run(server.base_url, Settings(timeout=0.25, max_retries=1))
    assert outcome.session is not None
    assert_attempts(server, outcome, 2)


def test_trickling_body_within_the_read_timeout_succeeds(
    driver: Driver, server: FaultServer
) -> None:
    """The timeout bounds each read, not the whole body: a steady trickle is not cut off."""
    server.script(SlowBody(pieces=12, gap=0.05))
    outcome = driver.run(server.base_url, Settings(timeout=0.5, max_retries=0))
    assert outcome.session is not None
    assert_attempts(server, outcome, 1)


# -- Stripe's error statuses -----------------------------------------------------------


@attrs.frozen(kw_only=True)
class StatusCase:
    """A scripted answer sequence and what the client must make of it."""

    script: tuple[Action, ...]
    error: type[LatticeStripeError] | None
    attempts: int
    status: int | None = None


STATUS_CASES = {
    "500-retried-3x": StatusCase(
        script=(stripe_error(500),) * 3, error=APIError, attempts=3, status=500
    ),
    "500-should-retry-false": StatusCase(
        script=(stripe_error(500, headers={"Stripe-Should-Retry": "false"}),),
        error=APIError,
        attempts=1,
        status=500,
    ),
    "502-retried-3x": StatusCase(
        script=(stripe_error(502),) * 3, error=APIError, attempts=3, status=502
    ),
    "502-should-retry-true-then-ok": StatusCase(
        script=(stripe_error(502, headers={"Stripe-Should-Retry": "true"}),),
        error=None,
        attempts=2,
    ),
    "503-then-ok": StatusCase(script=(stripe_error(503),), error=None, attempts=2),
    "503-should-retry-false": StatusCase(
        script=(stripe_error(503, headers={"Stripe-Should-Retry": "false"}),),
        error=APIError,
        attempts=1,
        status=503,
    ),
    "400-should-retry-true-then-ok": StatusCase(
        script=(
            stripe_error(
                400, type="invalid_request_error", headers={"Stripe-Should-Retry": "true"}
            ),
        ),
        error=None,
        attempts=2,
    ),
    "429-retried-3x": StatusCase(
        script=(stripe_error(429, type="invalid_request_error", code="rate_limit"),) * 3,
        error=RateLimitError,
        attempts=3,
        status=429,
    ),
    "429-retry-after-too-long": StatusCase(
        script=(
            stripe_error(
                429, type="invalid_request_error", code="rate_limit", headers={"Retry-After": "60"}
            ),
        ),
        error=RateLimitError,
        attempts=1,
        status=429,
    ),
    "409-lock-timeout-retried-3x": StatusCase(
        script=(stripe_error(409, type="invalid_request_error", code="lock_timeout"),) * 3,
        error=RateLimitError,
        attempts=3,
        status=409,
    ),
    "409-lock-timeout-then-ok": StatusCase(
        script=(stripe_error(409, type="invalid_request_error", code="lock_timeout"),),
        error=None,
        attempts=2,
    ),
}


@pytest.mark.parametrize("case", STATUS_CASES.values(), ids=STATUS_CASES.keys())
def test_error_status(driver: Driver, server: FaultServer, case: StatusCase) -> None:
    """Stripe error statuses are retried or raised as the retry policy says, typed."""
    server.script(*case.script)
    outcome = driver.run(server.base_url, Settings())
    if case.error is None:
        assert outcome.error is None
        assert outcome.session is not None
    else:
        assert type(outcome.error) is case.error
        assert isinstance(outcome.error, StripeError)
        assert outcome.error.status == case.status
        assert outcome.error.idempotency_key == outcome.keys_made[0]
        assert outcome.error.request_id == "req_fake"
    assert_attempts(server, outcome, case.attempts)


def test_retry_after_is_honoured(driver: Driver, server: FaultServer) -> None:
    """A 429 with ``Retry-After: 2`` is retried after at least two seconds, then succeeds."""
    server.script(
        stripe_error(
            429, type="invalid_request_error", code="rate_limit", headers={"Retry-After": "2"}
        )
    )
    outcome = driver.run(server.base_url, Settings())
    assert outcome.session is not None
    assert len(outcome.sleeps) == 1
    assert outcome.sleeps[0] >= 2.0
    assert_attempts(server, outcome, 2)


# -- bodies that are not a session -----------------------------------------------------

PROXY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body>\r\n"
    b"</html>\r\n"
)
GOOD_SESSION = session_response(
    id="bps_1Decode",
    configuration="bpc_1Decode",
    created=1_760_000_000,
    customer="cus_FaultMatrix",
    return_url="https://example.com/account",
    url="https://billing.stripe.com/p/session/test_Decode",
)
GOOD_BODY = json.dumps(GOOD_SESSION).encode()


def _without(name: str) -> dict[str, object]:
    return {key: value for key, value in GOOD_SESSION.items() if key != name}


@attrs.frozen(kw_only=True)
class DecodeCase:
    """A reply whose body the client must refuse as ResponseDecodeError."""

    reply: Reply
    attempts: int
    body_starts: str


DECODE_CASES = {
    "proxy-html-502": DecodeCase(
        reply=Reply(status=502, headers={"Content-Type": "text/html"}, body=PROXY_PAGE),
        attempts=3,
        body_starts="<html>",
    ),
    "proxy-html-403": DecodeCase(
        reply=Reply(status=403, headers={"Content-Type": "text/html"}, body=PROXY_PAGE),
        attempts=1,
        body_starts="<html>",
    ),
    "html-with-200": DecodeCase(
        reply=Reply(status=200, headers={"Content-Type": "text/html"}, body=PROXY_PAGE),
        attempts=1,
        body_starts="<html>",
    ),
    "invalid-json": DecodeCase(
        reply=Reply(status=200, body=b'{"id": bps_1, }'), attempts=1, body_starts='{"id": bps_1'
    ),
    "truncated-json": DecodeCase(
        reply=Reply(status=200, body=GOOD_BODY[:40]),
        attempts=1,
        body_starts=GOOD_BODY[:40].decode(),
    ),
    "json-array": DecodeCase(reply=Reply.json(200, [GOOD_SESSION]), attempts=1, body_starts="[{"),
    "wrong-object": DecodeCase(
        reply=Reply.json(200, {**GOOD_SESSION, "object": "customer"}),
        attempts=1,
        body_starts='{"id"',
    ),
    "created-is-a-string": DecodeCase(
        reply=Reply.json(200, {**GOOD_SESSION, "created": "yesterday"}),
        attempts=1,
        body_starts='{"id"',
    ),
    "livemode-is-a-string": DecodeCase(
        reply=Reply.json(200, {**GOOD_SESSION, "livemode": "false"}),
        attempts=1,
        body_starts='{"id"',
    ),
    "redirect-not-followed": DecodeCase(
        reply=Reply(
            status=302,
            headers={"Location": "http://127.0.0.1:9/elsewhere", "Content-Type": "text/html"},
            body=b"<html>Found</html>",
        ),
        attempts=1,
        body_starts="<html>Found",
    ),
    "url-missing": DecodeCase(
        reply=Reply.json(200, _without("url")), attempts=1, body_starts='{"id"'
    ),
    "id-missing": DecodeCase(
        reply=Reply.json(200, _without("id")), attempts=1, body_starts='{"object"'
    ),
}


@pytest.mark.parametrize("case", DECODE_CASES.values(), ids=DECODE_CASES.keys())
def test_undecodable_body(driver: Driver, server: FaultServer, case: DecodeCase) -> None:
    """A body that is not a well-formed session is a ResponseDecodeError with status and bytes."""
    server.script(*(case.reply,) * case.attempts)
    outcome = driver.run(server.base_url, Settings())
    error = outcome.error
    assert type(error) is ResponseDecodeError
    assert error.status == case.reply.status
    assert error.body_prefix.startswith(case.body_starts)
    assert error.idempotency_key == outcome.keys_made[0]
    assert API_KEY not in str(error)
    assert_attempts(server, outcome, case.attempts)


def test_decode_error_names_the_bad_field(driver: Driver, server: FaultServer) -> None:
    """A field of the wrong type is named in the ResponseDecodeError's message."""
    server.script(Reply.json(200, {**GOOD_SESSION, "created": "yesterday"}))
    outcome = driver.run(server.base_url, Settings())
    assert type(outcome.error) is ResponseDecodeError
    assert "created" in outcome.error.message


def test_decode_error_never_shows_the_portal_url(driver: Driver, server: FaultServer) -> None:
    """A session body refused for a bad field keeps its single-use URL out of the error."""
    server.script(Reply.json(200, {**GOOD_SESSION, "livemode": "no"}))
    outcome = driver.run(server.base_url, Settings())
    assert type(outcome.error) is ResponseDecodeError
    assert str(GOOD_SESSION["url"]) not in str(outcome.error)
    assert str(GOOD_SESSION["url"]) not in outcome.error.body_prefix


# -- bodies that are too large ---------------------------------------------------------


FRAMINGS = pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])


@FRAMINGS
def test_fifty_megabyte_body_is_refused(driver: Driver, server: FaultServer, chunked: bool) -> None:
    """A 50 MB body is refused at the default 1 MiB limit, once, without reading it all."""
    server.script(Huge(size=FIFTY_MB, chunked=chunked))
    outcome = driver.run(server.base_url, Settings())
    error = outcome.error
    assert type(error) is ResponseTooLargeError
    assert error.status == 200
    assert error.request_id == "req_huge"
    assert error.idempotency_key == outcome.keys_made[0]
    assert str(1 << 20) in str(error)
    assert_attempts(server, outcome, 1)
    # The connection was dropped, not drained: most of the body was never sent.
    assert sum(server.bytes_sent) < FIFTY_MB // 2


def test_chunked_session_is_read_whole(driver: Driver, server: FaultServer) -> None:
    """A session sent with chunked framing and no Content-Length decodes like any other."""
    server.script(
        Reply(
            status=200, headers={"Content-Type": "application/json"}, body=GOOD_BODY, chunked=True
        )
    )
    outcome = driver.run(server.base_url, Settings())
    assert outcome.session is not None
    assert outcome.session.id == GOOD_SESSION["id"]
    assert_attempts(server, outcome, 1)


def padded_session(size: int) -> bytes:
    """A valid session body of exactly ``size`` bytes (a long unknown field pads it)."""
    padding = size - len(GOOD_BODY) - len(', "note": ""')
    body = json.dumps({**GOOD_SESSION, "note": "x" * padding}).encode()
    assert len(body) == size
    return body


@FRAMINGS
def test_body_at_the_limit_is_accepted(driver: Driver, server: FaultServer, chunked: bool) -> None:
    """A session of exactly 1 MiB is read whole: the limit is inclusive on both code paths."""
    body = padded_session(1 << 20)
    server.script(Reply(status=200, body=body, chunked=chunked))
    outcome = driver.run(server.base_url, Settings())
    assert outcome.session is not None
    assert outcome.session.extra["note"] == json.loads(body)["note"]
    assert_attempts(server, outcome, 1)


@FRAMINGS
def test_body_one_byte_over_the_limit_is_refused(
    driver: Driver, server: FaultServer, chunked: bool
) -> None:
    """One byte over 1 MiB is refused, declared or streamed."""
    server.script(Reply(status=200, body=padded_session((1 << 20) + 1), chunked=chunked))
    outcome = driver.run(server.base_url, Settings())
    assert type(outcome.error) is ResponseTooLargeError
    assert_attempts(server, outcome, 1)
