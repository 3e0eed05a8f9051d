"""Exactly once across processes: real servers with 4 worker processes on one port, real stores.

For each store (an SQLite file, PostgreSQL, Redis), uvicorn runs 4 worker
processes of the Starlette webhook endpoint behind one port; Pyramid runs on
4 waitress processes sharing one listening socket, with PostgreSQL. 1,000
signed events are delivered 3 times each, the 3 copies at once, the events
in random order: every handler must finish exactly once per event. Then a
worker is killed with SIGKILL inside a handler (on a second endpoint over the
same store with a 3 s lease); the redelivery before the lease runs out is
answered 409, the one after it is handled, once.
The handlers append their runs to a file (see tests/support/webhook_workers.py).
"""

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import attrs

from lattice_stripe.webhooks import generate_signature_header
from services import HOST, PostgresServer, RedisServer, free_port
from webhook_workers import CRASH_PREFIX, EVENT_TYPE, SECRET

TESTS = Path(__file__).resolve().parents[1] / "support"
WORKERS = 4
EVENTS = 1000
COPIES = 3
IN_FLIGHT = 16
LEASE = 3.0


def event_body(event_id: str) -> bytes:
    """A minimal Stripe event of the handled type."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": EVENT_TYPE,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": {"id": "cus_multi", "object": "customer"}},
        }
    ).encode()


async def _post(session: aiohttp.ClientSession, url: str, event_id: str) -> tuple[int, str]:
    body = event_body(event_id)
    headers = {
        "Stripe-Signature": generate_signature_header(body, SECRET),
        "Content-Type": "application/json",
    }
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, (await response.json())["outcome"]


async def _deliver_all(url: str, event_ids: list[str]) -> list[tuple[int, str]]:
    """Each event COPIES times at once, the events in random order, IN_FLIGHT events at a time."""
    order = random.sample(event_ids, len(event_ids))
    gate = asyncio.Semaphore(IN_FLIGHT)
    # A new connection per delivery, as Stripe makes: each goes to whichever worker accepts.
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT * COPIES, force_close=True)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one_event(event_id: str) -> list[tuple[int, str]]:
            async with gate:
                copies = [_post(session, url, event_id) for _ in range(COPIES)]
                return list(await asyncio.gather(*copies))

        batches = await asyncio.gather(*(one_event(event_id) for event_id in order))
    return [reply for batch in batches for reply in batch]


async def _deliver_once(url: str, event_id: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        return await _post(session, url, event_id)


@attrs.frozen
class Runs:
    """The handler runs a file recorded: ``start`` and ``done`` per event, and the PIDs."""

    started: Counter[str]
    done: Counter[str]
    pids: frozenset[int]
    first_pid: dict[str, int]

    @classmethod
    def read(cls, path: Path) -> "Runs":
        """Count the lines of ``path``."""
        started: Counter[str] = Counter()
        done: Counter[str] = Counter()
        pids: set[int] = set()
        first_pid: dict[str, int] = {}
        for line in path.read_text().splitlines() if path.exists() else []:
            step, event_id, pid = line.split()
            (started if step == "start" else done)[event_id] += 1
            pids.add(int(pid))
            first_pid.setdefault(event_id, int(pid))
        return cls(started=started, done=done, pids=frozenset(pids), first_pid=first_pid)


async def _worker_pids(url: str, tries: int) -> set[int]:
    """The PIDs that answer ``/pid`` over ``tries`` new connections."""
    pids: set[int] = set()
    connector = aiohttp.TCPConnector(force_close=True)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for _ in range(tries):
            with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
                async with session.get(url.replace("/webhook", "/pid")) as response:
                    pids.add(int(await response.text()))
    return pids


def _wait_until_serving(url: str, processes: list[subprocess.Popen[bytes]]) -> None:
    """Wait until every worker process accepts connections (new ones go to any of them)."""
    deadline = time.monotonic() + 60
    seen: set[int] = set()
    while len(seen) < WORKERS:
        assert all(process.poll() is None for process in processes), "a server exited at start"
        assert time.monotonic() < deadline, f"only {len(seen)} workers answered within 60 s"
        seen |= asyncio.run(_worker_pids(url, 8))
        time.sleep(0.05)


def _stop_group(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _environment(runs: Path, store: str, target: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(TESTS),
        "LS_STORE": store,
        "LS_STORE_TARGET": target,
        "LS_STORE_NAME": f"events_{uuid.uuid4().hex[:10]}" + (":" if store == "redis" else ""),
        "LS_RUNS": str(runs),
        "LS_LEASE": str(LEASE),
    }


@contextlib.contextmanager
def uvicorn_workers(environment: dict[str, str]) -> Iterator[str]:
    """uvicorn with 4 worker processes of the Starlette app on one port; the webhook URL."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", "webhook_workers:starlette_app"]
    options = ["--host", HOST, "--port", str(port), "--workers", str(WORKERS)]
    quiet = ["--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(
        [*command, *options, *quiet], env=environment, cwd=TESTS, start_new_session=True
    )
    url = f"http://{HOST}:{port}/webhook"
    try:
        _wait_until_serving(url, [server])
        yield url
    finally:
        _stop_group([server])


