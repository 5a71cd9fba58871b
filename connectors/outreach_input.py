"""What an SMS asks of outreach, read before the assistant sees it (pure functions).

* :func:`find_numbers` / :func:`mask_numbers` -- phone numbers in a message (Rwandan mobile
  numbers, written ``07..``, ``2507..``, ``+2507..``, with spaces or dashes, and any ``+``
  international number). A number never reaches Rasa (its events go to PostgreSQL): it is
  replaced by ``[number]``; a guardian's number is kept sealed aside (``infra.number_store``).
* :func:`guardian_request` -- "my mother's number is 0788 123 456", "umubyeyi 0788123456":
  the number (E.164) when the message names a guardian and gives one number.
* :func:`reminder_request` -- "remind me tomorrow", "unyibutse ejo saa 17", "remind me at 5pm
  by call": when (Rwanda time) and how.
* :func:`guardian_yes` -- YES / YEGO (a guardian confirming) and the reports' language it names.
* :func:`keypad_menu` / :func:`reminder_at` -- the keypad menu of calls and USSD (data) and the
  time of a reminder chosen there.

Phrases are data: ``connectors/outreach_phrases.yml``. Handled by the channel rather than
by NLU intents so no number ever enters the tracker and no retrain is needed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple

import yaml

PHRASES = Path(__file__).resolve().parent / "outreach_phrases.yml"
MASK = "[number]"
_NUMBER = re.compile(r"(?<![\d+])(?:(?:\+|00)?250[\s-]?|0)?7[2389](?:[\s-]?\d){7}(?!\d)|\+\d(?:[\s-]?\d){7,14}(?!\d)")
_HOUR = re.compile(r"\b(?:at|saa|ku|kuri|for)?\s*(\d{1,2})(?:[:h.](\d{2}))?\s*(am|pm)?\b")
_WORD = re.compile(r"[a-z']+")


@lru_cache(maxsize=1)
def _data() -> Dict[Text, Any]:
    return yaml.safe_load(PHRASES.read_text(encoding="utf-8")) or {}


@lru_cache(maxsize=1)
def phrases() -> Dict[Text, List[Text]]:
    return {kind: [str(p).lower() for p in items] for kind, items in _data().items()
            if not any(isinstance(p, dict) for p in items)}  # keypad_menu is not phrases


def keypad_menu() -> List[Dict[Text, Any]]:
    """The choices of the keypad menu, in order: ``{reminder: sms|call, hour}`` or ``{guardian: true}``."""
    return [dict(choice) for choice in _data().get("keypad_menu") or []]


def _words(text: Text) -> Text:
    return " ".join(_WORD.findall(text.lower()))


def _has(text: Text, kind: Text) -> bool:
    padded = f" {_words(text)} "
    return any(f" {phrase} " in padded for phrase in phrases()[kind])


def _is_request(text: Text, kind: Text) -> bool:
    """The message opens with one of ``kind``'s phrases (after a "please") and says nothing but
    when and how: a request, not a sentence that contains the word ("remind me to read")."""
    words = _words(text).split()
    while words and words[0] in phrases()["please"]:
        words = words[1:]
    opened = " ".join(words) + " "
    phrase = next((p for p in sorted(phrases()[kind], key=len, reverse=True) if opened.startswith(p + " ")), None)
    if phrase is None:
        return False
    allowed = {w for k in ("tomorrow", "today", "by_call", "filler", "please") for p in phrases()[k] for w in p.split()}
    return all(word in allowed for word in words[len(phrase.split()):])


def e164(raw: Text) -> Text:
    digits = re.sub(r"[^\d+]", "", raw)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith("+"):
        return digits
    if digits.startswith("250"):
        return "+" + digits
    return "+250" + digits.lstrip("0")


def find_numbers(text: Optional[Text]) -> List[Text]:
    return [e164(m.group()) for m in _NUMBER.finditer(text or "")]


def mask_numbers(text: Text) -> Text:
    return _NUMBER.sub(MASK, text)


def guardian_request(text: Optional[Text]) -> Optional[Text]:
    numbers = find_numbers(text)
    if len(numbers) == 1 and _has(_NUMBER.sub(" ", text or ""), "guardian"):
        return numbers[0]
    return None


def guardian_yes(text: Optional[Text]) -> Tuple[bool, Optional[Text]]:
    """Whether ``text`` is a guardian's YES, and the reports' language it names: YES -> en,
    YEGO -> rw, a language word after it wins ("YEGO EN"); "Y" / "OK" name none (None)."""
    words = _words(text or "").split()
    named = next((code for code in ("en", "rw") if words and words[-1] in phrases()[f"language_{code}"]), None)
    said = " ".join(words[:-1] if named else words)
    for code, kind in (("en", "yes_en"), ("rw", "yes_rw"), (None, "yes_any")):
        if said in phrases()[kind]:
            return True, named or code
    return False, None


@dataclass(frozen=True)
class ReminderRequest:
    due: datetime  # Rwanda time
    channel: Text  # sms | call
    tomorrow: bool


def reminder_at(now: datetime, hour: int, channel: Text) -> ReminderRequest:
    """A reminder tomorrow at ``hour`` (a keypad menu choice)."""
    due = now.replace(hour=hour % 24, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return ReminderRequest(due, channel, True)


def reminder_request(text: Optional[Text], now: datetime, default_hour: int = 17) -> Optional[ReminderRequest]:
    """The reminder a message asks for (``now``: aware, Rwanda time), or None."""
    text = (text or "").lower()
    if not _is_request(text, "reminder") or find_numbers(text):
        return None
    hour, minute = default_hour, 0
    match = _HOUR.search(text)
    if match and int(match.group(1)) <= 23 and int(match.group(2) or 0) < 60:
        hour, minute, suffix = int(match.group(1)), int(match.group(2) or 0), match.group(3)
        # "at 5" means 17:00: nobody asks for practice at 05:00
        hour = hour + 12 if (suffix == "pm" and hour < 12) or (suffix is None and 1 <= hour < 8) else hour
    due = now.replace(hour=hour % 24, minute=minute, second=0, microsecond=0)
    if _has(text, "tomorrow") or due <= now:  # no day named: today if that hour is still to come
        due += timedelta(days=1)
    return ReminderRequest(due, "call" if _has(text, "by_call") else "sms", due.date() > now.date())
