"""The aggregator's two-way SMS channel with the scripted tutor; replies go out through the
``africastalking`` SDK pointed at a local fake API (tests/aggregator_fixtures.py)."""
import asyncio
import json
import uuid

import pytest

from aggregator_fixtures import FakeAtApi, FormPoster, at_sms_form, fresh_number
from connector_fixtures import AUTH_TOKEN, PUBLIC_BASE, SENDER_SECRET, ScriptedAgent, TwilioClient, make_app, \
    messages_of, parse_twiml, sms_params
from infra.at_outbox import AtSmsSender, SmsOutbox
from core.number_vault import NumberVault
from connectors.at_sms import AfricasTalkingSmsInput
from connectors.security import SenderIdHasher
from connectors.settings import AtSmsSettings, SmsSettings
from connectors.state import InMemoryStateStore
from connectors.twilio_sms import TwilioSmsInput
from infra.optout import OptOutRegistry
from infra.redis_client import redis_client

pytestmark = pytest.mark.asyncio
PATH = "/webhooks/at_sms/webhook"


@pytest.fixture
def at_api():
    api = FakeAtApi().start()
    yield api
    api.stop()


def setup(at_api, agent=None, **overrides):
    agent = agent or ScriptedAgent()
    settings = dict(sender_id_secret=SENDER_SECRET, timing_instrumentation=False, username="bakame",
                    api_key="test-at-api-key", sender="4321", api_base_url=at_api.base)
    settings.update(overrides)
    channel = AfricasTalkingSmsInput(AtSmsSettings(**settings), store=InMemoryStateStore())
    channel.optouts = OptOutRegistry()
    channel.outbox.optouts = channel.optouts
    return agent, channel, FormPoster(make_app([channel], agent))


class Texter:
    def __init__(self, poster, api, number):
        self.poster, self.api, self.number = poster, api, number

    async def send(self, text, message_id=None):
        before = len(self.api.to(self.number))
        response = await self.poster.post(PATH, at_sms_form(text, self.number, message_id))
        assert response.status_code == 200 and response.text == ""
        replies = await self.api.wait_for(self.number, before + 1, timeout=10)
        return replies[before:]


async def test_a_conversation_completes_math_with_replies_sent_through_the_sdk(at_api):
    agent, _, poster = setup(at_api)
    texter = Texter(poster, at_api, fresh_number())
    assert await texter.send("9") == ["Ni byiza, tuzavuga Ikinyarwanda."]
    [question] = await texter.send("1")  # keypad: math
    assert "3 + 4 ni angahe?" in question
    [praised] = await texter.send("7")
    assert praised.startswith("Ni byo! Wabikoze neza.")
    sent = at_api.sent[-1]
    assert sent["_path"] == "/version1/messaging" and sent["_api_key"] == "test-at-api-key"
    assert sent["from"] == "4321" and sent["username"] == "bakame" and sent["to"] == texter.number
    assert agent.received[-1].sender_id == SenderIdHasher(SENDER_SECRET).sender_id(texter.number)
    assert agent.received[-1].input_channel == "at_sms"
    assert texter.number not in repr([m.metadata for m in agent.received])


@pytest.mark.parametrize("stop,start,lang", [("STOP", "START", "en"), ("HAGARIKA", "TANGIRA", "rw")])
async def test_stop_ends_outbound_messages_at_once(at_api, stop, start, lang):
    agent, channel, poster = setup(at_api)
    texter = Texter(poster, at_api, fresh_number())
    if lang == "rw":
        await texter.send("9")
    received = len(agent.received)
    [confirmation] = await texter.send(stop)
    assert ("no more messages" if lang == "en" else "ntuzongera") in confirmation
    assert len(agent.received) == received  # handled without the assistant
    sender_id = SenderIdHasher(SENDER_SECRET).sender_id(texter.number)
    # anything queued for the learner from now on (a late reply, a reminder) is not sent
    await channel.outbox.put(sender_id, texter.number, "a reminder")
    await channel.outbox.drain()
    response = await poster.post(PATH, at_sms_form("imibare", texter.number))
    assert response.status_code == 200
    await asyncio.sleep(0.5)
    assert at_api.to(texter.number)[-1] == confirmation
    [welcome] = await texter.send(start)
    assert "STOP" in welcome or "HAGARIKA" in welcome
    assert await texter.send("imibare")


