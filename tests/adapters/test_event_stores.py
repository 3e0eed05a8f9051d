"""Every shipped event store against the one EventStore contract, each on its real backend."""

import contextlib
import functools
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from psycopg_pool import ConnectionPool

from lattice_stripe.adapters.stores.sqlite import SqliteEventStore
from lattice_stripe.core.errors import EventStoreError, ValidationError
from lattice_stripe.webhooks import InMemoryEventStore
from services import PostgresServer, RedisServer, free_port
from store_contract import BlockingStore, EventStoreContract, PrunableStore, StoreRecipe


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def postgres_store(dsn: str, table: str, **options: Any) -> PrunableStore:
    """A PostgresEventStore on ``table`` (picklable, for the worker processes)."""
    from lattice_stripe.adapters.stores.postgres import PostgresEventStore

    return PostgresEventStore(dsn, table=table, **options)


def async_postgres_store(dsn: str, table: str, **options: Any) -> PrunableStore:
    """An AsyncPostgresEventStore on ``table``, driven from blocking code."""
    from lattice_stripe.adapters.stores.postgres import AsyncPostgresEventStore

    return BlockingStore(AsyncPostgresEventStore(dsn, table=table, **options))


def redis_store(url: str, prefix: str, **options: Any) -> PrunableStore:
    """A RedisEventStore under ``prefix``; Redis expires IDs itself, so no prune_batch."""
    from lattice_stripe.adapters.stores.redis import RedisEventStore

    options.pop("prune_batch", None)
    return RedisEventStore(url, prefix=prefix, **options)


def async_redis_store(url: str, prefix: str, **options: Any) -> PrunableStore:
    """An AsyncRedisEventStore under ``prefix``, driven from blocking code."""
    from lattice_stripe.adapters.stores.redis import AsyncRedisEventStore

    options.pop("prune_batch", None)
    return BlockingStore(AsyncRedisEventStore(url, prefix=prefix, **options))


class TestInMemoryEventStore(EventStoreContract):
    """The in-memory store: one process, so nothing is shared between instances."""

    shared = False

    @pytest.fixture
    def store_recipe(self) -> StoreRecipe:
        """A new in-memory store per call."""
        return InMemoryEventStore


class TestSqliteEventStore(EventStoreContract):
    """The SQLite store: every instance on one file in the test's temporary folder."""

    @pytest.fixture
    def store_recipe(self, tmp_path: Path) -> StoreRecipe:
        """Stores on one SQLite file."""
        return functools.partial(SqliteEventStore, tmp_path / "events.sqlite3")


class TestPostgresEventStore(EventStoreContract):
    """The PostgreSQL store on a real server, a fresh table per test."""

    @pytest.fixture
    def store_recipe(self, postgres_server: PostgresServer) -> StoreRecipe:
        """Stores on one new table."""
        return functools.partial(postgres_store, postgres_server.dsn, _unique("events"))


class TestAsyncPostgresEventStore(EventStoreContract):
    """The asyncio PostgreSQL store on a real server, a fresh table per test."""

    @pytest.fixture
    def store_recipe(self, postgres_server: PostgresServer) -> StoreRecipe:
        """Async stores on one new table."""
        return functools.partial(async_postgres_store, postgres_server.dsn, _unique("events"))


class TestRedisEventStore(EventStoreContract):
    """The Redis store on a real server, a fresh key prefix per test."""

    backend_expires = True

    @pytest.fixture
    def store_recipe(self, redis_server: RedisServer) -> StoreRecipe:
        """Stores under one new prefix."""
        return functools.partial(redis_store, redis_server.url, _unique("events") + ":")


class TestAsyncRedisEventStore(EventStoreContract):
    """The asyncio Redis store on a real server, a fresh key prefix per test."""

    backend_expires = True

    @pytest.fixture
    def store_recipe(self, redis_server: RedisServer) -> StoreRecipe:
        """Async stores under one new prefix."""
        return functools.partial(async_redis_store, redis_server.url, _unique("events") + ":")


# -- what each store does beyond the contract ----------------------------------------

SECRET_PASSWORD = "s3cret-pa55word"


