"""A local fake OpenAI-compatible server for tests and benchmarks (stdlib only).

Endpoints
    POST /v1/chat/completions      chat reply (``reply``)
    POST /v1/audio/transcriptions  multipart upload -> ``{"text": transcript}``
                                   (``response_format=text`` -> plain text)
    POST /v1/audio/speech          JSON ``{"input": ...}`` -> a real WAV (24 kHz, 16-bit, mono)
                                   whose length grows with the text: one tone per character
                                   (:func:`speech_wav`), so :func:`text_of_audio` can read the
                                   text back from the audio a phone is played
    GET  /v1/models, GET /health   liveness

Modes (``fake.configure(mode=...)``), applied to all POST endpoints:
    ok            200 with ``reply`` / ``transcript``
    slow          like ok after ``delay`` seconds (default 10 s in slow mode)
    http_error    status ``status`` (default 500) with an OpenAI-style error body
    garbage       200, ``Content-Type: application/json``, body not JSON
                  (speech: 200, ``audio/wav``, bytes that are no audio)
    no_choices    200, valid JSON without ``choices`` (transcription: without ``text``)
    refusal       chat: ``message.refusal`` set and ``content`` null
    refusal_text  chat: content "I'm sorry, but I can't help with that."
    content_filter chat: ``finish_reason: "content_filter"``, content null

``delay`` > 0 also delays the ok mode. While delaying, the handler watches the
socket; when the client gives up and closes it, the request is marked
``client_disconnected`` (so tests can assert an abandoned call).

Every request is recorded in ``fake.requests`` (path, headers, parsed JSON or
multipart fields, raw body text) -- assert nothing personal was sent.

Standalone (benchmarks):
    python tests/fake_openai.py --port 8099 --delay 1.5 [--mode ok] [--reply TEXT]
"""
from __future__ import annotations

import argparse
import audioop
import email.parser
import email.policy
import json
import math
import select
import struct
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional

DEFAULT_REPLY = "Well done! 3 + 4 = 7 because you count 4 more after 3."
DEFAULT_TRANSCRIPT = "Muraho, ndashaka kwiga imibare."
REFUSAL_TEXT = "I'm sorry, but I can't help with that."
MODES = (
    "ok",
    "slow",
    "http_error",
    "garbage",
    "no_choices",
    "refusal",
    "refusal_text",
    "content_filter",
)
_ALIASES = {"http500": "http_error", "error": "http_error", "500": "http_error"}


class FakeOpenAI:
    """Start with :meth:`start` (or use as a context manager); ``url`` is the
    ``base_url`` for the OpenAI client (ends with ``/v1``)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        mode: str = "ok",
        reply: str = DEFAULT_REPLY,
        delay: float = 0.0,
        status: int = 500,
        transcript: str = DEFAULT_TRANSCRIPT,
        max_records: Optional[int] = None,
    ) -> None:
        self.host = host
        self.max_records = max_records  # keep only the newest N requests (benchmarks)
        self.port = port
        self.mode = "ok"
        self.reply = reply
        self.delay = 0.0
        self.status = status
        self.transcript = transcript
        self.requests: List[Dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.configure(mode=mode, delay=delay)

    # ----------------------------------------------------------------- control
    def configure(
        self,
        mode: Optional[str] = None,
        reply: Optional[str] = None,
        delay: Optional[float] = None,
        status: Optional[int] = None,
        transcript: Optional[str] = None,
    ) -> "FakeOpenAI":
        if mode is not None:
            mode = _ALIASES.get(mode, mode)
            if mode not in MODES:
                raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
            self.mode = mode
            if mode == "slow" and delay is None and self.delay <= 0:
                delay = 10.0
        if reply is not None:
            self.reply = reply
        if delay is not None:
            self.delay = float(delay)
        if status is not None:
            self.status = int(status)
        if transcript is not None:
            self.transcript = transcript
        return self

    def reset(self) -> "FakeOpenAI":
        """Back to ok mode with defaults and an empty request log."""
        with self._lock:
            self.requests.clear()
        self.mode, self.reply, self.delay = "ok", DEFAULT_REPLY, 0.0
        self.status, self.transcript = 500, DEFAULT_TRANSCRIPT
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def chat_requests(self) -> List[Dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    @property
    def speech_requests(self) -> List[Dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/audio/speech")]

    @property
    def transcription_requests(self) -> List[Dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/audio/transcriptions")]

    def all_text(self) -> str:
        """Everything clients sent (bodies), for "was X ever sent?" assertions."""
        with self._lock:
            return "\n".join(r["body_text"] for r in self.requests)

    def wait_for_disconnect(self, index: int = -1, timeout: float = 5.0) -> bool:
        """True once the client closed the connection of request ``index``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.requests and self.requests[index]["client_disconnected"].is_set():
                    return True
            time.sleep(0.02)
        return False

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> "FakeOpenAI":
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._stopping.clear()
        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes delayed handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ----------------------------------------------------------------- internals
    def _record(self, entry: Dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)
            if self.max_records and len(self.requests) > self.max_records:
                del self.requests[: len(self.requests) - self.max_records]


