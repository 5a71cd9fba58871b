"""The production stack over REAL Redis and PostgreSQL (issue 5).

This module starts its own private ``redis-server`` (append-only file) and PostgreSQL
cluster (tests/services.py), because it kills and restarts them; then the real action
server and the real Rasa server with ``endpoints.prod.yml`` and ``credentials.prod.yml``
(the trained model ``models/bakame.tar.gz``), environment derived by ``infra.settings``.

Part 1 (no Rasa): the lock store and the tracker store against the private Redis.
Part 2 (the running assistant):

* events reach PostgreSQL's ``events`` table with the tracker's types, in its order;
* PostgreSQL stopped mid-conversation (``pg_ctl stop -m fast``): every turn is answered,
  and once it is started again the table holds every event exactly once, in order;
* Redis down: HTTP 200 with "please try again shortly" in the learner's language; Redis
  killed and restarted: the conversation continues where it was (append-only file);
* a Rasa restart: the conversation continues, and a practice reminder asked by SMS before it
  fires once afterwards, through a local fake of Twilio's REST API (issue 18: outreach is on in
  this stack, its worker in every Rasa process);
* two Rasa processes sharing Redis: one learner's concurrent messages, sent alternately
  to both, are handled one at a time, in arrival order, replies matching their turn;
  many learners at once never see each other's state;
* ``scripts/report.py`` on the resulting database.

Rasa takes one to several minutes to load the model on a busy machine: one Rasa process
serves most tests; the restart test starts the second process alongside the restarted one.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional

import psycopg2
import pytest
import redis
import requests

from actions.messages import text as message_text
from tests.connector_fixtures import TwilioClient, messages_of, parse_twiml, sms_params
from core import texts
from core.identity import SenderIdHasher
from core.number_vault import new_key_spec
from tests.fake_twilio_api import FakeTwilioApi
from infra.errors import StoreUnavailable
from infra.lock_store import ResilientRedisLockStore
from infra.settings import production_env
from infra.tracker_store import ResilientRedisTrackerStore
from tests.services import LocalPostgres, RedisServer, free_port
from tests.stack import MODEL, RASA_MAIN, ROOT, Stack, _stop, ensure_model, stack_env, wait_for

pytestmark = pytest.mark.integration

RASA_READY_TIMEOUT = 900  # model loading on a loaded 2-core machine
SYNC_TIMEOUT = 120
TRY_AGAIN = {lang: message_text("try_again_later", lang) for lang in ("en", "rw")}


# What a production start requires (infra.settings.secret_problems): real-looking values.
API_TOKEN = "prod-stack-api-token-0123456789"
PRODUCTION_SECRETS = {"TWILIO_AUTH_TOKEN": "prod-stack-twilio-token-0123456789",
                      "SENDER_ID_SECRET": "prod-stack-sender-secret-0123456789", "RASA_AUTH_TOKEN": API_TOKEN}


# Outreach (issue 18) on in this stack: Twilio's REST API is a local fake; every hour is a sending
# hour so the reminder test does not depend on the time of day it runs at.
TWILIO_ACCOUNT = "AC" + "5" * 32
PUBLIC_BASE = "https://bakame-prod.invalid"


def outreach_env(twilio_api_base: str) -> Dict[str, str]:
    return {"OUTREACH_ENABLED": "true", "NUMBER_KEYS": new_key_spec("k1"), "TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT,
            "TWILIO_API_BASE_URL": twilio_api_base, "OUTREACH_CALL_FROM": "+250780000001",
            "OUTREACH_SMS_FROM": "+250780000002", "PUBLIC_BASE_URL": PUBLIC_BASE, "OUTREACH_POLL_SECONDS": "0.5",
            "OUTREACH_HOURS": "00-24"}


def new_sender(prefix: str = "prod") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.25, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    assert predicate(), f"{message} not reached after {timeout}s"


# =========================================================================== servers
@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="module")
def pg_server():
    server = LocalPostgres(database="bakame")
    server.start()
    yield server
    server.remove()


# =========================================================================== part 1
def _run(coro):
    return asyncio.run(coro)


def lock_store(server: RedisServer, **options) -> ResilientRedisLockStore:
    return ResilientRedisLockStore(host="127.0.0.1", port=server.port, db=0, key_prefix="unit", **options)


def test_lock_store_serialises_turns_across_processes_in_ticket_order(redis_server):
    """Two lock store instances (= two Rasa processes), 12 overlapping turns of one learner."""
    async def scenario():
        stores = [lock_store(redis_server), lock_store(redis_server)]
        learner = new_sender("lock")
        log: List[tuple] = []
        active = {"now": 0, "max": 0}

        async def turn(i: int) -> None:
            async with stores[i % 2].lock(learner):
                active["now"] += 1
                active["max"] = max(active["max"], active["now"])
                log.append(("start", i))
                await asyncio.sleep(0.02 + 0.01 * (i % 3))
                log.append(("end", i))
                active["now"] -= 1

        tasks = []
        for i in range(12):
            tasks.append(asyncio.create_task(turn(i)))
            # the next message arrives once this one holds its ticket
            while int(await stores[0].redis.call(lambda r: r.get(f"unit:lock:{learner}:seq")) or 0) < i + 1:
                await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
        waiting = await stores[0].waiting(learner)
        for store in stores:
            await store.redis.close()
        return log, active["max"], waiting

    log, max_active, waiting = _run(scenario())
    assert max_active == 1  # never two turns of one learner at once
    assert log == [(kind, i) for i in range(12) for kind in ("start", "end")]  # in arrival order
    assert waiting == 0  # every ticket returned; the queue key is gone


def test_lock_store_other_learners_are_not_held_up(redis_server):
    async def scenario():
        store = lock_store(redis_server)
        order = []

        async def slow():
            async with store.lock("learner-slow"):
                await asyncio.sleep(0.5)
                order.append("slow")

        async def fast():
            await asyncio.sleep(0.05)
            async with store.lock("learner-fast"):
                order.append("fast")

        await asyncio.gather(slow(), fast())
        await store.redis.close()
        return order

    assert _run(scenario()) == ["fast", "slow"]


def test_lock_store_skips_the_ticket_of_a_dead_process(redis_server):
    async def scenario():
        store = lock_store(redis_server)
        learner = new_sender("dead")
        await store.issue(learner, lock_lifetime=0.5)  # taken, never returned (process died)
        started = time.monotonic()
        async with store.lock(learner, lock_lifetime=30):
            waited = time.monotonic() - started
        await store.redis.close()
        return waited

    assert _run(scenario()) >= 0.3  # it waited for the expiry, then went ahead


def test_lock_store_a_free_lock_costs_two_round_trips(redis_server):
    """Issue 16: taking a free lock is one script (ticket and check), returning it another."""
    async def scenario():
        store = lock_store(redis_server)
        learner = new_sender("free")
        calls = []
        original = store.redis.call

        async def counting(operation):
            calls.append(operation)
            return await original(operation)

        store.redis.call = counting
        async with store.lock(learner):
            inside = len(calls)
        after = len(calls)
        waiting = await store.waiting(learner)
        await store.redis.close()
        return inside, after, waiting

    assert _run(scenario()) == (1, 2, 0)


def test_lock_store_redis_unreachable_raises_store_unavailable():
    async def scenario():
        store = ResilientRedisLockStore(host="127.0.0.1", port=free_port(), retries=1, retry_backoff=0.01)
        with pytest.raises(StoreUnavailable):
            async with store.lock("anyone"):
                pass

    _run(scenario())


def _domain():
    from rasa.shared.core.domain import Domain

    return Domain.load(str(ROOT / "domain.yml"))


class CollectingBroker:
    def __init__(self):
        self.published: List[dict] = []

    def publish(self, event):
        self.published.append(event)

    def publish_many(self, events):
        self.published.extend(events)


def test_tracker_store_round_trip_key_prefix_and_expiry(redis_server):
    from rasa.shared.core.events import SlotSet, UserUttered

    async def scenario():
        store = ResilientRedisTrackerStore(_domain(), host="127.0.0.1", port=str(redis_server.port), db="0",
                                           key_prefix="bakame", record_exp="3600", password="")
        sender = new_sender("ts")
        tracker = await store.get_or_create_tracker(sender)
        tracker.update(UserUttered("muraho"))
        tracker.update(SlotSet("language", "rw"))
        await store.save(tracker)
        again = await store.retrieve(sender)
        client = redis.Redis(port=redis_server.port)
        ttl = client.ttl(f"bakame:tracker:{sender}")
        keys = list(await store.keys())
        await store.redis.close()
        return tracker, again, ttl, keys, sender

    tracker, again, ttl, keys, sender = _run(scenario())
    assert [e.as_dict() for e in again.events] == [e.as_dict() for e in tracker.events]
    assert again.get_slot("language") == "rw"
    assert 3500 < ttl <= 3600
    assert sender in keys


def test_tracker_store_publishes_each_event_once_and_only_after_the_write(redis_server):
    from rasa.shared.core.events import BotUttered, UserUttered

    async def scenario():
        broker = CollectingBroker()
        store = ResilientRedisTrackerStore(_domain(), host="127.0.0.1", port=redis_server.port,
                                           event_broker=broker, key_prefix="pub")
        sender = new_sender("pub")
        tracker = await store.get_or_create_tracker(sender)
        tracker.update(UserUttered("hello"))
        await store.save(tracker)
        await store.save(tracker)  # nothing new: nothing published
        tracker.update(BotUttered("hi"))
        await store.save(tracker)
        published = [e["event"] for e in broker.published]

        dead = ResilientRedisTrackerStore(_domain(), host="127.0.0.1", port=free_port(), event_broker=broker,
                                          retries=1, retry_backoff=0.01)
        tracker.update(UserUttered("lost?"))
        with pytest.raises(StoreUnavailable):
            await dead.save(tracker)
        await store.redis.close()
        return published, len(broker.published), sender, broker

    published, count, sender, broker = _run(scenario())
    assert published == ["action", "user", "bot"]  # initial action_listen, then each event once
    assert count == 3  # the write to the dead Redis failed: nothing published for it
    assert all(e["sender_id"] == sender for e in broker.published)


def test_failsafe_tracker_store_lets_store_unavailable_through():
    """Rasa wraps every tracker store in FailSafeTrackerStore, which would carry on with an
    empty tracker; the failsafe fix of infra.rasa_patches makes StoreUnavailable (only) propagate."""
    from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore

    from infra import rasa_patches

    assert "failsafe" in rasa_patches.install()

    async def scenario():
        dead = ResilientRedisTrackerStore(_domain(), host="127.0.0.1", port=free_port(), retries=1,
                                          retry_backoff=0.01)
        wrapped = FailSafeTrackerStore(dead)
        with pytest.raises(StoreUnavailable):
            await wrapped.retrieve("someone")
        with pytest.raises(StoreUnavailable):
            await wrapped.save(dead.init_tracker("someone"))

        class Broken(InMemoryTrackerStore):
            async def retrieve(self, sender_id):
                raise ValueError("any other error")

        assert await FailSafeTrackerStore(Broken(_domain())).retrieve("someone") is None  # Rasa's way

    _run(scenario())


def test_rest_guard_answers_only_the_apology_when_the_stores_fail():
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

    from infra.rest_channel import guard

    async def fails_at_save(message):
        await message.output_channel.send_text_message(message.sender_id, "an answer that was not saved")
        raise StoreUnavailable("conversation store (Redis)")

    async def bug(message):
        raise KeyError("a bug is not an outage")

    async def scenario():
        collector = CollectingOutputChannel()
        await guard(fails_at_save)(UserMessage("ndashaka kwiga imibare", collector, "learner-rw"))
        with pytest.raises(KeyError):
            await guard(bug)(UserMessage("hello", CollectingOutputChannel(), "learner-en"))
        return collector.messages

    assert _run(scenario()) == [{"recipient_id": "learner-rw", "text": TRY_AGAIN["rw"]}]


# =========================================================================== part 2
class RasaServer:
    """``python -m infra.rasa_main run`` with the production endpoints and channels."""

    def __init__(self, name: str, workdir: Path, env: Dict[str, str]) -> None:
        self.name = name
        self.workdir = workdir
        self.env = dict(env)
        self.port = free_port()
        self.log = workdir / f"rasa-{name}.log"
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "RasaServer":
        self.process = subprocess.Popen(
            [*RASA_MAIN, "run", "--model", str(MODEL), "--enable-api", "--auth-token", API_TOKEN,
             "--port", str(self.port),
             "--credentials", str(ROOT / "credentials.prod.yml"), "--endpoints", str(ROOT / "endpoints.prod.yml")],
            cwd=ROOT, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self) -> "RasaServer":
        wait_for(f"{self.url}/status?token={API_TOKEN}", self.process, self.log, timeout=RASA_READY_TIMEOUT,
                 ok=lambda r: r.ok and r.json().get("model_file"))
        return self

    def stop(self) -> None:
        _stop(self.process)
        self.process = None

    def post(self, sender: str, text: str) -> requests.Response:
        return requests.post(f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                             headers={"Authorization": f"Bearer {API_TOKEN}"},
                             timeout=120)

    def say(self, sender: str, text: str) -> List[dict]:
        response = self.post(sender, text)
        assert response.status_code == 200, response.text
        return response.json()

    def texts(self, sender: str, text: str) -> List[str]:
        return [m.get("text", "") for m in self.say(sender, text)]

    def tracker(self, sender: str) -> dict:
        response = requests.get(f"{self.url}/conversations/{sender}/tracker", params={"token": API_TOKEN}, timeout=60)
        response.raise_for_status()
        return response.json()


class ProductionStack:
    def __init__(self, workdir: Path, redis_server: RedisServer, pg: LocalPostgres, **extra_env: str) -> None:
        self.workdir = workdir
        self.redis = redis_server
        self.pg = pg
        base = stack_env(workdir, REDIS_URL=redis_server.url, DATABASE_URL=pg.url, PROGRESS_DB_URL=pg.url,
                         **PRODUCTION_SECRETS, **extra_env)
        self.actions = Stack(workdir=workdir, env=base)
        base["ACTION_ENDPOINT_URL"] = f"http://127.0.0.1:{self.actions.actions_port}/webhook"
        self.env = {**base, **production_env(base)}
        self.a = self._rasa("a")
        self.b: Optional[RasaServer] = None

    def _rasa(self, name: str) -> RasaServer:
        spool = self.workdir / f"spool-{name}" / "events.sqlite"
        return RasaServer(name, self.workdir, {**self.env, "EVENT_SPOOL_PATH": str(spool)})

    def spool_path(self, server: RasaServer) -> Path:
        return Path(server.env["EVENT_SPOOL_PATH"])

    def start(self) -> "ProductionStack":
        self.actions.start_actions()
        self.a.start().wait_ready()
        return self

    def ensure_second(self, wait: bool = True) -> RasaServer:
        if self.b is None:
            self.b = self._rasa("b").start()
        if wait:
            self.b.wait_ready()
        return self.b

    def stop(self) -> None:
        for server in (self.a, self.b):
            if server is not None:
                server.stop()
        self.actions.stop_actions()

    # ----------------------------------------------------------------- database
    def pg_events(self, sender: str) -> List[dict]:
        conn = psycopg2.connect(self.pg.url, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass('events') IS NOT NULL")
                if not cur.fetchone()[0]:
                    return []
                # Several Rasa processes flush their own spools: row ids are the order rows reached
                # PostgreSQL, the events' timestamps the conversation's order (what readers use).
                cur.execute("SELECT data, event_key FROM events WHERE sender_id = %s "
                            "ORDER BY (data::json->>'timestamp')::float, id", (sender,))
                return [dict(json.loads(data), _key=key) for data, key in cur.fetchall()]
        finally:
            conn.close()

    def wait_synced(self, sender: str, server: Optional[RasaServer] = None) -> List[dict]:
        """Wait until the events table holds exactly the tracker's events; both lists."""
        server = server or self.a
        expected = [_signature(e) for e in server.tracker(sender)["events"]]
        got: List[tuple] = []

        def synced() -> bool:
            nonlocal got
            try:
                got = [_signature(e) for e in self.pg_events(sender)]
            except psycopg2.OperationalError:
                return False
            return got == expected

        deadline = time.monotonic() + SYNC_TIMEOUT
        while time.monotonic() < deadline and not synced():
            time.sleep(0.5)
        assert got == expected, f"events table != tracker ({len(got)} vs {len(expected)} events)"
        return self.pg_events(sender)