def test_the_sqlite_store_runs_in_wal_mode_and_shows_its_schema(tmp_path: Path) -> None:
    """The file is in WAL mode (readers never block the writer); schema() is the table's DDL."""
    path = tmp_path / "events.sqlite3"
    with SqliteEventStore(path, table="hooks"):
        pass
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"hooks", "hooks_completed_at"} <= tables
    assert "CREATE TABLE IF NOT EXISTS hooks" in SqliteEventStore.schema("hooks")


def test_a_sqlite_file_that_cannot_be_opened_is_an_event_store_error(tmp_path: Path) -> None:
    """A path in a missing folder: EventStoreError from the library's tree, naming the step."""
    with pytest.raises(EventStoreError, match="opening the database"):
        SqliteEventStore(tmp_path / "missing" / "events.sqlite3")


@pytest.mark.parametrize("table", ["events; DROP TABLE x", "1events", "", "a" * 64, "évents"])
def test_a_table_name_that_is_not_a_plain_identifier_is_refused(tmp_path: Path, table: str) -> None:
    """Table names go into SQL: anything but a plain identifier is a ValidationError."""
    with pytest.raises(ValidationError) as caught:
        SqliteEventStore(tmp_path / "events.sqlite3", table=table)
    assert caught.value.path == "table"
    assert not (tmp_path / "events.sqlite3").exists()


def test_a_postgres_store_needs_exactly_one_source() -> None:
    """Neither or both of conninfo and pool: ValidationError, before any connection."""
    from lattice_stripe.adapters.stores.postgres import AsyncPostgresEventStore, PostgresEventStore

    for make in (PostgresEventStore, AsyncPostgresEventStore):
        with pytest.raises(ValidationError, match="exactly one of conninfo"):
            make()
    with pytest.raises(ValidationError) as caught:
        PostgresEventStore("host=127.0.0.1", max_connections=0)
    assert caught.value.path == "max_connections"
    with pytest.raises(ValidationError) as caught:
        AsyncPostgresEventStore("host=127.0.0.1", timeout=0)
    assert caught.value.path == "timeout"


def test_a_postgres_store_of_its_own_pool_gives_up_on_a_dead_server_within_its_timeout() -> None:
    """The store's own pool waits at most ``timeout`` for a connection, then EventStoreError."""
    from lattice_stripe.adapters.stores.postgres import PostgresEventStore

    dsn = f"host=127.0.0.1 port={free_port()} user=app"
    with PostgresEventStore(dsn, timeout=0.5) as store:
        started = time.monotonic()
        with pytest.raises(EventStoreError, match="claim failed"):
            store.claim("evt_1")
        with pytest.raises(EventStoreError, match="is_complete failed"):
            store.is_complete("evt_1")
        assert time.monotonic() - started < 5


def test_an_unreachable_postgres_is_an_event_store_error_without_the_password() -> None:
    """No server on the port: EventStoreError; neither it nor the repr shows the password."""
    from lattice_stripe.adapters.stores.postgres import PostgresEventStore

    dsn = f"postgresql://app:{SECRET_PASSWORD}@127.0.0.1:{free_port()}/app?connect_timeout=2"
    pool = ConnectionPool(dsn, min_size=1, open=False, timeout=2)
    pool.open(wait=False)
    with PostgresEventStore(pool=pool) as store:
        with pytest.raises(EventStoreError, match="claim failed") as caught:
            store.claim("evt_1")
        assert SECRET_PASSWORD not in str(caught.value)
        assert SECRET_PASSWORD not in repr(store)
    pool.close()
    assert SECRET_PASSWORD not in repr(PostgresEventStore(dsn))


def test_the_migration_creates_the_table_the_store_then_uses(
    postgres_server: PostgresServer,
) -> None:
    """migration() is the DDL to run from your own migrations; create_table=False relies on it."""
    from lattice_stripe.adapters.stores.postgres import PostgresEventStore, migration

    table = _unique("migrated")
    with PostgresEventStore(postgres_server.dsn, table=table, create_table=False) as store:
        with pytest.raises(EventStoreError, match="claim failed"):
            store.claim("evt_1")
        with psycopg.connect(postgres_server.dsn, autocommit=True) as connection:
            connection.execute(migration(table))
        assert store.claim("evt_1") is True
        store.complete("evt_1")
        assert store.is_complete("evt_1") is True
    assert f'CREATE TABLE IF NOT EXISTS "{table}"' in migration(table)


