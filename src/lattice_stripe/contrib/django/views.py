"""The portal view (function and class-based) and the webhook view, sync and async.

The portal view answers POST only, under CSRF protection, for a logged-in
user: it asks ``CUSTOMER_FOR(request)`` for the Stripe customer (never the
request's data), creates a session and answers 303 to it with
``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer``. The return
URL is made absolute by ``request.build_absolute_uri``, which checks the
``Host`` against ``ALLOWED_HOSTS`` (a forged host is answered 400 before
anything is sent). When Stripe fails, or the call is refused before it is sent
(a :class:`~lattice_stripe.ValidationError`, such as an ``http://`` return URL
outside development), the customer goes back to the return URL with a
user-safe message in Django's messages framework; the failure is logged.

The async variants (``async_portal``, :class:`AsyncPortalView`,
``async_webhook``) are for ASGI, on Django 5.0 or newer (whose view decorators
keep an async view async): they run the blocking parts (the Stripe call,
the event store) in a worker thread with ``sync_to_async`` and await async
handlers.
"""

import inspect
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseForbidden,
    HttpResponseRedirect,
)
from django.shortcuts import resolve_url
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from lattice_stripe.contrib._shared import (
    ERROR_PARAM,
    PORTAL_REDIRECT_HEADERS,
    choose_return_url,
    error_redirect_url,
    log_handler_failure,
    portal_error_code,
    portal_error_message,
    portal_session_params,
)
from lattice_stripe.contrib.django.conf import StripeSettings, get_client, stripe_settings
from lattice_stripe.contrib.django.signals import handlers_for, registered_types
from lattice_stripe.contrib.django.store import DjangoEventStore
from lattice_stripe.core.errors import APIConnectionError, StripeError, ValidationError
from lattice_stripe.core.webhooks import Delivery, Event, WebhookReply
from lattice_stripe.webhooks import WebhookReceiver

__all__ = [
    "AsyncPortalView",
    "PortalRedirect",
    "PortalView",
    "async_portal",
    "async_webhook",
    "portal",
    "portal_error",
    "portal_url",
    "redirect_to_portal",
    "webhook",
]

logger = logging.getLogger("lattice_stripe.contrib")


def _return_url(request: HttpRequest, return_url: str | None) -> str:
    target = choose_return_url(None, return_url or stripe_settings().return_url, str)
    # build_absolute_uri validates the Host against ALLOWED_HOSTS (DisallowedHost: 400).
    return request.build_absolute_uri(resolve_url(target))


class PortalRedirect(HttpResponseRedirect):
    """A 303 to the portal (or back), never cached; its ``repr`` hides the Location, which is a
    single-use credential (Django's own repr shows it)."""

    status_code = 303

    def __init__(self, location: str) -> None:
        super().__init__(location)
        for name, value in PORTAL_REDIRECT_HEADERS.items():
            self[name] = value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} status_code={self.status_code}>"


def portal_url(
    request: HttpRequest, *, customer: str, return_url: str | None = None, **params: object
) -> str:
    """Create a portal session for ``customer`` and return its URL.

    The URL is a single-use credential: redirect to it at once, never log or
    store it. ``return_url`` (a URL name, a path or an absolute URL) defaults
    to the ``RETURN_URL`` setting; ``params`` are further session parameters
    (``flow_data``, ``locale``, ...). Raises what ``sessions.create`` raises.
    """
    back = _return_url(request, return_url)
    session = get_client().billing_portal.sessions.create(
        portal_session_params(customer, back, params)
    )
    return session.url


def redirect_to_portal(
    request: HttpRequest, *, customer: str, return_url: str | None = None, **params: object
) -> HttpResponse:
    """A 303 to a new portal session for ``customer``, never cached; return it from a view.

    ``customer`` must come from the logged-in user, never from the request. If
    the session cannot be created, the 303 goes back to the return URL with
    ``?billing_portal_error=<code>`` and a user-safe message is added to
    Django's messages; the error is logged, its text is never shown.
    """
    back = _return_url(request, return_url)
    try:
        session = get_client().billing_portal.sessions.create(
            portal_session_params(customer, back, params)
        )
        location = session.url
    except (StripeError, APIConnectionError, ValidationError) as error:
        location = error_redirect_url(back, error)
        message = portal_error_message(portal_error_code(error))
        messages.error(request, message or "", fail_silently=True)
    return PortalRedirect(location)


