"""Text to speech through an OpenAI-compatible ``POST {base_url}/audio/speech`` endpoint.

Any server speaking that API works: OpenAI for English, a self-hosted Kinyarwanda model
(MMS-TTS ``kin``, a Digital Umuganda voice) behind a small shim (docs/voice.md). WAV is
requested, so no MP3 decoder is needed; the answer is converted to telephony audio at once
(``connectors.audio``), so an answer that is not audio counts as a failure.

Each endpoint has a timeout per request and a circuit breaker (the project's one,
``core.breaker.CircuitBreaker``): after ``TTS_BREAKER_FAILURES`` consecutive failures no
request goes out for ``TTS_BREAKER_COOLDOWN`` seconds and the chain goes on to ``<Say>``.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional, Text

from core.breaker import CircuitBreaker
from connectors.audio import AudioError, to_telephony
from connectors.speech_settings import TtsEndpoint

logger = logging.getLogger(__name__)


class TtsError(Exception):
    """No audio: endpoint down, slow, failing, answering garbage, or its breaker open."""


class TtsClient:
    def __init__(self, endpoint: TtsEndpoint, timeout: float = 4.0, breaker: Optional[CircuitBreaker] = None) -> None:
        self.endpoint = endpoint
        self.timeout = float(timeout)
        self.breaker = breaker or CircuitBreaker(name="TTS")
        self._client: Any = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def _openai(self) -> Any:
        """One AsyncOpenAI per event loop (its connection pool is bound to the loop)."""
        from openai import AsyncOpenAI

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = AsyncOpenAI(base_url=self.endpoint.base_url, api_key=self.endpoint.api_key or "not-needed",
                                       timeout=self.timeout, max_retries=0)
            self._loop = loop
        return self._client

    async def synthesise(self, text: Text) -> bytes:
        """Telephony WAV of ``text`` (raises :class:`TtsError`)."""
        if not self.breaker.allow():
            raise TtsError("circuit breaker open")
        try:
            response = await asyncio.wait_for(
                self._openai().audio.speech.create(model=self.endpoint.model, voice=self.endpoint.voice,
                                                   input=text, response_format="wav"),
                timeout=self.timeout,
            )
            audio = to_telephony(response.content)
        except asyncio.CancelledError:
            self.breaker.release()
            raise
        except AudioError as exc:
            self.breaker.record_failure()
            raise TtsError(f"not audio ({exc})") from exc
        except Exception as exc:  # connection refused, timeout, HTTP status, ...
            self.breaker.record_failure()
            raise TtsError(type(exc).__name__) from exc
        self.breaker.record_success()
        return audio
