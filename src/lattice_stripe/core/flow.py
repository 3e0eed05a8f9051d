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

import re
from collections.abc import Generator, Mapping
from typing import TypeVar

import attrs

from lattice_stripe.core.config import (
    NO_OPTIONS,
    CallOptions,
    ClientConfig,
    check_api_key,
    check_retries,
    check_timeout,
)
from lattice_stripe.core.errors import APIConnectionError, ValidationError, error_from_response
from lattice_stripe.core.http import Headers, HttpRequest, HttpResponse
from lattice_stripe.core.operations import SESSION_CREATE, Operation
from lattice_stripe.core.params import SessionCreateParams
from lattice_stripe.core.ports import IdGenerator, Monotonic, RandomSource
from lattice_stripe.core.retry import RetryPolicy
from lattice_stripe.core.session import Session

P = TypeVar("P")
R = TypeVar("R")

__all__ = [
    "Sleep",
    "Step",
    "create_session",
    "run",
]

MAX_IDEMPOTENCY_KEY = 255

_ACCOUNT = re.compile(r"acct_[0-9A-Za-z]+")


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
        check_timeout(options.timeout, "timeout")
    if options.deadline is not None:
        check_timeout(options.deadline, "deadline")
    if options.max_retries is not None:
        check_retries(options.max_retries)


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
