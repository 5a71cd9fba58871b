"""What an incoming SMS asks for: pure functions of Twilio's form, the conversation state
and the SMS settings (``connectors.twilio_sms`` does the I/O).

``refusal`` comes first and needs no state: an oversized, empty or media-only message is
answered with a short explanation and never reaches Rasa. ``keyword`` then recognises the
words that fetch what the channel still owes the learner (OK, MORE, ...); ``is_keypad``
says whether the body is a keypad entry for ``connectors.keypad``.
"""
from __future__ import annotations

import enum
import re
from typing import Any, Mapping, Optional, Text

from connectors.common import as_int
from connectors.session_state import SmsState
from connectors.settings import SmsSettings

KEYPAD_BODY = re.compile(r"^[0-9*#]{1,8}$")


class SmsKind(str, enum.Enum):
    """The values are the ``kind`` of the per-turn log line."""

    TOO_LONG = "too_long"
    MEDIA = "media"  # only pictures or other media, no text
    EMPTY = "empty"
    PENDING = "pending"  # OK (or MORE) while an earlier answer waits: send it
    IN_PROGRESS = "in_progress"  # OK while the earlier turn still runs
    MORE = "more"  # the rest of a reply that was cut


REFUSAL_PROMPTS = {SmsKind.TOO_LONG: "sms_too_long", SmsKind.MEDIA: "sms_media", SmsKind.EMPTY: "sms_empty"}


def refusal(form: Mapping[Text, Any], settings: SmsSettings) -> Optional[SmsKind]:
    """Why the message cannot go to the bot, or None."""
    body = form.get("Body") or ""
    if len(body) > settings.max_body_chars:
        return SmsKind.TOO_LONG
    if not body.strip():
        return SmsKind.MEDIA if as_int(form.get("NumMedia"), 0) > 0 else SmsKind.EMPTY
    return None


def keyword(
    text: Text, conv: SmsState, settings: SmsSettings, *, ready: bool, running: bool, now: float
) -> Optional[SmsKind]:
    """A word that fetches something owed: ``ready`` earlier answers, ones still ``running``,
    or the kept rest of a cut reply (at time ``now``)."""
    word = text.lower().strip(" .!")
    if word in settings.fetch_keywords and (ready or running):
        return SmsKind.PENDING if ready else SmsKind.IN_PROGRESS
    if word in settings.more_keywords and conv.has_more(now):
        return SmsKind.MORE
    return None


def is_keypad(text: Text, settings: SmsSettings) -> bool:
    return settings.keypad_enabled and bool(KEYPAD_BODY.match(text.replace(" ", "")))

