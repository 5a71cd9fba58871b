"""USSD screens and what a learner's keypad entry on one means: pure functions (``connectors.ussd`` does the I/O).

A screen has a *kind* (what it asks) and one or more *pages*, each a complete text of at most
``limit`` characters (182 on Rwandan operators). A long text is cut at sentence or word ends;
every page but the last ends with "1 next" (and "0 back" after the first), the last one with
the kind's options. Entries common to every screen: ``1`` next page (while there is one),
``0`` previous page (after the first), ``00`` the menu (leaving the activity).

Kinds and their own entries:

==========  =================================================================
language    1 Kinyarwanda, 2 English
resume      1 continue where the learner stopped, 2 menu
home        the keypad menu (``connectors.keypad``: 1 math ... 9 language, 0 help);
            anything else typed goes to the assistant as text
name        the learner's name as typed; 1 skips
math        digits are the answer (``0`` too: a math answer can be 0); 01 hint
answer      what is typed is the answer (reading, English, debate)
holding     the assistant is still thinking: any entry shows its answer
==========  =================================================================
"""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Text, Tuple

from connectors.gsm import _cut_index, sanitize
from connectors.keypad import KeypadMenu, set_language_message

ACTIVITY_KINDS = ("name", "math", "answer")
MENU, HINT = "00", "01"


@dataclass
class Screen:
    kind: Text
    pages: List[Text] = field(default_factory=list)
    page: int = 0
    choices: List[Text] = field(default_factory=list)  # payloads of the bot's buttons, numbered from 1

    @property
    def text(self) -> Text:
        return self.pages[min(self.page, len(self.pages) - 1)] if self.pages else ""

    @property
    def has_next(self) -> bool:
        return self.page < len(self.pages) - 1

    def to_dict(self) -> Dict[Text, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Optional[Mapping[Text, Any]]) -> Optional["Screen"]:
        if not data or not data.get("kind"):
            return None
        return cls(kind=str(data["kind"]), pages=list(data.get("pages") or []), page=int(data.get("page") or 0),
                   choices=list(data.get("choices") or []))


def _cut(text: Text, budget: int) -> int:
    """Where to cut ``text`` so the head has at most ``budget`` characters (a sentence or word end)."""
    return max(1, min(_cut_index(text, budget), budget))


def paginate(body: Text, options: Text, limit: int, next_label: Text, back_label: Text) -> List[Text]:
    """Pages of ``body``; the last ends with ``options``, the others with next (and back)."""
    body, options = sanitize(body).strip(), sanitize(options).strip()
    middle = f"{next_label} {back_label}"
    if max(len(options), len(middle)) > limit - 40:
        raise ValueError(f"options too long for a {limit}-character screen: {options!r}")
    pages: List[Text] = []
    rest = body
    while True:
        last = "\n".join(p for p in (rest, options) if p)
        if len(last) <= limit:
            pages.append(last)
            return pages
        footer = next_label if not pages else middle
        budget = limit - 1 - len(footer)
        if len(rest) <= budget:  # all of it fits, but not with the options: leave some for the last page
            budget = max(len(rest) // 2, len(rest) - (limit - 1 - len(options)) + 10)
        cut = _cut(rest, budget)
        pages.append(rest[:cut].rstrip() + "\n" + footer)
        rest = rest[cut:].strip()


class Step(str, enum.Enum):
    SAME = "same"  # show the screen again (a retry, an empty entry)
    NEXT = "next"
    PREV = "prev"
    HOME = "home"  # the menu, without the assistant
    LEAVE = "leave"  # leave the activity (the assistant's stop), then the menu
    CONTINUE = "continue"  # resume where the learner stopped
    FETCH = "fetch"  # the answer still being prepared
    ASK = "ask"  # a message for the assistant
    INVALID = "invalid"  # not one of the numbered choices


@dataclass(frozen=True)
class Decision:
    step: Step
    text: Optional[Text] = None  # the message for the assistant (ASK)
    kind: Text = "text"  # the metadata's input kind


def decide(entry: Text, screen: Screen, keypad: KeypadMenu, language: Optional[Text],
           skip_word: Text = "skip") -> Decision:
    """What the learner's ``entry`` on ``screen`` asks for."""
    entry = (entry or "").strip()
    if not entry:
        return Decision(Step.SAME)
    if screen.has_next and entry == "1":
        return Decision(Step.NEXT)
    if screen.page > 0 and entry == "0" and (screen.has_next or screen.kind != "math"):
        return Decision(Step.PREV)
    if entry == MENU:
        return Decision(Step.LEAVE if screen.kind in ACTIVITY_KINDS else Step.HOME)
    if screen.choices and entry.isdigit() and 1 <= int(entry) <= len(screen.choices):
        return Decision(Step.ASK, screen.choices[int(entry) - 1], "button")
    return _by_kind(entry, screen.kind, keypad, language, skip_word)


def _by_kind(entry: Text, kind: Text, keypad: KeypadMenu, language: Optional[Text], skip_word: Text) -> Decision:
    if kind == "language":
        chosen = {"1": "rw", "2": "en"}.get(entry)  # the order of channel.ussd_language
        return Decision(Step.ASK, set_language_message(chosen), "language") if chosen else Decision(Step.INVALID)
    if kind == "resume":
        return {"1": Decision(Step.CONTINUE), "2": Decision(Step.HOME)}.get(entry, Decision(Step.INVALID))
    if kind == "holding":
        return Decision(Step.FETCH)
    if kind == "name":
        return Decision(Step.ASK, skip_word, "skip") if entry == "1" else Decision(Step.ASK, entry, "text")
    if kind == "math":
        if entry == HINT:
            return Decision(Step.ASK, "/request_hint", "menu")
        return Decision(Step.ASK, entry, "answer" if entry.isdigit() else "text")
    if kind == "answer":
        return Decision(Step.ASK, entry, "text")
    resolved = keypad.resolve(entry, language=language)  # home: the keypad menu
    if resolved is None:
        return Decision(Step.SAME)
    return Decision(Step.ASK, resolved.text, f"keypad_{resolved.kind}")


def kind_after(result: Mapping[Text, Any]) -> Text:
    """The kind of screen a turn's result leaves (``_ask_rasa``: math flag, module, form)."""
    if result.get("loop") == "name_form":
        return "name"
    if result.get("math"):
        return "math"
    if result.get("loop") == "tutor_form" and result.get("module"):
        return "answer"
    return "home"


def new_entries(text: Optional[Text], consumed: int) -> Tuple[List[Text], int]:
    """The entries of the aggregator's ``text`` (every entry of the session joined by ``*``)
    not seen yet, and how many there are in all. An empty ``text`` is the dial itself."""
    parts = (text or "").split("*") if text else []
    return parts[consumed:], len(parts)
