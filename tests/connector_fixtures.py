"""Test helpers for the Twilio connectors (imported by tests/test_connectors_*.py).

* ``TwilioSigner``/``TwilioClient``: requests built and signed exactly as Twilio does
  (``twilio.request_validator.RequestValidator.compute_signature`` over the public URL and
  the POST parameters), sent to an in-process Sanic app through ASGI or to a running server
  over HTTP.
* ``ScriptedAgent``: stands in for ``rasa.core.agent.Agent`` -- ``handle_message`` plays a
  small bilingual math tutor, ``tracker_store.retrieve`` exposes the slots the channels read
  (``language``, ``active_module``) and the active loop, as Rasa's tracker does.
* ``make_app``: mounts channels with Rasa's own ``rasa.core.channels.channel.register``.
* ``FakeTwilioMedia``: serves call recordings (and records their deletion) for the
  Kinyarwanda ``<Record>`` path.
"""
from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Text
from urllib.parse import parse_qsl, urlencode, urlparse
from xml.etree import ElementTree

import httpx
from sanic import Sanic
from twilio.request_validator import RequestValidator

from rasa.core.channels import channel as rasa_channel
from rasa.core.channels.channel import UserMessage

AUTH_TOKEN = "test-twilio-auth-token"
SENDER_SECRET = "test-sender-id-secret"
PUBLIC_BASE = "https://bakame.example.org"
LEARNER = "+250788123456"
CALL_SID = "CA" + "1" * 32
TWILIO_NUMBER = "+15005550006"

# As sanic-testing does: lets several test apps start in one process (Sanic re-applies
# its start-up "touch-ups" to shared classes on every start).
Sanic.test_mode = True
ACCOUNT_SID = "AC" + "2" * 32


# ---------------------------------------------------------------------- TwiML helpers
def parse_twiml(text: Text) -> ElementTree.Element:
    return ElementTree.fromstring(text.encode("utf-8") if isinstance(text, str) else text)


def said(root: ElementTree.Element) -> List[Text]:
    return [el.text or "" for el in root.iter("Say")]


def find(root: ElementTree.Element, tag: Text) -> Optional[ElementTree.Element]:
    return next(iter(root.iter(tag)), None)


def messages_of(root: ElementTree.Element) -> List[Text]:
    out = []
    for el in root.iter("Message"):
        body = el.find("Body")
        out.append((body.text if body is not None else el.text) or "")
    return out


def next_request(root: ElementTree.Element) -> Optional[Text]:
    """Where Twilio goes next: the Gather/Record action or the Redirect URL."""
    for el in root.iter():
        if el.tag in ("Gather", "Record") and el.get("action"):
            return el.get("action")
        if el.tag == "Redirect":
            return el.text
    return None


# ---------------------------------------------------------------------- signing
class TwilioSigner:
    def __init__(self, token: Text = AUTH_TOKEN) -> None:
        self.validator = RequestValidator(token)

    def sign(self, url: Text, params: Dict[Text, Text]) -> Text:
        return self.validator.compute_signature(url, params)


class TwilioClient:
    """Posts form requests to an app (ASGI) or server (HTTP), signed like Twilio."""

    def __init__(
        self,
        app: Optional[Sanic] = None,
        server_url: Optional[Text] = None,
        public_base: Text = PUBLIC_BASE,
        token: Text = AUTH_TOKEN,
    ) -> None:
        self.app = app
        self.server_url = server_url
        self.public_base = public_base.rstrip("/")
        self.signer = TwilioSigner(token)
        self._started = False

    def absolute(self, path_or_url: Text) -> Text:
        if path_or_url.startswith("http"):
            return path_or_url
        return self.public_base + path_or_url

    async def post(
        self,
        path: Text,
        params: Dict[Text, Text],
        *,
        sign: bool = True,
        signature: Optional[Text] = None,
        signed_url: Optional[Text] = None,
        headers: Optional[Dict[Text, Text]] = None,
        transport_base: Optional[Text] = None,
    ) -> httpx.Response:
        url = self.absolute(path)
        parsed = urlparse(url)
        local_path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        all_headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if sign:
            all_headers["X-Twilio-Signature"] = signature or self.signer.sign(signed_url or url, params)
        all_headers.update(headers or {})
        body = urlencode(params)
        if self.app is not None:
            if not self._started:
                await self.app._startup()
                self._started = True
            base = transport_base or f"{parsed.scheme}://{parsed.netloc}"
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=base) as client:
                return await client.post(local_path, content=body, headers=all_headers, timeout=60)
        async with httpx.AsyncClient(base_url=self.server_url, timeout=60) as client:
            return await client.post(local_path, content=body, headers=all_headers)


