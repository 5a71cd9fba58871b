"""Behaviour of connectors.twilio_voice (signed requests, mounted as ``rasa run`` mounts it).

The first group mirrors Rasa 3.6's own twilio_voice tests (single message, several
messages, buttons, no speech with and without a previous reply, invalid configurations);
the rest covers what the built-in channel lacks.
"""
from __future__ import annotations

import asyncio
import logging

import pytest

from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import InvalidConfigException

from connector_fixtures import (
    AUTH_TOKEN,
    CALL_SID,
    LEARNER,
    PUBLIC_BASE,
    SENDER_SECRET,
    FakeTwilioMedia,
    ScriptedAgent,
    TwilioClient,
    call_params,
    find,
    make_app,
    next_request,
    parse_twiml,
    said,
)
from connectors.security import SenderIdHasher
from connectors.settings import VoiceSettings
from connectors.state import InMemoryStateStore
from connectors.transcription import Transcriber
from connectors.twilio_voice import TwilioVoiceInput

pytestmark = pytest.mark.asyncio

WEBHOOK = "/webhooks/twilio_voice/webhook"
INPUT = WEBHOOK + "?step=input"
SENDER_ID = SenderIdHasher(SENDER_SECRET).sender_id(LEARNER)


def voice(**overrides) -> TwilioVoiceInput:
    settings = dict(
        auth_token=AUTH_TOKEN, sender_id_secret=SENDER_SECRET, public_base_url=PUBLIC_BASE,
        store=InMemoryStateStore(), timing_instrumentation=False,
    )
    settings.update(overrides)
    store, transcriber = settings.pop("store"), settings.pop("transcriber", None)
    return TwilioVoiceInput(VoiceSettings(**settings), store=store, transcriber=transcriber)


def setup(agent=None, **overrides):
    agent = agent or ScriptedAgent()
    channel = voice(**overrides)
    client = TwilioClient(make_app([channel], agent))
    return agent, channel, client


def scripted(*replies):
    """An agent that answers every message with ``replies``."""
    agent = ScriptedAgent()
    agent.script = lambda message: [dict(r) for r in replies]
    return agent


async def post(client, path=INPUT, **params):
    response = await client.post(path, call_params(**params))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    return parse_twiml(response.text)


# ---------------------------------------------------------------------- Rasa parity
async def test_single_message_is_said_inside_a_barge_in_gather():
    agent, _, client = setup(scripted({"text": "Test:"}))
    root = await post(client, SpeechResult="hello", Confidence="0.9")
    gather = find(root, "Gather")
    assert said(gather) == ["Test:"]
    assert gather.get("input") == "dtmf speech"
    assert gather.get("action") == PUBLIC_BASE + INPUT
    assert gather.get("actionOnEmptyResult") == "true"
    assert gather.get("bargeIn") == "true"
    assert gather.get("speechTimeout") == "auto"  # no fixed 5 s of dead air
    assert gather.get("language") == "en-US"
    assert find(gather, "Say").get("voice") == "Polly.Amy"
    assert agent.received[0].text == "hello"


async def test_several_messages_are_all_interruptible_and_in_order():
    _, _, client = setup(scripted({"text": "message 1"}, {"text": "message 2"}))
    root = await post(client, SpeechResult="hi", Confidence="0.9")
    gather = find(root, "Gather")
    assert said(gather) == ["message 1", "message 2"]
    assert said(root) == ["message 1", "message 2"]  # nothing outside the Gather
    assert find(root, "Pause") is None


