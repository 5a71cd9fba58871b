"""Speech out (issue 14): telephony conversion, the TTS client and its breaker, the chain of
speech sources (recorded > TTS > <Say>), the shared audio store and the audio route.
TTS runs against the fake OpenAI-compatible server of tests/fake_openai.py (real WAV audio)."""
from __future__ import annotations

import asyncio
import audioop
import uuid

import pytest
from twilio.twiml.voice_response import Say

from connectors.audio import AudioError, to_telephony, wav_info
from connectors.audio_store import DirectoryAudioStore, RedisAudioStore
from connectors.speech import VoiceOut, audio_base
from connectors.speech_settings import SpeechSettings, TtsEndpoint
from connectors.tts import TtsClient, TtsError
from connectors.voice_texts import fixed_texts, keys_by_text, text_hash
from fake_openai import TONE_SECONDS, FakeOpenAI, speech_wav
from voice_audio import parse_wav, pcm_wav

QUESTION = "Ikibazo: 3 + 4 ni angahe?"
HOLDING_RW = next(f.text for f in fixed_texts() if f.key == "channel.holding" and f.lang == "rw")


def say(text, lang):
    return Say(text)


def voice_out(tmp_path, fake=None, chain=None, **extra) -> VoiceOut:
    tts = {"rw": TtsEndpoint(fake.url, model="mms-tts-kin", voice="kin")} if fake else {}
    settings = SpeechSettings(tts=tts, recordings_dir=tmp_path / "recordings", audio_dir=tmp_path / "cache",
                              chains={"rw": tuple(chain or ("recorded", "tts", "say"))}, **extra)
    return VoiceOut(settings, "test-secret")


async def settle(out: VoiceOut) -> None:
    """Let background syntheses finish (what the next turn would find)."""
    if out._background:
        await asyncio.gather(*list(out._background), return_exceptions=True)


async def played(out: VoiceOut, text: str, budget: float = 5.0):
    speech, _ = await out.speech_for([text], "rw", "https://x.example/webhooks/twilio_voice/audio/", budget, say)
    return speech(text, "rw")


# ---------------------------------------------------------------------- conversion
def test_tts_wav_becomes_8khz_mono_mulaw_of_the_same_length():
    source = speech_wav(QUESTION)  # 24 kHz 16-bit, one tone per character
    wav = parse_wav(to_telephony(source))
    assert (wav.format_tag, wav.rate, wav.channels, wav.bits) == (7, 8000, 1, 8)
    assert b"fact" in wav.chunks and len(wav.chunks[b"fmt "]) == 18
    assert wav.seconds == pytest.approx(len(QUESTION) * TONE_SECONDS, abs=0.01)
    assert wav.heard() == QUESTION  # the audio survived resampling and mu-law


def test_stereo_8bit_44k_recording_is_converted_and_mulaw_passes_through():
    mono = audioop.lin2lin(speech_wav("Muraho")[44:], 2, 1)
    stereo_8bit = audioop.bias(audioop.tostereo(mono, 1, 1, 1), 1, 128)  # 8-bit WAV is unsigned
    resampled, _ = audioop.ratecv(stereo_8bit, 2, 1, 24000, 44100, None)  # 2 bytes: stereo frames of 8-bit
    converted = to_telephony(pcm_wav(resampled, 44100, channels=2, width=1))
    wav = parse_wav(converted)
    assert (wav.format_tag, wav.rate, wav.channels) == (7, 8000, 1)
    assert wav.seconds == pytest.approx(6 * TONE_SECONDS, abs=0.01)
    assert to_telephony(converted) == converted
    assert wav_info(converted).is_telephony


@pytest.mark.parametrize("garbage", [b"", b"<html>not audio</html>", b"RIFF\x10\x00\x00\x00WAVEnot audio",
                                     pcm_wav(b"", 24000)])
def test_garbage_is_not_audio(garbage):
    with pytest.raises(AudioError):
        to_telephony(garbage)


# ---------------------------------------------------------------------- TTS client
async def test_tts_client_returns_telephony_audio_and_sends_model_voice_and_wav(fake_openai):
    client = TtsClient(TtsEndpoint(fake_openai.url, model="mms-tts-kin", voice="kin"), timeout=5)
    wav = parse_wav(await client.synthesise(QUESTION))
    assert wav.heard() == QUESTION
    sent = fake_openai.speech_requests[-1]["json"]
    assert sent == {"model": "mms-tts-kin", "voice": "kin", "input": QUESTION, "response_format": "wav"}


