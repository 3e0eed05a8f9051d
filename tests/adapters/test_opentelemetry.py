"""OpenTelemetry: spans and metrics per the HTTP client conventions, exported with nothing secret.

Every test passes its own SDK providers (in-memory span exporter, in-memory
metric reader) to the client, so no global provider is ever set in this
process; the global one is exercised in a fresh interpreter.
"""

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from faultserver import Action, CloseSilently, FaultServer, Reset, StripeSession, stripe_error
from faultserver import free_port as unused_port
from lattice_stripe import (
    APIConnectionError,
    AsyncClient,
    Client,
    LatticeStripeError,
    RateLimitError,
)
from lattice_stripe.adapters.asyncio import AsyncioTransport
from lattice_stripe.adapters.opentelemetry import OpenTelemetryObserver
from lattice_stripe.adapters.stdlib import StdlibTransport

API_KEY = "sk_test_51OtelSpansKey00000000000000000"
PARAMS = {"customer": "cus_OtelCustomer", "return_url": "https://shop.example/account"}
SESSIONS = "/v1/billing_portal/sessions"
TEMPLATES = {
    "create": SESSIONS,
    "retrieve": "/v1/billing_portal/configurations/{configuration}",
    "list": "/v1/billing_portal/configurations",
}


def _no_sleep(seconds: float) -> None:
    """Retries in tests never wait on the wall clock."""


async def _no_async_sleep(seconds: float) -> None:
    """Retries in tests never wait on the wall clock."""


class Telemetry:
    """SDK providers exporting to memory, and an observer built on them."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.observer = OpenTelemetryObserver(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """Each metric's data points as (attributes, value or histogram count)."""
        data = self.reader.get_metrics_data()
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = [
                        (dict(point.attributes or {}), getattr(point, "value", None) or point.count)  # type: ignore[union-attr]
                        for point in metric.data.data_points
                    ]
        return found

    def exported_text(self) -> str:
        """Everything exported, as an exporter would serialise it."""
        parts = [span.to_json() for span in self.finished()]
        data = self.reader.get_metrics_data()
        if data is not None:
            parts.append(data.to_json())
        return "\n".join(parts)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """Fresh in-memory providers, shut down after the test."""
    made = Telemetry()
    yield made
    made.shutdown()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """A scripted loopback server answering as Stripe does."""
    with FaultServer() as running:
        yield running


def _client(base_url: str, telemetry: Telemetry, **options: Any) -> Client:
    return Client(
        API_KEY,
        transport=StdlibTransport(),
        base_url=base_url,
        sleep=_no_sleep,
        observers=[telemetry.observer],
        **options,
    )


