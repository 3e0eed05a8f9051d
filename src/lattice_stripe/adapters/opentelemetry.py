"""OpenTelemetry traces and metrics for every call (``pip install 'lattice-stripe[otel]'``).

:class:`OpenTelemetryObserver` fits the core's
:class:`~lattice_stripe.core.observe.Observer` port. Each call is a CLIENT
span named ``{method} {url.template}`` (``POST /v1/billing_portal/sessions``)
whose parent is the span current where the call is made (the incoming
request's, under an instrumented framework, sync or async); each attempt is a
child CLIENT span, with ``http.request.resend_count`` on retries. Attributes
follow OpenTelemetry's HTTP client semantic conventions, plus ``stripe.*``
ones; ``url.full`` is built from the path template, so no span holds an
object's ID, a query string, a portal URL, a key, an email or a body. Error
messages are never recorded, only the class of the error.

Metrics: ``http.client.request.duration`` (per attempt, as the conventions
name it), ``stripe.client.call.duration``, ``stripe.client.attempts``,
``stripe.client.retries`` (by ``stripe.retry.reason``) and
``stripe.client.errors`` (by ``error.type``). Their attributes are all of low
cardinality: no request ID or idempotency key.

A client uses the global tracer and meter providers on its own, once a tracer
provider is set (``opentelemetry.trace.set_tracer_provider``, looked for at
most once a second); until then, a call costs what it costs without
OpenTelemetry. Give
``observers=[OpenTelemetryObserver(tracer_provider=..., meter_provider=...)]``
to use other providers instead of the global ones.
"""

import time
from collections.abc import Callable

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import (
    NoOpTracerProvider,
    ProxyTracerProvider,
    SpanKind,
    Status,
    StatusCode,
)
from opentelemetry.util.types import AttributeValue

from lattice_stripe.core.observe import (
    Call,
    CallEnd,
    Observer,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
)
from lattice_stripe.core.version import VERSION

__all__ = ["OpenTelemetryObserver", "discover"]

_SCOPE = "lattice_stripe"
_SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"
# The bucket boundaries the HTTP semantic conventions advise for request durations.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

Attributes = dict[str, AttributeValue]


def _span_attributes(call: Call) -> Attributes:
    attributes: Attributes = {
        "http.request.method": call.method,
        "server.address": call.server_address,
        "server.port": call.server_port,
        "url.template": call.url_template,
        "url.full": call.url,
        "stripe.operation": call.operation,
        "stripe.api_version": call.api_version,
        "stripe.livemode": call.livemode,
    }
    if call.idempotency_key_prefix is not None:
        attributes["stripe.idempotency_key_prefix"] = call.idempotency_key_prefix
    return attributes


def _metric_attributes(call: Call) -> Attributes:
    return {
        "http.request.method": call.method,
        "server.address": call.server_address,
        "server.port": call.server_port,
        "url.template": call.url_template,
        "stripe.operation": call.operation,
    }


def _answered(attributes: Attributes, status: int | None, error: str | None) -> Attributes:
    if status is not None:
        attributes["http.response.status_code"] = status
    if error is not None:
        attributes["error.type"] = error
    return attributes


class OpenTelemetryObserver:
    """Spans and metrics for each call, through the given providers (default: the global ones)."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(
            _SCOPE, VERSION, schema_url=_SCHEMA_URL
        )
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(
            _SCOPE, VERSION, schema_url=_SCHEMA_URL
        )
        self.request_duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of each HTTP request (one attempt) to Stripe.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.call_duration = meter.create_histogram(
            "stripe.client.call.duration",
            unit="s",
            description="Duration of each call, all attempts and backoff included.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.attempts = meter.create_counter(
            "stripe.client.attempts", unit="{attempt}", description="Requests sent to Stripe."
        )
        self.retries = meter.create_counter(
            "stripe.client.retries",
            unit="{retry}",
            description="Attempts made again, by the reason the previous one failed.",
        )
        self.errors = meter.create_counter(
            "stripe.client.errors",
            unit="{error}",
            description="Calls that raised, by the class of the error.",
        )

    def start(self, call: Call) -> "_CallSpans":
        """Open the call's span as a child of the current one."""
        span = self._tracer.start_span(
            f"{call.method} {call.url_template}",
            context=otel_context.get_current(),
            kind=SpanKind.CLIENT,
            attributes=_span_attributes(call),
        )
        return _CallSpans(self, span, call)

    def _attempt_span(self, parent: trace.Span, call: Call, attempt: int) -> trace.Span:
        attributes = _span_attributes(call)
        if attempt > 1:
            attributes["http.request.resend_count"] = attempt - 1
        return self._tracer.start_span(
            f"{call.method} {call.url_template}",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )


