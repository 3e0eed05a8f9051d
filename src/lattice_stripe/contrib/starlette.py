"""Starlette (and FastAPI): one AsyncClient per app, portal redirects, the webhook endpoint.

::

    app = Starlette(
        routes=[
            Route("/billing/portal", portal_endpoint(current_customer, return_route="account"),
                  methods=["POST"]),
            Route("/stripe/webhook", webhook_endpoint(secrets, handlers), methods=["POST"]),
            ...
        ],
        lifespan=stripe_lifespan(os.environ["STRIPE_SECRET_KEY"]),
    )

:func:`stripe_lifespan` opens one :class:`~lattice_stripe.AsyncClient` (the
standard-library asyncio transport unless given another) for the life of the app and puts it in the
lifespan state; :func:`redirect_to_portal` creates a session and answers 303 to
it; :func:`webhook_endpoint` verifies, de-duplicates and dispatches events.
:func:`customer_for` creates the logged-in user's Stripe customer on first
use (once, however many first visits race), and :func:`return_endpoint`
re-reads the user's billing state from Stripe when the portal sends them back.
Needs the ``lattice-stripe[starlette]`` extra.
"""

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from lattice_stripe.billing import abilling_state
from lattice_stripe.client import AsyncClient
from lattice_stripe.contrib._shared import (
    BILLING_STATE_UNAVAILABLE_TEXT,
    ERROR_PARAM,
    PORTAL_REDIRECT_HEADERS,
    PORTAL_UNAVAILABLE_TEXT,
    UNTRUSTED_HOST_TEXT,
    HostPolicy,
    UntrustedHostError,
    choose_return_url,
    customer_create_params,
    customer_idempotency_key,
    error_redirect_url,
    log_billing_state_failure,
    log_handler_failure,
    log_refused_portal,
    portal_error_message,
    portal_session_params,
)
from lattice_stripe.core.billing import BillingState
from lattice_stripe.core.config import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    is_live_key,
)
from lattice_stripe.core.errors import (
    APIConnectionError,
    MissingDependencyError,
    StripeError,
    ValidationError,
)
from lattice_stripe.core.ports import AsyncTransport, Clock
from lattice_stripe.core.redaction import Secret, clear_frame_locals
from lattice_stripe.core.webhooks import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TOLERANCE,
    AsyncEventStore,
    Delivery,
    EventStore,
    WebhookHandler,
    WebhookReply,
)
from lattice_stripe.webhooks import WebhookReceiver

try:
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, RedirectResponse, Response
except ImportError as error:
    raise MissingDependencyError(error.name or "starlette", "starlette", __name__) from error

__all__ = [
    "HOSTS_KEY",
    "STATE_KEY",
    "customer_for",
    "get_client",
    "portal_endpoint",
    "portal_error",
    "portal_url",
    "redirect_to_portal",
    "return_endpoint",
    "stripe_lifespan",
    "webhook_endpoint",
]

STATE_KEY = "lattice_stripe_client"
"""The lifespan state key (``request.state.lattice_stripe_client``) of the AsyncClient."""

HOSTS_KEY = "lattice_stripe_hosts"
"""The lifespan state key of the :class:`~lattice_stripe.contrib.HostPolicy` for return URLs."""

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[Mapping[str, Any] | None]]
Endpoint = Callable[[Request], Awaitable[Response]]
CustomerLookup = Callable[[Request], str | Awaitable[str | None] | None]
StateCallback = Callable[[Request, BillingState], Response | Awaitable[Response]]


