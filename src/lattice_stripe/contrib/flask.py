"""Flask: the ``LatticeStripe`` extension, portal redirects, the webhook blueprint.

::

    stripe = LatticeStripe(app)            # or stripe = LatticeStripe(); stripe.init_app(app)

    @app.post("/billing/portal")
    @login_required
    def billing_portal():
        return stripe.redirect_to_portal(customer=current_user.stripe_customer_id,
                                         return_endpoint="account")

    app.register_blueprint(stripe.webhook_blueprint(handlers), url_prefix="/stripe")

Configuration, read by ``init_app`` from ``app.config`` (a bad value stops the
start with a :class:`~lattice_stripe.ValidationError` naming the key):
``LATTICE_STRIPE_API_KEY`` (required), ``LATTICE_STRIPE_WEBHOOK_SECRETS``
(a list, or whitespace separated), ``LATTICE_STRIPE_TIMEOUT``,
``LATTICE_STRIPE_MAX_RETRIES``, ``LATTICE_STRIPE_BASE_URL``,
``LATTICE_STRIPE_ALLOW_HTTP_LOCALHOST`` (local development, test keys only)
and ``LATTICE_STRIPE_TRANSPORT`` (tests: a
:class:`~lattice_stripe.adapters.recording.RecordingTransport`).

Set Flask's ``TRUSTED_HOSTS``: the return URL is made absolute on the
request's host, and Flask then answers 400 to any other ``Host`` before a view
runs, so a forged header cannot choose where Stripe sends the customer back.
Needs the ``lattice-stripe[flask]`` extra (Flask 3.1 or newer).
"""

import logging
import time
from collections.abc import Mapping
from typing import Any

import attrs
from flask import Blueprint, Flask, current_app, flash, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from lattice_stripe.client import Client
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
from lattice_stripe.core.config import DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from lattice_stripe.core.errors import APIConnectionError, StripeError, ValidationError
from lattice_stripe.core.ports import Clock, SyncTransport
from lattice_stripe.core.webhooks import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TOLERANCE,
    EventStore,
    WebhookHandler,
    WebhookReply,
)
from lattice_stripe.testing import RecordingTransport
from lattice_stripe.webhooks import WebhookReceiver

__all__ = ["EXTENSION_KEY", "LatticeStripe", "portal_error", "recording_transport"]

EXTENSION_KEY = "lattice_stripe"
"""The key of the extension's state in ``app.extensions``."""

PREFIX = "LATTICE_STRIPE_"
logger = logging.getLogger("lattice_stripe.contrib")


@attrs.frozen(kw_only=True)
class _State:
    client: Client
    transport: SyncTransport | None = attrs.field(repr=False)
    webhook_secrets: tuple[str, ...] = attrs.field(repr=False)
    receivers: dict[str, WebhookReceiver] = attrs.field(factory=dict)


def _config_error(key: str, reason: str) -> ValidationError:
    return ValidationError(f"app.config[{PREFIX + key!r}]", reason)


def _secrets(value: object) -> tuple[str, ...]:
    parts = value.split() if isinstance(value, str) else value
    if parts is None:
        return ()
    # The values are secrets: the error never shows them.
    if not isinstance(parts, list | tuple) or not all(isinstance(part, str) for part in parts):
        raise _config_error("WEBHOOK_SECRETS", "expected a list of whsec_... strings")
    return tuple(parts)


