"""The create-session flow, driven step by step without a transport, then through both clients."""

import itertools
import json
import os
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import pytest

import lattice_stripe
from lattice_stripe import (
    APIConnectionError,
    APIError,
    AsyncClient,
    Client,
    HttpRequest,
    HttpResponse,
    IdempotencyError,
    InvalidRequestError,
    LatticeStripeError,
    RateLimitError,
    ResponseDecodeError,
    Session,
    ValidationError,
    testing,
)
from lattice_stripe.adapters.recording import RecordingTransport, stripe_error_response
from lattice_stripe.core.config import CallOptions, ClientConfig
from lattice_stripe.core.flow import Sleep, create_session

API_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
PARAMS: dict[str, object] = {"customer": "cus_abc123", "return_url": "https://example.com/account"}
Flow = Generator[HttpRequest | Sleep, HttpResponse | None, Session]


OK = HttpResponse(
    status=200,
    headers={"Request-Id": "req_ok"},
    body=testing.session_body(
        id="bps_1",
        url="https://billing.stripe.com/p/session/test_abc",
        configuration="bpc_1",
        customer="cus_abc123",
    ),
)


def error_response(status: int, **headers: str) -> HttpResponse:
    return stripe_error_response(
        status, type="api_error", message=f"HTTP {status}", headers=headers
    )


def no_key() -> str:
    raise AssertionError("a new idempotency key was made although one was given")


def start(
    params: Mapping[str, object] = PARAMS,
    options: CallOptions | None = None,
    *,
    max_retries: int = 2,
    randoms: Iterator[float] | None = None,
    new_key: Callable[[], str] = lambda: "generated-key",
    monotonic: Callable[[], float] = lambda: 0.0,
    **config: Any,
) -> Flow:
    draws = randoms if randoms is not None else itertools.repeat(0.5)
    return create_session(
        ClientConfig(api_key=API_KEY, max_retries=max_retries, **config),
        params,
        options or CallOptions(),
        new_idempotency_key=new_key,
        random=lambda: next(draws),
        monotonic=monotonic,
    )


def finish(flow: Flow, response: HttpResponse) -> Session:
    """Send the final response and return what the flow returned."""
    with pytest.raises(StopIteration) as done:
        flow.send(response)
    session: Session = done.value.value
    return session


def as_request(step: HttpRequest | Sleep) -> HttpRequest:
    assert isinstance(step, HttpRequest)
    return step


def first_request(flow: Flow) -> HttpRequest:
    return as_request(next(flow))


# -- step by step ------------------------------------------------------------------


def test_success_on_first_attempt() -> None:
    """One request, one 200: the flow returns the decoded session."""
    flow = start()
    first_request(flow)
    session = finish(flow, OK)
    assert session.id == "bps_1"
    assert session.url == "https://billing.stripe.com/p/session/test_abc"


def test_500_then_200_sleeps_then_succeeds() -> None:
    """A 500 yields a Sleep of the jittered backoff, then the same request again, then success."""
    flow = start()
    request = first_request(flow)
    assert flow.send(error_response(500)) == Sleep(0.375)
    assert flow.send(None) == request
    assert finish(flow, OK).id == "bps_1"


def test_connection_error_is_retried() -> None:
    """A retryable connection failure thrown in yields a Sleep and a second attempt."""
    flow = start()
    request = first_request(flow)
    assert flow.throw(APIConnectionError("connection reset")) == Sleep(0.375)
    assert flow.send(None) == request
    assert finish(flow, OK).id == "bps_1"


def test_non_retryable_connection_error_is_raised() -> None:
    """A connection failure marked unsafe to retry is raised as is."""
    flow = start()
    first_request(flow)
    failure = APIConnectionError("read timeout after sending", should_retry=False)
    with pytest.raises(APIConnectionError) as info:
        flow.throw(failure)
    assert info.value is failure


def test_should_retry_false_stops() -> None:
    """Stripe-Should-Retry: false on a 503 raises at once."""
    flow = start()
    first_request(flow)
    with pytest.raises(APIError) as info:
        flow.send(error_response(503, **{"Stripe-Should-Retry": "false"}))
    assert info.value.status == 503


