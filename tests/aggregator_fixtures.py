"""Test helpers for the aggregator's channels (USSD and two-way SMS, Africa's Talking protocol).

* ``UssdPhone``: a basic phone on a USSD code -- posts exactly what the aggregator posts
  (``sessionId``, ``serviceCode``, ``phoneNumber``, ``networkCode``, ``text`` = every entry of
  the session joined by ``*``) to an in-process app (ASGI) or a running server (HTTP).
* ``at_sms_form``: the form of an incoming SMS callback (``from``, ``to``, ``text``, ``date``,
  ``id``, ``linkId``, ``networkCode``).
* ``FakeAtApi``: a local stand-in for the aggregator's REST API that the ``africastalking`` SDK
  is pointed at (``AT_API_BASE_URL``): records every ``POST /version1/messaging`` and answers
  as the real API does (JSON ``SMSMessageData`` with one recipient per number).
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Text
from urllib.parse import parse_qsl, urlencode

import httpx
from sanic import Sanic

USSD_CODE = "*384*1234#"
SHORT_CODE = "4321"


def fresh_number() -> Text:
    return "+25078" + str(uuid.uuid4().int)[:7]


class FormPoster:
    """Posts forms to an app (ASGI, from ``client_ip``) or to a server over HTTP."""

    def __init__(self, app: Optional[Sanic] = None, server_url: Optional[Text] = None) -> None:
        self.app, self.server_url = app, server_url
        self._started = False

    async def post(self, path: Text, form: Dict[Text, Text], headers: Optional[Dict[Text, Text]] = None,
                   client_ip: Text = "127.0.0.1") -> httpx.Response:
        body = urlencode(form)
        all_headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        if self.app is not None:
            if not self._started:
                await self.app._startup()
                self._started = True
            transport = httpx.ASGITransport(app=self.app, client=(client_ip, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://bakame.local") as client:
                return await client.post(path, content=body, headers=all_headers, timeout=60)
        async with httpx.AsyncClient(base_url=self.server_url, timeout=60) as client:
            return await client.post(path, content=body, headers=all_headers)


class UssdPhone:
    """One phone dialling the USSD code; ``screen`` is what it shows, ``ended`` after ``END``."""

    def __init__(self, poster: FormPoster, number: Text, path: Text = "/webhooks/ussd/webhook",
                 network: Text = "63510") -> None:
        self.poster, self.number, self.path, self.network = poster, number, path, network
        self.session: Optional[Text] = None
        self.entries: List[Text] = []
        self.screen, self.ended = "", False
        self.screens: List[Text] = []

    async def dial(self) -> Text:
        self.session, self.entries, self.ended = "ATUid_" + uuid.uuid4().hex, [], False
        return await self._post()

    async def enter(self, entry: Text) -> Text:
        assert not self.ended, "the session has ended: dial again"
        self.entries.append(entry)
        return await self._post()

    async def repost(self) -> Text:
        """The aggregator retries the same request."""
        return await self._post()

    def form(self) -> Dict[Text, Text]:
        return {"sessionId": self.session or "", "serviceCode": USSD_CODE, "phoneNumber": self.number,
                "networkCode": self.network, "text": "*".join(self.entries)}

    async def _post(self) -> Text:
        response = await self.poster.post(self.path, self.form())
        assert response.status_code == 200, response.text
        kind, _, screen = response.text.partition(" ")
        assert kind in ("CON", "END"), response.text
        assert len(screen) <= 182, f"screen over 182 characters: {screen!r}"
        self.screen, self.ended = screen, kind == "END"
        self.screens.append(screen)
        return screen


def at_sms_form(text: Text, number: Text, message_id: Optional[Text] = None) -> Dict[Text, Text]:
    return {"from": number, "to": SHORT_CODE, "text": text, "date": "2026-11-29 10:00:00",
            "id": message_id or uuid.uuid4().hex, "linkId": "", "networkCode": "63510"}


class FakeAtApi:
    """The aggregator's SMS API on 127.0.0.1: records what the SDK sends."""

    def __init__(self, fail_first: int = 0) -> None:
        self.sent: List[Dict[Text, Text]] = []
        self.fail_first = fail_first
        self._server: Optional[ThreadingHTTPServer] = None

    @property
    def base(self) -> Text:
        return f"http://127.0.0.1:{self._server.server_address[1]}"  # type: ignore[union-attr]

    def start(self) -> "FakeAtApi":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode("utf-8"), keep_blank_values=True))
                form["_path"], form["_api_key"] = self.path, self.headers.get("apiKey") or ""
                if fake.fail_first > 0:
                    fake.fail_first -= 1
                    body, status = b'{"error": "try later"}', 500
                else:
                    fake.sent.append(form)
                    recipients = [{"number": n, "status": "Success", "statusCode": 101, "cost": "RWF 10.0000",
                                   "messageId": "ATXid_" + uuid.uuid4().hex[:12]} for n in form.get("to", "").split(",")]
                    body = json.dumps({"SMSMessageData": {"Message": "Sent to 1/1", "Recipients": recipients}}).encode()
                    status = 201
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def to(self, number: Text) -> List[Text]:
        return [m["message"] for m in self.sent if m.get("to") == number]

    async def wait_for(self, number: Text, count: int, timeout: float = 60.0) -> List[Text]:
        """The messages sent to ``number`` once there are ``count`` (or what there is at ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(self.to(number)) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.to(number)