def stripe_lifespan(
    api_key: str,
    *,
    transport: AsyncTransport | None = None,
    base_url: str = DEFAULT_BASE_URL,
    timeout: float = DEFAULT_TIMEOUT,
    max_retries: int = DEFAULT_MAX_RETRIES,
    allow_http_localhost: bool = False,
    allowed_hosts: Iterable[str] | None = None,
    inner: Lifespan | None = None,
) -> Callable[[Starlette], AbstractAsyncContextManager[Mapping[str, Any]]]:
    """A lifespan that owns one :class:`~lattice_stripe.AsyncClient`, closed at shutdown.

    The client is built at startup (a bad ``api_key`` fails the start, not the
    first request). ``transport`` defaults to the asyncio one; pass a
    :class:`~lattice_stripe.adapters.recording.RecordingTransport` in tests.
    ``allow_http_localhost`` accepts ``http://localhost`` return URLs, for local
    development with test keys only. ``allowed_hosts`` lists the host names a
    ``return_route`` may be made absolute under (``request.url_for`` trusts the
    request's ``Host`` header): required with a live key; with a test key it
    defaults to :data:`~lattice_stripe.contrib.DEVELOPMENT_HOSTS`. ``inner`` is
    the app's own lifespan, run inside; its state is kept.
    """

    # The closure keeps the key masked: its frame's locals show what it closes over.
    key = Secret(api_key)
    del api_key

    hosts = None if allowed_hosts is None else tuple(allowed_hosts)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Mapping[str, Any]]:
        try:
            revealed = key.reveal()
            policy = HostPolicy.build(
                hosts, live=isinstance(revealed, str) and is_live_key(revealed)
            )
            del revealed
            async with AsyncClient(
                key.reveal(),
                transport=transport,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                allow_http_localhost=allow_http_localhost,
            ) as client:
                if inner is None:
                    yield {STATE_KEY: client, HOSTS_KEY: policy}
                    return
                async with inner(app) as state:
                    yield {**(state or {}), STATE_KEY: client, HOSTS_KEY: policy}
        except BaseException as error:
            clear_frame_locals(error)
            raise

    return lifespan


def get_client(request: Request) -> AsyncClient:
    """The app's AsyncClient, from the lifespan state."""
    client = getattr(request.state, STATE_KEY, None)
    if not isinstance(client, AsyncClient):
        raise RuntimeError(
            "no lattice-stripe AsyncClient in the lifespan state: create the app with "
            "Starlette(..., lifespan=stripe_lifespan(api_key))"
        )
    return client


async def portal_url(
    request: Request,
    *,
    customer: str,
    return_route: str | None = None,
    return_url: str | None = None,
    **params: object,
) -> str:
    """Create a portal session for ``customer`` and return its URL.

    The URL is a single-use credential: redirect to it at once, never log or
    store it. Give exactly one of ``return_route`` (a route name, made absolute
    with ``request.url_for``) or ``return_url``. ``params`` are further session
    parameters (``flow_data``, ``locale``, ``configuration``, ...). Raises what
    ``sessions.create`` raises.
    """
    return await _create_session_url(
        request, customer, _return_url(request, return_route, return_url), params
    )


def _return_url(request: Request, return_route: str | None, return_url: str | None) -> str:
    return choose_return_url(return_route, return_url, lambda name: _url_for(request, name))


def _url_for(request: Request, name: str) -> str:
    """``request.url_for(name)``, once the request's Host is one of the allowed hosts."""
    policy = getattr(request.state, HOSTS_KEY, None)
    if not isinstance(policy, HostPolicy):
        raise RuntimeError(
            "no lattice-stripe host policy in the lifespan state: create the app with "
            "Starlette(..., lifespan=stripe_lifespan(api_key, allowed_hosts=[...]))"
        )
    policy.check(request.headers.get("host"))
    return str(request.url_for(name))


async def _create_session_url(
    request: Request, customer: str, return_url: str, params: Mapping[str, object]
) -> str:
    session = await get_client(request).billing_portal.sessions.create(
        portal_session_params(customer, return_url, params)
    )
    return session.url


