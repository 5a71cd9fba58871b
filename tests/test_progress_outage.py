"""Progress survives a database outage: writes are queued durably and applied once, in
order, when the database is back; reads meanwhile show the last known state.

The outage tests stop and restart a PRIVATE PostgreSQL cluster (tests/services.py) and drive
the real math tutor through the Rasa actions, as the action server does. The ordering and
idempotency tests also run on SQLite.
"""
import asyncio
import time
import uuid
from datetime import datetime, timezone

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import llm, messages
from infra import progress_store
from actions.module_actions import ActionCheckProgress, ActionStartModule, ValidateTutorForm
from infra.progress_store import ProgressStore, ProgressStoreError
from infra.progress_writes import LearnerView, merge, overlay, progress_write
from actions.tutoring.base import Progress
from tests.services import LocalPostgres, free_port, pg_connect

DOMAIN = {"slots": {}, "forms": {"tutor_form": {"required_slots": ["answer"]}}}


@pytest.fixture(scope="module")
def pg():
    server = LocalPostgres(database="progress")
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def up(pg):
    """The private server, running (a failed test may have left it stopped)."""
    if not pg.running():
        pg.start()
    return pg


@pytest.fixture
def actions_env(up, tmp_path, monkeypatch):
    """The actions' process-wide store on the private PostgreSQL, its queue in tmp_path."""
    for key in ("DATABASE_URL", "PROGRESS_DB_SCHEMA", "LLM_BASE_URL", "OPENAI_BASE_URL", "LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PROGRESS_DB_URL", up.url)
    monkeypatch.setenv("PROGRESS_SPOOL_PATH", str(tmp_path / "progress-queue.sqlite"))
    progress_store.reset_store()
    llm.reset_llm()
    yield up
    progress_store.reset_store()
    llm.reset_llm()


def new_id():
    return "lrn_" + uuid.uuid4().hex


def rows(url, learner):
    """(module, attempts, correct, points, level) rows of the learner, read with psycopg2."""
    conn = pg_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT module, attempts, correct, points, level FROM learner_progress "
                        "WHERE learner_id = %s ORDER BY module", (learner,))
            return cur.fetchall()
    finally:
        conn.close()


# ----------------------------------------------------------------------- the real tutor path
def tracker(learner, text, intent, slots, candidates=()):
    message = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": []}
    events = [{"event": "user", "text": text, "parse_data": message}]
    events += [{"event": "slot", "name": k, "value": slots[k]} for k in candidates]
    return Tracker(sender_id=learner, slots=slots, latest_message=message, events=events, paused=False,
                   followup_action=None, active_loop={"name": "tutor_form"}, latest_action_name="action_listen")


async def start_math(learner):
    events = await ActionStartModule().run(CollectingDispatcher(), tracker(learner, "math", "start_math", {"language": "en"}), DOMAIN)
    return dict({e["name"]: e["value"] for e in events if e["event"] == "slot"}, language="en")


async def answer_right(learner, slots):
    """Answers the current problem correctly; (new slots, texts, points this answer earns)."""
    problem = slots["tutor_state"]["problem"]
    earned = 10 * int(problem["level"])  # math.yml rule: 10 x level on the first try
    slots = dict(slots, answer=str(problem["answer"]), requested_slot="answer")
    dispatcher = CollectingDispatcher()
    result = await ValidateTutorForm().run(dispatcher, tracker(learner, slots["answer"], "answer", slots, candidates=["answer"]), DOMAIN)
    new_slots = dict(slots, **{e["name"]: e["value"] for e in result if e["event"] == "slot"})
    return new_slots, [m["text"] for m in dispatcher.messages], earned


async def my_score(learner, slots):
    dispatcher = CollectingDispatcher()
    await ActionCheckProgress().run(dispatcher, tracker(learner, "my score", "check_progress", slots), DOMAIN)
    return " ".join(m["text"] for m in dispatcher.messages)


async def test_math_answers_during_an_outage_are_in_the_table_once_afterwards(actions_env):
    pg = actions_env
    learner = new_id()
    slots = await start_math(learner)
    points = 0
    for _ in range(2):
        slots, texts, earned = await answer_right(learner, slots)
        points += earned
    assert rows(pg.url, learner) == [("math", 2, 2, points, 1)]

    pg.stop()
    for _ in range(3):  # the third right answer in a row also moves the level up
        slots, texts, earned = await answer_right(learner, slots)
        assert texts and texts[0] != messages.text("try_again_later", "en")
        points += earned
    during = await my_score(learner, slots)
    assert messages.text("progress_empty", "en") not in during
    assert f"Total: {points} points." in during and "5 of 5 right" in during
    assert progress_store.get_store().pending_writes() == 3

    pg.start()
    await progress_store.get_store().flush()
    assert progress_store.get_store().pending_writes() == 0
    assert rows(pg.url, learner) == [("math", 5, 5, points, 2)]
    assert await my_score(learner, slots) == during
    await progress_store.get_store().dispose()


