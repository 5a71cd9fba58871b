"""Rate limits on the production stack: TWO Rasa processes (``endpoints.prod.yml``,
``credentials.prod.yml``, the trained model) sharing one REAL Redis, events into a REAL
PostgreSQL (private servers from tests/services.py), Twilio webhooks signed as Twilio signs.

* one learner's SMS, sent alternately to both processes: answered up to the limit, then
  exactly one polite answer, then empty TwiML; nothing over the limit reached Rasa, and every
  limited message is in the ``events`` table as ``rate_limited``; another learner is answered;
* the HTTP API: one address gets 429 after its limit, counted across both processes; another
  address is served; Twilio's webhooks are not counted (the SMS above all got 200).

The learner limit is per hour (3) and the address limit per minute (5): the windows slide,
so nothing here depends on when the test runs or how slow the machine is (the address
limit only needs six GETs within a minute).
"""
from __future__ import annotations

import json
import random
import time
from typing import Dict, List

import httpx
import psycopg2
import pytest
import redis

from core.texts import text as message_text
from connector_fixtures import TwilioClient, messages_of, parse_twiml, sms_params
from connectors.security import SenderIdHasher
from infra.settings import production_env
from tests.services import LocalPostgres, RedisServer
from tests.stack import Stack, ensure_model, stack_env
from tests.test_production_stack import PRODUCTION_SECRETS, RasaServer

pytestmark = pytest.mark.integration

TWILIO_TOKEN = PRODUCTION_SECRETS["TWILIO_AUTH_TOKEN"]
SENDER_SECRET = PRODUCTION_SECRETS["SENDER_ID_SECRET"]
PUBLIC = "https://bakame.example.org"
SMS = "/webhooks/twilio_sms/webhook"
PER_HOUR = 3
API_PER_MINUTE = 5
NOTICE = message_text("rate_limited", "en")


def fresh_number() -> str:
    return "+25078" + "".join(random.choice("0123456789") for _ in range(7))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    ensure_model()
    workdir = tmp_path_factory.mktemp("rate-limit")
    redis_server, pg = RedisServer(), LocalPostgres(database="bakame")
    redis_server.start()
    pg.start()
    base = stack_env(
        workdir, REDIS_URL=redis_server.url, DATABASE_URL=pg.url, PROGRESS_DB_URL=pg.url,
        **PRODUCTION_SECRETS, TWILIO_VALIDATE_SIGNATURE="true", PUBLIC_BASE_URL=PUBLIC,
        RATE_LIMIT_PER_MINUTE="0", RATE_LIMIT_PER_HOUR=str(PER_HOUR),
        API_RATE_LIMIT_PER_MINUTE=str(API_PER_MINUTE), API_RATE_LIMIT_PER_HOUR="0",
    )
    actions = Stack(workdir=workdir, env=base)
    base["ACTION_ENDPOINT_URL"] = f"http://127.0.0.1:{actions.actions_port}/webhook"
    env = {**base, **production_env(base)}
    servers = [RasaServer(name, workdir, {**env, "EVENT_SPOOL_PATH": str(workdir / f"spool-{name}" / "events.sqlite")})
               for name in ("a", "b")]
    try:
        actions.start_actions()
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        yield {"servers": servers, "redis": redis_server, "pg": pg}
    finally:
        for server in servers:
            server.stop()
        actions.stop_actions()
        redis_server.remove()
        pg.remove()


async def text(server: RasaServer, number: str, body: str) -> List[str]:
    client = TwilioClient(server_url=server.url, public_base=PUBLIC, token=TWILIO_TOKEN)
    response = await client.post(SMS, sms_params(body, From=number))
    assert response.status_code == 200, response.text  # never a 429: Twilio is not limited per address
    return messages_of(parse_twiml(response.text))


def limited_events(pg: LocalPostgres, sender: str, expected: int) -> List[Dict]:
    """The learner's ``rate_limited`` rows, once the spools have flushed ``expected`` of them."""
    rows: List[Dict] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        conn = psycopg2.connect(pg.url, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass('events') IS NOT NULL")
                if cur.fetchone()[0]:
                    # two processes, two spools: row ids are arrival order, timestamps the learner's
                    cur.execute("SELECT data FROM events WHERE sender_id = %s "
                                "ORDER BY (data::json->>'timestamp')::float, id", (sender,))
                    rows = [json.loads(d) for (d,) in cur.fetchall()]
        finally:
            conn.close()
        limited = [e for e in rows if e.get("event") == "rate_limited"]
        if len(limited) >= expected:
            return limited
        time.sleep(0.5)
    return [e for e in rows if e.get("event") == "rate_limited"]


async def test_the_learner_limit_holds_across_two_rasa_processes(stack):
    a, b = stack["servers"]
    number = fresh_number()
    sender = SenderIdHasher(SENDER_SECRET).sender_id(number)
    bodies = ["hello", "math", "7", "8", "9", "10"]
    replies = [await text((a, b)[i % 2], number, body) for i, body in enumerate(bodies)]

    assert all(len(r) == 1 and r[0] and r[0] != NOTICE for r in replies[:PER_HOUR]), replies
    assert replies[PER_HOUR] == [NOTICE]  # exactly one polite answer, in the learner's language
    assert replies[PER_HOUR + 1:] == [[], []]  # then <Response/>: no outbound SMS
    assert await text(b, fresh_number(), "hello") != []  # another learner is answered

    tracker = a.tracker(sender)
    assert [e["text"] for e in tracker["events"] if e["event"] == "user"] == bodies[:PER_HOUR]  # Rasa saw no more
    limited = limited_events(stack["pg"], sender, expected=len(bodies) - PER_HOUR)
    assert [e["text"] for e in limited] == bodies[PER_HOUR:]
    assert [e["answered"] for e in limited] == [True, False, False]
    assert {e["input_channel"] for e in limited} == {"twilio_sms"} and number not in json.dumps(limited)

    keys = list(redis.Redis.from_url(stack["redis"].url, decode_responses=True).scan_iter(match="*ratelimit*"))
    assert keys and not any(number in k or number[1:] in k or sender in k for k in keys)


def test_the_http_api_limit_per_address_holds_across_both_processes(stack):
    a, b = stack["servers"]

    def get(server: RasaServer, address: str) -> int:
        with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30) as client:
            return client.get(f"{server.url}/webhooks/rest/").status_code

    codes = [get((a, b)[i % 2], "127.0.0.2") for i in range(API_PER_MINUTE + 1)]
    assert codes == [200] * API_PER_MINUTE + [429]
    assert get(a, "127.0.0.3") == 200  # another address
