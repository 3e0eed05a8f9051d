"""One generator drives any API call; the sync and async clients only carry its messages.

:func:`run` takes an :class:`~lattice_stripe.core.operations.Operation` (the
data of one endpoint), checks the parameters, builds the request, and then
yields what to do next: an :class:`~lattice_stripe.core.http.HttpRequest` to
send (the driver sends back the :class:`~lattice_stripe.core.http.HttpResponse`,
or throws in the :class:`~lattice_stripe.core.errors.APIConnectionError`) or a
:class:`Sleep` before a retry. It returns the operation's decoded value
(a :class:`~lattice_stripe.core.session.Session`, a configuration, a page of
a list) or raises an error from the library's tree. No clock, socket or
randomness is touched here: the caller injects them, so every retry path is
testable step by step.
"""

import json
import math
import re
import sys
from collections.abc import Generator, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

import attrs

from lattice_stripe.core.config import (
    API_VERSION,
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
)
from lattice_stripe.core.errors import APIConnectionError, ValidationError, error_from_response
from lattice_stripe.core.http import Headers, HttpRequest, HttpResponse
from lattice_stripe.core.operations import SESSION_CREATE, Operation
from lattice_stripe.core.params import SessionCreateParams
from lattice_stripe.core.ports import IdGenerator, Monotonic, RandomSource
from lattice_stripe.core.redaction import Unpicklable
from lattice_stripe.core.retry import RetryPolicy
from lattice_stripe.core.session import Session
from lattice_stripe.core.version import VERSION

P = TypeVar("P")
R = TypeVar("R")

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "NO_OPTIONS",
    "CallOptions",
    "ClientConfig",
    "Sleep",
    "Step",
    "call_options",
    "check_api_key",
    "create_session",
    "is_live_key",
    "run",
]

MAX_IDEMPOTENCY_KEY = 255

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_API_KEY = re.compile(r"(sk|rk)_(test|live)_[0-9A-Za-z]+")
_ACCOUNT = re.compile(r"acct_[0-9A-Za-z]+")
_PYTHON_VERSION = "{}.{}.{}".format(*sys.version_info[:3])
_USER_AGENT = f"lattice-stripe/{VERSION} (Python {_PYTHON_VERSION})"
_CLIENT_USER_AGENT = json.dumps(
    {
        "bindings_version": VERSION,
        "lang": "python",
        "lang_version": _PYTHON_VERSION,
        "publisher": "lattice-stripe",
        "platform": sys.platform,
    },
    separators=(",", ":"),
)


def check_api_key(api_key: object, path: str = "api_key") -> str:
    """Return ``api_key`` if it is a Stripe secret or restricted key, else raise ValidationError.

    The key itself never appears in the message.
    """
    if not isinstance(api_key, str) or not api_key:
        raise ValidationError(path, "required: your Stripe secret key (sk_test_... or sk_live_...)")
    if api_key.startswith("pk_"):
        raise ValidationError(
            path,
            "a publishable key (pk_...) cannot create portal sessions; use a secret key "
            "(sk_...) or a restricted key (rk_...) on the server",
        )
    if _API_KEY.fullmatch(api_key) is None:
        raise ValidationError(
            path,
            "expected a Stripe secret key (sk_test_..., sk_live_...) or restricted key (rk_...)",
        )
    return api_key


def is_live_key(api_key: str) -> bool:
    """True for a live-mode key (``sk_live_``/``rk_live_``)."""
    return api_key[3:8] == "live_"