def _signature(event: dict) -> tuple:
    """What identifies an event (the tracker API and the broker render it alike)."""
    return (event.get("event"), event.get("timestamp"), event.get("name"), event.get("text"),
            json.dumps(event.get("value"), sort_keys=True))


@pytest.fixture(scope="module")
def twilio_api():
    api = FakeTwilioApi(TWILIO_ACCOUNT, PRODUCTION_SECRETS["TWILIO_AUTH_TOKEN"]).start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def prod(tmp_path_factory, redis_server, pg_server, twilio_api):
    ensure_model()
    stack = ProductionStack(tmp_path_factory.mktemp("production"), redis_server, pg_server,
                            **outreach_env(twilio_api.base))
    try:
        yield stack.start()
    finally:
        stack.stop()


def math_question(replies: List[str]) -> str:
    assert replies and replies[0].startswith("Welcome to math"), replies
    return replies[-1]


def onboard(server: RasaServer, sender: str, name: str = "Aline") -> None:
    server.texts(sender, "hello")
    assert server.texts(sender, f"my name is {name}")[0] == f"Nice to meet you, {name}!"


def healthcheck(prod: "ProductionStack", target: str, server: Optional[RasaServer] = None):
    url = server.url if server is not None else f"http://127.0.0.1:{prod.actions.actions_port}"
    env = server.env if server is not None else prod.env
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "healthcheck.py"), target, "--url", url],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)