@pytest.mark.parametrize("mode", ["garbage", "http_error", "slow", "down"])
async def test_tts_failures_raise_and_the_breaker_opens(fake_openai, mode):
    url = fake_openai.url
    if mode == "down":
        fake_openai.stop()  # connection refused
    else:
        fake_openai.configure(mode=mode, delay=3.0 if mode == "slow" else None)
    client = TtsClient(TtsEndpoint(url), timeout=0.5)
    client.breaker.failure_threshold = 2
    for _ in range(2):
        with pytest.raises(TtsError):
            await client.synthesise("Muraho")
    sent = len(fake_openai.speech_requests)
    with pytest.raises(TtsError, match="breaker"):
        await client.synthesise("Muraho")
    assert len(fake_openai.speech_requests) == sent  # open: nothing went out


# ---------------------------------------------------------------------- the chain
async def test_same_text_twice_calls_tts_once_and_plays_served_audio(tmp_path, fake_openai):
    out = voice_out(tmp_path, fake_openai)
    first, second = await played(out, QUESTION), await played(out, QUESTION)
    assert first.name == second.name == "Play" and first.value == second.value
    assert len(fake_openai.speech_requests) == 1
    name = first.value.rsplit("/", 1)[-1]
    served = await out.serve(name)
    assert served.status == 200 and served.content_type == "audio/wav"
    assert parse_wav(served.body).heard() == QUESTION


async def test_a_second_process_finds_the_audio_in_the_shared_store(tmp_path, fake_openai):
    await played(voice_out(tmp_path, fake_openai), QUESTION)
    other = voice_out(tmp_path, fake_openai)  # same directory, same secret: another Rasa process
    assert (await played(other, QUESTION)).name == "Play"
    assert len(fake_openai.speech_requests) == 1


@pytest.mark.parametrize("mode", ["down", "http_error", "garbage"])
async def test_tts_trouble_gives_say(tmp_path, fake_openai, mode):
    if mode == "down":
        fake_openai.stop()
    else:
        fake_openai.configure(mode=mode)
    verb = await played(voice_out(tmp_path, fake_openai), QUESTION)
    assert verb.name == "Say" and verb.value == QUESTION


async def test_slow_tts_says_this_turn_and_plays_the_repeat(tmp_path, fake_openai):
    fake_openai.configure(mode="slow", delay=1.0)
    out = voice_out(tmp_path, fake_openai, tts_timeout=10)
    assert (await played(out, QUESTION, budget=0.1)).name == "Say"
    await settle(out)  # the synthesis went on in the background
    assert (await played(out, QUESTION, budget=0.0)).name == "Play"
    assert len(fake_openai.speech_requests) == 1


async def test_a_recording_wins_over_tts(tmp_path, fake_openai):
    key = keys_by_text()[("rw", HOLDING_RW)]
    folder = tmp_path / "recordings" / "rw"
    folder.mkdir(parents=True)
    (folder / f"{key}.wav").write_bytes(speech_wav("recorded"))
    (folder / f"{text_hash(QUESTION)}.wav").write_bytes(speech_wav("by hash"))
    out = voice_out(tmp_path, fake_openai)
    for text, heard in ((HOLDING_RW, "recorded"), (QUESTION, "by hash")):
        source, name = await out.audio(text, "rw")
        assert source == "recorded"
        assert parse_wav((await out.serve(f"{name}.wav")).body).heard() == heard
    assert fake_openai.speech_requests == []
    assert (await out.audio("Another text", "rw"))[0] == "tts"


async def test_a_recording_added_while_the_server_runs_is_played_at_the_next_reply(tmp_path):
    """Lookups are remembered per folder (issue 16) and forgotten when the folder changes."""
    folder = tmp_path / "recordings" / "rw"
    out = voice_out(tmp_path, None, chain=["recorded", "say"])
    assert (await played(out, QUESTION)).name == "Say"  # no folder yet
    folder.mkdir(parents=True)
    assert (await played(out, QUESTION)).name == "Say"  # an empty folder
    (folder / f"{text_hash(QUESTION)}.wav").write_bytes(speech_wav("recorded"))
    verb = await played(out, QUESTION)
    assert verb.name == "Play"
    assert parse_wav((await out.serve(verb.value.rsplit("/", 1)[1])).body).heard() == "recorded"
    (folder / f"{text_hash(QUESTION)}.wav").unlink()
    assert (await played(out, QUESTION)).name == "Say"  # removed: said again


async def test_the_configured_order_is_followed(tmp_path, fake_openai):
    folder = tmp_path / "recordings" / "rw"
    folder.mkdir(parents=True)
    (folder / f"{text_hash(QUESTION)}.wav").write_bytes(speech_wav("recorded"))
    assert (await voice_out(tmp_path, fake_openai, chain=["tts", "recorded"]).audio(QUESTION, "rw"))[0] == "tts"
    assert (await voice_out(tmp_path, fake_openai, chain=["say"]).audio(QUESTION, "rw")) == ("say", None)
    assert (await voice_out(tmp_path, None).audio("Not recorded", "rw")) == ("say", None)  # make run: <Say>


