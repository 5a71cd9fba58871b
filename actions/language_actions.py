"""Which language the conversation is in: chosen by the learner, else detected per message."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import learner_store, messages
from actions.common import active_loop_name, language_of, latest_entity, latest_intent, learner_id
from core import language_slots


class ActionDetectLanguage(Action):
    """Custom slot mapping for `language` / `language_locked`, run on every user turn: the
    decision is `core.language_slots.slot_values`. A Rasa started by the launcher
    (`python -m infra.rasa_main`) makes the same decision itself, without calling this
    action (infra/rasa_patches.py, speed-up `slotmap`); a plain `rasa run` calls it."""

    def name(self) -> Text:
        return "action_detect_language"  # == language_slots.ACTION; a literal so `make validate` sees it

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        latest = tracker.latest_message or {}
        values = language_slots.slot_values(
            intent=latest_intent(tracker), named=latest_entity(tracker, language_slots.NAMED_LANGUAGE_ENTITY),
            text=latest.get("text"), detection=latest.get(language_slots.DETECTION_KEY),
            current=tracker.get_slot("language"), locked=tracker.get_slot("language_locked"),
            active_loop=active_loop_name(tracker), active_module=tracker.get_slot("active_module"))
        return [SlotSet(slot, value) for slot, value in values.items()]


class ActionChangeLanguage(Action):
    def name(self) -> Text:
        return "action_change_language"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        chosen = language_of(tracker)
        await learner_store.save_profile(learner_id(tracker), language=chosen)
        dispatcher.utter_message(text=messages.text("language_changed", chosen))
        return []
