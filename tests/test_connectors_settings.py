"""connectors.settings (credentials + environment) and connectors.session_state (JSON round trip)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from rasa.shared.exceptions import InvalidConfigException

from connectors.session_state import CallState, SmsState
from connectors.settings import SmsSettings, TwilioSettings, VoiceSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("TWILIO_AUTH_TOKEN", "SENDER_ID_SECRET", "PUBLIC_BASE_URL", "REDIS_URL", "VOICE_TURN_BUDGET",
                 "SMS_TURN_BUDGET", "VOICE_RW_MODE", "VOICE_MAX_SILENCES", "SMS_MAX_SEGMENTS",
                 "VOICE_CALL_END_INTENT", "VOICE_ASR_MIN_CONFIDENCE"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_match_the_documented_ones():
    voice, sms = VoiceSettings.from_credentials(None), SmsSettings.from_credentials({})
    assert voice.turn_budget == sms.turn_budget == 10.0 and voice.validate_signature is True
    assert (voice.voice_en, voice.gather_language_rw, voice.speech_timeout) == ("Polly.Amy", "rw-RW", "auto")
    assert (voice.max_silences, voice.max_holds, voice.rw_mode) == (2, 4, "auto")
    assert sms.max_segments == 2 and sms.more_keywords == {"more", "komeza", "ibindi"}
    assert {"ok", "sawa", "more"} <= sms.fetch_keywords


def test_each_channel_reads_its_own_turn_budget_variable(monkeypatch):
    monkeypatch.setenv("VOICE_TURN_BUDGET", "7")
    monkeypatch.setenv("SMS_TURN_BUDGET", "12")
    assert VoiceSettings.from_credentials({}).turn_budget == 7.0
    assert SmsSettings.from_credentials({}).turn_budget == 12.0
    assert SmsSettings.from_credentials({"turn_budget": "3"}).turn_budget == 3.0  # credentials win
    assert TwilioSettings(turn_budget=0.2).turn_budget == 1.0


def test_credentials_keys_are_parsed_and_normalised(monkeypatch):
    monkeypatch.setenv("VOICE_RW_MODE", "Record")
    monkeypatch.setenv("VOICE_CALL_END_INTENT", "/call_ended")
    voice = VoiceSettings.from_credentials({"max_silences": "3", "enhanced": "yes", "speech_model": "phone_call",
                                            "speech_timeout": 2, "play_beep": "false", "keypad": {"1": "/help"}})
    assert voice.rw_mode == "record" and voice.call_end_intent == "call_ended"
    assert voice.max_silences == 3 and voice.enhanced is True and voice.speech_timeout == "2"
    assert voice.play_beep is False and voice.keypad == {"1": "/help"}
    assert voice.per_language("voice", "rw") == "Polly.Amy" and voice.per_language("gather_language", None) == "en-US"
    sms = SmsSettings.from_credentials({"more_keywords": "More, NEXT", "keypad_enabled": "off"})
    assert sms.more_keywords == {"more", "next"} and sms.keypad_enabled is False


@pytest.mark.parametrize("bad", [{"rw_mode": "x"}, {"speech_timeout": "-1"}, {"asr_min_confidence": -0.1},
                                 {"voice_rw": ""}, {"enhanced": True}])
def test_invalid_voice_settings_are_refused(bad):
    with pytest.raises(InvalidConfigException):
        VoiceSettings(**bad)


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        VoiceSettings().voice_en = "Polly.Joanna"  # type: ignore[misc]
    with pytest.raises(InvalidConfigException):
        SmsSettings(max_segments=0)


def test_call_state_round_trips_through_json():
    call = CallState.starting()
    call.learn("rw", True)
    call.pending.append("t1")
    call.answered("rw", True, ["a", "b"], [{"title": "Yes", "payload": "/affirm"}])
    again = CallState.from_dict(json.loads(json.dumps(call.to_dict())))
    assert again == call and again.last == ["b"] and again.turns == 1 and again.known


def test_state_of_an_older_version_loads_with_defaults():
    old = {"started_at": 1.5, "turns": 2, "silences": 1, "low_conf": 0, "pending": ["t"], "obsolete": 1}
    call = CallState.from_dict(old)
    assert (call.turns, call.silences, call.pending, call.stt_failures, call.buttons) == (2, 1, ["t"], 0, [])
    assert call.known is False and call.lang is None  # no "lang": ask the tracker
    assert "lang" not in call.to_dict()  # and an older process reading it asks too
    known = CallState.from_dict({"lang": None, "math": False})
    assert known.known is True and known.to_dict()["lang"] is None
    assert CallState.from_dict(None) == CallState()


def test_call_state_says_how_the_call_ended():
    assert CallState().ended_by == "caller"
    assert CallState(ended_by_silence=True).ended_by == "silence"
    assert CallState(ended_by_bot=True, ended_by_silence=True).ended_by == "bot"
    assert CallState(stt_failures=2).transcription_failing and not CallState(stt_failures=1).transcription_failing


def test_sms_state_keeps_the_rest_of_a_cut_reply_once():
    conv = SmsState.from_dict({"lang": "en", "more": "the rest", "more_until": 100.0})
    assert conv.has_more(now=50.0) and not conv.has_more(now=150.0)
    assert conv.take_more() == "the rest" and not conv.has_more(now=50.0)
    conv.keep_more("again", ttl=60)
    assert SmsState.from_dict(conv.to_dict()).more == "again"
    conv.drop_more()
    assert conv.more is None and conv.more_until == 0.0


def test_production_settings_refuse_missing_secrets():
    with pytest.raises(InvalidConfigException, match="TWILIO_AUTH_TOKEN"):
        VoiceSettings.from_credentials({"production": True})
    with pytest.raises(InvalidConfigException):
        SmsSettings(production=True, auth_token="a-real-looking-token-1234567890", sender_id_secret=None)
    assert VoiceSettings.from_credentials({"production": "false"}).production is False