# --------------------------------------------------------------------------- health
def test_health_of_the_running_stack(prod):
    rasa = healthcheck(prod, "rasa", prod.a)
    assert rasa.returncode == 0 and rasa.stdout.startswith("rasa: ok"), rasa.stdout
    assert "append-only file on" in rasa.stdout
    body = requests.get(f"http://127.0.0.1:{prod.actions.actions_port}/healthz", timeout=60).json()
    assert body["status"] == "ok"
    assert body["checks"]["progress_db"] == {**body["checks"]["progress_db"], "status": "ok", "detail": "PostgreSQL"}
    assert body["checks"]["redis"]["status"] == "ok"
    assert body["checks"]["llm"]["status"] == "disabled"  # no key: offline texts
    actions = healthcheck(prod, "actions")
    assert actions.returncode == 0 and actions.stdout.startswith("actions: ok"), actions.stdout


# --------------------------------------------------------------------------- events
def test_events_reach_postgres_with_the_trackers_types_and_order(prod):
    sender = new_sender("events")
    onboard(prod.a, sender)
    question = math_question(prod.a.texts(sender, "math"))
    prod.a.texts(sender, "12")
    assert question  # a real question was asked
    prod.a.texts(sender, "stop")
    stored = prod.wait_synced(sender)

    kinds = [e["event"] for e in stored]
    assert kinds[:4] == ["action", "session_started", "action", "user"]
    assert (stored[0]["name"], stored[2]["name"]) == ("action_session_start", "action_listen")
    assert {"user", "bot", "action", "slot", "active_loop", "user_featurization"} <= set(kinds)
    assert [e["text"] for e in stored if e["event"] == "user"] == ["hello", "my name is Aline", "math", "12", "stop"]
    assert all(e["input_channel"] == "rest" for e in stored if e["event"] == "user")
    assert stored[-1]["event"] == "action" and stored[-1]["name"] == "action_listen"
    timestamps = [e["timestamp"] for e in stored]
    assert timestamps == sorted(timestamps)
    assert len({e["_key"] for e in stored}) == len(stored)  # every event once


