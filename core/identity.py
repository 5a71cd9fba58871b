"""Learner identity: a phone number becomes a pseudonymous conversation id.

``SenderIdHasher`` turns a phone number into ``tw_<hex HMAC-SHA256(secret, e164)>``: stable
for a learner on every channel (voice, SMS, USSD), meaningless without the secret; the raw
number never reaches the stores, the broker, the action server or the logs.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import Optional, Text

# Twilio sends these spelled-out numbers when the caller id is withheld
# (ANONYMOUS, RESTRICTED, UNAVAILABLE, BLOCKED, UNKNOWN); they must not share one tracker.
ANONYMOUS_NUMBERS = frozenset(
    {"", "anonymous", "restricted", "unknown", "unavailable", "private",
     "+266696687", "+7378742833", "+8656696", "+2562533", "+86282452253"}
)


_NUMBER_CHARS = re.compile(r"[\s\-().]")


def normalise_number(raw: Optional[Text]) -> Text:
    """``whatsapp:+250 788-123 456`` -> ``+250788123456``; other addresses lower-cased."""
    value = (raw or "").strip()
    for scheme in ("whatsapp:", "tel:", "sms:"):
        if value.lower().startswith(scheme):
            value = value[len(scheme):]
    value = _NUMBER_CHARS.sub("", value)
    if value.startswith("00") and value[2:].isdigit():
        value = "+" + value[2:]
    return value if value.startswith("+") else value.lower()


class SenderIdHasher:
    """Keyed hash of a phone number used as the Rasa conversation id."""

    def __init__(self, secret: Text, prefix: Text = "tw_", length: int = 32) -> None:
        if not secret:
            raise ValueError("A sender id secret is required.")
        self._key = secret.encode("utf-8")
        self.prefix = prefix
        self.length = max(16, min(64, int(length)))

    def _digest(self, value: Text) -> Text:
        return hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()[: self.length]

    def sender_id(self, number: Optional[Text], fallback: Optional[Text] = None) -> Text:
        """Conversation id of ``number``; withheld numbers get a per-``fallback`` (call) id."""
        normalised = normalise_number(number)
        if normalised in ANONYMOUS_NUMBERS or normalised.lstrip("+") == "":
            return f"{self.prefix}anon_{self._digest('anon:' + (fallback or ''))}"
        return self.prefix + self._digest(normalised)

    __call__ = sender_id


def short_ref(sender_id: Text) -> Text:
    """A short, log-safe reference to a (hashed) conversation id."""
    return sender_id[:11] if sender_id else "-"