def test_should_retry_true_forces_a_retry_of_a_400() -> None:
    """Stripe-Should-Retry: true makes even a 400 retried."""
    flow = start()
    first_request(flow)
    step = flow.send(error_response(400, **{"Stripe-Should-Retry": "true"}))
    assert step == Sleep(0.375)


def test_retry_after_is_honoured() -> None:
    """A 429 with Retry-After: 2 sleeps 2 s, longer than the backoff."""
    flow = start()
    first_request(flow)
    assert flow.send(error_response(429, **{"Retry-After": "2"})) == Sleep(2.0)


def test_retry_after_beyond_the_cap_raises() -> None:
    """A 429 with Retry-After: 30 is raised at once instead of blocking."""
    flow = start()
    first_request(flow)
    with pytest.raises(RateLimitError):
        flow.send(error_response(429, **{"Retry-After": "30"}))


class FakeMonotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_attempt_is_handed_the_call_deadline() -> None:
    """The first attempt gets the client's whole deadline; a per-call deadline wins over it."""
    assert first_request(start(deadline=42.0)).deadline == 42.0
    assert first_request(start(options=CallOptions(deadline=7.5), deadline=42.0)).deadline == 7.5


def test_a_retry_is_handed_what_is_left_of_the_deadline() -> None:
    """After a failed attempt and its sleep, the next attempt may use only the time that is left."""
    clock = FakeMonotonic()
    flow = start(deadline=10.0, monotonic=clock)
    first_request(flow)
    clock.now += 3.0  # the first attempt took 3 s
    sleep = flow.throw(APIConnectionError("connection reset"))
    assert sleep == Sleep(0.375)
    clock.now += sleep.seconds
    retry = as_request(flow.send(None))
    assert retry.deadline == pytest.approx(10.0 - 3.0 - 0.375)


def test_no_retry_when_the_backoff_would_outlast_the_deadline() -> None:
    """A retryable failure with no time left for another attempt raises the failure at once."""
    clock = FakeMonotonic()
    flow = start(deadline=5.0, monotonic=clock)
    first_request(flow)
    clock.now += 4.9
    failure = APIConnectionError("timed out waiting for Stripe's response")
    with pytest.raises(APIConnectionError) as info:
        flow.throw(failure)
    assert info.value is failure


def test_no_retry_of_a_5xx_when_the_deadline_is_spent() -> None:
    """A 503 that would be retried is raised as an APIError once the deadline leaves no room."""
    clock = FakeMonotonic()
    flow = start(deadline=5.0, monotonic=clock)
    first_request(flow)
    clock.now += 4.8
    with pytest.raises(APIError) as info:
        flow.send(error_response(503))
    assert info.value.status == 503


@pytest.mark.parametrize("status", [409, 429, 500, 502, 503])
def test_retryable_statuses_are_retried(status: int) -> None:
    """409, 429 and 5xx answers lead to a Sleep."""
    flow = start()
    first_request(flow)
    assert isinstance(flow.send(error_response(status)), Sleep)


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, InvalidRequestError), (404, InvalidRequestError), (401, LatticeStripeError)],
)
def test_client_errors_are_not_retried(status: int, error: type[Exception]) -> None:
    """A 400, 401 or 404 is raised on the first answer."""
    flow = start()
    first_request(flow)
    with pytest.raises(error):
        flow.send(
            stripe_error_response(status, type="invalid_request_error", message="No such thing")
        )


def drive_failing(
    flow: Flow, reply: Callable[[int], HttpResponse]
) -> tuple[int, LatticeStripeError]:
    """Answer attempt n with reply(n) until the flow raises; return the attempts and the error."""
    attempts = 0
    step: HttpRequest | Sleep = first_request(flow)
    for _ in range(40):
        try:
            if isinstance(step, HttpRequest):
                attempts += 1
                step = flow.send(reply(attempts))
            else:
                step = flow.send(None)
        except LatticeStripeError as error:
            return attempts, error
    raise AssertionError("the flow never gave up")


@pytest.mark.parametrize(("max_retries", "attempts"), [(0, 1), (1, 2), (2, 3), (4, 5)])
def test_max_retries_is_respected(max_retries: int, attempts: int) -> None:
    """The client's max_retries bounds the attempts; the last answer's error is raised."""
    seen, error = drive_failing(
        start(max_retries=max_retries),
        lambda n: error_response(500, **{"Request-Id": f"req_{n}"}),
    )
    assert seen == attempts
    assert isinstance(error, APIError)
    assert error.request_id == f"req_{attempts}"


