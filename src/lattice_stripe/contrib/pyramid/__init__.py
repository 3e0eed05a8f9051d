"""Pyramid: ``config.include("lattice_stripe.contrib.pyramid")``.

Settings, read when the configuration is committed (all under ``lattice_stripe.``)::

    lattice_stripe.api_key = sk_test_...            (required)
    lattice_stripe.webhook_secrets = whsec_a whsec_b (whitespace or comma separated)
    lattice_stripe.timeout = 80
    lattice_stripe.max_retries = 2
    lattice_stripe.base_url = https://api.stripe.com
    lattice_stripe.allow_http_localhost = false      (local development, test keys only)
    lattice_stripe.allowed_hosts = shop.example.com *.shop.example.com
                                   (the hosts return_route URLs are built under;
                                    required with a live key)

A setting left blank takes its default. A value that is not what its setting
expects stops the start with a ``ConfigurationError`` that names the setting.

The include gives every request ``request.stripe_portal`` (a
:class:`StripePortal` over one :class:`~lattice_stripe.Client` per
application, the default transport) and the configurator two directives:
``config.add_stripe_webhook_view(route_name, handlers)`` and
``config.set_stripe_transport(transport)``. ``request.stripe_portal.customer_for``
creates the logged-in user's Stripe customer on first use (once, however many
first visits race); :func:`return_view` re-reads the user's billing state from
Stripe when the portal sends them back. For tests, include
``lattice_stripe.contrib.pyramid.testing`` instead. Needs the
``lattice-stripe[pyramid]`` extra.
"""

import contextlib
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from lattice_stripe.billing import billing_state
from lattice_stripe.client import Client
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
from lattice_stripe.core.ports import Clock, SyncTransport
from lattice_stripe.core.redaction import clear_frame_locals
from lattice_stripe.core.webhooks import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TOLERANCE,
    EventStore,
    WebhookHandler,
    WebhookReply,
    is_async_store,
)
from lattice_stripe.webhooks import WebhookReceiver

try:
    from pyramid.config import Configurator
    from pyramid.exceptions import ConfigurationError
    from pyramid.httpexceptions import (
        HTTPBadRequest,
        HTTPException,
        HTTPInternalServerError,
        HTTPSeeOther,
        exception_response,
    )
    from pyramid.interfaces import PHASE0_CONFIG, PHASE1_CONFIG
    from pyramid.registry import Registry
    from pyramid.request import Request
    from pyramid.response import Response
    from pyramid.settings import falsey, truthy
except ImportError as error:
    raise MissingDependencyError(error.name or "pyramid", "pyramid", __name__) from error

__all__ = [
    "CLIENT_KEY",
    "HOSTS_KEY",
    "SETTINGS_KEY",
    "TRANSPORT_KEY",
    "StripePortal",
    "StripeSettings",
    "add_stripe_webhook_view",
    "get_client",
    "includeme",
    "return_view",
    "set_stripe_transport",
]

PREFIX = "lattice_stripe."
CLIENT_KEY = "lattice_stripe.client"
HOSTS_KEY = "lattice_stripe.hosts"
SETTINGS_KEY = "lattice_stripe.settings"
TRANSPORT_KEY = "lattice_stripe.transport"
_SECRET_SEPARATORS = re.compile(r"[\s,]+")


def _setting_error(name: str, reason: str) -> ConfigurationError:
    return ConfigurationError(f"{PREFIX}{name}: {reason}")


def _given(settings: Mapping[str, Any], name: str) -> object:
    """The value of a setting; ``None`` if absent or blank (``name =`` in an .ini file)."""
    value = settings.get(PREFIX + name)
    return None if isinstance(value, str) and not value.strip() else value


def _integer(settings: Mapping[str, Any], name: str, default: int) -> int:
    value = _given(settings, name)
    if value is None:
        return default
    if isinstance(value, int | str) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            return int(value)
    raise _setting_error(name, f"expected a whole number, not {value!r}")


def _seconds(settings: Mapping[str, Any], name: str, default: float) -> float:
    value = _given(settings, name)
    if value is None:
        return default
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            seconds = float(value)
            if math.isfinite(seconds):
                return seconds
    raise _setting_error(name, f"expected a number of seconds, not {value!r}")


