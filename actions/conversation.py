"""Repeat and low-confidence handling, worked out from the conversation itself."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import messages
from actions.common import ASKED, active_loop_name, language_of

# After this many misunderstood messages in a row, show the menu instead of asking again.
FALLBACKS_BEFORE_MENU = 2
NOT_UNDERSTOOD = ("nlu_fallback", "out_of_scope")


def last_bot_turn(events: List[Dict[Text, Any]]) -> List[Dict[Text, Any]]:
    """The bot messages sent between the previous user message and the latest one."""
    seen_latest_user = False
    turn: List[Dict[Text, Any]] = []
    for event in reversed(events):
        kind = event.get("event")
        if kind == "user":
            if seen_latest_user:
                break
            seen_latest_user = True
        elif kind == "bot" and seen_latest_user:
            turn.append(event)
    return list(reversed(turn))


def trailing_fallbacks(events: List[Dict[Text, Any]]) -> int:
    count = 0
    for event in reversed(events):
        if event.get("event") != "user":
            continue
        if ((event.get("parse_data") or {}).get("intent") or {}).get("name") not in NOT_UNDERSTOOD:
            break
        count += 1
    return count


class ActionRepeat(Action):
    def name(self) -> Text:
        return "action_repeat"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        if active_loop_name(tracker) == "tutor_form":
            # The form asks its current question again right after this action.
            state = tracker.get_slot("tutor_state")
            if isinstance(state, dict) and state.get(ASKED):
                return [SlotSet("tutor_state", {k: v for k, v in state.items() if k != ASKED})]
            return []
        if active_loop_name(tracker):
            return []
        turn = last_bot_turn(tracker.events)
        if not turn:
            dispatcher.utter_message(text=messages.text("nothing_to_repeat", language_of(tracker)))
        for event in turn:
            data = event.get("data") or {}
            dispatcher.utter_message(text=event.get("text"), custom=data.get("custom"), buttons=data.get("buttons") or [])
        return []


class ActionHandleFallback(Action):
    def name(self) -> Text:
        return "action_handle_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        language = language_of(tracker)
        if trailing_fallbacks(tracker.events) >= FALLBACKS_BEFORE_MENU:
            dispatcher.utter_message(text=messages.text("still_not_understood", language))
            dispatcher.utter_message(text=messages.text("menu", language))
        else:
            dispatcher.utter_message(text=messages.text("rephrase", language))
        return []
