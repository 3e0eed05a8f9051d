"""``Client`` and ``AsyncClient``: thin drivers of :func:`lattice_stripe.core.flow.run`.

Resources (``client.billing_portal.sessions``, ``.configurations``) are thin:
each method names an :class:`~lattice_stripe.core.operations.Operation` and
hands it to the flow. The generator decides everything (what to send, whether to retry, what to
return); a driver only carries requests to its transport, sleeps when told,
and hands back what came. Nothing is decided twice.
"""

import functools
import importlib.util
import itertools
import logging
import os
import random as _random
import sys
import time
from collections.abc import (
    Awaitable,
    Callable,
    Generator,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from lattice_stripe.core.config import (
    API_VERSION,
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    CallOptions,
    ClientConfig,
    call_options,
)
from lattice_stripe.core.errors import APIConnectionError
from lattice_stripe.core.flow import Sleep, Step, run
from lattice_stripe.core.http import HttpRequest, HttpResponse
from lattice_stripe.core.observe import (
    Hooks,
    Observer,
    RequestEvent,
    ResponseEvent,
    Watch,
    abandon,
)
from lattice_stripe.core.operations import SESSION_CREATE, Operation
from lattice_stripe.core.params import SessionCreateParams
from lattice_stripe.core.ports import (
    AsyncTransport,
    IdGenerator,
    Monotonic,
    RandomSource,
    SyncTransport,
)
from lattice_stripe.core.redaction import clear_frame_locals
from lattice_stripe.core.session import Session

__all__ = ["AsyncClient", "Client"]

logger = logging.getLogger("lattice_stripe")

if TYPE_CHECKING:
    from lattice_stripe.billing import AsyncCustomers, AsyncSubscriptions, Customers, Subscriptions
    from lattice_stripe.configurations import AsyncConfigurations, Configurations

Params = Mapping[str, object] | SessionCreateParams
R = TypeVar("R")
_CallFlow = Generator[Step, HttpResponse | None, R]


class _IdempotencyKeys:
    """Unique keys without a system call per key: a random prefix per process, then a count.

    The prefix is 128 bits from the OS's CSPRNG, drawn again in a forked child
    (a pre-forking server's workers must never share keys: Stripe would replay
    one worker's session to another's customer). ``os.urandom`` per key would
    release the GIL for its system call on every request, which costs threaded
    servers a thread switch each time.
    """

    def __init__(self) -> None:
        self._start()

    def _start(self) -> None:
        self._prefix = os.urandom(16).hex() + "-"
        self._count = itertools.count(1)

    def __call__(self) -> str:
        # next() on itertools.count is one atomic step under the GIL.
        return self._prefix + str(next(self._count))


_idempotency_keys = _IdempotencyKeys()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_idempotency_keys._start)


# A free-threaded interpreter gives no atomic next() on a shared counter.
_GIL = bool(getattr(sys, "_is_gil_enabled", lambda: True)())


def new_idempotency_key() -> str:
    """A fresh idempotency key, unique across processes, forks and threads.

    A random 128-bit prefix per process (from the OS's CSPRNG, drawn again
    after a fork) and a counter; on a free-threaded interpreter, 128 fresh
    random bits per key.
    """
    return _idempotency_keys() if _GIL else os.urandom(16).hex()


def _log_attempt(request: HttpRequest, response: HttpResponse | None, started: float) -> None:
    logger.debug(
        "%s %s -> %s in %.3fs (request id %s)",
        request.method,
        request.url,
        "no response" if response is None else response.status,
        time.perf_counter() - started,
        None if response is None else response.request_id,
    )


def _watch(
    observers: Sequence[Observer],
    on_request: Callable[[RequestEvent], object] | None,
    on_response: Callable[[ResponseEvent], object] | None,
    monotonic: Monotonic,
) -> Watch | None:
    """What watches a client's calls: its observers, its hooks, and OpenTelemetry if installed."""
    watchers = tuple(observers)
    if on_request is not None or on_response is not None:
        watchers += (Hooks(request=on_request, response=on_response),)
    discover = _OpenTelemetryDiscovery(watchers) if _opentelemetry_installed() else None
    if not watchers and discover is None:
        return None
    return Watch(watchers, monotonic=monotonic, discover=discover)


@functools.cache
def _opentelemetry_installed() -> bool:
    return importlib.util.find_spec("opentelemetry") is not None


