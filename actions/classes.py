"""Joining a teacher's class by its short code (issue 17): "class 4821", "ishuri 4821",
"join class ABC12", or on the keypad ``*8`` then the code (``connectors/keypad.py`` sends
``/join_class{"class_code": ...}``).

The code is read from the message (``core/class_codes.py``) rather than by DIET: codes are
arbitrary, so a rule is exact where a learned entity would guess. It is checked against the
``classes`` table and the membership recorded in the progress store's database
(``infra/progress_store.py``).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import messages
from actions.common import ASKED, language_of, latest_entity, learner_id
from core.class_codes import class_code_in, normalise_code
from infra.progress_store import ProgressStoreError, get_store

logger = logging.getLogger(__name__)

CLASS_CODE_ENTITY = "class_code"


class ActionJoinClass(Action):
    def name(self) -> Text:
        return "action_join_class"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        language = language_of(tracker)
        code = normalise_code(latest_entity(tracker, CLASS_CODE_ENTITY)) or \
            class_code_in((tracker.latest_message or {}).get("text"))
        dispatcher.utter_message(text=await self._answer(tracker, code, language))
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