async def redirect_to_portal(
    request: Request,
    *,
    customer: str,
    return_route: str | None = None,
    return_url: str | None = None,
    **params: object,
) -> Response:
    """Answer 303 to a new portal session for ``customer``, never cached.

    ``customer`` must come from the logged-in user, never from the request.
    If Stripe fails or cannot be reached, answer 303 back to the return URL
    with ``?billing_portal_error=<code>`` instead (see :func:`portal_error`);
    the error is logged, its text is not shown. A request whose ``Host`` is
    not one of the allowed hosts gets a plain 400; a call the library refuses
    (a :class:`~lattice_stripe.ValidationError`: a bug in the call or the
    configuration, such as an ``http`` return URL) a plain 500 with the reason
    logged. Neither sends anything to Stripe.
    """
    try:
        back = _return_url(request, return_route, return_url)
        url = await _create_session_url(request, customer, back, params)
    except (StripeError, APIConnectionError) as error:
        url = error_redirect_url(back, error)
    except UntrustedHostError as error:
        log_refused_portal(error)
        return PlainTextResponse(UNTRUSTED_HOST_TEXT, status_code=400)
    except ValidationError as error:
        log_refused_portal(error)
        return PlainTextResponse(PORTAL_UNAVAILABLE_TEXT, status_code=500)
    return RedirectResponse(url, status_code=303, headers=dict(PORTAL_REDIRECT_HEADERS))


def portal_error(request: Request) -> str | None:
    """The user-safe message for a failed portal redirect, on the return page; else ``None``."""
    return portal_error_message(request.query_params.get(ERROR_PARAM))


async def _call(function: Callable[..., object], argument: object) -> Any:
    """Await a coroutine function; run anything else in the thread pool (it may block)."""
    if inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        type(function).__call__
    ):
        result = function(argument)
    else:
        result = await run_in_threadpool(function, argument)
    return await result if inspect.isawaitable(result) else result


def portal_endpoint(
    customer_for: CustomerLookup,
    *,
    return_route: str | None = None,
    return_url: str | None = None,
    **params: object,
) -> Endpoint:
    """An endpoint that redirects the logged-in user to their portal.

    ``customer_for(request)`` (sync or async) returns the Stripe customer ID of
    the logged-in user, from your session or database, or ``None`` (or an
    empty string) when there is none: the endpoint then answers 403. Mount it
    with ``methods=["POST"]`` and post to it from a form. Other arguments are
    those of :func:`redirect_to_portal`.
    """
    choose_return_url(return_route, return_url, str)  # fail at set-up, not on a request

    async def endpoint(request: Request) -> Response:
        customer = await _call(customer_for, request)
        if not customer:
            return PlainTextResponse("Forbidden", status_code=403)
        return await redirect_to_portal(
            request, customer=customer, return_route=return_route, return_url=return_url, **params
        )

    return endpoint


async def customer_for(
    request: Request, user_id: str, *, existing: str | None = None, **params: object
) -> str:
    """The Stripe customer ID of the app's user ``user_id``, created on first use.

    Returns ``existing`` (the ID you stored on the user) when given. Otherwise
    creates the customer with ``params`` (``email``, ``name``, ...), the user
    ID in its metadata and an idempotency key derived from the user ID, so two
    concurrent first visits create one customer: store the returned ID on the
    user at once. Raises what ``customers.create`` raises.
    """
    if existing:
        return existing
    customer = await get_client(request).customers.create(
        customer_create_params(user_id, params),
        idempotency_key=customer_idempotency_key(user_id),
    )
    return customer.id


def return_endpoint(customer_for: CustomerLookup, on_state: StateCallback) -> Endpoint:
    """The portal's return endpoint: re-read the user's billing state, hand it to ``on_state``.

    The portal's redirect back proves nothing (anyone can open the return
    URL), so the endpoint trusts only Stripe: ``customer_for(request)`` (sync
    or async, as for :func:`portal_endpoint`) names the logged-in user's
    customer (``None``: 403), every subscription is read with
    :func:`~lattice_stripe.abilling_state`, and ``on_state(request, state)``
    answers (a coroutine function is awaited, a plain one runs in the thread
    pool). If Stripe cannot be read the answer is a plain
    503 and the error is logged.
    """

    async def endpoint(request: Request) -> Response:
        customer = await _call(customer_for, request)
        if not customer:
            return PlainTextResponse("Forbidden", status_code=403)
        try:
            state = await abilling_state(get_client(request), customer)
        except (StripeError, APIConnectionError) as error:
            log_billing_state_failure(error)
            return PlainTextResponse(BILLING_STATE_UNAVAILABLE_TEXT, status_code=503)
        if inspect.iscoroutinefunction(on_state):
            answer: Any = await on_state(request, state)
        else:  # a plain function may block (a database write): off the event loop
            answer = await run_in_threadpool(on_state, request, state)
        response: Response = await answer if inspect.isawaitable(answer) else answer
        return response

    return endpoint


