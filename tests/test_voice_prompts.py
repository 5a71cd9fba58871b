"""make voice-script / make voice-prompts on the real catalogues, and the recordings check of
make validate (scripts/voice_prompts.py, scripts/check_recordings.py)."""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.speech import VoiceOut, audio_secret
from connectors.speech_settings import SpeechSettings, TtsEndpoint
from connectors.voice_texts import fixed_texts, text_hash
from fake_openai import speech_wav
from voice_audio import parse_wav, pcm_wav

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import check_recordings  # noqa: E402
import voice_prompts  # noqa: E402

SECRET = "prompts-test-secret"


def run_script(*args, **env):
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    for key in ("REDIS_URL", "TTS_BASE_URL_EN", "TTS_BASE_URL_RW", "VOICE_RECORDINGS_DIR", "VOICE_AUDIO_DIR"):
        if key not in env:
            full_env.pop(key, None)
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "voice_prompts.py"), *args], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=600)


def test_voice_script_lists_every_fixed_text_of_both_languages(tmp_path):
    out = tmp_path / "script.csv"
    result = run_script("script", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    fixed = [f for f in fixed_texts() if not f.per_turn]
    assert len(rows) == len(fixed) > 100
    assert {r["language"] for r in rows} == {"en", "rw"}
    assert not any("{" in r["text"] for r in rows)  # per-turn texts are not recorded
    holding = next(r for r in rows if r["key"] == "channel.holding" and r["language"] == "rw")
    assert holding["file"] == "rw/channel.holding.wav" and holding["recorded"] == "no"
    assert any(r["where"] == "domain.yml" for r in rows) and any(r["where"].startswith("actions/") for r in rows)


async def test_voice_prompts_renders_the_real_catalogues_for_the_server(tmp_path, fake_openai):
    recordings = tmp_path / "recordings"
    (recordings / "rw").mkdir(parents=True)
    (recordings / "rw" / "channel.holding.wav").write_bytes(speech_wav("Tegereza gato."))
    env = dict(TTS_BASE_URL_RW=fake_openai.url, TTS_MODEL_RW="mms-tts-kin", VOICE_AUDIO_DIR=str(tmp_path / "audio"),
               VOICE_RECORDINGS_DIR=str(recordings), SENDER_ID_SECRET=SECRET)
    result = run_script("render", **env)
    assert result.returncode == 0, result.stderr
    rw = [f for f in fixed_texts() if f.lang == "rw" and not f.per_turn]
    en = [f for f in fixed_texts() if f.lang == "en" and not f.per_turn]
    assert f"rw: 1 recorded, {len(rw) - 1} synthesised, 0 missing" in result.stdout
    assert f"en: 0 recorded, 0 synthesised, {len(en)} missing" in result.stdout  # no English TTS configured
    assert len(fake_openai.speech_requests) == len({f.text for f in rw}) - 1
    assert run_script("render", "--strict", **env).returncode == 1  # English is missing

    # the server (same secret, same store) plays them without calling the TTS server again
    sent = len(fake_openai.speech_requests)
    server = VoiceOut(SpeechSettings(tts={"rw": TtsEndpoint(fake_openai.url, "mms-tts-kin")},
                                     audio_dir=tmp_path / "audio", recordings_dir=recordings), audio_secret(SECRET))
    for fixed in rw[:5]:
        source, name = await server.audio(fixed.text, "rw", deadline=0)
        assert name and source in ("tts", "recorded")
        assert parse_wav((await server.serve(f"{name}.wav")).body).rate == 8000
    assert len(fake_openai.speech_requests) == sent


# ---------------------------------------------------------------------- make validate
def findings_for(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICE_RECORDINGS_DIR", str(tmp_path))
    found = []
    checked = {}
    check_recordings.check_recordings(ROOT, lambda *f: found.append(f), checked)
    return {(Path(path).name, code): level for level, path, _, code, _ in found}, checked


def test_recordings_are_checked(tmp_path, monkeypatch):
    rw = tmp_path / "rw"
    rw.mkdir()
    tone = speech_wav("Tegereza gato.")  # 24 kHz mono PCM, 0.8 s
    (rw / "channel.holding.wav").write_bytes(tone)
    (rw / f"{text_hash('Murabeho!')}.wav").write_bytes(tone)  # by the hash of a domain/channel text
    (rw / "channel.goodbye.wav").write_bytes(pcm_wav(tone[44:] * 2, 24000, channels=2))  # stereo
    (rw / "channel.error.wav").write_bytes(pcm_wav(tone[44:], 4000))  # too low a rate
    (rw / "channel.error_hangup.wav").write_bytes(pcm_wav(tone[44:2000], 24000))  # 0.04 s
    (rw / "channel.low_confidence.wav").write_bytes(b"ID3 an mp3 file")
    (rw / "channel.reprompt_silence.wav").write_bytes(pcm_wav(tone[44:] * 40, 24000))  # 32 s
    (rw / "old_prompt.wav").write_bytes(tone)
    (tmp_path / "fr").mkdir()
    found, checked = findings_for(tmp_path, monkeypatch)
    assert found == {
        ("channel.goodbye.wav", "recording-format"): "error",
        ("channel.error.wav", "recording-format"): "error",
        ("channel.error_hangup.wav", "recording-length"): "error",
        ("channel.low_confidence.wav", "recording-not-wav"): "error",
        ("channel.reprompt_silence.wav", "recording-length"): "error",
        ("old_prompt.wav", "recording-unused"): "warning",
        ("fr", "recording-language"): "warning",
        ("rw", "recording-missing"): "warning",
    }
    assert checked["recordings"] == 8


def test_no_recordings_folder_no_findings(tmp_path, monkeypatch):
    assert findings_for(tmp_path / "absent", monkeypatch) == ({}, {})


def test_check_data_runs_the_recordings_check(tmp_path, monkeypatch):
    import check_data

    (tmp_path / "rw").mkdir()
    (tmp_path / "rw" / "channel.holding.wav").write_bytes(b"not audio")
    monkeypatch.setenv("VOICE_RECORDINGS_DIR", str(tmp_path))
    report = check_data.check_project(ROOT)
    assert [f.code for f in report.errors] == ["recording-not-wav"]


@pytest.mark.parametrize("target", ["voice-script", "voice-prompts"])
def test_make_targets_run_the_script(target):
    dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "scripts/voice_prompts.py" in dry.stdout
