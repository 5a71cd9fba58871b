"""connectors.twiml: voice replies and SMS messages rendered as TwiML (no Sanic)."""
from __future__ import annotations

from twilio.twiml.voice_response import Play

from connector_fixtures import find, messages_of, parse_twiml, said
from connectors.settings import VoiceSettings
from connectors.twiml import HANGUP, HOLD, RECORD, VoiceReply, VoiceTwiml, kinyarwanda_listen_mode, sms_twiml

BASE = "https://bakame.example.org/webhooks/twilio_voice/webhook"
SETTINGS = VoiceSettings(voice_en="Polly.Joanna", voice_rw="Polly.Ayanda", say_language_rw="en-GB",
                         gather_language_rw="rw-RW", speech_hints="yego, oya")


def render(reply, settings=SETTINGS, speech=None):
    return parse_twiml(str(VoiceTwiml(settings, speech).render(reply, BASE)))


def test_listening_nests_every_text_in_a_barge_in_gather_in_the_learners_voice():
    root = render(VoiceReply(["Muraho!", "", "3 + 4 ni angahe?"], "rw"))
    gather = find(root, "Gather")
    assert said(gather) == ["Muraho!", "3 + 4 ni angahe?"] and said(root) == said(gather)
    assert gather.get("input") == "dtmf speech" and gather.get("bargeIn") == "true"
    assert gather.get("action") == BASE + "?step=input" and gather.get("actionOnEmptyResult") == "true"
    assert gather.get("language") == "rw-RW" and gather.get("hints") == "yego, oya"
    assert gather.get("timeout") == "6" and gather.get("numDigits") is None
    say = find(gather, "Say")
    assert say.get("voice") == "Polly.Ayanda" and say.get("language") == "en-GB"


def test_unknown_language_uses_the_english_voice_and_math_waits_longer():
    root = render(VoiceReply(["Hello"], None, math=True))
    assert find(root, "Say").get("voice") == "Polly.Joanna" and find(root, "Say").get("language") is None
    assert find(root, "Gather").get("language") == "en-US" and find(root, "Gather").get("timeout") == "8"


def test_a_single_key_menu_does_not_wait_for_hash():
    assert find(render(VoiceReply(["Menu"], "en", single_key=True)), "Gather").get("numDigits") == "1"


def test_record_mode_is_a_keypad_gather_then_record_then_silence_redirect():
    root = render(VoiceReply(["Vuga igisubizo."], "rw", mode=RECORD))
    gather, record, redirect = find(root, "Gather"), find(root, "Record"), find(root, "Redirect")
    assert gather.get("input") == "dtmf" and gather.get("timeout") == "2" and said(gather) == ["Vuga igisubizo."]
    assert record.get("action") == BASE + "?step=record" and record.get("finishOnKey") == "0123456789*#"
    assert record.get("maxLength") == "15" and record.get("trim") == "trim-silence"
    assert redirect.text == BASE + "?step=silence"
    assert [el.tag for el in root] == ["Gather", "Record", "Redirect"]


def test_hangup_and_hold():
    root = render(VoiceReply(["Murabeho!"], "rw", then=HANGUP))
    assert said(root) == ["Murabeho!"] and find(root, "Hangup") is not None and find(root, "Gather") is None
    root = render(VoiceReply(["One moment please."], "en", then=HOLD, turn_id="abc", holds=2))
    assert find(root, "Redirect").text == BASE + "?step=await&turn=abc&n=2" and find(root, "Gather") is None


def test_the_speech_of_each_text_is_replaceable_per_language():
    def play(text, lang):
        return Play(f"https://tts.example.org/{lang}/{len(text)}.mp3")

    root = render(VoiceReply(["Muraho!"], "rw"), speech=play)
    assert said(root) == [] and find(find(root, "Gather"), "Play").text == "https://tts.example.org/rw/7.mp3"


def test_kinyarwanda_listen_mode_follows_the_transcriber():
    assert kinyarwanda_listen_mode("auto", True) == "record"
    assert kinyarwanda_listen_mode("auto", False) == "gather"
    assert kinyarwanda_listen_mode("record", False) == "gather"
    assert kinyarwanda_listen_mode("gather", True) == "gather"


def test_sms_reply_is_one_message_or_nothing():
    assert messages_of(parse_twiml(str(sms_twiml("Hello\nthere")))) == ["Hello\nthere"]
    assert list(parse_twiml(str(sms_twiml(None)))) == [] and list(parse_twiml(str(sms_twiml("")))) == []