async def test_my_score_when_nothing_is_known_during_an_outage_is_not_not_started(actions_env, tmp_path):
    pg = actions_env
    learner = new_id()
    other_process = ProgressStore(pg.url, spool_path=str(tmp_path / "other.sqlite"))
    await other_process.save(learner, "math", Progress(attempts=2, correct=2, points=20))
    await other_process.dispose()
    pg.stop()
    said = await my_score(learner, {"language": "rw"})
    assert said == messages.text("progress_unavailable", "rw")
    pg.start()
    deadline = time.monotonic() + 60  # the store asks the database again after its backoff
    while "amanota 20" not in (said := await my_score(learner, {"language": "rw"})):
        assert time.monotonic() < deadline, said
        await asyncio.sleep(0.1)
    await progress_store.get_store().dispose()


async def test_a_restart_while_the_database_is_down_still_applies_the_writes_once(up, tmp_path):
    spool = str(tmp_path / "queue.sqlite")
    learner = new_id()
    first = ProgressStore(up.url, spool_path=spool)
    await first.save(learner, "math", Progress(attempts=3, correct=3, points=30, seen=["a"]))
    up.stop()
    progress = await first.load(learner, "math")  # the last known state, not fresh
    assert progress.points == 30
    progress.attempts, progress.correct, progress.points, progress.seen = 4, 4, 40, ["a", "b"]
    await first.save(learner, "math", progress)
    await first.dispose()  # the process ends with the write queued

    second = ProgressStore(up.url, spool_path=spool)
    assert second.pending_writes() == 1
    assert (await second.summary(learner))["math"].points == 40  # the queued state
    progress = await second.load(learner, "math")
    progress.attempts, progress.correct, progress.points = 5, 5, 50
    await second.save(learner, "math", progress)
    up.start()
    await second.flush()
    assert second.pending_writes() == 0
    assert rows(up.url, learner) == [("math", 5, 5, 50, 1)]
    assert (await second.load(learner, "math")).seen == ["a", "b"]
    await second.dispose()


async def test_answers_given_after_a_restart_with_nothing_known_are_added_not_replacing(up, tmp_path):
    """The process restarted during the outage and never saw the learner's row: the tutor
    starts from fresh progress, and its answers are added to the row when it is back."""
    learner = new_id()
    writer = ProgressStore(up.url, spool_path=str(tmp_path / "a.sqlite"))
    await writer.save(learner, "math", Progress(attempts=10, correct=8, points=100, level=3, seen=["x"]))
    await writer.dispose()
    up.stop()
    restarted = ProgressStore(up.url, spool_path=str(tmp_path / "b.sqlite"))
    with pytest.raises(ProgressStoreError):  # unknown, so "my score" must not say "not started"
        await restarted.summary(learner)
    progress = await restarted.load(learner, "math")
    assert progress == Progress()
    progress.attempts, progress.correct, progress.points, progress.level, progress.seen = 2, 1, 10, 1, ["y"]
    await restarted.save(learner, "math", progress)
    up.start()
    await restarted.flush()
    assert rows(up.url, learner) == [("math", 12, 9, 110, 3)]
    assert (await restarted.load(learner, "math")).seen == ["x", "y"]
    await restarted.dispose()


async def test_forget_during_an_outage_erases_queue_cache_and_then_the_rows(up, tmp_path):
    learner, other = new_id(), new_id()
    store = ProgressStore(up.url, spool_path=str(tmp_path / "q.sqlite"))
    await store.save(learner, "math", Progress(points=20))
    await store.save_profile(learner, name="Keza", language="rw")
    await store.save(other, "math", Progress(points=7))
    await store.load(learner, "math")
    up.stop()
    await store.save(learner, "math", Progress(points=30))
    assert await store.forget(learner) is False  # the rows go when the database is back
    assert await store.summary(learner) == {}
    assert await store.load_profile(learner) is None
    assert store.pending_writes() == 1  # only the erasure itself
    up.start()
    await store.flush()
    assert rows(up.url, learner) == []
    assert rows(up.url, other) == [("math", 0, 0, 7, 1)]
    conn = pg_connect(up.url)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM learner_profile WHERE learner_id = %s", (learner,))
        assert cur.fetchone()[0] == 0
    conn.close()
    assert await store.forget(other) is True
    await store.dispose()