@pytest.mark.parametrize(("per_call", "attempts"), [(0, 1), (3, 4)])
def test_per_call_max_retries_overrides_the_client(per_call: int, attempts: int) -> None:
    """max_retries per call (including 0) replaces the client's setting."""
    flow = start(options=CallOptions(max_retries=per_call), max_retries=2)
    seen, error = drive_failing(flow, lambda n: error_response(502))
    assert seen == attempts
    assert isinstance(error, APIError)


def test_every_attempt_carries_the_same_idempotency_key() -> None:
    """One generated key is used for the first attempt and every retry."""
    keys = iter(["key-1", "key-2", "key-3"])
    flow = start(new_key=lambda: next(keys))
    sent = [first_request(flow)]
    flow.send(error_response(500))
    sent.append(as_request(flow.send(None)))
    flow.throw(APIConnectionError("reset"))
    sent.append(as_request(flow.send(None)))
    assert [request.headers["Idempotency-Key"] for request in sent] == ["key-1"] * 3


def test_a_given_idempotency_key_is_used() -> None:
    """A caller's idempotency key is sent as is, and no key is generated."""
    flow = start(options=CallOptions(idempotency_key="order-42-portal"), new_key=no_key)
    assert first_request(flow).headers["Idempotency-Key"] == "order-42-portal"


def test_backoff_uses_the_injected_random_and_is_capped() -> None:
    """Each Sleep is 0.5 s doubling, capped at 5 s, jittered by the next injected draw."""
    draws = iter([0.0, 0.5, 0.25, 0.75, 0.0, 0.999])
    flow = start(max_retries=6, randoms=draws)
    first_request(flow)
    sleeps = []
    for _ in range(6):
        step = flow.send(error_response(503))
        assert isinstance(step, Sleep)
        sleeps.append(step.seconds)
        flow.send(None)
    assert sleeps == pytest.approx([0.25, 0.75, 1.25, 3.5, 2.5, 4.9975])


@pytest.mark.parametrize(
    "params",
    [{}, {"customer": "jane@example.com"}, {"customer": "cus_1", "flow_data": {"type": "x"}}],
)
def test_validation_error_before_any_yield(params: dict[str, object]) -> None:
    """Bad parameters raise on the first step: no request is ever produced."""
    flow = start(params)
    with pytest.raises(ValidationError):
        next(flow)


@pytest.mark.parametrize(
    ("options", "path"),
    [
        (CallOptions(idempotency_key=""), "idempotency_key"),
        (CallOptions(idempotency_key="k" * 256), "idempotency_key"),
        (CallOptions(idempotency_key="line\nbreak"), "idempotency_key"),
        (CallOptions(stripe_account="cus_1"), "stripe_account"),
        (CallOptions(api_key="pk_test_123"), "api_key"),
        (CallOptions(api_key="not-a-key"), "api_key"),
        (CallOptions(stripe_version=""), "stripe_version"),
        (CallOptions(timeout=0), "timeout"),
        (CallOptions(timeout=float("inf")), "timeout"),
        (CallOptions(timeout=float("nan")), "timeout"),
        (CallOptions(deadline=0), "deadline"),
        (CallOptions(deadline=-1.0), "deadline"),
        (CallOptions(max_retries=-1), "max_retries"),
    ],
)
def test_bad_call_options_raise_before_any_yield(options: CallOptions, path: str) -> None:
    """Per-call options are checked before anything is sent, naming the option."""
    flow = start(options=options)
    with pytest.raises(ValidationError) as info:
        next(flow)
    assert info.value.path == path


def test_success_body_that_is_not_a_session_is_not_retried() -> None:
    """A 200 with a malformed body raises ResponseDecodeError at once."""
    flow = start()
    first_request(flow)
    with pytest.raises(ResponseDecodeError) as info:
        flow.send(HttpResponse(status=200, body=b"<html>captive portal</html>"))
    assert info.value.status == 200
    assert info.value.idempotency_key == "generated-key"


def test_driver_must_send_back_a_response() -> None:
    """Sending None in place of a response is a driver bug, reported as TypeError."""
    flow = start()
    first_request(flow)
    with pytest.raises(TypeError, match="driver"):
        flow.send(None)


