"""infra/progress_store.py over SQLite (tmp file) and a REAL PostgreSQL.

PostgreSQL: ``BAKAME_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``)
gets a uniquely named schema for this run, dropped afterwards. If that server is not
reachable (or ``BAKAME_TEST_PG_START=1``), a private cluster is created with the
machine's ``initdb``/``pg_ctl`` on a free port and removed afterwards. No server and
no PostgreSQL binaries -> the PostgreSQL tests FAIL (they are never skipped or mocked).
"""
import asyncio
import os
import sqlite3
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from infra import progress_store as ps
from infra.progress_store import (
    LearnerProfile,
    ProgressStore,
    get_store,
    learner_progress,
    normalise_url,
    reset_store,
    validate_learner_id,
)
from actions.tutoring.base import Progress
from tests.services import DEFAULT_PG_URL, LocalPostgres, free_port, pg_connect, pg_reachable

# ----------------------------------------------------------------------- PostgreSQL
# The shared helpers (reachability, private cluster via initdb/pg_ctl) live in tests/services.py.
_pg_connect = pg_connect
_pg_reachable = pg_reachable
_free_port = free_port


@pytest.fixture(scope="session")
def pg_server():
    """(url, schema): a real PostgreSQL and a schema unique to this test run."""
    url = os.environ.get("BAKAME_TEST_PG_URL") or DEFAULT_PG_URL
    local = None
    if os.environ.get("BAKAME_TEST_PG_START") == "1" or not _pg_reachable(url):
        local = LocalPostgres()
        try:
            url = local.start()
        except subprocess.CalledProcessError as exc:
            local.remove()
            pytest.fail(f"could not start a local PostgreSQL: {exc.output}")
    schema = f"bakame_test_{uuid.uuid4().hex[:12]}"
    try:
        yield url, schema
    finally:
        try:
            conn = _pg_connect(url)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.close()
        finally:
            if local is not None:
                local.remove()


# ----------------------------------------------------------------------- fixtures
@pytest.fixture(params=["sqlite", "postgresql"])
def db_config(request, tmp_path):
    spool_path = str(tmp_path / "progress-queue.sqlite")
    if request.param == "sqlite":
        return {"url": f"sqlite:///{tmp_path / 'progress.db'}", "schema": None, "spool_path": spool_path}
    url, schema = request.getfixturevalue("pg_server")
    return {"url": url, "schema": schema, "spool_path": spool_path}


@pytest_asyncio.fixture
async def store(db_config):
    store = ProgressStore(**db_config)
    try:
        yield store
    finally:
        await store.dispose()


def new_id():
    """Unique per test (the PostgreSQL schema is shared by the whole run)."""
    return "lrn_" + uuid.uuid4().hex


async def count_rows(store, learner_id):
    engine = await store._get_engine()
    async with engine.connect() as conn:
        result = await conn.execute(
            select(func.count()).select_from(learner_progress)
            .where(learner_progress.c.learner_id == learner_id)
        )
        return result.scalar_one()


def sample_progress(**overrides):
    values = dict(attempts=7, correct=5, level=2, points=50, streak=3, misses=0,
                  seen=["add-3-4", "sub-9-2", "umubare-\u00e9"],
                  last_seen=datetime(2025, 3, 1, 8, 30, 15, 123000, tzinfo=timezone.utc))
    values.update(overrides)
    return Progress(**values)


# ----------------------------------------------------------------------- both backends
@pytest.mark.asyncio
async def test_round_trip(store):
    learner = new_id()
    await store.save(learner, "math", sample_progress())
    loaded = await store.load(learner, "math")
    assert loaded == sample_progress()
    assert loaded.accuracy == pytest.approx(5 / 7)
    assert loaded.last_seen.tzinfo is not None


@pytest.mark.asyncio
async def test_missing_row_is_fresh_progress(store):
    assert await store.load(new_id(), "math") == Progress()
    assert await store.summary(new_id()) == {}
    assert await store.load_profile(new_id()) is None


@pytest.mark.asyncio
async def test_survives_restart(db_config):
    learner = new_id()
    first = ProgressStore(**db_config)
    await first.save(learner, "english", sample_progress(points=99))
    await first.save_profile(learner, name="Uwase", language="rw")
    await first.dispose()

    second = ProgressStore(**db_config)  # a new process/instance, same database
    try:
        assert await second.load(learner, "english") == sample_progress(points=99)
        profile = await second.load_profile(learner)
        assert (profile.name, profile.language) == ("Uwase", "rw")
    finally:
        await second.dispose()


@pytest.mark.asyncio
async def test_upsert_replaces_single_row(store):
    learner = new_id()
    await store.save(learner, "math", sample_progress())
    updated = sample_progress(attempts=8, correct=6, streak=4, points=60, level=3,
                              last_seen=datetime(2025, 3, 2, tzinfo=timezone.utc))
    await store.save(learner, "math", updated)
    assert await store.load(learner, "math") == updated
    assert await count_rows(store, learner) == 1


