"""Outreach (issue 18): missed-call callback, reminders, guardian reports, opt-out, sealed numbers.

Against the real shared Redis (a unique key prefix per test), a real progress store and a
local fake of Twilio's REST API (``tests/fake_twilio_api.py``) the ``twilio`` client is
pointed at; webhooks are signed as Twilio signs them. Time is the outreach's clock (a
number the test moves), never a timed assertion.
"""
from __future__ import annotations

import asyncio
import collections
import json
import random
import subprocess
import uuid
from datetime import datetime, timezone

import pytest

from aggregator_fixtures import FakeAtApi, FormPoster, UssdPhone
from connector_fixtures import (
    AUTH_TOKEN, PUBLIC_BASE, SENDER_SECRET, ScriptedAgent, TwilioClient, call_params, find, make_app, messages_of,
    parse_twiml, said, sms_params,
)
from connectors.outreach_input import guardian_request, guardian_yes, mask_numbers, reminder_request
from connectors.prompts import Prompts
from connectors.security import SenderIdHasher
from connectors.settings import SmsSettings, UssdSettings, VoiceSettings
from connectors.state import InMemoryStateStore
from connectors.twilio_sms import TwilioSmsInput
from connectors.twilio_voice import TwilioVoiceInput
from connectors.ussd import UssdInput
from core import gsm, texts
from core.number_vault import NumberVault, new_key_spec, parse_keys
from core.types import Progress
from fake_twilio_api import FakeTwilioApi
from infra.learner_data import RedisData, Stores
from infra.optout import RWANDA, OptOutRegistry
from infra.outbound import TwilioOutbound
from infra.outreach import Outreach, aggregator_outbox
from infra.outreach_settings import OutreachSettings
from infra.progress_store import ProgressStore
from infra.redis_client import redis_client


REDIS = "redis://127.0.0.1:6379/0"
ACCOUNT = "AC" + "7" * 32
CALL_FROM, SMS_FROM = "+250780000001", "+250780000002"
CALLBACK = "/webhooks/twilio_voice/callback"
SMS = "/webhooks/twilio_sms/webhook"
HASH = SenderIdHasher(SENDER_SECRET)
MONDAY_10H = datetime(2026, 1, 5, 10, 0, tzinfo=RWANDA).timestamp()  # a Monday, 10:00 in Kigali


def fresh_number() -> str:
    return "+25078" + "".join(random.choice("0123456789") for _ in range(7))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Stack:
    """One deployment's outreach pieces on a private key prefix; ``restart`` builds new ones."""

    def __init__(self, api: FakeTwilioApi, progress: ProgressStore, **settings) -> None:
        self.api, self.progress, self.clock = api, progress, Clock(MONDAY_10H)
        self.prefix = f"test{uuid.uuid4().hex[:10]}"
        self.keys = new_key_spec("k1")
        values = dict(enabled=True, redis_url=REDIS, account_sid=ACCOUNT, auth_token=AUTH_TOKEN,
                      api_base_url=api.base, call_from=CALL_FROM, sms_from=SMS_FROM, public_base_url=PUBLIC_BASE,
                      callback_delay=0.0, poll_seconds=0.05)
        values.update(settings)
        self.settings = OutreachSettings(**values)
        self.clients = []
        self.outreach = self.restart()

    def restart(self) -> Outreach:
        """A new process: new clients and objects, the same Redis and keys."""
        client = redis_client(REDIS)
        self.clients.append(client)
        self.optouts = OptOutRegistry(client, key=f"{self.prefix}:optout")
        vault = NumberVault(parse_keys(self.keys))
        outbox = aggregator_outbox(self.settings, client, vault, self.optouts, key=f"{self.prefix}:at_sms:outbox")
        return Outreach(self.settings, client, vault, TwilioOutbound(ACCOUNT, AUTH_TOKEN, self.api.base),
                        self.optouts, self.progress, prefix=f"{self.prefix}:outreach", clock=self.clock,
                        sms_outbox=outbox)

    def voice(self, agent=None):
        channel = TwilioVoiceInput(VoiceSettings(auth_token=AUTH_TOKEN, sender_id_secret=SENDER_SECRET,
                                                 public_base_url=PUBLIC_BASE, timing_instrumentation=False),
                                   store=InMemoryStateStore(), outreach=self.outreach)
        return TwilioClient(make_app([channel], agent or ScriptedAgent()))

    def sms(self, agent=None):
        channel = TwilioSmsInput(SmsSettings(auth_token=AUTH_TOKEN, sender_id_secret=SENDER_SECRET,
                                             public_base_url=PUBLIC_BASE, timing_instrumentation=False,
                                             optout=True), store=InMemoryStateStore())
        channel.outreach, channel.optouts = self.outreach, self.optouts
        return TwilioClient(make_app([channel], agent or ScriptedAgent()))

    def ussd(self, agent=None):
        channel = UssdInput(UssdSettings(sender_id_secret=SENDER_SECRET, timing_instrumentation=False),
                            store=InMemoryStateStore())
        channel.outreach = self.outreach
        return FormPoster(make_app([channel], agent or ScriptedAgent()))

    async def redis_dump(self) -> bytes:
        """Every key of this deployment, as ``DUMP`` writes it (what a Redis backup holds)."""
        client = self.clients[0]
        return b"".join([await client.dump(k) or b"" async for k in client.scan_iter(match=f"{self.prefix}*")])

    async def close(self) -> None:
        await self.outreach.stop()
        client = self.clients[0]
        keys = [k async for k in client.scan_iter(match=f"{self.prefix}*")]
        if keys:
            await client.delete(*keys)