def test_postgres_stopped_mid_conversation_loses_and_doubles_nothing(prod):
    sender = new_sender("pgdown")
    onboard(prod.a, sender, "Eric")
    question = math_question(prod.a.texts(sender, "math"))
    prod.wait_synced(sender)

    prod.pg.stop("fast")
    try:
        # The conversation goes on: every turn answered, as usual.
        assert prod.a.texts(sender, "repeat") == [question]
        hint = prod.a.texts(sender, "I don't know")
        assert hint[0].startswith("Hint") and hint[-1] == question
        assert prod.a.texts(sender, "stop")[0] == "OK, we stopped math."
        with sqlite3.connect(prod.spool_path(prod.a)) as spool:
            waiting = spool.execute("SELECT COUNT(*) FROM spool WHERE sender_id = ?", (sender,)).fetchone()[0]
        assert waiting > 0  # those turns' events wait on local disk
        health = healthcheck(prod, "rasa", prod.a)
        assert health.returncode == 0 and health.stdout.startswith("rasa: degraded"), health.stdout
        assert "events kept in the spool" in health.stdout
    finally:
        prod.pg.start()

    stored = prod.wait_synced(sender)  # every event of the conversation, once, in order
    assert [e["text"] for e in stored if e["event"] == "user"] == \
        ["hello", "my name is Eric", "math", "repeat", "I don't know", "stop"]
    assert len({e["_key"] for e in stored}) == len(stored)
    wait_until(lambda: sqlite3.connect(prod.spool_path(prod.a)).execute("SELECT COUNT(*) FROM spool")
               .fetchone()[0] == 0, message="spool empty")