async def _read_bounded(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


def _response(reply: WebhookReply) -> Response:
    return Response(reply.body, status_code=reply.status, media_type="application/json")


def webhook_endpoint(
    secrets: str | Iterable[str],
    handlers: Mapping[str, WebhookHandler],
    *,
    store: EventStore | AsyncEventStore | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock = time.time,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> Endpoint:
    """The Stripe webhook endpoint: mount it with ``methods=["POST"]``.

    It verifies the raw body against ``secrets`` (several while rolling a
    secret), skips events already handled (``store``, in memory by default),
    and runs ``handlers[event.type]``: a coroutine function is awaited, a plain
    function runs in the thread pool, as do the calls to a synchronous
    ``store``; an :class:`~lattice_stripe.core.webhooks.AsyncEventStore`
    (``AsyncPostgresEventStore``, ``AsyncRedisEventStore``) is awaited on the
    loop. Each event is claimed for ``lease_seconds``: if the worker dies
    mid-handler, a redelivery after that is handled. Answers 400 to a bad
    signature, 500 if the handler raised (logged; Stripe retries), 409 while
    another worker handles the same event, 200 otherwise, including unhandled
    types and duplicates. See :class:`~lattice_stripe.core.webhooks.WebhookReceiver`.
    """
    receiver = WebhookReceiver(
        secrets,
        handlers,
        store=store,
        tolerance=tolerance,
        clock=clock,
        max_body_bytes=max_body_bytes,
        lease_seconds=lease_seconds,
    )
    if receiver.is_async:
        return _async_store_endpoint(receiver)

    async def endpoint(request: Request) -> Response:
        payload = await _read_bounded(request, receiver.max_body_bytes)
        # The receiver calls the event store, which may well be a database:
        # those calls block, so they run in the thread pool like sync handlers.
        outcome = await run_in_threadpool(
            receiver.receive, payload, request.headers.get("stripe-signature")
        )
        if isinstance(outcome, WebhookReply):
            return _response(outcome)
        try:
            await _call(outcome.handler, outcome.event)
        except Exception:
            log_handler_failure(outcome.event)
            return _response(await run_in_threadpool(receiver.failed, outcome))
        except BaseException:
            # Cancelled (the server is shutting down): left claimed, every
            # redelivery would be answered 409 until the lease runs out. Called
            # here: a cancelled task can no longer await the thread pool.
            receiver.failed(outcome)
            raise
        return _response(await run_in_threadpool(receiver.succeeded, outcome))

    return endpoint


def _async_store_endpoint(receiver: WebhookReceiver) -> Endpoint:
    """The webhook endpoint over an asynchronous event store, awaited on the loop."""

    async def endpoint(request: Request) -> Response:
        payload = await _read_bounded(request, receiver.max_body_bytes)
        outcome = await receiver.areceive(payload, request.headers.get("stripe-signature"))
        if isinstance(outcome, WebhookReply):
            return _response(outcome)
        try:
            await _call(outcome.handler, outcome.event)
        except Exception:
            log_handler_failure(outcome.event)
            return _response(await receiver.afailed(outcome))
        except BaseException:
            # Cancelled: the release runs as a task of its own, which the
            # cancellation of this one does not reach; else the lease frees it.
            _release_later(receiver, outcome)
            raise
        return _response(await receiver.asucceeded(outcome))

    return endpoint


_pending_releases: set["asyncio.Task[WebhookReply]"] = set()


def _release_later(receiver: WebhookReceiver, delivery: Delivery) -> None:
    task = asyncio.get_running_loop().create_task(receiver.afailed(delivery))
    # The loop keeps only a weak reference to a task: hold it until it is done.
    _pending_releases.add(task)
    task.add_done_callback(_pending_releases.discard)