def test_a_pool_passed_in_stays_open_after_the_store_closes(
    postgres_server: PostgresServer,
) -> None:
    """The store closes only the pool it made; a pool you own stays yours."""
    from lattice_stripe.adapters.stores.postgres import PostgresEventStore

    with ConnectionPool(postgres_server.dsn, min_size=1, open=True) as pool:
        with PostgresEventStore(pool=pool, table=_unique("pooled")) as store:
            assert store.claim("evt_1") is True
        assert not pool.closed
        with pool.connection() as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)


def test_the_postgres_lease_runs_on_the_database_clock(postgres_server: PostgresServer) -> None:
    """The stored lease ends lease_seconds after the server's now(), whatever this host thinks."""
    from lattice_stripe.adapters.stores.postgres import PostgresEventStore

    table = _unique("clock")
    with PostgresEventStore(postgres_server.dsn, table=table) as store:
        assert store.claim("evt_1", 120.0) is True
        with psycopg.connect(postgres_server.dsn) as connection:
            row = connection.execute(
                f"SELECT extract(epoch FROM lease_until - clock_timestamp()) FROM {table}"
            ).fetchone()
    assert row is not None
    assert 110 < float(row[0]) <= 120


def test_redis_keys_carry_the_lease_and_the_retention_as_ttls(redis_server: RedisServer) -> None:
    """A claim's key expires with its lease, a completion's with the retention: Redis prunes."""
    from lattice_stripe.adapters.stores.redis import RedisEventStore

    prefix = _unique("ttl") + ":"
    with (
        RedisEventStore(redis_server.url, prefix=prefix, retention_seconds=3600) as store,
        redis.Redis.from_url(redis_server.url) as client,
    ):
        assert store.claim("evt_1", 60.0) is True
        assert 55_000 < client.pttl(prefix + "evt_1") <= 60_000
        store.complete("evt_1")
        assert 3_595_000 < client.pttl(prefix + "evt_1") <= 3_600_000
        assert store.prune() == 0


def test_a_redis_store_is_refused_without_one_source_or_a_prefix() -> None:
    """Neither or both of url and client, or an empty prefix: ValidationError naming it."""
    from lattice_stripe.adapters.stores.redis import AsyncRedisEventStore, RedisEventStore

    for make in (RedisEventStore, AsyncRedisEventStore):
        with pytest.raises(ValidationError, match="exactly one of url"):
            make()
    with pytest.raises(ValidationError) as caught:
        RedisEventStore("redis://127.0.0.1:1/0", prefix="")
    assert caught.value.path == "prefix"


def test_an_unreachable_redis_is_an_event_store_error_without_the_password() -> None:
    """No server on the port: EventStoreError; neither it nor the repr shows the password."""
    from lattice_stripe.adapters.stores.redis import RedisEventStore

    url = f"redis://:{SECRET_PASSWORD}@127.0.0.1:{free_port()}/0"
    with RedisEventStore(url) as store:
        with pytest.raises(EventStoreError, match="claim failed") as caught:
            store.claim("evt_1")
        assert SECRET_PASSWORD not in str(caught.value)
        assert SECRET_PASSWORD not in repr(store)


async def test_an_unreachable_async_redis_is_an_event_store_error() -> None:
    """The async Redis store raises EventStoreError too, never redis-py's own exception."""
    from lattice_stripe.adapters.stores.redis import AsyncRedisEventStore

    async with AsyncRedisEventStore(f"redis://127.0.0.1:{free_port()}/0") as store:
        with pytest.raises(EventStoreError, match="claim failed"):
            await store.claim("evt_1")


async def test_an_unreachable_async_postgres_is_an_event_store_error() -> None:
    """The async PostgreSQL store raises EventStoreError too, never psycopg's own exception."""
    from psycopg_pool import AsyncConnectionPool

    from lattice_stripe.adapters.stores.postgres import AsyncPostgresEventStore

    dsn = f"host=127.0.0.1 port={free_port()} connect_timeout=2"
    async with AsyncConnectionPool(dsn, min_size=1, open=False, timeout=2) as pool:
        store = AsyncPostgresEventStore(pool=pool)
        with pytest.raises(EventStoreError, match="claim failed"):
            await store.claim("evt_1")