# --------------------------------------------------------------------------- Redis
def test_redis_down_gets_a_polite_reply_in_the_learners_language(prod):
    english = new_sender("redisdown")
    onboard(prod.a, english, "Keza")
    before = len(prod.a.tracker(english)["events"])

    prod.redis.stop()
    try:
        for sender, text, language in ((english, "hello", "en"), (new_sender("rw"), "ndashaka imibare", "rw"),
                                       (new_sender("new"), "I want to learn math", "en")):
            response = prod.a.post(sender, text)
            assert response.status_code == 200
            assert response.json() == [{"recipient_id": sender, "text": TRY_AGAIN[language]}]
        health = healthcheck(prod, "rasa", prod.a)
        assert health.returncode == 1 and health.stdout.startswith("rasa: down"), health.stdout
    finally:
        prod.redis.start()

    # The failed turn left no trace; the conversation goes on from where it was.
    assert len(prod.a.tracker(english)["events"]) == before
    assert prod.a.texts(english, "hello")[0] == "Welcome back, Keza!"


def test_redis_killed_and_restarted_continues_the_conversation(prod):
    sender = new_sender("aof")
    onboard(prod.a, sender, "Mugisha")
    question = math_question(prod.a.texts(sender, "math"))
    events_before = prod.a.tracker(sender)["events"]
    time.sleep(1.5)  # appendfsync everysec: the last write is on disk

    prod.redis.stop(kill=True)  # a crash, not a clean shutdown (and no RDB snapshot: --save "")
    prod.redis.start()

    assert prod.a.texts(sender, "repeat") == [question]
    tracker = prod.a.tracker(sender)
    assert tracker["events"][:len(events_before)] == events_before
    assert tracker["slots"]["active_module"] == "math" and tracker["slots"]["name"] == "Mugisha"


