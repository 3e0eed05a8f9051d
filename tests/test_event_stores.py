"""Every shipped event store against the one EventStore contract, each on its real backend."""

import functools
import uuid
from pathlib import Path
from typing import Any

import pytest

from lattice_stripe.adapters.stores.sqlite import SqliteEventStore
from lattice_stripe.core.webhooks import InMemoryEventStore
from services import PostgresServer, RedisServer
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