def _split(spans: list[ReadableSpan]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The call span (the one without a parent among these) and its attempts, in order."""
    (call,) = [span for span in spans if span.parent is None or not _among(span.parent, spans)]
    attempts = sorted(
        (span for span in spans if span is not call), key=lambda span: span.start_time or 0
    )
    return call, attempts


def _among(parent: Any, spans: list[ReadableSpan]) -> bool:
    return any(span.context.span_id == parent.span_id for span in spans)


def test_a_create_is_a_client_span_with_one_attempt_per_conventions(
    server: FaultServer, telemetry: Telemetry
) -> None:
    """One create: a CLIENT call span and a CLIENT attempt child, attributed per the conventions."""
    with _client(server.base_url, telemetry) as client:
        client.billing_portal.sessions.create(PARAMS)
    sent = server.requests[0]
    call, (attempt,) = _split(telemetry.finished())
    for span in (call, attempt):
        assert span.name == "POST /v1/billing_portal/sessions"
        assert span.kind is SpanKind.CLIENT
        attributes = dict(span.attributes or {})
        assert attributes["http.request.method"] == "POST"
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["server.port"] == server.port
        assert attributes["url.template"] == SESSIONS
        assert attributes["url.full"] == server.base_url + SESSIONS
        assert attributes["http.response.status_code"] == 200
        assert attributes["stripe.request_id"].startswith("req_Loopback")  # type: ignore[union-attr]
        assert attributes["stripe.idempotency_key_prefix"] == sent.header("Idempotency-Key")[:8]  # type: ignore[index]
        assert attributes["stripe.api_version"] == sent.header("Stripe-Version")
        assert attributes["stripe.livemode"] is False
        assert "error.type" not in attributes
        assert span.status.status_code is StatusCode.UNSET
    assert attempt.parent is not None
    assert attempt.parent.span_id == call.context.span_id
    assert dict(call.attributes or {})["stripe.retry_count"] == 0
    assert "http.request.resend_count" not in dict(attempt.attributes or {})


def test_retries_are_children_of_one_call_span(server: FaultServer, telemetry: Telemetry) -> None:
    """A 429 then a 200: two attempt spans under one call span, the retry counted and explained."""
    server.script(stripe_error(429, type="rate_limit_error"), StripeSession())
    with _client(server.base_url, telemetry) as client:
        client.billing_portal.sessions.create(PARAMS)
    call, (first, second) = _split(telemetry.finished())
    assert {first.parent.span_id, second.parent.span_id} == {call.context.span_id}  # type: ignore[union-attr]
    first_attributes = dict(first.attributes or {})
    assert first_attributes["http.response.status_code"] == 429
    assert first_attributes["error.type"] == "429"
    assert first.status.status_code is StatusCode.ERROR
    assert dict(second.attributes or {})["http.request.resend_count"] == 1
    assert second.status.status_code is StatusCode.UNSET
    call_attributes = dict(call.attributes or {})
    assert call_attributes["stripe.retry_count"] == 1
    assert call_attributes["http.response.status_code"] == 200
    (retry,) = call.events
    assert retry.name == "stripe.retry"
    assert dict(retry.attributes or {})["stripe.retry.reason"] == "429"
    metrics = telemetry.metrics()
    assert sum(value for _, value in metrics["stripe.client.attempts"]) == 2
    assert metrics["stripe.client.retries"] == [
        (
            {
                "http.request.method": "POST",
                "server.address": "127.0.0.1",
                "server.port": server.port,
                "url.template": SESSIONS,
                "stripe.operation": "billing_portal.sessions.create",
                "stripe.retry.reason": "429",
            },
            1,
        )
    ]
    ((labels, count),) = metrics["stripe.client.call.duration"]
    assert count == 1
    assert labels["http.response.status_code"] == 200
    assert sum(count for _, count in metrics["http.client.request.duration"]) == 2
    assert "stripe.client.errors" not in metrics


def test_a_failed_call_records_its_error_class(server: FaultServer, telemetry: Telemetry) -> None:
    """Retries run out on 429s: the call span and the errors counter name RateLimitError."""
    server.script(*[stripe_error(429, type="rate_limit_error")] * 2)
    with (
        _client(server.base_url, telemetry, max_retries=1) as client,
        pytest.raises(RateLimitError),
    ):
        client.billing_portal.sessions.create(PARAMS)
    call, attempts = _split(telemetry.finished())
    assert len(attempts) == 2
    assert dict(call.attributes or {})["error.type"] == "RateLimitError"
    assert call.status.status_code is StatusCode.ERROR
    assert call.status.description is None  # never the error's message
    ((labels, count),) = telemetry.metrics()["stripe.client.errors"]
    assert (labels["error.type"], count) == ("RateLimitError", 1)


def test_a_connection_failure_is_an_error_type_without_a_status(telemetry: Telemetry) -> None:
    """Nobody listening: each attempt and the call end with error.type APIConnectionError."""
    base_url = f"http://127.0.0.1:{unused_port()}"
    with _client(base_url, telemetry, max_retries=1) as client, pytest.raises(APIConnectionError):
        client.billing_portal.sessions.create(PARAMS)
    call, attempts = _split(telemetry.finished())
    for span in (call, *attempts):
        attributes = dict(span.attributes or {})
        assert attributes["error.type"] == "APIConnectionError"
        assert "http.response.status_code" not in attributes
    assert [event.name for event in call.events] == ["stripe.retry"]


def test_the_current_span_is_the_parent(server: FaultServer, telemetry: Telemetry) -> None:
    """A call made inside a request's span (as a framework's instrumentation opens) is its child."""
    tracer = telemetry.tracer_provider.get_tracer("app")
    with (
        _client(server.base_url, telemetry) as client,
        tracer.start_as_current_span("GET /account", kind=SpanKind.SERVER) as request_span,
    ):
        client.billing_portal.sessions.create(PARAMS)
    spans = telemetry.finished()
    (call,) = [
        span
        for span in spans
        if span.name.startswith("POST")
        and span.parent is not None
        and span.parent.span_id == request_span.get_span_context().span_id
    ]
    assert call.context.trace_id == request_span.get_span_context().trace_id


async def test_async_calls_take_their_task_s_current_span_as_parent(
    server: FaultServer, telemetry: Telemetry
) -> None:
    """Concurrent async creates, each in its own request span, are each that span's child."""
    tracer = telemetry.tracer_provider.get_tracer("app")
    async with AsyncClient(
        API_KEY,
        transport=AsyncioTransport(),
        base_url=server.base_url,
        sleep=_no_async_sleep,
        observers=[telemetry.observer],
    ) as client:

        async def handle(name: str) -> int:
            with tracer.start_as_current_span(name, kind=SpanKind.SERVER) as span:
                await asyncio.sleep(0)
                await client.billing_portal.sessions.create(PARAMS)
                return span.get_span_context().span_id

        request_ids = await asyncio.gather(handle("GET /a"), handle("GET /b"))
    spans = telemetry.finished()
    calls = [span for span in spans if dict(span.attributes or {}).get("stripe.retry_count") == 0]
    assert sorted(call.parent.span_id for call in calls) == sorted(request_ids)  # type: ignore[union-attr]


