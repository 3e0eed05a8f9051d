"""The error tree, and the mapping of Stripe's error responses onto it.

Every failure the library reports is a :class:`LatticeStripeError`::

    LatticeStripeError
    ├── ValidationError (also ValueError)   bad input, caught before any network
    ├── StripeError                          Stripe answered with an error
    │   ├── InvalidRequestError              400, 404: wrong parameters or IDs
    │   ├── AuthenticationError              401: missing or wrong API key
    │   ├── CardError                        402 / card_error
    │   ├── PermissionDeniedError            403: key lacks permission
    │   ├── RateLimitError                   429, 409 lock_timeout: retried, then raised
    │   ├── IdempotencyError                 idempotency_error: key reused with other params
    │   └── APIError                         5xx and anything unexpected
    │       └── ResponseDecodeError          a body that is not a well-formed Stripe object
    ├── APIConnectionError                   network failure or timeout (after retries)
    ├── SignatureVerificationError           a webhook whose signature does not verify
    └── MissingDependencyError (also ImportError)  an optional library is not installed

Errors say who is at fault: a :class:`ValidationError` is the caller's, a
:class:`StripeError` is what Stripe said, an :class:`APIConnectionError` is the
network's. No message ever contains an API key or a portal session URL.
"""

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from lattice_stripe.core.redaction import scrub

__all__ = [
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "CardError",
    "EventDecodeError",
    "EventStoreError",
    "IdempotencyError",
    "InvalidRequestError",
    "LatticeStripeError",
    "MissingDependencyError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "SignatureVerificationError",
    "StripeError",
    "ValidationError",
    "detach_tracebacks",
    "error_from_response",
]

E = TypeVar("E", bound=BaseException)


class LatticeStripeError(Exception):
    """The root of every error this library raises."""


class MissingDependencyError(LatticeStripeError, ImportError):
    """An optional library a module needs is not installed; the message names the extra.

    ``name`` is the missing library (as on :class:`ImportError`), ``extra`` the
    ``lattice-stripe[...]`` extra that installs it, ``needed_by`` the module
    that needs it. Raised ``from`` the original :class:`ImportError`.
    """

    def __init__(self, library: str, extra: str, needed_by: str) -> None:
        self.extra = extra
        self.needed_by = needed_by
        super().__init__(
            f"{needed_by} needs {library}, which is not installed: "
            f"pip install 'lattice-stripe[{extra}]'",
            name=library,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # ImportError pickles its message only; rebuild from the three parts instead.
        return (self.__class__, (self.name, self.extra, self.needed_by))


class EventDecodeError(LatticeStripeError, ValueError):
    """A webhook event's typed view cannot be read: the event carries another kind of object
    (``event.subscription`` of an ``invoice.paid``), or a known field has the wrong type (the
    message names its path). The event itself, ``event.data_object``, stays readable."""


class ValidationError(LatticeStripeError, ValueError):
    """Input that Stripe would reject, caught before anything was sent.

    ``path`` names the field (``flow_data.subscription_update_confirm.items``);
    ``reason`` says what is wrong and how to fix it. The offending value is never
    echoed: it may be personal data or a secret.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.reason))


def _scrubbed(text: str | None) -> str | None:
    return None if text is None else scrub(text)


class StripeError(LatticeStripeError):
    """Stripe answered a request with an error object.

    Attributes mirror Stripe's error JSON: ``status`` (HTTP status), ``type``,
    ``code``, ``param``, ``message``, ``decline_code``, ``doc_url``, plus the
    ``request_id`` from the ``Request-Id`` header (quote it to Stripe support)
    and the ``idempotency_key`` the request carried.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        doc_url: str | None = None,
        decline_code: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        # Every field the server chose may echo what it was sent: a key, a URL.
        self.message = scrub(message)
        self.status = status
        self.type = _scrubbed(type)
        self.code = _scrubbed(code)
        self.param = _scrubbed(param)
        self.request_id = _scrubbed(request_id)
        self.doc_url = _scrubbed(doc_url)
        self.decline_code = _scrubbed(decline_code)
        self.idempotency_key = idempotency_key
        super().__init__(self.message)

    def __str__(self) -> str:
        details = [
            f"{name}={value}"
            for name, value in (
                ("status", self.status),
                ("type", self.type),
                ("code", self.code),
                ("param", self.param),
                ("request_id", self.request_id),
            )
            if value is not None
        ]
        return f"{self.message} ({', '.join(details)})" if details else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status={self.status!r}, code={self.code!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_stripe_error, (type(self), self.message, self.__dict__.copy()))


def _rebuild_stripe_error(
    cls: type["StripeError"], message: str, state: dict[str, Any]
) -> "StripeError":
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class InvalidRequestError(StripeError):
    """The request had invalid parameters or named an object that does not exist."""


class AuthenticationError(StripeError):
    """The API key is missing, malformed, revoked or wrong for this mode."""


class CardError(StripeError):
    """A card could not be charged; the message is safe to show to the customer."""


class PermissionDeniedError(StripeError):
    """The (restricted) API key is not allowed to do this."""


class RateLimitError(StripeError):
    """Too many requests, or an object was locked by another request; retried first."""


class IdempotencyError(StripeError):
    """An idempotency key was reused with different parameters, or is in use."""


class APIError(StripeError):
    """Stripe had a problem (5xx) or answered something the library cannot use."""


class ResponseDecodeError(APIError):
    """The response body is not JSON, or not the Stripe object it should be.

    ``body_prefix`` holds the first bytes of the body (scrubbed of secrets), for
    diagnosis: a proxy's HTML error page, a truncated body, a changed schema.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        body: bytes = b"",
        idempotency_key: str | None = None,
    ) -> None:
        self.body_prefix = scrub(body[:_BODY_PREFIX_BYTES].decode("utf-8", "replace"))
        super().__init__(
            message,
            status=status,
            request_id=request_id,
            idempotency_key=idempotency_key,
        )

    def __str__(self) -> str:
        return f"{super().__str__()}; body starts {self.body_prefix!r}"


class ResponseTooLargeError(ResponseDecodeError):
    """The response body was larger than the client's ``max_response_bytes``."""


class APIConnectionError(LatticeStripeError):
    """The request did not get an answer: connection refused or reset, DNS, TLS, timeout.

    ``should_retry`` tells the retry policy whether trying again is safe and useful.
    The transport library's own exception is chained as ``__cause__``.
    """

    def __init__(self, message: str, *, should_retry: bool = True) -> None:
        self.should_retry = should_retry
        super().__init__(scrub(message))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_connection_error, (str(self), self.should_retry))


