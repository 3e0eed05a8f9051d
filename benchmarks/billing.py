"""Microseconds per customer and subscription call, in-process, network stubbed.

Run ``python -m benchmarks.billing [--number N --repeat R]``.

Each new operation through a :class:`~lattice_stripe.Client` over a stub
transport (guard, encode, flow, decode): ``customers.create``, ``.retrieve``,
``.update``, ``subscriptions.retrieve``, ``.list`` (a page of 10),
``billing_state`` (one page of 10), and the webhook view ``event.subscription``;
beside each API call, the official ``stripe`` SDK's same call over its own
HTTP-client extension point answering the same bytes. Best of ``--repeat``
runs of ``--number`` calls each; never part of the tests.
"""

import argparse
import json
import timeit
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import stripe

from benchmarks.payloads import API_KEY
from lattice_stripe import Client, HttpRequest, HttpResponse, billing_state
from lattice_stripe.core.webhooks import Event

CUSTOMER = {
    "id": "cus_bench",
    "object": "customer",
    "address": {"city": "Paris", "country": "FR", "line1": None, "line2": None},
    "balance": 0,
    "created": 1700000000,
    "currency": "usd",
    "description": None,
    "email": "jo@example.com",
    "invoice_settings": {"custom_fields": None, "default_payment_method": "pm_1", "footer": None},
    "livemode": False,
    "metadata": {"user_id": "42"},
    "name": "Jo Example",
    "phone": None,
    "preferred_locales": ["fr"],
    "shipping": None,
    "tax_exempt": "none",
    "test_clock": None,
}


def subscription(number: int) -> dict[str, object]:
    """A subscription as Stripe returns it (API 2025+: periods on the items)."""
    return {
        "id": f"sub_bench{number}",
        "object": "subscription",
        "billing_cycle_anchor": 1700000000,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": 1700000000 + number,
        "currency": "usd",
        "customer": "cus_bench",
        "default_payment_method": None,
        "discounts": [],
        "ended_at": None,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_bench{number}",
                    "object": "subscription_item",
                    "created": 1700000000,
                    "current_period_end": 1702592000,
                    "current_period_start": 1700000000,
                    "discounts": [],
                    "metadata": {},
                    "price": {
                        "id": "price_pro_monthly",
                        "object": "price",
                        "active": True,
                        "currency": "usd",
                        "livemode": False,
                        "metadata": {},
                        "product": "prod_pro",
                        "recurring": {
                            "interval": "month",
                            "interval_count": 1,
                            "usage_type": "licensed",
                        },
                        "type": "recurring",
                        "unit_amount": 1900,
                    },
                    "quantity": 1,
                    "subscription": f"sub_bench{number}",
                    "tax_rates": [],
                }
            ],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/subscription_items?subscription=sub_bench{number}",
        },
        "livemode": False,
        "metadata": {},
        "pause_collection": None,
        "start_date": 1700000000,
        "status": "active",
    }


PAGE = {
    "object": "list",
    "data": [subscription(number) for number in range(10)],
    "has_more": False,
    "url": "/v1/subscriptions",
}


class BillingStub:
    """A SyncTransport answering by path: a customer, a subscription, or a page of 10."""

    def __init__(self) -> None:
        headers = {"request-id": "req_bench"}
        self._customer = HttpResponse(
            status=200, headers=headers, body=json.dumps(CUSTOMER).encode()
        )
        self._subscription = HttpResponse(
            status=200, headers=headers, body=json.dumps(subscription(0)).encode()
        )
        self._page = HttpResponse(status=200, headers=headers, body=json.dumps(PAGE).encode())

    def send(self, request: HttpRequest) -> HttpResponse:
        return self.answer(request.url)

    def answer(self, url: str) -> HttpResponse:
        """The canned response for a request to ``url``."""
        path = urlsplit(url).path
        if path.startswith("/v1/customers"):
            return self._customer
        if path == "/v1/subscriptions":
            return self._page
        return self._subscription

    def close(self) -> None:
        pass


class StripeBillingStub(stripe.HTTPClient):
    """The SDK's HTTPClient extension point, answering by path as :class:`BillingStub` does."""

    name = "benchmark-billing-stub"

    def __init__(self) -> None:
        super().__init__()
        self._stub = BillingStub()

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        return self._stub.answer(url).body.decode(), 200, {"request-id": "req_bench"}

    def close(self) -> None:
        pass


EVENT = json.dumps(
    {
        "id": "evt_bench",
        "object": "event",
        "type": "customer.subscription.updated",
        "created": 1700000000,
        "data": {"object": subscription(0)},
    }
).encode()


def _best_us(call: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def measure(number: int, repeat: int) -> dict[str, float]:
    """µs per call of each operation, best of ``repeat`` runs of ``number`` calls."""
    with Client(API_KEY, transport=BillingStub()) as client:
        calls: dict[str, Callable[[], object]] = {
            "customers.create": lambda: client.customers.create(
                {"email": "jo@example.com", "name": "Jo", "metadata": {"user_id": "42"}}
            ),
            "customers.retrieve": lambda: client.customers.retrieve("cus_bench"),
            "customers.update": lambda: client.customers.update("cus_bench", {"name": "Jo E."}),
            "subscriptions.retrieve": lambda: client.subscriptions.retrieve("sub_bench0"),
            "subscriptions.list (10 per page)": lambda: client.subscriptions.list(
                customer="cus_bench", limit=10
            ),
            "billing_state (10 subscriptions)": lambda: billing_state(client, "cus_bench"),
        }
        results = {name: _best_us(call, number, repeat) for name, call in calls.items()}
    sdk = stripe.StripeClient(API_KEY, http_client=StripeBillingStub())
    theirs: dict[str, Callable[[], object]] = {
        "stripe SDK customers.create": lambda: sdk.v1.customers.create(
            {"email": "jo@example.com", "name": "Jo", "metadata": {"user_id": "42"}}
        ),
        "stripe SDK customers.retrieve": lambda: sdk.v1.customers.retrieve("cus_bench"),
        "stripe SDK subscriptions.retrieve": lambda: sdk.v1.subscriptions.retrieve("sub_bench0"),
        "stripe SDK subscriptions.list (10 per page)": lambda: sdk.v1.subscriptions.list(
            {"customer": "cus_bench", "limit": 10}
        ),
    }
    results.update({name: _best_us(call, number, repeat) for name, call in theirs.items()})
    event = Event.from_json(EVENT)
    results["event.subscription (webhook view)"] = _best_us(
        lambda: event.subscription, number, repeat
    )
    return results


def main(argv: list[str] | None = None) -> None:
    """Print µs per call of every customer and subscription operation."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    for name, us in measure(args.number, args.repeat).items():
        print(f"{name}: {us:.1f} µs")


if __name__ == "__main__":
    main()