@pytest.mark.asyncio
async def test_seen_list(store):
    learner = new_id()
    progress = await store.load(learner, "reading")
    assert progress.seen == []
    for item in ("story-1", "story-2", "inkuru-\u2019", "story-1b"):
        progress.seen.append(item)
        await store.save(learner, "reading", progress)
        progress = await store.load(learner, "reading")
    assert progress.seen == ["story-1", "story-2", "inkuru-\u2019", "story-1b"]
    progress.seen = []
    await store.save(learner, "reading", progress)
    assert (await store.load(learner, "reading")).seen == []


@pytest.mark.asyncio
async def test_summary(store):
    learner, other = new_id(), new_id()
    await store.save(learner, "math", sample_progress(points=10))
    await store.save(learner, "english", sample_progress(points=20, last_seen=None))
    await store.save(learner, "debate", Progress())
    await store.save(other, "math", sample_progress(points=99))
    summary = await store.summary(learner)
    assert sorted(summary) == ["debate", "english", "math"]
    assert summary["math"].points == 10
    assert summary["english"] == sample_progress(points=20, last_seen=None)
    assert summary["debate"] == Progress()


@pytest.mark.asyncio
async def test_profile_upsert_keeps_unchanged_fields(store):
    learner = new_id()
    await store.save_profile(learner, name="  Uwase   Marie ", language="RW")
    first = await store.load_profile(learner)
    assert isinstance(first, LearnerProfile)
    assert (first.learner_id, first.name, first.language) == (learner, "Uwase Marie", "rw")
    await asyncio.sleep(0.01)
    await store.save_profile(learner, language="en")
    second = await store.load_profile(learner)
    assert (second.name, second.language) == ("Uwase Marie", "en")
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    await store.save_profile(learner, name="Marie")
    assert (await store.load_profile(learner)).language == "en"


@pytest.mark.asyncio
async def test_naive_datetimes_are_taken_as_utc(store):
    learner = new_id()
    await store.save(learner, "math", sample_progress(last_seen=datetime(2025, 1, 1, 12, 0)))
    loaded = await store.load(learner, "math")
    assert loaded.last_seen == datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
    kigali = timezone(timedelta(hours=2))
    await store.save(learner, "math", sample_progress(last_seen=datetime(2025, 1, 1, 14, 0, tzinfo=kigali)))
    assert (await store.load(learner, "math")).last_seen == datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.asyncio
async def test_concurrent_saves_use_the_pool(store):
    learner = new_id()
    modules = [f"module{i}" for i in range(20)]
    await asyncio.gather(*(store.save(learner, m, Progress(points=i)) for i, m in enumerate(modules)))
    summary = await store.summary(learner)
    assert {m: p.points for m, p in summary.items()} == {m: i for i, m in enumerate(modules)}


@pytest.mark.asyncio
async def test_delete_learner(store):
    learner, other = new_id(), new_id()
    await store.save(learner, "math", sample_progress())
    await store.save_profile(learner, name="Keza", language="rw")
    await store.save(other, "math", sample_progress())
    await store.delete_learner(learner)
    assert await store.summary(learner) == {}
    assert await store.load_profile(learner) is None
    assert await store.load(other, "math") == sample_progress()


PHONE_IDS = ["+250788123456", "250788123456", "0788123456", "+250 788 123 456",
             "078-812-3456", "whatsapp:+250788123456", "tel:+250788123456", " 0788123456 "]


@pytest.mark.asyncio
@pytest.mark.parametrize("bad_id", PHONE_IDS)
async def test_raw_phone_numbers_are_refused(store, bad_id):
    with pytest.raises(ValueError, match="phone number"):
        await store.save(bad_id, "math", sample_progress())
    with pytest.raises(ValueError, match="phone number"):
        await store.load(bad_id, "math")
    with pytest.raises(ValueError, match="phone number"):
        await store.summary(bad_id)
    with pytest.raises(ValueError, match="phone number"):
        await store.save_profile(bad_id, name="Keza")
    with pytest.raises(ValueError, match="phone number"):
        await store.load_profile(bad_id)


@pytest.mark.asyncio
async def test_phone_number_as_name_is_refused(store):
    with pytest.raises(ValueError, match="phone number"):
        await store.save_profile(new_id(), name="0788 123 456")


@pytest.mark.asyncio
async def test_invalid_ids_and_modules(store):
    for bad in ("", "   ", None, 12345, "x" * 129):
        with pytest.raises(ValueError):
            await store.load(bad, "math")
    for bad in ("", None, "m" * 65):
        with pytest.raises(ValueError):
            await store.load(new_id(), bad)


