"""Export and erasure of one learner (issue 11, law N° 058/2021) on the production stack.

Private ``redis-server`` and PostgreSQL (tests/services.py); the real action server and Rasa
with ``endpoints.prod.yml`` / ``credentials.prod.yml``; two learners (two phone numbers) talk
to it by SMS and voice, every request signed as Twilio signs it. Then, with Rasa stopped (so
events left in its spool stay there), one more event per learner is put in the spool, and
``python -m infra.learner_data`` exports learner A, erases A, and erases A again. Afterwards
nothing in Redis, the events table, the progress tables or the spool names A or holds A's
words, and everything of learner B is exactly as it was.
"""
from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, List, Set

import psycopg2
import pytest
import redis

from connector_fixtures import TwilioClient, messages_of, parse_twiml, sms_params
from connectors.security import SenderIdHasher
from infra.event_broker import BufferedSQLEventBroker
from infra.settings import production_env
from infra.tracker_store import outbox_key
from tests.services import LocalPostgres, RedisServer
from tests.stack import ROOT, Stack, ensure_model, stack_env
from tests.test_connectors_e2e import Phone, fresh_number
from tests.test_production_stack import API_TOKEN, RasaServer

pytestmark = pytest.mark.integration

# Real-looking secrets (production starts refuse missing or placeholder ones).
TWILIO_TOKEN = "ld-twilio-" + uuid.uuid4().hex
SENDER_SECRET = "ld-sender-" + uuid.uuid4().hex
SMS = "/webhooks/twilio_sms/webhook"


class Learner:
    def __init__(self, name: str) -> None:
        self.name = name
        self.number = fresh_number()
        self.sender = SenderIdHasher(SENDER_SECRET).sender_id(self.number)
        self.sids: Set[str] = set()  # every MessageSid and CallSid Twilio sent for them

    @property
    def identifiers(self) -> Set[str]:
        return {self.sender} | self.sids


async def text(client: TwilioClient, learner: Learner, body: str) -> List[str]:
    sid = "SM" + uuid.uuid4().hex
    learner.sids.add(sid)
    response = await client.post(SMS, sms_params(body, sid=sid, From=learner.number))
    assert response.status_code == 200, response.text
    return messages_of(parse_twiml(response.text))


async def converse(client: TwilioClient, a: Learner, b: Learner) -> None:
    for learner, words in ((a, ["hello", f"my name is {a.name}", "math", "7"]),
                           (b, ["hello", f"my name is {b.name}", "math"])):
        replies = [await text(client, learner, w) for w in words]
        assert any(learner.name in r for reply in replies for r in reply), replies
    ended = Phone(client, a.number)  # a call that ended: voice:ended:<CallSid> stays
    await ended.dial()
    await ended.hang_up()
    ongoing = Phone(client, a.number)  # a call still on: voice:call:<CallSid>
    assert await ongoing.dial()
    a.sids.update({ended.call_sid, ongoing.call_sid})


# --------------------------------------------------------------------------- the stack
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    ensure_model()
    workdir = tmp_path_factory.mktemp("learnerdata")
    redis_server, pg = RedisServer(), LocalPostgres(database="bakame")
    redis_server.start()
    pg.start()
    base = stack_env(workdir, REDIS_URL=redis_server.url, DATABASE_URL=pg.url, PROGRESS_DB_URL=pg.url,
                     TWILIO_AUTH_TOKEN=TWILIO_TOKEN, SENDER_ID_SECRET=SENDER_SECRET, RASA_AUTH_TOKEN=API_TOKEN,
                     TWILIO_VALIDATE_SIGNATURE="true", EVENT_SPOOL_PATH=str(workdir / "spool" / "events.sqlite"))
    actions = Stack(workdir=workdir, env=base)
    base["ACTION_ENDPOINT_URL"] = f"http://127.0.0.1:{actions.actions_port}/webhook"
    env = {**base, **production_env(base)}
    rasa = RasaServer("ld", workdir, env)
    env["PUBLIC_BASE_URL"] = rasa.env["PUBLIC_BASE_URL"] = rasa.url  # the URL Twilio signs
    a, b = Learner("Aline"), Learner("Bosco")
    try:
        actions.start_actions()
        rasa.start().wait_ready()
        asyncio.run(converse(TwilioClient(server_url=rasa.url, public_base=rasa.url, token=TWILIO_TOKEN), a, b))
        rasa.stop()  # its last flush done; what is spooled from now on stays in the spool
        actions.stop_actions()
        broker = BufferedSQLEventBroker(pg.url, spool_path=env["EVENT_SPOOL_PATH"], start=False)
        broker.flush_all()  # whatever Rasa had not moved yet
        broker.publish_many([{"sender_id": x.sender, "event": "user", "text": f"late words of {x.name}",
                              "timestamp": time.time()} for x in (a, b)])
        broker.stop()
        # ... and one turn each in the event outbox, as a process killed before spooling it leaves it
        client = redis.Redis.from_url(redis_server.url)
        for x in (a, b):
            client.hset(outbox_key(env["REDIS_KEY_PREFIX"]), f"{int(time.time() * 1000)}:0badc0de:{x.sender}",
                        json.dumps([{"sender_id": x.sender, "event": "user", "text": f"outbox words of {x.name}",
                                     "timestamp": time.time()}]))
        yield {"env": env, "redis": redis.Redis.from_url(redis_server.url), "pg": pg.url, "a": a, "b": b,
               "spool": Path(env["EVENT_SPOOL_PATH"]), "workdir": workdir}
    finally:
        rasa.stop()
        actions.stop_actions()
        redis_server.remove()
        pg.remove()


