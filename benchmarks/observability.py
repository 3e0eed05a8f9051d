"""Microseconds per session create, watched and unwatched, network stubbed.

Run ``python -m benchmarks.observability [--number N --repeat R]``.

The rows: a client with nothing watching (OpenTelemetry installed, no tracer
provider set: what every app pays), with OpenTelemetry made unimportable (an
app without it), with an ``on_response`` hook, and traced and measured through
the OpenTelemetry SDK (spans dropped by the exporter, metrics read in memory:
the SDK's own cost included). Best of ``--repeat`` runs of ``--number``
calls; never part of the tests.
"""

import argparse
import sys
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.payloads import API_KEY, PARAMS
from benchmarks.stubs import StubTransport
from lattice_stripe import Client
from lattice_stripe.core.observe import ResponseEvent


def _best_us(call: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def _create(client: Client) -> Callable[[], object]:
    create = client.billing_portal.sessions.create
    return lambda: create(PARAMS)


@contextmanager
def _without_opentelemetry() -> Iterator[None]:
    """Clients made inside see no OpenTelemetry, as in an app that does not install it."""
    from lattice_stripe import client as client_module

    installed = client_module._opentelemetry_installed
    client_module._opentelemetry_installed = lambda: False  # type: ignore[assignment]
    try:
        yield
    finally:
        client_module._opentelemetry_installed = installed


def _ignore(event: ResponseEvent) -> None:
    pass


def rows(number: int, repeat: int) -> dict[str, float]:
    """µs per create for each way of watching."""
    results: dict[str, float] = {}
    with Client(API_KEY, transport=StubTransport()) as client:
        results["unwatched (OpenTelemetry installed, no provider)"] = _best_us(
            _create(client), number, repeat
        )
    with _without_opentelemetry(), Client(API_KEY, transport=StubTransport()) as client:
        results["unwatched (no OpenTelemetry)"] = _best_us(_create(client), number, repeat)
    with Client(API_KEY, transport=StubTransport(), on_response=_ignore) as client:
        results["on_response hook"] = _best_us(_create(client), number, repeat)
    sdk = _sdk_observer()
    if sdk is not None:
        with Client(API_KEY, transport=StubTransport(), observers=[sdk]) as client:
            results["OpenTelemetry SDK (spans and metrics)"] = _best_us(
                _create(client), number, repeat
            )
    return results


def _sdk_observer() -> Any:
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            SimpleSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        from lattice_stripe.adapters.opentelemetry import OpenTelemetryObserver
    except ImportError:
        return None

    class Discard(SpanExporter):
        """Exports by dropping: the SDK's whole cost, and memory that stays flat."""

        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Discard()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return OpenTelemetryObserver(tracer_provider=tracer_provider, meter_provider=meter_provider)


def main(argv: list[str] | None = None) -> None:
    """Print µs per create for each row."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    for name, us in rows(args.number, args.repeat).items():
        print(f"{name}: {us:.1f} µs")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
