"""Redis round trips the Twilio channels make for their own state per turn (issue 16).

The channel's fixed cost shows in the bench ratio against Rasa's REST channel, and most of
it is waiting for Redis. Counted on a real (private) redis-server, at the connection: one
``send_packed_command`` is one round trip, a pipeline included. The first turn opens the
connections (HELLO/SELECT...), so the turn after it is the one counted.
"""
from __future__ import annotations

import re

import pytest
import redis.asyncio.connection as redis_connection

from connector_fixtures import (
    AUTH_TOKEN, PUBLIC_BASE, SENDER_SECRET, ScriptedAgent, TwilioClient, call_params, make_app, sms_params,
)
from connectors.settings import SmsSettings, VoiceSettings
from connectors.state import RedisStateStore
from connectors.twilio_sms import TwilioSmsInput
from connectors.twilio_voice import TwilioVoiceInput
from infra.rate_limit import Limits
from infra.redis_client import redis_client
from tests.services import RedisServer

pytestmark = pytest.mark.asyncio

SMS_TURN_ROUND_TRIPS = 3  # SET NX MessageSid + GET conversation | rate limit | SET conversation + SET MessageSid
VOICE_TURN_ROUND_TRIPS = 3  # GET call | rate limit | SET call


@pytest.fixture(scope="module")
def redis_url():
    server = RedisServer(appendonly=False)
    try:
        yield server.start()
    finally:
        server.remove()


@pytest.fixture
def round_trips(monkeypatch):
    """The commands of every round trip to Redis, by their first command's name."""
    sent = []
    original = redis_connection.Connection.send_packed_command

    async def counting(self, command, check_health=True):
        raw = command if isinstance(command, (bytes, bytearray)) else b"".join(command)
        names = [m.decode().upper() for m in re.findall(rb"(?:^|\r\n)\*\d+\r\n\$\d+\r\n([^\r]+)", raw)]
        sent.append("+".join(names))
        return await original(self, command, check_health)

    monkeypatch.setattr(redis_connection.Connection, "send_packed_command", counting)
    return sent


def settings(cls, redis_url, **extra):
    return cls(auth_token=AUTH_TOKEN, sender_id_secret=SENDER_SECRET, public_base_url=PUBLIC_BASE,
               timing_instrumentation=False, redis_url=redis_url, rate_limits=Limits(per_minute=20, per_hour=300),
               **extra)


@pytest.mark.parametrize("optout", [False, True])
async def test_an_sms_turn_makes_few_redis_round_trips(redis_url, round_trips, optout):
    channel = TwilioSmsInput(settings(SmsSettings, redis_url, optout=optout),
                             store=RedisStateStore(redis_client(redis_url)))
    client = TwilioClient(make_app([channel], ScriptedAgent()))
    for body in ("hello", "hello again"):
        round_trips.clear()
        response = await client.post("/webhooks/twilio_sms/webhook", sms_params(body))
        assert response.status_code == 200 and "<Message>" in response.text
    assert len(round_trips) <= SMS_TURN_ROUND_TRIPS + optout, round_trips  # optout: HGET of the registry


async def test_a_voice_turn_makes_few_redis_round_trips(redis_url, round_trips):
    channel = TwilioVoiceInput(settings(VoiceSettings, redis_url), store=RedisStateStore(redis_client(redis_url)))
    client = TwilioClient(make_app([channel], ScriptedAgent()))
    await client.post("/webhooks/twilio_voice/webhook", call_params())  # the call starts
    for said in ("hello", "hello again"):
        round_trips.clear()
        response = await client.post("/webhooks/twilio_voice/webhook?step=input",
                                     call_params(SpeechResult=said, Confidence="0.9"))
        assert response.status_code == 200 and "<Say" in response.text
    assert len(round_trips) <= VOICE_TURN_ROUND_TRIPS, round_trips
