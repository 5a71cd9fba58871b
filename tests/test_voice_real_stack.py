"""A Kinyarwanda call to the real assistant (trained model, action server, credentials.yml)
completes a math problem hearing audio: the voice channel synthesises its Kinyarwanda replies
through a fake OpenAI-compatible TTS server (real WAV), serves them as 8 kHz mu-law, and the
caller reads the questions back from the audio it is played."""
from __future__ import annotations

import pytest

from tests.stack import Stack, ensure_model, stack_env
from tests.test_connectors_e2e import Phone, _kinyarwanda_call, fresh_number, real_client

pytestmark = [pytest.mark.e2e]
TOKEN = "voice-stack-twilio-token"


@pytest.fixture(scope="module")
def tts_server():
    from fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def voice_stack(tmp_path_factory, tts_server):
    ensure_model()
    workdir = tmp_path_factory.mktemp("voice-stack")
    stack = Stack(workdir=workdir, env={})
    stack.env = stack_env(workdir, TWILIO_AUTH_TOKEN=TOKEN, SENDER_ID_SECRET="voice-stack-secret",
                          PUBLIC_BASE_URL=stack.url, TWILIO_VALIDATE_SIGNATURE="true",
                          TTS_BASE_URL_RW=tts_server.url, TTS_MODEL_RW="mms-tts-kin", TTS_VOICE_RW="kin",
                          VOICE_AUDIO_DIR=str(workdir / "audio"), VOICE_RECORDINGS_DIR=str(workdir / "recordings"))
    stack.start()
    yield stack
    stack.stop()


async def test_kinyarwanda_call_completes_math_with_audio_replies(voice_stack, tts_server):
    from voice_audio import make_listening_phone

    phone = make_listening_phone(Phone)(real_client({"url": voice_stack.url, "public": voice_stack.url,
                                                     "token": TOKEN}), fresh_number())
    await _kinyarwanda_call(phone)  # the questions are solved from what the audio says
    assert len(phone.played) >= 3
    for url, wav in phone.played:
        assert url.startswith(voice_stack.url + "/webhooks/twilio_voice/audio/")
        assert (wav.format_tag, wav.rate, wav.channels, wav.bits) == (7, 8000, 1, 8) and wav.seconds > 0.3
    spoken = [r["json"]["input"] for r in tts_server.speech_requests]
    assert spoken and len(spoken) == len(set(spoken))
