"""The library's configuration, named once: defaults, the client's settings and per-call options.

Every client, shim and settings parser reads its defaults here. Times are in
seconds. ``timeout`` bounds each wait for the server (connect aside),
``deadline`` the whole call: every attempt, the pool wait, connect, send,
headers and body, and the sleeps between retries.
"""

import json
import math
import re
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs

from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.redaction import Unpicklable
from lattice_stripe.core.version import VERSION

if TYPE_CHECKING:
    # http and retry read the defaults below: imported where the config is built.
    from lattice_stripe.core.http import Headers
    from lattice_stripe.core.retry import RetryPolicy

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_TIMEOUT",
    "NO_OPTIONS",
    "CallOptions",
    "ClientConfig",
    "call_options",
    "check_api_key",
    "check_retries",
    "check_timeout",
    "is_live_key",
]

API_VERSION = "2026-10-28.endive"
"""The Stripe API version the library's values are written for, sent as ``Stripe-Version``."""

DEFAULT_BASE_URL = "https://api.stripe.com"

DEFAULT_TIMEOUT = 80.0
"""Idle timeout: the longest wait for the next bytes of a response (Stripe's SDKs use 80 s)."""

DEFAULT_CONNECT_TIMEOUT = 30.0
"""The longest wait for a TCP (and TLS) connection to be set up."""

DEFAULT_DEADLINE = 90.0
"""The longest a whole call may take, retries and their sleeps included.

A server that trickles its answer a byte at a time never trips an idle
timeout; the deadline ends the call anyway.
"""

DEFAULT_MAX_RETRIES = 2

DEFAULT_MAX_PAGES = 100
"""The most pages ``auto_paging_iter`` fetches before it stops (10,000 objects at limit 100)."""

DEFAULT_MAX_RESPONSE_BYTES = 1 << 20
"""A response body larger than this is refused (a portal session is about 1 KB)."""

DEFAULT_POOL_SIZE = 64
"""Idle keep-alive connections kept per host: enough for a threaded server's workers to share
one client without discarding connections."""

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_API_KEY = re.compile(r"(sk|rk)_(test|live)_[0-9A-Za-z]+")
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
    base_headers: "Headers" = attrs.field(init=False, repr=False, eq=False)
    query_headers: "Headers" = attrs.field(init=False, repr=False, eq=False)
    retry_policy: "RetryPolicy" = attrs.field(init=False, repr=False, eq=False)

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
        check_timeout(self.timeout, "timeout")
        check_timeout(self.connect_timeout, "connect_timeout")
        check_timeout(self.deadline, "deadline")
        check_retries(self.max_retries)
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
        from lattice_stripe.core.http import Headers
        from lattice_stripe.core.retry import RetryPolicy

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


def check_timeout(value: object, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValidationError(path, "expected a positive, finite number of seconds")


def check_retries(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("max_retries", "expected an integer, 0 or more")