# --------------------------------------------------------------------------- Rasa
def sms_to(server: RasaServer, number: str, body: str) -> List[str]:
    """A signed Twilio SMS webhook to ``server``; the TwiML reply's messages."""
    client = TwilioClient(server_url=server.url, public_base=PUBLIC_BASE, token=PRODUCTION_SECRETS["TWILIO_AUTH_TOKEN"])
    response = asyncio.run(client.post("/webhooks/twilio_sms/webhook", sms_params(body, From=number)))
    assert response.status_code == 200, response.text
    return messages_of(parse_twiml(response.text))


def test_conversation_and_a_reminder_survive_a_rasa_restart(prod, twilio_api):
    sender = new_sender("restart")
    onboard(prod.a, sender, "Uwase")
    question = math_question(prod.a.texts(sender, "math"))
    learner = "+25078" + str(uuid.uuid4().int)[:7]
    [confirmed] = sms_to(prod.a, learner, "remind me tomorrow")  # read by the SMS channel, not Rasa
    assert "17:00" in confirmed, confirmed
    store = redis.Redis.from_url(prod.redis.url)
    prefix = production_env(prod.env)["REDIS_KEY_PREFIX"] + ":outreach"
    [job_id] = [j for j in store.zrange(f"{prefix}:due", 0, -1)
                if SenderIdHasher(PRODUCTION_SECRETS["SENDER_ID_SECRET"])(learner).encode() in j]

    prod.a.stop()
    prod.ensure_second(wait=False)  # the second process loads alongside (used by the next tests)
    prod.a.start().wait_ready()

    assert prod.a.texts(sender, "repeat") == [question]
    assert prod.a.tracker(sender)["slots"]["name"] == "Uwase"
    prod.wait_synced(sender)  # and the events of before and after the restart, once each

    # "tomorrow" comes: the reminder is made due now, and goes out once (two processes run a worker)
    assert twilio_api.messages(learner) == []
    store.zadd(f"{prefix}:due", {job_id: time.time()})
    wait_until(lambda: twilio_api.messages(learner), timeout=120, message="the reminder SMS")
    prod.ensure_second()
    time.sleep(3)  # several more worker rounds in both processes
    assert twilio_api.messages(learner) in ([texts.text("outreach.reminder_sms", lang)] for lang in ("rw", "en"))
    assert store.zscore(f"{prefix}:due", job_id) is None and not store.hexists(f"{prefix}:jobs", job_id)


