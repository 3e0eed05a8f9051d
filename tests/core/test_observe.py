"""The observation hook: frozen, redacted events for every attempt of every call, sync and async."""

import asyncio
import itertools
import logging

import attrs
import pytest

from lattice_stripe import (
    APIConnectionError,
    AsyncClient,
    Client,
    RateLimitError,
    ValidationError,
)
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.core.http import HttpRequest, HttpResponse
from lattice_stripe.core.observe import (
    Call,
    CallEnd,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
)

API_KEY = "sk_test_51ObserveHookKey000000000000000"
LIVE_KEY = "sk_live_51ObserveHookLiveKey0000000000"
PARAMS = {"customer": "cus_Observe", "return_url": "https://example.com/account"}
SECRETS = (API_KEY, LIVE_KEY, API_KEY[8:], "/p/session/", "cus_Observe", "example.com/account")


def _no_sleep(seconds: float) -> None:
    """Retries in tests never wait on the wall clock."""


async def _no_async_sleep(seconds: float) -> None:
    """Retries in tests never wait on the wall clock."""


def _ticks() -> "itertools.count[float]":
    return itertools.count(100.0, 1.0)


class Recorder:
    """An Observer that keeps every event it is told, in order."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def start(self, call: Call) -> "Recorder":
        self.events.append(call)
        return self

    def on_request(self, event: RequestEvent) -> None:
        self.events.append(event)

    def on_response(self, event: ResponseEvent) -> None:
        self.events.append(event)

    def on_retry(self, event: RetryEvent) -> None:
        self.events.append(event)

    def on_end(self, event: CallEnd) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[object]:
        return [event for event in self.events if isinstance(event, kind)]


def assert_nothing_secret(events: list[object]) -> None:
    for event in events:
        text = repr(event) + str(attrs.asdict(event))  # type: ignore[arg-type]
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} in {text}"


def test_hooks_see_each_attempt_of_a_retried_create() -> None:
    """on_request/on_response get one frozen event per attempt: number, status, request id."""
    fake = RecordingTransport()
    fake.queue_error(429, type="rate_limit_error", headers={"request-id": "req_limited"})
    requests: list[RequestEvent] = []
    responses: list[ResponseEvent] = []
    with Client(
        API_KEY,
        transport=fake,
        sleep=_no_sleep,
        on_request=requests.append,
        on_response=responses.append,
    ) as client:
        client.billing_portal.sessions.create(PARAMS)
    assert [event.attempt for event in requests] == [1, 2]
    assert [(event.attempt, event.status, event.error_type) for event in responses] == [
        (1, 429, "429"),
        (2, 200, None),
    ]
    assert responses[0].request_id == "req_limited"
    assert responses[1].request_id == "req_fake000000000001"
    call = requests[0].call
    sent_key = fake.last_request.idempotency_key
    assert sent_key is not None
    assert call == Call(
        operation="billing_portal.sessions.create",
        method="POST",
        url_template="/v1/billing_portal/sessions",
        url="https://api.stripe.com/v1/billing_portal/sessions",
        server_address="api.stripe.com",
        server_port=443,
        api_version=client._config.stripe_version,
        livemode=False,
        idempotency_key_prefix=sent_key[:8],
    )
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        requests[0].attempt = 3  # type: ignore[misc]
    assert_nothing_secret([*requests, *responses])


def test_an_observer_sees_retries_and_the_end_in_order() -> None:
    """An Observer is told request, response, retry (with its reason), then the call's end."""
    fake = RecordingTransport()
    fake.queue_connection_error()
    recorder = Recorder()
    with Client(API_KEY, transport=fake, sleep=_no_sleep, observers=[recorder]) as client:
        client.billing_portal.sessions.create(PARAMS)
    kinds = [type(event).__name__ for event in recorder.events]
    assert kinds == [
        "Call",
        "RequestEvent",
        "ResponseEvent",
        "RetryEvent",
        "RequestEvent",
        "ResponseEvent",
        "CallEnd",
    ]
    retry = recorder.of(RetryEvent)[0]
    assert isinstance(retry, RetryEvent)
    assert (retry.attempt, retry.reason) == (1, "APIConnectionError")
    assert retry.delay > 0
    end = recorder.events[-1]
    assert isinstance(end, CallEnd)
    assert (end.attempts, end.retries, end.status, end.error_type) == (2, 1, 200, None)
    assert_nothing_secret(recorder.events)