# ---------------------------------------------------------------------- fake Rasa
class FakeEvent:
    def __init__(self, text: Text) -> None:
        self.text = text


class BotUttered(FakeEvent):  # the channel looks events up by class name, as in Rasa
    pass


class FakeTracker:
    def __init__(self, slots: Dict[Text, Any], active_loop: Optional[Text], events: List[Any]) -> None:
        self._slots = dict(slots)
        self.active_loop_name = active_loop
        self.events = list(events)

    def get_slot(self, name: Text) -> Any:
        return self._slots.get(name)


class FakeTrackerStore:
    def __init__(self, agent: "ScriptedAgent") -> None:
        self.agent = agent
        self.retrieved: List[Text] = []

    async def retrieve(self, sender_id: Text) -> Optional[FakeTracker]:
        self.retrieved.append(sender_id)
        state = self.agent.state.get(sender_id)
        if state is None:
            return None
        return FakeTracker(
            {"language": state["language"], "active_module": state["module"]},
            state["loop"],
            [BotUttered(t) for t in state["said"]],
        )


WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "zeru": 0, "rimwe": 1, "kabiri": 2, "gatatu": 3, "kane": 4, "gatanu": 5, "gatandatu": 6,
    "karindwi": 7, "umunani": 8, "icyenda": 9, "icumi": 10,
}


def number_in(text: Text) -> Optional[int]:
    match = re.search(r"-?\d+", text or "")
    if match:
        return int(match.group())
    for word in re.findall(r"[a-z]+", (text or "").lower()):
        if word in WORDS:
            return WORDS[word]
    return None


class ScriptedAgent:
    """A tiny bilingual math tutor behind Rasa's ``Agent`` interface."""

    TEXTS = {
        "welcome": {
            None: "Muraho! Hello! I am BAKAME. Press 1 for math, 9 to change language.",
            "en": "Hello! Press 1 for math, 9 to change language.",
            "rw": "Muraho! Kanda 1 ku mibare, 9 guhindura ururimi.",
        },
        "language": {"en": "OK, we will speak English.", "rw": "Ni byiza, tuzavuga Ikinyarwanda."},
        "question": {"en": "What is {a} + {b}?", "rw": "{a} + {b} ni angahe?"},
        "correct": {"en": "Correct! Well done.", "rw": "Ni byo! Wabikoze neza."},
        "wrong": {"en": "Not quite, try again.", "rw": "Si byo, ongera ugerageze."},
        "help": {"en": "Say a number to answer.", "rw": "Vuga umubare usubize."},
        "bye": {"en": "Goodbye!", "rw": "Murabeho!"},
        "unknown": {"en": "Sorry?", "rw": "Mbabarira?"},
    }

    def __init__(self, delay: float = 0.0, problems: Optional[List[tuple]] = None) -> None:
        self.delay = delay
        self.state: Dict[Text, Dict[Text, Any]] = {}
        self.received: List[UserMessage] = []
        self.tracker_store = FakeTrackerStore(self)
        self.problems = list(problems or [(3, 4), (5, 2), (6, 3), (2, 2)])
        self.script: Optional[Callable[[UserMessage], List[Dict[Text, Any]]]] = None

    def _t(self, key: Text, lang: Optional[Text], **kw: Any) -> Text:
        texts = self.TEXTS[key]
        return (texts.get(lang) or texts.get("en") or texts[None]).format(**kw)

    async def handle_message(self, message: UserMessage) -> None:
        self.received.append(message)
        if self.delay:
            await asyncio.sleep(self.delay)
        state = self.state.setdefault(
            message.sender_id, {"language": None, "module": None, "loop": None, "problem": None, "said": []}
        )
        replies = self.script(message) if self.script else self._reply(message, state)
        for reply in replies:
            if reply.get("text"):
                state["said"].append(reply["text"])
            await message.output_channel.send_response(message.sender_id, dict(reply))

    def _new_problem(self, state: Dict[Text, Any]) -> Text:
        a, b = self.problems[len(state.get("solved", [])) % len(self.problems)]
        state["problem"] = (a, b)
        return self._t("question", state["language"], a=a, b=b)

    def _reply(self, message: UserMessage, state: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        text = (message.text or "").strip()
        lang = state["language"]
        if text == "/session_start":
            state.update(module=None, loop=None)
            return [{"text": self._t("welcome", lang) if lang else self.TEXTS["welcome"][None]}]
        if text.startswith("/set_language"):
            state["language"] = json.loads(text[len("/set_language"):])["language"]
            return [{"text": self._t("language", state["language"])}]
        if text in ("/stop", "/goodbye") or text.lower() in ("bye", "goodbye", "murabeho"):
            return [{"custom": {"end_call": True, "text": self._t("bye", lang)}}]
        if text == "/help":
            return [{"text": self._t("help", lang)}]
        if text == "/start_math" or "math" in text.lower() or "imibare" in text.lower():
            state.update(module="math", loop="tutor_form")
            return [{"text": self._new_problem(state)}]
        if text == "/repeat" and state["problem"]:
            a, b = state["problem"]
            return [{"text": self._t("question", lang, a=a, b=b)}]
        if state["loop"] == "tutor_form" and state["problem"]:
            answer = number_in(text)
            a, b = state["problem"]
            if answer == a + b:
                state.setdefault("solved", []).append((a, b))
                return [{"text": self._t("correct", lang)}, {"text": self._new_problem(state)}]
            return [{"text": self._t("wrong", lang)}]
        return [{"text": self._t("unknown", lang)}]


def make_app(channels: List[Any], agent: Any) -> Sanic:
    """An app with ``channels`` mounted under /webhooks/ the way ``rasa run`` does it."""
    app = Sanic(f"bakame_test_{uuid.uuid4().hex[:10]}")
    app.ctx.agent = agent
    rasa_channel.register(channels, app, "/webhooks/")
    return app


# ---------------------------------------------------------------------- fake Twilio media
class FakeTwilioMedia:
    """Serves ``/2010-04-01/Accounts/<sid>/Recordings/<sid>.mp3`` and records DELETEs."""

    def __init__(self, audio: bytes = b"ID3fake-mp3-audio") -> None:
        self.audio = audio
        self.downloads: List[Dict[Text, Any]] = []
        self.deleted: List[Text] = []
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def base(self) -> Text:
        return f"http://127.0.0.1:{self._server.server_address[1]}"  # type: ignore[union-attr]

    def recording_url(self, recording_sid: Text = "RE" + "3" * 32) -> Text:
        return f"{self.base}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"

    def start(self) -> "FakeTwilioMedia":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: Text) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                fake.downloads.append({"path": self.path, "auth": self.headers.get("Authorization")})
                if "/Recordings/" in self.path and self.path.endswith((".mp3", ".wav")):
                    self._send(200, fake.audio, "audio/mpeg")
                else:
                    self._send(404, b"{}", "application/json")

            def do_DELETE(self) -> None:
                fake.deleted.append(self.path)
                self._send(204, b"", "application/json")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