@pytest.fixture
def api():
    fake = FakeTwilioApi(ACCOUNT, AUTH_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
async def progress(tmp_path):
    store = ProgressStore(f"sqlite+aiosqlite:///{tmp_path}/progress.db", spool_path=str(tmp_path / "spool.db"))
    yield store
    await store.dispose()


@pytest.fixture
async def stack(api, progress):
    made = []

    def build(**settings) -> Stack:
        made.append(Stack(api, progress, **settings))
        return made[-1]

    yield build
    for one in made:
        await one.close()


async def sms(client, body, number):
    response = await client.post(SMS, sms_params(body, From=number))
    assert response.status_code == 200, response.text
    return messages_of(parse_twiml(response.text))


async def until(condition, rounds=400):
    """Wait for the background worker (bounded; not a timing assertion)."""
    for _ in range(rounds):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return False


# ---------------------------------------------------------------------- missed-call callback
async def test_a_missed_call_is_rejected_and_called_back_once(stack):
    s = stack()
    learner = fresh_number()
    response = await s.voice().post(CALLBACK, call_params(From=learner, Caller=learner, To=CALL_FROM))
    assert response.status_code == 200
    reject = parse_twiml(response.text).find("Reject")
    assert reject is not None and reject.get("reason") == "busy"
    assert await until(lambda: s.api.calls(learner)), "no callback reached the Twilio API"
    await asyncio.sleep(0.3)  # a few more worker rounds: still one call
    [call] = s.api.calls(learner)
    assert call["Url"] == f"{PUBLIC_BASE}/webhooks/twilio_voice/webhook" and call["Method"] == "POST"
    assert call["From"] == CALL_FROM and call["StatusCallback"] == f"{PUBLIC_BASE}/webhooks/twilio_voice/status"


async def test_an_unsigned_missed_call_is_refused_and_not_called_back(stack):
    s = stack()
    learner = fresh_number()
    response = await s.voice().post(CALLBACK, call_params(From=learner), sign=False)
    assert response.status_code == 403
    await s.outreach.run_due()
    assert s.api.calls(learner) == []


async def test_callbacks_per_learner_per_day(stack):
    s = stack(callbacks_per_day=1)
    learner = fresh_number()
    assert await s.outreach.request_callback(HASH(learner), learner) == "queued"
    assert await s.outreach.request_callback(HASH(learner), learner) == "daily_limit"
    assert await s.outreach.run_due() == 1 and len(s.api.calls(learner)) == 1
    s.clock.now += 86400  # the next day
    assert await s.outreach.request_callback(HASH(learner), learner) == "queued"


async def test_no_callback_in_quiet_hours_but_at_once_outside_the_bulk_window(stack):
    s = stack(quiet_hours=(21, 7))
    learner = fresh_number()
    s.clock.now = datetime(2026, 1, 5, 22, 30, tzinfo=RWANDA).timestamp()
    assert await s.outreach.request_callback(HASH(learner), learner) == "quiet_hours"
    assert await s.outreach.run_due() == 0 and s.api.calls(learner) == []
    s.clock.now = datetime(2026, 1, 5, 20, 30, tzinfo=RWANDA).timestamp()  # after 20:00, before quiet hours
    assert await s.outreach.request_callback(HASH(learner), learner) == "queued"
    assert await s.outreach.run_due() == 1  # the learner asked: not held to 08:00-20:00


async def test_calls_in_progress_are_capped_and_a_waiting_callback_is_kept(stack):
    s = stack(max_calls=1)
    first, second = fresh_number(), fresh_number()
    for number in (first, second):
        await s.outreach.request_callback(HASH(number), number)
    assert await s.outreach.run_due() == 1
    assert await s.outreach.run_due() == 0  # the second waits for a free slot
    [placed] = [r for r in s.api.requests if r["kind"] == "Calls"]
    waiting = second if placed["form"]["To"] == first else first
    s.outreach = s.restart()  # nothing queued is lost on a restart
    voice = s.voice()
    ended = call_params(CallSid=placed["sid"], CallStatus="completed", Direction="outbound-api",
                        To=placed["form"]["To"], From=CALL_FROM, CallDuration="60")
    assert (await voice.post("/webhooks/twilio_voice/status", ended)).status_code == 200
    s.clock.now += 60
    assert await s.outreach.run_due() == 1 and len(s.api.calls(waiting)) == 1


async def test_the_monthly_budget_caps_outbound(stack):
    s = stack(monthly_budget_cents=40.0, call_cost_cents=30.0)
    first, second = fresh_number(), fresh_number()
    await s.outreach.request_callback(HASH(first), first)
    assert await s.outreach.run_due() == 1
    await s.outreach.request_callback(HASH(second), second)
    assert await s.outreach.run_due() == 0 and s.api.calls(second) == []


async def test_a_failed_twilio_request_is_retried(stack):
    s = stack()
    learner = fresh_number()
    s.api.fail_next = 1
    await s.outreach.request_callback(HASH(learner), learner)
    assert await s.outreach.run_due() == 0
    s.clock.now += 60
    assert await s.outreach.run_due() == 1 and len(s.api.calls(learner)) == 1


# ---------------------------------------------------------------------- reminders
@pytest.mark.parametrize("language,body", [("en", "remind me tomorrow"), ("rw", "unyibutse ejo")])
async def test_a_reminder_survives_a_restart_and_fires_once(stack, language, body):
    s = stack()
    learner = fresh_number()
    agent = ScriptedAgent()
    agent.state[HASH(learner)] = {"language": language, "module": None, "loop": None, "problem": None, "said": []}
    [reply] = await sms(s.sms(agent), body, learner)
    when = texts.text("outreach.reminder_when_tomorrow", language, hour="17", minute="00")
    assert reply == texts.text("outreach.reminder_set", language,
                               how=texts.text("outreach.reminder_how_sms", language), when=when)
    assert agent.received == []  # answered by the channel
    assert await s.outreach.run_due() == 0  # not due yet
    await s.outreach.stop()
    workers = [s.restart(), s.restart()]  # every process restarted; two of them now
    s.clock.now = datetime(2026, 1, 6, 17, 0, 5, tzinfo=RWANDA).timestamp()
    sent = await asyncio.gather(*(w.run_due() for w in workers))
    assert sum(sent) == 1 and s.api.messages(learner) == [texts.text("outreach.reminder_sms", language)]
    s.clock.now += 3600
    assert await workers[0].run_due() == 0 and len(s.api.messages(learner)) == 1


async def test_a_reminder_asked_for_the_night_waits_for_0800_and_one_a_day(stack):
    s = stack()
    learner = fresh_number()
    await sms(s.sms(), "remind me tomorrow at 6am by call", learner)
    await sms(s.sms(), "remind me tomorrow at 7am by call", learner)  # the same day: replaces the first
    s.clock.now = datetime(2026, 1, 6, 7, 0, 5, tzinfo=RWANDA).timestamp()
    assert await s.outreach.run_due() == 0 and s.api.calls(learner) == []
    s.clock.now = datetime(2026, 1, 6, 8, 0, 1, tzinfo=RWANDA).timestamp()
    assert await s.outreach.run_due() == 1 and len(s.api.calls(learner)) == 1


# ---------------------------------------------------------------------- guardians
REPORTS = {
    "en": "BAKAME: Aline practised math and reading this week: 4 of 5 right. Well done, keep it up! STOP to end",
    "rw": "BAKAME: Aline yitoje imibare na gusoma iki cyumweru: 4 kuri 5 ni byo. Ni byiza cyane, komeza! "
          "HAGARIKA ngo bihagarare",
}


@pytest.mark.parametrize("language", ["en", "rw"])
async def test_guardian_double_opt_in_weekly_report_then_hagarika(stack, progress, language):
    s = stack()
    learner, guardian = fresh_number(), fresh_number()
    learner_id = HASH(learner)
    agent = ScriptedAgent()
    agent.state[learner_id] = {"language": language, "module": None, "loop": None, "problem": None, "said": []}
    await progress.save_profile(learner_id, name="Aline", language=language)
    await progress.save(learner_id, "math", Progress(attempts=10, correct=7))
    channel = s.sms(agent)
    local = "0" + guardian[4:7] + " " + guardian[7:10] + " " + guardian[10:]
    [reply] = await sms(channel, f"my mother's number is {local}", learner)
    assert reply == texts.text("outreach.guardian_asked", language)
    assert agent.received == []

    assert await s.outreach.run_due() == 1  # the invitation
    assert s.api.messages(guardian) == [texts.text("outreach.guardian_invite", language)]
    assert await s.outreach.run_due() == 0  # no report before the guardian says yes
    [confirmed] = await sms(channel, "YEGO" if language == "rw" else "yes", guardian)
    assert confirmed == texts.text("outreach.guardian_confirmed", language)

    await progress.save(learner_id, "math", Progress(attempts=13, correct=10))  # practised this week
    await progress.save(learner_id, "reading", Progress(attempts=2, correct=1))
    s.clock.now = datetime(2026, 1, 10, 10, 0, 5, tzinfo=RWANDA).timestamp()  # Saturday 10:00
    assert await s.outreach.run_due() == 1
    report = s.api.messages(guardian)[-1]
    assert report == REPORTS[language] and gsm.is_gsm(report) and gsm.segment_count(report) == 1
    assert await s.outreach.run_due() == 0  # once a week

    [stopped] = await sms(channel, "HAGARIKA", guardian)
    assert stopped == gsm.sanitize(Prompts().get("optout_stopped", None))  # the guardian's language is not known
    s.clock.now += 7 * 86400
    assert await s.outreach.run_due() == 0 and len(s.api.messages(guardian)) == 2

    dump = await s.redis_dump()
    for number in (learner, guardian):
        assert number[4:].encode() not in dump and number[1:].encode() not in dump


async def test_a_number_in_a_message_never_reaches_the_assistant(stack):
    s = stack()
    agent = ScriptedAgent()
    learner, other = fresh_number(), fresh_number()
    await sms(s.sms(agent), f"call {other[4:]} please", learner)
    [message] = agent.received
    assert other[4:] not in message.text and "[number]" in message.text


async def test_outbound_stops_at_once_for_an_opted_out_number(stack):
    s = stack()
    learner = fresh_number()
    await sms(s.sms(), "remind me tomorrow", learner)
    await sms(s.sms(), "STOP", learner)
    s.clock.now += 86400
    assert await s.outreach.run_due() == 0 and s.api.messages(learner) == []
    assert await s.outreach.request_callback(HASH(learner), learner) == "opted_out"


# ---------------------------------------------------------------------- erase, dumps
async def test_export_shows_and_erase_removes_numbers_links_and_jobs(stack, tmp_path):
    s = stack()
    learner, guardian = fresh_number(), fresh_number()
    await s.outreach.request_reminder(HASH(learner), learner, s.clock.now + 3600, "sms", "en")
    await s.outreach.link_guardian(HASH(learner), HASH(guardian), guardian, "en")
    stores = Stores(redis_url=REDIS, lock_db=0, key_prefix=s.prefix, redis_parts={}, database_url="",
                    progress_url="", spool_path=tmp_path / "spool")
    data = RedisData(stores)
    try:
        exported = data.export(HASH(learner), {HASH(learner)})["outreach"]
        assert exported["number_kept_encrypted"] and exported["guardian"]["guardian"] == HASH(guardian)
        assert {j["kind"] for j in exported["jobs"]} == {"reminder", "guardian_invite"}
        assert learner[4:] not in json.dumps(exported) and guardian[4:] not in json.dumps(exported)
        counts = collections.Counter()
        data.erase(HASH(learner), {HASH(learner)}, counts)
        assert counts["outreach numbers, guardian links, jobs"] >= 4
    finally:
        data.close()
    assert await s.outreach.numbers.number(HASH(learner)) is None
    assert await s.outreach.numbers.number(HASH(guardian)) is None  # nobody else named this guardian
    assert await s.outreach.numbers.guardian_of(HASH(learner)) is None
    s.clock.now += 86400
    assert await s.outreach.run_due() == 0 and s.api.requests == []


async def test_numbers_are_unreadable_in_redis_and_postgresql_dumps(stack, api):
    pg = ProgressStore("postgresql://postgres@127.0.0.1:5432/test")
    s = Stack(api, pg)
    learner, guardian = fresh_number(), fresh_number()
    try:
        await s.sms().post(SMS, sms_params(f"umubyeyi wanjye {guardian}", From=learner))
        await s.outreach.request_callback(HASH(learner), learner)
        await pg.save_profile(HASH(learner), name="Aline", language="rw")
        await pg.flush()
        dump = await s.redis_dump()
        assert b"k1:" in dump  # the sealed numbers are there...
        pg_dump = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "test"],
                                 capture_output=True, check=True).stdout
        for number in (learner, guardian):  # ...and no number can be read, in any form
            for form in (number, number[1:], "0" + number[4:], number[4:]):
                assert form.encode() not in dump and form.encode() not in pg_dump
        assert await s.outreach.numbers.number(HASH(guardian)) == guardian
    finally:
        await pg.forget(HASH(learner))
        await pg.dispose()
        await s.close()


