"""The EventStore contract: one test suite that every event store must pass.

Subclass :class:`EventStoreContract` in a ``test_*.py`` module and give it a
``store_recipe`` fixture: a picklable callable that builds a new store on the
test's backend from keyword options (``retention_seconds``, ``prune_batch``).
Every store it builds must share that backend (the same file, database or
server), as the processes of one deployment do. The contract then builds
stores with ``make_store(**options)`` (closed after the test) and the
default one as ``store``. Class attributes say what a store cannot do:

- ``shared = False``: instances do not share state (an in-memory store), so
  the cross-instance and cross-process tests are skipped;
- ``backend_expires = True``: the backend forgets expired IDs by itself (Redis
  TTLs), so ``prune`` has nothing left to count.

Stores must also offer ``prune(limit) -> int``: forget up to ``limit`` IDs
completed more than ``retention_seconds`` ago, and say how many it forgot.
"""

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, ClassVar, Protocol, TypeVar

import pytest

from lattice_stripe.core.webhooks import EventStore

LEASE = 300.0
SHORT_LEASE = 0.5
SHORT_RETENTION = 0.3
RACE_EVENTS = 40
THREADS = 16
PROCESSES = 4
T = TypeVar("T")


class PrunableStore(EventStore, Protocol):
    """An event store with the retention step the shipped stores have."""

    def prune(self, limit: int = ...) -> int: ...


class AsyncPrunableStore(Protocol):
    """An asyncio event store with retention and ``aclose``."""

    async def claim(self, event_id: str, lease_seconds: float) -> bool: ...

    async def complete(self, event_id: str) -> None: ...

    async def is_complete(self, event_id: str) -> bool: ...

    async def release(self, event_id: str) -> None: ...

    async def prune(self, limit: int = ...) -> int: ...

    async def aclose(self) -> None: ...


StoreRecipe = Callable[..., PrunableStore]
MakeStore = Callable[..., PrunableStore]


def _close(store: object) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        close()


def _race_in_process(
    recipe: StoreRecipe,
    event_ids: list[str],
    barrier: Any,
    results: Any,
) -> None:
    """One worker process: a store of its own, then claim every event as soon as all are ready."""
    store = recipe()
    try:
        barrier.wait(timeout=60)
        results.put([event_id for event_id in event_ids if store.claim(event_id, LEASE)])
    finally:
        _close(store)


