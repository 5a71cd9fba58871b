"""How the voice channel speaks each language: the chain of speech sources and their settings.

Read from the ``connectors.twilio_voice.TwilioVoiceInput`` section of credentials.yml (a key
there wins), else the environment, else the default -- like ``connectors.settings``. Every
key is optional: without a TTS endpoint and without recordings every text is ``<Say>``.

Per language ``<lang>`` (en, rw):

``speech_<lang>`` / ``VOICE_SPEECH_<LANG>``   the chain, default ``recorded, tts, say``
``tts_base_url_<lang>`` / ``TTS_BASE_URL_<LANG>``  OpenAI-compatible ``POST /v1/audio/speech``
``TTS_API_KEY_<LANG>`` (else ``TTS_API_KEY``)  secret: environment only
``tts_model_<lang>`` / ``TTS_MODEL_<LANG>``   default ``tts-1``
``tts_voice_<lang>`` / ``TTS_VOICE_<LANG>``   default ``alloy``

Shared: ``tts_timeout`` / ``TTS_TIMEOUT`` (4 s, one request), ``tts_breaker_failures`` /
``TTS_BREAKER_FAILURES`` (3), ``tts_breaker_cooldown`` / ``TTS_BREAKER_COOLDOWN`` (60 s),
``recordings_dir`` / ``VOICE_RECORDINGS_DIR`` (``voice/recordings``), ``audio_dir`` /
``VOICE_AUDIO_DIR`` (``voice/cache``, the audio store without Redis), ``audio_ttl`` /
``VOICE_AUDIO_TTL`` (30 days, in Redis), ``audio_max_bytes`` / ``VOICE_AUDIO_MAX_BYTES`` (2 MB).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Text, Tuple

from rasa.shared.exceptions import InvalidConfigException

from connectors.common import as_float, as_int, as_list, setting
from core import language as languages

LANGUAGES = languages.SUPPORTED
RECORDED, TTS, SAY = "recorded", "tts", "say"
SOURCES = (RECORDED, TTS, SAY)
DEFAULT_CHAIN = (RECORDED, TTS, SAY)
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class TtsEndpoint:
    """One language's TTS server (OpenAI-compatible ``/audio/speech``)."""

    base_url: Text
    model: Text = "tts-1"
    voice: Text = "alloy"
    api_key: Optional[Text] = None

    @property
    def identity(self) -> Text:
        """What makes its audio differ (not the key): part of the cache name."""
        return f"{self.base_url}|{self.model}|{self.voice}"


@dataclass(frozen=True)
class SpeechSettings:
    chains: Mapping[Text, Tuple[Text, ...]] = field(default_factory=lambda: {lang: DEFAULT_CHAIN for lang in LANGUAGES})
    tts: Mapping[Text, TtsEndpoint] = field(default_factory=dict)  # language -> endpoint
    tts_timeout: float = 4.0
    breaker_failures: int = 3
    breaker_cooldown: float = 60.0
    recordings_dir: Path = ROOT / "voice" / "recordings"
    audio_dir: Path = ROOT / "voice" / "cache"
    audio_ttl: float = 30 * 24 * 3600.0
    audio_max_bytes: int = 2_000_000
    redis_url: Optional[Text] = None

    def __post_init__(self) -> None:
        for lang, chain in self.chains.items():
            unknown = [s for s in chain if s not in SOURCES]
            if unknown or not chain:
                raise InvalidConfigException(
                    f"speech_{lang} must list speech sources out of {SOURCES}, not {list(chain)!r}."
                )

    def chain(self, lang: Optional[Text]) -> Tuple[Text, ...]:
        """The sources for ``lang``, always ending in ``say`` (the last resort)."""
        chain = tuple(self.chains.get(lang or "", DEFAULT_CHAIN))
        return chain if chain[-1] == SAY else chain + (SAY,)

    def endpoint(self, lang: Optional[Text]) -> Optional[TtsEndpoint]:
        return self.tts.get(lang or "") if TTS in self.chain(lang) else None

    @classmethod
    def from_credentials(cls, c: Optional[Mapping[Text, Any]], redis_url: Optional[Text] = None) -> "SpeechSettings":
        c = c or {}
        chains: Dict[Text, Tuple[Text, ...]] = {}
        tts: Dict[Text, TtsEndpoint] = {}
        for lang in LANGUAGES:
            up = lang.upper()
            chains[lang] = tuple(as_list(setting(c, f"speech_{lang}", f"VOICE_SPEECH_{up}"))) or DEFAULT_CHAIN
            base_url = setting(c, f"tts_base_url_{lang}", f"TTS_BASE_URL_{up}")
            if base_url:
                tts[lang] = TtsEndpoint(
                    base_url=str(base_url).rstrip("/"),
                    model=str(setting(c, f"tts_model_{lang}", f"TTS_MODEL_{up}", "tts-1")),
                    voice=str(setting(c, f"tts_voice_{lang}", f"TTS_VOICE_{up}", "alloy")),
                    api_key=os.environ.get(f"TTS_API_KEY_{up}") or os.environ.get("TTS_API_KEY"),
                )
        return cls(
            chains=chains, tts=tts,
            tts_timeout=as_float(setting(c, "tts_timeout", "TTS_TIMEOUT"), 4.0),
            breaker_failures=as_int(setting(c, "tts_breaker_failures", "TTS_BREAKER_FAILURES"), 3),
            breaker_cooldown=as_float(setting(c, "tts_breaker_cooldown", "TTS_BREAKER_COOLDOWN"), 60.0),
            recordings_dir=_path(setting(c, "recordings_dir", "VOICE_RECORDINGS_DIR"), "voice/recordings"),
            audio_dir=_path(setting(c, "audio_dir", "VOICE_AUDIO_DIR"), "voice/cache"),
            audio_ttl=as_float(setting(c, "audio_ttl", "VOICE_AUDIO_TTL"), 30 * 24 * 3600.0),
            audio_max_bytes=as_int(setting(c, "audio_max_bytes", "VOICE_AUDIO_MAX_BYTES"), 2_000_000),
            redis_url=redis_url if redis_url is not None else setting(c, "redis_url", "REDIS_URL"),
        )


def _path(value: Any, default: Text) -> Path:
    path = Path(str(value or default))
    return path if path.is_absolute() else ROOT / path
