"""Joining a teacher's class by its short code (issue 17): "class 4821", "ishuri 4821",
"join class ABC12", or on the keypad ``*8`` then the code (``connectors/keypad.py`` sends
``/join_class{"class_code": ...}``).

The code is read from the message here rather than by DIET: codes are arbitrary, so a rule
is exact where a learned entity would guess. It is checked against the ``classes`` table and
the membership recorded in the progress store's database (``actions/progress_store.py``).
"""
from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import messages
from actions.common import language_of, latest_entity, learner_id
from actions.progress_store import ProgressStoreError, get_store

logger = logging.getLogger(__name__)

CLASS_CODE_ENTITY = "class_code"
# A code: 3-8 letters/digits holding at least one digit (so "class", "ishuri" never match).
_CODE = re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z]*\d)[A-Za-z0-9]{3,8}(?![A-Za-z0-9])")


def normalise_code(code: Any) -> Optional[Text]:
    """Upper case without spaces or dashes ("abc-12" -> "ABC12"); None when it is no code."""
    text = re.sub(r"[\s\-]", "", str(code or "")).upper()
    return text if _CODE.fullmatch(text) else None


def class_code_in(text: Optional[Text]) -> Optional[Text]:
    """The class code said or typed in a message ("join class 4821" -> "4821"), the last one
    when several are given; None when the message holds none."""
    found = _CODE.findall(text or "")
    return normalise_code(found[-1]) if found else None


class ActionJoinClass(Action):
    def name(self) -> Text:
        return "action_join_class"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        language = language_of(tracker)
        code = normalise_code(latest_entity(tracker, CLASS_CODE_ENTITY)) or \
            class_code_in((tracker.latest_message or {}).get("text"))
        dispatcher.utter_message(text=await self._answer(tracker, code, language))
        from actions.module_actions import ASKED  # here: the dashboard imports this module without the tutors

        # Inside a module the form asks its question again (as after "my score").
        state = tracker.get_slot("tutor_state")
        if isinstance(state, dict) and ASKED in state:
            return [SlotSet("tutor_state", {k: v for k, v in state.items() if k != ASKED})]
        return []

    @staticmethod
    async def _answer(tracker: Tracker, code: Optional[Text], language: Text) -> Text:
        if code is None:
            return messages.text("class_ask_code", language)
        store = get_store()
        try:
            found = await store.find_class(code)
            if found is None:
                return messages.text("class_unknown", language, code=code)
            joined = await store.join_class(learner_id(tracker), code)
        except (ProgressStoreError, ValueError) as exc:
            logger.warning("class join failed: %s", exc)
            return messages.text("class_unavailable", language)
        return messages.text("class_joined" if joined else "class_already", language, name=found["name"])
