"""infra/rate_limit.py: sliding windows on REAL Redis (a unique key prefix on the machine's
Redis, never flushed) and in memory; the per-learner guard on the Twilio channels and the
REST channel (messages over the limit never reach the agent, one polite answer, recorded
on a real event broker); the per-address 429 on the HTTP API.

Times are passed explicitly (``now``), so the windows are checked without waiting.
"""
from __future__ import annotations

import json
import logging
import uuid
from types import SimpleNamespace

import pytest
import redis
import sqlalchemy as sa
from sanic import Sanic, response

from core.texts import text as message_text
from connector_fixtures import (
    AUTH_TOKEN, LEARNER, PUBLIC_BASE, SENDER_SECRET, ScriptedAgent, TwilioClient, call_params, make_app,
    messages_of, parse_twiml, said, sms_params,
)
from connectors.security import SenderIdHasher
from connectors.settings import SmsSettings, VoiceSettings
from connectors.state import InMemoryStateStore
from connectors.twilio_sms import TwilioSmsInput
from connectors.twilio_voice import TwilioVoiceInput
from infra.event_broker import BufferedSQLEventBroker
from infra.rate_limit import (
    ClientRateLimit, LearnerRateLimit, Limits, MemoryWindows, RateLimiter, RedisWindows, shared_windows,
)
from infra.redis_client import ResilientRedis
from infra.rest_channel import ResilientRestInput
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from tests.services import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
NOTICE = {lang: message_text("rate_limited", lang) for lang in ("en", "rw")}
T0 = 1_700_000_000.0


@pytest.fixture
def redis_prefix():
    """A key prefix of this test only; its keys are deleted afterwards (never FLUSHDB)."""
    prefix = f"test{uuid.uuid4().hex[:12]}:ratelimit:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


def redis_windows(prefix: str) -> RedisWindows:
    return RedisWindows(ResilientRedis.from_url("test rate limits", REDIS_URL, retries=0), prefix)


@pytest.fixture(params=["redis", "memory"])
def windows(request, redis_prefix):
    return redis_windows(redis_prefix) if request.param == "redis" else MemoryWindows()


# ---------------------------------------------------------------------- windows
async def test_per_minute_limit_answers_the_first_refusal_only(windows):
    limits = Limits(per_minute=3)
    verdicts = [await windows.hit("learner:a", limits, T0 + i) for i in range(6)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False, False]
    assert [v.first for v in verdicts[3:]] == [True, False, False]
    assert {v.window for v in verdicts[3:]} == {"minute"}
    assert verdicts[3].retry_after == pytest.approx(57.0)  # the message of T0 leaves the window at T0+60
    assert (await windows.hit("learner:b", limits, T0 + 6)).allowed  # another learner is not affected


async def test_the_minute_window_slides(windows):
    limits = Limits(per_minute=2)
    for t in (0, 30):
        assert (await windows.hit("k", limits, T0 + t)).allowed
    assert not (await windows.hit("k", limits, T0 + 59)).allowed
    assert (await windows.hit("k", limits, T0 + 60.5)).allowed  # T0's message left the window
    refused = await windows.hit("k", limits, T0 + 61)
    assert not refused.allowed and not refused.first  # answered at T0+59: not again within a minute
    again = await windows.hit("k", limits, T0 + 121)
    assert again.allowed  # T0+30 and T0+60.5 are both older than 60 s


async def test_after_a_window_length_a_refusal_is_answered_again(windows):
    limits = Limits(per_minute=1)
    assert (await windows.hit("k", limits, T0)).allowed
    assert (await windows.hit("k", limits, T0 + 1)).first
    assert (await windows.hit("k", limits, T0 + 61)).allowed
    assert (await windows.hit("k", limits, T0 + 62)).first  # the last answered refusal was 61 s ago


async def test_per_hour_limit(windows):
    limits = Limits(per_minute=0, per_hour=2)
    assert (await windows.hit("k", limits, T0)).allowed
    assert (await windows.hit("k", limits, T0 + 600)).allowed
    refused = await windows.hit("k", limits, T0 + 1200)
    assert (refused.allowed, refused.first, refused.window) == (False, True, "hour")
    assert refused.retry_after == pytest.approx(2400.0)
    assert not (await windows.hit("k", limits, T0 + 3599)).allowed
    assert (await windows.hit("k", limits, T0 + 3600.5)).allowed


