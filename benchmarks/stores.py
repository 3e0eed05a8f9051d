"""Webhook event stores: claims per second and claim latency, one process and four.

Each store claims new event IDs (what every first delivery costs), timed one
by one; with four processes, each has its own store on the shared backend (a
file or a server) and all claim at once. In memory (one process only),
SQLite on a temporary file, PostgreSQL and Redis on throwaway local servers
that ``tests/support/services.py`` starts (skipped, and said so, when the binaries
are missing). Reported, never asserted. ``python -m benchmarks.stores
[claims]`` prints the table alone.
"""

import contextlib
import functools
import multiprocessing
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lattice_stripe.adapters.stores.sqlite import SqliteEventStore
from lattice_stripe.core.webhooks import EventStore
from lattice_stripe.webhooks import InMemoryEventStore

# The throwaway servers are the tests' own (tests/ is not a package).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
from services import ServiceUnavailable, running_postgres, running_redis

PROCESSES = 4
LEASE = 300.0

Recipe = Callable[[], EventStore]


def _close(store: object) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        close()


def _claims(recipe: Recipe, count: int) -> tuple[float, list[float]]:
    """Claim ``count`` new IDs on a store of ``recipe``: (wall seconds, each claim's seconds)."""
    store = recipe()
    try:
        run = uuid.uuid4().hex[:12]
        store.claim(f"evt_warm_{run}", LEASE)  # connects, creates the table
        latencies: list[float] = []
        started = time.perf_counter()
        for index in range(count):
            before = time.perf_counter()
            store.claim(f"evt_{run}_{index}", LEASE)
            latencies.append(time.perf_counter() - before)
        return time.perf_counter() - started, latencies
    finally:
        _close(store)


def _claims_in_process(recipe: Recipe, count: int, barrier: Any, results: Any) -> None:
    store = recipe()
    try:
        store.claim(f"evt_warm_{uuid.uuid4().hex}", LEASE)
        barrier.wait(timeout=120)
        run = uuid.uuid4().hex[:12]
        latencies: list[float] = []
        for index in range(count):
            before = time.perf_counter()
            store.claim(f"evt_{run}_{index}", LEASE)
            latencies.append(time.perf_counter() - before)
        results.put((time.perf_counter(), latencies))
    finally:
        _close(store)


def _parallel(recipe: Recipe, count: int) -> tuple[float, list[float]]:
    """``PROCESSES`` processes claim ``count`` new IDs each at once: (wall seconds, latencies)."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES + 1)
    results = context.Queue()
    workers = [
        context.Process(target=_claims_in_process, args=(recipe, count, barrier, results))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    try:
        barrier.wait(timeout=120)
        started = time.perf_counter()
        finished = [results.get(timeout=600) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=60)
        results.close()
        results.join_thread()
    wall = max(end for end, _ in finished) - started
    return wall, [latency for _, batch in finished for latency in batch]


def _summary(wall: float, latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "claims": len(ordered),
        "claims_per_s": len(ordered) / wall if wall else float("nan"),
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def _postgres_store(dsn: str, table: str) -> EventStore:
    from lattice_stripe.adapters.stores.postgres import PostgresEventStore

    return PostgresEventStore(dsn, table=table)


def _redis_store(url: str, prefix: str) -> EventStore:
    from lattice_stripe.adapters.stores.redis import RedisEventStore

    return RedisEventStore(url, prefix=prefix)


@contextlib.contextmanager
def _backends() -> Iterator[dict[str, Recipe | str]]:
    """Each store's recipe, or why it is not measured."""
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lattice-stores-")))
        backends: dict[str, Recipe | str] = {
            "in memory": InMemoryEventStore,
            "SQLite (WAL)": functools.partial(SqliteEventStore, folder / "events.sqlite3"),
        }
        try:
            postgres = stack.enter_context(running_postgres())
            backends["PostgreSQL (local, fsync off)"] = functools.partial(
                _postgres_store, postgres.dsn, "bench_events"
            )
        except ServiceUnavailable as error:
            backends["PostgreSQL"] = str(error)
        try:
            redis = stack.enter_context(running_redis())
            backends["Redis (local, no persistence)"] = functools.partial(
                _redis_store, redis.url, "bench:"
            )
        except ServiceUnavailable as error:
            backends["Redis"] = str(error)
        yield backends


def run(claims: int) -> dict[str, Any]:
    """Measure every store with ``claims`` claims per process; the figures by store."""
    results: dict[str, Any] = {}
    with _backends() as backends:
        for name, recipe in backends.items():
            if isinstance(recipe, str):
                results[name] = {"unavailable": recipe}
                continue
            row = {"1 process": _summary(*_claims(recipe, claims))}
            if recipe is not InMemoryEventStore:  # memory is not shared between processes
                row[f"{PROCESSES} processes"] = _summary(*_parallel(recipe, claims))
            results[name] = row
    return results


def markdown(results: dict[str, Any]) -> list[str]:
    """The results as a markdown table."""
    lines = [
        "| store | processes | claims/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in results.items():
        if "unavailable" in row:
            lines.append(f"| {name} | - | not measured: {row['unavailable']} | | |")
            continue
        for mode, figures in row.items():
            lines.append(
                f"| {name} | {mode.split()[0]} | {figures['claims_per_s']:.0f} | "
                f"{figures['p50_ms']:.3f} | {figures['p99_ms']:.3f} |"
            )
    return lines


if __name__ == "__main__":
    print("\n".join(markdown(run(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))))