class EventStoreContract:
    """What every EventStore does: leases, completion, release, retention, races."""

    shared: ClassVar[bool] = True
    backend_expires: ClassVar[bool] = False

    @pytest.fixture
    def make_store(self, store_recipe: StoreRecipe) -> Iterator[MakeStore]:
        """Build stores on the test's backend; close them all afterwards."""
        made: list[PrunableStore] = []

        def make(**options: Any) -> PrunableStore:
            store = store_recipe(**options)
            made.append(store)
            return store

        yield make
        for store in made:
            _close(store)

    @pytest.fixture
    def store(self, make_store: MakeStore) -> PrunableStore:
        """A store with the default options."""
        return make_store()

    def _require_shared(self) -> None:
        if not self.shared:
            pytest.skip("instances of this store do not share state")

    def test_a_new_event_is_claimed_once(self, store: PrunableStore) -> None:
        """The first claim of an event wins; a second claim under a live lease loses."""
        assert store.claim("evt_contract_1", LEASE) is True
        assert store.claim("evt_contract_1", LEASE) is False
        assert store.is_complete("evt_contract_1") is False

    def test_events_are_claimed_independently(self, store: PrunableStore) -> None:
        """Claiming one event says nothing about another."""
        assert store.claim("evt_a", LEASE) is True
        assert store.claim("evt_b", LEASE) is True
        store.complete("evt_a")
        assert (store.is_complete("evt_a"), store.is_complete("evt_b")) == (True, False)

    def test_an_unknown_event_is_not_complete(self, store: PrunableStore) -> None:
        """An event never claimed is not complete."""
        assert store.is_complete("evt_never_seen") is False

    def test_a_completed_event_is_never_claimed_again(self, store: PrunableStore) -> None:
        """complete makes every later claim lose, and is_complete say so."""
        assert store.claim("evt_done", LEASE) is True
        store.complete("evt_done")
        assert store.is_complete("evt_done") is True
        assert store.claim("evt_done", LEASE) is False

    def test_a_released_event_is_claimed_again(self, store: PrunableStore) -> None:
        """release frees a failed claim at once, without waiting for its lease."""
        assert store.claim("evt_failed", LEASE) is True
        store.release("evt_failed")
        assert store.is_complete("evt_failed") is False
        assert store.claim("evt_failed", LEASE) is True

    def test_release_never_undoes_a_completion(self, store: PrunableStore) -> None:
        """A late release (from a worker whose lease expired) keeps a completed event complete."""
        assert store.claim("evt_kept", LEASE) is True
        store.complete("evt_kept")
        store.release("evt_kept")
        assert store.is_complete("evt_kept") is True
        assert store.claim("evt_kept", LEASE) is False

    def test_an_expired_lease_lets_the_next_claim_take_the_event(
        self, store: PrunableStore
    ) -> None:
        """A claim whose lease ran out (its worker crashed) is taken over by the next claim."""
        assert store.claim("evt_crashed", SHORT_LEASE) is True
        assert store.claim("evt_crashed", SHORT_LEASE) is False
        time.sleep(SHORT_LEASE + 0.2)
        assert store.claim("evt_crashed", LEASE) is True
        assert store.claim("evt_crashed", LEASE) is False

    def test_a_completed_event_outlives_its_lease(self, store: PrunableStore) -> None:
        """Completion is not a lease: a completed event stays complete after the lease."""
        assert store.claim("evt_finished", SHORT_LEASE) is True
        store.complete("evt_finished")
        time.sleep(SHORT_LEASE + 0.2)
        assert store.claim("evt_finished", LEASE) is False
        assert store.is_complete("evt_finished") is True

    def test_event_ids_are_data_not_syntax(self, store: PrunableStore) -> None:
        """IDs with quotes, wildcards and non-ASCII characters are stored as given."""
        odd = ["evt_'; DROP TABLE x; --", "evt_%_*?[]", "evt_ünïcødé_✓", "evt_" + "x" * 250]
        for event_id in odd:
            assert store.claim(event_id, LEASE) is True
        store.complete(odd[0])
        assert [store.is_complete(event_id) for event_id in odd] == [True, False, False, False]
        assert store.claim("evt_", LEASE) is True

    def test_a_completion_is_seen_by_every_instance(self, make_store: MakeStore) -> None:
        """Two stores on one backend (two processes) agree on claims and completions."""
        self._require_shared()
        first, second = make_store(), make_store()
        assert first.claim("evt_shared", LEASE) is True
        assert second.claim("evt_shared", LEASE) is False
        first.complete("evt_shared")
        assert second.is_complete("evt_shared") is True
        second.release("evt_other_never_claimed")
        assert second.claim("evt_other_never_claimed", LEASE) is True

    def test_completed_ids_are_forgotten_after_the_retention(self, make_store: MakeStore) -> None:
        """prune forgets IDs completed more than retention_seconds ago, at most limit per call."""
        store = make_store(retention_seconds=SHORT_RETENTION)
        for index in range(5):
            assert store.claim(f"evt_old_{index}", LEASE) is True
            store.complete(f"evt_old_{index}")
        assert store.prune(100) == 0  # all still young
        time.sleep(SHORT_RETENTION + 0.3)
        if self.backend_expires:
            assert store.prune(2) <= 2
        else:
            assert [store.prune(2), store.prune(2), store.prune(2), store.prune(2)] == [2, 2, 1, 0]
        assert not any(store.is_complete(f"evt_old_{index}") for index in range(5))
        assert store.claim("evt_old_0", LEASE) is True

    def test_a_claim_under_lease_is_not_pruned(self, make_store: MakeStore) -> None:
        """Retention forgets completed IDs only, never one being handled."""
        store = make_store(retention_seconds=SHORT_RETENTION)
        assert store.claim("evt_running", LEASE) is True
        time.sleep(SHORT_RETENTION + 0.3)
        store.prune(100)
        assert store.claim("evt_running", LEASE) is False

    def test_completing_prunes_a_bounded_batch_by_itself(self, make_store: MakeStore) -> None:
        """complete forgets at most prune_batch expired IDs: no clean-up job, no slow call."""
        store = make_store(retention_seconds=SHORT_RETENTION, prune_batch=2)
        for index in range(5):
            assert store.claim(f"evt_batch_{index}", LEASE) is True
            store.complete(f"evt_batch_{index}")
        time.sleep(SHORT_RETENTION + 0.3)
        assert store.claim("evt_trigger", LEASE) is True
        store.complete("evt_trigger")
        remembered = [store.is_complete(f"evt_batch_{index}") for index in range(5)]
        if self.backend_expires:
            assert remembered == [False] * 5
        else:
            assert remembered.count(True) == 3
        assert store.is_complete("evt_trigger") is True

    def test_sixteen_threads_racing_claim_each_event_once(self, store: PrunableStore) -> None:
        """16 threads claim the same events at once on one store: each event has one winner."""
        event_ids = [f"evt_thread_race_{index}" for index in range(RACE_EVENTS)]
        barrier = threading.Barrier(THREADS)
        wins: list[list[str]] = [[] for _ in range(THREADS)]
        errors: list[BaseException] = []

        def race(slot: int) -> None:
            try:
                barrier.wait(timeout=30)
                wins[slot] = [event_id for event_id in event_ids if store.claim(event_id, LEASE)]
            except BaseException as error:  # reported below, in the test's thread
                errors.append(error)

        threads = [threading.Thread(target=race, args=(slot,)) for slot in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        won = sorted(event_id for slot in wins for event_id in slot)
        assert won == sorted(event_ids)

    def test_four_processes_racing_claim_each_event_once(
        self, store_recipe: StoreRecipe, store: PrunableStore
    ) -> None:
        """4 processes, each with its own store on the backend, claim at once: one winner each."""
        self._require_shared()
        event_ids = [f"evt_process_race_{index}" for index in range(RACE_EVENTS)]
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(PROCESSES)
        results = context.Queue()
        workers = [
            context.Process(
                target=_race_in_process, args=(store_recipe, event_ids, barrier, results)
            )
            for _ in range(PROCESSES)
        ]
        for worker in workers:
            worker.start()
        try:
            wins = [results.get(timeout=120) for _ in workers]
        finally:
            for worker in workers:
                worker.join(timeout=30)
            results.close()
            results.join_thread()
        assert [worker.exitcode for worker in workers] == [0] * PROCESSES
        won = sorted(event_id for batch in wins for event_id in batch)
        assert won == sorted(event_ids)
        assert store.claim(event_ids[0], LEASE) is False


class BlockingStore:
    """An async store driven from blocking code, on an event loop in a thread of its own.

    Runs the contract (threads and processes included) against an
    :class:`~lattice_stripe.core.webhooks.AsyncEventStore`: every call is a
    coroutine on that one loop, so 16 threads make 16 concurrent tasks.
    """

    def __init__(self, store: AsyncPrunableStore) -> None:
        self._store = store
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=60)

    def claim(self, event_id: str, lease_seconds: float) -> bool:
        """The async store's claim."""
        return self._run(self._store.claim(event_id, lease_seconds))

    def complete(self, event_id: str) -> None:
        """The async store's complete."""
        self._run(self._store.complete(event_id))

    def is_complete(self, event_id: str) -> bool:
        """The async store's is_complete."""
        return self._run(self._store.is_complete(event_id))

    def release(self, event_id: str) -> None:
        """The async store's release."""
        self._run(self._store.release(event_id))

    def prune(self, limit: int = 100) -> int:
        """The async store's prune."""
        return self._run(self._store.prune(limit))

    def close(self) -> None:
        """Close the async store on its loop, then stop the loop."""
        try:
            self._run(self._store.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()
