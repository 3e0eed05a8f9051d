"""Real PostgreSQL and Redis servers for the event-store tests, from Debian's packages.

Each server runs on 127.0.0.1 on a free port, with its data in a temporary
folder, for one test session, and is stopped afterwards. PostgreSQL refuses
to run as root: as root, it runs as the ``postgres`` user that Debian's
package creates. ``scripts/install-services.sh`` (run by ``make pytest``)
installs the packages; if a binary is still missing, the tests that need it
fail with the reason under CI (``CI=true``) and skip with it elsewhere.
The benchmarks start the same servers through :func:`running_postgres` and
:func:`running_redis`.
"""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import attrs
import pytest

HOST = "127.0.0.1"
INSTALL_HINT = "run `sh scripts/install-services.sh` as root, or `apt-get install {package}`"


class ServiceUnavailable(Exception):
    """A server binary is missing or the server would not start."""


@attrs.frozen
class PostgresServer:
    """A running PostgreSQL: connect with :attr:`dsn`."""

    port: int
    user: str = "postgres"
    dbname: str = "postgres"

    @property
    def dsn(self) -> str:
        """A libpq connection string to the server's ``postgres`` database."""
        return f"host={HOST} port={self.port} user={self.user} dbname={self.dbname}"


@attrs.frozen
class RedisServer:
    """A running Redis: connect with :attr:`url`."""

    port: int

    @property
    def url(self) -> str:
        """A ``redis://`` URL to database 0."""
        return f"redis://{HOST}:{self.port}/0"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceUnavailable(f"{name} exited at start: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise ServiceUnavailable(f"{name} did not listen on {HOST}:{port} within 60 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's binary folder (Debian keeps them by version)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise ServiceUnavailable(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): "
        + INSTALL_HINT.format(package="postgresql")
    )


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for as long as the ``with`` block runs."""
    binaries = postgres_bin()
    as_root = os.geteuid() == 0
    account = pwd.getpwnam("postgres") if as_root else None
    folder = Path(tempfile.mkdtemp(prefix="lattice-postgres-"))
    try:
        if account is not None:
            os.chown(folder, account.pw_uid, account.pw_gid)
        uid = None if account is None else account.pw_uid
        gid = None if account is None else account.pw_gid
        data = folder / "data"
        log = folder / "server.log"
        subprocess.run(
            [
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            cwd=folder,
            user=uid,
            group=gid,
        )
        port = free_port()
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    str(binaries / "postgres"),
                    "-D",
                    str(data),
                    "-h",
                    HOST,
                    "-p",
                    str(port),
                    "-k",
                    str(folder),
                    # A test server: speed over crash safety, room for every worker's pool.
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=300",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=folder,
                user=uid,
                group=gid,
            )
        try:
            _wait_for_port(port, process, "postgres", log)
            _wait_for_postgres(PostgresServer(port=port))
            yield PostgresServer(port=port)
        finally:
            # SIGTERM is PostgreSQL's "smart" shutdown, SIGINT its fast one.
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            _stop(process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_postgres(server: PostgresServer) -> None:
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(server.dsn, connect_timeout=5).close()
            return
        except psycopg.OperationalError:  # still starting up
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A throwaway Redis server, nothing saved to disk, for as long as the block runs."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceUnavailable(
            "redis-server is not installed: " + INSTALL_HINT.format(package="redis-server")
        )
    folder = Path(tempfile.mkdtemp(prefix="lattice-redis-"))
    try:
        port = free_port()
        log = folder / "server.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    binary,
                    "--bind",
                    HOST,
                    "--port",
                    str(port),
                    "--dir",
                    str(folder),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--maxclients",
                    "1000",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=folder,
            )
        try:
            _wait_for_port(port, process, "redis-server", log)
            yield RedisServer(port=port)
        finally:
            _stop(process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def unavailable(reason: str) -> NoReturn:
    """Fail under CI, where the server must be there; skip with the reason elsewhere."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI must run these tests: install the service)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole test session."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_postgres())
        except ServiceUnavailable as error:
            unavailable(str(error))
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server for the whole test session."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_redis())
        except ServiceUnavailable as error:
            unavailable(str(error))
        yield server