# ---------------------------------------------------------------------- what an SMS asks (pure)
NOW = datetime(2026, 1, 5, 10, 0, tzinfo=RWANDA)


@pytest.mark.parametrize("text,due,channel", [
    ("remind me tomorrow", "2026-01-06 17:00", "sms"),
    ("Unyibutse ejo saa 9", "2026-01-06 09:00", "sms"),
    ("please remind me at 5pm by call", "2026-01-05 17:00", "call"),  # no day: today, the hour is to come
    ("remind me at 9", "2026-01-06 09:00", "sms"),  # 09:00 has passed: tomorrow
    ("remind me tomorrow at 17:30", "2026-01-06 17:30", "sms"),
    ("unyibutse ejo mu gitondo saa 8 umpamagare", "2026-01-06 08:00", "call"),
    ("remind me to read", None, None),  # an English exercise, not a request
    ("the teacher will remind me", None, None),
    ("remind me 0788123456", None, None),
])
def test_reminder_requests(text, due, channel):
    asked = reminder_request(text, NOW)
    assert (asked and f"{asked.due:%Y-%m-%d %H:%M}", asked and asked.channel) == (due, channel)


@pytest.mark.parametrize("text,number", [
    ("my mother's number is 0788 123 456", "+250788123456"),
    ("umubyeyi wanjye ni 0722-111-222", "+250722111222"),
    ("Papa: +250 733 000 111", "+250733000111"),
    ("call 0788123456", None),  # no guardian named
    ("mama 0788123456 or 0788654321", None),  # which one?
])
def test_guardian_requests(text, number):
    assert guardian_request(text) == number