def _client_closed(sock: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # ---------------------------------------------------------------- helpers
    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else (
            body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")
        )
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _wait(self, entry: Dict[str, Any]) -> bool:
        """Sleep ``delay`` seconds; False if the client left or the server stops."""
        fake = self.server_fake
        delay = fake.delay
        if delay <= 0:
            return True
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            if fake._stopping.wait(0.02):
                return False
            if _client_closed(self.connection):
                entry["client_disconnected"].set()
                return False
        return True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # ---------------------------------------------------------------- routes
    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/health", "/v1/health"):
            self._send(200, {"status": "ok"})
        elif self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [
                {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}
            ]})
        else:
            self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        fake = self.server_fake
        body = self._read_body()
        path = self.path.split("?")[0].rstrip("/")
        entry: Dict[str, Any] = {
            "path": path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "json": None,
            "fields": None,
            "body_text": body.decode("utf-8", "replace"),
            "time": time.time(),
            "client_disconnected": threading.Event(),
        }
        if path.endswith("/chat/completions"):
            try:
                entry["json"] = json.loads(body or b"null")
            except ValueError:
                pass
            fake._record(entry)
            self._chat(entry)
        elif path.endswith("/audio/speech"):
            try:
                entry["json"] = json.loads(body or b"null")
            except ValueError:
                pass
            fake._record(entry)
            self._speech(entry)
        elif path.endswith("/audio/transcriptions"):
            entry["fields"] = _parse_multipart(self.headers.get("Content-Type", ""), body)
            entry["body_text"] = json.dumps(
                {k: v for k, v in entry["fields"].items() if k != "file"}, default=str
            )
            fake._record(entry)
            self._transcribe(entry)
        else:
            fake._record(entry)
            self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def _common_failure(self) -> bool:
        """Handle the endpoint-independent modes; True if a response was sent."""
        fake = self.server_fake
        if fake.mode == "http_error":
            self._send(fake.status, {"error": {
                "message": "fake server error", "type": "server_error",
                "param": None, "code": None,
            }})
            return True
        if fake.mode == "garbage":
            self._send(200, b"<html>this is not json{{", "application/json")
            return True
        return False

    def _chat(self, entry: Dict[str, Any]) -> None:
        fake = self.server_fake
        if not self._wait(entry):
            return
        if self._common_failure():
            return
        request = entry["json"] if isinstance(entry["json"], dict) else {}
        model = request.get("model", "fake-model")
        if fake.mode == "no_choices":
            self._send(200, {"id": "x", "object": "chat.completion", "model": model})
            return
        content: Optional[str] = fake.reply
        refusal = None
        finish = "stop"
        if fake.mode == "refusal":
            content, refusal = None, REFUSAL_TEXT
        elif fake.mode == "refusal_text":
            content = REFUSAL_TEXT
        elif fake.mode == "content_filter":
            content, finish = None, "content_filter"
        self._send(200, {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish,
                "logprobs": None,
            }],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        })

    def _speech(self, entry: Dict[str, Any]) -> None:
        fake = self.server_fake
        if not self._wait(entry):
            return
        if fake.mode == "garbage":
            self._send(200, b"RIFF\x10\x00\x00\x00WAVEthis is not audio at all", "audio/wav")
            return
        if self._common_failure():
            return
        request = entry["json"] if isinstance(entry["json"], dict) else {}
        if not request.get("input") or request.get("response_format", "mp3") not in ("wav", "pcm"):
            self._send(400, {"error": {"message": "input and response_format wav|pcm required",
                                       "type": "invalid_request_error"}})
            return
        audio = speech_wav(str(request["input"]))
        if request["response_format"] == "pcm":
            audio = audio[44:]
        self._send(200, audio, "audio/wav")

    def _transcribe(self, entry: Dict[str, Any]) -> None:
        fake = self.server_fake
        if not self._wait(entry):
            return
        if self._common_failure():
            return
        if fake.mode == "no_choices":
            self._send(200, {"task": "transcribe"})
            return
        fields = entry["fields"] or {}
        fmt = str(fields.get("response_format") or "json")
        if fmt in ("text", "srt", "vtt"):
            self._send(200, fake.transcript + "\n", "text/plain; charset=utf-8")
        elif fmt == "verbose_json":
            self._send(200, {"task": "transcribe", "language": fields.get("language") or "rw",
                             "duration": 1.0, "text": fake.transcript, "segments": []})
        else:
            self._send(200, {"text": fake.transcript})