@pytest.mark.asyncio
async def test_unreachable_database_queues_writes_and_never_pretends_to_know(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    stores = [ProgressStore(f"postgresql://postgres@127.0.0.1:{_free_port()}/test",
                            spool_path=str(tmp_path / "q1.sqlite")),
              ProgressStore(f"sqlite:///{blocker}/sub/p.db",  # parent is a file
                            spool_path=str(tmp_path / "q2.sqlite"))]
    for store in stores:
        learner, stranger = new_id(), new_id()
        assert await store.load(learner, "math") == Progress()  # nothing known: fresh
        await store.save(learner, "math", Progress(attempts=1, correct=1, points=10))
        await store.save_profile(learner, name="Keza")
        assert store.pending_writes() == 2  # kept, not lost
        assert (await store.load(learner, "math")).points == 10  # the queued state is read
        assert (await store.summary(learner))["math"].points == 10
        assert (await store.load_profile(learner)).name == "Keza"
        with pytest.raises(ps.ProgressStoreError):  # unknown is not "not started"
            await store.summary(stranger)
        with pytest.raises(ps.ProgressStoreError):
            await store.load_profile(stranger)
        with pytest.raises(ps.ProgressStoreError):
            await store.flush()
        await store.dispose()


# ----------------------------------------------------------------------- SQLite / config
@pytest.mark.parametrize("good_id", [
    "default", "3f9a0c12b7e4d5a6c8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f",
    "a1234567890123456789bcd", str(uuid.uuid4()), "wa_9f8e7d6c",
])
def test_hashed_and_ordinary_ids_are_accepted(good_id):
    assert validate_learner_id(good_id) == good_id


@pytest.mark.asyncio
async def test_sqlite_file_layout(tmp_path):
    path = tmp_path / "nested" / "dir" / "p.db"
    store = ProgressStore(f"sqlite:///{path}", spool_path=str(tmp_path / "q.sqlite"))
    learner = new_id()
    try:
        await store.save(learner, "math", sample_progress())
    finally:
        await store.dispose()
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"learner_progress", "learner_profile"} <= tables
        seen = conn.execute("SELECT seen FROM learner_progress WHERE learner_id=?", (learner,)).fetchone()[0]
        assert seen == '["add-3-4", "sub-9-2", "umubare-\u00e9"]'
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO learner_progress (learner_id, module, attempts, correct, level, "
                         "points, streak, misses, seen, updated_at) "
                         "VALUES (?, 'math', 0, 0, 1, 0, 0, 0, '[]', '2025-01-01')", (learner,))


def test_url_selection_and_normalisation(monkeypatch, tmp_path):
    for name in ("PROGRESS_DB_URL", "DATABASE_URL", "PROGRESS_DB_PATH", "PROGRESS_DB_SCHEMA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    store = ProgressStore()
    assert store.dialect == "sqlite"
    assert store.url.drivername == "sqlite+aiosqlite"
    assert store.url.database == str(tmp_path / "bakame_progress.db")

    monkeypatch.setenv("PROGRESS_DB_PATH", str(tmp_path / "other.db"))
    assert ProgressStore().url.database == str(tmp_path / "other.db")

    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw@db.example:5433/bakame?sslmode=require")
    store = ProgressStore()
    assert store.dialect == "postgresql"
    assert store.url.drivername == "postgresql+asyncpg"
    assert (store.url.host, store.url.port, store.url.database) == ("db.example", 5433, "bakame")
    assert "pw" not in repr(store)

    monkeypatch.setenv("PROGRESS_DB_URL", "sqlite:///" + str(tmp_path / "wins.db"))
    assert ProgressStore().url.database == str(tmp_path / "wins.db")

    for url in ("postgresql://h/d", "postgresql+psycopg2://h/d", "postgresql+asyncpg://h/d"):
        assert normalise_url(url).drivername == "postgresql+asyncpg"
    with pytest.raises(ValueError):
        normalise_url("mysql://h/d")


@pytest.mark.asyncio
async def test_sslmode_becomes_asyncpg_ssl(monkeypatch):
    store = ProgressStore("postgresql://u@127.0.0.1:1/d?sslmode=require")
    engine = store._make_engine()
    try:
        assert "sslmode" not in str(engine.url)
    finally:
        await engine.dispose()


@pytest.mark.asyncio
async def test_get_store_is_process_wide(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PROGRESS_DB_URL", f"sqlite:///{tmp_path / 'g.db'}")
    monkeypatch.setenv("PROGRESS_SPOOL_PATH", str(tmp_path / "g-queue.sqlite"))
    reset_store()
    try:
        store = get_store()
        assert store is get_store() is ps.get_store()
        learner = new_id()
        await store.save(learner, "math", Progress(points=5))
        assert (await get_store().load(learner, "math")).points == 5
        await store.dispose()
    finally:
        reset_store()