def test_durations_are_read_on_the_injected_clock() -> None:
    """Attempt and call durations come from the client's monotonic clock, not the wall clock."""
    ticks = _ticks()
    recorder = Recorder()
    with Client(
        API_KEY,
        transport=RecordingTransport(),
        monotonic=lambda: next(ticks),
        observers=[recorder],
    ) as client:
        client.billing_portal.sessions.create(PARAMS)
    (response,) = recorder.of(ResponseEvent)
    (end,) = recorder.of(CallEnd)
    assert isinstance(response, ResponseEvent)
    assert isinstance(end, CallEnd)
    assert response.duration == 1.0  # one tick: read before the send, read after it
    assert end.duration > response.duration
    assert end.duration.is_integer()


def test_a_stripe_error_ends_the_call_with_its_class() -> None:
    """A call that raises a StripeError ends with error_type naming the class, not the message."""
    fake = RecordingTransport()
    fake.queue_error(400, message="No such customer: 'cus_Observe'")
    recorder = Recorder()
    with (
        Client(API_KEY, transport=fake, observers=[recorder]) as client,
        pytest.raises(Exception, match="No such customer"),
    ):
        client.billing_portal.sessions.create(PARAMS)
    (end,) = recorder.of(CallEnd)
    assert isinstance(end, CallEnd)
    assert (end.error_type, end.status, end.attempts) == ("InvalidRequestError", 400, 1)
    assert_nothing_secret(recorder.events)


def test_retries_exhausted_end_with_the_last_error() -> None:
    """Every attempt is seen when retries run out, and the end names the error raised."""
    fake = RecordingTransport()
    for _ in range(3):
        fake.queue_error(429, type="rate_limit_error")
    recorder = Recorder()
    with (
        Client(
            API_KEY, transport=fake, sleep=_no_sleep, max_retries=2, observers=[recorder]
        ) as client,
        pytest.raises(RateLimitError),
    ):
        client.billing_portal.sessions.create(PARAMS)
    assert [e.attempt for e in recorder.of(RequestEvent)] == [1, 2, 3]  # type: ignore[attr-defined]
    assert [e.reason for e in recorder.of(RetryEvent)] == ["429", "429"]  # type: ignore[attr-defined]
    (end,) = recorder.of(CallEnd)
    assert isinstance(end, CallEnd)
    assert (end.error_type, end.retries) == ("RateLimitError", 2)


def test_a_refused_call_is_not_observed() -> None:
    """A call refused by the guard sends nothing, and no observer hears of it."""
    recorder = Recorder()
    with (
        Client(API_KEY, transport=RecordingTransport(), observers=[recorder]) as client,
        pytest.raises(ValidationError),
    ):
        client.billing_portal.sessions.create({"customer": "nope"})
    assert recorder.events == []


def test_a_failing_hook_is_logged_and_the_call_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    """A hook that raises never breaks the call: it is logged at WARNING, with no secret in it."""

    def broken(event: ResponseEvent) -> None:
        raise RuntimeError("hook bug")

    caplog.set_level(logging.WARNING, logger="lattice_stripe")
    with Client(API_KEY, transport=RecordingTransport(), on_response=broken) as client:
        session = client.billing_portal.sessions.create(PARAMS)
    assert session.id.startswith("bps_")
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "on_response" in record.getMessage()
    assert "RuntimeError" in record.getMessage()
    rendered = caplog.text
    for secret in SECRETS:
        assert secret not in rendered