# -- the request -------------------------------------------------------------------


def test_request_line_and_headers() -> None:
    """POST to /v1/billing_portal/sessions with Stripe's auth, version and client headers."""
    request = first_request(start())
    assert request.method == "POST"
    assert request.url == "https://api.stripe.com/v1/billing_portal/sessions"
    headers = request.headers
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert headers["Stripe-Version"] == "2026-10-28.endive"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["User-Agent"].startswith(f"lattice-stripe/{lattice_stripe.__version__} ")
    client_agent = json.loads(headers["X-Stripe-Client-User-Agent"])
    assert client_agent["lang"] == "python"
    assert client_agent["publisher"] == "lattice-stripe"
    assert client_agent["bindings_version"] == lattice_stripe.__version__
    assert headers["Idempotency-Key"] == "generated-key"
    assert "Stripe-Account" not in headers
    assert request.body == b"customer=cus_abc123&return_url=https%3A%2F%2Fexample.com%2Faccount"


def test_per_call_options_shape_the_request() -> None:
    """stripe_account, api_key, stripe_version and timeout per call land on the request."""
    request = first_request(
        start(
            options=CallOptions(
                stripe_account="acct_1Connected",
                api_key="rk_test_restricted1",
                stripe_version="2026-08-26.dahlia",
                timeout=7.5,
            )
        )
    )
    assert request.headers["Stripe-Account"] == "acct_1Connected"
    assert request.headers["Authorization"] == "Bearer rk_test_restricted1"
    assert request.headers["Stripe-Version"] == "2026-08-26.dahlia"
    assert request.timeout == 7.5
    assert request.connect_timeout == 7.5


def test_client_settings_shape_the_request() -> None:
    """base_url, timeouts and the response size limit come from the client's configuration."""
    request = first_request(
        start(
            base_url="http://127.0.0.1:12111/",
            timeout=12.0,
            connect_timeout=3.0,
            max_response_bytes=4096,
        )
    )
    assert request.url == "http://127.0.0.1:12111/v1/billing_portal/sessions"
    assert (request.timeout, request.connect_timeout, request.max_response_bytes) == (
        12.0,
        3.0,
        4096,
    )


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("timeout", -1),
        ("timeout", 0),
        ("connect_timeout", float("inf")),
        ("deadline", 0),
        ("deadline", float("nan")),
        ("deadline", True),
        ("max_retries", -1),
        ("max_response_bytes", 0),
    ],
)
def test_bad_client_settings_are_refused_naming_the_setting(setting: str, value: object) -> None:
    """A client setting out of its range raises ValidationError naming it, before any call."""
    with pytest.raises(ValidationError) as info:
        ClientConfig(api_key=API_KEY, **{setting: value})  # type: ignore[arg-type]
    assert info.value.path == setting


# -- one scenario table, both clients ----------------------------------------------

Reply = Callable[[], HttpResponse | APIConnectionError]


def replying(status: int, **headers: str) -> Reply:
    return lambda: error_response(status, **headers)


def dropping() -> HttpResponse | APIConnectionError:
    return APIConnectionError("connection reset by peer (fake)")


@attrs.frozen
class Scenario:
    name: str
    params: dict[str, object]
    replies: tuple[Reply, ...] = ()
    options: dict[str, Any] = attrs.Factory(dict)
    error: type[Exception] | None = None
    attempts: int = 1
    sleeps: tuple[float, ...] = ()


