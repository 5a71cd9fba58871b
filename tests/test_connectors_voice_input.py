"""connectors.voice_input.classify: what a request of a call brings (no Sanic, no I/O)."""
from __future__ import annotations

import pytest

from connectors.session_state import CallState
from connectors.voice_input import InputKind, call_ended, call_metadata, classify

RECORDING = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"


def kind_of(step="input", call=None, **form):
    heard = classify(form, step, call or CallState(), min_confidence=0.4, max_low_confidence=2)
    return heard


@pytest.mark.parametrize("status", ["completed", "busy", "failed", "no-answer", "canceled", " Completed "])
def test_a_final_call_status_ends_the_call_on_any_step(status):
    assert kind_of("input", CallStatus=status, SpeechResult="hello").kind is InputKind.CALL_ENDED
    assert kind_of(None, CallStatus=status).kind is InputKind.CALL_ENDED
    assert call_ended({"CallStatus": status})


def test_the_record_action_after_a_hangup_discards_the_recording():
    heard = kind_of("record", CallStatus="completed", RecordingUrl=RECORDING, RecordingDuration="5")
    assert heard.kind is InputKind.CALL_ENDED and heard.discard_recording


def test_the_numbers_webhook_starts_the_call_and_await_picks_up_a_turn():
    assert kind_of(None, CallStatus="ringing").kind is InputKind.CALL_START
    assert kind_of("", CallStatus="in-progress").kind is InputKind.CALL_START
    assert kind_of("await", CallStatus="in-progress").kind is InputKind.AWAIT
    assert not call_ended({"CallStatus": "in-progress"})


@pytest.mark.parametrize("digits", ["1", "7#", "*0", "12"])
def test_keypad_entries_are_digits(digits):
    heard = kind_of(Digits=digits, SpeechResult="")
    assert heard.kind is InputKind.DIGITS and heard.text == digits


@pytest.mark.parametrize("digits", ["", "#", "##", "  "])
def test_an_empty_keypad_entry_is_silence(digits):
    assert kind_of(Digits=digits).kind is InputKind.SILENCE


def test_speech_with_its_confidence():
    heard = kind_of(SpeechResult=" seven ", Confidence="0.91")
    assert (heard.kind, heard.text, heard.confidence) == (InputKind.SPEECH, "seven", 0.91)


def test_low_confidence_is_asked_again_only_up_to_the_limit():
    assert kind_of(SpeechResult="mmh", Confidence="0.1").kind is InputKind.LOW_CONFIDENCE
    assert kind_of(call=CallState(low_conf=1), SpeechResult="mmh", Confidence="0.1").kind is InputKind.LOW_CONFIDENCE
    assert kind_of(call=CallState(low_conf=2), SpeechResult="mmh", Confidence="0.1").kind is InputKind.SPEECH


@pytest.mark.parametrize("confidence", [None, "", "0", "0.0", "not a number"])
def test_a_missing_or_zero_confidence_is_no_evidence(confidence):
    form = {"SpeechResult": "hello"}
    if confidence is not None:
        form["Confidence"] = confidence
    assert kind_of(**form).kind is InputKind.SPEECH


def test_digits_win_over_speech():
    assert kind_of(Digits="3", SpeechResult="three", Confidence="0.9").kind is InputKind.DIGITS


def test_a_spoken_recording_is_transcribed():
    heard = kind_of("record", RecordingUrl=RECORDING, RecordingDuration="3", Digits="#")
    assert heard.kind is InputKind.RECORDING and heard.recording_url == RECORDING
    assert not heard.discard_recording


def test_a_key_that_ends_a_recording_at_once_is_keypad_input():
    heard = kind_of("record", RecordingUrl=RECORDING, RecordingDuration="1", Digits="1")
    assert heard.kind is InputKind.DIGITS and heard.text == "1" and heard.discard_recording


def test_a_key_after_a_long_recording_keeps_the_recording():
    heard = kind_of("record", RecordingUrl=RECORDING, RecordingDuration="4", Digits="5")
    assert heard.kind is InputKind.RECORDING


def test_a_too_short_recording_is_silence_and_discarded():
    heard = kind_of("record", RecordingUrl=RECORDING, RecordingDuration="0.2")
    assert heard.kind is InputKind.SILENCE and heard.discard_recording


def test_hanging_up_during_a_recording_is_not_a_turn():
    heard = kind_of("record", RecordingUrl=RECORDING, RecordingDuration="4", Digits="hangup")
    assert heard.kind is InputKind.RECORDING_HANGUP and heard.discard_recording


def test_the_silence_redirect_after_a_record_is_silence():
    assert kind_of("silence").kind is InputKind.SILENCE


def test_call_metadata_names_the_learner_side_never_the_number():
    inbound = {"Direction": "inbound", "From": "+250788123456", "FromCountry": "RW", "ToCountry": "US"}
    assert call_metadata(inbound, "CA1", "twilio_voice", input="dtmf", keypad=None) == {
        "channel": "twilio_voice", "call_sid": "CA1", "direction": "inbound", "caller_country": "RW",
        "input": "dtmf",
    }
    outbound = {"Direction": "outbound-api", "To": "+250788123456", "ToCountry": "RW", "FromCountry": "US"}
    assert call_metadata(outbound, "CA1", "twilio_voice")["caller_country"] == "RW"
