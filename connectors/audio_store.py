"""Where telephony audio waits to be played: one store every Rasa process sees.

A ``<Play>`` URL may be fetched by Twilio from any Rasa process, so the audio one process
made must be readable by all of them:

* ``REDIS_URL`` set (production: several processes, possibly on several hosts, already
  share their call state there): the audio is a Redis value ``bakame:voice:audio:<name>``
  with a TTL (``VOICE_AUDIO_TTL``, 30 days; ``make voice-prompts`` renders again) and a size
  cap per file (``VOICE_AUDIO_MAX_BYTES``);
* otherwise a directory (``VOICE_AUDIO_DIR``, ``voice/cache``): every process of one machine
  sees it, and it outlives restarts, so ``make voice-prompts`` works without Redis too.

Names are 32 hex characters (a keyed hash, ``connectors.speech``): nothing else is stored.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Optional, Set, Text

logger = logging.getLogger(__name__)

NAME = re.compile(r"^[0-9a-f]{32}$")


def valid_name(name: Text) -> bool:
    return bool(NAME.match(name or ""))


class AudioStore:
    """Telephony WAV files by name."""

    async def get(self, name: Text) -> Optional[bytes]:
        raise NotImplementedError

    async def put(self, name: Text, audio: bytes) -> None:
        raise NotImplementedError

    async def has(self, name: Text) -> bool:
        return (await self.get(name)) is not None


class DirectoryAudioStore(AudioStore):
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._seen: Set[Text] = set()  # names known to exist (files are never removed here)

    def _path(self, name: Text) -> Path:
        if not valid_name(name):
            raise ValueError("invalid audio name")
        return self.folder / name[:2] / f"{name}.wav"

    async def get(self, name: Text) -> Optional[bytes]:
        try:
            return self._path(name).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    async def has(self, name: Text) -> bool:
        if name in self._seen:
            return True
        found = valid_name(name) and self._path(name).is_file()
        if found:
            self._seen.add(name)
        return found

    async def put(self, name: Text, audio: bytes) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        # write then rename: another process never reads half a file
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(audio)
        os.replace(tmp, path)
        self._seen.add(name)


class RedisAudioStore(AudioStore):
    def __init__(self, client: Any, ttl: float, max_bytes: int, prefix: Text = "bakame:voice:audio:") -> None:
        self.client, self.ttl, self.max_bytes, self.prefix = client, ttl, max_bytes, prefix

    async def get(self, name: Text) -> Optional[bytes]:
        if not valid_name(name):
            return None
        return await self.client.get(self.prefix + name)

    async def has(self, name: Text) -> bool:
        return valid_name(name) and bool(await self.client.exists(self.prefix + name))

    async def put(self, name: Text, audio: bytes) -> None:
        if len(audio) > self.max_bytes:
            logger.warning("Synthesised audio of %d bytes is over VOICE_AUDIO_MAX_BYTES; not stored.", len(audio))
            return
        await self.client.set(self.prefix + name, audio, px=max(1, int(self.ttl * 1000)))


def audio_store(redis_url: Optional[Text], folder: Path, ttl: float, max_bytes: int) -> AudioStore:
    """Redis when ``redis_url`` is set, else the directory ``folder``."""
    if redis_url:
        import redis.asyncio as redis_asyncio

        return RedisAudioStore(redis_asyncio.from_url(redis_url), ttl, max_bytes)
    return DirectoryAudioStore(folder)