def _number(config: Mapping[str, Any], key: str, default: float, kind: type[Any]) -> Any:
    value = config.get(PREFIX + key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _config_error(key, f"expected a non-negative number, e.g. {default!r}")
    return kind(value)


def _state(app: Flask | None = None) -> _State:
    state = (app or current_app).extensions.get(EXTENSION_KEY)
    if not isinstance(state, _State):
        raise RuntimeError("lattice-stripe is not set up on this app: call LatticeStripe(app)")
    return state


class LatticeStripe:
    """The extension: one :class:`~lattice_stripe.Client` per app, built by :meth:`init_app`."""

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read ``app.config`` and build the app's client (a bad key fails here, not later)."""
        config = app.config
        transport: SyncTransport | None = config.get(PREFIX + "TRANSPORT")
        try:
            client = Client(
                config.get(PREFIX + "API_KEY") or "",
                transport=transport,
                timeout=_number(config, "TIMEOUT", DEFAULT_TIMEOUT, float),
                max_retries=_number(config, "MAX_RETRIES", DEFAULT_MAX_RETRIES, int),
                base_url=config.get(PREFIX + "BASE_URL", DEFAULT_BASE_URL),
                allow_http_localhost=config.get(PREFIX + "ALLOW_HTTP_LOCALHOST", False) is True,
            )
        except ValidationError as error:
            if error.path.startswith("app.config"):
                raise
            raise _config_error(error.path.upper(), error.reason) from None
        if config.get("TRUSTED_HOSTS") is None and not (app.debug or app.testing):
            logger.warning(
                "TRUSTED_HOSTS is not set: any Host header chooses the portal's return URL; "
                "set it to your site's host names"
            )
        app.extensions[EXTENSION_KEY] = _State(
            client=client,
            transport=transport,
            webhook_secrets=_secrets(config.get(PREFIX + "WEBHOOK_SECRETS")),
        )

    @property
    def client(self) -> Client:
        """The current app's :class:`~lattice_stripe.Client`."""
        return _state().client

    def _return_url(self, return_endpoint: str | None, return_url: str | None) -> str:
        return choose_return_url(
            return_endpoint, return_url, lambda endpoint: url_for(endpoint, _external=True)
        )

    def portal_url(
        self,
        *,
        customer: str,
        return_endpoint: str | None = None,
        return_url: str | None = None,
        **params: object,
    ) -> str:
        """Create a portal session for ``customer`` and return its URL.

        The URL is a single-use credential: redirect to it at once, never log
        or store it. Give exactly one of ``return_endpoint`` (made absolute
        with ``url_for(..., _external=True)``) or ``return_url``. Raises what
        ``sessions.create`` raises.
        """
        back = self._return_url(return_endpoint, return_url)
        return self.client.billing_portal.sessions.create(
            portal_session_params(customer, back, params)
        ).url

    def redirect_to_portal(
        self,
        *,
        customer: str,
        return_endpoint: str | None = None,
        return_url: str | None = None,
        **params: object,
    ) -> Response:
        """A 303 to a new portal session for ``customer``, never cached; return it from a view.

        ``customer`` must come from the logged-in user, never from the request.
        If the session cannot be created (Stripe failed, or the call was
        refused before it was sent: a :class:`~lattice_stripe.ValidationError`
        such as an ``http://`` return URL), the 303 goes back to the return URL
        with ``?billing_portal_error=<code>`` (see :func:`portal_error`), and
        the message is flashed when the app has sessions; the error is logged,
        its text never shown.
        """
        back = self._return_url(return_endpoint, return_url)
        try:
            location = self.client.billing_portal.sessions.create(
                portal_session_params(customer, back, params)
            ).url
        except (StripeError, APIConnectionError, ValidationError) as error:
            location = error_redirect_url(back, error)
            if current_app.secret_key:
                flash(portal_error_message(portal_error_code(error)) or "", "error")
        response = Response("See Other", status=303, mimetype="text/plain")
        response.headers["Location"] = location
        response.headers.update(PORTAL_REDIRECT_HEADERS)
        return response

    def webhook_blueprint(
        self,
        handlers: Mapping[str, WebhookHandler],
        *,
        name: str = "lattice_stripe_webhook",
        rule: str = "/webhook",
        store: EventStore | None = None,
        tolerance: int = DEFAULT_TOLERANCE,
        clock: Clock = time.time,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> Blueprint:
        """A blueprint with the Stripe webhook view at ``rule`` (POST only).

        It verifies the raw body against ``LATTICE_STRIPE_WEBHOOK_SECRETS``
        (several while rolling one; registering the blueprint without any fails),
        skips events already handled (``store``, in memory by default) and runs
        ``handlers[event.type](event)`` (a coroutine function through
        ``app.ensure_sync``). Answers 400 to a bad signature, 409 while another
        worker handles the event, 500 if the handler raised (logged; Stripe
        retries), 200 otherwise. With Flask-WTF, exempt it: ``csrf.exempt(bp)``.
        """
        blueprint = Blueprint(name, __name__)

        def set_up(setup: Any) -> None:
            state = _state(setup.app)
            if not state.webhook_secrets:
                raise _config_error(
                    "WEBHOOK_SECRETS", "required by the webhook blueprint: the endpoint's whsec_..."
                )
            state.receivers[name] = WebhookReceiver(
                state.webhook_secrets,
                handlers,
                store=store,
                tolerance=tolerance,
                clock=clock,
                max_body_bytes=max_body_bytes,
                lease_seconds=lease_seconds,
            )

        blueprint.record_once(set_up)

        @blueprint.post(rule)
        def webhook() -> ResponseReturnValue:
            receiver = _state().receivers[name]
            payload = request.stream.read(receiver.max_body_bytes + 1)
            outcome = receiver.receive(payload, request.headers.get("Stripe-Signature"))
            if isinstance(outcome, WebhookReply):
                return _reply(outcome)
            try:
                current_app.ensure_sync(outcome.handler)(outcome.event)
            except Exception:
                log_handler_failure(outcome.event)
                return _reply(receiver.failed(outcome))
            except BaseException:
                # The worker is exiting: left claimed, the event would wait out its lease.
                receiver.failed(outcome)
                raise
            return _reply(receiver.succeeded(outcome))

        return blueprint


def _reply(reply: WebhookReply) -> Response:
    return Response(reply.body, status=reply.status, mimetype="application/json")


def portal_error() -> str | None:
    """The user-safe message for a failed portal redirect, on the return page; else ``None``."""
    return portal_error_message(request.args.get(ERROR_PARAM))


def recording_transport(app: Flask) -> RecordingTransport:
    """For tests: the app's recording fake (set ``LATTICE_STRIPE_TRANSPORT`` to one)."""
    transport = _state(app).transport
    if not isinstance(transport, RecordingTransport):
        raise RuntimeError(
            "the app is not using the recording fake: set app.config"
            "['LATTICE_STRIPE_TRANSPORT'] = RecordingTransport() before LatticeStripe(app)"
        )
    return transport
