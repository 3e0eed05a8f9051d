"""In-process cost of one create, network stubbed: guard + encode + decode and the call around them.

Run through pytest-benchmark by ``benchmarks/run.py``; never part of the test suite.
"""

import json
import urllib.parse
from typing import Any

import pytest
import stripe

from benchmarks.payloads import API_KEY, FLAT_PAIRS, PARAMS, RESPONSE_BODY, fair_encode
from benchmarks.stubs import StripeStubClient, StubTransport
from lattice_stripe import Client
from lattice_stripe.core.codec import decode_session, encode_session_params
from lattice_stripe.core.guard import guard

Benchmark = Any


def _stdlib_floor() -> None:
    urllib.parse.urlencode(FLAT_PAIRS)
    json.loads(RESPONSE_BODY)


@pytest.mark.benchmark(group="overhead")
def test_stdlib_floor(benchmark: Benchmark) -> None:
    """The floor: urllib.parse.urlencode of the flattened params plus json.loads of the reply."""
    benchmark(_stdlib_floor)


def _fair_floor() -> None:
    fair_encode(PARAMS)
    json.loads(RESPONSE_BODY)


@pytest.mark.benchmark(group="overhead")
def test_fair_floor(benchmark: Benchmark) -> None:
    """The fair floor: an encoder written for exactly these params, plus json.loads of the reply."""
    benchmark(_fair_floor)


@pytest.mark.benchmark(group="overhead")
def test_lattice_core(benchmark: Benchmark) -> None:
    """lattice-stripe's pure core alone: guard, form-encode, decode into a typed Session."""

    def core() -> None:
        decode_session(RESPONSE_BODY) if encode_session_params(guard(PARAMS)) else None

    benchmark(core)


@pytest.mark.benchmark(group="overhead")
def test_lattice_client(benchmark: Benchmark) -> None:
    """A whole Client.create call (headers, idempotency key, flow) over a stub transport."""
    client = Client(API_KEY, transport=StubTransport())
    session = benchmark(client.billing_portal.sessions.create, PARAMS)
    assert session.flow is not None


@pytest.mark.benchmark(group="overhead")
def test_stripe_sdk(benchmark: Benchmark) -> None:
    """The official SDK's StripeClient create over a stub HTTPClient."""
    client = stripe.StripeClient(API_KEY, http_client=StripeStubClient())
    session = benchmark(client.v1.billing_portal.sessions.create, PARAMS)
    assert session.flow is not None
