"""Framework integrations: :mod:`lattice_stripe.contrib.starlette`,
:mod:`lattice_stripe.contrib.pyramid`, :mod:`lattice_stripe.contrib.django` and
:mod:`lattice_stripe.contrib.flask`.

This module holds what they share and nothing framework-specific: the
choice of return URL and the session parameters, the headers of a portal
redirect, how a failed session creation becomes a redirect back with a
user-safe message, and the log line of a failed webhook handler.
"""

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from lattice_stripe.core.errors import (
    APIConnectionError,
    APIError,
    LatticeStripeError,
    RateLimitError,
    ValidationError,
)
from lattice_stripe.core.webhooks import Event

__all__ = [
    "ERROR_PARAM",
    "PORTAL_ERROR_MESSAGES",
    "PORTAL_REDIRECT_HEADERS",
    "choose_return_url",
    "error_redirect_url",
    "log_handler_failure",
    "portal_error_code",
    "portal_error_message",
    "portal_session_params",
]

logger = logging.getLogger("lattice_stripe.contrib")

# The Location is a single-use credential: no cache may keep the response, and
# the page the customer lands on must not learn where they came from.
PORTAL_REDIRECT_HEADERS: Mapping[str, str] = MappingProxyType(
    {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
)

ERROR_PARAM = "billing_portal_error"
"""The query parameter of the return URL that carries an error code after a failure."""

PORTAL_ERROR_MESSAGES: Mapping[str, str] = MappingProxyType(
    {
        "unavailable": "The billing portal is temporarily unavailable. "
        "Please try again in a few minutes.",
        "failed": "The billing portal could not be opened. "
        "Please contact support if this keeps happening.",
    }
)
"""User-safe messages by error code; Stripe's own error text is never shown."""


def choose_return_url(
    return_route: str | None, return_url: str | None, url_for: Callable[[str], str]
) -> str:
    """The absolute return URL: ``return_url``, or ``url_for(return_route)``; exactly one."""
    if (return_route is None) == (return_url is None):
        raise TypeError("pass exactly one of return_route (a route name) or return_url")
    return url_for(return_route) if return_route is not None else str(return_url)


def portal_session_params(
    customer: str, return_url: str, params: Mapping[str, object]
) -> dict[str, object]:
    """The session parameters: ``params`` with ``customer`` and ``return_url``.

    Those two always win over ``params``: the customer is the logged-in
    user's, whatever else the call carries.
    """
    return {**params, "customer": customer, "return_url": return_url}


def portal_error_code(error: LatticeStripeError) -> str:
    """The user-safe code of a failed session creation: busy or unreachable Stripe
    (connection failures, rate limits, 5xx) is ``unavailable``, anything else ``failed``."""
    if isinstance(error, APIConnectionError | RateLimitError | APIError):
        return "unavailable"
    return "failed"


def error_redirect_url(return_url: str, error: LatticeStripeError) -> str:
    """Log ``error`` and return ``return_url`` with its :func:`portal_error_code` in the query.

    A :class:`~lattice_stripe.ValidationError` (a bug in the call or the
    configuration, such as an ``http://`` return URL) is logged as an error,
    Stripe's and the network's failures as warnings.
    """
    code = portal_error_code(error)
    # Error messages are scrubbed of keys and portal URLs by construction.
    level = logging.ERROR if isinstance(error, ValidationError) else logging.WARNING
    logger.log(level, "billing portal session not created (%s): %s", type(error).__name__, error)
    parts = urlsplit(return_url)
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key != ERROR_PARAM
    ]
    return urlunsplit(parts._replace(query=urlencode([*query, (ERROR_PARAM, code)])))


def portal_error_message(code: str | None) -> str | None:
    """The message to show for an error code from the return URL; ``None`` for unknown codes."""
    return PORTAL_ERROR_MESSAGES.get(code or "")


def log_handler_failure(event: Event) -> None:
    """Log the exception being handled: a webhook handler failed on ``event``."""
    logger.exception(
        "webhook handler for %s (%s) failed; answered 500 so that Stripe retries",
        event.type,
        event.id,
    )
