"""The voice channel speaking Kinyarwanda with audio (issue 14): a call whose replies are
``<Play>`` of audio the channel serves, made by a fake TTS server that returns real WAV;
TTS trouble gives ``<Say>``; the turn log carries asr_ms and tts_ms. Signed requests, the
channel mounted as ``rasa run`` mounts it (tests/connector_fixtures.py)."""
from __future__ import annotations

import logging
import re

import pytest

from connector_fixtures import (
    AUTH_TOKEN,
    PUBLIC_BASE,
    SENDER_SECRET,
    FakeTwilioMedia,
    ScriptedAgent,
    TwilioClient,
    find,
    make_app,
)
from connectors.settings import VoiceSettings
from connectors.speech import VoiceOut, audio_secret
from connectors.speech_settings import SpeechSettings, TtsEndpoint
from connectors.state import InMemoryStateStore
from connectors.transcription import Transcriber
from connectors.twilio_voice import TwilioVoiceInput
from fake_openai import TONE_SECONDS
from test_connectors_e2e import Phone, _kinyarwanda_call, fresh_number
from voice_audio import fetch_audio, make_listening_phone

ListeningPhone = make_listening_phone(Phone)
AUDIO_URL = re.compile(re.escape(PUBLIC_BASE) + r"/webhooks/twilio_voice/audio/[0-9a-f]{32}\.wav$")


def channel(tmp_path, tts_url, transcriber=None, **speech) -> TwilioVoiceInput:
    settings = VoiceSettings(auth_token=AUTH_TOKEN, sender_id_secret=SENDER_SECRET, public_base_url=PUBLIC_BASE,
                             timing_instrumentation=False, rw_mode="record" if transcriber else "gather")
    speech_settings = SpeechSettings(tts={"rw": TtsEndpoint(tts_url, "mms-tts-kin", "kin")},
                                     audio_dir=tmp_path / "audio", recordings_dir=tmp_path / "recordings", **speech)
    return TwilioVoiceInput(settings, store=InMemoryStateStore(), transcriber=transcriber,
                            voice_out=VoiceOut(speech_settings, audio_secret(SENDER_SECRET)))


def phone_for(voice: TwilioVoiceInput, agent=None) -> ListeningPhone:
    return ListeningPhone(TwilioClient(make_app([voice], agent or ScriptedAgent())), fresh_number())


async def test_kinyarwanda_call_completes_math_with_played_audio(tmp_path, fake_openai):
    phone = phone_for(channel(tmp_path, fake_openai.url))
    await _kinyarwanda_call(phone)  # dial, 9, 1, answers by keypad and speech until praised
    assert phone.played, "no reply was played"
    for url, wav in phone.played:
        assert AUDIO_URL.match(url), url
        assert (wav.format_tag, wav.rate, wav.channels, wav.bits) == (7, 8000, 1, 8)
        assert wav.seconds == pytest.approx(len(wav.heard()) * TONE_SECONDS, abs=0.01)
    spoken = [r["json"]["input"] for r in fake_openai.speech_requests]
    assert "3 + 4 ni angahe?" in spoken and len(spoken) == len(set(spoken))  # each text synthesised once
    assert not any("Hello" in text for text in spoken)  # English is not sent to the Kinyarwanda voice


async def test_replies_play_inside_gather_so_the_learner_can_interrupt(tmp_path, fake_openai):
    phone = phone_for(channel(tmp_path, fake_openai.url))
    await phone.dial()
    await phone.press("9")
    gather = find(phone.root, "Gather")
    assert gather is not None and gather.get("bargeIn") == "true"
    assert [el.tag for el in gather] == ["Play"] and find(phone.root, "Say") is None


@pytest.mark.parametrize("mode", ["down", "slow", "garbage", "http_error"])
async def test_tts_trouble_is_never_heard(tmp_path, fake_openai, mode):
    if mode == "down":
        fake_openai.stop()
    else:
        fake_openai.configure(mode=mode, delay=20.0 if mode == "slow" else None)
    voice = channel(tmp_path, fake_openai.url, tts_timeout=0.5)
    phone = phone_for(voice)
    await phone.dial()
    heard = await phone.press("9")
    assert heard == ["Ni byiza, tuzavuga Ikinyarwanda."]  # said, not an apology
    assert find(phone.root, "Play") is None and find(phone.root, "Gather") is not None
    question = await phone.press("1")
    assert question == ["3 + 4 ni angahe?"]


async def test_unknown_audio_names_are_404_on_the_route(tmp_path, fake_openai):
    phone = phone_for(channel(tmp_path, fake_openai.url))
    await phone.dial()
    await phone.press("9")
    import httpx

    known = find(phone.root, "Play").text
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=phone.client.app), base_url=PUBLIC_BASE) as http:
        for path in ("/webhooks/twilio_voice/audio/" + "0" * 32 + ".wav", "/webhooks/twilio_voice/audio/x.wav",
                     "/webhooks/twilio_voice/audio/..%2F..%2Fcredentials.yml"):
            assert (await http.get(path)).status_code == 404, path
    assert len(await fetch_audio(phone.client, known)) > 44


async def test_turn_log_carries_asr_and_tts_times(tmp_path, fake_openai, caplog):
    media = FakeTwilioMedia().start()
    try:
        transcriber = Transcriber(base_url=fake_openai.url, recording_hosts=["127.0.0.1"])
        phone = ListeningPhone(TwilioClient(make_app([channel(tmp_path, fake_openai.url, transcriber)],
                                                     ScriptedAgent())), fresh_number(), media=media, stt=fake_openai)
        with caplog.at_level(logging.INFO, logger="connectors.timing"):
            await phone.dial()
            await phone.press("9")
            await phone.press("1")
            await phone.speak("karindwi")  # recorded, transcribed: 7
    finally:
        media.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "connectors.timing"]
    fields = [dict(p.split("=", 1) for p in line.split()[1:]) for line in lines]
    assert all("asr_ms" in f and "tts_ms" in f and "total_ms" in f for f in fields) and len(fields) == 4
    recorded = fields[-1]
    assert recorded["kind"] == "record" and int(recorded["total_ms"]) >= int(recorded["asr_ms"]) + int(recorded["tts_ms"])
    assert phone.heard[0] == "Ni byo! Wabikoze neza."