def _rebuild_connection_error(message: str, should_retry: bool) -> APIConnectionError:
    return APIConnectionError(message, should_retry=should_retry)


class EventStoreError(LatticeStripeError):
    """A webhook event store's database or server failed (unreachable, locked, refused).

    The message names the store and the step; the driver's own exception is
    chained as ``__cause__``. A webhook endpoint answers such a failure with a
    non-2xx, so that Stripe delivers the event again.
    """


class SignatureVerificationError(LatticeStripeError):
    """A webhook's ``Stripe-Signature`` header is missing, malformed, stale or wrong.

    ``reason`` is one of ``missing_header``, ``malformed_header``,
    ``timestamp_out_of_tolerance``, ``no_matching_signature``, or
    ``malformed_event`` for a correctly signed body that is not a Stripe event.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason, str(self)))


def detach_tracebacks(error: E, scrub_each: Callable[[BaseException], None] | None = None) -> E:
    """``error`` with its traceback, and those of every exception it chains, dropped.

    Transport libraries' frames hold the request headers, API key included, as
    locals; a traceback rendered with its locals (error trackers do so) would
    print them. The exceptions themselves stay chained, for their type and
    message. ``scrub_each`` may mask anything else an exception carries.
    """
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) not in seen:
            seen.add(id(current))
            current.__traceback__ = None
            if scrub_each is not None:
                scrub_each(current)
            pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return error


_BODY_PREFIX_BYTES = 200

_BY_STATUS: Mapping[int, type[StripeError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: CardError,
    403: PermissionDeniedError,
    404: InvalidRequestError,
    429: RateLimitError,
}


def _error_class(status: int, error_type: str | None, code: str | None) -> type[StripeError]:
    if error_type == "idempotency_error":
        return IdempotencyError
    if error_type == "card_error":
        return CardError
    if status == 409:
        return RateLimitError if code == "lock_timeout" else InvalidRequestError
    if status >= 500:
        return APIError
    return _BY_STATUS.get(status, APIError)


def _optional_str(error: Mapping[str, object], key: str) -> str | None:
    value = error.get(key)
    return value if isinstance(value, str) else None


def error_from_response(
    status: int,
    body: bytes,
    *,
    request_id: str | None,
    idempotency_key: str | None = None,
) -> StripeError:
    """Build the error for a non-2xx response from its status and Stripe error JSON.

    A body that is not Stripe's ``{"error": {...}}`` shape (a proxy's HTML page,
    invalid or truncated JSON) gives a :class:`ResponseDecodeError` that keeps the
    status and the first bytes of the body.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        document = None
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return ResponseDecodeError(
            f"HTTP {status} response is not a Stripe error object",
            status=status,
            request_id=request_id,
            body=body,
            idempotency_key=idempotency_key,
        )
    error_type = _optional_str(error, "type")
    code = _optional_str(error, "code")
    message = _optional_str(error, "message") or f"Stripe returned HTTP {status}"
    return _error_class(status, error_type, code)(
        message,
        status=status,
        type=error_type,
        code=code,
        param=_optional_str(error, "param"),
        request_id=request_id,
        doc_url=_optional_str(error, "doc_url"),
        decline_code=_optional_str(error, "decline_code"),
        idempotency_key=idempotency_key,
    )
