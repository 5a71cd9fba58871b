"""Speech out: each text of a voice reply becomes ``<Play>`` of telephony audio, or ``<Say>``.

Per language a chain of sources (``connectors.speech_settings``), tried in order:

1. ``recorded``: a native speaker's recording of a fixed text, ``<recordings_dir>/<lang>/<key>.wav``
   (the key of the text in the catalogues, ``connectors.voice_texts``) or ``<hash>.wav``
   (``voice_texts.text_hash`` of the exact text, for texts outside the catalogues);
2. ``tts``: the language's OpenAI-compatible TTS endpoint (``connectors.tts``), called
   only when the audio of this text is not in the store yet;
3. ``say``: ``<Say>`` in the configured voice, when nothing else has audio in time.

Audio is converted once to 8 kHz mono mu-law WAV and kept in the shared
:mod:`connectors.audio_store` under a keyed hash of (source, language, voice, text): names are
unguessable and carry no learner data. The channel serves them at
``GET /webhooks/twilio_voice/audio/<name>.wav`` (404 for any other name).

A reply waits for synthesis at most the rest of the turn budget (and the TTS timeout);
past it, this turn says the text with ``<Say>`` while the synthesis goes on in the
background, so the audio is ready when the text is needed again (a repeat).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Set, Text, Tuple

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.twiml import TwiML
from twilio.twiml.voice_response import Play, VoiceResponse

from core.breaker import CircuitBreaker
from connectors.audio import AudioError, to_telephony
from connectors.audio_store import AudioStore, audio_store, valid_name
from connectors.speech_settings import RECORDED, SAY, TTS, SpeechSettings
from connectors.tts import TtsClient, TtsError
from connectors.timing import emit, with_tts
from connectors.twiml import Speech, VoiceReply, VoiceTwiml
from connectors.voice_texts import keys_by_text, spoken, text_hash

logger = logging.getLogger(__name__)

AUDIO_CACHE_SECONDS = 7 * 24 * 3600  # a name never changes its audio, so Twilio may keep it


class VoiceOut:
    """The chain of speech sources of the voice channel, and the audio it serves."""

    def __init__(self, settings: SpeechSettings, secret: Text, store: Optional[AudioStore] = None) -> None:
        self.settings = settings
        self._secret = secret.encode("utf-8")
        self.store = store or audio_store(settings.redis_url, settings.audio_dir, settings.audio_ttl,
                                          settings.audio_max_bytes)
        self.tts: Dict[Text, TtsClient] = {
            lang: TtsClient(endpoint, settings.tts_timeout,
                            CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown, name=f"TTS {lang}"))
            for lang, endpoint in settings.tts.items()
        }
        self._recorded: Dict[Path, Tuple[int, int, Text]] = {}  # path -> (mtime_ns, size, name)
        self._folders: Dict[Text, Optional[int]] = {}  # language -> mtime_ns of its recordings folder (None: none)
        self._paths: Dict[Tuple[Text, Text], Optional[Path]] = {}  # (language, text) -> its recording, if any
        self._running: Dict[Text, "asyncio.Task"] = {}  # name -> synthesis (one per text at a time)
        self._background: Set["asyncio.Task"] = set()

    @classmethod
    def from_credentials(cls, credentials: Optional[Mapping[Text, Any]], channel: Any) -> "VoiceOut":
        """From the voice channel's credentials.yml section and its ``VoiceSettings``."""
        return cls(SpeechSettings.from_credentials(credentials, channel.redis_url),
                   audio_secret(channel.sender_id_secret))

    # ------------------------------------------------------------------ names
    def name(self, *parts: Text) -> Text:
        """A keyed hash: the same parts always give the same name, nobody can guess it."""
        return hmac.new(self._secret, "\x00".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    # ------------------------------------------------------------------ the chain
    async def speech_for(self, texts: Sequence[Text], lang: Optional[Text], audio_base: Text, budget: float,
                         say: Speech) -> Tuple[Speech, float]:
        """A :data:`Speech` for this reply's ``texts`` (``<Play>`` where audio is ready within
        ``budget`` seconds, else ``say``) and the seconds spent making it."""
        started = time.perf_counter()
        deadline = time.monotonic() + max(0.0, budget)
        unique = [t for t in dict.fromkeys(spoken(t) for t in texts) if t]
        self._look_at_recordings(lang)
        # a task per text only for texts that may have audio; the others are said (issue 16)
        unique = [t for t in unique if self._may_have_audio(t, lang)]
        try:
            found = await asyncio.gather(*(self.audio(t, lang, deadline) for t in unique), return_exceptions=True)
        except Exception:  # pragma: no cover - gather with return_exceptions does not raise
            found = [None] * len(unique)
        names = {t: f[1] for t, f in zip(unique, found) if isinstance(f, tuple) and f[1]}
        for failure in (f for f in found if isinstance(f, BaseException)):
            logger.warning("Speech source failed (%s); saying the text instead.", type(failure).__name__)

        def speak(text: Text, text_lang: Optional[Text]) -> TwiML:
            name = names.get(spoken(text))
            return Play(f"{audio_base}{name}.wav") if name else say(text, text_lang)

        return speak, time.perf_counter() - started

    async def audio(self, text: Text, lang: Optional[Text], deadline: Optional[float] = None
                    ) -> Tuple[Text, Optional[Text]]:
        """``(source, name)`` of the audio of ``text``; name None when ``<Say>`` has to do.
        ``deadline`` (``time.monotonic()``): how long to wait for synthesis; None: as long as it takes."""
        text = spoken(text)
        for source in self.settings.chain(lang):
            if source == RECORDED:
                name = await self._from_recording(text, lang)
            elif source == TTS:
                name = await self._from_tts(text, lang, deadline)
            else:
                return SAY, None
            if name:
                return source, name
        return SAY, None  # pragma: no cover - a chain always ends in say

    async def render(self, twiml: VoiceTwiml, reply: VoiceReply, action_base: Text, budget: float,
                     timing: Optional[dict] = None) -> VoiceResponse:
        """The reply's TwiML with its audio; logs the turn (``timing``) with ``tts_ms``."""
        speech, seconds = await self.speech_for(reply.texts, reply.lang, audio_base(action_base), budget,
                                                twiml.speech)
        if timing:
            emit(with_tts(timing, seconds))
        return twiml.render(reply, action_base, speech)

    # ------------------------------------------------------------------ recorded prompts
    def _may_have_audio(self, text: Text, lang: Optional[Text]) -> bool:
        chain = self.settings.chain(lang)
        return (TTS in chain and (lang or "") in self.tts) or (
            RECORDED in chain and self.recording_path(text, lang) is not None)

    def _look_at_recordings(self, lang: Optional[Text]) -> None:
        """Forget the recordings looked up in ``lang``'s folder when the folder changed (a file
        added, removed or renamed changes its mtime): one ``stat`` per reply instead of two or
        three per text (issue 16)."""
        folder = self.settings.recordings_dir / (lang or "")
        try:
            state = folder.stat().st_mtime_ns if lang and folder.is_dir() else None
        except OSError:
            state = None
        if self._folders.get(lang or "", "unknown") != state:
            self._folders[lang or ""] = state
            self._paths = {k: v for k, v in self._paths.items() if k[0] != (lang or "")}

    def recording_path(self, text: Text, lang: Optional[Text]) -> Optional[Path]:
        if (lang or "") not in self._folders:
            self._look_at_recordings(lang)
        if self._folders.get(lang or "") is None:
            return None
        cached = (lang or "", text)
        if cached in self._paths:
            return self._paths[cached]
        folder = self.settings.recordings_dir / (lang or "")
        key = keys_by_text().get((lang, spoken(text)))
        found = None
        for stem in ([key] if key else []) + [text_hash(text)]:
            path = folder / f"{stem}.wav"
            if path.is_file():
                found = path
                break
        if len(self._paths) > 10_000:  # replies of the LLM tutors are all different: bounded
            self._paths.clear()
        self._paths[cached] = found
        return found

    async def _from_recording(self, text: Text, lang: Optional[Text]) -> Optional[Text]:
        path = self.recording_path(text, lang)
        if path is None:
            return None
        stat = path.stat()
        known = self._recorded.get(path)
        if known and known[:2] == (stat.st_mtime_ns, stat.st_size) and await self.store.has(known[2]):
            return known[2]
        data = path.read_bytes()
        try:
            audio = to_telephony(data)
        except AudioError as exc:
            logger.warning("Recording %s is not usable audio (%s); make validate lists it.", path.name, exc)
            return None
        name = self.name(RECORDED, lang or "", hashlib.sha256(data).hexdigest())
        await self.store.put(name, audio)
        self._recorded[path] = (stat.st_mtime_ns, stat.st_size, name)
        return name

    # ------------------------------------------------------------------ synthesis
    async def _from_tts(self, text: Text, lang: Optional[Text], deadline: Optional[float]) -> Optional[Text]:
        client = self.tts.get(lang or "")
        if client is None:
            return None
        name = self.name(TTS, lang or "", client.endpoint.identity, text)
        if await self.store.has(name):
            return name
        task = self._running.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._synthesise(client, name, text))
            self._running[name] = task
            self._background.add(task)
            task.add_done_callback(lambda t: (self._running.pop(name, None), self._background.discard(t)))
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            ok = await asyncio.wait_for(asyncio.shield(task), wait)
        except asyncio.TimeoutError:
            logger.info("Synthesis not ready within the turn budget: <Say> this time, audio for the next.")
            return None
        return name if ok else None

    async def _synthesise(self, client: TtsClient, name: Text, text: Text) -> bool:
        try:
            await self.store.put(name, await client.synthesise(text))
            return True
        except TtsError as exc:
            logger.warning("TTS gave no audio (%s).", exc)
        except Exception as exc:  # the store (Redis down, disk full): the call goes on with <Say>
            logger.warning("Synthesised audio not stored (%s).", type(exc).__name__)
        return False

    # ------------------------------------------------------------------ serving
    def add_route(self, bp: Blueprint) -> None:
        """``GET <channel>/audio/<name>.wav``: Twilio fetches ``<Play>`` audio here (no signature:
        the names are the secret; an unknown or malformed name is 404)."""

        @bp.route("/audio/<file>", methods=["GET", "HEAD"])
        async def audio(request: Request, file: Text) -> HTTPResponse:
            return await self.serve(file)

    async def serve(self, file: Text) -> HTTPResponse:
        name = file[:-4] if file.endswith(".wav") else ""
        data = await self.store.get(name) if valid_name(name) else None
        if data is None:
            return response.text("Not found", status=404)
        return response.raw(data, content_type="audio/wav",
                            headers={"Cache-Control": f"public, max-age={AUDIO_CACHE_SECONDS}"})


def audio_base(action_base: Text) -> Text:
    """Where the channel serves audio, from its webhook URL (absolute when that is)."""
    return action_base.rsplit("/webhook", 1)[0] + "/audio/"


def audio_secret(sender_id_secret: Optional[Text]) -> Text:
    """The key of audio names: the conversation-id key (a secret the server has anyway),
    separated by a label; ``make voice-prompts`` must run with the server's SENDER_ID_SECRET."""
    from connectors.security import DEV_SENDER_ID_SECRET

    return "voice-audio:" + (sender_id_secret or DEV_SENDER_ID_SECRET)