async def test_a_retried_callback_is_not_answered_twice(at_api):
    agent, _, poster = setup(at_api)
    texter = Texter(poster, at_api, fresh_number())
    await texter.send("hello", message_id="ATXid_1")
    await poster.post(PATH, at_sms_form("hello", texter.number, "ATXid_1"))
    await asyncio.sleep(0.5)
    assert len(at_api.to(texter.number)) == 1 and len(agent.received) == 1


async def test_long_replies_are_gsm7_and_cut_to_segments_with_more(at_api):
    agent, _, poster = setup(at_api, max_segments=1)
    agent.script = lambda m: [{"text": "It\u2019s a long story. " * 20}] if m.text == "story" else [{"text": "OK"}]
    texter = Texter(poster, at_api, fresh_number())
    [first] = await texter.send("story")
    assert len(first) <= 160 and "\u2019" not in first and "MORE" in first
    [rest] = await texter.send("MORE")
    assert rest.startswith("It's a long story")


async def test_other_addresses_and_wrong_secrets_get_403(at_api):
    secret = "at-sms-callback-secret-0123456789"
    agent, _, poster = setup(at_api, callback_secret=secret, allowed_sources=("196.201.214.0/24",))
    form = at_sms_form("hello", fresh_number())
    assert (await poster.post(f"{PATH}/{secret}", form, client_ip="196.201.214.200")).status_code == 200
    assert (await poster.post(f"{PATH}/{secret}", form, client_ip="8.8.8.8")).status_code == 403
    assert (await poster.post(f"{PATH}/nope", form, client_ip="196.201.214.200")).status_code == 403
    assert (await poster.post(PATH, form, client_ip="196.201.214.200")).status_code == 403


async def test_a_failed_send_is_retried(at_api):
    at_api.fail_first = 1
    box = NumberVault.from_env(SENDER_SECRET, environ={})
    outbox = SmsOutbox(AtSmsSender("bakame", "k", "4321", at_api.base), OptOutRegistry(), box, retry_delay=0.01)
    number = fresh_number()
    await outbox.put("tw_x", number, "hello")
    await outbox.drain()
    assert at_api.to(number) == ["hello"]


async def test_the_redis_outbox_holds_no_number_and_survives_a_restart(at_api):
    client = redis_client("redis://127.0.0.1:6379/0")
    key = f"test{uuid.uuid4().hex[:8]}:at_sms:outbox"
    number = fresh_number()
    sender = AtSmsSender("bakame", "k", "4321", at_api.base)
    try:
        first = SmsOutbox(sender, OptOutRegistry(), NumberVault.from_env(SENDER_SECRET, environ={}), client, key=key)
        await first._push(json.dumps({"sender_id": "tw_y", "to": first.box.seal(number, "tw_y"), "text": "queued",
                                      "confirmation": False, "attempts": 0}))
        await client.lmove(key, key + ":sending", "LEFT", "RIGHT")  # a process died while sending it
        stored = [v.decode() for v in await client.lrange(key + ":sending", 0, -1)]
        assert stored and number not in stored[0] and number[1:] not in stored[0]
        second = SmsOutbox(sender, OptOutRegistry(), NumberVault.from_env(SENDER_SECRET, environ={}), client, key=key)
        assert await second.drain() == 1 and at_api.to(number) == ["queued"]
        assert await client.llen(key) == 0 and await client.llen(key + ":sending") == 0
    finally:
        await client.delete(key, key + ":sending")


async def test_twilio_sms_can_use_the_same_optout():
    agent = ScriptedAgent()
    settings = SmsSettings(auth_token=AUTH_TOKEN, sender_id_secret=SENDER_SECRET, public_base_url=PUBLIC_BASE,
                           timing_instrumentation=False, optout=True)
    channel = TwilioSmsInput(settings, store=InMemoryStateStore())
    channel.optouts = OptOutRegistry()
    client = TwilioClient(make_app([channel], agent))
    number = fresh_number()

    async def send(body):
        response = await client.post("/webhooks/twilio_sms/webhook", sms_params(body, From=number))
        return messages_of(parse_twiml(response.text))

    assert "no more messages" in (await send("STOP"))[0]
    assert await send("imibare") == [] and agent.received == []
    assert await channel.optouts.is_opted_out(SenderIdHasher(SENDER_SECRET).sender_id(number))