def test_two_rasa_processes_serve_one_learner_in_order(prod):
    second = prod.ensure_second()
    servers = [prod.a, second]
    sender = new_sender("order")
    messages = ["hello", "my name is Ganza", "math", "repeat", "help", "repeat", "stop",
                "reading", "stop", "debate", "stop", "hello"]
    client = redis.Redis(port=prod.redis.port, decode_responses=True)
    seq_key, queue_key = f"bakame:lock:{sender}:seq", f"bakame:lock:{sender}:queue"
    replies: Dict[int, List[str]] = {}
    errors: List[BaseException] = []
    queue_lengths: List[int] = []

    def send(i: int) -> None:
        try:
            replies[i] = servers[i % 2].texts(sender, messages[i])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = []
    for i in range(len(messages)):
        thread = threading.Thread(target=send, args=(i,))
        thread.start()
        threads.append(thread)
        # The next message is sent as soon as this one holds its ticket (has "arrived"),
        # while earlier ones are still being handled.
        deadline = time.monotonic() + 60
        while int(client.get(seq_key) or 0) < i + 1 and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
        queue_lengths.append(client.zcard(queue_key))
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert max(queue_lengths) >= 2  # the messages really overlapped

    events = prod.a.tracker(sender)["events"]
    assert [e["text"] for e in events if e["event"] == "user"] == messages  # each once, in order
    # Turns never interleave: each user message is followed by its own actions up to one
    # action_listen, and the HTTP reply is exactly that turn's bot messages.
    turns: List[List[dict]] = []
    for event in events:
        if event["event"] == "user":
            turns.append([])
        elif turns:
            turns[-1].append(event)
    for i, turn in enumerate(turns):
        listens = [n for n, e in enumerate(turn) if e["event"] == "action" and e["name"] == "action_listen"]
        assert listens == [len(turn) - 1], f"turn {i} ({messages[i]!r}) is not closed exactly once"
        assert [e["text"] for e in turn if e["event"] == "bot"] == replies[i], f"turn {i} reply mismatch"
    assert replies[1][0] == "Nice to meet you, Ganza!"
    assert replies[3] == [replies[2][-1]]  # "repeat" repeats the question "math" asked
    assert replies[11][0] == "Welcome back, Ganza!"
    prod.wait_synced(sender)


