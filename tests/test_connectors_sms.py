"""Behaviour of connectors.twilio_sms (signed requests, mounted as ``rasa run`` mounts it)."""
from __future__ import annotations

import asyncio
import logging

import pytest

from connector_fixtures import (
    AUTH_TOKEN,
    LEARNER,
    PUBLIC_BASE,
    SENDER_SECRET,
    ScriptedAgent,
    TwilioClient,
    make_app,
    messages_of,
    parse_twiml,
    sms_params,
)
from connectors import gsm
from connectors.security import SenderIdHasher
from connectors.settings import SmsSettings
from connectors.state import InMemoryStateStore
from connectors.twilio_sms import TwilioSmsInput
from rasa.shared.exceptions import InvalidConfigException

pytestmark = pytest.mark.asyncio

SMS = "/webhooks/twilio_sms/webhook"
SENDER_ID = SenderIdHasher(SENDER_SECRET).sender_id(LEARNER)


def setup(agent=None, **overrides):
    agent = agent or ScriptedAgent()
    settings = dict(auth_token=AUTH_TOKEN, sender_id_secret=SENDER_SECRET, public_base_url=PUBLIC_BASE,
                    store=InMemoryStateStore(), timing_instrumentation=False)
    settings.update(overrides)
    store = settings.pop("store")
    channel = TwilioSmsInput(SmsSettings(**settings), store=store)
    return agent, channel, TwilioClient(make_app([channel], agent))


def scripted(*replies):
    agent = ScriptedAgent()
    agent.script = lambda message: [dict(r) for r in replies]
    return agent


async def send(client, body, **extra):
    response = await client.post(SMS, sms_params(body, **extra))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    return messages_of(parse_twiml(response.text))


# ---------------------------------------------------------------------- replies
async def test_reply_is_synchronous_twiml_message():
    agent, _, client = setup(scripted({"text": "Hello learner!"}))
    assert await send(client, "hi") == ["Hello learner!"]
    message = agent.received[0]
    assert message.text == "hi" and message.sender_id == SENDER_ID
    assert message.input_channel == "twilio_sms" and message.output_channel.name() == "twilio_sms"
    assert message.metadata["channel"] == "twilio_sms" and message.metadata["message_sid"].startswith("SM")
    assert message.message_id == message.metadata["message_sid"]
    assert LEARNER[1:] not in repr(message.metadata)


async def test_all_bot_messages_of_the_turn_are_joined_into_one_reply():
    _, _, client = setup(scripted({"text": "Correct!"}, {"text": "Next: 5 + 2?"}))
    assert await send(client, "7") == ["Correct!\nNext: 5 + 2?"]