def _flag(settings: Mapping[str, Any], name: str) -> bool:
    value = _given(settings, name)
    if value is None or isinstance(value, bool):
        return value is True
    text = str(value).strip().lower()
    if text in truthy or text in falsey:
        return text in truthy
    raise _setting_error(name, f"expected true or false, not {value!r}")


def _words(settings: Mapping[str, Any], name: str, what: str) -> tuple[str, ...] | None:
    """A list setting (whitespace or comma separated, or a list); ``None`` if absent."""
    value = _given(settings, name)
    if value is None:
        return None
    parts: object = _SECRET_SEPARATORS.split(value) if isinstance(value, str) else value
    # The values may be secrets: the error never shows them.
    if not isinstance(parts, list | tuple | set | frozenset) or not all(
        isinstance(part, str) for part in parts
    ):
        raise _setting_error(
            name, f"expected {what} separated by whitespace or commas, or a list of strings"
        )
    return tuple(text for text in (part.strip() for part in parts) if text)


def _secrets(settings: Mapping[str, Any], name: str) -> tuple[str, ...]:
    return _words(settings, name, "secrets") or ()


@attrs.frozen(kw_only=True)
class StripeSettings:
    """The ``lattice_stripe.*`` settings, parsed. ``repr`` hides the secrets."""

    api_key: str = attrs.field(repr=False)
    webhook_secrets: tuple[str, ...] = attrs.field(repr=False, default=())
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    base_url: str = DEFAULT_BASE_URL
    allow_http_localhost: bool = False
    allowed_hosts: tuple[str, ...] | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "StripeSettings":
        """Read the application settings; a missing or bad value is a ConfigurationError."""
        api_key = str(settings.get(PREFIX + "api_key") or "").strip()
        if not api_key:
            raise _setting_error(
                "api_key", "required: your Stripe secret key (sk_test_..., sk_live_...)"
            )
        return cls(
            api_key=api_key,
            webhook_secrets=_secrets(settings, "webhook_secrets"),
            timeout=_seconds(settings, "timeout", DEFAULT_TIMEOUT),
            max_retries=_integer(settings, "max_retries", DEFAULT_MAX_RETRIES),
            base_url=str(_given(settings, "base_url") or DEFAULT_BASE_URL).strip(),
            allow_http_localhost=_flag(settings, "allow_http_localhost"),
            allowed_hosts=_words(settings, "allowed_hosts", "host names"),
        )


def _set_up_client(registry: Registry) -> None:
    try:
        settings = StripeSettings.from_settings(registry.settings or {})
        try:
            client = Client(
                settings.api_key,
                transport=registry.get(TRANSPORT_KEY),
                timeout=settings.timeout,
                max_retries=settings.max_retries,
                base_url=settings.base_url,
                allow_http_localhost=settings.allow_http_localhost,
            )
            hosts = HostPolicy.build(settings.allowed_hosts, live=is_live_key(settings.api_key))
        except ValidationError as error:
            raise _setting_error(error.path, error.reason) from None
    except BaseException as error:
        # The frames below held the raw settings, API key included.
        clear_frame_locals(error)
        raise
    registry[SETTINGS_KEY] = settings
    registry[CLIENT_KEY] = client
    registry[HOSTS_KEY] = hosts


def get_client(request_or_registry: Request | Registry) -> Client:
    """The application's :class:`~lattice_stripe.Client`."""
    registry = getattr(request_or_registry, "registry", request_or_registry)
    client = registry.get(CLIENT_KEY)
    if not isinstance(client, Client):
        raise RuntimeError(
            'no lattice-stripe Client: config.include("lattice_stripe.contrib.pyramid") '
            "and commit the configuration first"
        )
    return client