# ---------------------------------------------------------------------- running server
class RunningServer:
    """A Sanic app served over real TCP on 127.0.0.1 (for end-to-end tests)."""

    def __init__(self, app: Sanic) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._server = None
        self._task = None

    @property
    def url(self) -> Text:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> "RunningServer":
        self._server = await self.app.create_server(sock=self.sock, return_asyncio_server=True, access_log=False)
        await self._server.startup()
        await self._server.before_start()
        await self._server.after_start()
        self._task = asyncio.get_running_loop().create_task(self._server.serve_forever())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._server.before_stop()
        self._server.close()
        await self._server.wait_closed()
        await self._server.after_stop()
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass


def form_of(url: Text) -> Dict[Text, Text]:
    return dict(parse_qsl(urlparse(url).query))


def call_params(**extra: Text) -> Dict[Text, Text]:
    """The parameters Twilio posts for an inbound call (plus ``extra``)."""
    params = {
        "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": CALL_SID,
        "CallStatus": "in-progress", "Called": TWILIO_NUMBER, "Caller": LEARNER,
        "Direction": "inbound", "From": LEARNER, "FromCountry": "RW", "FromCity": "KIGALI",
        "To": TWILIO_NUMBER, "ToCountry": "US",
        "CallerZip": "", "FromZip": "", "FromState": "",  # Twilio signs blank values too
    }
    params.update(extra)
    return params


def sms_params(body: Text, sid: Optional[Text] = None, **extra: Text) -> Dict[Text, Text]:
    """The parameters Twilio posts for an inbound SMS."""
    sid = sid or "SM" + uuid.uuid4().hex
    params = {
        "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "Body": body, "From": LEARNER,
        "FromCountry": "RW", "MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid,
        "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received", "To": TWILIO_NUMBER,
        "ToCountry": "US", "FromZip": "", "FromCity": "",
    }
    params.update(extra)
    return params
