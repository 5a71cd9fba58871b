"""Event retention (issue 11) on a real PostgreSQL ``events`` table: events older than the
retention lose the learner's words (or are deleted), newer ones are not touched, the
programme report still counts the stripped turns, and a second run changes nothing."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import psycopg2
import pytest
import sqlalchemy as sa

from infra.event_broker import ensure_events_table, event_key
from infra.retention import apply_retention
from scripts.report import analyse
from tests.services import LocalPostgres, shared_postgres_url
from tests.stack import ROOT

pytestmark = pytest.mark.integration

DAY = 86400.0
NOW = time.time()
OLD, NEW = NOW - 400 * DAY, NOW - 10 * DAY
SENDER = "tw_" + "a" * 32
CALL_SID = "CA" + uuid.uuid4().hex
NAME = "Aline"


@pytest.fixture
def events_db():
    """A fresh database with the broker's ``events`` table (shared server, or a private one)."""
    shared, private = shared_postgres_url(), None
    name = "retention_" + uuid.uuid4().hex[:12]
    if shared is None:
        private = LocalPostgres(database=name)
        url = private.start()
    else:
        url = shared.rsplit("/", 1)[0] + "/" + name
        _admin(shared, f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(url, future=True)
    ensure_events_table(engine)
    engine.dispose()
    yield url
    if private is not None:
        private.remove()
    else:
        _admin(shared, f'DROP DATABASE "{name}"')


def _admin(url: str, statement: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(statement)
    conn.close()


def conversation(ts: float, words: str) -> list:
    """One learner turn as the broker stores it: the message, the bot's answer, slots."""
    meta = {"channel": "twilio_voice", "call_sid": CALL_SID, "caller_country": "RW", "input": "speech"}
    events = [
        {"event": "session_started", "timestamp": ts - 3},
        {"event": "slot", "name": "session_started_metadata", "value": meta, "timestamp": ts - 2},
        {"event": "user", "text": words, "message_id": f"{CALL_SID}:t1", "metadata": meta, "input_channel": "twilio_voice",
         "parse_data": {"text": words, "intent": {"name": "inform_name", "confidence": 0.97},
                        "entities": [{"entity": "name", "value": NAME}],
                        "intent_ranking": [{"name": "inform_name", "confidence": 0.97}]}, "timestamp": ts},
        {"event": "slot", "name": "name", "value": NAME, "timestamp": ts + 0.1},
        {"event": "slot", "name": "answer", "value": "7", "timestamp": ts + 0.1},
        {"event": "slot", "name": "active_module", "value": "debate", "timestamp": ts + 0.1},
        {"event": "slot", "name": "tutor_state", "timestamp": ts + 0.1,
         "value": {"module": "debate", "stage": "side", "rounds": 1, "pending": f"{NAME} thinks school uniforms help"}},
        {"event": "bot", "text": f"Nice to meet you, {NAME}!", "data": {}, "metadata": {"utter_action": "utter_greet_name"},
         "timestamp": ts + 0.2},
        {"event": "action", "name": "action_listen", "timestamp": ts + 0.3},
    ]
    return [dict(e, sender_id=SENDER) for e in events]


def insert(url: str, events: list) -> None:
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO events (sender_id, data, event_key) VALUES (%s, %s, %s)",
                        [(e["sender_id"], json.dumps(e), event_key(e)) for e in events])
    conn.close()


def rows(url: str) -> list:
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT id, data FROM events ORDER BY id")
        result = cur.fetchall()
    conn.close()
    return result


def test_strip_removes_learner_words_from_old_events_only(events_db):
    insert(events_db, conversation(OLD, f"my name is {NAME}") + conversation(NEW, f"call me {NAME}"))
    before = rows(events_db)
    old_ids = {i for i, data in before if json.loads(data)["timestamp"] < NOW - 365 * DAY}

    assert apply_retention(events_db, days=365, mode="strip", now=NOW) == 7  # user, bot, 5 slots
    after = rows(events_db)
    assert [i for i, _ in after] == [i for i, _ in before]  # nothing deleted
    old = [json.loads(d) for i, d in after if i in old_ids]
    assert NAME not in json.dumps(old) and CALL_SID not in json.dumps(old) and "uniforms" not in json.dumps(old)
    user = next(e for e in old if e["event"] == "user")
    assert user["parse_data"]["intent"]["name"] == "inform_name" and user["metadata"] == {
        "channel": "twilio_voice", "input": "speech"}
    slots = {e["name"]: e["value"] for e in old if e["event"] == "slot"}
    assert slots["answer"] == "7" and slots["active_module"] == "debate"  # numbers and categories stay
    assert slots["tutor_state"] == {"module": "debate", "stage": "side", "rounds": 1}
    assert {i: d for i, d in after if i not in old_ids} == {i: d for i, d in before if i not in old_ids}

    # the report still sees both turns, with their channel and intent
    turns = analyse((i, SENDER, json.loads(d)) for i, d in after).turns
    assert [(t.channel, t.intent) for t in turns] == [("twilio_voice", "inform_name")] * 2

    assert apply_retention(events_db, days=365, mode="strip", now=NOW) == 0  # already stripped
    assert rows(events_db) == after


def test_delete_mode_from_the_command_line_uses_the_environment_default(events_db):
    insert(events_db, conversation(OLD, f"my name is {NAME}") + conversation(NEW, f"call me {NAME}"))
    new = [(i, d) for i, d in rows(events_db) if json.loads(d)["timestamp"] > NOW - 365 * DAY]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DATABASE_URL": events_db,
           "EVENT_RETENTION_DAYS": "30", "EVENT_RETENTION_MODE": "delete"}

    dry = subprocess.run([sys.executable, "-m", "infra.retention", "--days", "365", "--dry-run"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0 and "9 would be deleted" in dry.stdout, dry.stdout + dry.stderr
    assert len(rows(events_db)) == 18

    result = subprocess.run([sys.executable, "-m", "infra.retention", "--days", "365"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "9 deleted" in result.stdout, result.stdout + result.stderr
    assert rows(events_db) == new

    # EVENT_RETENTION_DAYS=30 without --days: the newer conversation (10 days old) stays too
    again = subprocess.run([sys.executable, "-m", "infra.retention"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "(30 days): 0 deleted" in again.stdout, again.stdout + again.stderr
    assert rows(events_db) == new


def test_refuses_a_retention_under_one_day(events_db):
    result = subprocess.run([sys.executable, "-m", "infra.retention", "--days", "0"], cwd=ROOT,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DATABASE_URL": events_db},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "at least 1 day" in result.stderr