def portal_error(request: HttpRequest) -> str | None:
    """The user-safe message for a failed portal redirect, on the return page; else ``None``.

    For pages that do not show Django's messages.
    """
    return portal_error_message(request.GET.get(ERROR_PARAM))


def _login_redirect(request: HttpRequest, return_url: str | None) -> HttpResponse:
    # After logging in, the user lands on the page with the button: the portal
    # view itself answers POST only.
    return redirect_to_login(resolve_url(return_url or stripe_settings().return_url))


def _customer_for() -> Callable[..., Any]:
    customer_for = stripe_settings().customer_for
    if customer_for is None:
        raise RuntimeError(
            "LATTICE_STRIPE['CUSTOMER_FOR'] is not set: the portal view cannot tell whose portal "
            "to open"
        )
    return customer_for


class PortalView(View):
    """The portal view, class-based: subclass it for deep links.

    ``return_url`` (a URL name, path or absolute URL; the ``RETURN_URL``
    setting by default) and ``session_params`` can be set with ``as_view``;
    override :meth:`get_customer` or :meth:`get_session_params` to choose them
    per request, from the logged-in user's records.
    """

    http_method_names = ["post"]  # noqa: RUF012  (Django's own attribute, a list)
    return_url: str | None = None
    session_params: Mapping[str, object] = MappingProxyType({})

    def get_customer(self, request: HttpRequest) -> str | None:
        """The logged-in user's Stripe customer ID: ``CUSTOMER_FOR(request)``."""
        customer: str | None = _customer_for()(request)
        return customer

    def get_session_params(self, request: HttpRequest) -> Mapping[str, object]:
        """Further session parameters (``flow_data``, ``locale``, ...): ``session_params``."""
        return self.session_params

    @method_decorator(csrf_protect)
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return super().dispatch(request, *args, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Redirect the logged-in user to their portal."""
        if not request.user.is_authenticated:
            return _login_redirect(request, self.return_url)
        customer = self.get_customer(request)
        if not customer:
            return HttpResponseForbidden("Forbidden", content_type="text/plain")
        return redirect_to_portal(
            request,
            customer=customer,
            return_url=self.return_url,
            **self.get_session_params(request),
        )


class AsyncPortalView(PortalView):
    """:class:`PortalView` for ASGI: ``get_customer`` may be a coroutine function."""

    async def post(  # type: ignore[override]
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """Redirect the logged-in user to their portal."""
        if not await sync_to_async(lambda: request.user.is_authenticated)():
            return _login_redirect(request, self.return_url)
        customer = await _maybe_await(self.get_customer, request)
        if not customer:
            return HttpResponseForbidden("Forbidden", content_type="text/plain")
        params = await _maybe_await(self.get_session_params, request)
        return await sync_to_async(redirect_to_portal)(
            request, customer=customer, return_url=self.return_url, **params
        )


async def _maybe_await(function: Callable[..., Any], argument: object) -> Any:
    if _is_async(function):
        return await function(argument)
    return await sync_to_async(function)(argument)


def _is_async(function: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004  (an object with an async __call__)
    )


class _SettingsCustomer(AsyncPortalView):
    def get_customer(self, request: HttpRequest) -> Any:
        return _customer_for()(request)


portal = PortalView.as_view()
"""The portal view, configured by the settings: ``path("billing/portal/", portal)``."""

async_portal = _SettingsCustomer.as_view()
"""The portal view for ASGI; ``CUSTOMER_FOR`` may be a coroutine function."""


# -- webhooks --------------------------------------------------------------------


def _handlers(config: StripeSettings, event_type: str) -> list[Callable[..., Any]]:
    return [*config.handlers.get(event_type, ()), *handlers_for(event_type)]


def _receiver(config: StripeSettings) -> WebhookReceiver:
    if not config.webhook_secrets:
        raise RuntimeError(
            "LATTICE_STRIPE['WEBHOOK_SECRETS'] is empty: the webhook view cannot verify deliveries"
        )
    # Built per request: a handler registered or a signal connected later counts.
    event_types = set(config.handlers) | registered_types()
    return WebhookReceiver(
        config.webhook_secrets,
        dict.fromkeys(event_types, _run_handlers),
        store=DjangoEventStore(using=config.database),
        tolerance=config.tolerance,
        max_body_bytes=config.max_body_bytes,
        lease_seconds=config.lease_seconds,
    )


def _run_handlers(event: Event) -> None:
    """Run every handler of the event's type, in one transaction (a failure undoes them all)."""
    config = stripe_settings()
    with transaction.atomic(using=config.database):
        for handler in _handlers(config, event.type):
            if _is_async(handler):
                async_to_sync(handler)(event)
            else:
                handler(event)


def _reply(reply: WebhookReply) -> HttpResponse:
    return HttpResponse(reply.body, status=reply.status, content_type="application/json")


def _payload(request: HttpRequest, receiver: WebhookReceiver) -> bytes:
    # One byte over the limit is enough for the receiver to refuse the body.
    return request.read(receiver.max_body_bytes + 1)


def _deliver(receiver: WebhookReceiver, delivery: Delivery) -> HttpResponse:
    try:
        delivery.handler(delivery.event)
    except Exception:
        log_handler_failure(delivery.event)
        return _reply(receiver.failed(delivery))
    except BaseException:
        # The worker is exiting (a timeout, a signal): left claimed, every
        # redelivery would be answered 409 until the lease ran out.
        receiver.failed(delivery)
        raise
    return _reply(receiver.succeeded(delivery))


@transaction.non_atomic_requests
@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    """The Stripe webhook view: verify, de-duplicate, run the handlers, answer.

    CSRF-exempt (the signature authenticates it) and outside ``ATOMIC_REQUESTS``
    (a claim must be visible to a concurrent redelivery at once). Answers 400
    to a bad signature, 413 to a body over ``MAX_BODY_BYTES``, 409 while
    another worker handles the same event, 500 if a handler raised (logged;
    Stripe retries), 200 otherwise, including unhandled types and duplicates.
    Sync handlers run in one database transaction.
    """
    receiver = _receiver(stripe_settings())
    outcome = receiver.receive(_payload(request, receiver), request.headers.get("Stripe-Signature"))
    if isinstance(outcome, WebhookReply):
        return _reply(outcome)
    return _deliver(receiver, outcome)


@transaction.non_atomic_requests
@csrf_exempt
@require_POST
async def async_webhook(request: HttpRequest) -> HttpResponse:
    """:func:`webhook` for ASGI: async handlers are awaited, sync ones and the store run in a
    worker thread (the sync handlers of one event in one transaction)."""
    receiver = _receiver(stripe_settings())
    payload = _payload(request, receiver)
    outcome = await sync_to_async(receiver.receive)(
        payload, request.headers.get("Stripe-Signature")
    )
    if isinstance(outcome, WebhookReply):
        return _reply(outcome)
    event = outcome.event
    handlers = _handlers(stripe_settings(), event.type)
    try:
        await sync_to_async(_run_sync_handlers)(handlers, event)
        for handler in handlers:
            if _is_async(handler):
                await handler(event)
    except Exception:
        log_handler_failure(event)
        return _reply(await sync_to_async(receiver.failed)(outcome))
    except BaseException:
        await sync_to_async(receiver.failed)(outcome)
        raise
    return _reply(await sync_to_async(receiver.succeeded)(outcome))


def _run_sync_handlers(handlers: list[Callable[..., Any]], event: Event) -> None:
    with transaction.atomic(using=stripe_settings().database):
        for handler in handlers:
            if not _is_async(handler):
                handler(event)