def test_numbers_are_masked_but_math_is_not():
    assert mask_numbers("my number is 0788123456, and 250733000111") == "my number is [number], and [number]"
    assert mask_numbers("12 + 7 = 19, 1000000") == "12 + 7 = 19, 1000000"


# ---------------------------------------------------------------------- settings
def test_outreach_is_off_unless_enabled_and_configured(monkeypatch):
    assert Outreach.from_env(OutreachSettings()) is None
    assert Outreach.from_env(OutreachSettings(enabled=True)) is None  # REDIS_URL, Twilio... missing: logged
    full = OutreachSettings(enabled=True, redis_url=REDIS, account_sid=ACCOUNT, auth_token=AUTH_TOKEN,
                            call_from=CALL_FROM, sms_from=SMS_FROM, public_base_url=PUBLIC_BASE)
    monkeypatch.setenv("NUMBER_KEYS", new_key_spec("k1"))
    assert isinstance(Outreach.from_env(full), Outreach)
    monkeypatch.setenv("NUMBER_KEYS", "k1:not-a-key")
    assert Outreach.from_env(full) is None


def test_settings_from_the_environment():
    settings = OutreachSettings.from_env({"OUTREACH_ENABLED": "true", "CALLBACK_PER_DAY": "3",
                                          "CALLBACK_QUIET_HOURS": "22-06", "OUTREACH_MONTHLY_BUDGET_USD": "12.5",
                                          "PUBLIC_BASE_URL": "https://x.org/"})
    assert settings.enabled and settings.callbacks_per_day == 3 and settings.monthly_budget_cents == 1250
    assert settings.public_base_url == "https://x.org"
    assert settings.in_quiet_hours(23) and settings.in_quiet_hours(5) and not settings.in_quiet_hours(6)
    assert not OutreachSettings.from_env({"CALLBACK_QUIET_HOURS": "none"}).in_quiet_hours(3)
    assert settings.send_hours == (8, 20) and OutreachSettings.from_env({"OUTREACH_HOURS": "00-24"}).send_hours == (0, 24)


