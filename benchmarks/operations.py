"""Microseconds per call through the operations flow, network stubbed.

Run ``python -m benchmarks.operations [--number N --repeat R]``.

One ``Client.billing_portal.sessions.create`` (guard, encode, flow, decode over
a stub transport), and, where the library has it, one configuration create.
Best of ``--repeat`` runs of ``--number`` calls each; never part of the tests.
"""

import argparse
import json
import timeit
from collections.abc import Callable

from benchmarks.payloads import API_KEY, PARAMS
from benchmarks.stubs import StubTransport
from lattice_stripe import Client, HttpRequest, HttpResponse

CONFIGURATION_PARAMS = {
    "business_profile": {"headline": "Manage your plan"},
    "features": {
        "customer_update": {"enabled": True, "allowed_updates": ["email", "address"]},
        "invoice_history": {"enabled": True},
        "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
    },
    "metadata": {"lattice_stripe_key": "main"},
}
_CONFIGURATION_BODY = json.dumps(
    {
        "id": "bpc_bench",
        "object": "billing_portal.configuration",
        "active": True,
        "application": None,
        "business_profile": {
            "headline": "Manage your plan",
            "privacy_policy_url": None,
            "terms_of_service_url": None,
        },
        "created": 1700000000,
        "default_return_url": None,
        "features": {
            "customer_update": {"allowed_updates": ["email", "address"], "enabled": True},
            "invoice_history": {"enabled": True},
            "payment_method_update": {"enabled": False, "payment_method_configuration": None},
            "subscription_cancel": {
                "cancellation_reason": {"enabled": False, "options": []},
                "enabled": True,
                "mode": "at_period_end",
                "proration_behavior": "none",
            },
            "subscription_update": {
                "billing_cycle_anchor": None,
                "default_allowed_updates": [],
                "enabled": False,
                "products": [],
                "proration_behavior": "none",
                "schedule_at_period_end": {"conditions": []},
                "trial_update_behavior": "end_trial",
            },
        },
        "is_default": False,
        "livemode": False,
        "login_page": {"enabled": False, "url": None},
        "metadata": {"lattice_stripe_key": "main"},
        "name": None,
        "updated": 1700000000,
    }
).encode()


class _ConfigurationStub:
    """A SyncTransport answering every request with one canned configuration."""

    _response = HttpResponse(
        status=200, headers={"request-id": "req_bench"}, body=_CONFIGURATION_BODY
    )

    def send(self, request: HttpRequest) -> HttpResponse:
        return self._response

    def close(self) -> None:
        pass


def _best_us(call: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def main(argv: list[str] | None = None) -> None:
    """Print µs per session create (and per configuration create, where available)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with Client(API_KEY, transport=StubTransport()) as client:
        create = client.billing_portal.sessions.create
        print(
            f"session create: {_best_us(lambda: create(PARAMS), args.number, args.repeat):.1f} µs"
        )
    with Client(API_KEY, transport=_ConfigurationStub()) as client:
        configurations = getattr(client.billing_portal, "configurations", None)
        if configurations is not None:
            make = configurations.create
            us = _best_us(lambda: make(CONFIGURATION_PARAMS), args.number, args.repeat)
            print(f"configuration create: {us:.1f} µs")


if __name__ == "__main__":
    main()
