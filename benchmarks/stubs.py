"""In-process stand-ins for the network: each contender gets the same canned response."""

from collections.abc import Mapping
from typing import Any

import stripe

from benchmarks.payloads import RESPONSE_BODY
from lattice_stripe import HttpRequest, HttpResponse

_HEADERS = {"request-id": "req_bench", "content-type": "application/json"}
_RESPONSE = HttpResponse(status=200, headers=_HEADERS, body=RESPONSE_BODY)


class StubTransport:
    """A SyncTransport that answers every request with the canned session."""

    def send(self, request: HttpRequest) -> HttpResponse:
        return _RESPONSE

    def close(self) -> None:
        pass


class StripeStubClient(stripe.HTTPClient):
    """The official SDK's HTTPClient extension point, answering the canned session."""

    name = "benchmark-stub"

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        return RESPONSE_BODY.decode(), 200, _HEADERS

    def close(self) -> None:
        pass
