"""``RecordingTransport``: a fake Stripe for your tests, serving sync and async clients alike.

It records every request (the ``Authorization`` header masked, the form body
decoded into nested params) and answers with, in order of preference: a
queued response, your ``handler``, or a realistic default: a fresh
``billing_portal.session`` echoing the customer, return URL and flow, as
Stripe would; and portal configurations, kept for the fake's lifetime:
created, retrieved, updated and listed (newest first, paged) as Stripe does,
each echoing what was sent over the defaults of every other field. What a
configuration holds is read from the params classes' attrs fields
(:func:`lattice_stripe.core.shape.defaults` and
:func:`~lattice_stripe.core.shape.decode`), so a new field needs no edit here.
Zero set-up::

    fake = RecordingTransport()
    client = Client("sk_test_123", transport=fake)
    client.billing_portal.sessions.create({"customer": "cus_1", "return_url": "https://x.test/"})
    assert fake.last_request.params["customer"] == "cus_1"
"""

import copy
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from lattice_stripe.core import shape
from lattice_stripe.core.codec import decode_form
from lattice_stripe.core.configuration import (
    ConfigurationCreateParams,
    ConfigurationListParams,
    ConfigurationUpdateParams,
)
from lattice_stripe.core.errors import APIConnectionError
from lattice_stripe.core.http import HttpRequest, HttpResponse, redacted_headers

__all__ = ["RecordedRequest", "RecordingTransport", "stripe_error_response"]

Handler = Callable[[HttpRequest], HttpResponse]
Reply = HttpResponse | APIConnectionError
JSON = dict[str, Any]
CONFIGURATIONS_PATH = "/v1/billing_portal/configurations"


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
        # Configurations by ID, in the order they were made (a list is newest first).
        self._configurations: dict[str, JSON] = {}
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
        if path == CONFIGURATIONS_PATH or path.startswith(CONFIGURATIONS_PATH + "/"):
            return self._configuration_response(request, path)
        if request.method != "POST" or path != "/v1/billing_portal/sessions":
            return _unrecognized(request.method, path)
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
        return _ok(request, number, session)

    def _configuration_response(self, request: HttpRequest, path: str) -> HttpResponse:
        number = next(self._ids)
        found = path.removeprefix(CONFIGURATIONS_PATH).strip("/")
        if request.method == "GET" and not found:
            query = decode_form(urlsplit(request.url).query)
            return _ok(request, number, self._list(shape.decode(ConfigurationListParams, query)))
        if request.method == "POST" and not found:
            params = shape.decode(ConfigurationCreateParams, decode_form(request.body))
            created = self._create(params, number, request)
            return _ok(request, number, created)
        if request.method not in ("GET", "POST") or "/" in found:
            return _unrecognized(request.method, path)
        with self._lock:
            configuration = self._configurations.get(found)
            if configuration is not None and request.method == "POST":
                params = shape.decode(ConfigurationUpdateParams, decode_form(request.body))
                _merge(configuration, {k: v for k, v in params.items() if k != "expand"})
                configuration["updated"] = int(self._clock())
            answer = None if configuration is None else copy.deepcopy(configuration)
        if answer is None:
            return stripe_error_response(
                404,
                message=f"No such billing portal configuration: '{found[:100]}'",
                code="resource_missing",
                param="configuration",
            )
        return _ok(request, number, answer)

    def _create(self, params: JSON, number: int, request: HttpRequest) -> JSON:
        now = int(self._clock())
        configuration: JSON = {
            "id": f"bpc_fake{number:020d}",
            "object": "billing_portal.configuration",
            "active": True,
            "application": None,
            "created": now,
            "is_default": False,
            "livemode": "_live_" in request.headers.get("Authorization", ""),
            "updated": now,
            **{k: v for k, v in shape.defaults(ConfigurationCreateParams).items() if k != "expand"},
        }
        configuration["login_page"]["url"] = None
        _merge(configuration, {k: v for k, v in params.items() if k != "expand"})
        with self._lock:
            self._configurations[configuration["id"]] = configuration
            return copy.deepcopy(configuration)

    def _list(self, params: JSON) -> JSON:
        with self._lock:
            newest = [copy.deepcopy(item) for item in reversed(self._configurations.values())]
        found = [
            item
            for item in newest
            if params.get("active") in (None, item["active"])
            and params.get("is_default") in (None, item["is_default"])
        ]
        ids = [item["id"] for item in found]
        start = (
            ids.index(params["starting_after"]) + 1 if params.get("starting_after") in ids else 0
        )
        limit = params.get("limit") or 10
        return {
            "object": "list",
            "data": found[start : start + limit],
            "has_more": start + limit < len(found),
            "url": CONFIGURATIONS_PATH,
        }


def _ok(request: HttpRequest, number: int, body: JSON) -> HttpResponse:
    return HttpResponse(
        status=200,
        headers={
            "content-type": "application/json",
            "request-id": f"req_fake{number:012d}",
            "idempotency-key": request.headers.get("Idempotency-Key", ""),
        },
        body=json.dumps(body).encode(),
    )


def _unrecognized(method: str, path: str) -> HttpResponse:
    return stripe_error_response(404, message=f"Unrecognized request URL ({method} {path})")


def _merge(target: JSON, changes: Mapping[str, Any]) -> None:
    """Apply decoded params as Stripe does: objects merge, lists and values replace.

    In ``metadata`` a ``None`` value removes its key; an empty mapping (Stripe's
    ``metadata=``) removes every key.
    """
    for key, value in changes.items():
        current = target.get(key)
        if key == "metadata" and isinstance(value, dict):
            kept = {} if not value or not isinstance(current, dict) else current
            kept.update(value)
            target[key] = {name: item for name, item in kept.items() if item is not None}
        elif isinstance(value, dict) and isinstance(current, dict):
            _merge(current, value)
        else:
            target[key] = copy.deepcopy(value)


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
