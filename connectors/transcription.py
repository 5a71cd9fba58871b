"""Kinyarwanda speech path: Twilio ``<Record>`` + an OpenAI-compatible transcription API.

Twilio's ``<Gather>`` recogniser may not support Kinyarwanda, so in ``record`` mode the
voice channel records the learner's turn and this module

1. downloads the recording from Twilio (``RecordingUrl`` + ``.mp3``/``.wav``, HTTP basic
   auth with the account SID and auth token; only from allowed hosts, api.twilio.com by
   default, so a forged URL cannot make the server fetch arbitrary addresses),
2. sends it to ``POST {base_url}/audio/transcriptions`` (OpenAI-compatible: OpenAI,
   a self-hosted Whisper server, ...) through ``openai.AsyncOpenAI().audio.transcriptions``
   -- or, if the ``openai`` package cannot be imported, the same multipart request with
   aiohttp,
3. deletes the recording at Twilio afterwards (learners are children: their voices are not
   kept), unless ``STT_DELETE_RECORDINGS=false``.

Environment: ``STT_BASE_URL`` (falls back to ``LLM_BASE_URL``), ``STT_API_KEY`` (falls back
to ``LLM_API_KEY``/``OPENAI_API_KEY``), ``STT_MODEL`` (default ``whisper-1``),
``STT_TIMEOUT`` (seconds, default 8), ``STT_SEND_LANGUAGE`` (default true: pass ``rw``/``en``
when the learner's language is known), ``TWILIO_RECORDING_HOSTS`` (comma separated).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Iterable, Optional, Text, Tuple
from urllib.parse import urlparse

from core import language as languages
from core.config import as_bool, as_float, env

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "whisper-1"
DEFAULT_RECORDING_HOSTS = ("api.twilio.com",)
MIME = {"mp3": "audio/mpeg", "wav": "audio/wav"}


class TranscriptionError(Exception):
    """The turn could not be transcribed (download, API or empty result)."""


def _openai_client_class() -> Any:
    try:
        from openai import AsyncOpenAI  # type: ignore

        return AsyncOpenAI
    except Exception as exc:  # ImportError, or a broken install (incompatible deps)
        logger.debug("openai package unusable (%s); using plain HTTP for transcription.", exc)
        return None


class Transcriber:
    def __init__(
        self,
        base_url: Optional[Text],
        api_key: Optional[Text] = None,
        model: Text = DEFAULT_MODEL,
        timeout: float = 8.0,
        send_language: bool = True,
        recording_hosts: Iterable[Text] = DEFAULT_RECORDING_HOSTS,
        recording_format: Text = "mp3",
        delete_recordings: bool = True,
        client: Text = "auto",
    ) -> None:
        self.base_url = (base_url or "").rstrip("/") or None
        self.api_key = api_key or "not-needed"
        self.model = model or DEFAULT_MODEL
        self.timeout = float(timeout)
        self.send_language = send_language
        self.recording_hosts = {h.strip().lower() for h in recording_hosts if h and h.strip()}
        self.recording_format = recording_format if recording_format in MIME else "mp3"
        self.delete_recordings = delete_recordings
        self.client_kind = client
        self._background: set = set()

    @classmethod
    def from_env(cls, **overrides: Any) -> "Transcriber":
        hosts = env("TWILIO_RECORDING_HOSTS")
        params = dict(
            base_url=env("STT_BASE_URL", "LLM_BASE_URL"),
            api_key=env("STT_API_KEY", "LLM_API_KEY", "OPENAI_API_KEY"),
            model=env("STT_MODEL", default=DEFAULT_MODEL),
            timeout=as_float(env("STT_TIMEOUT"), 8.0),
            send_language=as_bool(env("STT_SEND_LANGUAGE"), True),
            recording_hosts=hosts.split(",") if hosts else DEFAULT_RECORDING_HOSTS,
            delete_recordings=as_bool(env("STT_DELETE_RECORDINGS"), True),
            client=env("STT_CLIENT", default="auto"),
        )
        params.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**params)

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)

    # ------------------------------------------------------------------ recording
    def _check_url(self, url: Text) -> Text:
        parsed = urlparse(url or "")
        host = (parsed.hostname or "").lower()
        if parsed.scheme not in ("https", "http") or host not in self.recording_hosts:
            raise TranscriptionError("recording URL host is not allowed")
        if parsed.scheme == "http" and host not in ("127.0.0.1", "localhost", "::1"):
            raise TranscriptionError("recording URL must use https")
        return url

    @staticmethod
    def _auth(account_sid: Optional[Text], auth_token: Optional[Text]) -> Any:
        import aiohttp

        if account_sid and auth_token:
            return aiohttp.BasicAuth(account_sid, auth_token)
        return None

    async def fetch_recording(
        self, recording_url: Text, account_sid: Optional[Text] = None, auth_token: Optional[Text] = None
    ) -> Tuple[bytes, Text]:
        """The audio bytes and file name of a Twilio recording (retries while it is not ready)."""
        import aiohttp

        url = self._check_url(recording_url)
        base = url.rsplit(".", 1)[0] if url.rsplit("/", 1)[-1].count(".") else url
        media_url = f"{base}.{self.recording_format}"
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for attempt in range(4):
                async with session.get(media_url, auth=self._auth(account_sid, auth_token)) as resp:
                    if resp.status == 200:
                        data = await resp.read()
                        if not data:
                            raise TranscriptionError("empty recording")
                        return data, f"turn.{self.recording_format}"
                    if resp.status != 404 or attempt == 3:
                        raise TranscriptionError(f"recording download failed ({resp.status})")
                await asyncio.sleep(0.25 * (attempt + 1))  # not yet available at Twilio
        raise TranscriptionError("recording download failed")  # pragma: no cover

    async def _delete(self, recording_url: Text, account_sid: Optional[Text], auth_token: Optional[Text]) -> None:
        import aiohttp

        try:
            url = self._check_url(recording_url)
            base = url.rsplit(".", 1)[0] if url.rsplit("/", 1)[-1].count(".") else url
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                async with session.delete(f"{base}.json", auth=self._auth(account_sid, auth_token)) as resp:
                    if resp.status not in (200, 204, 404):
                        logger.warning("Could not delete a call recording (HTTP %s).", resp.status)
        except Exception as exc:
            logger.warning("Could not delete a call recording (%s).", type(exc).__name__)

    def delete_recording_later(
        self, recording_url: Optional[Text], account_sid: Optional[Text], auth_token: Optional[Text]
    ) -> None:
        """Delete the recording at Twilio in the background (never delays the turn)."""
        if not (self.delete_recordings and recording_url):
            return
        task = asyncio.get_running_loop().create_task(self._delete(recording_url, account_sid, auth_token))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ transcription
    async def transcribe(self, audio: bytes, filename: Text = "turn.mp3", language: Optional[Text] = None) -> Text:
        if not self.enabled:
            raise TranscriptionError("no transcription endpoint configured")
        lang = language if (self.send_language and languages.is_supported(language)) else None
        mime = MIME.get(filename.rsplit(".", 1)[-1], "application/octet-stream")
        client_class = _openai_client_class() if self.client_kind in ("auto", "openai") else None
        try:
            if client_class is not None:
                text = await self._via_openai(client_class, audio, filename, mime, lang)
            elif self.client_kind == "openai":
                raise TranscriptionError("the openai package is not usable")
            else:
                text = await self._via_http(audio, filename, mime, lang)
        except TranscriptionError:
            raise
        except Exception as exc:
            raise TranscriptionError(f"transcription failed ({type(exc).__name__})") from exc
        text = (text or "").strip()
        if not text:
            raise TranscriptionError("empty transcription")
        return text

    async def _via_openai(self, client_class: Any, audio: bytes, filename: Text, mime: Text, lang: Optional[Text]) -> Text:
        client = client_class(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=0)
        try:
            kwargs = {"model": self.model, "file": (filename, audio, mime)}
            if lang:
                kwargs["language"] = lang
            result = await client.audio.transcriptions.create(**kwargs)
        finally:
            close = getattr(client, "close", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # pragma: no cover
                    pass
        return result if isinstance(result, str) else getattr(result, "text", "")

    async def _via_http(self, audio: bytes, filename: Text, mime: Text, lang: Optional[Text]) -> Text:
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("model", self.model)
        if lang:
            form.add_field("language", lang)
        form.add_field("response_format", "json")
        form.add_field("file", audio, filename=filename, content_type=mime)
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
            async with session.post(f"{self.base_url}/audio/transcriptions", data=form, headers=headers) as resp:
                if resp.status != 200:
                    raise TranscriptionError(f"transcription API answered HTTP {resp.status}")
                try:
                    payload = await resp.json(content_type=None)
                except Exception as exc:
                    raise TranscriptionError("transcription API answered no JSON") from exc
        if not isinstance(payload, dict):
            raise TranscriptionError("unexpected transcription response")
        return str(payload.get("text") or "")

    async def transcribe_recording(
        self,
        recording_url: Text,
        language: Optional[Text] = None,
        account_sid: Optional[Text] = None,
        auth_token: Optional[Text] = None,
    ) -> Tuple[Text, float]:
        """Download, transcribe and (in the background) delete one turn's recording."""
        started = time.perf_counter()
        try:
            audio, filename = await self.fetch_recording(recording_url, account_sid, auth_token)
            text = await self.transcribe(audio, filename, language)
        finally:
            self.delete_recording_later(recording_url, account_sid, auth_token)
        return text, time.perf_counter() - started
