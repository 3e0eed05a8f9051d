"""``RedisEventStore`` and ``AsyncRedisEventStore``: webhook events as Redis keys.

For several processes on several hosts. Needs the ``lattice-stripe[redis]``
extra (redis-py). Each event is one key, ``<prefix><event id>``:

- a claim is ``SET key claimed NX PX <lease>``: atomic, and the lease is the
  key's TTL, kept by the Redis server's clock, so hosts whose clocks
  disagree still agree on when it runs out;
- a completion is ``SET key done PX <retention>``: Redis itself forgets the
  ID after the retention, so no pruning call is needed;
- a release is a Lua script that deletes the key only while it is still a
  claim, never a completion (a check and a delete in one atomic step).

A completion is as durable as the server's persistence: run Redis with
``appendonly yes`` (and ``appendfsync everysec`` or ``always``) if a
restarted Redis must remember it.
"""

from typing import Any

import redis
import redis.asyncio

from lattice_stripe.adapters.stores import reraised
from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.webhooks import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_PRUNE_BATCH,
    DEFAULT_RETENTION_SECONDS,
    check_seconds,
)

__all__ = ["DEFAULT_PREFIX", "AsyncRedisEventStore", "RedisEventStore"]

DEFAULT_PREFIX = "lattice_stripe:event:"
_CLAIMED = b"claimed"
_DONE = b"done"
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _check(url: str | None, client: object, prefix: str, retention_seconds: float) -> None:
    if (url is None) == (client is None):
        raise ValidationError("url", "give exactly one of url (redis://...) or client")
    if not isinstance(prefix, str) or not prefix:
        raise ValidationError("prefix", "expected a non-empty key prefix, such as 'myapp:event:'")
    check_seconds("retention_seconds", retention_seconds)


class RedisEventStore:
    """An :class:`~lattice_stripe.core.webhooks.EventStore` in Redis.

    Give a ``url`` (``redis://host:6379/0``: the store keeps its own client,
    closed by :meth:`close`) or a ``redis.Redis`` ``client`` you own. Keys
    are ``prefix`` + event ID; a completed ID expires after
    ``retention_seconds``. Thread-safe. Server failures raise
    :class:`~lattice_stripe.core.errors.EventStoreError`.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: "redis.Redis | None" = None,
        prefix: str = DEFAULT_PREFIX,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        _check(url, client, prefix, retention_seconds)
        self._owns_client = client is None
        self._redis: redis.Redis = client or redis.Redis.from_url(url or "")
        self._prefix = prefix
        self._retention_ms = _milliseconds(retention_seconds)
        self._release = self._redis.register_script(_RELEASE)

    def _key(self, event_id: str) -> str:
        return self._prefix + event_id

    def claim(self, event_id: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Take ``event_id`` for ``lease_seconds``: ``False`` if completed or claimed and live."""
        with reraised(repr(self), "claim", redis.RedisError):
            key = self._key(event_id)
            return bool(self._redis.set(key, _CLAIMED, nx=True, px=_milliseconds(lease_seconds)))

    def complete(self, event_id: str) -> None:
        """Record ``event_id`` as handled, remembered for ``retention_seconds``."""
        with reraised(repr(self), "complete", redis.RedisError):
            self._redis.set(self._key(event_id), _DONE, px=self._retention_ms)

    def is_complete(self, event_id: str) -> bool:
        """``True`` once ``event_id`` has been completed (until its key expires)."""
        with reraised(repr(self), "is_complete", redis.RedisError):
            value: Any = self._redis.get(self._key(event_id))
            return bool(value == _DONE)

    def release(self, event_id: str) -> None:
        """Free a claim on ``event_id`` that was not completed."""
        with reraised(repr(self), "release", redis.RedisError):
            self._release(keys=[self._key(event_id)], args=[_CLAIMED])

    def prune(self, limit: int = DEFAULT_PRUNE_BATCH) -> int:
        """Nothing to do: Redis expires completed IDs itself. Always 0."""
        return 0

    def close(self) -> None:
        """Close the store's own client (a client you passed in stays yours to close)."""
        if self._owns_client:
            self._redis.close()

    def __enter__(self) -> "RedisEventStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        # The URL may hold a password: it is never shown.
        return f"RedisEventStore(prefix={self._prefix!r})"


class AsyncRedisEventStore:
    """:class:`RedisEventStore` for asyncio (``redis.asyncio``): the same keys, awaited.

    Give a ``url`` (the store keeps its own client, closed by :meth:`aclose`)
    or a ``redis.asyncio.Redis`` ``client`` you own. The Starlette webhook
    endpoint awaits it on the loop.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: "redis.asyncio.Redis | None" = None,
        prefix: str = DEFAULT_PREFIX,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        _check(url, client, prefix, retention_seconds)
        self._owns_client = client is None
        self._redis: redis.asyncio.Redis = client or redis.asyncio.Redis.from_url(url or "")
        self._prefix = prefix
        self._retention_ms = _milliseconds(retention_seconds)
        self._release = self._redis.register_script(_RELEASE)

    def _key(self, event_id: str) -> str:
        return self._prefix + event_id

    async def claim(self, event_id: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Take ``event_id`` for ``lease_seconds``: ``False`` if completed or claimed and live."""
        with reraised(repr(self), "claim", redis.RedisError):
            key = self._key(event_id)
            lease = _milliseconds(lease_seconds)
            return bool(await self._redis.set(key, _CLAIMED, nx=True, px=lease))

    async def complete(self, event_id: str) -> None:
        """Record ``event_id`` as handled, remembered for ``retention_seconds``."""
        with reraised(repr(self), "complete", redis.RedisError):
            await self._redis.set(self._key(event_id), _DONE, px=self._retention_ms)

    async def is_complete(self, event_id: str) -> bool:
        """``True`` once ``event_id`` has been completed (until its key expires)."""
        with reraised(repr(self), "is_complete", redis.RedisError):
            value: Any = await self._redis.get(self._key(event_id))
            return bool(value == _DONE)

    async def release(self, event_id: str) -> None:
        """Free a claim on ``event_id`` that was not completed."""
        with reraised(repr(self), "release", redis.RedisError):
            await self._release(keys=[self._key(event_id)], args=[_CLAIMED])

    async def prune(self, limit: int = DEFAULT_PRUNE_BATCH) -> int:
        """Nothing to do: Redis expires completed IDs itself. Always 0."""
        return 0

    async def aclose(self) -> None:
        """Close the store's own client (a client you passed in stays yours to close)."""
        if self._owns_client:
            await self._redis.aclose()

    async def __aenter__(self) -> "AsyncRedisEventStore":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncRedisEventStore(prefix={self._prefix!r})"
