"""Real PostgreSQL and Redis servers for the tests -- never mocked, never skipped.

``LocalPostgres``  a private cluster: ``initdb`` into a temp dir, ``pg_ctl start`` on a free
                   port (as the ``postgres`` OS user when running as root). Can be stopped
                   and started again with its data (``stop()``/``start()``), or removed.
``RedisServer``    a private ``redis-server`` on a free port, append-only persistence in a
                   temp dir; ``stop()`` (SIGTERM, or ``kill=True`` for SIGKILL) and
                   ``start()`` again with the same data.
``shared_postgres_url()``  the machine's PostgreSQL (``BAKAME_TEST_PG_URL``, default
                   ``postgresql://postgres@127.0.0.1:5432/test``) when reachable.

Tests that stop a server always use a private one: the shared server serves other test
runs at the same time. No binaries at all -> the test FAILS with a one-line reason.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import psycopg2
import pytest

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------- PostgreSQL
def pg_connect(dsn: str, timeout: int = 3):
    return psycopg2.connect(dsn, connect_timeout=timeout)


def pg_reachable(dsn: str) -> bool:
    try:
        pg_connect(dsn).close()
        return True
    except psycopg2.OperationalError:
        return False


def shared_postgres_url() -> Optional[str]:
    url = os.environ.get("BAKAME_TEST_PG_URL") or DEFAULT_PG_URL
    if os.environ.get("BAKAME_TEST_PG_START") == "1":
        return None
    return url if pg_reachable(url) else None


def pg_bindir() -> Optional[str]:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.split("/")[4].split(".")],
        reverse=True,
    )
    found = shutil.which("initdb")
    if found:
        candidates.append(os.path.realpath(found))
    for initdb in candidates:
        bindir = os.path.dirname(initdb)
        if os.access(os.path.join(bindir, "pg_ctl"), os.X_OK):
            return bindir
    return None


def _service_user():
    """(uid, gid) to run a server as when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None, None
    for user in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    pytest.fail("running as root and no 'postgres'/'nobody' user to run PostgreSQL")


class LocalPostgres:
    """A throw-away cluster: initdb into a temp dir, pg_ctl start on a free port."""

    def __init__(self, database: str = "test") -> None:
        self.bindir = pg_bindir()
        if self.bindir is None:
            pytest.fail(
                "PostgreSQL is not reachable and no initdb/pg_ctl was found "
                "(looked in /usr/lib/postgresql/*/bin and PATH): install PostgreSQL"
            )
        self.database = database
        self.port = free_port()
        self.root = tempfile.mkdtemp(prefix="bakame-pg-")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "postgres.log")
        self._uid, self._gid = _service_user()
        self._initialised = False
        if self._uid is not None:
            os.chmod(self.root, 0o700)
            os.chown(self.root, self._uid, self._gid)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str, check: bool = True):
        def demote():
            if self._uid is not None:
                os.setgid(self._gid)
                os.setuid(self._uid)

        return subprocess.run(
            [os.path.join(self.bindir, args[0]), *args[1:]],
            preexec_fn=demote, cwd=self.root, check=check, timeout=120,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    def start(self) -> str:
        """Initialise (first time), start, create the database; the URL."""
        first = not self._initialised
        if first:
            self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
            self._initialised = True
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")
        if first:
            admin = pg_connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", timeout=10)
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.database}"')
            admin.close()
        return self.url

    def stop(self, mode: str = "fast") -> None:
        """Stop the server, keep the data (``start()`` again later)."""
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", self.data, "status", check=False).returncode == 0

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except (subprocess.SubprocessError, OSError):
            pass
        shutil.rmtree(self.root, ignore_errors=True)


# ----------------------------------------------------------------------- Redis
def redis_binary() -> str:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if not found:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    return found


class RedisServer:
    """A private redis-server with append-only persistence (as in docker-compose.yml)."""

    def __init__(self, appendonly: bool = True) -> None:
        self.binary = redis_binary()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bakame-redis-"))
        self.appendonly = appendonly
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> str:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec",
                "--save", "", "--protected-mode", "no", "--daemonize", "no",
                "--logfile", str(self.dir / "redis.log")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.dir / "redis.log").read_text() if (self.dir / "redis.log").exists() else ""
                pytest.fail(f"redis-server exited ({self.process.returncode}): {log[-2000:]}")
            if self.ping():
                return self.url
            time.sleep(0.1)
        pytest.fail(f"redis-server on port {self.port} not ready after {timeout}s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        self.stop(kill=True)
        shutil.rmtree(self.dir, ignore_errors=True)
