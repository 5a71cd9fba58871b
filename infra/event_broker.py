"""Rasa events into PostgreSQL's ``events`` table -- none lost, none duplicated, and a
turn never waits for (or fails because of) the database::

    event_broker:
      type: infra.event_broker.BufferedSQLEventBroker
      dialect: postgresql
      url: ${POSTGRES_HOST}       # plus port, db, username, password, sslmode
      spool_path: ${EVENT_SPOOL_PATH}

Rasa's own ``SQLEventBroker`` commits every event synchronously inside the turn: with the
database down or restarting, the turn fails. Here:

1. ``publish`` (inside the turn) appends the event to a local SQLite **spool** file and
   returns: one small, fsync'ed insert (``synchronous=FULL``), no network. Each event gets
   an **idempotency key**: SHA-256 of its canonical JSON, which includes ``sender_id``,
   ``event`` (the type) and ``timestamp``.
2. A background thread **flushes** the spool in publish order, in batches (woken by a
   publish, it waits ``flush_delay`` seconds first, so the turns of that moment share one
   transaction instead of one each: issue 16): one transaction
   ``INSERT ... ON CONFLICT (event_key) DO NOTHING`` into ``events``, then the batch is
   deleted from the spool. Database down: the rows stay in the spool and the flush is
   retried with backoff (capped at ``max_backoff`` seconds) until it is back.
3. **No duplicates**: a crash between the PostgreSQL commit and the spool delete, two
   processes flushing one spool, or the same event published twice all end in the unique
   index on ``event_key``. **No loss**: an event leaves the spool only after PostgreSQL
   committed it; a restarted process flushes what the previous one left. Before the spool,
   the tracker store keeps each turn's events in an outbox in Redis, written with the
   tracker itself and removed once ``publish_rows`` reports them on disk
   (:mod:`infra.tracker_store`): a process killed between its tracker write and its spool
   write loses nothing either -- another process's sweep publishes them (a turn published
   twice is kept once, as above).

The ``events`` table keeps Rasa's schema (``id`` serial, ``sender_id``, ``data`` = the
event as JSON, exactly what ``SQLEventBroker`` writes) plus one nullable column
``event_key`` with a unique index, so Rasa's tooling and Rasa's own broker still work on it.
``id`` is the order rows reached PostgreSQL: with several Rasa processes (each its own spool)
a learner's events may arrive out of turn order, so readers order by the event's
``timestamp`` (``scripts/report.py`` does).
Several processes may share one spool file (SQLite locking; one flushes at a time). The spool
itself (``infra/spool.py``) is shared with the progress store's write queue.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional, Text, Tuple, Union

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

from core.config import env
from infra.spool import FlusherLock, Spool

logger = logging.getLogger(__name__)

DEFAULT_SPOOL_PATH = ".spool/events.sqlite"
DEFAULT_BATCH_SIZE = 500
DEFAULT_FLUSH_INTERVAL = 2.0  # seconds between flushes when nothing wakes the flusher
DEFAULT_FLUSH_DELAY = 0.25  # seconds a publish waits for others before the flush (events are spooled already)
DEFAULT_MAX_BACKOFF = 5.0  # seconds between retries while the database is down
DEFAULT_CONNECT_TIMEOUT = 5
CLOSE_FLUSH_TIMEOUT = 10.0
EVENT_KEY_INDEX = "uq_events_event_key"

metadata = sa.MetaData()
# Rasa's SQLEventBroker.SQLBrokerEvent (id, sender_id, data) + event_key.
events_table = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255)),
    sa.Column("data", sa.Text),
    sa.Column("event_key", sa.String(64), nullable=True),
)


def event_key(event: Dict[Text, Any]) -> Text:
    """Idempotency key: SHA-256 of the canonical JSON of the whole event (so it covers
    sender_id, type and timestamp; two events with the same key are the same event)."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


SpoolRow = Tuple[Text, Optional[Text], Text]  # event_key, sender_id, the event as JSON


def spool_rows(events: List[Dict[Text, Any]]) -> List[SpoolRow]:
    """The spool's rows for these events, each serialised once (the tracker store also puts
    these JSON texts in its outbox); an event that is not JSON-serialisable is dropped, as
    Rasa's SQL broker would fail on it too."""
    rows = []
    for event in events:
        try:
            rows.append((event_key(event), event.get("sender_id"), json.dumps(event)))
        except Exception:  # noqa: BLE001
            logger.exception("event could not be serialised; dropped")
    return rows


