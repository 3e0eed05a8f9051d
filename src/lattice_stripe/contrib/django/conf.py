"""The ``LATTICE_STRIPE`` setting, parsed once: every problem found, or the values.

::

    LATTICE_STRIPE = {
        "API_KEY": os.environ["STRIPE_SECRET_KEY"],          # required
        "WEBHOOK_SECRETS": os.environ["STRIPE_WEBHOOK_SECRETS"].split(),
        "CUSTOMER_FOR": "shop.billing.customer_for",         # request -> "cus_..." or None
        "RETURN_URL": "account",                             # URL name, path or absolute URL
        "HANDLERS": {"customer.subscription.updated": "shop.billing.subscription_changed"},
    }

Optional keys: ``TIMEOUT``, ``MAX_RETRIES``, ``BASE_URL``, ``ALLOW_HTTP_LOCALHOST``,
``MAX_BODY_BYTES``, ``TOLERANCE``, ``LEASE_SECONDS``, ``DATABASE`` (the alias of the
event store's database) and ``TRANSPORT`` (an object or the dotted path of a factory; tests put
a :class:`~lattice_stripe.adapters.recording.RecordingTransport` there). The system checks
(``manage.py check``) report every problem :func:`read_settings` finds, with its check ID.
"""

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from lattice_stripe.client import Client
from lattice_stripe.core.config import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    check_api_key,
)
from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.ports import SyncTransport
from lattice_stripe.core.webhooks import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TOLERANCE,
)

__all__ = [
    "SETTING",
    "Problem",
    "StripeSettings",
    "get_client",
    "read_settings",
    "stripe_settings",
]

SETTING = "LATTICE_STRIPE"

_KNOWN_KEYS = frozenset(
    {
        "API_KEY",
        "WEBHOOK_SECRETS",
        "CUSTOMER_FOR",
        "RETURN_URL",
        "HANDLERS",
        "TIMEOUT",
        "MAX_RETRIES",
        "BASE_URL",
        "ALLOW_HTTP_LOCALHOST",
        "MAX_BODY_BYTES",
        "TOLERANCE",
        "LEASE_SECONDS",
        "DATABASE",
        "TRANSPORT",
    }
)


@attrs.frozen(kw_only=True)
class Problem:
    """One thing wrong with the setting: a check ``id`` (``lattice_stripe.E002``), what, and how
    to fix it. ``error`` is False for a warning. Never shows a secret."""

    id: str
    message: str
    hint: str
    error: bool = True


