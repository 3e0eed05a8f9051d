"""``PostgresEventStore`` and ``AsyncPostgresEventStore``: webhook events in PostgreSQL.

For several processes on several hosts. Needs the ``lattice-stripe[postgres]``
extra (psycopg 3 and psycopg_pool). One table, created on first use (or
ahead, by running :func:`migration` in your own migrations and passing
``create_table=False``)::

    CREATE TABLE IF NOT EXISTS lattice_stripe_events (
        event_id text PRIMARY KEY,
        lease_until timestamptz NOT NULL,
        completed_at timestamptz
    );
    CREATE INDEX IF NOT EXISTS lattice_stripe_events_completed_at
        ON lattice_stripe_events (completed_at) WHERE completed_at IS NOT NULL;

A claim is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` statement:
PostgreSQL locks the row, so of concurrent claims exactly one wins. Leases
and retention are timed on the database server's clock
(``clock_timestamp()``), so hosts whose clocks disagree still agree on
whether a lease has run out.
"""

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from lattice_stripe.adapters.stores import checked_identifier, reraised
from lattice_stripe.core.errors import ValidationError
from lattice_stripe.core.webhooks import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_PRUNE_BATCH,
    DEFAULT_RETENTION_SECONDS,
    check_prune_batch,
    check_seconds,
)

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_TABLE",
    "AsyncPostgresEventStore",
    "PostgresEventStore",
    "migration",
]

DEFAULT_TABLE = "lattice_stripe_events"
DEFAULT_MAX_CONNECTIONS = 10
DEFAULT_POOL_TIMEOUT = 5.0
"""The longest a call waits for a connection of the store's own pool: well within Stripe's
own wait for an answer, so that a database outage is answered 500 and retried later."""
# Serialises CREATE TABLE IF NOT EXISTS across processes starting at once,
# which can otherwise collide on PostgreSQL's catalog.
_DDL_LOCK_KEY = 0x1A771CE5


def migration(table: str = DEFAULT_TABLE) -> str:
    """The DDL that creates the store's table and index: run it from your migrations."""
    return _Statements(table).ddl.as_string()


class _Statements:
    """The store's SQL for one table; timed on the server's clock."""

    def __init__(self, table: str) -> None:
        name = sql.Identifier(checked_identifier(table))
        index = sql.Identifier(f"{table}_completed_at")
        self.ddl = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {name} (\n"
            "    event_id text PRIMARY KEY,\n"
            "    lease_until timestamptz NOT NULL,\n"
            "    completed_at timestamptz\n"
            ");\n"
            "CREATE INDEX IF NOT EXISTS {index}\n"
            "    ON {name} (completed_at) WHERE completed_at IS NOT NULL;\n"
        ).format(name=name, index=index)
        # SKIP LOCKED: workers pruning at once each take other rows, none waits.
        prune = sql.SQL(
            "DELETE FROM {name} WHERE event_id IN (SELECT event_id FROM {name} "
            "WHERE completed_at < clock_timestamp() - %s * interval '1 second' "
            "ORDER BY completed_at LIMIT %s FOR UPDATE SKIP LOCKED)"
        ).format(name=name)
        self.prune = prune
        self.claim = sql.SQL(
            "INSERT INTO {name} AS e (event_id, lease_until) "
            "VALUES (%s, clock_timestamp() + %s * interval '1 second') "
            "ON CONFLICT (event_id) DO UPDATE SET lease_until = EXCLUDED.lease_until "
            "WHERE e.completed_at IS NULL AND e.lease_until <= clock_timestamp()"
        ).format(name=name)
        # The completion and a bounded prune in one statement, so one round trip and
        # one atomic step: a data-modifying WITH runs both or neither.
        self.complete = sql.SQL(
            "WITH completed AS ("
            "INSERT INTO {name} AS e (event_id, lease_until, completed_at) "
            "VALUES (%s, clock_timestamp(), clock_timestamp()) "
            "ON CONFLICT (event_id) DO UPDATE SET completed_at = EXCLUDED.completed_at "
            "WHERE e.completed_at IS NULL RETURNING 1), "
            "pruned AS ({prune} RETURNING 1) "
            "SELECT (SELECT count(*) FROM completed), (SELECT count(*) FROM pruned)"
        ).format(name=name, prune=prune)
        self.is_complete = sql.SQL(
            "SELECT 1 FROM {name} WHERE event_id = %s AND completed_at IS NOT NULL"
        ).format(name=name)
        self.release = sql.SQL(
            "DELETE FROM {name} WHERE event_id = %s AND completed_at IS NULL"
        ).format(name=name)
        self.ddl_lock = sql.SQL("SELECT pg_advisory_xact_lock(%s)")