async def test_the_sending_hours_can_be_widened(stack):
    s = stack(send_hours=(0, 24))
    learner = fresh_number()
    s.clock.now = datetime(2026, 1, 5, 23, 0, tzinfo=RWANDA).timestamp()
    await s.outreach.request_reminder(HASH(learner), learner, s.clock.now, "sms", "en")
    assert await s.outreach.run_due() == 1 and len(s.api.messages(learner)) == 1


# ---------------------------------------------------------------------- on a call and on USSD
def speaking(language, *numbers):
    agent = ScriptedAgent()
    for number in numbers:
        agent.state[HASH(number)] = {"language": language, "module": None, "loop": None, "problem": None, "said": []}
    return agent


def reminder_confirmation(language, channel, hour):
    when = texts.text("outreach.reminder_when_tomorrow", language, hour=hour, minute="00")
    how = texts.text(f"outreach.reminder_how_{channel}", language)
    return gsm.sanitize(texts.text("outreach.reminder_set", language, how=how, when=when))


def local_form(number):
    return "0" + number[4:]


@pytest.mark.parametrize("language", ["en", "rw"])
async def test_on_a_call_key_6_sets_a_reminder_and_takes_a_guardians_number(stack, language):
    s = stack()
    learner, guardian, other = fresh_number(), fresh_number(), fresh_number()
    agent = speaking(language, learner)
    voice, sid = s.voice(agent), "CA" + uuid.uuid4().hex
    webhook = "/webhooks/twilio_voice/webhook"

    async def press(**heard):
        response = await voice.post(webhook + "?step=input", call_params(CallSid=sid, From=learner, **heard))
        assert response.status_code == 200, response.text
        return parse_twiml(response.text)

    await voice.post(webhook, call_params(CallSid=sid, From=learner))  # the call starts
    menu = await press(Digits="6")
    assert said(menu) == [Prompts().get("outreach_menu", language)]
    assert said(await press(Digits="3")) == [reminder_confirmation(language, "call", "17")]
    await press(Digits="6")
    asked = await press(Digits="4")
    assert said(asked) == [Prompts().get("outreach_guardian_number", language)]
    assert find(asked, "Gather").get("numDigits") is None  # a whole number can be typed
    assert said(await press(Digits="12#")) == [texts.text("outreach.guardian_not_a_number", language)]
    await press(Digits="6")
    await press(Digits="4")
    assert said(await press(Digits=local_form(guardian) + "#")) == [texts.text("outreach.guardian_asked", language)]
    spoken = await press(SpeechResult="remind me tomorrow", Confidence="0.9")  # said: as by SMS
    assert said(spoken) == [reminder_confirmation(language, "sms", "17")]  # replaces the call (one a day)
    await press(SpeechResult=f"call my friend {local_form(other)}", Confidence="0.9")
    await press(Digits=local_form(other))
    assert [m.text for m in agent.received] == ["/session_start", "call my friend [number]", "[number]"]

    assert await s.outreach.run_due() == 1  # the invitation
    assert s.api.messages(guardian) == [texts.text("outreach.guardian_invite", language)]
    s.clock.now = datetime(2026, 1, 6, 17, 0, 5, tzinfo=RWANDA).timestamp()
    assert await s.outreach.run_due() == 1
    assert s.api.messages(learner) == [texts.text("outreach.reminder_sms", language)] and s.api.calls() == []