def build_url(
    dialect: Text = "postgresql",
    host: Optional[Text] = None,
    port: Any = None,
    db: Text = "events.db",
    username: Optional[Text] = None,
    password: Optional[Text] = None,
    sslmode: Optional[Text] = None,
) -> URL:
    """A SQLAlchemy URL from the parts (as Rasa's SQL stores take them)."""
    dialect = (dialect or "postgresql").strip()
    if dialect in ("postgres", "postgresql+asyncpg"):
        dialect = "postgresql"
    if dialect.startswith("sqlite"):
        return URL.create("sqlite", database=db or None)
    query = {"sslmode": sslmode} if sslmode else {}
    return URL.create(
        dialect,
        username=username or None,
        password=password or None,
        host=host or None,
        port=int(port) if port not in (None, "") else None,
        database=db or None,
        query=query,
    )


class BufferedSQLEventBroker(EventBroker):
    """See the module documentation."""

    def __init__(
        self,
        url: Union[Text, URL],
        spool_path: Union[Text, Path] = DEFAULT_SPOOL_PATH,
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        flush_delay: float = DEFAULT_FLUSH_DELAY,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        spool_synchronous: Text = "FULL",
        start: bool = True,
    ) -> None:
        self.url = sa.engine.make_url(url) if isinstance(url, str) else url
        self.spool = Spool(spool_path or DEFAULT_SPOOL_PATH, spool_synchronous)
        self.batch_size = max(1, int(batch_size))
        self.flush_interval = max(0.05, float(flush_interval))
        self.flush_delay = max(0.0, float(flush_delay))
        self.max_backoff = max(0.1, float(max_backoff))
        self.connect_timeout = connect_timeout
        self._engine: Optional[Engine] = None
        self._schema_ready = False
        self._memory: Deque[Tuple[Text, Optional[Text], Text]] = deque(maxlen=100_000)
        self._memory_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._lock_file = self.spool.path.with_name(self.spool.path.name + ".flush.lock")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.failures = 0  # consecutive failed flushes
        self.flushed = 0  # rows handed to the database by this process
        self.last_error: Optional[Text] = None
        if start:
            self.start()

    def __repr__(self) -> Text:
        return f"BufferedSQLEventBroker({self.url.render_as_string(hide_password=True)!r}, spool={str(self.spool.path)!r})"

    # ------------------------------------------------------------------ Rasa API
    @classmethod
    async def from_endpoint_config(
        cls, broker_config: EndpointConfig, event_loop: Any = None
    ) -> "BufferedSQLEventBroker":
        kwargs = dict(broker_config.kwargs)
        url = kwargs.pop("db_url", None) or build_url(
            dialect=kwargs.pop("dialect", "postgresql"),
            host=broker_config.url,
            port=kwargs.pop("port", None),
            db=kwargs.pop("db", "events.db"),
            username=kwargs.pop("username", None),
            password=kwargs.pop("password", None),
            sslmode=kwargs.pop("sslmode", None),
        )
        options: Dict[Text, Any] = {}
        for name, kind in (("batch_size", int), ("flush_interval", float), ("flush_delay", float),
                           ("max_backoff", float), ("connect_timeout", float)):
            value = kwargs.pop(name, None)
            if value not in (None, ""):
                options[name] = kind(value)
        if kwargs.get("spool_synchronous"):
            options["spool_synchronous"] = str(kwargs.pop("spool_synchronous"))
        spool_path = kwargs.pop("spool_path", None) or env("EVENT_SPOOL_PATH", default=DEFAULT_SPOOL_PATH)
        broker = cls(url, spool_path=spool_path, **options)
        logger.info("event broker: %r (%d event(s) waiting in the spool)", broker, broker.spool.pending())
        return broker

    def publish(self, event: Dict[Text, Any]) -> None:
        """Spool the event and return; never raises (a turn must not fail here)."""
        self.publish_many([event])

    def publish_many(self, events: List[Dict[Text, Any]]) -> bool:
        """Spool several events in one transaction (one fsync: a whole turn at once)."""
        return self.publish_rows(spool_rows(events))

    def publish_rows(self, rows: List[SpoolRow]) -> bool:
        """Spool rows made by :func:`spool_rows`; never raises. ``True`` when they are on disk,
        ``False`` when the spool failed and they are kept in memory only (until it works)."""
        if not rows:
            return True
        durable = True
        try:
            self._drain_memory()
            self.spool.append(rows)
        except Exception:  # noqa: BLE001 - disk full, file locked...: keep them in memory
            logger.exception("could not write the event spool; keeping %d event(s) in memory", len(rows))
            with self._memory_lock:
                self._memory.extend(rows)
            durable = False
        self._wake.set()
        return durable

    def is_ready(self) -> bool:
        return True

    async def close(self) -> None:
        """Stop the flusher after one last flush (bounded); what is left stays spooled."""
        import asyncio

        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join, CLOSE_FLUSH_TIMEOUT)
        self._dispose()

    # ------------------------------------------------------------------ flushing
    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="event-spool-flusher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = CLOSE_FLUSH_TIMEOUT) -> None:
        """Synchronous close (tests, scripts)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._dispose()

    def pending(self) -> int:
        with self._memory_lock:
            in_memory = len(self._memory)
        return self.spool.pending() + in_memory

    def _run(self) -> None:
        while True:
            try:
                flushed = self.flush()
                if self.failures:
                    logger.warning("events database is back after %d failed flush(es)", self.failures)
                self.failures = 0
                self.last_error = None
                if flushed >= self.batch_size:
                    continue  # more waiting: no pause
            except Exception as exc:  # noqa: BLE001 - any database problem: retry later
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                if self.failures == 1:
                    logger.warning("events database unavailable (%s); events are kept in %s",
                                   type(exc).__name__, self.spool.path)
                self._dispose()
                if self._stop.is_set():
                    return
                self._stop.wait(min(self.max_backoff, 0.25 * (2 ** min(self.failures - 1, 10))))
                continue
            if self._stop.is_set():
                return
            if self._wake.wait(self.flush_interval) and self.flush_delay:
                self._stop.wait(self.flush_delay)  # let the other turns of this moment join the batch
            self._wake.clear()

    def flush(self) -> int:
        """Move one batch from the spool into the database; the number of rows moved."""
        with self._flush_lock:
            self._drain_memory()
            with self._exclusive_flusher() as leader:
                if not leader:  # another process is flushing this spool right now
                    return 0
                rows = self.spool.head(self.batch_size)
                if not rows:
                    return 0
                engine = self._get_engine()
                self._ensure_schema(engine)
                values = [{"sender_id": sender, "data": data, "event_key": key} for _, key, sender, data in rows]
                with engine.begin() as conn:
                    conn.execute(self._insert_ignoring_duplicates(engine), values)
                self.spool.remove([seq for seq, _, _, _ in rows])
                self.flushed += len(rows)
                return len(rows)

    def flush_all(self, timeout: float = 30.0) -> int:
        """Flush until the spool is empty (tests, scripts); raises the last database error."""
        deadline = time.monotonic() + timeout
        total = 0
        while self.pending():
            total += self.flush()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.pending()} event(s) still spooled after {timeout} s")
        return total

    def _insert_ignoring_duplicates(self, engine: Engine) -> Any:
        if engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # pragma: no cover - only PostgreSQL and SQLite are supported
            raise ValueError(f"unsupported events database {engine.dialect.name!r}")
        return insert(events_table).on_conflict_do_nothing(index_elements=["event_key"])

    def _drain_memory(self) -> None:
        with self._memory_lock:
            if not self._memory:
                return
            rows = list(self._memory)
            self.spool.append(rows)  # raises (and keeps them) if the disk still fails
            self._memory.clear()

    def _exclusive_flusher(self) -> FlusherLock:
        return FlusherLock(self._lock_file)

    # ------------------------------------------------------------------ database
    def _get_engine(self) -> Engine:
        if self._engine is None:
            kwargs: Dict[Text, Any] = {"pool_pre_ping": True, "future": True}
            if self.url.get_backend_name() == "postgresql":
                kwargs.update(
                    pool_size=1, max_overflow=1, pool_recycle=1800,
                    connect_args={"connect_timeout": int(self.connect_timeout),
                                  "application_name": "bakame-events",
                                  "options": "-c statement_timeout=30000"},
                )
            self._engine = sa.create_engine(self.url, **kwargs)
        return self._engine

    def _ensure_schema(self, engine: Engine) -> None:
        if self._schema_ready:
            return
        ensure_events_table(engine)
        self._schema_ready = True

    def _dispose(self) -> None:
        engine, self._engine = self._engine, None
        self._schema_ready = False
        if engine is not None:
            try:
                engine.dispose()
            except Exception:  # noqa: BLE001
                pass


def ensure_events_table(engine: Engine) -> None:
    """Rasa's ``events`` table (created if missing) with the ``event_key`` column and its
    unique index added if missing. Safe when several processes run it at once."""
    for attempt in range(3):
        try:
            metadata.create_all(engine, checkfirst=True)
            columns = {c["name"] for c in sa.inspect(engine).get_columns("events")}
            with engine.begin() as conn:
                if "event_key" not in columns:
                    conn.execute(sa.text("ALTER TABLE events ADD COLUMN event_key VARCHAR(64)"))
                conn.execute(sa.text(f"CREATE UNIQUE INDEX IF NOT EXISTS {EVENT_KEY_INDEX} ON events (event_key)"))
            return
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
            # another process created the table/column/index at the same moment
            if attempt == 2:
                raise
            time.sleep(0.2)
