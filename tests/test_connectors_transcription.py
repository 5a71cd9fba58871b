"""Kinyarwanda transcription through an OpenAI-compatible endpoint (tests/fake_openai.py)."""
from __future__ import annotations

import time

import pytest

from connector_fixtures import ACCOUNT_SID, FakeTwilioMedia
from connectors import transcription
from connectors.transcription import Transcriber, TranscriptionError

pytestmark = pytest.mark.asyncio


@pytest.fixture
def media():
    server = FakeTwilioMedia(audio=b"ID3" + b"\x00" * 2048).start()
    try:
        yield server
    finally:
        server.stop()


def make(fake_openai, **overrides):
    settings = dict(base_url=fake_openai.url, api_key="stt-secret", model="whisper-large-v3",
                    recording_hosts=["127.0.0.1"], timeout=3)
    settings.update(overrides)
    return Transcriber(**settings)


async def test_recording_is_downloaded_transcribed_and_deleted(fake_openai, media):
    fake_openai.configure(transcript="  Ndashaka imibare  ")
    stt = make(fake_openai)
    text, seconds = await stt.transcribe_recording(media.recording_url(), "rw", ACCOUNT_SID, "auth-token")
    assert text == "Ndashaka imibare" and seconds >= 0
    [request] = fake_openai.transcription_requests
    assert request["path"] == "/v1/audio/transcriptions"
    assert request["fields"]["model"] == "whisper-large-v3"
    assert request["fields"]["language"] == "rw"
    assert request["fields"]["file"]["data"] == media.audio
    assert request["fields"]["file"]["filename"].endswith(".mp3")
    assert request["headers"]["authorization"] == "Bearer stt-secret"
    assert media.downloads[0]["auth"].startswith("Basic ")  # account SID + auth token
    for _ in range(50):
        if media.deleted:
            break
        time.sleep(0.02)
        await __import__("asyncio").sleep(0.02)
    assert media.deleted == [f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{'RE' + '3' * 32}.json"]


async def test_language_is_only_sent_when_known_and_enabled(fake_openai, media):
    await make(fake_openai).transcribe_recording(media.recording_url(), None)
    await make(fake_openai, send_language=False).transcribe_recording(media.recording_url(), "rw")
    assert all("language" not in r["fields"] for r in fake_openai.transcription_requests)


async def test_wav_format_and_no_deletion_when_disabled(fake_openai, media):
    stt = make(fake_openai, recording_format="wav", delete_recordings=False)
    await stt.transcribe_recording(media.recording_url() + ".mp3", "en")
    assert media.downloads[0]["path"].endswith(".wav")
    assert fake_openai.transcription_requests[0]["fields"]["file"]["filename"] == "turn.wav"
    assert media.deleted == []


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data",  # not an allowed host
    "ftp://127.0.0.1/recording",
    "https://api.twilio.com.evil.org/2010-04-01/Accounts/AC/Recordings/RE",
])
async def test_only_allowed_recording_hosts_are_fetched(fake_openai, url):
    stt = make(fake_openai, recording_hosts=["api.twilio.com", "127.0.0.1"], delete_recordings=False)
    with pytest.raises(TranscriptionError):
        await stt.transcribe_recording(url, "rw")
    assert fake_openai.transcription_requests == []


async def test_plain_http_is_refused_for_remote_hosts():
    stt = Transcriber(base_url="http://127.0.0.1:9/v1", recording_hosts=["api.twilio.com"], delete_recordings=False)
    with pytest.raises(TranscriptionError):
        await stt.fetch_recording("http://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE")


@pytest.mark.parametrize("mode", ["http_error", "garbage", "no_choices"])
async def test_api_failures_raise_transcription_error(fake_openai, media, mode):
    fake_openai.configure(mode=mode)
    with pytest.raises(TranscriptionError):
        await make(fake_openai, delete_recordings=False).transcribe_recording(media.recording_url(), "rw")


async def test_empty_transcript_is_an_error(fake_openai, media):
    fake_openai.configure(transcript="   ")
    with pytest.raises(TranscriptionError):
        await make(fake_openai, delete_recordings=False).transcribe_recording(media.recording_url(), "rw")