def test_an_observer_failing_to_start_leaves_the_others_watching(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An observer whose start raises is skipped (and logged); the next one still sees the call."""

    class Broken:
        def start(self, call: Call) -> None:
            raise ValueError("broken observer")

    recorder = Recorder()
    caplog.set_level(logging.WARNING, logger="lattice_stripe")
    with Client(API_KEY, transport=RecordingTransport(), observers=[Broken(), recorder]) as c:
        c.billing_portal.sessions.create(PARAMS)
    assert len(recorder.of(CallEnd)) == 1
    assert "failed to start" in caplog.records[0].getMessage()


def test_a_path_id_never_reaches_an_event() -> None:
    """A retrieve by ID reports the URL template, never the configuration's ID."""
    recorder = Recorder()
    fake = RecordingTransport()
    fake.queue_error(404, message="No such configuration")
    with (
        Client(API_KEY, transport=fake, observers=[recorder]) as client,
        pytest.raises(Exception, match="No such configuration"),
    ):
        client.billing_portal.configurations.retrieve("bpc_SecretIdOfThisOne")
    (call,) = recorder.of(Call)
    assert isinstance(call, Call)
    assert call.url_template == "/v1/billing_portal/configurations/{configuration}"
    assert call.idempotency_key_prefix is None
    assert "bpc_SecretIdOfThisOne" not in repr(recorder.events)


def test_a_live_key_and_a_local_base_url_are_described() -> None:
    """livemode follows the key used; the server address and port come from the base URL."""
    recorder = Recorder()
    with Client(
        API_KEY,
        transport=RecordingTransport(),
        base_url="http://127.0.0.1:12111/",
        observers=[recorder],
    ) as client:
        client.billing_portal.sessions.create(PARAMS, api_key=LIVE_KEY, stripe_version="2024-06-20")
    (call,) = recorder.of(Call)
    assert isinstance(call, Call)
    assert call.livemode is True
    assert (call.server_address, call.server_port) == ("127.0.0.1", 12111)
    assert call.url == "http://127.0.0.1:12111/v1/billing_portal/sessions"
    assert call.api_version == "2024-06-20"
    assert_nothing_secret(recorder.events)


class Interrupting:
    """A transport interrupted in the middle of a send, as by Ctrl+C."""

    def send(self, request: HttpRequest) -> HttpResponse:
        raise KeyboardInterrupt

    def close(self) -> None:
        pass


def test_an_interrupted_call_ends_with_the_interruption() -> None:
    """An interruption in the transport ends the attempt and the call with its class; it raises."""
    recorder = Recorder()
    with (
        Client(API_KEY, transport=Interrupting(), observers=[recorder]) as client,
        pytest.raises(KeyboardInterrupt) as info,
    ):
        client.billing_portal.sessions.create(PARAMS)
    (response,) = recorder.of(ResponseEvent)
    (end,) = recorder.of(CallEnd)
    assert isinstance(response, ResponseEvent)
    assert isinstance(end, CallEnd)
    assert (response.status, response.error_type) == (None, "KeyboardInterrupt")
    assert end.error_type == "KeyboardInterrupt"
    # The traceback still ends where the interruption happened.
    tb = info.value.__traceback__
    assert tb is not None
    while tb.tb_next is not None:
        tb = tb.tb_next
    assert tb.tb_frame.f_code.co_name == "send"


async def test_async_hooks_see_each_attempt() -> None:
    """The async client tells the same events: a connection failure, then the answer."""
    fake = RecordingTransport()
    fake.queue_connection_error()
    recorder = Recorder()
    async with AsyncClient(
        API_KEY, transport=fake, sleep=_no_async_sleep, observers=[recorder]
    ) as client:
        await client.billing_portal.sessions.create(PARAMS)
    responses = recorder.of(ResponseEvent)
    assert [(e.status, e.error_type) for e in responses] == [  # type: ignore[attr-defined]
        (None, "APIConnectionError"),
        (200, None),
    ]
    (end,) = recorder.of(CallEnd)
    assert isinstance(end, CallEnd)
    assert end.retries == 1


class Hanging:
    """An async transport whose answer never comes."""

    async def asend(self, request: HttpRequest) -> HttpResponse:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        pass


async def test_a_cancelled_async_call_ends_with_the_cancellation() -> None:
    """Cancelling an awaited create (a timeout around it) ends the call with CancelledError."""
    recorder = Recorder()
    async with AsyncClient(API_KEY, transport=Hanging(), observers=[recorder]) as client:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.billing_portal.sessions.create(PARAMS), 0.05)
    (end,) = recorder.of(CallEnd)
    assert isinstance(end, CallEnd)
    assert end.error_type == "CancelledError"


def test_connection_failures_are_told_without_their_message() -> None:
    """A connection failure's event names its class only, never its message."""
    fake = RecordingTransport()
    fake.queue(APIConnectionError(f"refused talking to {API_KEY}", should_retry=False))
    recorder = Recorder()
    with (
        Client(API_KEY, transport=fake, observers=[recorder]) as client,
        pytest.raises(APIConnectionError),
    ):
        client.billing_portal.sessions.create(PARAMS)
    (end,) = recorder.of(CallEnd)
    assert isinstance(end, CallEnd)
    assert end.error_type == "APIConnectionError"
    assert_nothing_secret(recorder.events)