SCENARIOS = [
    Scenario("homepage", PARAMS),
    Scenario(
        "cancel flow",
        {
            "customer": "cus_abc123",
            "flow_data": {
                "type": "subscription_cancel",
                "subscription_cancel": {"subscription": "sub_1"},
            },
        },
    ),
    Scenario("500 then ok", PARAMS, (replying(500),), attempts=2, sleeps=(0.375,)),
    Scenario("two drops then ok", PARAMS, (dropping, dropping), attempts=3, sleeps=(0.375, 0.75)),
    Scenario(
        "429 with Retry-After then ok",
        PARAMS,
        (replying(429, **{"Retry-After": "1"}),),
        attempts=2,
        sleeps=(1.0,),
    ),
    Scenario(
        "503 exhausted",
        PARAMS,
        (replying(503),) * 3,
        error=APIError,
        attempts=3,
        sleeps=(0.375, 0.75),
    ),
    Scenario(
        "drops exhausted",
        PARAMS,
        (dropping,) * 3,
        error=APIConnectionError,
        attempts=3,
        sleeps=(0.375, 0.75),
    ),
    Scenario(
        "should retry false",
        PARAMS,
        (replying(500, **{"Stripe-Should-Retry": "false"}),),
        error=APIError,
    ),
    Scenario(
        "400 not retried",
        PARAMS,
        (lambda: stripe_error_response(400, message="No such customer: 'cus_abc123'"),),
        error=InvalidRequestError,
    ),
    Scenario(
        "idempotency error",
        PARAMS,
        (lambda: stripe_error_response(400, type="idempotency_error"),),
        error=IdempotencyError,
    ),
    Scenario(
        "per-call max_retries 0", PARAMS, (replying(500),), {"max_retries": 0}, error=APIError
    ),
    Scenario(
        "connected account and own key",
        PARAMS,
        options={"stripe_account": "acct_1Connected", "idempotency_key": "mine"},
    ),
    Scenario(
        "validation error", {"customer": "jane@example.com"}, error=ValidationError, attempts=0
    ),
    Scenario(
        "bad option", PARAMS, options={"stripe_account": "cus_1"}, error=ValidationError, attempts=0
    ),
]


@attrs.frozen
class Outcome:
    error: str | None
    session: dict[str, Any] | None
    params: list[dict[str, Any]]
    headers: list[dict[str, str]]
    sleeps: list[float]


def make_fake(scenario: Scenario) -> RecordingTransport:
    fake = RecordingTransport(clock=lambda: 1_700_000_000.0)
    fake.queue(*(reply() for reply in scenario.replies))
    return fake


def outcome(
    fake: RecordingTransport, sleeps: list[float], session: Session | None, error: Exception | None
) -> Outcome:
    return Outcome(
        error=None if error is None else f"{type(error).__name__}: {error}",
        session=None if session is None else session.to_dict(),
        params=[request.params for request in fake.requests],
        headers=[dict(request.headers) for request in fake.requests],
        sleeps=sleeps,
    )


def run_sync(scenario: Scenario) -> Outcome:
    fake, keys = make_fake(scenario), itertools.count(1)
    sleeps: list[float] = []
    client = Client(
        API_KEY,
        transport=fake,
        sleep=sleeps.append,
        random=lambda: 0.5,
        idempotency_key_factory=lambda: f"key-{next(keys)}",
    )
    with client:
        try:
            session = client.billing_portal.sessions.create(scenario.params, **scenario.options)
        except LatticeStripeError as error:
            return outcome(fake, sleeps, None, error)
    return outcome(fake, sleeps, session, None)


async def run_async(scenario: Scenario) -> Outcome:
    fake, keys = make_fake(scenario), itertools.count(1)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = AsyncClient(
        API_KEY,
        transport=fake,
        sleep=sleep,
        random=lambda: 0.5,
        idempotency_key_factory=lambda: f"key-{next(keys)}",
    )
    async with client:
        try:
            session = await client.billing_portal.sessions.create(
                scenario.params, **scenario.options
            )
        except LatticeStripeError as error:
            return outcome(fake, sleeps, None, error)
    return outcome(fake, sleeps, session, None)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_sync_and_async_clients_agree(scenario: Scenario) -> None:
    """Each scenario gives identical requests, sleeps and result through Client and AsyncClient."""
    sync, async_ = run_sync(scenario), await run_async(scenario)
    assert sync == async_
    assert len(sync.params) == scenario.attempts
    assert sync.sleeps == pytest.approx(list(scenario.sleeps))
    if scenario.error is None:
        assert sync.error is None
        assert sync.session is not None
        assert sync.session["customer"] == scenario.params["customer"]
        assert sync.session["url"].startswith("https://billing.stripe.com/p/session/test_")
    else:
        assert sync.error is not None
        assert sync.error.startswith(f"{scenario.error.__name__}:")
    expected_key = scenario.options.get("idempotency_key", "key-1")
    for params, headers in zip(sync.params, sync.headers, strict=True):
        assert params["customer"] == scenario.params["customer"]
        assert headers["Idempotency-Key"] == expected_key
        assert headers["Authorization"] == "Bearer sk_test_[redacted]"
        assert headers.get("Stripe-Account") == scenario.options.get("stripe_account")


