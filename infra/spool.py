"""A durable local queue in one SQLite file, shared by the event broker
(``infra/event_broker.py``) and the progress store (``infra/progress_store.py``).

Rows keep their append order (``seq``, never reused) and carry a unique key (``event_key``:
the idempotency key of the row, so appending the same row twice keeps one), the sender id
they belong to, and a JSON payload. A writer appends (one fsync'ed transaction), a flusher
reads the head, hands it to the database and removes it only after the database committed.

Several threads and processes may use one file: one SQLite connection per thread, SQLite's
own locking between processes, and :class:`FlusherLock` so one process flushes at a time.
"""
from __future__ import annotations

import fcntl
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, List, Optional, Text, Tuple, Union

Row = Tuple[int, Text, Optional[Text], Text]  # seq, key, sender_id, data


class Spool:
    """The local, durable buffer: one SQLite file, rows in append order."""

    def __init__(self, path: Union[Text, Path], synchronous: Text = "FULL") -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.synchronous = synchronous.upper() if synchronous.upper() in ("FULL", "NORMAL", "OFF") else "FULL"
        self._local = threading.local()
        with self.connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS spool ("
                " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                " event_key TEXT NOT NULL UNIQUE,"
                " sender_id TEXT,"
                " data TEXT NOT NULL,"
                " published_at REAL NOT NULL)"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS spool_sender ON spool (sender_id, seq)")

    def connect(self) -> sqlite3.Connection:
        """One connection per thread (the turn's thread publishes, the flusher flushes)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def append(self, rows: List[Tuple[Text, Optional[Text], Text]]) -> None:
        """``(key, sender_id, data)`` rows, in one transaction; a key already queued is kept once."""
        conn = self.connect()
        now = time.time()
        with conn:  # one transaction (BEGIN ... COMMIT)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT OR IGNORE INTO spool (event_key, sender_id, data, published_at) VALUES (?, ?, ?, ?)",
                [(key, sender, data, now) for key, sender, data in rows],
            )

    def head(self, limit: int) -> List[Row]:
        return self.connect().execute(
            "SELECT seq, event_key, sender_id, data FROM spool ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()

    def of_sender(self, sender_id: Text) -> List[Row]:
        """That sender's rows, oldest first."""
        return self.connect().execute(
            "SELECT seq, event_key, sender_id, data FROM spool WHERE sender_id = ? ORDER BY seq", (sender_id,)
        ).fetchall()

    def remove(self, seqs: List[int]) -> None:
        conn = self.connect()
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM spool WHERE seq = ?", [(s,) for s in seqs])

    def remove_sender(self, sender_id: Text) -> int:
        """Drop every row of that sender; how many there were."""
        conn = self.connect()
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            return conn.execute("DELETE FROM spool WHERE sender_id = ?", (sender_id,)).rowcount

    def pending(self) -> int:
        return int(self.connect().execute("SELECT COUNT(*) FROM spool").fetchone()[0])

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class FlusherLock:
    """``with FlusherLock(path) as leader:`` -- ``leader`` is False while another process
    (or another holder in this one) flushes the same spool. A non-blocking ``flock``."""

    def __init__(self, path: Union[Text, Path]) -> None:
        self.path = Path(path)
        self.handle: Any = None

    def __enter__(self) -> bool:
        self.handle = open(self.path, "a+")
        try:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def __exit__(self, *exc: Any) -> None:
        try:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
        finally:
            self.handle.close()
