"""What the framework integrations share, and nothing framework-specific (private): the
choice of return URL and the session parameters, the headers of a portal
redirect, how a failed session creation becomes a redirect back with a
user-safe message, the log line of a failed webhook handler, and the
idempotency key and parameters that create a user's Stripe customer once.
"""

import hashlib
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from lattice_stripe.core.errors import (
    APIConnectionError,
    APIError,
    LatticeStripeError,
    RateLimitError,
    ValidationError,
)
from lattice_stripe.core.webhooks import Event

__all__ = [
    "BILLING_STATE_UNAVAILABLE_TEXT",
    "CUSTOMER_USER_METADATA_KEY",
    "DEVELOPMENT_HOSTS",
    "ERROR_PARAM",
    "PORTAL_ERROR_MESSAGES",
    "PORTAL_REDIRECT_HEADERS",
    "PORTAL_UNAVAILABLE_TEXT",
    "UNTRUSTED_HOST_TEXT",
    "HostPolicy",
    "UntrustedHostError",
    "choose_return_url",
    "customer_create_params",
    "customer_idempotency_key",
    "error_redirect_url",
    "log_billing_state_failure",
    "log_handler_failure",
    "log_refused_portal",
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


UNTRUSTED_HOST_TEXT = "Bad Request: this site is not served under that host name."
"""The plain body of the 400 answered to a request whose ``Host`` is not allowed."""

PORTAL_UNAVAILABLE_TEXT = "The billing portal could not be opened."
"""The plain body answered when the library refused the call (details go to the log)."""

DEVELOPMENT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1", "testserver")
"""The hosts trusted by default with a test key: this machine, and Starlette's TestClient."""

_HOST_NAME = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
_HOST_HEADER = re.compile(r"(?P<host>\[[0-9a-fA-F:.]+\]|[^:\[\]]+)(?::(?P<port>[0-9]{1,5}))?")


class UntrustedHostError(ValidationError):
    """The request's ``Host`` header is malformed or not one of the allowed hosts.

    A return URL built from it would send the customer wherever the request
    said; nothing is sent to Stripe.
    """

    def __init__(self, reason: str) -> None:
        super().__init__("Host", reason)


def _host_name(value: str) -> str | None:
    """``value`` as a lower-case host name or IP address, or ``None`` if it is neither."""
    host = value.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    return host if _HOST_NAME.fullmatch(host) else None


@attrs.frozen
class HostPolicy:
    """Which ``Host`` headers may choose a return URL.

    Patterns, as Django and Starlette write them: ``shop.example.com``
    (exactly that host), ``*.example.com`` (any subdomain), ``.example.com``
    (the domain and any subdomain), ``*`` (any host: only behind a proxy that
    has already checked it). Ports are ignored.
    """

    patterns: tuple[str, ...]

    @classmethod
    def build(cls, allowed_hosts: Iterable[str] | None, *, live: bool) -> "HostPolicy":
        """The policy for ``allowed_hosts``; with none, :data:`DEVELOPMENT_HOSTS`, test keys only.

        Raises :class:`~lattice_stripe.ValidationError` (path ``allowed_hosts``)
        for a live key without an allow-list, or a pattern that names no host.
        """
        if allowed_hosts is None:
            if live:
                raise ValidationError(
                    "allowed_hosts",
                    "required with a live API key: list the host names your site is served "
                    "under (e.g. ['shop.example.com', '*.shop.example.com']), so that a forged "
                    "Host header cannot choose where Stripe sends your customers",
                )
            return cls(DEVELOPMENT_HOSTS)
        if isinstance(allowed_hosts, str):
            raise ValidationError("allowed_hosts", "expected a list of host names, not a string")
        patterns: list[str] = []
        for index, pattern in enumerate(allowed_hosts):
            text = pattern.strip().lower() if isinstance(pattern, str) else ""
            bare = text.removeprefix("*").removeprefix(".") if text != "*" else "example"
            if not text or _host_name(bare) is None:
                raise ValidationError(
                    f"allowed_hosts[{index}]",
                    "expected a host name, '*.domain', '.domain' or '*'",
                )
            patterns.append(text)
        if not patterns:
            raise ValidationError("allowed_hosts", "must name at least one host")
        return cls(tuple(patterns))

    def allows(self, host: str) -> bool:
        """Whether the host name ``host`` (lower case, no port) matches a pattern."""
        for pattern in self.patterns:
            if pattern == "*" or pattern == host:
                return True
            if pattern.startswith("*.") and host.endswith(pattern[1:]):
                return True
            if pattern.startswith(".") and (host == pattern[1:] or host.endswith(pattern)):
                return True
            if ":" in host and _host_name(pattern) == host:  # an IPv6 pattern in any spelling
                return True
        return False

    def check(self, header: str | None) -> str:
        """The host name of a ``Host`` header, or :class:`UntrustedHostError`."""
        match = _HOST_HEADER.fullmatch(header or "")
        host = _host_name(match.group("host")) if match else None
        if host is None:
            raise UntrustedHostError("malformed or missing Host header")
        if not self.allows(host):
            raise UntrustedHostError(
                "not one of the allowed hosts (allowed_hosts, or the "
                "lattice_stripe.allowed_hosts setting)"
            )
        return host


def log_refused_portal(error: ValidationError) -> None:
    """Log why a portal redirect was refused before anything was sent (no value is echoed)."""
    if isinstance(error, UntrustedHostError):
        logger.warning("billing portal redirect refused: %s", error)
    else:
        logger.error("billing portal session not created: the library refused the call (%s)", error)


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


CUSTOMER_USER_METADATA_KEY = "lattice_stripe_user"
"""The customer metadata key that names the app's user a customer was created for."""

BILLING_STATE_UNAVAILABLE_TEXT = "Your billing details could not be checked. Please reload."
"""The plain body of the 503 a return endpoint answers when Stripe cannot be read."""


def customer_idempotency_key(user_id: str) -> str:
    """The idempotency key of creating the Stripe customer of the app's user ``user_id``.

    Derived from the user ID alone (hashed, so the key neither reveals it nor
    exceeds Stripe's 255 characters): two concurrent first visits of one user
    send the same key, and Stripe creates one customer. Stripe remembers keys
    for 24 hours: store the customer ID on the user as soon as you have it.
    """
    if not isinstance(user_id, str) or not user_id:
        raise ValidationError("user_id", "expected the app's user ID as a non-empty string")
    return "lattice-stripe-customer-" + hashlib.sha256(user_id.encode()).hexdigest()


def customer_create_params(user_id: str, params: Mapping[str, object]) -> dict[str, object]:
    """``params`` for ``customers.create``, with the user ID in the customer's metadata."""
    given = params.get("metadata")
    metadata = dict(given) if isinstance(given, Mapping) else {}
    return {**params, "metadata": {**metadata, CUSTOMER_USER_METADATA_KEY: user_id}}


def log_billing_state_failure(error: LatticeStripeError) -> None:
    """Log why a return endpoint could not re-read the billing state (keys never included)."""
    logger.warning("billing state not read (%s): %s", type(error).__name__, error)
