"""``RecordingTransport``: a fake Stripe for your tests, serving sync and async clients alike.

It records every request (the ``Authorization`` header masked, the form body
decoded into nested params) and answers with, in order of preference: a
queued response, your ``handler``, or a realistic default: a fresh
``billing_portal.session`` echoing the customer, return URL and flow, as
Stripe would. Zero set-up::

    fake = RecordingTransport()
    client = Client("sk_test_123", transport=fake)
    client.billing_portal.sessions.create({"customer": "cus_1", "return_url": "https://x.test/"})
    assert fake.last_request.params["customer"] == "cus_1"
"""

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from lattice_stripe.core.codec import decode_form
from lattice_stripe.core.errors import APIConnectionError
from lattice_stripe.core.http import HttpRequest, HttpResponse, redacted_headers

__all__ = ["RecordedRequest", "RecordingTransport", "stripe_error_response"]

Handler = Callable[[HttpRequest], HttpResponse]
Reply = HttpResponse | APIConnectionError


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """One request as the fake saw it, with credentials masked.

    ``params`` is the form body decoded into nested dicts and lists of strings.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    params: dict[str, Any]

    @property
    def idempotency_key(self) -> str | None:
        """The request's ``Idempotency-Key`` header."""
        return self.headers.get("Idempotency-Key")


def stripe_error_response(
    status: int,
    *,
    type: str = "invalid_request_error",
    message: str = "Invalid request",
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str = "req_fake",
) -> HttpResponse:
    """An error response in Stripe's JSON shape, for queuing on the fake."""
    error: dict[str, Any] = {"type": type, "message": message}
    if code is not None:
        error["code"] = code
    if param is not None:
        error["param"] = param
    return HttpResponse(
        status=status,
        headers={"content-type": "application/json", "request-id": request_id, **(headers or {})},
        body=json.dumps({"error": error}).encode(),
    )


class RecordingTransport:
    """Implements both :class:`~lattice_stripe.core.ports.SyncTransport` and
    :class:`~lattice_stripe.core.ports.AsyncTransport`. Thread-safe.

    ``clock`` sets the ``created`` time of default sessions (``time.time`` by default).
    """

    def __init__(
        self, handler: Handler | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._handler = handler
        self._clock = clock
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.closed = False

    # -- scripting ---------------------------------------------------------------

    def queue(self, *replies: Reply) -> None:
        """Answer the next requests with these responses or connection errors, in order."""
        with self._lock:
            self._queue.extend(replies)

    def queue_error(
        self,
        status: int = 400,
        *,
        type: str = "invalid_request_error",
        message: str = "Invalid request",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next request with a Stripe error."""
        self.queue(
            stripe_error_response(
                status, type=type, message=message, code=code, param=param, headers=headers
            )
        )

    def queue_connection_error(self, message: str = "connection refused (fake)") -> None:
        """Fail the next request as if the network had."""
        self.queue(APIConnectionError(message, should_retry=True))

    # -- inspection --------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request; ``AssertionError`` if there was none."""
        with self._lock:
            if not self._requests:
                raise AssertionError("the RecordingTransport has received no request")
            return self._requests[-1]

    def clear(self) -> None:
        """Forget the recorded requests and queued replies."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    # -- the ports ---------------------------------------------------------------

    def send(self, request: HttpRequest) -> HttpResponse:
        """Record ``request`` and answer it (SyncTransport)."""
        with self._lock:
            self._requests.append(_record(request))
            reply = self._queue.popleft() if self._queue else None
        if isinstance(reply, APIConnectionError):
            raise reply
        if reply is not None:
            return reply
        if self._handler is not None:
            return self._handler(request)
        return self._default_response(request)

    async def asend(self, request: HttpRequest) -> HttpResponse:
        """Record ``request`` and answer it (AsyncTransport)."""
        return self.send(request)

    def close(self) -> None:
        """Mark the fake closed (SyncTransport)."""
        self.closed = True

    async def aclose(self) -> None:
        """Mark the fake closed (AsyncTransport)."""
        self.closed = True

    def __repr__(self) -> str:
        return f"RecordingTransport(requests={len(self._requests)}, queued={len(self._queue)})"

    # -- a realistic default -----------------------------------------------------

    def _default_response(self, request: HttpRequest) -> HttpResponse:
        path = urlsplit(request.url).path
        if request.method != "POST" or path != "/v1/billing_portal/sessions":
            return stripe_error_response(
                404, message=f"Unrecognized request URL ({request.method} {path})"
            )
        params = decode_form(request.body)
        number = next(self._ids)
        live = "_live_" in request.headers.get("Authorization", "")
        mode = "live" if live else "test"
        session = {
            "id": f"bps_fake{number:020d}",
            "object": "billing_portal.session",
            "configuration": params.get("configuration", "bpc_fakedefault"),
            "created": int(self._clock()),
            "customer": params.get("customer"),
            "customer_account": params.get("customer_account"),
            "flow": _flow(params.get("flow_data")),
            "livemode": live,
            "locale": params.get("locale"),
            "on_behalf_of": params.get("on_behalf_of"),
            "return_url": params.get("return_url"),
            "url": f"https://billing.stripe.com/p/session/{mode}_fake{number:020d}",
        }
        if "after_expiration" in params:
            session["after_expiration"] = _after_expiration(params["after_expiration"])
        return HttpResponse(
            status=200,
            headers={
                "content-type": "application/json",
                "request-id": f"req_fake{number:012d}",
                "idempotency-key": request.headers.get("Idempotency-Key", ""),
            },
            body=json.dumps(session).encode(),
        )


def _record(request: HttpRequest) -> RecordedRequest:
    return RecordedRequest(
        method=request.method,
        path=urlsplit(request.url).path,
        headers=redacted_headers(request.headers),
        body=request.body,
        params=decode_form(request.body) if request.body else {},
    )


def _flow(flow_data: Any) -> dict[str, Any] | None:
    if not isinstance(flow_data, dict):
        return None
    flow_type = flow_data.get("type")
    completion = flow_data.get("after_completion") or {"type": "portal_homepage"}
    flow: dict[str, Any] = {
        "type": flow_type,
        "after_completion": {
            "type": completion.get("type"),
            "hosted_confirmation": completion.get("hosted_confirmation"),
            "redirect": completion.get("redirect"),
        },
        "subscription_cancel": None,
        "subscription_update": None,
        "subscription_update_confirm": None,
        "subscription_pause": None,
        "customer_update": {} if flow_type == "customer_update" else None,
    }
    detail = flow_data.get(flow_type) if isinstance(flow_type, str) else None
    if isinstance(detail, dict) and isinstance(flow_type, str):
        if flow_type == "subscription_cancel":
            detail = {"retention": None, **detail}
        if flow_type == "subscription_update_confirm":
            detail = {
                "discounts": detail.get("discounts"),
                "subscription": detail.get("subscription"),
                "items": [
                    {**item, "quantity": int(item["quantity"])} if "quantity" in item else item
                    for item in detail.get("items", [])
                ],
            }
        flow[flow_type] = detail
    return flow


def _after_expiration(raw: Any) -> Any:
    if isinstance(raw, dict) and isinstance(raw.get("customer_login"), dict):
        login = raw["customer_login"]
        if "expires_at" in login:
            return {**raw, "customer_login": {"expires_at": int(login["expires_at"])}}
    return raw