async def test_buttons_are_read_out_and_selected_with_the_keypad():
    agent, _, client = setup(scripted({"text": "Buttons:", "buttons": [
        {"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]}))
    root = await post(client, SpeechResult="hi", Confidence="0.9")
    assert said(root) == ["Buttons:", "Press 1 for Yes. Press 2 for No."]
    assert find(root, "Gather").get("numDigits") == "1"
    await post(client, Digits="2")
    assert agent.received[-1].text == "/deny"
    assert agent.received[-1].metadata["keypad"] == "button"


def _tracker_store_with(events):
    domain = Domain.from_yaml(
        "version: '3.1'\nslots:\n  language:\n    type: any\n    mappings: [{type: custom}]\n"
        "  active_module:\n    type: any\n    mappings: [{type: custom}]\n"
    )
    store = InMemoryTrackerStore(domain)
    tracker = DialogueStateTracker.from_events(SENDER_ID, events, domain.slots)
    return store, tracker


async def test_no_speech_repeats_the_previous_bot_reply_from_the_tracker():
    store, tracker = _tracker_store_with([
        ActionExecuted("action_listen"), UserUttered("hi"), BotUttered("hey there!"),
        ActionExecuted("action_listen"),
    ])
    await store.save(tracker)
    agent = ScriptedAgent()
    agent.tracker_store = store  # Rasa's own tracker store and tracker
    _, _, client = setup(agent)
    root = await post(client)  # Gather timed out: no SpeechResult, no Digits
    assert said(root) == ["Sinakumvise. I did not hear you.", "hey there!"]  # language not known yet
    assert agent.received == []


async def test_no_speech_without_a_previous_reply_uses_the_fallback_phrase():
    agent, _, client = setup()
    root = await post(client)
    assert said(root) == [
        "Sinakumvise. I did not hear you.",
        "Vuga igisubizo cyawe, cyangwa ukoreshe utubuto twa telefone. Please say your answer, or use the keypad.",
    ]
    assert agent.received == []


@pytest.mark.parametrize("overrides", [
    {"speech_timeout": "not a number"},
    {"speech_timeout": "0"},
    {"speech_model": "phone_call", "speech_timeout": "auto"},
    {"enhanced": True, "speech_model": "default", "speech_timeout": "3"},
    {"voice_en": ""},
    {"rw_mode": "telepathy"},
    {"keypad": {"12": "/start_math"}},
    {"asr_min_confidence": 1.5},
])
async def test_invalid_configurations_are_rejected(overrides):
    with pytest.raises(InvalidConfigException):
        voice(**overrides)


async def test_valid_speech_model_configuration():
    channel = voice(speech_model="phone_call", enhanced=True, speech_timeout="2")
    assert channel.settings.speech_model == "phone_call"


# ---------------------------------------------------------------------- call start
async def test_call_start_sends_session_start_with_call_metadata_and_no_number():
    agent, _, client = setup()
    root = await post(client, WEBHOOK, CallStatus="ringing")
    message = agent.received[0]
    assert message.text == "/session_start"
    assert message.sender_id == SENDER_ID and LEARNER not in message.sender_id
    assert message.input_channel == "twilio_voice"
    assert message.metadata == {
        "channel": "twilio_voice", "call_sid": CALL_SID, "call_start": True,
        "direction": "inbound", "caller_country": "RW",
    }
    assert LEARNER[1:] not in repr(message.metadata)
    assert said(root) == ["Muraho! Hello! I am BAKAME. Press 1 for math, 9 to change language."]
    assert message.output_channel.name() == "twilio_voice"


async def test_call_start_without_a_bot_reply_gets_a_bilingual_welcome():
    _, _, client = setup(scripted())
    root = await post(client, WEBHOOK, CallStatus="ringing")
    text = said(root)[0]
    assert text.startswith("Muraho! Ndi BAKAME") and "Hello! I am BAKAME" in text
    assert find(root, "Gather") is not None


async def test_outbound_call_names_the_conversation_after_the_callee():
    agent, _, client = setup()
    await client.post(WEBHOOK, call_params(Direction="outbound-api", From="+15005550006", To=LEARNER,
                                           ToCountry="RW", FromCountry="US", CallStatus="in-progress"))
    assert agent.received[0].sender_id == SENDER_ID
    assert agent.received[0].metadata["caller_country"] == "RW"


async def test_withheld_numbers_do_not_share_a_conversation():
    agent, _, client = setup()
    await client.post(WEBHOOK, call_params(From="+266696687", CallSid="CA" + "a" * 32))
    await client.post(WEBHOOK, call_params(From="+266696687", CallSid="CA" + "b" * 32))
    first, second = (m.sender_id for m in agent.received)
    assert first != second and first.startswith("tw_anon_")


# ---------------------------------------------------------------------- keypad
async def test_keypad_menu_math_answers_and_escapes():
    agent, _, client = setup()
    await post(client, WEBHOOK, CallStatus="ringing")
    root = await post(client, Digits="1")
    assert agent.received[-1].text == "/start_math"
    gather = find(root, "Gather")
    assert gather.get("numDigits") is None and gather.get("finishOnKey") == "#"  # multi-digit answers
    assert gather.get("timeout") == "8"
    await post(client, Digits="7")  # "7#" on the phone: Twilio strips the '#'
    assert agent.received[-1].text == "7" and agent.received[-1].metadata["keypad"] == "answer"
    await post(client, Digits="*")
    assert agent.received[-1].text == "/repeat"
    await post(client, Digits="*0")
    assert agent.received[-1].text == "/help"


async def test_keypad_nine_toggles_the_language_and_the_voice_follows():
    agent, _, client = setup()
    await post(client, WEBHOOK, CallStatus="ringing")
    root = await post(client, Digits="9")
    assert agent.received[-1].text == '/set_language{"language": "rw"}'
    gather = find(root, "Gather")
    assert gather.get("language") == "rw-RW"  # gather mode: no transcription endpoint configured
    assert said(root) == ["Ni byiza, tuzavuga Ikinyarwanda."]
    await post(client, Digits="9")
    assert agent.received[-1].text == '/set_language{"language": "en"}'


async def test_keypad_mapping_is_configurable():
    agent, _, client = setup(keypad={"1": "/start_reading", "8": "/check_progress"})
    await post(client, WEBHOOK, CallStatus="ringing")
    await post(client, Digits="8")
    assert agent.received[-1].text == "/check_progress"
    await post(client, Digits="1")
    assert agent.received[-1].text == "/start_reading"


async def test_voices_and_recognition_language_per_learner_language():
    _, _, client = setup(voice_en="Polly.Joanna", voice_rw="Polly.Ayanda", say_language_rw="en-GB",
                         gather_language_en="en-GB")
    await post(client, WEBHOOK, CallStatus="ringing")
    root = await post(client, Digits="9")
    assert find(root, "Say").get("voice") == "Polly.Ayanda"
    assert find(root, "Say").get("language") == "en-GB"
    root = await post(client, Digits="9")
    assert find(root, "Say").get("voice") == "Polly.Joanna"
    assert find(root, "Gather").get("language") == "en-GB"


# ---------------------------------------------------------------------- ASR confidence, silence
async def test_low_confidence_asks_to_repeat_instead_of_guessing():
    agent, _, client = setup()
    await post(client, WEBHOOK, CallStatus="ringing")
    await post(client, Digits="9")  # Kinyarwanda
    count = len(agent.received)
    root = await post(client, SpeechResult="gibberish", Confidence="0.12")
    assert len(agent.received) == count
    assert said(root) == ["Mbabarira, sinakumvise neza. Ongera ubivuge, cyangwa ukoreshe utubuto twa telefone."]
    assert find(root, "Gather") is not None
    await post(client, SpeechResult="gibberish", Confidence="0.12")
    assert len(agent.received) == count
    await post(client, SpeechResult="gibberish", Confidence="0.12")  # third time: let the bot try
    assert agent.received[-1].text == "gibberish"
    await post(client, SpeechResult="seven", Confidence="0.95")
    assert agent.received[-1].text == "seven"


async def test_missing_confidence_is_not_treated_as_low():
    agent, _, client = setup()
    await post(client, SpeechResult="hello")
    await post(client, SpeechResult="hello again", Confidence="0.0")
    assert [m.text for m in agent.received] == ["hello", "hello again"]


async def test_repeated_silence_reprompts_then_says_goodbye_and_hangs_up():
    agent, _, client = setup()
    await post(client, WEBHOOK, CallStatus="ringing")
    await post(client, Digits="9")
    await post(client, Digits="1")  # math question in Kinyarwanda
    first = await post(client)
    assert said(first) == ["Sinakumvise.", "3 + 4 ni angahe?"]
    second = await post(client)
    assert said(second) == ["Sinakumvise.", "3 + 4 ni angahe?"]
    third = await post(client)
    assert said(third) == ["Sinkumva, reka mpagarike. Uzongere uhamagare igihe cyose. Murabeho!"]
    assert find(third, "Hangup") is not None and find(third, "Gather") is None


async def test_an_answer_resets_the_silence_count():
    _, _, client = setup()
    await post(client, WEBHOOK, CallStatus="ringing")
    await post(client)
    await post(client)
    await post(client, Digits="1")
    root = await post(client)
    assert find(root, "Hangup") is None


# ---------------------------------------------------------------------- custom payloads
async def test_bot_ends_the_call_with_a_goodbye_and_hangup():
    _, _, client = setup(scripted({"text": "See you tomorrow."}, {"custom": {"end_call": True, "text": "Bye!"}}))
    root = await post(client, SpeechResult="bye", Confidence="0.9")
    assert said(root) == ["See you tomorrow.", "Bye!"]
    assert find(root, "Hangup") is not None and find(root, "Gather") is None


async def test_end_call_without_text_says_goodbye_in_the_learners_language():
    agent, _, client = setup()
    await post(client, WEBHOOK, CallStatus="ringing")
    await post(client, Digits="9")
    agent.script = lambda message: [{"custom": {"end_call": True}}]
    root = await post(client, SpeechResult="murabeho", Confidence="0.9")
    assert said(root) == ["Murabeho!"] and find(root, "Hangup") is not None


async def test_other_custom_payloads_images_and_emoji_are_skipped_safely():
    _, _, client = setup(scripted(
        {"custom": {"blocks": [{"type": "section"}]}},
        {"text": "Great job \U0001F600", "image": "https://example.org/star.png"},
        {"custom": "not even a dict"},
        {"attachment": "file.pdf"},
    ))
    root = await post(client, SpeechResult="hi", Confidence="0.9")
    assert said(root) == ["Great job"]


# ---------------------------------------------------------------------- turn budget
async def test_slow_turn_gets_a_holding_prompt_and_the_redirect_picks_up_the_answer():
    agent, _, client = setup(ScriptedAgent(delay=1.2), turn_budget=1.0)
    start = await post(client, WEBHOOK, CallStatus="ringing")
    assert said(start) == ["Tegereza gato. One moment please."]
    redirect = next_request(start)
    assert "step=await" in redirect and find(start, "Gather") is None
    answer = await post(client, redirect)
    assert said(answer) == ["Muraho! Hello! I am BAKAME. Press 1 for math, 9 to change language."]
    assert find(answer, "Gather") is not None
    again = await post(client, redirect)  # a repeated redirect never answers twice
    assert said(again) == [
        "Vuga igisubizo cyawe, cyangwa ukoreshe utubuto twa telefone. Please say your answer, or use the keypad."]
    assert [m.text for m in agent.received] == ["/session_start"]


async def test_holding_limit_apologises_and_the_late_answer_comes_with_the_next_turn():
    agent = ScriptedAgent()
    _, _, client = setup(agent, turn_budget=1.0, max_holds=1)
    await post(client, WEBHOOK, CallStatus="ringing")
    agent.delay = 2.5
    held = await post(client, Digits="1")
    redirect = next_request(held)
    apology = await post(client, redirect)
    assert "Sorry, something went wrong" in " ".join(said(apology))
    await asyncio.sleep(1.5)  # the slow turn finishes meanwhile
    agent.delay = 0
    root = await post(client, Digits="*")
    assert said(root) == ["What is 3 + 4?", "What is 3 + 4?"]  # the late question, then the repeat
    assert [m.text for m in agent.received] == ["/session_start", "/start_math", "/repeat"]


async def test_the_budget_is_configurable_and_fast_turns_are_not_held():
    _, channel, client = setup(ScriptedAgent(delay=0.2), turn_budget=5)
    root = await post(client, WEBHOOK, CallStatus="ringing")
    assert find(root, "Redirect") is None and channel.turn_budget == 5


# ---------------------------------------------------------------------- errors
async def test_internal_error_answers_politely_in_the_learners_language():
    agent, _, client = setup()
    await post(client, WEBHOOK, CallStatus="ringing")
    await post(client, Digits="9")

    def boom(message):
        raise RuntimeError("action server exploded")

    agent.script = boom
    root = await post(client, SpeechResult="imibare", Confidence="0.9")
    assert said(root) == ["Mbabarira, habaye ikibazo. Ongera ugerageze."]
    assert find(root, "Gather") is not None


async def test_a_broken_store_still_answers_with_twiml_not_500():
    class BrokenStore(InMemoryStateStore):
        async def get(self, key):
            raise ConnectionError("redis is down")

    _, _, client = setup(store=BrokenStore())
    response = await client.post(INPUT, call_params(SpeechResult="hi", Confidence="0.9"))
    assert response.status_code == 200
    assert "something went wrong" in response.text


async def test_request_without_call_sid_is_answered_politely():
    _, _, client = setup()
    params = call_params()
    del params["CallSid"]
    response = await client.post(INPUT, params)
    assert response.status_code == 200 and "<Hangup" in response.text


# ---------------------------------------------------------------------- call end
async def test_completed_call_is_recorded_once_and_clears_its_state(caplog):
    agent, channel, client = setup(call_end_intent="call_ended")
    await post(client, WEBHOOK, CallStatus="ringing")
    assert await channel.store.get(f"voice:call:{CALL_SID}")
    with caplog.at_level(logging.INFO, logger="connectors.twilio_voice"):
        root = await post(client, INPUT, CallStatus="completed", CallDuration="42")
        assert list(root) == []
        response = await client.post("/webhooks/twilio_voice/status", call_params(CallStatus="completed", CallDuration="42"))
        assert response.status_code == 200
        await asyncio.sleep(0.05)
    assert await channel.store.get(f"voice:call:{CALL_SID}") is None
    ends = [r.getMessage() for r in caplog.records if "call_end" in r.getMessage()]
    assert len(ends) == 1 and "duration_s=42" in ends[0] and "status=completed" in ends[0]
    assert agent.received[-1].text == "/call_ended"
    assert agent.received[-1].metadata["call_end"] is True
    assert LEARNER not in caplog.text


async def test_status_callback_without_call_end_intent_does_not_message_the_bot():
    agent, _, client = setup()
    response = await client.post("/webhooks/twilio_voice/status", call_params(CallStatus="no-answer"))
    assert response.status_code == 200 and agent.received == []


# ---------------------------------------------------------------------- Kinyarwanda record path
async def test_kinyarwanda_turn_is_recorded_and_transcribed(fake_openai):
    fake_openai.configure(transcript="karindwi")
    media = FakeTwilioMedia().start()
    try:
        transcriber = Transcriber(base_url=fake_openai.url, api_key="stt-key", model="whisper-rw",
                                  recording_hosts=["127.0.0.1"])
        agent, channel, client = setup(transcriber=transcriber, rw_mode="record")
        assert channel.rw_mode == "record"
        await post(client, WEBHOOK, CallStatus="ringing")
        await post(client, Digits="9")
        root = await post(client, Digits="1")  # keypad still works before the recording
        assert agent.received[-1].text == "/start_math"
        gather, record = find(root, "Gather"), find(root, "Record")
        assert gather.get("input") == "dtmf" and said(gather) == ["3 + 4 ni angahe?"]
        assert record is not None and "step=record" in record.get("action")
        assert record.get("finishOnKey") == "#"  # a math answer may be typed
        assert find(root, "Redirect").text.endswith("step=silence")
        recording = media.recording_url()
        answer = await post(client, WEBHOOK + "?step=record", RecordingUrl=recording,
                            RecordingDuration="3", RecordingSid="RE" + "3" * 32, Digits="#")
        message = agent.received[-1]
        assert message.text == "karindwi"
        assert message.metadata["asr"] == "record"
        assert said(answer)[0] == "Ni byo! Wabikoze neza."
        call = fake_openai.transcription_requests[-1]
        assert call["fields"]["model"] == "whisper-rw" and call["fields"]["language"] == "rw"
        assert call["fields"]["file"]["data"] == media.audio
        assert call["headers"]["authorization"] == "Bearer stt-key"
        assert LEARNER not in fake_openai.all_text()
        assert media.downloads[0]["path"].endswith(".mp3") and media.downloads[0]["auth"].startswith("Basic ")
        await asyncio.sleep(0.2)
        assert media.deleted and media.deleted[0].endswith(".json")  # the child's voice is not kept
    finally:
        media.stop()


async def test_failed_transcription_asks_to_repeat_without_guessing(fake_openai):
    fake_openai.configure(mode="http_error")
    media = FakeTwilioMedia().start()
    try:
        transcriber = Transcriber(base_url=fake_openai.url, recording_hosts=["127.0.0.1"])
        agent, _, client = setup(transcriber=transcriber, rw_mode="record")
        await post(client, WEBHOOK, CallStatus="ringing")
        count = len(agent.received)
        root = await post(client, WEBHOOK + "?step=record", RecordingUrl=media.recording_url(), RecordingDuration="2")
        assert len(agent.received) == count
        assert "Please say it again" in " ".join(said(root))
    finally:
        media.stop()


async def test_recording_from_a_foreign_host_is_never_fetched():
    transcriber = Transcriber(base_url="http://127.0.0.1:9/v1")  # only api.twilio.com allowed
    agent, _, client = setup(transcriber=transcriber, rw_mode="record")
    root = await post(client, WEBHOOK + "?step=record", RecordingUrl="http://169.254.169.254/latest", RecordingDuration="3")
    assert "say it again" in " ".join(said(root)) and agent.received == []


async def test_unknown_language_uses_the_record_path_when_enabled_and_english_uses_gather():
    transcriber = Transcriber(base_url="http://127.0.0.1:9/v1", recording_hosts=["127.0.0.1"])
    _, channel, client = setup(transcriber=transcriber)  # rw_mode auto + endpoint -> record
    assert channel.rw_mode == "record"
    root = await post(client, WEBHOOK, CallStatus="ringing")
    assert find(root, "Record") is not None
    root = await post(client, Digits="9")  # -> rw
    assert find(root, "Record") is not None
    root = await post(client, Digits="9")  # -> en
    assert find(root, "Record") is None and find(root, "Gather").get("input") == "dtmf speech"


async def test_key_pressed_to_end_a_recording_is_keypad_input():
    transcriber = Transcriber(base_url="http://127.0.0.1:9/v1", recording_hosts=["127.0.0.1"], delete_recordings=False)
    agent, _, client = setup(transcriber=transcriber, rw_mode="record")
    await post(client, WEBHOOK, CallStatus="ringing")
    await post(client, WEBHOOK + "?step=record", RecordingUrl="http://127.0.0.1:9/x", RecordingDuration="0", Digits="1")
    assert agent.received[-1].text == "/start_math"


async def test_caller_hanging_up_during_a_recording_is_not_a_turn():
    transcriber = Transcriber(base_url="http://127.0.0.1:9/v1", recording_hosts=["127.0.0.1"], delete_recordings=False)
    agent, _, client = setup(transcriber=transcriber, rw_mode="record")
    root = await post(client, WEBHOOK + "?step=record", RecordingUrl="http://127.0.0.1:9/x", RecordingDuration="4", Digits="hangup")
    assert list(root) == [] and agent.received == []


# ---------------------------------------------------------------------- privacy and timings
async def test_turn_timings_are_logged_without_personal_data(caplog):
    agent, _, client = setup(timing_instrumentation=True)
    with caplog.at_level(logging.DEBUG):
        await post(client, WEBHOOK, CallStatus="ringing")
        await post(client, SpeechResult="my number is secret", Confidence="0.9")
        await post(client)
    turns = [r.getMessage() for r in caplog.records if r.name == "connectors.timing"]
    assert len(turns) == 3
    for line in turns:
        for field in ("nlu_policy_ms=", "actions_ms=", "total_ms=", "conv=tw_"):
            assert field in line
    assert "kind=call_start" in turns[0] and "kind=speech" in turns[1] and "kind=silence" in turns[2]
    everything = caplog.text
    assert LEARNER not in everything and LEARNER[1:] not in everything
    assert CALL_SID not in everything and "secret" not in everything


async def test_from_credentials_reads_environment_and_credentials(monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "env-token")
    monkeypatch.setenv("SENDER_ID_SECRET", "env-secret")
    monkeypatch.setenv("VOICE_TURN_BUDGET", "7.5")
    monkeypatch.setenv("VOICE_ASR_MIN_CONFIDENCE", "0.55")
    monkeypatch.setenv("VOICE_RW_MODE", "gather")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://env.example.org/")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("STT_BASE_URL", raising=False)
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    channel = TwilioVoiceInput.from_credentials({"voice_rw": "Polly.Ayanda", "turn_budget": 9,
                                                 "keypad": {"1": "/start_math"}, "timing_instrumentation": False})
    assert channel.auth.auth_token == "env-token" and channel.auth.validate is True
    assert channel.auth.public_base_url == "https://env.example.org"
    assert channel.turn_budget == 9  # credentials win over the environment
    assert channel.settings.asr_min_confidence == 0.55 and channel.rw_mode == "gather"
    assert channel.settings.voice_rw == "Polly.Ayanda" and channel.keypad.mapping == {"1": "/start_math"}
    assert channel.hasher.sender_id(LEARNER) == SenderIdHasher("env-secret").sender_id(LEARNER)
    assert TwilioVoiceInput.from_credentials(None).name() == "twilio_voice"


async def test_persistent_transcription_failures_fall_back_to_gather(fake_openai):
    fake_openai.configure(mode="http_error")
    media = FakeTwilioMedia().start()
    try:
        transcriber = Transcriber(base_url=fake_openai.url, recording_hosts=["127.0.0.1"])
        agent, _, client = setup(transcriber=transcriber, rw_mode="record")
        await post(client, WEBHOOK, CallStatus="ringing")
        first = await post(client, WEBHOOK + "?step=record", RecordingUrl=media.recording_url(), RecordingDuration="2")
        assert find(first, "Record") is not None
        second = await post(client, WEBHOOK + "?step=record", RecordingUrl=media.recording_url(), RecordingDuration="2")
        assert find(second, "Record") is None and find(second, "Gather").get("input") == "dtmf speech"
    finally:
        media.stop()