@pytest.mark.parametrize("language", ["en", "rw"])
async def test_on_ussd_6_sets_a_reminder_and_takes_a_guardians_number(stack, language):
    s = stack()
    learner, guardian, other = fresh_number(), fresh_number(), fresh_number()
    agent = speaking(language, learner)
    phone = UssdPhone(s.ussd(agent), learner)
    home = await phone.dial()
    assert Prompts().one("ussd_menu_outreach", language) in home
    assert await phone.enter("6") == Prompts().one("ussd_outreach_menu", language)
    confirmed = await phone.enter("1")
    assert confirmed.startswith(reminder_confirmation(language, "sms", "09"))
    await phone.enter("6")
    assert await phone.enter("4") == Prompts().one("ussd_outreach_guardian", language)
    assert (await phone.enter("12")).startswith(texts.text("outreach.guardian_not_a_number", language))
    assert (await phone.enter(local_form(guardian))).startswith(texts.text("outreach.guardian_asked", language))
    assert phone.screens and all(gsm.is_gsm(screen) for screen in phone.screens)
    await phone.enter(f"my friend {local_form(other)}")  # typed at the menu: to the assistant, masked
    assert [m.text for m in agent.received] == ["my friend [number]"]
    assert "+250" not in repr(agent.received) and other[4:] not in repr(agent.received)

    assert await s.outreach.run_due() == 1 and s.api.messages(guardian) == [
        texts.text("outreach.guardian_invite", language)]
    s.clock.now = datetime(2026, 1, 6, 9, 0, 5, tzinfo=RWANDA).timestamp()
    assert await s.outreach.run_due() == 1 and s.api.messages(learner) == [
        texts.text("outreach.reminder_sms", language)]