async def test_refused_messages_do_not_count(windows):
    """The limit is on answered messages: a bot that keeps sending is let through again as
    soon as its answered messages leave the window."""
    limits = Limits(per_minute=2)
    answered = [(await windows.hit("k", limits, T0 + i * 5)).allowed for i in range(12)]  # one minute
    assert answered.count(True) == 2
    assert (await windows.hit("k", limits, T0 + 61)).allowed


async def test_two_processes_share_the_count_in_redis(redis_prefix):
    process_a, process_b = redis_windows(redis_prefix), redis_windows(redis_prefix)
    limits = Limits(per_minute=3)
    verdicts = [await (process_a if i % 2 == 0 else process_b).hit("k", limits, T0 + i) for i in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    assert [v.first for v in verdicts[3:]] == [True, False]  # one answer between both processes


async def test_redis_keys_name_no_learner_and_expire(redis_prefix):
    limiter = RateLimiter(Limits(per_minute=1, per_hour=5), redis_windows(redis_prefix), "learner")
    sender = "tw_0123456789abcdef"
    await limiter.check(sender)
    await limiter.check(sender)  # refused: the notice key is set too
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    keys = list(client.scan_iter(match=redis_prefix + "*"))
    assert len(keys) == 2 and all(sender not in k for k in keys)
    assert all(0 < client.ttl(k) <= 3600 for k in keys)
    client.close()


async def test_redis_down_lets_messages_through_and_logs_once(caplog):
    dead = RedisWindows(ResilientRedis.from_url("dead", f"redis://127.0.0.1:{free_port()}/0", retries=0,
                                                socket_connect_timeout=0.5), "x:")
    limiter = RateLimiter(Limits(per_minute=1), dead, "learner")
    with caplog.at_level(logging.WARNING, logger="infra.rate_limit"):
        verdicts = [await limiter.check("learner-1") for _ in range(3)]
    assert all(v.allowed for v in verdicts)
    assert len([r for r in caplog.records if "not checked" in r.getMessage()]) == 1


def test_settings_credentials_then_environment_then_default(monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "7")
    monkeypatch.delenv("RATE_LIMIT_PER_HOUR", raising=False)
    assert LearnerRateLimit.from_settings({}, redis_url="").limiter.limits == Limits(7, 300)
    assert LearnerRateLimit.from_settings({"rate_limit_per_minute": 2}, "").limiter.limits == Limits(2, 300)
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.setenv("RATE_LIMIT_PER_HOUR", "0")
    assert not LearnerRateLimit.from_settings({}, "").limiter.limits.enabled
    monkeypatch.setenv("API_RATE_LIMIT_PER_MINUTE", "nonsense")
    monkeypatch.setenv("API_TRUSTED_PROXIES", "1")
    client = ClientRateLimit.from_settings({}, "")
    assert client.limiter.limits == Limits(120, 3000) and client.trusted_proxies == 1
    assert isinstance(shared_windows(REDIS_URL), RedisWindows) and isinstance(shared_windows(""), MemoryWindows)
    assert SmsSettings.from_credentials({"rate_limit_per_hour": 9}).rate_limits == Limits(0, 9)
    assert SmsSettings().rate_limits is None  # constructed directly (tests): no limit unless given


# ---------------------------------------------------------------------- the guard, with Rasa's stores
class Handler:
    """Stands in for Rasa's turn: counts the messages that reach it and answers each."""

    def __init__(self):
        self.received = []

    async def __call__(self, message):
        self.received.append(message.text)
        await message.output_channel.send_text_message(message.sender_id, f"answer to {message.text}")


@pytest.fixture
def broker(tmp_path):
    broker = BufferedSQLEventBroker(f"sqlite:///{tmp_path / 'events.db'}", spool_path=tmp_path / "spool.sqlite",
                                    start=False)
    yield broker
    broker.stop()


def stored_events(broker, sender):
    broker.flush_all()
    with broker._get_engine().connect() as conn:
        rows = conn.execute(sa.text("SELECT data FROM events WHERE sender_id = :s ORDER BY id"), {"s": sender})
        return [json.loads(data) for (data,) in rows]


async def rasa_stores(broker, sender, language):
    """Rasa's in-memory tracker store (with the broker) holding a conversation in ``language``."""
    from rasa.core.tracker_store import InMemoryTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import SlotSet
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.load("domain.yml")
    store = InMemoryTrackerStore(domain, event_broker=broker)
    await store.save(DialogueStateTracker.from_events(sender, [SlotSet("language", language)], slots=domain.slots))
    return SimpleNamespace(ctx=SimpleNamespace(agent=SimpleNamespace(tracker_store=store)))


def guard(limits, app, end_call=False):
    handler = Handler()
    limit = LearnerRateLimit(RateLimiter(limits, MemoryWindows(), "learner"))
    return handler, limit.guard(handler, lambda: app, end_call=end_call)


async def send(guarded, sender, text, channel="rest"):
    collector = CollectingOutputChannel()
    await guarded(UserMessage(text, collector, sender, input_channel=channel, metadata={"input": "text"}))
    return collector.messages


async def test_guard_answers_once_in_the_trackers_language_and_records_every_limited_message(broker):
    sender = f"learner-{uuid.uuid4().hex[:8]}"
    app = await rasa_stores(broker, sender, "rw")
    handler, guarded = guard(Limits(per_minute=2), app)
    replies = [await send(guarded, sender, f"ni {i}") for i in range(5)]
    assert handler.received == ["ni 0", "ni 1"]  # nothing else reached Rasa
    assert [m["text"] for m in replies[0] + replies[1]] == ["answer to ni 0", "answer to ni 1"]
    assert [m["text"] for m in replies[2]] == [NOTICE["rw"]]
    assert replies[3] == [] and replies[4] == []
    limited = [e for e in stored_events(broker, sender) if e["event"] == "rate_limited"]
    assert [e["text"] for e in limited] == ["ni 2", "ni 3", "ni 4"]
    assert [e["answered"] for e in limited] == [True, False, False]
    assert {e["window"] for e in limited} == {"minute"} and {e["input_channel"] for e in limited} == {"rest"}


async def test_guard_without_a_known_language_detects_it_from_the_message(broker):
    handler, guarded = guard(Limits(per_minute=1), app=None)
    assert await send(guarded, "new-learner", "muraho")  # allowed
    assert [m["text"] for m in await send(guarded, "new-learner", "ndashaka kwiga imibare")] == [NOTICE["rw"]]


async def test_guard_ending_calls_sends_the_end_call_payload(broker):
    handler, guarded = guard(Limits(per_minute=1), app=None, end_call=True)
    await send(guarded, "caller", "hello")
    first, later = await send(guarded, "caller", "hello again"), await send(guarded, "caller", "hello?")
    assert [m["custom"] for m in first] == [{"end_call": True, "text": NOTICE["en"]}]
    assert [m["custom"] for m in later] == [{"end_call": True}]


def test_disabled_limits_leave_on_new_message_as_it_is():
    handler = Handler()
    assert LearnerRateLimit(RateLimiter(Limits(0, 0), MemoryWindows(), "learner")).guard(handler, lambda: None) \
        is handler


# ---------------------------------------------------------------------- the channels
def limit(per_minute):
    return LearnerRateLimit(RateLimiter(Limits(per_minute=per_minute), MemoryWindows(), "learner"))


def twilio(channel_class, settings_class, agent, per_minute, **extra):
    settings = settings_class(auth_token=AUTH_TOKEN, sender_id_secret=SENDER_SECRET, public_base_url=PUBLIC_BASE,
                              timing_instrumentation=False, **extra)
    channel = channel_class(settings, store=InMemoryStateStore())
    channel.rate_limit = limit(per_minute)  # counted in this test's own memory (settings.rate_limits: shared)
    return TwilioClient(make_app([channel], agent))


async def test_sms_over_the_limit_gets_one_polite_answer_then_empty_twiml(broker):
    sender = SenderIdHasher(SENDER_SECRET).sender_id(LEARNER)
    agent = ScriptedAgent()
    agent.state[sender] = {"language": "rw", "module": None, "loop": None, "problem": None, "said": []}
    agent.tracker_store.event_broker = broker
    client = twilio(TwilioSmsInput, SmsSettings, agent, per_minute=3)
    bodies = ["imibare", "7", "5", "8", "9", "10"]
    replies = []
    for body in bodies:
        response = await client.post("/webhooks/twilio_sms/webhook", sms_params(body))
        assert response.status_code == 200
        replies.append(messages_of(parse_twiml(response.text)))
    assert [m.text for m in agent.received] == bodies[:3]
    assert all(len(r) == 1 and r[0] for r in replies[:3])
    assert replies[3] == [NOTICE["rw"]]  # the learner speaks Kinyarwanda (the tracker's language)
    assert replies[4] == [] and replies[5] == []  # <Response/>: no outbound SMS
    limited = [e for e in stored_events(broker, sender) if e["event"] == "rate_limited"]
    assert [e["text"] for e in limited] == bodies[3:]
    assert {e["input_channel"] for e in limited} == {"twilio_sms"} and LEARNER not in json.dumps(limited)
    other = await client.post("/webhooks/twilio_sms/webhook", sms_params("hello", From="+250788000111"))
    assert messages_of(parse_twiml(other.text)) == ["Sorry?"]  # another learner is answered


async def test_a_call_over_the_limit_is_ended_politely():
    agent = ScriptedAgent()
    client = twilio(TwilioVoiceInput, VoiceSettings, agent, per_minute=2, rw_mode="gather")
    url = "/webhooks/twilio_voice/webhook"
    start = parse_twiml((await client.post(url, call_params())).text)
    assert start.find("Gather") is not None  # the call starts (1 turn)
    one = parse_twiml((await client.post(url + "?step=input", call_params(Digits="1"))).text)
    assert one.find("Gather") is not None  # math (2 turns)
    over = parse_twiml((await client.post(url + "?step=input", call_params(Digits="7"))).text)
    assert said(over) == [NOTICE["en"]] and over.find("Hangup") is not None
    again = parse_twiml((await client.post(url, call_params(CallSid="CA" + "9" * 32))).text)
    assert NOTICE["en"] not in said(again) and again.find("Hangup") is not None  # a new call: ended at once
    assert [m.text for m in agent.received] == ["/session_start", "/start_math"]


# ---------------------------------------------------------------------- per client address
def api_app(per_minute, trusted_proxies=0):
    """Rasa's REST channel and the Twilio SMS channel mounted as ``rasa run`` does, plus an API route."""
    rest = ResilientRestInput(client_limit=ClientRateLimit(
        RateLimiter(Limits(per_minute=per_minute), MemoryWindows(), "client"), trusted_proxies))
    sms = TwilioSmsInput(SmsSettings(auth_token=AUTH_TOKEN, sender_id_secret=SENDER_SECRET,
                                     public_base_url=PUBLIC_BASE, timing_instrumentation=False),
                         store=InMemoryStateStore())
    app = make_app([rest, sms], ScriptedAgent())

    @app.get("/conversations/<sender>/tracker")
    async def tracker(request, sender):
        return response.json({"sender_id": sender})

    rest.client_limit.register(app)  # what the blueprint's before_server_start listener does in `rasa run`
    return app


async def get(app, path, **headers):
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rasa") as client:
        return await client.get(path, headers=headers)


async def test_the_http_api_answers_429_over_the_per_address_limit():
    app = api_app(per_minute=3)
    await app._startup()
    codes = [(await get(app, "/conversations/x/tracker")).status_code for _ in range(3)]
    refused = await get(app, "/webhooks/rest/")
    assert codes == [200, 200, 200] and refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert (await get(app, "/status")).status_code != 429  # health checks are not counted
    client = TwilioClient(app)
    client._started = True
    sms = await client.post("/webhooks/twilio_sms/webhook", sms_params("hello"))
    assert sms.status_code == 200 and messages_of(parse_twiml(sms.text)) == ["Sorry?"]  # Twilio: not limited


async def test_forwarded_for_counts_only_behind_a_trusted_proxy():
    trusting, ignoring = api_app(per_minute=1, trusted_proxies=1), api_app(per_minute=1)
    for app in (trusting, ignoring):
        await app._startup()
    spoofed = {"X-Forwarded-For": "203.0.113.9, 198.51.100.1"}
    assert (await get(trusting, "/conversations/x/tracker", **spoofed)).status_code == 200
    # the proxy's own entry (the last) is the client: forging the first entry changes nothing
    forged = {"X-Forwarded-For": "192.0.2.77, 198.51.100.1"}
    assert (await get(trusting, "/conversations/x/tracker", **forged)).status_code == 429
    assert (await get(trusting, "/conversations/x/tracker", **{"X-Forwarded-For": "198.51.100.2"})).status_code == 200
    assert (await get(ignoring, "/conversations/x/tracker", **spoofed)).status_code == 200
    assert (await get(ignoring, "/conversations/x/tracker", **{"X-Forwarded-For": "198.51.100.2"})).status_code == 429


def test_the_programme_report_does_not_count_limited_messages_as_turns():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import report

    user = {"event": "user", "timestamp": T0, "text": "hello", "metadata": {"channel": "twilio_sms"},
            "parse_data": {"intent": {"name": "greet"}}}
    limited = {"event": "rate_limited", "timestamp": T0 + 1, "text": "hello?", "input_channel": "twilio_sms"}
    analysis = report.analyse([(1, "s", user), (2, "s", limited)])
    assert [t.text for t in analysis.turns] == ["hello"]