@attrs.frozen(kw_only=True, getstate_setstate=False)
class ClientConfig(Unpicklable):
    """A client's settings. ``repr`` never shows the API key."""

    api_key: str = attrs.field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    stripe_version: str = API_VERSION
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    deadline: float = DEFAULT_DEADLINE
    max_retries: int = DEFAULT_MAX_RETRIES
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    allow_http_localhost: bool = False
    # Derived once here, not on every call.
    api_base: str = attrs.field(init=False, repr=False, eq=False)
    base_headers: Headers = attrs.field(init=False, repr=False, eq=False)
    query_headers: Headers = attrs.field(init=False, repr=False, eq=False)
    retry_policy: RetryPolicy = attrs.field(init=False, repr=False, eq=False)

    _refusal = "a client configuration carries the API key"

    def __attrs_post_init__(self) -> None:
        check_api_key(self.api_key)
        if self.allow_http_localhost and is_live_key(self.api_key):
            raise ValidationError(
                "allow_http_localhost",
                "refused with a live API key: http://localhost return URLs are for "
                "local development with test keys only",
            )
        _check_base_url(self.base_url, is_live_key(self.api_key))
        _check_timeout(self.timeout, "timeout")
        _check_timeout(self.connect_timeout, "connect_timeout")
        _check_timeout(self.deadline, "deadline")
        _check_retries(self.max_retries)
        if (
            isinstance(self.max_response_bytes, bool)
            or not isinstance(self.max_response_bytes, int)
            or self.max_response_bytes < 1
        ):
            raise ValidationError("max_response_bytes", "expected a positive integer")
        identity = {
            "Authorization": f"Bearer {self.api_key}",
            "Stripe-Version": self.stripe_version,
            "User-Agent": _USER_AGENT,
            "X-Stripe-Client-User-Agent": _CLIENT_USER_AGENT,
        }
        derived = {
            "api_base": self.base_url.rstrip("/"),
            "base_headers": Headers(
                {
                    **identity,
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                }
            ),
            "query_headers": Headers({**identity, "Accept": "application/json"}),
            "retry_policy": RetryPolicy(max_retries=self.max_retries),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)


@attrs.frozen(kw_only=True, getstate_setstate=False)
class CallOptions(Unpicklable):
    """Per-call overrides. ``None`` means "use the client's setting"."""

    api_key: str | None = attrs.field(default=None, repr=False)
    idempotency_key: str | None = None
    stripe_account: str | None = None
    stripe_version: str | None = None
    timeout: float | None = None
    deadline: float | None = None
    max_retries: int | None = None

    _refusal = "call options may carry an API key"


NO_OPTIONS = CallOptions()


def call_options(
    *,
    api_key: str | None = None,
    idempotency_key: str | None = None,
    stripe_account: str | None = None,
    stripe_version: str | None = None,
    timeout: float | None = None,
    deadline: float | None = None,
    max_retries: int | None = None,
) -> CallOptions:
    """The per-call options; the shared :data:`NO_OPTIONS` when none is set."""
    if (
        api_key is None
        and idempotency_key is None
        and stripe_account is None
        and stripe_version is None
        and timeout is None
        and deadline is None
        and max_retries is None
    ):
        return NO_OPTIONS
    return CallOptions(
        api_key=api_key,
        idempotency_key=idempotency_key,
        stripe_account=stripe_account,
        stripe_version=stripe_version,
        timeout=timeout,
        deadline=deadline,
        max_retries=max_retries,
    )


