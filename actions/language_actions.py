"""Which language the conversation is in: chosen by the learner, else detected per message."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import learner_store, messages
from actions.common import active_loop_name, language_of, latest_entity, latest_intent, learner_id
from core import language


class ActionDetectLanguage(Action):
    """Custom slot mapping for `language` / `language_locked`, run on every user turn.

    - `set_language` sets the language the learner named (or toggles when none is named)
      and locks it: detection never overrides a choice.
    - Otherwise the language is detected from the message (see core.language).
    - Sentences said while practising English are not a language choice: no detection
      inside the English module.
    """

    def name(self) -> Text:
        return "action_detect_language"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        current = tracker.get_slot("language")
        if latest_intent(tracker) == "set_language":
            chosen = language.normalise(latest_entity(tracker, "language"))
            if chosen is None:
                chosen = language.other(current)
            return [SlotSet("language", chosen), SlotSet("language_locked", True)]
        if tracker.get_slot("language_locked"):
            return []
        if active_loop_name(tracker) == "tutor_form" and tracker.get_slot("active_module") == "english":
            return []
        detected = language.detect((tracker.latest_message or {}).get("text") or "", current)
        if detected and detected != current:
            return [SlotSet("language", detected)]
        return []


class ActionChangeLanguage(Action):
    def name(self) -> Text:
        return "action_change_language"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        chosen = language_of(tracker)
        await learner_store.save_profile(learner_id(tracker), language=chosen)
        dispatcher.utter_message(text=messages.text("language_changed", chosen))
        return []