class _OpenTelemetryDiscovery:
    """Asks the OpenTelemetry adapter for the global providers' observer, on each call.

    The adapter (and OpenTelemetry with it) is loaded only once the app has
    loaded ``opentelemetry.trace`` itself, as setting a tracer provider does:
    an app that has it installed but does not use it pays for neither.
    """

    def __init__(self, watchers: tuple[Observer, ...]) -> None:
        self._watchers = watchers
        self._discover: Callable[[], Observer | None] | None = None

    def __call__(self) -> Observer | None:
        discover = self._discover
        if discover is None:
            if "opentelemetry.trace" not in sys.modules:
                return None
            discover = self._discover = self._load()
        return discover()

    def _load(self) -> Callable[[], Observer | None]:
        try:
            from lattice_stripe.adapters.opentelemetry import discover
        except ImportError:  # an opentelemetry without the parts the adapter needs
            return _nothing
        return discover(self._watchers) or _nothing


def _nothing() -> None:
    return None


class _Settings:
    """What both clients share: the checked configuration and the injected parts."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str,
        stripe_version: str,
        timeout: float,
        connect_timeout: float,
        deadline: float,
        max_retries: int,
        max_response_bytes: int,
        allow_http_localhost: bool,
        random: RandomSource,
        monotonic: Monotonic,
        idempotency_key_factory: IdGenerator,
        observers: Sequence[Observer],
        on_request: Callable[[RequestEvent], object] | None,
        on_response: Callable[[ResponseEvent], object] | None,
    ) -> None:
        self._config = ClientConfig(
            api_key=api_key,
            base_url=base_url,
            stripe_version=stripe_version,
            timeout=timeout,
            connect_timeout=connect_timeout,
            deadline=deadline,
            max_retries=max_retries,
            max_response_bytes=max_response_bytes,
            allow_http_localhost=allow_http_localhost,
        )
        self._random = random
        self._monotonic = monotonic
        self._new_key = idempotency_key_factory
        self._watch = _watch(observers, on_request, on_response, monotonic)

    def _flow(
        self,
        operation: "Operation[Any, R]",
        params: object,
        options: CallOptions,
        path_args: tuple[object, ...] = (),
    ) -> _CallFlow[R]:
        flow = run(
            operation,
            self._config,
            params,
            options,
            path_args=path_args,
            new_idempotency_key=self._new_key,
            random=self._random,
            monotonic=self._monotonic,
        )
        if self._watch is None:
            return flow
        return self._watch.flow(flow, operation, self._config, options)

    def __repr__(self) -> str:
        # Also shown for a client whose construction failed half-way (rendered
        # in a traceback's locals), so nothing here may be assumed set.
        config = getattr(self, "_config", None)
        transport = getattr(self, "_transport", None)
        if config is None:
            return f"{type(self).__name__}(<not configured>)"
        return (
            f"{type(self).__name__}(base_url={config.base_url!r}, "
            f"stripe_version={config.stripe_version!r}, "
            f"transport={type(transport).__name__})"
        )


class Client(_Settings):
    """The synchronous client. One per application; it owns its transport.

    ``transport`` defaults to a new
    :class:`~lattice_stripe.adapters.stdlib.StdlibTransport` (the standard
    library only; :class:`~lattice_stripe.adapters.urllib3.Urllib3Transport`
    for urllib3's features). ``sleep``, ``random`` and
    ``idempotency_key_factory`` are injectable for deterministic tests.

    ``on_request`` / ``on_response`` are called with a frozen, redacted
    :class:`~lattice_stripe.core.observe.RequestEvent` /
    :class:`~lattice_stripe.core.observe.ResponseEvent` for each attempt;
    ``observers`` (:class:`~lattice_stripe.core.observe.Observer`) see every
    attempt, retry and end of each call. With ``opentelemetry-api``
    installed, calls are traced through the global providers once a tracer
    provider is set.
    """

    def __init__(
        self,
        api_key: str,
        *,
        transport: SyncTransport | None = None,
        base_url: str = DEFAULT_BASE_URL,
        stripe_version: str = API_VERSION,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_http_localhost: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        random: RandomSource = _random.random,
        monotonic: Monotonic = time.monotonic,
        idempotency_key_factory: IdGenerator = new_idempotency_key,
        observers: Sequence[Observer] = (),
        on_request: Callable[[RequestEvent], object] | None = None,
        on_response: Callable[[ResponseEvent], object] | None = None,
    ) -> None:
        try:
            super().__init__(
                api_key,
                base_url=base_url,
                stripe_version=stripe_version,
                timeout=timeout,
                connect_timeout=connect_timeout,
                deadline=deadline,
                max_retries=max_retries,
                max_response_bytes=max_response_bytes,
                allow_http_localhost=allow_http_localhost,
                random=random,
                monotonic=monotonic,
                idempotency_key_factory=idempotency_key_factory,
                observers=observers,
                on_request=on_request,
                on_response=on_response,
            )
            if transport is None:
                from lattice_stripe.adapters.stdlib import StdlibTransport

                transport = StdlibTransport()
            self._transport: SyncTransport = transport
            self._sleep = sleep
            self.billing_portal = BillingPortal(self)
        except BaseException as error:
            # The key must not stay in this frame's locals, nor the
            # configuration's below, for a traceback rendered with them.
            del api_key
            clear_frame_locals(error)
            raise

    def _run(self, flow: _CallFlow[R]) -> R:
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    self._sleep(step.seconds)
                    step = flow.send(None)
                    continue
                started = time.perf_counter() if logger.isEnabledFor(logging.DEBUG) else 0.0
                try:
                    response = self._transport.send(step)
                except APIConnectionError as error:
                    if started:
                        _log_attempt(step, None, started)
                    step = flow.throw(error)
                    continue
                if started:
                    _log_attempt(step, response, started)
                step = flow.send(response)
        except StopIteration as done:
            result: R = done.value
            return result
        except BaseException as error:
            abandon(flow, error)  # its observers see how the call ended
            # Whatever ends the call (a failure, a timeout, a cancellation, a
            # signal) passed through frames holding the key and the response.
            clear_frame_locals(error)
            raise
        finally:
            flow.close()  # as httpx closes an auth flow: nothing of the call outlives it

    @functools.cached_property
    def customers(self) -> "Customers":
        """``client.customers``: create, retrieve, update (loaded on first use)."""
        from lattice_stripe.billing import Customers

        return Customers(self)

    @functools.cached_property
    def subscriptions(self) -> "Subscriptions":
        """``client.subscriptions``: retrieve, list, auto_paging_iter (loaded on first use)."""
        from lattice_stripe.billing import Subscriptions

        return Subscriptions(self)

    def close(self) -> None:
        """Close the transport (its connection pool)."""
        self._transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_Settings):
    """The asyncio client: the same API as :class:`Client`, awaited.

    ``transport`` defaults to a new
    :class:`~lattice_stripe.adapters.asyncio.AsyncioTransport` (asyncio only,
    bound to the loop that first uses it;
    :class:`~lattice_stripe.adapters.aiohttp.AiohttpTransport` for aiohttp).
    Observers and hooks as for :class:`Client`; they run on the event loop.
    """

    def __init__(
        self,
        api_key: str,
        *,
        transport: AsyncTransport | None = None,
        base_url: str = DEFAULT_BASE_URL,
        stripe_version: str = API_VERSION,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_http_localhost: bool = False,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        random: RandomSource = _random.random,
        monotonic: Monotonic = time.monotonic,
        idempotency_key_factory: IdGenerator = new_idempotency_key,
        observers: Sequence[Observer] = (),
        on_request: Callable[[RequestEvent], object] | None = None,
        on_response: Callable[[ResponseEvent], object] | None = None,
    ) -> None:
        try:
            super().__init__(
                api_key,
                base_url=base_url,
                stripe_version=stripe_version,
                timeout=timeout,
                connect_timeout=connect_timeout,
                deadline=deadline,
                max_retries=max_retries,
                max_response_bytes=max_response_bytes,
                allow_http_localhost=allow_http_localhost,
                random=random,
                monotonic=monotonic,
                idempotency_key_factory=idempotency_key_factory,
                observers=observers,
                on_request=on_request,
                on_response=on_response,
            )
            if transport is None:
                from lattice_stripe.adapters.asyncio import AsyncioTransport

                transport = AsyncioTransport()
            self._transport: AsyncTransport = transport
            if sleep is None:
                import asyncio  # here, so that the sync client never pays for importing asyncio

                sleep = asyncio.sleep
            self._sleep = sleep
            self.billing_portal = AsyncBillingPortal(self)
        except BaseException as error:
            # The key must not stay in this frame's locals, nor the
            # configuration's below, for a traceback rendered with them.
            del api_key
            clear_frame_locals(error)
            raise

    async def _run(self, flow: _CallFlow[R]) -> R:
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    await self._sleep(step.seconds)
                    step = flow.send(None)
                    continue
                started = time.perf_counter() if logger.isEnabledFor(logging.DEBUG) else 0.0
                try:
                    response = await self._transport.asend(step)
                except APIConnectionError as error:
                    if started:
                        _log_attempt(step, None, started)
                    step = flow.throw(error)
                    continue
                if started:
                    _log_attempt(step, response, started)
                step = flow.send(response)
        except StopIteration as done:
            result: R = done.value
            return result
        except BaseException as error:
            abandon(flow, error)  # its observers see how the call ended
            # Whatever ends the call (a failure, a timeout, a cancellation, a
            # signal) passed through frames holding the key and the response.
            clear_frame_locals(error)
            raise
        finally:
            flow.close()  # as httpx closes an auth flow: nothing of the call outlives it

    @functools.cached_property
    def customers(self) -> "AsyncCustomers":
        """``async_client.customers``, awaited (loaded on first use)."""
        from lattice_stripe.billing import AsyncCustomers

        return AsyncCustomers(self)

    @functools.cached_property
    def subscriptions(self) -> "AsyncSubscriptions":
        """``async_client.subscriptions``, awaited (loaded on first use)."""
        from lattice_stripe.billing import AsyncSubscriptions

        return AsyncSubscriptions(self)

    async def aclose(self) -> None:
        """Close the transport (its aiohttp session, if the transport owns it)."""
        await self._transport.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class Sessions:
    """``client.billing_portal.sessions``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self,
        params: Params,
        *,
        idempotency_key: str | None = None,
        stripe_account: str | None = None,
        api_key: str | None = None,
        stripe_version: str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> Session:
        """Create a portal session; redirect the customer to ``session.url`` at once.

        ``params`` is a mapping with string keys (as in Stripe's docs) or a
        :class:`~lattice_stripe.SessionCreateParams`. Invalid input raises
        :class:`~lattice_stripe.ValidationError` and sends nothing.
        """
        options = call_options(
            api_key=api_key,
            idempotency_key=idempotency_key,
            stripe_account=stripe_account,
            stripe_version=stripe_version,
            timeout=timeout,
            deadline=deadline,
            max_retries=max_retries,
        )
        del api_key  # kept only inside options, whose repr hides it, not in traceback locals
        return self._client._run(self._client._flow(SESSION_CREATE, params, options))


class AsyncSessions:
    """``async_client.billing_portal.sessions``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self,
        params: Params,
        *,
        idempotency_key: str | None = None,
        stripe_account: str | None = None,
        api_key: str | None = None,
        stripe_version: str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> Session:
        """Create a portal session; the awaited twin of :meth:`Sessions.create`."""
        options = call_options(
            api_key=api_key,
            idempotency_key=idempotency_key,
            stripe_account=stripe_account,
            stripe_version=stripe_version,
            timeout=timeout,
            deadline=deadline,
            max_retries=max_retries,
        )
        del api_key  # kept only inside options, whose repr hides it, not in traceback locals
        return await self._client._run(self._client._flow(SESSION_CREATE, params, options))


# The per-call options are CallOptions' fields: read from it, not listed again.
_OPTION_NAMES = frozenset(field.name for field in attrs.fields(CallOptions))


def _options(options: dict[str, Any]) -> CallOptions:
    """The call options given as keywords; the dict is emptied, so no frame keeps the API key."""
    if not options:
        return call_options()
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        options.clear()
        raise TypeError(f"unknown call option(s): {', '.join(unknown)}")
    try:
        return call_options(**options)
    finally:
        options.clear()


class BillingPortal:
    """``client.billing_portal``: ``sessions`` and ``configurations`` (loaded on first use)."""

    def __init__(self, client: "Client") -> None:
        self._client = client
        self.sessions = Sessions(client)

    @functools.cached_property
    def configurations(self) -> "Configurations":
        """``client.billing_portal.configurations``: create, retrieve, update, list, ensure."""
        from lattice_stripe.configurations import Configurations

        return Configurations(self._client)


class AsyncBillingPortal:
    """``async_client.billing_portal``: ``sessions``, and ``configurations`` on first use."""

    def __init__(self, client: "AsyncClient") -> None:
        self._client = client
        self.sessions = AsyncSessions(client)

    @functools.cached_property
    def configurations(self) -> "AsyncConfigurations":
        """``async_client.billing_portal.configurations``, awaited."""
        from lattice_stripe.configurations import AsyncConfigurations

        return AsyncConfigurations(self._client)