async def test_without_outreach_key_6_goes_to_the_assistant_and_numbers_are_still_masked():
    agent = speaking("en", number := fresh_number())
    channel = UssdInput(UssdSettings(sender_id_secret=SENDER_SECRET, timing_instrumentation=False),
                        store=InMemoryStateStore())
    phone = UssdPhone(FormPoster(make_app([channel], agent)), number)
    assert "6 Reminders" not in await phone.dial()
    await phone.enter("umubyeyi " + local_form(fresh_number()))
    assert [m.text for m in agent.received] == ["umubyeyi [number]"]


# ---------------------------------------------------------------------- SMS through the aggregator
@pytest.fixture
def at_api():
    fake = FakeAtApi().start()
    yield fake
    fake.stop()


async def test_with_the_aggregator_route_sms_go_through_its_outbox_and_stop_at_hagarika(stack, at_api):
    s = stack(sms_via="aggregator", at_username="bakame", at_api_key="test-at-key", at_sender="4321",
              at_api_base_url=at_api.base)
    learner, guardian = fresh_number(), fresh_number()
    channel = s.sms(speaking("rw", learner))
    await sms(channel, f"umubyeyi {local_form(guardian)}", learner)
    await sms(channel, "unyibutse ejo", learner)
    assert await s.outreach.run_due() == 1  # the invitation, queued in the outbox
    assert await at_api.wait_for(guardian, 1) == [texts.text("outreach.guardian_invite", "rw")]
    assert at_api.sent[0]["from"] == "4321" and at_api.sent[0]["_api_key"] == "test-at-key"
    await sms(channel, "HAGARIKA", learner)  # the learner opts out before the reminder
    s.clock.now = datetime(2026, 1, 6, 17, 0, 5, tzinfo=RWANDA).timestamp()
    assert await s.outreach.run_due() == 0
    await s.outreach.sms_outbox.drain()
    assert at_api.to(learner) == [] and s.api.requests == []  # nothing through Twilio either
    outbox = await s.clients[0].lrange(f"{s.prefix}:at_sms:outbox", 0, -1)
    assert outbox == []