class StripePortal:
    """``request.stripe_portal``: portal sessions for this request's user."""

    def __init__(self, request: Request) -> None:
        self._request = request

    def _return_url(self, return_route: str | None, return_url: str | None) -> str:
        return choose_return_url(return_route, return_url, self._route_url)

    def _route_url(self, name: str) -> str:
        """``request.route_url(name)``, once the request's Host is one of the allowed hosts."""
        policy: HostPolicy = self._request.registry[HOSTS_KEY]
        policy.check(self._request.host)
        url: str = self._request.route_url(name)
        return url

    def _create(self, customer: str, return_url: str, params: Mapping[str, object]) -> str:
        session = get_client(self._request).billing_portal.sessions.create(
            portal_session_params(customer, return_url, params)
        )
        return session.url

    def url(
        self,
        *,
        customer: str,
        return_route: str | None = None,
        return_url: str | None = None,
        **params: object,
    ) -> str:
        """Create a portal session for ``customer`` and return its URL.

        The URL is a single-use credential: redirect to it at once, never log
        or store it. Give exactly one of ``return_route`` (a route name, made
        absolute with ``request.route_url``) or ``return_url``. ``params`` are
        further session parameters (``flow_data``, ``locale``, ...). Raises
        what ``sessions.create`` raises.
        """
        return self._create(customer, self._return_url(return_route, return_url), params)

    def redirect(
        self,
        *,
        customer: str,
        return_route: str | None = None,
        return_url: str | None = None,
        **params: object,
    ) -> HTTPException:
        """A 303 to a new portal session for ``customer``, never cached; return it from a view.

        ``customer`` must come from the logged-in user, never from the request.
        If Stripe fails or cannot be reached, the 303 goes back to the return
        URL with ``?billing_portal_error=<code>`` instead (see
        :attr:`error_message`); the error is logged, its text is not shown.
        A request whose ``Host`` is not in ``lattice_stripe.allowed_hosts`` gets
        a plain 400, a call the library refuses (a bad return URL, ``http`` in
        development) a plain 500 with the reason logged; neither sends anything.
        """
        try:
            back = self._return_url(return_route, return_url)
            location = self._create(customer, back, params)
        except (StripeError, APIConnectionError) as error:
            location = error_redirect_url(back, error)
        except UntrustedHostError as error:
            log_refused_portal(error)
            return HTTPBadRequest(body=UNTRUSTED_HOST_TEXT, content_type="text/plain")
        except ValidationError as error:
            log_refused_portal(error)
            return HTTPInternalServerError(body=PORTAL_UNAVAILABLE_TEXT, content_type="text/plain")
        # The default body repeats the location; the portal URL is a credential.
        return HTTPSeeOther(
            location=location, headers=dict(PORTAL_REDIRECT_HEADERS), body_template="See Other"
        )

    def customer_for(self, user_id: str, *, existing: str | None = None, **params: object) -> str:
        """The Stripe customer ID of the app's user ``user_id``, created on first use.

        Returns ``existing`` (the ID you stored on the user) when given.
        Otherwise creates the customer with ``params`` (``email``, ``name``,
        ...), the user ID in its metadata and an idempotency key derived from
        the user ID, so two concurrent first visits create one customer: store
        the returned ID on the user at once. Raises what ``customers.create`` raises.
        """
        if existing:
            return existing
        customer = get_client(self._request).customers.create(
            customer_create_params(user_id, params),
            idempotency_key=customer_idempotency_key(user_id),
        )
        return customer.id

    def billing_state(self, customer: str) -> BillingState:
        """Every subscription of ``customer``, read from Stripe now (see ``billing_state``)."""
        return billing_state(get_client(self._request), customer)

    @property
    def error_message(self) -> str | None:
        """The user-safe message for a failed portal redirect, on the return page; else ``None``."""
        return portal_error_message(self._request.GET.get(ERROR_PARAM))


def return_view(
    customer_for: Callable[[Request], str | None],
    on_state: Callable[[Request, BillingState], Any],
) -> Callable[[Request], Any]:
    """The portal's return view: re-read the user's billing state, hand it to ``on_state``.

    The portal's redirect back proves nothing (anyone can open the return
    URL), so the view trusts only Stripe: ``customer_for(request)`` names the
    logged-in user's customer (``None``: 403), every subscription is read with
    :func:`~lattice_stripe.billing_state`, and ``on_state(request, state)``
    answers (a response, or a dict for the view's renderer). If Stripe cannot
    be read the answer is a plain 503 and the error is logged.
    """

    def view(request: Request) -> Any:
        customer = customer_for(request)
        if not customer:
            return exception_response(403, body="Forbidden", content_type="text/plain")
        try:
            state = request.stripe_portal.billing_state(customer)
        except (StripeError, APIConnectionError) as error:
            log_billing_state_failure(error)
            return exception_response(
                503, body=BILLING_STATE_UNAVAILABLE_TEXT, content_type="text/plain"
            )
        return on_state(request, state)

    return view