@contextlib.contextmanager
def waitress_workers(environment: dict[str, str]) -> Iterator[str]:
    """4 waitress processes of the Pyramid app accepting on one shared socket; the URL."""
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(256)
        port = listener.getsockname()[1]
        descriptor = listener.fileno()
        workers = [
            subprocess.Popen(
                [sys.executable, str(TESTS / "webhook_workers.py"), str(descriptor)],
                env=environment,
                cwd=TESTS,
                pass_fds=[descriptor],
                start_new_session=True,
            )
            for _ in range(WORKERS)
        ]
    url = f"http://{HOST}:{port}/webhook"
    try:
        _wait_until_serving(url, workers)
        yield url
    finally:
        _stop_group(workers)


def _prove_exactly_once(url: str, runs_file: Path, label: str) -> None:
    event_ids = [f"evt_multi_{index:04d}" for index in range(EVENTS)]
    started = time.monotonic()
    replies = asyncio.run(_deliver_all(url, event_ids))
    elapsed = time.monotonic() - started
    outcomes = Counter(outcome for _, outcome in replies)
    runs = Runs.read(runs_file)
    assert {status for status, _ in replies} <= {200, 409}, outcomes
    assert outcomes["processed"] == EVENTS, outcomes
    assert runs.done == Counter(dict.fromkeys(event_ids, 1)), "a handler ran twice or never"
    assert runs.started == runs.done
    assert len(runs.pids) >= 2, "the deliveries did not reach several worker processes"
    processes = len(runs.pids)

    crash = f"{CRASH_PREFIX}_{label}"
    recovered = _crash_and_recover(url.replace("/webhook", "/crash"), runs_file, crash)
    runs = Runs.read(runs_file)
    assert (runs.started[crash], runs.done[crash]) == (2, 1)
    assert recovered == [(409, "in_progress"), (200, "processed"), (200, "duplicate")]
    print(
        f"\n{label}: {EVENTS} events x {COPIES} copies in {elapsed:.1f} s "
        f"({len(replies) / elapsed:.0f} deliveries/s) over {processes} processes; "
        f"outcomes {dict(outcomes)}; handler runs {sum(runs.done.values()) - 1} for {EVENTS}; "
        f"crash recovered once after the {LEASE} s lease"
    )


def _crash_and_recover(url: str, runs_file: Path, crash: str) -> list[tuple[int, str]]:
    """Kill the worker that runs ``crash``'s handler; redeliver before and after the lease."""

    async def crash_then_redeliver() -> list[tuple[int, str]]:
        sent_at = time.monotonic()  # the claim, and so its lease, starts after this
        hanging = asyncio.ensure_future(_deliver_once(url, crash))
        deadline = time.monotonic() + 30
        while not Runs.read(runs_file).started[crash]:
            assert time.monotonic() < deadline, "the crash handler never started"
            await asyncio.sleep(0.02)
        victim = Runs.read(runs_file).first_pid[crash]
        os.kill(victim, signal.SIGKILL)
        replies = [await _deliver_once(url, crash)]
        assert time.monotonic() - sent_at < LEASE, "too slow to redeliver within the lease"
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
            await hanging
        await asyncio.sleep(LEASE + 0.5)
        replies.append(await _deliver_once(url, crash))
        replies.append(await _deliver_once(url, crash))
        return replies

    return asyncio.run(crash_then_redeliver())


def test_starlette_on_four_uvicorn_workers_with_sqlite(tmp_path: Path) -> None:
    """4 uvicorn workers on one SQLite file: every event handled once, a crash recovered once."""
    runs = tmp_path / "runs.log"
    environment = _environment(runs, "sqlite", str(tmp_path / "events.sqlite3"))
    with uvicorn_workers(environment) as url:
        _prove_exactly_once(url, runs, "sqlite")


def test_starlette_on_four_uvicorn_workers_with_postgres(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """4 uvicorn workers on async PostgreSQL: every event handled once, a crash recovered once."""
    runs = tmp_path / "runs.log"
    with uvicorn_workers(_environment(runs, "postgres", postgres_server.dsn)) as url:
        _prove_exactly_once(url, runs, "postgres")


def test_starlette_on_four_uvicorn_workers_with_redis(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """4 uvicorn workers on async Redis: every event handled once, a crash recovered once."""
    runs = tmp_path / "runs.log"
    with uvicorn_workers(_environment(runs, "redis", redis_server.url)) as url:
        _prove_exactly_once(url, runs, "redis")


def test_pyramid_on_four_waitress_processes_with_postgres(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """4 waitress processes on one socket, sync PostgreSQL: handled once, a crash recovered."""
    runs = tmp_path / "runs.log"
    with waitress_workers(_environment(runs, "postgres", postgres_server.dsn)) as url:
        _prove_exactly_once(url, runs, "pyramid-postgres")