# ----------------------------------------------------------------------- order and once (SQLite too)
@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'progress.db'}"
    return request.getfixturevalue("up").url


def unreachable():
    return f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"


async def test_queued_writes_are_applied_in_order(db_url, tmp_path):
    spool = str(tmp_path / "q.sqlite")
    learner = new_id()
    offline = ProgressStore(unreachable(), spool_path=spool)
    for points in (10, 20, 30):
        await offline.save(learner, "math", Progress(attempts=points // 10, points=points))
    for language in ("en", "rw"):
        await offline.save_profile(learner, language=language)
    await offline.save_profile(learner, name="Aline")
    await offline.dispose()

    online = ProgressStore(db_url, spool_path=spool)  # same queue, database reachable
    await online.flush()
    assert online.pending_writes() == 0
    assert (await online.load(learner, "math")).points == 30
    profile = await online.load_profile(learner)
    assert (profile.name, profile.language) == ("Aline", "rw")
    await online.dispose()


async def test_a_crash_between_commit_and_dequeue_counts_once(db_url, tmp_path, monkeypatch):
    spool = str(tmp_path / "q.sqlite")
    learner = new_id()
    store = ProgressStore(db_url, spool_path=spool)
    await store.save(learner, "math", Progress(attempts=1, correct=1, points=10))
    offline = ProgressStore(unreachable(), spool_path=spool)  # restarted during an outage
    progress = await offline.load(learner, "math")  # nothing known: fresh, so its answers add up
    progress.attempts, progress.correct, progress.points = 1, 1, 10
    await offline.save(learner, "math", progress)
    await offline.dispose()

    def crash(seqs):
        raise OSError("killed before the spool delete")

    monkeypatch.setattr(store.spool, "remove", crash)
    with pytest.raises(OSError):
        await store.flush()  # committed, still queued
    assert store.pending_writes() == 1
    assert (await store.load(learner, "math")).points == 20  # not 30: the queued copy is known applied
    await store.dispose()

    restarted = ProgressStore(db_url, spool_path=spool)
    assert (await restarted.summary(learner))["math"].points == 20
    await restarted.flush()
    assert restarted.pending_writes() == 0
    assert (await restarted.load(learner, "math")) == Progress(attempts=2, correct=2, points=20)
    await restarted.dispose()


async def test_a_new_write_goes_behind_waiting_ones_even_with_the_database_up(tmp_path):
    spool = str(tmp_path / "q.sqlite")
    learner = new_id()
    offline = ProgressStore(unreachable(), spool_path=spool)
    await offline.save(learner, "math", Progress(points=10))
    await offline.dispose()
    online = ProgressStore(f"sqlite:///{tmp_path / 'p.db'}", spool_path=spool)
    await online.save(learner, "math", Progress(points=20))  # must not be overtaken by the older 10
    await online.flush()
    assert online.pending_writes() == 0
    assert (await online.load(learner, "math")).points == 20
    await online.dispose()


# ----------------------------------------------------------------------- the merge rule
def test_a_write_on_its_own_base_replaces_the_row():
    base = Progress(attempts=3, correct=2, points=20, level=2, seen=["a"])
    new = Progress(attempts=4, correct=2, points=20, level=1, streak=0, misses=1, seen=["a", "b"])
    assert merge(base, base, new) == new
    assert merge(Progress(points=99), None, new) == new  # a save without a load: plain upsert


def test_a_write_on_another_base_adds_its_change():
    row = Progress(attempts=10, correct=8, points=100, level=3, streak=2, seen=["x", "a"],
                   last_seen=datetime(2025, 1, 2, tzinfo=timezone.utc))
    base = Progress(seen=["a"])
    new = Progress(attempts=2, correct=2, points=20, level=2, streak=2, seen=["b"],
                   last_seen=datetime(2025, 1, 1, tzinfo=timezone.utc))
    merged = merge(row, base, new)
    assert (merged.attempts, merged.correct, merged.points, merged.level) == (12, 10, 120, 4)
    assert merged.seen == ["x", "b"]  # "a" was dropped by the write, "b" added
    assert merged.last_seen == datetime(2025, 1, 2, tzinfo=timezone.utc)


def test_the_overlay_of_an_unknown_module_shows_the_writers_state():
    at = datetime(2025, 1, 1, tzinfo=timezone.utc)
    base, new = Progress(points=30), Progress(points=40)
    write = progress_write("math", base, new, at)
    write["base"], write["state"], write["at"] = base, new, at  # decoded form
    assert overlay(LearnerView(), "l", [write]).modules["math"].points == 40
    known = LearnerView(modules={"math": Progress(points=35)})
    assert overlay(known, "l", [write]).modules["math"].points == 45
