"""What a channel remembers between two webhook requests of one call or SMS conversation.

Kept in the state store (``connectors.state``) as a JSON object under
``voice:call:<CallSid>`` / ``sms:conv:<conversation id>``; the keys are the field names.
``from_dict`` accepts what older versions saved (missing keys take their defaults, unknown
ones are ignored). The learner's language and math flag are "known" once a turn or the
tracker told them; until then ``lang`` is left out of the saved object, as before, so an
older process reading it still asks the tracker.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional, Text, Type, TypeVar

from core import language as languages

T = TypeVar("T", bound="ConversationState")

STT_FAILURES_BEFORE_GATHER = 2  # transcription failures before a call falls back to <Gather>
CALL_TTL = 4 * 3600.0  # seconds a call's state is kept


def call_key(call_sid: Text) -> Text:
    return f"voice:call:{call_sid}"


@functools.lru_cache(maxsize=None)
def _field_names(cls: type) -> tuple:
    return tuple(f.name for f in fields(cls))


@dataclass
class ConversationState:
    """Shared by both channels: language, math flag, undelivered turns, offered buttons."""

    lang: Optional[Text] = None
    math: bool = False
    known: bool = False  # lang/math came from a turn or the tracker (else: ask the tracker)
    pending: List[Text] = field(default_factory=list)  # turn ids nobody picked up yet
    buttons: List[Dict[Text, Text]] = field(default_factory=list)  # of the last reply offering some

    def learn(self, lang: Optional[Text], math: Any) -> None:
        """The language and math flag a turn (or the tracker) left."""
        self.lang = lang if languages.is_supported(lang) else None
        self.math = bool(math)
        self.known = True

    def to_dict(self) -> Dict[Text, Any]:
        # shallow, unlike dataclasses.asdict (a deep copy, a sizeable part of a channel's own CPU
        # per turn): the store serialises it at once
        data = {name: getattr(self, name) for name in _field_names(type(self))}
        del data["known"]
        if not self.known:
            del data["lang"], data["math"]
        return data

    @classmethod
    def from_dict(cls: Type[T], data: Optional[Mapping[Text, Any]]) -> T:
        data = data or {}
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data and data[f.name] is not None}
        values.pop("known", None)
        state = cls(**values)
        state.known = "lang" in data
        state.math = bool(state.math)
        return state


@dataclass
class CallState(ConversationState):
    """One phone call (``connectors.twilio_voice``)."""

    started_at: Optional[float] = None  # time.time() of the call start
    turns: int = 0  # turns answered
    silences: int = 0  # reprompts in a row after silence
    low_conf: int = 0  # "say it again" in a row
    stt_failures: int = 0  # failed transcriptions in a row
    last: List[Text] = field(default_factory=list)  # the last thing said, repeated after a silence
    ended_by_bot: bool = False
    ended_by_silence: bool = False
    outreach: Optional[Text] = None  # the reminders menu is open ("menu") or a guardian's number is awaited

    @classmethod
    def starting(cls) -> "CallState":
        return cls(started_at=time.time())

    def answered(self, lang: Optional[Text], math: bool, texts: List[Text], buttons: List[Dict[Text, Text]]) -> None:
        """A turn was delivered: the learner was heard, counters start again."""
        self.learn(lang, math)
        self.silences = self.low_conf = self.stt_failures = 0
        self.turns += 1
        self.last = list(texts[-1:])
        self.buttons = list(buttons)

    @property
    def transcription_failing(self) -> bool:
        return self.stt_failures >= STT_FAILURES_BEFORE_GATHER

    @property
    def ended_by(self) -> Text:
        return "bot" if self.ended_by_bot else "silence" if self.ended_by_silence else "caller"


@dataclass
class SmsState(ConversationState):
    """One learner's SMS conversation (``connectors.twilio_sms``)."""

    more: Optional[Text] = None  # the rest of a cut reply, sent on MORE
    more_until: float = 0.0  # time.time() after which ``more`` is forgotten

    def keep_more(self, rest: Text, ttl: float) -> None:
        self.more, self.more_until = rest, time.time() + ttl

    def drop_more(self) -> None:
        self.more, self.more_until = None, 0.0

    def has_more(self, now: float) -> bool:
        return bool(self.more) and self.more_until > now

    def take_more(self) -> Text:
        """The kept rest, once (``more_until`` stays: it expires with nothing to send)."""
        rest, self.more = self.more or "", None
        return rest