def _check_source(conninfo: str | None, pool: object, max_connections: int) -> None:
    if (conninfo is None) == (pool is None):
        raise ValidationError(
            "conninfo", "give exactly one of conninfo (a DSN) or pool (a psycopg_pool pool)"
        )
    if isinstance(max_connections, bool) or not isinstance(max_connections, int):
        raise ValidationError("max_connections", "expected a whole number of at least 1")
    if max_connections < 1:
        raise ValidationError("max_connections", "expected a whole number of at least 1")


_Pool = TypeVar("_Pool")


class _Settings(Generic[_Pool]):
    """What both stores check and hold: the table's statements, retention, and the pool (the one
    given, or the store's own, opened on first use)."""

    def __init__(
        self,
        conninfo: str | None,
        pool: _Pool | None,
        pool_class: Callable[..., _Pool],
        table: str,
        create_table: bool,
        retention_seconds: float,
        prune_batch: int,
        max_connections: int,
        timeout: float,
    ) -> None:
        _check_source(conninfo, pool, max_connections)
        self._sql = _Statements(table)
        self._table = table
        self._retention = check_seconds("retention_seconds", retention_seconds)
        self._prune_batch = check_prune_batch(prune_batch)
        self._owns_pool = pool is None
        self._timeout = timeout
        self._create_table = create_table
        self._ready = False
        self._pool: _Pool = pool or pool_class(
            conninfo or "",
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True},
            open=False,
            name="lattice_stripe.events",
            timeout=check_seconds("timeout", timeout),
        )


