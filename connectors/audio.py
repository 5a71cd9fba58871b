"""Audio in telephony format: WAV, 8 kHz, mono, G.711 mu-law (format tag 7).

Twilio's ``<Play>`` accepts many formats, but plays telephony audio as is: converting once,
when the audio is made, keeps every call free of transcoding and every file small (8 KB a
second). Input: a PCM WAV (8/16/24/32-bit, any rate, mono or stereo) or a mu-law WAV, as a
TTS endpoint (``response_format="wav"``) or a recording folder gives them.

Conversion uses the standard library (Python 3.10): ``wave`` reads PCM, ``audioop`` mixes to
mono, resamples and encodes mu-law. The mu-law header is written here because ``wave`` only
writes PCM (format tag 1).
"""
from __future__ import annotations

import audioop
import io
import struct
import wave
from dataclasses import dataclass
from typing import Tuple

TELEPHONY_RATE = 8000
FORMAT_PCM, FORMAT_MULAW = 1, 7


class AudioError(ValueError):
    """Not audio this module can read (garbage, truncated, an unknown format)."""


@dataclass(frozen=True)
class WavInfo:
    format_tag: int  # 1 PCM, 7 mu-law
    channels: int
    sample_rate: int
    bits: int
    data_bytes: int

    @property
    def duration(self) -> float:
        frame = max(1, self.channels * self.bits // 8)
        return self.data_bytes / frame / self.sample_rate if self.sample_rate else 0.0

    @property
    def is_telephony(self) -> bool:
        return (self.format_tag, self.channels, self.sample_rate, self.bits) == (FORMAT_MULAW, 1, TELEPHONY_RATE, 8)


def _chunks(data: bytes):
    """(chunk id, offset of its body, body size) of a RIFF/WAVE file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a RIFF/WAVE file")
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset:offset + 4], struct.unpack("<I", data[offset + 4:offset + 8])[0]
        body = offset + 8
        size = min(size, len(data) - body)  # streamed WAVs announce 0xFFFFFFFF: take what is there
        yield chunk_id, body, size
        offset = body + size + (size & 1)


def wav_info(data: bytes) -> WavInfo:
    """The header of a WAV file (raises :class:`AudioError` for anything else)."""
    fmt, data_size = None, None
    for chunk_id, body, size in _chunks(data):
        if chunk_id == b"fmt " and size >= 16:
            fmt = struct.unpack("<HHIIHH", data[body:body + 16])
        elif chunk_id == b"data":
            data_size = size
            break
    if fmt is None or data_size is None:
        raise AudioError("WAV file without fmt or data chunk")
    tag, channels, rate, _, _, bits = fmt
    if tag == 0xFFFE and len(data) > 0:  # WAVE_FORMAT_EXTENSIBLE: the sub-format is PCM for TTS output
        tag = FORMAT_PCM
    return WavInfo(tag, channels, rate, bits, data_size)


def _data(data: bytes) -> bytes:
    for chunk_id, body, size in _chunks(data):
        if chunk_id == b"data":
            return data[body:body + size]
    raise AudioError("WAV file without data chunk")


def _read_linear(data: bytes) -> Tuple[bytes, int, int, int]:
    """Linear PCM frames, sample width, channels and rate of a PCM or mu-law WAV."""
    info = wav_info(data)
    if info.channels < 1 or info.sample_rate < 1:
        raise AudioError("WAV file without channels or sample rate")
    if info.format_tag == FORMAT_MULAW:
        return audioop.ulaw2lin(_data(data), 2), 2, info.channels, info.sample_rate
    if info.format_tag != FORMAT_PCM:
        raise AudioError(f"unsupported WAV format tag {info.format_tag}")
    try:
        with wave.open(io.BytesIO(data)) as reader:
            frames = reader.readframes(reader.getnframes())
            width, channels, rate = reader.getsampwidth(), reader.getnchannels(), reader.getframerate()
    except (wave.Error, EOFError, struct.error) as exc:
        raise AudioError(f"unreadable PCM WAV ({exc})") from exc
    if width == 1:  # 8-bit WAV is unsigned
        frames, width = audioop.lin2lin(audioop.bias(frames, 1, -128), 1, 2), 2
    return frames, width, channels, rate


def mulaw_wav(ulaw: bytes, rate: int = TELEPHONY_RATE) -> bytes:
    """A mono mu-law WAV around ``ulaw`` samples (fmt with cbSize, fact, data)."""
    fmt = struct.pack("<HHIIHHH", FORMAT_MULAW, 1, rate, rate, 1, 8, 0)
    fact = struct.pack("<I", len(ulaw))
    pad = b"\x00" if len(ulaw) & 1 else b""
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<I", 4) + fact
            + b"data" + struct.pack("<I", len(ulaw)) + ulaw + pad)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def to_telephony(data: bytes) -> bytes:
    """Any readable WAV as an 8 kHz mono mu-law WAV (unchanged if it already is one)."""
    info = wav_info(data)
    if info.is_telephony:
        return data
    frames, width, channels, rate = _read_linear(data)
    if not frames:
        raise AudioError("WAV file without samples")
    if channels == 2:
        frames = audioop.tomono(frames, width, 0.5, 0.5)
    elif channels != 1:
        raise AudioError(f"{channels} channels")
    if rate != TELEPHONY_RATE:
        frames, _ = audioop.ratecv(frames, width, 1, rate, TELEPHONY_RATE, None)
    return mulaw_wav(audioop.lin2ulaw(frames, width))
