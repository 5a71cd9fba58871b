"""A local fake of Twilio's REST API (the part outreach uses), started by the tests.

``POST /2010-04-01/Accounts/<sid>/Calls.json`` and ``.../Messages.json`` as the ``twilio``
client sends them (form-encoded, HTTP basic auth with the account SID and auth token):
recorded, answered 201 with a Twilio-shaped JSON resource. ``fail_next`` answers the next
requests 500 (a Twilio outage). The client is pointed at it with ``TWILIO_API_BASE_URL``.
"""
from __future__ import annotations

import base64
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Text
from urllib.parse import parse_qsl


class FakeTwilioApi:
    def __init__(self, account_sid: Text, auth_token: Text) -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        self.requests: List[Dict[Text, Any]] = []
        self.fail_next = 0
        self._server: Optional[ThreadingHTTPServer] = None
        self._lock = threading.Lock()

    @property
    def base(self) -> Text:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def calls(self, to: Optional[Text] = None) -> List[Dict[Text, Text]]:
        return [r["form"] for r in self.requests if r["kind"] == "Calls" and to in (None, r["form"].get("To"))]

    def messages(self, to: Optional[Text] = None) -> List[Text]:
        return [r["form"]["Body"] for r in self.requests if r["kind"] == "Messages" and to in (None, r["form"].get("To"))]

    def start(self) -> "FakeTwilioApi":
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode("utf-8"), keep_blank_values=True))
                status, body = api.answer(self.path, form, self.headers.get("Authorization") or "")
                payload = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def answer(self, path: Text, form: Dict[Text, Text], authorization: Text) -> tuple:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if authorization != expected:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        prefix = f"/2010-04-01/Accounts/{self.account_sid}/"
        kind = path[len(prefix):].split(".json")[0] if path.startswith(prefix) else ""
        if kind not in ("Calls", "Messages"):
            return 404, {"code": 20404, "message": "not found", "status": 404}
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, {"code": 20500, "message": "Internal Server Error", "status": 500}
            sid = ("CA" if kind == "Calls" else "SM") + uuid.uuid4().hex
            self.requests.append({"kind": kind, "form": form, "sid": sid})
        return 201, {"sid": sid, "account_sid": self.account_sid, "to": form.get("To"), "from": form.get("From"),
                     "status": "queued", "uri": f"{prefix}{kind}/{sid}.json"}