def test_the_global_provider_is_used_once_set() -> None:
    """In a fresh process: no spans before a provider is set, spans once a look has found it."""
    script = """
import json, time
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from lattice_stripe import Client
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.core.operations import SESSION_CREATE
from lattice_stripe.core.flow import NO_OPTIONS
import lattice_stripe.adapters.opentelemetry as adapter
adapter.LOOK_EVERY = 0.05

client = Client("sk_test_51OtelGlobalKey000000", transport=RecordingTransport())
params = {"customer": "cus_1", "return_url": "https://shop.example/"}
flow = client._flow(SESSION_CREATE, params, NO_OPTIONS)
unwrapped = flow.gi_code.co_name == "run"
flow.close()
client.billing_portal.sessions.create(params)
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
time.sleep(0.1)  # past LOOK_EVERY: the next call looks again
client.billing_portal.sessions.create(params)
print(json.dumps({"unwrapped": unwrapped,
                  "spans": [span.name for span in exporter.get_finished_spans()]}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    found = json.loads(result.stdout)
    assert found == {
        "unwrapped": True,
        "spans": ["POST /v1/billing_portal/sessions", "POST /v1/billing_portal/sessions"],
    }


def test_explicit_providers_replace_the_global_ones(telemetry: Telemetry) -> None:
    """A client given an OpenTelemetryObserver does not also trace through the global providers."""
    from lattice_stripe.adapters.opentelemetry import discover

    assert discover((telemetry.observer,)) is None
    assert discover(()) is not None
    assert trace.get_tracer_provider().__class__.__name__ == "ProxyTracerProvider"


# -- nothing secret, whatever happens ----------------------------------------------------


class Interrupt(BaseException):
    """Raised at one chosen line of a call, as a signal or a worker timeout would."""


_CALL_PATHS = ("/lattice_stripe/", "/http/", "/json/", "socket.py")


def _interrupt_at(line: int) -> Callable[..., Any]:
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if event == "line" and any(part in frame.f_code.co_filename for part in _CALL_PATHS):
            count += 1
            if count == line:
                raise Interrupt(f"line {line}")
        return tracer

    return tracer


@pytest.fixture(scope="module")
def answering() -> Iterator[FaultServer]:
    """One loopback server for many examples."""
    with FaultServer() as running:
        yield running


_ACTIONS: dict[str, Callable[[], Action]] = {
    "session": StripeSession,
    "429": lambda: stripe_error(429, type="rate_limit_error"),
    "500": lambda: stripe_error(500),
    "400": lambda: stripe_error(400, type="invalid_request_error"),
    "402": lambda: stripe_error(402, type="card_error", code="card_declined"),
    "reset": Reset,
    "silent": CloseSilently,
}
_NAMES = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(max_examples=60, deadline=None)
@given(
    key=_NAMES,
    customer=_NAMES,
    user=_NAMES,
    script=st.lists(st.sampled_from(sorted(_ACTIONS)), min_size=1, max_size=3),
    interrupt=st.none() | st.integers(min_value=1, max_value=2500),
    operation=st.sampled_from(["create", "retrieve", "list"]),
)
def test_no_export_ever_holds_a_url_key_or_parameter(
    answering: FaultServer,
    operation: str,
    key: str,
    customer: str,
    user: str,
    script: list[str],
    interrupt: int | None,
) -> None:
    """No exported span, event, attribute or metric label holds a key, portal URL or parameter."""
    telemetry = Telemetry()
    api_key = f"sk_test_Zq{key}"
    return_url = f"https://zq{user.lower()}.example/account/Zq{user}"
    params = {"customer": f"cus_Zq{customer}", "return_url": return_url}
    answering.script(*(_ACTIONS[name]() for name in script))
    try:
        with Client(
            api_key,
            transport=StdlibTransport(),
            base_url=answering.base_url,
            sleep=_no_sleep,
            max_retries=2,
            observers=[telemetry.observer],
        ) as client:
            previous = sys.gettrace()
            if interrupt is not None:
                sys.settrace(_interrupt_at(interrupt))
            try:
                if operation == "create":
                    client.billing_portal.sessions.create(params)
                elif operation == "retrieve":
                    client.billing_portal.configurations.retrieve(f"bpc_Zq{customer}")
                else:
                    client.billing_portal.configurations.list(
                        {"limit": 3, "starting_after": f"bpc_Zq{customer}"}
                    )
            except (Interrupt, LatticeStripeError):
                pass
            finally:
                sys.settrace(previous)
        text = telemetry.exported_text()
        secrets = (api_key, f"Zq{key}", f"Zq{customer}", f"Zq{user}", f"zq{user.lower()}")
        for secret in (*secrets, "/p/session/", "test_Loopback"):
            assert secret not in text, f"{secret!r} exported"
        for span in telemetry.finished():
            attributes = dict(span.attributes or {})
            assert attributes["url.full"] == answering.base_url + TEMPLATES[operation]
            assert span.status.description is None
    finally:
        telemetry.shutdown()


def test_under_the_asgi_instrumentation_the_request_span_is_the_parent() -> None:
    """Starlette via stripe_lifespan, under OpenTelemetry's ASGI middleware: the call is a child."""
    pytest.importorskip("opentelemetry.instrumentation.asgi")
    script = """
import json
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient
from lattice_stripe.adapters.recording import RecordingTransport
from lattice_stripe.contrib.starlette import redirect_to_portal, stripe_lifespan

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

async def billing(request: Request):
    return await redirect_to_portal(
        request, customer="cus_1", return_url="https://shop.example/account"
    )

app = OpenTelemetryMiddleware(
    Starlette(
        routes=[Route("/billing", billing)],
        lifespan=stripe_lifespan("sk_test_51OtelAsgiKey0000", transport=RecordingTransport()),
    )
)
with TestClient(app, base_url="https://shop.example") as client:
    answer = client.get("/billing", follow_redirects=False)
spans = {span.context.span_id: span for span in exporter.get_finished_spans()}
print(json.dumps({
    "status": answer.status_code,
    "spans": sorted(
        [span.name, span.kind.name,
         spans[span.parent.span_id].name if span.parent and span.parent.span_id in spans else None]
        for span in spans.values()
    ),
}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["status"] == 303
    spans = found["spans"]
    assert ["GET /billing", "SERVER", None] in spans
    assert ["POST /v1/billing_portal/sessions", "CLIENT", "GET /billing"] in spans
    assert [
        "POST /v1/billing_portal/sessions",
        "CLIENT",
        "POST /v1/billing_portal/sessions",
    ] in spans
