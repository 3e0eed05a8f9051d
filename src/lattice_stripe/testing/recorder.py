"""``StripeRecorder``: the recording fake with assertions that read like the test.

A :class:`~lattice_stripe.adapters.recording.RecordingTransport` (so it
answers like Stripe, records every request with the key masked, and can be
told to fail) that also knows what a portal session call is::

    recorder = StripeRecorder()
    client = recorder.client()
    client.billing_portal.sessions.create({"customer": "cus_1", "return_url": "https://x.test/"})
    recorder.assert_portal_session_created(customer="cus_1", flow_type=None)

Calls are told apart by their ``Idempotency-Key``: the attempts of one
``create`` (retries included) are one call, and that call created a session
only if one of its attempts was answered with a 2xx. (A request without the
header, which no lattice-stripe client sends, is a call of its own and
counts as created.)
"""

import threading
from collections.abc import Mapping
from typing import Any, Final

import attrs

from lattice_stripe.adapters.recording import RecordedRequest, RecordingTransport
from lattice_stripe.client import AsyncClient, Client
from lattice_stripe.core.http import HttpRequest, HttpResponse
from lattice_stripe.core.redaction import scrub

__all__ = ["ANY", "TEST_API_KEY", "PortalSessionCall", "StripeRecorder"]

TEST_API_KEY = "sk_test_LatticeStripeRecorder"
"""The test-mode key of the clients made by :meth:`StripeRecorder.client`."""

SESSIONS_PATH = "/v1/billing_portal/sessions"


class _Any:
    """Matches any value, absent included: an argument not checked."""

    def __repr__(self) -> str:
        return "ANY"


ANY: Final = _Any()
"""The default of every criterion of :meth:`StripeRecorder.assert_portal_session_created`."""


def _no_sleep(seconds: float) -> None:
    """Retries against the fake need no back-off."""


async def _no_async_sleep(seconds: float) -> None:
    """Retries against the fake need no back-off."""


@attrs.frozen(kw_only=True)
class PortalSessionCall:
    """One ``sessions.create`` call as the fake saw it: its params and how it ended.

    ``attempts`` counts the requests that carried its idempotency key;
    ``created`` is whether any of them was answered with a 2xx.
    """

    params: Mapping[str, Any]
    attempts: int
    created: bool
    idempotency_key: str | None

    @property
    def customer(self) -> Any:
        """The ``customer`` param (``None`` if absent)."""
        return self.params.get("customer")

    @property
    def return_url(self) -> Any:
        """The ``return_url`` param (``None`` if absent)."""
        return self.params.get("return_url")

    @property
    def flow_type(self) -> Any:
        """``flow_data[type]``, or ``None`` for the portal homepage."""
        flow = self.params.get("flow_data")
        return flow.get("type") if isinstance(flow, Mapping) else None

    @property
    def subscription(self) -> Any:
        """The subscription the flow is about (``flow_data[<type>][subscription]``), if any."""
        flow = self.params.get("flow_data")
        if not isinstance(flow, Mapping):
            return None
        detail = flow.get(str(flow.get("type")))
        return detail.get("subscription") if isinstance(detail, Mapping) else None

    def describe(self) -> str:
        """One line for an assertion message; secrets scrubbed."""
        outcome = "created" if self.created else f"NOT created ({self.attempts} attempt(s))"
        shown = [
            f"customer={self.customer!r}",
            f"return_url={self.return_url!r}",
            f"flow_type={self.flow_type!r}",
        ]
        if self.subscription is not None:
            shown.append(f"subscription={self.subscription!r}")
        shown += [
            f"{name}={value!r}"
            for name, value in self.params.items()
            if name not in ("customer", "return_url", "flow_data")
        ]
        return scrub(f"{outcome}: {', '.join(shown)}")


def _criteria(
    customer: object, return_url: object, flow_type: object, subscription: object, **params: object
) -> dict[str, object]:
    given = {
        "customer": customer,
        "return_url": return_url,
        "flow_type": flow_type,
        "subscription": subscription,
    }
    return {name: value for name, value in {**given, **params}.items() if value is not ANY}


def _matches(call: PortalSessionCall, criteria: Mapping[str, object]) -> bool:
    derived = {
        "customer": call.customer,
        "return_url": call.return_url,
        "flow_type": call.flow_type,
        "subscription": call.subscription,
    }
    return all(
        (derived[name] if name in derived else call.params.get(name)) == expected
        for name, expected in criteria.items()
    )