@attrs.frozen(kw_only=True)
class StripeSettings:
    """``settings.LATTICE_STRIPE``, parsed. ``repr`` hides the secrets."""

    api_key: str = attrs.field(repr=False)
    webhook_secrets: tuple[str, ...] = attrs.field(repr=False, default=())
    customer_for: Callable[..., Any] | None = None
    return_url: str = "/"
    handlers: Mapping[str, tuple[Callable[..., Any], ...]] = attrs.field(factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    base_url: str = DEFAULT_BASE_URL
    allow_http_localhost: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    tolerance: int = DEFAULT_TOLERANCE
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    database: str = "default"
    transport: SyncTransport | None = attrs.field(default=None, repr=False)


def _callable(value: object) -> Callable[..., Any]:
    """``value`` if callable, else the callable at the dotted path ``value``."""
    found = import_string(value) if isinstance(value, str) else value
    if not callable(found):
        raise TypeError("not callable")
    return found  # type: ignore[no-any-return]


class _Reader:
    """Collects every problem of the setting instead of stopping at the first."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[Problem] = []

    def fail(self, number: int, key: str, message: str, hint: str, *, error: bool = True) -> None:
        kind = "E" if error else "W"
        self.problems.append(
            Problem(
                id=f"lattice_stripe.{kind}{number:03d}",
                message=f"{SETTING}[{key!r}] {message}",
                hint=hint,
                error=error,
            )
        )

    def number(self, key: str, default: float, kind: type[int] | type[float]) -> Any:
        value = self.raw.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (kind is int and not isinstance(value, int))
            or not math.isfinite(value)
            or value < 0
        ):
            self.fail(9, key, f"must be a non-negative {kind.__name__}", f"e.g. {default!r}")
            return default
        return kind(value)


def read_settings(
    raw: object, *, debug: bool = False
) -> tuple[StripeSettings | None, list[Problem]]:
    """Parse the ``LATTICE_STRIPE`` dict; the settings (``None`` if unusable) and every problem.

    ``debug`` is Django's ``DEBUG``: an ``http://`` return URL is a problem without it.
    """
    if not isinstance(raw, Mapping):
        reader = _Reader({})
        reader.fail(
            1,
            "API_KEY",
            "is not set: the setting is missing or not a dict",
            f'add {SETTING} = {{"API_KEY": os.environ["STRIPE_SECRET_KEY"], ...}} to settings',
        )
        return None, reader.problems
    reader = _Reader(raw)
    for key in sorted(set(raw) - _KNOWN_KEYS, key=str):
        reader.fail(
            10, str(key), "is not a known key", f"known keys: {', '.join(sorted(_KNOWN_KEYS))}"
        )

    api_key: str | None = None
    try:
        api_key = check_api_key(raw.get("API_KEY"), "API_KEY")
    except ValidationError as error:
        publishable = isinstance(raw.get("API_KEY"), str) and raw["API_KEY"].startswith("pk_")
        reader.fail(
            3 if publishable else 2,
            "API_KEY",
            error.reason.split(";")[0],
            "use the secret key (sk_test_..., sk_live_...) or a restricted key (rk_...) from "
            "the Stripe dashboard, read from the environment",
        )

    secrets_value = raw.get("WEBHOOK_SECRETS", ())
    if isinstance(secrets_value, str):
        secrets_value = secrets_value.split()
    secrets: tuple[str, ...] = ()
    if not isinstance(secrets_value, list | tuple) or not all(
        isinstance(secret, str) and secret.startswith("whsec_") and secret == secret.strip()
        for secret in secrets_value
    ):
        reader.fail(
            4,
            "WEBHOOK_SECRETS",
            "must be a list of endpoint signing secrets, each whsec_... without whitespace",
            "copy the signing secret of the webhook endpoint from the Stripe dashboard",
        )
    elif not secrets_value:
        reader.fail(
            1,
            "WEBHOOK_SECRETS",
            "is empty: the webhook view refuses every delivery",
            "set it to the endpoint's signing secret(s), whsec_..., if you receive webhooks",
            error=False,
        )
    else:
        secrets = tuple(secrets_value)

    customer_for = None
    if "CUSTOMER_FOR" not in raw:
        reader.fail(
            2,
            "CUSTOMER_FOR",
            "is not set: the portal view cannot tell whose portal to open",
            "set it to the dotted path of a function request -> Stripe customer ID or None",
            error=False,
        )
    else:
        try:
            customer_for = _callable(raw["CUSTOMER_FOR"])
        except (ImportError, TypeError, ValueError):
            reader.fail(
                5,
                "CUSTOMER_FOR",
                "is not a callable or the dotted path of one",
                "e.g. 'shop.billing.customer_for', a function request -> 'cus_...' or None",
            )

    return_url = raw.get("RETURN_URL", "/")
    if not isinstance(return_url, str) or not return_url.strip():
        reader.fail(
            6, "RETURN_URL", "must be a URL name, a path or an absolute URL", "e.g. 'account'"
        )
        return_url = "/"
    elif return_url.lower().startswith("http://") and not debug:
        reader.fail(
            6,
            "RETURN_URL",
            "is an http:// URL outside DEBUG: Stripe sends customers back over plain HTTP",
            "use https://, or a URL name or path (made absolute for the request)",
        )

    handlers: dict[str, tuple[Callable[..., Any], ...]] = {}
    handlers_value = raw.get("HANDLERS", {})
    if not isinstance(handlers_value, Mapping):
        reader.fail(7, "HANDLERS", "must be a dict of event type to handler(s)", "see the docs")
    else:
        for event_type, value in handlers_value.items():
            paths = value if isinstance(value, list | tuple) else [value]
            try:
                handlers[str(event_type)] = tuple(_callable(path) for path in paths)
            except (ImportError, TypeError, ValueError):
                reader.fail(
                    7,
                    f"HANDLERS'][{event_type!r}",
                    "is not a callable, the dotted path of one, or a list of those",
                    "e.g. 'shop.billing.subscription_changed', a function event -> None",
                )

    allow_http = raw.get("ALLOW_HTTP_LOCALHOST", False)
    if not isinstance(allow_http, bool):
        reader.fail(9, "ALLOW_HTTP_LOCALHOST", "must be True or False", "e.g. DEBUG")
        allow_http = False
    base_url = raw.get("BASE_URL", DEFAULT_BASE_URL)
    if not isinstance(base_url, str):
        reader.fail(9, "BASE_URL", "must be a URL string", f"e.g. {DEFAULT_BASE_URL!r}")
        base_url = DEFAULT_BASE_URL
    database = raw.get("DATABASE", "default")
    if not isinstance(database, str):
        reader.fail(9, "DATABASE", "must be a database alias", "e.g. 'default'")
        database = "default"
    transport = raw.get("TRANSPORT")
    if isinstance(transport, str):
        try:
            transport = _callable(transport)()
        except (ImportError, TypeError, ValueError):
            reader.fail(8, "TRANSPORT", "is not the dotted path of a transport factory", "")
            transport = None

    values = {
        "timeout": reader.number("TIMEOUT", DEFAULT_TIMEOUT, float),
        "max_retries": reader.number("MAX_RETRIES", DEFAULT_MAX_RETRIES, int),
        "max_body_bytes": reader.number("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, int),
        "tolerance": reader.number("TOLERANCE", DEFAULT_TOLERANCE, int),
        "lease_seconds": reader.number("LEASE_SECONDS", DEFAULT_LEASE_SECONDS, float),
    }
    if values["lease_seconds"] <= 0:
        reader.fail(9, "LEASE_SECONDS", "must be a positive number of seconds", "e.g. 300")
    if api_key is None or any(problem.error for problem in reader.problems):
        return None, reader.problems
    return (
        StripeSettings(
            api_key=api_key,
            webhook_secrets=secrets,
            customer_for=customer_for,
            return_url=return_url,
            handlers=handlers,
            base_url=base_url,
            allow_http_localhost=allow_http,
            database=database,
            transport=transport,
            **values,
        ),
        reader.problems,
    )


@functools.cache
def stripe_settings() -> StripeSettings:
    """The parsed setting (cached until a test changes it); ImproperlyConfigured if unusable."""
    parsed, problems = read_settings(
        getattr(django_settings, SETTING, None), debug=bool(django_settings.DEBUG)
    )
    if parsed is None:
        raise ImproperlyConfigured(
            "; ".join(f"{p.id}: {p.message}" for p in problems if p.error)
            + " (run manage.py check for hints)"
        )
    return parsed


@functools.cache
def get_client() -> Client:
    """The process's :class:`~lattice_stripe.Client`, built from the setting on first use."""
    parsed = stripe_settings()
    return Client(
        parsed.api_key,
        transport=parsed.transport,
        timeout=parsed.timeout,
        max_retries=parsed.max_retries,
        base_url=parsed.base_url,
        allow_http_localhost=parsed.allow_http_localhost,
    )


def _reset(*, setting: str, **kwargs: object) -> None:
    if setting in (SETTING, "DEBUG"):
        stripe_settings.cache_clear()
        if get_client.cache_info().currsize:
            get_client().close()
        get_client.cache_clear()


setting_changed.connect(_reset, dispatch_uid="lattice_stripe.contrib.django.conf")
