"""Helpers shared by the Twilio voice and SMS channels."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel

from core import config
from core import language as languages
# The channels read their settings and render text with these (one definition each, in core).
from core.config import as_bool, as_float, as_int  # noqa: F401
from core.plain_text import strip_emoji  # noqa: F401

logger = logging.getLogger(__name__)

MATH_MODULE = "math"
TUTOR_FORM = "tutor_form"


# ---------------------------------------------------------------------- settings
def setting(credentials: Optional[Mapping[Text, Any]], key: Text, env: Optional[Text] = None, default: Any = None) -> Any:
    """``credentials[key]`` if set (non-empty), else the environment variable ``env``, else ``default``."""
    value = (credentials or {}).get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return config.env(env, default=default) if env else default
    return value


def as_list(value: Any) -> List[Text]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(",") if v.strip()]


# ---------------------------------------------------------------------- conversation
@dataclass
class ConversationView:
    """What the channel needs to know of the tracker (read-only)."""

    language: Optional[Text] = None
    math_active: bool = False
    last_bot_text: Optional[Text] = None
    known: bool = False  # a tracker existed
    module: Optional[Text] = None  # active_module (math, english, reading, debate)
    active_loop: Optional[Text] = None  # the form asking (tutor_form, name_form)
    name: Optional[Text] = None  # the learner's name, when they gave one


def _slot(tracker: Any, name: Text) -> Any:
    try:
        return tracker.get_slot(name)
    except Exception:
        return None


def view_of(tracker: Any) -> ConversationView:
    if tracker is None:
        return ConversationView()
    language = _slot(tracker, "language")
    module = _slot(tracker, "active_module")
    loop = getattr(tracker, "active_loop_name", None)
    if loop is None:
        active_loop = getattr(tracker, "active_loop", None) or {}
        loop = active_loop.get("name") if isinstance(active_loop, dict) else None
    last_bot = None
    for event in reversed(getattr(tracker, "events", None) or ()):  # a deque or a list: no copy
        if type(event).__name__ == "BotUttered" and getattr(event, "text", None):
            last_bot = event.text
            break
    return ConversationView(
        language=language if languages.is_supported(language) else None,
        math_active=(module == MATH_MODULE and loop == TUTOR_FORM),
        last_bot_text=last_bot,
        known=True,
        module=module if isinstance(module, str) else None,
        active_loop=loop if isinstance(loop, str) else None,
        name=_slot(tracker, "name") if isinstance(_slot(tracker, "name"), str) else None,
    )


async def read_conversation(app: Any, sender_id: Text) -> ConversationView:
    """The conversation's language and state from Rasa's tracker store (``app.ctx.agent``)."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    store = getattr(agent, "tracker_store", None)
    if store is None:
        return ConversationView()
    try:
        tracker = await store.retrieve(sender_id)
    except Exception:
        logger.warning("Could not read the tracker for %s.", sender_id[:11], exc_info=True)
        return ConversationView()
    return view_of(tracker)


# ---------------------------------------------------------------------- bot output
@dataclass
class BotOutput:
    """The bot's messages of one turn, reduced to what a phone channel can render."""

    texts: List[Text] = field(default_factory=list)
    buttons: List[Dict[Text, Text]] = field(default_factory=list)  # of the last message offering some
    end_call: bool = False
    ignored: int = 0  # images, attachments, unknown custom payloads

    def as_dict(self) -> Dict[Text, Any]:
        return {"texts": self.texts, "buttons": self.buttons, "end_call": self.end_call, "ignored": self.ignored}

    @classmethod
    def from_dict(cls, data: Optional[Mapping[Text, Any]]) -> "BotOutput":
        data = data or {}
        return cls(
            texts=list(data.get("texts") or []),
            buttons=list(data.get("buttons") or []),
            end_call=bool(data.get("end_call")),
            ignored=int(data.get("ignored") or 0),
        )

    def extend(self, other: "BotOutput") -> "BotOutput":
        return BotOutput(
            texts=self.texts + other.texts,
            buttons=other.buttons or self.buttons,
            end_call=self.end_call or other.end_call,
            ignored=self.ignored + other.ignored,
        )


def parse_bot_messages(messages: List[Dict[Text, Any]]) -> BotOutput:
    """Collected Rasa messages -> texts, buttons and the end-call flag; never raises."""
    out = BotOutput()
    for message in messages or []:
        if not isinstance(message, Mapping):
            out.ignored += 1
            continue
        text = message.get("text")
        if isinstance(text, str) and text.strip():
            out.texts.append(text.strip())
        buttons = message.get("buttons") or message.get("quick_replies")
        if isinstance(buttons, list) and buttons:
            parsed = []
            for b in buttons:
                if isinstance(b, Mapping) and (b.get("title") or b.get("payload")):
                    title = str(b.get("title") or b.get("payload"))
                    parsed.append({"title": title, "payload": str(b.get("payload") or title)})
            if parsed:
                out.buttons = parsed
        custom = message.get("custom")
        if custom is not None:
            if isinstance(custom, Mapping) and as_bool(custom.get("end_call"), False):
                out.end_call = True
                said = custom.get("text")
                if isinstance(said, str) and said.strip():
                    out.texts.append(said.strip())
            else:
                out.ignored += 1
        if message.get("image") or message.get("attachment") or message.get("elements"):
            out.ignored += 1
    return out


class TwilioVoiceCollector(CollectingOutputChannel):
    """Collects the turn's messages; the name selects ``channel: twilio_voice`` responses."""

    @classmethod
    def name(cls) -> Text:
        return "twilio_voice"


class TwilioSmsCollector(CollectingOutputChannel):
    """Collects the turn's messages; the name selects ``channel: twilio_sms`` responses."""

    @classmethod
    def name(cls) -> Text:
        return "twilio_sms"
