"""Every shipped event store against the one EventStore contract, each on its real backend."""

import functools
from pathlib import Path

import pytest

from lattice_stripe.adapters.stores.sqlite import SqliteEventStore
from lattice_stripe.core.webhooks import InMemoryEventStore
from store_contract import EventStoreContract, StoreRecipe


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