def test_many_learners_at_once_never_see_each_others_state(prod):
    second = prod.ensure_second()
    servers = [prod.a, second]
    names = ["Aline", "Eric", "Keza", "Mugisha", "Uwase", "Ganza", "Teta", "Kalisa"]
    senders = [new_sender("many") for _ in names]

    def run_phase(text_for):
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = [pool.submit(servers[i % 2].texts, senders[i], text_for(i)) for i in range(len(names))]
            return [f.result(timeout=300) for f in futures]

    run_phase(lambda i: "hello")
    greetings = run_phase(lambda i: f"my name is {names[i]}")
    for i, replies in enumerate(greetings):
        assert replies[0] == f"Nice to meet you, {names[i]}!"
    starts = run_phase(lambda i: "math" if i % 2 else "reading")
    for i, replies in enumerate(starts):
        assert replies[0].startswith("Welcome to math" if i % 2 else "Let's read")
    for i, sender in enumerate(senders):
        tracker = servers[(i + 1) % 2].tracker(sender)
        assert tracker["slots"]["name"] == names[i]
        assert tracker["slots"]["active_module"] == ("math" if i % 2 else "reading")
        assert [e["text"] for e in tracker["events"] if e["event"] == "user"] == \
            ["hello", f"my name is {names[i]}", "math" if i % 2 else "reading"]


# --------------------------------------------------------------------------- report
def test_report_runs_on_the_result(prod, tmp_path):
    prod.a.texts("+250788000111", "hello")  # a raw phone number as sender id: must not be printed
    for server in (prod.a, prod.b):
        if server is not None:
            wait_until(lambda: sqlite3.connect(prod.spool_path(server)).execute("SELECT COUNT(*) FROM spool")
                       .fetchone()[0] == 0, timeout=SYNC_TIMEOUT, message="spools flushed")
    out = tmp_path / "reports"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "report.py"), "--events-url", prod.pg.url,
                             "--progress-url", prod.pg.url, "--out", str(out)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr

    conn = psycopg2.connect(prod.pg.url)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), COUNT(DISTINCT sender_id) FROM events WHERE data::json->>'event' = 'user'")
        user_turns, learners = cur.fetchone()
        cur.execute("SELECT COUNT(*) FROM events WHERE data::json->>'event' = 'session_started'")
        sessions = cur.fetchone()[0]
    conn.close()

    summary = dict(line.split(",", 1) for line in (out / "summary.csv").read_text().splitlines()[1:])
    assert int(summary["turns"]) == user_turns
    assert int(summary["learners"]) == learners
    assert int(summary["sessions"]) == sessions
    assert int(summary["math_graded_answers"]) >= 1  # "12" was graded in the first test
    assert int(summary["math_learners_in_progress_store"]) >= 1
    modules = (out / "turns_by_module_channel.csv").read_text()
    assert "math,rest," in modules and "reading,rest," in modules
    for path in out.iterdir():
        assert path.stat().st_size > 0
        if path.suffix in (".csv", ".md"):
            text = path.read_text()
            assert "250788000111" not in text and "prod-" not in text and "order-" not in text
    assert {p.name for p in out.glob("*.png")} >= {"learners_sessions_per_day.png", "turns_by_module_channel.png",
                                                    "math_accuracy_by_level.png", "turn_latency.png"}
