"""infra/event_broker.py against a REAL PostgreSQL that this module stops and restarts.

A private cluster (tests/services.py: initdb + pg_ctl on a free port) is used, never the
machine's shared server: stopping that would break other test runs.
"""
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from infra.event_broker import BufferedSQLEventBroker, build_url, event_key
from tests.services import LocalPostgres, free_port, pg_connect

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pg():
    server = LocalPostgres(database="events")
    server.start()
    yield server
    server.remove()


@pytest.fixture
def database(pg):
    """A fresh database per test (name unique), on the private server."""
    name = "ev_" + uuid.uuid4().hex[:10]
    admin = pg_connect(f"postgresql://postgres@127.0.0.1:{pg.port}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return f"postgresql://postgres@127.0.0.1:{pg.port}/{name}"


@pytest.fixture
def spool(tmp_path):
    return tmp_path / "spool" / "events.sqlite"


def make_event(sender, i, kind="user", **extra):
    event = {"sender_id": sender, "event": kind, "timestamp": 1_700_000_000.0 + i / 1000, "text": f"message {i}"}
    event.update(extra)
    return event


def rows(url, sender=None):
    """The events table's rows (none while the table does not exist yet)."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('events') IS NOT NULL")
            if not cur.fetchone()[0]:
                return []
            if sender is None:
                cur.execute("SELECT id, sender_id, data, event_key FROM events ORDER BY id")
            else:
                cur.execute("SELECT id, sender_id, data, event_key FROM events WHERE sender_id = %s ORDER BY id",
                            (sender,))
            return cur.fetchall()
    finally:
        conn.close()


def wait_until(predicate, timeout=60.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def dead_url():
    return f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"


# --------------------------------------------------------------------------- publishing
def test_publish_never_fails_or_waits_for_a_dead_database(spool):
    broker = BufferedSQLEventBroker(dead_url(), spool_path=spool, start=False, connect_timeout=1)
    for i in range(50):
        broker.publish(make_event("s1", i))  # no exception, no network: only the spool
    assert broker.pending() == 50
    with pytest.raises(sa.exc.OperationalError):
        broker.flush()
    assert broker.pending() == 50  # nothing left the spool
    broker.stop()


def test_events_reach_the_table_in_publish_order_with_rasas_schema(database, spool):
    broker = BufferedSQLEventBroker(database, spool_path=spool, start=False)
    events = [make_event("a", i) for i in range(5)] + [make_event("b", i, kind="bot") for i in range(3)]
    for event in events:
        broker.publish(event)
    assert broker.flush_all() == 8
    stored = rows(database)
    assert [json.loads(data) for _, _, data, _ in stored] == events
    # `data` is exactly what Rasa's SQLEventBroker writes: json.dumps(event)
    assert [data for _, _, data, _ in stored] == [json.dumps(e) for e in events]
    assert [sender for _, sender, _, _ in stored] == ["a"] * 5 + ["b"] * 3
    assert [key for _, _, _, key in stored] == [event_key(e) for e in events]
    engine = sa.create_engine(database)
    try:
        inspector = sa.inspect(engine)
        columns = {c["name"]: c for c in inspector.get_columns("events")}
        assert set(columns) == {"id", "sender_id", "data", "event_key"}
        unique = [i for i in inspector.get_indexes("events") if i["unique"]]
        assert any(i["column_names"] == ["event_key"] for i in unique)
    finally:
        engine.dispose()
    assert broker.pending() == 0
    broker.stop()


def test_the_same_event_is_stored_once(database, spool):
    broker = BufferedSQLEventBroker(database, spool_path=spool, start=False)
    event = make_event("dup", 1)
    broker.publish(event)
    broker.publish(dict(event))  # same event again before the flush: one spool row
    assert broker.pending() == 1
    broker.flush_all()
    broker.publish(dict(event))  # and after it: the unique index ignores it
    broker.flush_all()
    assert len(rows(database, "dup")) == 1
    broker.publish(make_event("dup", 2))  # a different event is of course stored
    broker.flush_all()
    assert len(rows(database, "dup")) == 2
    broker.stop()


def test_a_crash_between_commit_and_spool_delete_duplicates_nothing(database, spool, monkeypatch):
    broker = BufferedSQLEventBroker(database, spool_path=spool, start=False)
    for i in range(10):
        broker.publish(make_event("crash", i))

    def crash(seqs):
        raise RuntimeError("process killed right after the database commit")

    monkeypatch.setattr(broker.spool, "remove", crash)
    with pytest.raises(RuntimeError):
        broker.flush()
    assert len(rows(database, "crash")) == 10  # committed ...
    assert broker.pending() == 10  # ... and still spooled
    broker.stop()

    restarted = BufferedSQLEventBroker(database, spool_path=spool, start=False)  # the next process
    restarted.flush_all()
    stored = rows(database, "crash")
    assert [json.loads(d)["text"] for _, _, d, _ in stored] == [f"message {i}" for i in range(10)]
    assert restarted.pending() == 0
    restarted.stop()


def test_a_restarted_process_flushes_what_the_last_one_left(database, spool):
    first = BufferedSQLEventBroker(dead_url(), spool_path=spool, start=False, connect_timeout=1)
    for i in range(7):
        first.publish(make_event("left", i))
    first.stop()  # the process ends with 7 events spooled

    second = BufferedSQLEventBroker(database, spool_path=spool, max_backoff=0.5)  # flusher thread on
    try:
        assert wait_until(lambda: second.pending() == 0)
        assert len(rows(database, "left")) == 7
    finally:
        second.stop()


def test_database_stopped_and_restarted_under_a_running_flusher(pg, spool):
    """The real thing: pg_ctl stop -m fast, events keep coming, pg_ctl start."""
    url = pg.url
    broker = BufferedSQLEventBroker(url, spool_path=spool, max_backoff=0.5, connect_timeout=2)
    sender = "outage-" + uuid.uuid4().hex[:6]
    try:
        before = [make_event(sender, i) for i in range(20)]
        for event in before:
            broker.publish(event)
        assert wait_until(lambda: len(rows(url, sender)) == 20)

        pg.stop("fast")
        during = [make_event(sender, i) for i in range(20, 60)]
        for event in during:
            broker.publish(event)  # returns at once, database or not
        time.sleep(1.5)  # the flusher tries and fails meanwhile
        assert broker.pending() == 40
        assert broker.failures >= 1 and broker.last_error

        pg.start()
        assert wait_until(lambda: broker.pending() == 0, timeout=90)
        stored = rows(url, sender)
        assert [json.loads(d) for _, _, d, _ in stored] == before + during  # all, once, in order
        assert len({key for _, _, _, key in stored}) == 60
        ids = [row_id for row_id, _, _, _ in stored]
        assert ids == sorted(ids)
    finally:
        if not pg.running():
            pg.start()
        broker.stop()


def test_two_processes_sharing_one_spool_store_each_event_once(database, spool):
    a = BufferedSQLEventBroker(database, spool_path=spool, start=False)
    b = BufferedSQLEventBroker(database, spool_path=spool, start=False)
    for i in range(30):
        (a if i % 2 else b).publish(make_event("shared", i))
    a.start()
    b.start()
    try:
        assert wait_until(lambda: a.pending() == 0)
        stored = rows(database, "shared")
        assert sorted(json.loads(d)["text"] for _, _, d, _ in stored) == sorted(f"message {i}" for i in range(30))
        assert len(stored) == 30
    finally:
        a.stop()
        b.stop()


def test_disk_errors_keep_events_in_memory_until_the_spool_works(database, spool, monkeypatch):
    broker = BufferedSQLEventBroker(database, spool_path=spool, start=False)
    real_append = broker.spool.append

    def full_disk(rows_):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(broker.spool, "append", full_disk)
    broker.publish(make_event("disk", 1))  # no exception
    assert broker.pending() == 1
    monkeypatch.setattr(broker.spool, "append", real_append)
    broker.publish(make_event("disk", 2))
    broker.flush_all()
    assert [json.loads(d)["text"] for _, _, d, _ in rows(database, "disk")] == ["message 1", "message 2"]
    broker.stop()


# --------------------------------------------------------------------------- Rasa
def test_rasa_loads_it_from_the_endpoint_config(database, spool):
    from rasa.core.brokers.broker import EventBroker
    from rasa.utils.endpoints import EndpointConfig
    from sqlalchemy.engine import make_url

    parsed = make_url(database)
    config = EndpointConfig(
        url=parsed.host, type="infra.event_broker.BufferedSQLEventBroker", dialect="postgresql",
        port=str(parsed.port), db=parsed.database, username="postgres", password="", sslmode="",
        spool_path=str(spool),
    )
    broker = asyncio.run(EventBroker.create(config))
    assert isinstance(broker, BufferedSQLEventBroker)
    try:
        broker.publish(make_event("cfg", 1))
        assert wait_until(lambda: len(rows(database, "cfg")) == 1)
    finally:
        asyncio.run(broker.close())


def test_rasas_own_sql_broker_still_works_on_the_table(database, spool):
    """Both ways: our columns do not break Rasa's broker, Rasa's table takes our column."""
    from rasa.core.brokers.sql import SQLEventBroker
    from sqlalchemy.engine import make_url

    parsed = make_url(database)
    rasa_broker = SQLEventBroker(dialect="postgresql", host=parsed.host, port=parsed.port, db=parsed.database,
                                 username="postgres")
    rasa_broker.publish(make_event("rasa", 1))  # creates Rasa's table (no event_key)
    ours = BufferedSQLEventBroker(database, spool_path=spool, start=False)
    ours.publish(make_event("ours", 1))
    ours.flush_all()  # adds event_key + unique index to Rasa's table
    rasa_broker.publish(make_event("rasa", 2))  # Rasa's broker writes NULL event_key: fine
    stored = rows(database)
    assert [(s, json.loads(d)["text"], k is None) for _, s, d, k in stored] == [
        ("rasa", "message 1", True), ("ours", "message 1", False), ("rasa", "message 2", True)]
    rasa_broker.engine.dispose()
    ours.stop()


def test_build_url():
    url = build_url("postgresql", "db.example", "5433", "bakame", "bk", "p@ss word", "require")
    assert (url.drivername, url.username, url.password, url.host, url.port, url.database, dict(url.query)) == \
        ("postgresql", "bk", "p@ss word", "db.example", 5433, "bakame", {"sslmode": "require"})
    assert build_url("postgresql", "h", "", "d", "", "", "").render_as_string() == "postgresql://h/d"
    assert build_url("sqlite", db="/tmp/x.db").render_as_string() == "sqlite:////tmp/x.db"


def test_event_key_covers_sender_type_and_timestamp():
    base = make_event("k", 1)
    assert event_key(base) == event_key(json.loads(json.dumps(base)))  # survives a JSON round trip
    assert event_key(base) == event_key(dict(reversed(list(base.items()))))  # key order irrelevant
    for change in ({"sender_id": "other"}, {"event": "bot"}, {"timestamp": base["timestamp"] + 1e-6}):
        assert event_key({**base, **change}) != event_key(base)


def test_settings_prepare_creates_the_database_once(pg):
    """`make run-prod` runs `python -m infra.settings prepare` before starting."""
    name = "prep_" + uuid.uuid4().hex[:8]
    env = {**os.environ, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg.port}/{name}"}
    for expected in ("created", "exists"):
        result = subprocess.run([sys.executable, "-m", "infra.settings", "prepare"], capture_output=True,
                                text=True, env=env, timeout=60, cwd=ROOT)
        assert result.returncode == 0 and f"database '{name}' {expected}" in result.stdout, result.stderr
    bad = subprocess.run([sys.executable, "-m", "infra.settings", "prepare"], capture_output=True, text=True,
                         env={**env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"},
                         timeout=60, cwd=ROOT)
    assert bad.returncode == 1 and "could not prepare the database" in bad.stderr
