"""``SqliteEventStore``: webhook events in one SQLite file, shared by a host's processes.

The standard library only. The file is opened in WAL mode (readers never
block the writer) with a busy timeout (a writer waits for another instead of
failing), and every claim is one atomic ``INSERT ... ON CONFLICT DO UPDATE``
statement, so that any number of threads and processes on one host can share
a file: of concurrent claims of one event exactly one wins. Keep the file on
a local disk: SQLite's locks do not hold on network file systems, and
several hosts need :mod:`~lattice_stripe.adapters.stores.postgres` or
:mod:`~lattice_stripe.adapters.stores.redis` instead.

Leases and retention are timed on the host's wall clock (``time.time``, or
the ``clock`` given), which every process on the host shares.
"""

import sqlite3
import threading
import time
from pathlib import Path

from lattice_stripe.adapters.stores import checked_identifier, reraised
from lattice_stripe.core.ports import Clock
from lattice_stripe.core.webhooks import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_PRUNE_BATCH,
    DEFAULT_RETENTION_SECONDS,
    check_prune_batch,
    check_seconds,
)

__all__ = ["DEFAULT_TABLE", "SqliteEventStore"]

DEFAULT_TABLE = "lattice_stripe_events"


class SqliteEventStore:
    """An :class:`~lattice_stripe.core.webhooks.EventStore` in the SQLite file at ``path``.

    The table (``table``, created when missing) has one row per event:
    ``lease_until`` while it is claimed, ``completed_at`` once handled.
    Completed rows older than ``retention_seconds`` are deleted, at most
    ``prune_batch`` per :meth:`complete`. ``busy_timeout`` is how long a
    call waits for another process's write. Each completion is synced to
    disk (``synchronous=FULL``) before :meth:`complete` returns; claims and
    releases are not (``NORMAL``): one lost to a power cut frees its event
    early, as the end of its lease would. Thread-safe;
    :meth:`close` (or ``with``) closes the file.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        table: str = DEFAULT_TABLE,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        prune_batch: int = DEFAULT_PRUNE_BATCH,
        busy_timeout: float = 5.0,
        clock: Clock = time.time,
    ) -> None:
        self._table = checked_identifier(table)
        self._path = str(path)
        self._retention = check_seconds("retention_seconds", retention_seconds)
        self._prune_batch = check_prune_batch(prune_batch)
        self._clock = clock
        self._lock = threading.Lock()
        with reraised(repr(self), "opening the database", sqlite3.Error):
            # isolation_level=None: each statement commits by itself, unless in BEGIN.
            self._db = sqlite3.connect(
                self._path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        try:
            with reraised(repr(self), "setting up the table", sqlite3.Error):
                self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._db.executescript(self.schema(self._table))
        except BaseException:
            self._db.close()
            raise
        self._claim_sql = (
            f"INSERT INTO {self._table} (event_id, lease_until) VALUES (?, ?) "
            "ON CONFLICT (event_id) DO UPDATE SET lease_until = excluded.lease_until "
            f"WHERE {self._table}.completed_at IS NULL AND {self._table}.lease_until <= ?"
        )
        self._complete_sql = (
            f"INSERT INTO {self._table} (event_id, lease_until, completed_at) VALUES (?, ?, ?) "
            "ON CONFLICT (event_id) DO UPDATE SET completed_at = excluded.completed_at "
            f"WHERE {self._table}.completed_at IS NULL"
        )
        self._prune_sql = (
            f"DELETE FROM {self._table} WHERE event_id IN (SELECT event_id FROM {self._table} "
            "WHERE completed_at < ? ORDER BY completed_at LIMIT ?)"
        )

    @staticmethod
    def schema(table: str = DEFAULT_TABLE) -> str:
        """The DDL of the table (run by the store itself when the table is missing)."""
        name = checked_identifier(table)
        return (
            f"CREATE TABLE IF NOT EXISTS {name} (\n"
            "    event_id TEXT PRIMARY KEY,\n"
            "    lease_until REAL NOT NULL,\n"
            "    completed_at REAL\n"
            ") WITHOUT ROWID;\n"
            f"CREATE INDEX IF NOT EXISTS {name}_completed_at ON {name} (completed_at)\n"
            "    WHERE completed_at IS NOT NULL;\n"
        )

    def claim(self, event_id: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Take ``event_id`` for ``lease_seconds``: ``False`` if completed or claimed and live."""
        now = self._clock()
        with self._lock, reraised(repr(self), "claim", sqlite3.Error):
            cursor = self._db.execute(self._claim_sql, (event_id, now + lease_seconds, now))
            return cursor.rowcount == 1

    def complete(self, event_id: str) -> None:
        """Record ``event_id`` as handled, durably; delete up to ``prune_batch`` expired rows."""
        now = self._clock()
        with self._lock, reraised(repr(self), "complete", sqlite3.Error):
            # Synced to disk, with every claim written before it; claims alone are not:
            # one lost to a power cut only frees its event early, as its lease would.
            self._db.execute("PRAGMA synchronous = FULL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.execute(self._complete_sql, (event_id, now, now))
                    self._db.execute(self._prune_sql, (now - self._retention, self._prune_batch))
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                self._db.execute("PRAGMA synchronous = NORMAL")

    def is_complete(self, event_id: str) -> bool:
        """``True`` once ``event_id`` has been completed (until retention forgets it)."""
        with self._lock, reraised(repr(self), "is_complete", sqlite3.Error):
            row = self._db.execute(
                f"SELECT 1 FROM {self._table} WHERE event_id = ? AND completed_at IS NOT NULL",
                (event_id,),
            ).fetchone()
        return row is not None

    def release(self, event_id: str) -> None:
        """Free a claim on ``event_id`` that was not completed."""
        with self._lock, reraised(repr(self), "release", sqlite3.Error):
            self._db.execute(
                f"DELETE FROM {self._table} WHERE event_id = ? AND completed_at IS NULL",
                (event_id,),
            )

    def prune(self, limit: int = DEFAULT_PRUNE_BATCH) -> int:
        """Delete up to ``limit`` rows completed more than ``retention_seconds`` ago; how many."""
        with self._lock, reraised(repr(self), "prune", sqlite3.Error):
            cursor = self._db.execute(self._prune_sql, (self._clock() - self._retention, limit))
            return cursor.rowcount

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> "SqliteEventStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteEventStore(path={self._path!r}, table={self._table!r})"