async def test_slow_endpoint_times_out(fake_openai, media):
    fake_openai.configure(delay=3)
    started = time.monotonic()
    with pytest.raises(TranscriptionError):
        await make(fake_openai, timeout=0.5, delete_recordings=False).transcribe_recording(media.recording_url(), "rw")
    assert time.monotonic() - started < 2.5


async def test_missing_recording_is_an_error(fake_openai, media):
    stt = make(fake_openai, delete_recordings=False)
    with pytest.raises(TranscriptionError):
        await stt.fetch_recording(media.base + "/nothing-here")


async def test_without_endpoint_it_is_disabled():
    stt = Transcriber(base_url=None)
    assert not stt.enabled
    with pytest.raises(TranscriptionError):
        await stt.transcribe(b"x")


async def test_openai_client_is_used_when_importable(fake_openai, monkeypatch):
    """``AsyncOpenAI(base_url, api_key).audio.transcriptions.create(model, file, language)``."""
    calls = {}

    class FakeTranscriptions:
        async def create(self, **kwargs):
            calls.update(kwargs)
            return type("Transcription", (), {"text": "cumi na kabiri"})()

    class FakeAsyncOpenAI:
        def __init__(self, **kwargs):
            calls["client"] = kwargs
            self.audio = type("Audio", (), {"transcriptions": FakeTranscriptions()})()

        async def close(self):
            calls["closed"] = True

    monkeypatch.setattr(transcription, "_openai_client_class", lambda: FakeAsyncOpenAI)
    text = await make(fake_openai).transcribe(b"audio", "turn.mp3", "rw")
    assert text == "cumi na kabiri"
    assert calls["client"]["base_url"] == fake_openai.url and calls["client"]["api_key"] == "stt-secret"
    assert calls["client"]["max_retries"] == 0
    assert calls["model"] == "whisper-large-v3" and calls["language"] == "rw"
    assert calls["file"] == ("turn.mp3", b"audio", "audio/mpeg") and calls["closed"]


async def test_real_openai_package_against_the_fake(fake_openai):
    if transcription._openai_client_class() is None:
        pytest.skip("the installed openai package cannot be imported in this environment")
    fake_openai.configure(transcript="karindwi")
    assert await make(fake_openai, client="openai").transcribe(b"audio", "turn.mp3", "rw") == "karindwi"


async def test_from_env(monkeypatch):
    for name in ("STT_BASE_URL", "STT_API_KEY", "STT_MODEL", "LLM_API_KEY", "OPENAI_API_KEY", "TWILIO_RECORDING_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLM_BASE_URL", "http://llm.local:8000/v1/")
    stt = Transcriber.from_env()
    assert stt.base_url == "http://llm.local:8000/v1" and stt.model == "whisper-1"
    assert stt.recording_hosts == {"api.twilio.com"}
    monkeypatch.setenv("STT_BASE_URL", "http://stt.local/v1")
    monkeypatch.setenv("STT_API_KEY", "k")
    monkeypatch.setenv("STT_MODEL", "kinyarwanda-asr")
    monkeypatch.setenv("TWILIO_RECORDING_HOSTS", "api.twilio.com, media.example.org")
    stt = Transcriber.from_env(model="override")
    assert stt.base_url == "http://stt.local/v1" and stt.api_key == "k" and stt.model == "override"
    assert stt.recording_hosts == {"api.twilio.com", "media.example.org"}


async def test_plain_http_client_against_the_fake(fake_openai, media):
    """The aiohttp fallback (used when the openai package is unusable) speaks the same API."""
    fake_openai.configure(transcript="gatatu")
    stt = make(fake_openai, client="http", delete_recordings=False)
    text, _ = await stt.transcribe_recording(media.recording_url(), "rw")
    assert text == "gatatu"
    fields = fake_openai.transcription_requests[0]["fields"]
    assert fields["model"] == "whisper-large-v3" and fields["language"] == "rw"
    assert fields["file"]["data"] == media.audio
