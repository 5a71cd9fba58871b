"""Twilio webhook requests as Twilio sends them, and their TwiML answers (pure helpers).

Twilio signs a webhook with ``X-Twilio-Signature`` = base64(HMAC-SHA1(auth token, full URL
+ every POST parameter name and value, sorted by name)); the body is form-encoded. The URL
is the *public* one (``PUBLIC_BASE_URL`` + path + query), which is what the connectors
validate against; the request itself goes to 127.0.0.1.
"""
from __future__ import annotations

import hashlib
import random
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "b" * 32
BENCH_NUMBER = "+250780000000"  # the school's Twilio number (To)

SMS_PATH = "/webhooks/twilio_sms/webhook"
VOICE_PATH = "/webhooks/twilio_voice/webhook"
REST_PATH = "/webhooks/rest/webhook"


def sid(prefix: str, *parts: object) -> str:
    """A Twilio-looking 34-character SID (``CA...``, ``SM...``), unique per ``parts``."""
    return prefix + hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()[:32]


def learner_number(run: str, index: int) -> str:
    """A Rwandan mobile number unique to (run, learner index): +2507 + 8 digits."""
    digits = int(hashlib.sha1(f"{run}:{index}".encode()).hexdigest(), 16) % 10 ** 8
    return f"+2507{digits:08d}"


class Signer:
    """Signs requests exactly as Twilio does (``RequestValidator.compute_signature``)."""

    def __init__(self, auth_token: str, public_base_url: str) -> None:
        self.validator = RequestValidator(auth_token)
        self.public_base_url = public_base_url.rstrip("/")

    def public_url(self, path_and_query: str) -> str:
        return self.public_base_url + path_and_query

    def sign(self, path_and_query: str, params: Mapping[str, str]) -> str:
        return self.validator.compute_signature(self.public_url(path_and_query), dict(params))

    def request(self, path_and_query: str, params: Mapping[str, str]) -> Tuple[str, bytes, Dict[str, str]]:
        """(local path and query, form body, headers) of a signed webhook POST."""
        body = urlencode(list(params.items())).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": self.sign(path_and_query, params),
            "User-Agent": "TwilioProxy/1.1",
        }
        return path_and_query, body, headers

    def local_path(self, url: str) -> str:
        """``https://public/webhooks/...?step=input`` -> ``/webhooks/...?step=input``."""
        parts = urlsplit(url)
        if url.startswith(self.public_base_url):
            rest = url[len(self.public_base_url):]
            return rest if rest.startswith("/") else "/" + rest
        return parts.path + (f"?{parts.query}" if parts.query else "")


def sms_params(number: str, body: str, message_sid: str) -> Dict[str, str]:
    """What Twilio posts for an incoming SMS (the fields the connector reads, and more)."""
    return {
        "ToCountry": "RW", "ToState": "", "SmsMessageSid": message_sid, "NumMedia": "0",
        "ToCity": "", "FromZip": "", "SmsSid": message_sid, "FromState": "", "SmsStatus": "received",
        "FromCity": "", "Body": body, "FromCountry": "RW", "To": BENCH_NUMBER, "ToZip": "",
        "NumSegments": "1", "MessageSid": message_sid, "AccountSid": ACCOUNT_SID, "From": number,
        "ApiVersion": "2010-04-01",
    }


def voice_params(number: str, call_sid: str, speech: Optional[str] = None, digits: Optional[str] = None,
                 confidence: float = 0.9, status: str = "in-progress") -> Dict[str, str]:
    """A voice webhook: call start (no speech/digits) or a ``<Gather>`` result."""
    params = {
        "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call_sid, "CallStatus": status,
        "Called": BENCH_NUMBER, "CalledCountry": "RW", "Caller": number, "CallerCountry": "RW",
        "Direction": "inbound", "From": number, "FromCountry": "RW", "To": BENCH_NUMBER, "ToCountry": "RW",
    }
    if speech is not None:
        params.update(SpeechResult=speech, Confidence=f"{confidence:.8f}", Language="en-US")
    if digits is not None:
        params.update(Digits=digits, FinishedOnKey="")
    return params


# --------------------------------------------------------------------------- TwiML
@dataclass
class TwiML:
    says: List[str] = field(default_factory=list)
    messages: List[str] = field(default_factory=list)
    gather_action: Optional[str] = None
    redirect: Optional[str] = None
    hangup: bool = False
    record: bool = False
    valid: bool = True

    @property
    def texts(self) -> List[str]:
        return self.says + self.messages


def parse_twiml(text: str) -> TwiML:
    """Says, SMS messages, the next ``<Gather action>``, ``<Redirect>``, ``<Hangup>``."""
    out = TwiML()
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        out.valid = False
        return out
    if root.tag != "Response":
        out.valid = False
        return out
    for el in root.iter():
        tag = el.tag
        if tag == "Say" and (el.text or "").strip():
            out.says.append(el.text.strip())
        elif tag == "Message":
            body = el.find("Body")
            value = (body.text if body is not None else el.text) or ""
            if value.strip():
                out.messages.append(value.strip())
        elif tag == "Gather" and out.gather_action is None:
            out.gather_action = el.get("action")
        elif tag == "Redirect":
            out.redirect = (el.text or "").strip() or None
        elif tag == "Hangup":
            out.hangup = True
        elif tag == "Record":
            out.record = True
    return out


def jitter_rng(seed: str) -> random.Random:
    return random.Random(hashlib.sha1(seed.encode()).hexdigest())