async def test_a_broken_recording_falls_through_to_tts(tmp_path, fake_openai):
    folder = tmp_path / "recordings" / "rw"
    folder.mkdir(parents=True)
    (folder / f"{text_hash(QUESTION)}.wav").write_bytes(b"not a wav")
    assert (await voice_out(tmp_path, fake_openai).audio(QUESTION, "rw"))[0] == "tts"


async def test_english_has_no_tts_unless_configured(tmp_path, fake_openai):
    out = voice_out(tmp_path, fake_openai)
    verb = (await out.speech_for(["Hello"], "en", "/a/", 5, say))[0]("Hello", "en")
    assert verb.name == "Say" and fake_openai.speech_requests == []


def test_audio_names_are_keyed_hashes():
    a, b = VoiceOut(SpeechSettings(), "one"), VoiceOut(SpeechSettings(), "two")
    assert a.name("tts", "rw", QUESTION) != b.name("tts", "rw", QUESTION)
    assert len(a.name("x")) == 32 and QUESTION not in a.name("tts", "rw", QUESTION)
    assert audio_base("https://h/p/webhooks/twilio_voice/webhook") == "https://h/p/webhooks/twilio_voice/audio/"


# ---------------------------------------------------------------------- route and stores
@pytest.mark.parametrize("file", ["0" * 32 + ".wav", "0" * 32, "../../etc/passwd", "ABC.wav", "x" * 32 + ".wav",
                                  "0" * 31 + ".wav", ""])
async def test_unknown_or_invalid_names_are_404(tmp_path, file):
    out = voice_out(tmp_path)
    assert (await out.serve(file)).status == 404


async def test_redis_store_keeps_audio_with_a_ttl_and_a_size_cap():
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.from_url("redis://127.0.0.1:6379/0")
    prefix = f"test:voice:{uuid.uuid4().hex}:"
    store = RedisAudioStore(client, ttl=60, max_bytes=1000, prefix=prefix)
    name = uuid.uuid4().hex
    try:
        await store.put(name, b"a" * 100)
        assert await store.has(name) and await store.get(name) == b"a" * 100
        assert 0 < await client.pttl(prefix + name) <= 60_000
        big = uuid.uuid4().hex
        await store.put(big, b"a" * 1001)
        assert not await store.has(big)
        assert await store.get("../" + name) is None
    finally:
        keys = [k async for k in client.scan_iter(prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.close()


async def test_directory_store_writes_whole_files(tmp_path):
    store = DirectoryAudioStore(tmp_path)
    name = uuid.uuid4().hex
    assert not await store.has(name)
    await store.put(name, b"audio")
    assert await DirectoryAudioStore(tmp_path).get(name) == b"audio"
    assert not list(tmp_path.rglob("*.tmp"))
    with pytest.raises(ValueError):
        await store.put("../evil", b"x")


def test_settings_from_credentials_and_environment(monkeypatch):
    monkeypatch.setenv("TTS_BASE_URL_RW", "http://tts.local/v1/")
    monkeypatch.setenv("TTS_API_KEY", "secret")
    monkeypatch.setenv("VOICE_SPEECH_EN", "say")
    settings = SpeechSettings.from_credentials({"tts_model_rw": "mms-tts-kin", "speech_rw": ["tts", "say"]})
    assert settings.endpoint("rw") == TtsEndpoint("http://tts.local/v1", "mms-tts-kin", "alloy", "secret")
    assert settings.chain("rw") == ("tts", "say") and settings.chain("en") == ("say",)
    assert settings.endpoint("en") is None
    assert SpeechSettings.from_credentials({"speech_rw": "recorded"}).chain("rw") == ("recorded", "say")
    from rasa.shared.exceptions import InvalidConfigException

    with pytest.raises(InvalidConfigException):
        SpeechSettings.from_credentials({"speech_rw": ["polly"]})


def test_fake_server_answers_real_audio_that_grows_with_the_text():
    with FakeOpenAI() as fake:
        import requests

        short = requests.post(f"{fake.url}/audio/speech", json={"input": "Yego", "model": "m", "voice": "v",
                                                                  "response_format": "wav"}, timeout=10)
        long = requests.post(f"{fake.url}/audio/speech", json={"input": QUESTION, "model": "m", "voice": "v",
                                                                 "response_format": "wav"}, timeout=10)
    assert parse_wav(short.content).rate == 24000 and len(long.content) > 2 * len(short.content)
