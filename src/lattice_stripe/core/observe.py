"""Watching calls: frozen, already-redacted values for every attempt, and the Protocol to watch.

Every operation runs through one generator (:func:`lattice_stripe.core.flow.run`);
:func:`watch` wraps it and tells each :class:`Observer` what happens: a call
starts (its first request leaves), each attempt is sent and answered (or
fails), a retry waits, the call ends. The values carry only what is safe to
print, export or ship: the operation's name, the method, the URL *template*
(``/v1/billing_portal/configurations/{configuration}``, never an ID, a query
string or a portal URL), the server's address, the attempt number, the
status, the class of the error, Stripe's request ID, the first
:data:`IDEMPOTENCY_KEY_PREFIX` characters of the idempotency key, the API
version and whether the key is a live one. Never a key, a body or an email.

Durations are read on the client's injected monotonic clock. An observer that
raises is logged (logger ``lattice_stripe``, at WARNING) and the call goes on
as if it were not there. A call refused before anything is sent (a
:class:`~lattice_stripe.core.errors.ValidationError`) is not observed.
"""

import contextlib
import functools
import logging
from collections.abc import Callable, Generator
from types import GeneratorType
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import attrs

from lattice_stripe.core.config import CallOptions, ClientConfig, is_live_key
from lattice_stripe.core.flow import Sleep, Step
from lattice_stripe.core.http import HttpResponse
from lattice_stripe.core.operations import Operation
from lattice_stripe.core.ports import Monotonic

__all__ = [
    "IDEMPOTENCY_KEY_PREFIX",
    "Call",
    "CallEnd",
    "CallObserver",
    "Hooks",
    "Observer",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    "Watch",
    "abandon",
    "error_type",
]

R = TypeVar("R")

#: How many leading characters of an idempotency key an event carries: enough to
#: find a call in Stripe's dashboard next to its request ID, not enough to replay it.
IDEMPOTENCY_KEY_PREFIX = 8

logger = logging.getLogger("lattice_stripe")


@attrs.frozen(kw_only=True)
class Call:
    """One call as it starts: what every event of the call shares.

    ``url`` is the scheme, host, port and base path of the API followed by
    ``url_template``: the path as Stripe's reference writes it, so it names
    the endpoint and never an object's ID or a query string.
    """

    operation: str
    method: str
    url_template: str
    url: str
    server_address: str
    server_port: int
    api_version: str
    livemode: bool
    idempotency_key_prefix: str | None


@attrs.frozen(kw_only=True)
class RequestEvent:
    """Attempt ``attempt`` (1 for the first) of ``call`` is about to be sent."""

    call: Call
    attempt: int


@attrs.frozen(kw_only=True)
class ResponseEvent:
    """Attempt ``attempt`` ended: answered with ``status``, or failed (``status`` ``None``).

    ``error_type`` is ``None`` for a success, the status as text for an
    HTTP error (``"429"``), or the class of the failure
    (``"APIConnectionError"``, ``"CancelledError"``). ``duration`` is in seconds.
    """

    call: Call
    attempt: int
    status: int | None
    request_id: str | None
    error_type: str | None
    duration: float


@attrs.frozen(kw_only=True)
class RetryEvent:
    """Attempt ``attempt`` failed with ``reason`` (its ``error_type``); the next in ``delay`` s."""

    call: Call
    attempt: int
    reason: str
    delay: float


@attrs.frozen(kw_only=True)
class CallEnd:
    """The call ended after ``attempts`` attempts.

    ``error_type`` is ``None`` when it returned, else the class of what it
    raised (``"RateLimitError"``, ``"APIConnectionError"``, ``"KeyboardInterrupt"``).
    ``status`` and ``request_id`` are the last answer's, if any.
    """

    call: Call
    attempts: int
    status: int | None
    request_id: str | None
    error_type: str | None
    duration: float

    @property
    def retries(self) -> int:
        """How many attempts were retries."""
        return max(self.attempts - 1, 0)


class CallObserver(Protocol):
    """Watches one call: told of each attempt, each retry and the end, in that order."""

    def on_request(self, event: RequestEvent) -> None: ...

    def on_response(self, event: ResponseEvent) -> None: ...

    def on_retry(self, event: RetryEvent) -> None: ...

    def on_end(self, event: CallEnd) -> None: ...


class Observer(Protocol):
    """Given to a client (``observers=``): asked to watch each call as it starts.

    :meth:`start` returns the :class:`CallObserver` for this call, or ``None``
    to let it pass unwatched.
    """

    def start(self, call: Call) -> CallObserver | None: ...


@attrs.frozen(kw_only=True)
class Hooks:
    """The ``on_request`` / ``on_response`` callbacks of a client, as an :class:`Observer`."""

    request: Callable[[RequestEvent], object] | None = None
    response: Callable[[ResponseEvent], object] | None = None

    def start(self, call: Call) -> "Hooks":
        return self

    def on_request(self, event: RequestEvent) -> None:
        if self.request is not None:
            self.request(event)

    def on_response(self, event: ResponseEvent) -> None:
        if self.response is not None:
            self.response(event)

    def on_retry(self, event: RetryEvent) -> None:
        pass

    def on_end(self, event: CallEnd) -> None:
        pass


def abandon(flow: Generator[Step, HttpResponse | None, object], error: BaseException) -> None:
    """Tell ``flow``, if it still waits for its driver, that its call ended with ``error``.

    A driver calls this when something other than the flow ended the call
    (an interruption or a cancellation in the transport or in a backoff
    sleep), so that the flow's observers see the call end. ``error`` keeps
    the traceback it came with.
    """
    if not isinstance(flow, GeneratorType) or flow.gi_frame is None:
        return  # finished: the flow raised or returned by itself
    traceback = error.__traceback__
    try:
        with contextlib.suppress(BaseException):  # the driver raises ``error`` itself
            flow.throw(error)
    finally:
        flow.close()
        error.with_traceback(traceback)