def run_cli(world, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infra.learner_data", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**world["env"], **env})


# --------------------------------------------------------------------------- what is stored
def redis_snapshot(r: redis.Redis) -> Dict[str, bytes]:
    return {k.decode(): r.dump(k) for k in r.scan_iter(count=1000)}


def redis_traces(r: redis.Redis, needles: Set[str]) -> List[str]:
    """Keys whose name or value mentions one of ``needles``."""
    found = []
    for key in r.scan_iter(count=1000):
        name = key.decode()
        value = r.get(key).decode("utf-8", "replace") if r.type(key) == b"string" else ""
        if any(n in name or n in value for n in needles):
            found.append(name)
    return found


def pg_rows(url: str, sql: str, *params) -> List[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def stored_in_pg(url: str, learner: Learner) -> Dict[str, List[tuple]]:
    return {
        "events": pg_rows(url, "SELECT id, data, event_key FROM events WHERE sender_id = %s ORDER BY id", learner.sender),
        "progress": pg_rows(url, "SELECT * FROM learner_progress WHERE learner_id = %s ORDER BY module", learner.sender),
        "profile": pg_rows(url, "SELECT * FROM learner_profile WHERE learner_id = %s", learner.sender),
    }


def spooled(path: Path, learner: Learner) -> List[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT seq, event_key, data FROM spool WHERE sender_id = ? ORDER BY seq",
                            (learner.sender,)).fetchall()


def outboxed(world, learner: Learner) -> Dict[bytes, bytes]:
    """The learner's entries in the event outbox (field ``<ms>:<random>:<sender id>``)."""
    entries = world["redis"].hgetall(outbox_key(world["env"]["REDIS_KEY_PREFIX"]))
    return {f: v for f, v in entries.items() if f.decode().split(":", 2)[2] == learner.sender}


def erase_counts(stdout: str) -> Dict[str, int]:
    lines = [re.match(r"^\s+(.+?)\s+(\d+) (?:key|row|turn)s? removed$", line) for line in stdout.splitlines()[1:]]
    assert lines and all(lines), stdout
    return {m.group(1): int(m.group(2)) for m in lines}


# --------------------------------------------------------------------------- the test
def test_export_then_erase_one_learner_leaves_nothing_of_them_and_everything_of_the_other(world):
    a, b, r, pg, spool = world["a"], world["b"], world["redis"], world["pg"], world["spool"]
    a_before, b_before = stored_in_pg(pg, a), stored_in_pg(pg, b)
    assert a_before["events"] and a_before["progress"] and a_before["profile"]
    assert b_before["events"] and b_before["progress"] and b_before["profile"]
    assert len(spooled(spool, a)) == 1 and len(spooled(spool, b)) == 1
    redis_before = redis_snapshot(r)
    assert redis_traces(r, a.identifiers) and redis_traces(r, b.identifiers)
    assert outboxed(world, a) and outboxed(world, b)
    b_outbox = outboxed(world, b)

    # ---- export A
    out = world["workdir"] / "export-a.json"
    export = run_cli(world, "export", "--out", str(out), PHONE=a.number)
    assert export.returncode == 0, export.stderr
    assert a.number not in export.stdout + export.stderr and a.number[-9:] not in export.stdout
    assert a.number[:5] in export.stdout  # the masked number names the learner
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    document = json.loads(out.read_text())
    assert a.number[-9:] not in out.read_text()  # the number itself is stored nowhere
    assert document["conversation_id"] == a.sender
    user_texts = [e.get("text") for e in document["tracker"]["events"] if e["event"] == "user"]
    assert f"my name is {a.name}" in user_texts and document["tracker"]["slots"]["name"] == a.name
    assert [row["id"] for row in document["events"]] == [row[0] for row in a_before["events"]]
    assert [row["event"]["text"] for row in document["spooled_events"]] == [f"late words of {a.name}"]
    assert f"outbox words of {a.name}" in [e.get("text") for e in document["outbox_events"]]
    assert "math" in document["progress"] and document["profile"]["name"] == a.name
    assert f"sms:conv:{a.sender}" in document["channel_state"]
    assert any(sid in key for key in document["channel_state"] for sid in a.sids if sid.startswith("CA"))
    assert b.sender not in out.read_text() and b.name not in out.read_text()

    # ---- erase A
    erase = run_cli(world, "erase", PHONE=a.number)
    assert erase.returncode == 0, erase.stderr
    assert a.number not in erase.stdout + erase.stderr
    counts = erase_counts(erase.stdout)
    assert counts["redis tracker"] == 1 and counts["redis channel state"] >= 3
    assert counts["events (PostgreSQL)"] == len(a_before["events"]) and counts["event spool"] == 1
    assert counts["progress"] == len(a_before["progress"]) and counts["profile"] == 1
    assert counts["redis event outbox"] >= 1  # ours, and any turn Rasa had not removed when stopped

    # nothing of A is left anywhere ...
    assert redis_traces(r, a.identifiers | {a.name}) == []
    assert outboxed(world, a) == {}
    assert stored_in_pg(pg, a) == {"events": [], "progress": [], "profile": []}
    assert pg_rows(pg, "SELECT count(*) FROM events WHERE data LIKE %s OR data LIKE %s",
                   f"%{a.sender}%", f"%{a.name}%") == [(0,)]
    assert spooled(spool, a) == []
    # ... and everything of B (and every other key) is as it was
    assert stored_in_pg(pg, b) == b_before
    assert len(spooled(spool, b)) == 1
    redis_after = redis_snapshot(r)
    for key, value in redis_before.items():
        if ":lock:" in key:  # turn locks expire by themselves within minutes
            continue
        if key == outbox_key(world["env"]["REDIS_KEY_PREFIX"]):  # one hash for every learner
            assert outboxed(world, b) == b_outbox
            continue
        if not any(f":{i}" in key for i in a.identifiers):
            assert redis_after.get(key) == value, key
    assert redis_traces(r, b.identifiers)

    # ---- a second erase finds nothing and still succeeds
    again = run_cli(world, "erase", SENDER=a.sender)
    assert again.returncode == 0, again.stderr
    assert set(erase_counts(again.stdout).values()) == {0}


def test_a_phone_number_needs_the_sender_id_secret(world):
    number = fresh_number()
    result = run_cli(world, "export", PHONE=number, SENDER_ID_SECRET="")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "SENDER_ID_SECRET" in result.stderr
    assert number not in result.stdout + result.stderr


def test_the_spools_of_every_rasa_process_are_exported_and_erased(tmp_path):
    """Several Rasa processes behind a load balancer each spool to their own file beside
    EVENT_SPOOL_PATH (docs/scaling.md): a learner's rows are found and erased in all of them."""
    from infra.learner_data import SpoolRows
    from infra.spool import Spool

    for name, rows in (("events-1.sqlite", [("k1", "A", '{"text": "a1"}'), ("k2", "B", '{"text": "b1"}')]),
                       ("events-2.sqlite", [("k3", "A", '{"text": "a2"}')]),
                       ("progress-x.sqlite", [("k4", "A", '{"text": "not an event spool"}')])):
        spool = Spool(tmp_path / name)
        spool.append(rows)
        spool.close()
    spools = SpoolRows(tmp_path / "events.sqlite")  # the eraser's own path need not exist
    assert [row["event"]["text"] for row in spools.export("A")] == ["a1", "a2"]
    assert spools.erase("A") == 2
    assert spools.export("A") == [] and [row["event"]["text"] for row in spools.export("B")] == ["b1"]
    assert not (tmp_path / "events.sqlite").exists()