# ----------------------------------------------------------------- speech audio
SPEECH_RATE = 24000
TONE_SECONDS = 0.06  # one character: about the pace of speech (16 characters a second)
BASE_HZ, STEP_HZ = 300.0, 30.0  # printable ASCII 32..126 -> 300..3120 Hz, under telephony's 4 kHz


def _char_code(char: str) -> int:
    code = ord(char)
    return code - 32 if 32 <= code <= 126 else ord("?") - 32


def speech_wav(text: str, rate: int = SPEECH_RATE) -> bytes:
    """A 16-bit mono PCM WAV: one tone of ``TONE_SECONDS`` per character of ``text``."""
    per_char = int(rate * TONE_SECONDS)
    samples = bytearray()
    for char in text:
        freq = BASE_HZ + STEP_HZ * _char_code(char)
        for i in range(per_char):
            envelope = min(1.0, i / 40, (per_char - i) / 40)  # no clicks between tones
            samples += struct.pack("<h", int(12000 * envelope * math.sin(2 * math.pi * freq * i / rate)))
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(samples), b"WAVE", b"fmt ", 16, 1, 1, rate,
                         rate * 2, 2, 16, b"data", len(samples))
    return header + bytes(samples)


def text_of_audio(linear: bytes, rate: int) -> str:
    """The text :func:`speech_wav` put into audio, read back from 16-bit mono samples at
    ``rate`` (e.g. the decoded 8 kHz mu-law a phone is played)."""
    import numpy as np

    samples = np.frombuffer(linear, dtype="<i2").astype(float)
    per_char = rate * TONE_SECONDS
    out = []
    for n in range(int(round(len(samples) / per_char))):
        start, end = int(n * per_char + per_char / 4), int((n + 1) * per_char - per_char / 4)
        chunk = samples[start:end]
        if len(chunk) < 8:
            break
        spectrum = np.abs(np.fft.rfft(chunk * np.hanning(len(chunk)), n=rate))
        freq = float(np.argmax(spectrum))  # n=rate: 1 Hz bins
        out.append(chr(32 + int(round((freq - BASE_HZ) / STEP_HZ))))
    return "".join(out)


def text_of_mulaw(ulaw: bytes, rate: int = 8000) -> str:
    return text_of_audio(audioop.ulaw2lin(ulaw, 2), rate)


def _parse_multipart(content_type: str, body: bytes) -> Dict[str, Any]:
    """Form fields as str; the uploaded file as {filename, content_type, size, data}."""
    fields: Dict[str, Any] = {}
    if "multipart/form-data" not in content_type.lower():
        return fields
    raw = b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            fields[name] = {
                "filename": filename,
                "content_type": part.get_content_type(),
                "size": len(payload),
                "data": payload,
            }
        else:
            fields[name] = payload.decode(part.get_content_charset() or "utf-8", "replace")
    return fields


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--mode", default="ok", choices=sorted(set(MODES) | set(_ALIASES)))
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--status", type=int, default=500, help="status for http_error mode")
    parser.add_argument("--reply", default=DEFAULT_REPLY)
    parser.add_argument("--transcript", default=DEFAULT_TRANSCRIPT)
    args = parser.parse_args(argv)
    fake = FakeOpenAI(host=args.host, port=args.port, mode=args.mode, reply=args.reply,
                      delay=args.delay, status=args.status, transcript=args.transcript,
                      max_records=1000)
    fake.start()
    print(f"fake OpenAI listening on {fake.url} (mode={fake.mode}, delay={fake.delay}s)",
          flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
