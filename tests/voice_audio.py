"""Test helpers for voice audio: a RIFF parser written independently of connectors.audio,
and a "listener" that reads back what the fake TTS server (tests/fake_openai.py) said."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Dict

from fake_openai import text_of_mulaw


@dataclass
class Wav:
    format_tag: int
    channels: int
    rate: int
    bits: int
    chunks: Dict[bytes, bytes]

    @property
    def data(self) -> bytes:
        return self.chunks[b"data"]

    @property
    def seconds(self) -> float:
        return len(self.data) / (self.rate * self.channels * self.bits / 8)

    def heard(self) -> str:
        """What a learner hears, as text (only for audio of the fake TTS server)."""
        assert (self.format_tag, self.rate, self.channels) == (7, 8000, 1)
        return text_of_mulaw(self.data, self.rate)


def parse_wav(data: bytes) -> Wav:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", data[:16]
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8, "RIFF size must match the file"
    chunks, offset = {}, 12
    while offset + 8 <= len(data):
        cid, size = data[offset:offset + 4], struct.unpack("<I", data[offset + 4:offset + 8])[0]
        chunks[cid] = data[offset + 8:offset + 8 + size]
        offset += 8 + size + (size & 1)
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", chunks[b"fmt "][:16])
    return Wav(tag, channels, rate, bits, chunks)


def pcm_wav(samples: bytes, rate: int, channels: int = 1, width: int = 2) -> bytes:
    """A PCM WAV around raw samples (for recordings in tests)."""
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(samples), b"WAVE", b"fmt ", 16, 1, channels, rate,
                       rate * channels * width, channels * width, width * 8, b"data", len(samples)) + samples


# ---------------------------------------------------------------------- a phone that listens
async def fetch_audio(client, url: str) -> bytes:
    """GET a ``<Play>`` URL as Twilio does: from the in-process app (ASGI) or the running server."""
    import httpx
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if client.app is not None:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url=f"{parsed.scheme}://{parsed.netloc}") as http:
            response = await http.get(parsed.path, timeout=60)
    else:
        async with httpx.AsyncClient(base_url=client.server_url, timeout=60) as http:
            response = await http.get(parsed.path)
    assert response.status_code == 200, (url, response.status_code)
    assert response.headers["content-type"] == "audio/wav"
    return response.content


def make_listening_phone(phone_class):
    """``tests.test_connectors_e2e.Phone`` that hears ``<Play>`` audio too (as text, read back
    from the fake TTS server's tones) and keeps every served file in ``played``."""
    from connector_fixtures import find, parse_twiml

    class ListeningPhone(phone_class):
        played: list

        async def _hear(self, root):
            heard = []
            for element in root.iter():
                if element.tag == "Say":
                    heard.append(element.text or "")
                elif element.tag == "Play":
                    wav = parse_wav(await fetch_audio(self.client, element.text))
                    self.played.append((element.text, wav))
                    heard.append(wav.heard())
            return heard

        async def _post(self, url, **extra):
            if not hasattr(self, "played"):
                self.played = []
            response = await self.client.post(url, self._params(**extra))
            assert response.status_code == 200, response.text
            self.root = parse_twiml(response.text)
            self.heard = await self._hear(self.root)
            while find(self.root, "Redirect") is not None and find(self.root, "Gather") is None \
                    and find(self.root, "Record") is None:
                response = await self.client.post(find(self.root, "Redirect").text, self._params())
                self.root = parse_twiml(response.text)
                self.heard = self.heard + await self._hear(self.root)
            self.hung_up = find(self.root, "Hangup") is not None
            return self.heard

    return ListeningPhone