def set_stripe_transport(config: Configurator, transport: SyncTransport) -> None:
    """Directive: send the client's requests through ``transport`` instead of the default."""

    def register() -> None:
        config.registry[TRANSPORT_KEY] = transport

    config.action(TRANSPORT_KEY, register, order=PHASE0_CONFIG)


def _response(reply: WebhookReply) -> Response:
    return Response(body=reply.body, status=reply.status, content_type="application/json")


def _raised(reply: WebhookReply) -> HTTPException:
    """A failure reply to raise, not return: a transaction manager (pyramid_tm) then aborts."""
    return exception_response(reply.status, body=reply.body, content_type="application/json")


def add_stripe_webhook_view(
    config: Configurator,
    route_name: str,
    handlers: Mapping[str, WebhookHandler],
    *,
    store: EventStore | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock = time.time,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> None:
    """Directive: the Stripe webhook view on the (existing) route ``route_name``, POST only.

    It verifies the raw body against ``lattice_stripe.webhook_secrets`` (several
    while rolling a secret), skips events already handled (``store``, in memory
    by default) and calls ``handlers[event.type](event)``. Answers 400 to a bad
    signature, 200 otherwise, including unhandled types and duplicates. If the
    handler raises, the failure is logged and a 500 with no detail of it is
    *raised*, so that a transaction manager (pyramid_tm) aborts; Stripe
    retries. Each event is claimed in ``store`` for ``lease_seconds``: if the
    worker dies mid-handler, a redelivery after that is handled. ``store`` must
    be synchronous (``SqliteEventStore``, ``PostgresEventStore``,
    ``RedisEventStore``, ...). CSRF checks are off for this view: the
    signature authenticates it.
    """
    key = f"lattice_stripe.webhook:{route_name}"
    if is_async_store(store):
        raise ConfigurationError(
            "add_stripe_webhook_view: Pyramid views are synchronous; give a synchronous "
            "event store (PostgresEventStore, not AsyncPostgresEventStore)"
        )

    def register() -> None:
        settings: StripeSettings = config.registry[SETTINGS_KEY]
        if not settings.webhook_secrets:
            raise _setting_error(
                "webhook_secrets",
                "required by add_stripe_webhook_view: the endpoint's signing secret(s), whsec_...",
            )
        config.registry[key] = WebhookReceiver(
            settings.webhook_secrets,
            handlers,
            store=store,
            tolerance=tolerance,
            clock=clock,
            max_body_bytes=max_body_bytes,
            lease_seconds=lease_seconds,
        )

    def webhook_view(request: Request) -> Response:
        receiver: WebhookReceiver = request.registry[key]
        payload = request.body_file.read(receiver.max_body_bytes + 1)
        outcome = receiver.receive(payload, request.headers.get("Stripe-Signature"))
        if isinstance(outcome, WebhookReply):
            return _response(outcome)
        try:
            outcome.handler(outcome.event)
        except Exception:
            log_handler_failure(outcome.event)
            raise _raised(receiver.failed(outcome)) from None
        except BaseException:
            # The worker is exiting (a timeout, a signal): left claimed, every
            # redelivery would be answered 409 until the lease runs out.
            receiver.failed(outcome)
            raise
        reply = receiver.succeeded(outcome)
        if reply.status >= 500:  # store_failed: the store could not record the event
            raise _raised(reply)
        return _response(reply)

    config.action(key, register)
    config.add_view(webhook_view, route_name=route_name, request_method="POST", require_csrf=False)


def includeme(config: Configurator) -> None:
    """Read the ``lattice_stripe.*`` settings and set up the client, at commit time."""
    config.add_directive("set_stripe_transport", set_stripe_transport)
    config.add_directive("add_stripe_webhook_view", add_stripe_webhook_view)
    config.add_request_method(StripePortal, "stripe_portal", reify=True)
    config.action(CLIENT_KEY, lambda: _set_up_client(config.registry), order=PHASE1_CONFIG)