class _CallSpans:
    """One call's span, its current attempt's span, and the metrics they record."""

    def __init__(self, observer: OpenTelemetryObserver, span: trace.Span, call: Call) -> None:
        self._observer = observer
        self._span = span
        self._attempt: trace.Span | None = None
        self._labels = _metric_attributes(call)

    def on_request(self, event: RequestEvent) -> None:
        self._attempt = self._observer._attempt_span(self._span, event.call, event.attempt)

    def on_response(self, event: ResponseEvent) -> None:
        labels = _answered(dict(self._labels), event.status, event.error_type)
        self._observer.attempts.add(1, labels)
        self._observer.request_duration.record(event.duration, labels)
        span, self._attempt = self._attempt, None
        if span is None:
            return
        _finish(span, event.status, event.request_id, event.error_type)

    def on_retry(self, event: RetryEvent) -> None:
        self._observer.retries.add(1, {**self._labels, "stripe.retry.reason": event.reason})
        self._span.add_event(
            "stripe.retry",
            {
                "stripe.retry.reason": event.reason,
                "stripe.retry.delay": event.delay,
                "stripe.retry.after_attempt": event.attempt,
            },
        )

    def on_end(self, event: CallEnd) -> None:
        labels = _answered(dict(self._labels), event.status, event.error_type)
        self._observer.call_duration.record(event.duration, labels)
        if event.error_type is not None:
            self._observer.errors.add(1, {**self._labels, "error.type": event.error_type})
        if self._attempt is not None:  # interrupted before its answer was told
            _finish(self._attempt, None, None, event.error_type)
            self._attempt = None
        self._span.set_attribute("stripe.retry_count", event.retries)
        _finish(self._span, event.status, event.request_id, event.error_type)


def _finish(
    span: trace.Span, status: int | None, request_id: str | None, error: str | None
) -> None:
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    if request_id is not None:
        span.set_attribute("stripe.request_id", request_id)
    if error is not None:
        span.set_attribute("error.type", error)
        span.set_status(Status(StatusCode.ERROR))
    span.end()


# How often a client looks for a global tracer provider while none is set:
# looking costs more than the rest of what an unwatched call adds.
LOOK_EVERY = 1.0


class _Global:
    """The global providers' observer, made once a tracer provider is set (it is set only once).

    Until then it looks at most every :data:`LOOK_EVERY` seconds, so a
    provider set after a client's first call is used from a second later on.
    """

    def __init__(self) -> None:
        self._observer: OpenTelemetryObserver | None = None
        self._next_look = 0.0

    def __call__(self) -> Observer | None:
        if self._observer is not None:
            return self._observer
        now = time.monotonic()
        if now < self._next_look:
            return None
        self._next_look = now + LOOK_EVERY
        if isinstance(trace.get_tracer_provider(), ProxyTracerProvider | NoOpTracerProvider):
            return None
        self._observer = OpenTelemetryObserver()
        return self._observer


_GLOBAL = _Global()


def discover(observers: tuple[Observer, ...]) -> Callable[[], Observer | None] | None:
    """What asks, on each call, for the global providers' observer.

    ``None`` when ``observers`` already has an :class:`OpenTelemetryObserver`:
    the client was given its providers, and each call is traced once.
    """
    if any(isinstance(observer, OpenTelemetryObserver) for observer in observers):
        return None
    return _GLOBAL