async def test_the_outbox_itself_asks_the_opt_out_registry_before_sending(stack, at_api):
    s = stack(sms_via="aggregator", at_username="bakame", at_api_key="test-at-key", at_api_base_url=at_api.base)
    learner = fresh_number()
    await s.outreach.request_reminder(HASH(learner), learner, s.clock.now, "sms", "en")
    s.outreach.sms_outbox.wake = lambda: None  # queued only: the sending comes after the opt-out
    assert await s.outreach.run_due() == 1
    await s.optouts.opt_out(HASH(learner), "test")
    assert await s.outreach.sms_outbox.drain() == 0 and at_api.sent == []


def test_the_aggregator_route_needs_its_credentials():
    base = dict(enabled=True, redis_url=REDIS, account_sid=ACCOUNT, auth_token=AUTH_TOKEN, call_from=CALL_FROM,
                public_base_url=PUBLIC_BASE)
    assert OutreachSettings(**base, sms_via="aggregator").problems() == [
        "AT_USERNAME is not set (needed by OUTREACH_ENABLED)", "AT_API_KEY is not set (needed by OUTREACH_ENABLED)"]
    assert OutreachSettings(**base, sms_via="aggregator", at_username="u", at_api_key="k").problems() == []
    assert OutreachSettings(**base).problems() == ["OUTREACH_SMS_FROM is not set (needed by OUTREACH_ENABLED)"]
    assert OutreachSettings.from_env({"OUTREACH_SMS_VIA": "Aggregator"}).sms_via == "aggregator"


# ---------------------------------------------------------------------- the guardian's language
@pytest.mark.parametrize("reply,learner_language,chosen", [
    ("YES", "rw", "en"), ("Yego", "en", "rw"), ("ok", "rw", "rw"), ("YEGO EN", "rw", "en"), ("yes kinyarwanda", "en", "rw"),
])
async def test_the_guardian_chooses_the_reports_language(stack, progress, reply, learner_language, chosen):
    s = stack()
    learner, guardian = fresh_number(), fresh_number()
    agent = speaking(learner_language, learner)
    await progress.save_profile(HASH(learner), name="Aline", language=learner_language)
    await progress.save(HASH(learner), "math", Progress(attempts=10, correct=7))
    channel = s.sms(agent)
    await sms(channel, f"umubyeyi {local_form(guardian)}", learner)
    assert await s.outreach.run_due() == 1
    [confirmed] = await sms(channel, reply, guardian)
    assert confirmed == texts.text("outreach.guardian_confirmed", chosen)
    await progress.save(HASH(learner), "math", Progress(attempts=13, correct=10))
    await progress.save(HASH(learner), "reading", Progress(attempts=2, correct=1))
    s.clock.now = datetime(2026, 1, 10, 10, 0, 5, tzinfo=RWANDA).timestamp()
    assert await s.outreach.run_due() == 1 and s.api.messages(guardian)[-1] == REPORTS[chosen]


@pytest.mark.parametrize("text,expected", [
    ("YES", (True, "en")), ("yego.", (True, "rw")), ("Y", (True, None)), ("yes rw", (True, "rw")),
    ("yes I will", (False, None)), ("en", (False, None)), ("", (False, None)),
])
def test_guardian_yes(text, expected):
    assert guardian_yes(text) == expected
