"""Webhook event stores shared by every process of a deployment, with leases and retention.

- :mod:`~lattice_stripe.adapters.stores.sqlite`: ``SqliteEventStore``, the
  standard library only, for the processes of one host on one file;
- :mod:`~lattice_stripe.adapters.stores.postgres`: ``PostgresEventStore`` and
  ``AsyncPostgresEventStore`` (extra ``[postgres]``), for several hosts;
- :mod:`~lattice_stripe.adapters.stores.redis`: ``RedisEventStore`` and
  ``AsyncRedisEventStore`` (extra ``[redis]``), for several hosts.

Each implements :class:`~lattice_stripe.core.webhooks.EventStore` (or its
async twin) and is imported from its own module, so that importing this
package loads no database driver.
"""

import contextlib
import re
from collections.abc import Iterator

from lattice_stripe.core.errors import EventStoreError, ValidationError

__all__: list[str] = []

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")


def checked_identifier(name: str, field: str = "table") -> str:
    """``name`` if it is a plain SQL identifier (statements embed it); else ValidationError."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValidationError(
            field, "expected a plain SQL name: letters, digits and _, at most 63, not first a digit"
        )
    return name


@contextlib.contextmanager
def reraised(
    store: str, step: str, errors: type[BaseException] | tuple[type[BaseException], ...]
) -> Iterator[None]:
    """Turn a driver's ``errors`` during ``step`` into :class:`EventStoreError`, chained."""
    try:
        yield
    except errors as error:
        raise EventStoreError(f"{store}: {step} failed ({type(error).__name__})") from error