class StripeRecorder(RecordingTransport):
    """A :class:`~lattice_stripe.adapters.recording.RecordingTransport` with assertions.

    Pass it as the ``transport`` of your app's client (or use :meth:`client`
    and :meth:`async_client`); script it with ``queue_error``,
    ``queue_connection_error`` and ``queue``; check it with
    :meth:`assert_portal_session_created`, :meth:`assert_no_portal_session_created`,
    :attr:`portal_session_calls` and :attr:`last_params`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._created_keys: set[str] = set()
        self._created_lock = threading.Lock()

    def send(self, request: HttpRequest) -> HttpResponse:
        """Record and answer ``request``, remembering which calls got a 2xx."""
        response = super().send(request)
        key = request.headers.get("Idempotency-Key")
        if key is not None and 200 <= response.status < 300:
            with self._created_lock:
                self._created_keys.add(key)
        return response

    # -- clients over the recorder ------------------------------------------------------

    def client(self, api_key: str = TEST_API_KEY, **options: Any) -> Client:
        """A :class:`~lattice_stripe.Client` sending through this recorder, retrying at once."""
        options.setdefault("sleep", _no_sleep)
        return Client(api_key, transport=self, **options)

    def async_client(self, api_key: str = TEST_API_KEY, **options: Any) -> AsyncClient:
        """An :class:`~lattice_stripe.AsyncClient` sending through this recorder."""
        options.setdefault("sleep", _no_async_sleep)
        return AsyncClient(api_key, transport=self, **options)

    # -- inspection ---------------------------------------------------------------------

    @property
    def last_params(self) -> dict[str, Any]:
        """The last request's form body as nested params (``AssertionError`` if none)."""
        return self.last_request.params

    @property
    def portal_session_calls(self) -> list[PortalSessionCall]:
        """Every ``sessions.create`` call, oldest first, its retries folded into one."""
        requests = [
            request
            for request in self.requests
            if (request.method, request.path) == ("POST", SESSIONS_PATH)
        ]
        with self._created_lock:
            created = set(self._created_keys)
        return _calls(requests, created)

    def assert_portal_session_created(
        self,
        *,
        customer: object = ANY,
        return_url: object = ANY,
        flow_type: object = ANY,
        subscription: object = ANY,
        **params: object,
    ) -> PortalSessionCall:
        """Assert that a portal session was created with these params; return that call.

        Only the criteria given are checked; ``flow_type=None`` means the
        homepage (no ``flow_data``), ``subscription`` is the flow's
        subscription, and any other keyword is a top-level param compared with
        its decoded form value (strings). A call counts only if Stripe
        answered it with a 2xx. On failure the message lists every recorded
        call, secrets scrubbed.
        """
        __tracebackhide__ = True
        criteria = _criteria(customer, return_url, flow_type, subscription, **params)
        calls = self.portal_session_calls
        for call in reversed(calls):
            if call.created and _matches(call, criteria):
                return call
        wanted = ", ".join(f"{name}={value!r}" for name, value in criteria.items())
        raise AssertionError(
            scrub(f"no billing portal session was created with {wanted or 'any params'}\n")
            + self._recorded_calls(calls)
        )

    def assert_no_portal_session_created(self) -> None:
        """Assert that no portal session was created (calls answered with an error are fine)."""
        __tracebackhide__ = True
        calls = self.portal_session_calls
        if any(call.created for call in calls):
            raise AssertionError(
                "expected no billing portal session to be created\n" + self._recorded_calls(calls)
            )

    def _recorded_calls(self, calls: list[PortalSessionCall]) -> str:
        if not calls:
            return f"no portal session call was recorded ({len(self.requests)} request(s) in all)"
        lines = [f"  {number}. {call.describe()}" for number, call in enumerate(calls, 1)]
        return f"portal session calls recorded ({len(calls)}):\n" + "\n".join(lines)

    def __repr__(self) -> str:
        return "StripeRecorder" + super().__repr__().removeprefix("RecordingTransport")


def _calls(requests: list[RecordedRequest], created: set[str]) -> list[PortalSessionCall]:
    grouped: dict[object, list[RecordedRequest]] = {}
    for index, request in enumerate(requests):
        key = request.idempotency_key
        grouped.setdefault(index if key is None else key, []).append(request)
    return [
        PortalSessionCall(
            params=attempts[0].params,
            attempts=len(attempts),
            created=attempts[0].idempotency_key is None or attempts[0].idempotency_key in created,
            idempotency_key=attempts[0].idempotency_key,
        )
        for attempts in grouped.values()
    ]