class PostgresEventStore(_Settings["ConnectionPool[Any]"]):
    """An :class:`~lattice_stripe.core.webhooks.EventStore` in a PostgreSQL table.

    Give a ``conninfo`` (a libpq DSN or URL: the store then keeps its own pool
    of up to ``max_connections`` connections, opened on first use, waited
    for at most ``timeout`` seconds, and closed by :meth:`close`) or a
    psycopg_pool ``pool`` that you own. ``table`` is
    created on first use unless ``create_table`` is false. Completed rows
    older than ``retention_seconds`` are deleted, at most ``prune_batch`` per
    :meth:`complete`. Thread-safe. Database failures raise
    :class:`~lattice_stripe.core.errors.EventStoreError`.
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: "ConnectionPool[Any] | None" = None,
        table: str = DEFAULT_TABLE,
        create_table: bool = True,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        prune_batch: int = DEFAULT_PRUNE_BATCH,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        timeout: float = DEFAULT_POOL_TIMEOUT,
    ) -> None:
        super().__init__(
            conninfo, pool, ConnectionPool, table, create_table,
            retention_seconds, prune_batch, max_connections, timeout,
        )  # fmt: skip
        self._setup = threading.Lock()

    def _prepare(self) -> None:
        """Open the store's own pool and create the table, once, on first use."""
        if self._ready:
            return
        with self._setup:
            if self._ready:
                return
            if self._owns_pool:
                self._pool.open(wait=True, timeout=self._timeout)
            if self._create_table:
                with self._pool.connection() as connection, connection.transaction():
                    connection.execute(self._sql.ddl_lock, (_DDL_LOCK_KEY,))
                    connection.execute(self._sql.ddl)
            self._ready = True

    def _execute(self, step: str, query: sql.Composed, params: tuple[object, ...]) -> int:
        """Run ``query``; the number of rows it touched (or returned)."""
        with reraised(repr(self), step, psycopg.Error):
            self._prepare()
            with self._pool.connection() as connection:
                cursor = connection.execute(query, params)
                return int(cursor.rowcount)

    def claim(self, event_id: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Take ``event_id`` for ``lease_seconds``: ``False`` if completed or claimed and live."""
        return self._execute("claim", self._sql.claim, (event_id, float(lease_seconds))) == 1

    def complete(self, event_id: str) -> None:
        """Record ``event_id`` as handled (committed); delete up to ``prune_batch`` expired rows."""
        self._execute(
            "complete", self._sql.complete, (event_id, self._retention, self._prune_batch)
        )

    def is_complete(self, event_id: str) -> bool:
        """``True`` once ``event_id`` has been completed (until retention forgets it)."""
        return self._execute("is_complete", self._sql.is_complete, (event_id,)) == 1

    def release(self, event_id: str) -> None:
        """Free a claim on ``event_id`` that was not completed."""
        self._execute("release", self._sql.release, (event_id,))

    def prune(self, limit: int = DEFAULT_PRUNE_BATCH) -> int:
        """Delete up to ``limit`` rows completed more than ``retention_seconds`` ago; how many."""
        return self._execute("prune", self._sql.prune, (self._retention, limit))

    def close(self) -> None:
        """Close the store's own pool (a pool you passed in stays yours to close)."""
        if self._owns_pool:
            self._pool.close()

    def __enter__(self) -> "PostgresEventStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        # The connection string may hold a password: it is never shown.
        return f"PostgresEventStore(table={self._table!r})"


class AsyncPostgresEventStore(_Settings["AsyncConnectionPool[Any]"]):
    """:class:`PostgresEventStore` for asyncio: the same table, awaited methods.

    The pool (its own, from ``conninfo``, or a psycopg_pool
    ``AsyncConnectionPool`` you own) is opened on first use, in the event
    loop that uses it; :meth:`aclose` closes the store's own pool. The
    Starlette webhook endpoint awaits it on the loop.
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: "AsyncConnectionPool[Any] | None" = None,
        table: str = DEFAULT_TABLE,
        create_table: bool = True,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        prune_batch: int = DEFAULT_PRUNE_BATCH,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        timeout: float = DEFAULT_POOL_TIMEOUT,
    ) -> None:
        super().__init__(
            conninfo, pool, AsyncConnectionPool, table, create_table,
            retention_seconds, prune_batch, max_connections, timeout,
        )  # fmt: skip
        self._opened = False
        self._setup: asyncio.Lock | None = None

    async def _prepare(self) -> None:
        """Open the store's own pool and create the table, once, on first use."""
        if self._ready:
            return
        if self._setup is None:
            # Made here, not in __init__: a lock belongs to the loop that first uses it.
            self._setup = asyncio.Lock()
        async with self._setup:
            if self._ready:
                return
            if self._owns_pool and not self._opened:
                await self._pool.open(wait=True, timeout=self._timeout)
                self._opened = True
            if self._create_table:
                async with self._pool.connection() as connection, connection.transaction():
                    await connection.execute(self._sql.ddl_lock, (_DDL_LOCK_KEY,))
                    await connection.execute(self._sql.ddl)
            self._ready = True

    async def _execute(self, step: str, query: sql.Composed, params: tuple[object, ...]) -> int:
        with reraised(repr(self), step, psycopg.Error):
            await self._prepare()
            async with self._pool.connection() as connection:
                cursor = await connection.execute(query, params)
                return int(cursor.rowcount)

    async def claim(self, event_id: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Take ``event_id`` for ``lease_seconds``: ``False`` if completed or claimed and live."""
        return await self._execute("claim", self._sql.claim, (event_id, float(lease_seconds))) == 1

    async def complete(self, event_id: str) -> None:
        """Record ``event_id`` as handled (committed); delete up to ``prune_batch`` expired rows."""
        params = (event_id, self._retention, self._prune_batch)
        await self._execute("complete", self._sql.complete, params)

    async def is_complete(self, event_id: str) -> bool:
        """``True`` once ``event_id`` has been completed (until retention forgets it)."""
        return await self._execute("is_complete", self._sql.is_complete, (event_id,)) == 1

    async def release(self, event_id: str) -> None:
        """Free a claim on ``event_id`` that was not completed."""
        await self._execute("release", self._sql.release, (event_id,))

    async def prune(self, limit: int = DEFAULT_PRUNE_BATCH) -> int:
        """Delete up to ``limit`` rows completed more than ``retention_seconds`` ago; how many."""
        return await self._execute("prune", self._sql.prune, (self._retention, limit))

    async def aclose(self) -> None:
        """Close the store's own pool (a pool you passed in stays yours to close)."""
        if self._owns_pool:
            await self._pool.close()

    async def __aenter__(self) -> "AsyncPostgresEventStore":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncPostgresEventStore(table={self._table!r})"