def test_default_idempotency_keys_are_unique_across_threads() -> None:
    """Keys made by 8 threads at once (the default factory) are all distinct and well formed."""
    from lattice_stripe.client import new_idempotency_key

    def make(count: int) -> list[str]:
        return [new_idempotency_key() for _ in range(count)]

    with ThreadPoolExecutor(8) as pool:
        keys = [key for batch in pool.map(make, [5000] * 8) for key in batch]
    assert len(set(keys)) == len(keys) == 40_000
    assert all(0 < len(key) <= 255 and key.isprintable() for key in keys)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_repeats_its_parents_idempotency_keys() -> None:
    """A forked worker (gunicorn --preload) draws its own key prefix: no key is shared."""
    from lattice_stripe.client import new_idempotency_key

    parent_before = new_idempotency_key()
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads; the child only writes.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        try:
            os.write(write_end, json.dumps([new_idempotency_key() for _ in range(3)]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child_keys = json.loads(pipe.read())
    os.waitpid(pid, 0)
    parent_after = [new_idempotency_key() for _ in range(3)]
    prefix = parent_before.rsplit("-", 1)[0]
    assert all(key.rsplit("-", 1)[0] == prefix for key in parent_after)
    assert all(key.rsplit("-", 1)[0] != prefix for key in child_keys)
    assert set(child_keys).isdisjoint({parent_before, *parent_after})


def test_every_client_call_gets_a_new_idempotency_key() -> None:
    """Two creates through one client send two different generated Idempotency-Keys."""
    fake = RecordingTransport()
    with Client(API_KEY, transport=fake) as client:
        client.billing_portal.sessions.create(PARAMS)
        client.billing_portal.sessions.create(PARAMS)
    first, second = (request.idempotency_key for request in fake.requests)
    assert first is not None
    assert second is not None
    assert first != second


def _tracked_flow(closed: list[str], request: HttpRequest, *, sleep_first: bool = False) -> Any:
    """A flow that yields an optional Sleep then ``request``, noting how it was left."""
    try:
        if sleep_first:
            yield Sleep(0.0)
        response = yield request
        return response
    except GeneratorExit:
        closed.append("closed")
        raise
    finally:
        closed.append("finished")


@pytest.mark.parametrize("ending", ["returned", "transport interrupted", "sleep interrupted"])
def test_the_sync_driver_leaves_no_flow_open(ending: str) -> None:
    """Whatever ends a call, the driver has finished its flow: nothing of the call outlives it."""
    closed: list[str] = []
    request = HttpRequest(method="GET", url="https://api.stripe.com/v1/x", headers={})
    fake = RecordingTransport()

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    sleep = interrupt if ending == "sleep interrupted" else (lambda seconds: None)
    if ending == "transport interrupted":
        fake.send = interrupt  # type: ignore[method-assign,assignment]
    client = Client(API_KEY, transport=fake, sleep=sleep)
    flow = _tracked_flow(closed, request, sleep_first=ending == "sleep interrupted")
    if ending == "returned":
        client._run(flow)
    else:
        with pytest.raises(KeyboardInterrupt):
            client._run(flow)
    assert flow.gi_frame is None
    assert closed[-1] == "finished"


def test_keyword_call_options_are_exactly_call_options_fields() -> None:
    """Resources taking options as keywords accept each CallOptions field and refuse any other."""
    valid: dict[str, object] = {
        "api_key": API_KEY,
        "idempotency_key": "key-1",
        "stripe_account": "acct_1Options",
        "stripe_version": "2026-10-28.endive",
        "timeout": 5.0,
        "deadline": 5.0,
        "max_retries": 0,
    }
    assert set(valid) == {field.name for field in attrs.fields(CallOptions)}
    fake = RecordingTransport()
    client = Client(API_KEY, transport=fake)
    wanted = {"features": {"invoice_history": {"enabled": True}}}
    with pytest.raises(TypeError, match=r"unknown call option\(s\): idempotencykey"):
        client.billing_portal.configurations.create(wanted, idempotencykey="k")
    assert fake.requests == []
    for name, value in valid.items():
        client.billing_portal.configurations.create(wanted, **{name: value})
    assert len(fake.requests) == len(valid)