async def test_buttons_become_numbered_lines_and_a_number_selects_them():
    agent, _, client = setup(scripted({"text": "Ready?", "buttons": [
        {"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]}))
    assert await send(client, "hi") == ["Ready?\n1. Yes\n2. No"]
    await send(client, "1")
    assert agent.received[-1].text == "/affirm"


async def test_replies_are_gsm7_without_emoji_or_smart_quotes():
    _, _, client = setup(scripted({"text": "\u201cGreat job!\u201d \U0001F389 Let\u2019s go \u2014 3 \u00d7 4\u2026"}))
    [reply] = await send(client, "hi")
    assert reply == "\"Great job!\" Let's go - 3 x 4..."
    assert gsm.is_gsm(reply)


async def test_long_replies_are_cut_to_the_segment_limit_and_continued_on_more():
    long_text = " ".join(f"Sentence number {i} explains a step of the problem." for i in range(1, 16))
    agent, channel, client = setup(scripted({"text": long_text}), max_segments=2)
    [first] = await send(client, "explain")
    assert gsm.segment_count(first) <= 2
    assert first.endswith("(Reply MORE for the rest)") or first.endswith("(Andika MORE ubone ibindi)") or "MORE" in first
    count = len(agent.received)
    [second] = await send(client, "MORE")
    assert len(agent.received) == count  # continuation without a new turn
    assert gsm.segment_count(second) <= 2
    rest = second
    while "MORE" in rest:
        [rest] = await send(client, "more")
    combined = (first + " " + second).replace("\n", " ")
    assert "Sentence number 1 " in combined and "Sentence number 15 explains" in first + second + rest
    [after] = await send(client, "more")  # nothing left: MORE goes to the bot as text
    assert agent.received[-1].text == "more"


async def test_segment_limit_is_configurable():
    text = "word " * 100
    _, _, client = setup(scripted({"text": text}), max_segments=1)
    [reply] = await send(client, "x")
    assert gsm.septets(reply) <= 160
    with pytest.raises(InvalidConfigException):
        setup(max_segments=0)


# ---------------------------------------------------------------------- unusual messages
async def test_empty_body_is_answered_without_reaching_the_bot():
    agent, _, client = setup()
    [reply] = await send(client, "   ")
    assert "Send 0" in reply and agent.received == []


async def test_media_only_message_is_answered_without_reaching_the_bot():
    agent, _, client = setup()
    [reply] = await send(client, "", NumMedia="1", MediaUrl0="https://api.twilio.com/x.jpg", MediaContentType0="image/jpeg")
    assert "only read text" in reply and agent.received == []


async def test_media_with_text_processes_the_text():
    agent, _, client = setup()
    await send(client, "hello", NumMedia="1", MediaUrl0="https://api.twilio.com/x.jpg")
    assert agent.received[0].text == "hello" and agent.received[0].metadata["num_media"] == 1


async def test_oversized_body_is_refused_politely():
    agent, _, client = setup(max_body_chars=200)
    [reply] = await send(client, "a" * 201)
    assert "too long" in reply and agent.received == []


async def test_prompts_follow_the_learners_language():
    agent, _, client = setup()
    await send(client, "9")  # toggles to Kinyarwanda
    [reply] = await send(client, "")
    assert reply.startswith("Ohereza ubutumwa bwanditse.") and "Please" not in reply


# ---------------------------------------------------------------------- duplicates
async def test_a_retried_message_sid_is_never_processed_twice():
    agent, _, client = setup()
    first = await send(client, "1", sid="SM" + "d" * 32)
    retry = await send(client, "1", sid="SM" + "d" * 32)
    assert retry == first  # Twilio lost our answer: send the same one
    assert [m.text for m in agent.received] == ["/start_math"]


async def test_a_retry_while_the_first_delivery_is_still_running():
    agent, _, client = setup(ScriptedAgent(delay=0.5))
    sid = "SM" + "e" * 32
    first, retry = await asyncio.gather(send(client, "1", sid=sid), send(client, "1", sid=sid))
    assert len(agent.received) == 1
    assert first == retry == ["What is 3 + 4?"]


# ---------------------------------------------------------------------- keypad and math
async def test_keypad_digits_follow_the_menu_and_math_answers():
    agent, _, client = setup()
    assert await send(client, "1") == ["What is 3 + 4?"]
    assert agent.received[-1].text == "/start_math"
    assert await send(client, "7#") == ["Correct! Well done.\nWhat is 5 + 2?"]
    assert agent.received[-1].text == "7" and agent.received[-1].metadata["input"] == "keypad_answer"
    await send(client, "*9")
    assert agent.received[-1].text == '/set_language{"language": "rw"}'


async def test_keypad_can_be_disabled():
    agent, _, client = setup(keypad_enabled=False)
    await send(client, "1")
    assert agent.received[-1].text == "1"


# ---------------------------------------------------------------------- turn budget
async def test_slow_turn_gets_a_holding_reply_and_ok_fetches_the_answer():
    agent = ScriptedAgent(delay=1.5)
    _, _, client = setup(agent, turn_budget=1.0)
    [holding] = await send(client, "1")
    assert "still thinking" in holding.lower() or "Ndacyatekereza" in holding
    [waiting] = await send(client, "ok")  # the turn is still running
    assert "still working" in waiting
    await asyncio.sleep(0.8)
    [answer] = await send(client, "OK")
    assert answer == "What is 3 + 4?"
    assert [m.text for m in agent.received] == ["/start_math"]
    [again] = await send(client, "ok")  # delivered once only: "ok" is now ordinary text
    assert again != "What is 3 + 4?" and agent.received[-1].text == "ok"


async def test_a_late_answer_is_prepended_to_the_next_reply():
    agent = ScriptedAgent(delay=1.3)
    _, _, client = setup(agent, turn_budget=1.0)
    await send(client, "1")
    await asyncio.sleep(0.6)
    agent.delay = 0
    [reply] = await send(client, "7")
    assert reply == "What is 3 + 4?\nCorrect! Well done.\nWhat is 5 + 2?"


# ---------------------------------------------------------------------- errors, logging
async def test_internal_error_is_a_polite_message_not_a_500():
    agent, _, client = setup()
    await send(client, "9")

    def boom(message):
        raise RuntimeError("nlu crashed")

    agent.script = boom
    assert await send(client, "hello") == ["Mbabarira, habaye ikibazo. Ongera ugerageze."]


async def test_broken_state_store_is_a_polite_message_not_a_500():
    class BrokenStore(InMemoryStateStore):
        async def add(self, key, value, ttl):
            raise ConnectionError("redis is down")

    _, _, client = setup(store=BrokenStore())
    [reply] = await send(client, "hi")
    assert "something went wrong" in reply


async def test_turns_are_logged_with_timings_and_no_number(caplog):
    _, _, client = setup(timing_instrumentation=True)
    with caplog.at_level(logging.DEBUG):
        await send(client, "my secret answer")
        await send(client, "")
    lines = [r.getMessage() for r in caplog.records if r.name == "connectors.timing"]
    assert len(lines) == 2 and all("nlu_policy_ms=" in l and "actions_ms=" in l and "total_ms=" in l for l in lines)
    assert "channel=twilio_sms" in lines[0] and "kind=empty" in lines[1]
    assert LEARNER not in caplog.text and LEARNER[1:] not in caplog.text and "secret" not in caplog.text


async def test_from_credentials(monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "t")
    monkeypatch.setenv("SENDER_ID_SECRET", "s")
    monkeypatch.setenv("SMS_MAX_SEGMENTS", "3")
    monkeypatch.delenv("REDIS_URL", raising=False)
    channel = TwilioSmsInput.from_credentials({"more_keywords": "more, next", "timing_instrumentation": False})
    assert channel.settings.max_segments == 3 and channel.settings.more_keywords == {"more", "next"}
    assert channel.name() == "twilio_sms"


async def test_a_retry_after_an_error_gets_the_same_apology_and_is_not_reprocessed():
    agent, _, client = setup()

    def boom(message):
        raise RuntimeError("action server down")

    agent.script = boom
    sid = "SM" + "9" * 32
    first = await send(client, "hello", sid=sid)
    retry = await send(client, "hello", sid=sid)
    assert first == retry == ["Mbabarira, habaye ikibazo. Ongera ugerageze. Sorry, something went wrong. Please try again."]
    assert len(agent.received) == 1
