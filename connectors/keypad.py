"""Keypad (DTMF) input: digits to Rasa messages.

Order of interpretation for one keypad entry (``Digits`` of a ``<Gather>``; Twilio strips
the ``finishOnKey`` ``#``, a trailing ``#`` typed in an SMS is stripped here):

1. a math problem is in progress: digits are the answer and are sent as plain text;
   ``*`` alone is "repeat" and ``*`` followed by a menu key reaches the menu
   (``*0`` help, ``*9`` language, ...), so a menu is never out of reach;
2. the last bot message offered buttons ("Press 1 for ..."): ``n`` selects button ``n``;
3. the keypad menu (configurable): a key maps to a ``/intent`` message, the special
   value ``language`` toggles the learner's language with ``/set_language{"language": ..}``;
4. anything else is sent as plain text (the bot's NLU decides).

At any point ``*8`` followed by a class code (``*84821#``) joins the teacher's class
(``/join_class{"class_code": ...}``, issue 17; ``actions/classes.py``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Text

from core import language

LANGUAGE_TOGGLE = "language"

DEFAULT_KEYPAD: Dict[Text, Text] = {
    "1": "/start_math",
    "2": "/start_english",
    "3": "/start_reading",
    "4": "/start_debate",
    "5": "/check_progress",
    "7": "/request_hint",
    "9": LANGUAGE_TOGGLE,
    "0": "/help",
    "*": "/repeat",
}

VALID_KEYS = set("0123456789*#")
CLASS_CODE_PREFIX = "*8"  # then the digits of a class code


@dataclass(frozen=True)
class KeypadInput:
    text: Text  # the message for Rasa
    kind: Text  # "answer" | "button" | "menu" | "language" | "class" | "text"


def set_language_message(code: Text) -> Text:
    return "/set_language" + json.dumps({"language": code})


def keypad_entry(digits: Optional[Text]) -> Text:
    """The keys of one entry without the finishing ``#``; empty when nothing was typed."""
    entry = (digits or "").strip().replace(" ", "")
    while entry.endswith("#") and len(entry) > 1:
        entry = entry[:-1]
    return "" if entry == "#" else entry


class KeypadMenu:
    def __init__(self, mapping: Optional[Mapping[Text, Text]] = None, default_language: Optional[Text] = None) -> None:
        raw = dict(DEFAULT_KEYPAD if mapping is None else mapping)
        self.mapping: Dict[Text, Text] = {}
        for key, value in raw.items():
            key = str(key).strip()
            if len(key) != 1 or key not in VALID_KEYS:
                raise ValueError(f"Keypad key {key!r} must be one of 0-9, * or #.")
            value = str(value).strip() if value is not None else ""
            if value:
                self.mapping[key] = value
        self.default_language = language.or_default(default_language)

    def single_key_menu(self) -> bool:
        return all(len(k) == 1 for k in self.mapping)

    def _menu(self, key: Text, current: Optional[Text]) -> Optional[KeypadInput]:
        target = self.mapping.get(key)
        if not target:
            return None
        if target == LANGUAGE_TOGGLE:
            known = current if language.is_supported(current) else self.default_language
            return KeypadInput(set_language_message(language.other(known)), "language")
        return KeypadInput(target, "menu")

    def resolve(
        self,
        digits: Optional[Text],
        *,
        language: Optional[Text] = None,
        math_active: bool = False,
        buttons: Optional[List[Text]] = None,
    ) -> Optional[KeypadInput]:
        """The Rasa message for ``digits``, or ``None`` for an empty entry."""
        entry = keypad_entry(digits)
        if not entry:
            return None
        code = entry[len(CLASS_CODE_PREFIX):]
        if entry.startswith(CLASS_CODE_PREFIX) and 3 <= len(code) <= 8 and code.isdigit():
            return KeypadInput("/join_class" + json.dumps({"class_code": code}), "class")
        if math_active:
            if entry.isdigit():
                return KeypadInput(entry, "answer")
            if entry.startswith("*") and len(entry) == 2:
                return self._menu(entry[1], language) or KeypadInput(entry, "text")
            if entry == "*":
                return self._menu("*", language) or KeypadInput(entry, "text")
            return KeypadInput(entry, "text")
        if buttons and entry.isdigit() and 1 <= int(entry) <= len(buttons):
            return KeypadInput(buttons[int(entry) - 1], "button")
        if entry.startswith("*") and len(entry) == 2 and entry[1] in self.mapping:
            return self._menu(entry[1], language)
        return self._menu(entry, language) or KeypadInput(entry, "text")