def _check_base_url(base_url: object, live: bool) -> None:
    """https anywhere; plain http only to this machine (the emulator) and never with a live key."""
    if not isinstance(base_url, str):
        raise ValidationError("base_url", "expected an absolute https URL")
    parts = urlsplit(base_url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        if live:
            raise ValidationError(
                "base_url", "a live API key is only ever sent over https, never plain http"
            )
        return
    raise ValidationError(
        "base_url",
        "expected an absolute https URL (plain http only to localhost, for the local emulator)",
    )


def _check_timeout(value: object, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValidationError(path, "expected a positive, finite number of seconds")


def _check_retries(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("max_retries", "expected an integer, 0 or more")


@attrs.frozen
class Sleep:
    """Wait ``seconds`` before the next step (a retry backoff)."""

    seconds: float


Step = HttpRequest | Sleep


def _headers(base: Headers, options: CallOptions, idempotency_key: str | None) -> Headers:
    headers = Headers(base)
    if options.api_key is not None:
        headers["Authorization"] = f"Bearer {check_api_key(options.api_key)}"
    if options.stripe_version is not None:
        headers["Stripe-Version"] = options.stripe_version
    if options.stripe_account is not None:
        headers["Stripe-Account"] = options.stripe_account
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def _check_options(options: CallOptions) -> None:
    key = options.idempotency_key
    if key is not None and (
        not isinstance(key, str)
        or not key
        or len(key) > MAX_IDEMPOTENCY_KEY
        or not key.isprintable()
    ):
        raise ValidationError(
            "idempotency_key",
            f"expected a printable string of 1 to {MAX_IDEMPOTENCY_KEY} characters",
        )
    account = options.stripe_account
    if account is not None and (
        not isinstance(account, str) or _ACCOUNT.fullmatch(account) is None
    ):
        raise ValidationError(
            "stripe_account", "expected a connected account ID starting with 'acct_'"
        )
    version = options.stripe_version
    if version is not None and (
        not isinstance(version, str) or not version.isprintable() or not version
    ):
        raise ValidationError(
            "stripe_version", "expected an API version such as '2026-10-28.endive'"
        )
    if options.timeout is not None:
        _check_timeout(options.timeout, "timeout")
    if options.deadline is not None:
        _check_timeout(options.deadline, "deadline")
    if options.max_retries is not None:
        _check_retries(options.max_retries)


def run(
    operation: Operation[P, R],
    config: ClientConfig,
    params: object,
    options: CallOptions,
    *,
    path_args: tuple[object, ...] = (),
    new_idempotency_key: IdGenerator,
    random: RandomSource,
    monotonic: Monotonic,
) -> Generator[Step, HttpResponse | None, R]:
    """Drive one call of ``operation``: check, send, retry, decode.

    Raises ValidationError before the first yield, so bad input sends nothing.
    A keyed operation (every POST) sends its form body with an
    ``Idempotency-Key``, the same on every attempt; any other sends its query
    string and no key. The whole call keeps to its deadline, read on
    ``monotonic``: each attempt is handed what is left of it, and a retry
    whose backoff would not leave time for another attempt is not made (the
    last error is raised instead).
    """
    url = config.api_base + operation.path_for(path_args)
    checked = operation.guard(params, allow_http_localhost=config.allow_http_localhost)
    if options is not NO_OPTIONS:
        _check_options(options)
    idempotency_key: str | None
    if operation.keyed:
        idempotency_key = options.idempotency_key or new_idempotency_key()
        body = operation.encode(checked)
        headers = _headers(config.base_headers, options, idempotency_key)
    else:
        if options.idempotency_key is not None:
            raise ValidationError(
                "idempotency_key", f"{operation.method} requests carry no idempotency key; drop it"
            )
        idempotency_key = None
        query = operation.encode(checked)
        if query:
            url += "?" + query.decode("ascii")
        body = b""
        headers = _headers(config.query_headers, options, None)
    policy = (
        config.retry_policy
        if options.max_retries is None
        else RetryPolicy(max_retries=options.max_retries)
    )
    deadline = options.deadline or config.deadline
    request = HttpRequest(
        method=operation.method,
        url=url,
        headers=headers,
        body=body,
        timeout=options.timeout or config.timeout,
        connect_timeout=min(config.connect_timeout, options.timeout or config.connect_timeout),
        deadline=deadline,
        max_response_bytes=config.max_response_bytes,
    )
    started = monotonic()
    retries = 0
    while True:
        last: HttpResponse | APIConnectionError
        try:
            response = yield request
        except APIConnectionError as error:
            delay = policy.after_failure(retries, error, random())
            if delay is None:
                raise
            last = error
        else:
            if response is None:
                raise TypeError("the driver must send back the HttpResponse of each request")
            if 200 <= response.status < 300:
                return operation.decode(
                    response.body,
                    status=response.status,
                    request_id=response.request_id,
                    idempotency_key=idempotency_key,
                )
            delay = policy.after_response(retries, response, random())
            if delay is None:
                raise _error(response, idempotency_key)
            last = response
        if deadline - (monotonic() - started) <= delay:
            # No time for another attempt after the wait: the last answer stands.
            raise last if isinstance(last, APIConnectionError) else _error(last, idempotency_key)
        retries += 1
        yield Sleep(delay)
        request = attrs.evolve(request, deadline=deadline - (monotonic() - started))


def create_session(
    config: ClientConfig,
    params: "Mapping[str, object] | SessionCreateParams",
    options: CallOptions,
    *,
    new_idempotency_key: IdGenerator,
    random: RandomSource,
    monotonic: Monotonic,
) -> Generator[Step, HttpResponse | None, Session]:
    """Drive ``POST /v1/billing_portal/sessions``: :func:`run` with the session create operation."""
    return run(
        SESSION_CREATE,
        config,
        params,
        options,
        new_idempotency_key=new_idempotency_key,
        random=random,
        monotonic=monotonic,
    )


def _error(response: HttpResponse, idempotency_key: str | None) -> Exception:
    return error_from_response(
        response.status,
        response.body,
        request_id=response.request_id,
        idempotency_key=idempotency_key,
    )