def error_type(error: BaseException) -> str:
    """The name an event gives a failure: its class's name (never its message)."""
    return type(error).__qualname__


@functools.lru_cache(maxsize=32)
def _target(api_base: str) -> tuple[str, str, int]:
    """``(scheme://host[:port]/base-path, host, port)``: no user info, query or fragment."""
    parts = urlsplit(api_base)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    shown = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        shown += f":{parts.port}"
    return f"{parts.scheme}://{shown}{parts.path.rstrip('/')}", host, port


def _describe(
    operation: Operation[Any, Any], config: ClientConfig, options: CallOptions, step: Step
) -> Call:
    base, host, port = _target(config.api_base)
    headers = getattr(step, "headers", {})
    key = headers.get("Idempotency-Key")
    return Call(
        operation=operation.name,
        method=operation.method,
        url_template=operation.path,
        url=base + operation.path,
        server_address=host,
        server_port=port,
        api_version=headers.get("Stripe-Version", config.stripe_version),
        livemode=is_live_key(options.api_key or config.api_key),
        idempotency_key_prefix=None if key is None else key[:IDEMPOTENCY_KEY_PREFIX],
    )


def _notify(watchers: list[CallObserver], method: str, event: object) -> None:
    # Its own frame: a failure's traceback starts here, and holds no request.
    for watcher in watchers:
        try:
            getattr(watcher, method)(event)
        except Exception as error:
            logger.warning(
                "observer %s failed in %s (%s); the call goes on",
                type(watcher).__qualname__,
                method,
                error_type(error),
                exc_info=True,
            )


def _start(observers: tuple[Observer, ...], call: Call) -> list[CallObserver]:
    watchers = []
    for observer in observers:
        try:
            watcher = observer.start(call)
        except Exception as error:
            logger.warning(
                "observer %s failed to start (%s); the call goes on unwatched by it",
                type(observer).__qualname__,
                error_type(error),
                exc_info=True,
            )
            continue
        if watcher is not None:
            watchers.append(watcher)
    return watchers


class Watch:
    """A client's observers; :meth:`flow` wraps a call's flow so that they see it.

    ``discover`` (optional) is asked on every call for one more observer, such
    as OpenTelemetry's once a global tracer provider is set; ``None`` means
    none yet. With no observer at all the flow is returned as it is, so an
    unwatched call costs nothing more.
    """

    def __init__(
        self,
        observers: tuple[Observer, ...],
        *,
        monotonic: Monotonic,
        discover: Callable[[], Observer | None] | None = None,
    ) -> None:
        self._observers = observers
        self._monotonic = monotonic
        self._discover = discover

    def flow(
        self,
        flow: Generator[Step, HttpResponse | None, R],
        operation: Operation[Any, R],
        config: ClientConfig,
        options: CallOptions,
    ) -> Generator[Step, HttpResponse | None, R]:
        """``flow`` as it is when nobody watches, else wrapped to tell the observers."""
        observers = self._observers
        if self._discover is not None:
            found = self._discover()
            if found is not None:
                observers = (*observers, found)
        if not observers:
            return flow
        return self._watched(flow, operation, config, options, observers)

    def _watched(
        self,
        flow: Generator[Step, HttpResponse | None, R],
        operation: Operation[Any, R],
        config: ClientConfig,
        options: CallOptions,
        observers: tuple[Observer, ...],
    ) -> Generator[Step, HttpResponse | None, R]:
        step = next(flow)  # a ValidationError leaves from here: nothing was sent
        monotonic = self._monotonic
        call = _describe(operation, config, options, step)
        watchers = _start(observers, call)
        started = monotonic()
        attempts = 0
        status: int | None = None
        request_id: str | None = None
        failure: str | None = None
        try:
            while True:
                if isinstance(step, Sleep):
                    _notify(
                        watchers,
                        "on_retry",
                        RetryEvent(
                            call=call, attempt=attempts, reason=failure or "", delay=step.seconds
                        ),
                    )
                    try:
                        yield step
                    except BaseException as error:
                        step = flow.throw(error)
                    else:
                        step = flow.send(None)
                    continue
                attempts += 1
                _notify(watchers, "on_request", RequestEvent(call=call, attempt=attempts))
                sent = monotonic()
                try:
                    response = yield step
                except BaseException as error:
                    status = request_id = None
                    failure = error_type(error)
                    _notify(
                        watchers,
                        "on_response",
                        ResponseEvent(
                            call=call,
                            attempt=attempts,
                            status=None,
                            request_id=None,
                            error_type=failure,
                            duration=monotonic() - sent,
                        ),
                    )
                    step = flow.throw(error)
                    continue
                if response is not None:
                    status = response.status
                    request_id = response.request_id
                    failure = None if status < 400 else str(status)
                    _notify(
                        watchers,
                        "on_response",
                        ResponseEvent(
                            call=call,
                            attempt=attempts,
                            status=status,
                            request_id=request_id,
                            error_type=failure,
                            duration=monotonic() - sent,
                        ),
                    )
                step = flow.send(response)
        except StopIteration as done:
            _notify(
                watchers,
                "on_end",
                CallEnd(
                    call=call,
                    attempts=attempts,
                    status=status,
                    request_id=request_id,
                    error_type=None,
                    duration=monotonic() - started,
                ),
            )
            result: R = done.value
            return result
        except BaseException as error:
            _notify(
                watchers,
                "on_end",
                CallEnd(
                    call=call,
                    attempts=attempts,
                    status=status,
                    request_id=request_id,
                    error_type=error_type(error),
                    duration=monotonic() - started,
                ),
            )
            raise
