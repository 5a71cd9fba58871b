"""Session start, greeting, the learner's name: first contact and returning learners."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

import yaml
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import learner_store, messages
from actions.common import language_of, latest_entity, latest_intent, learner_id

# Slots that describe the learner and survive a new session; activity slots do not.
CARRIED_SLOTS = ("language", "language_locked", "name", "onboarded", "school_year")


@lru_cache(maxsize=1)
def _name_phrases():
    data = yaml.safe_load((Path(__file__).parent / "content" / "name_phrases.yml").read_text(encoding="utf-8"))
    prefixes = sorted(data["prefixes"], key=len, reverse=True)
    return [re.compile(r"^\s*" + re.escape(p) + r"\b[\s,:]*", re.I) for p in prefixes], frozenset(data["not_names"])


def clean_name(text: Optional[Text]) -> Optional[Text]:
    """The learner's first name(s) from what they said, or None if it does not look like one."""
    if not text:
        return None
    prefixes, not_names = _name_phrases()
    value = text.strip().strip(".!?")
    for pattern in prefixes:
        stripped = pattern.sub("", value, count=1)
        if stripped != value:
            value = stripped
            break
    words = [w for w in re.split(r"[\s,]+", value) if w]
    if not 1 <= len(words) <= 3:
        return None
    if any(not re.fullmatch(r"[A-Za-z][A-Za-z'\-]{0,24}", w) or w.lower() in not_names for w in words):
        return None
    return " ".join(w[:1].upper() + w[1:] for w in words)


def _latest_user_metadata(tracker: Tracker) -> Dict[Text, Any]:
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return event.get("metadata") or {}
    return {}


class ActionSessionStart(Action):
    """Starts a session, keeping who the learner is but not what they were doing.

    A returning learner whose tracker expired is recognised from the progress store. On a
    voice call start (metadata from the connector) the bot speaks first: a bilingual welcome
    for a new caller, a welcome back by name otherwise.
    """

    def name(self) -> Text:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        events: List[EventType] = [SessionStarted()]
        slots = {k: tracker.get_slot(k) for k in CARRIED_SLOTS if tracker.get_slot(k) is not None}
        if not slots.get("name") or not slots.get("language"):
            profile = await learner_store.load_profile(learner_id(tracker))
            if profile:
                if profile.name and not slots.get("name"):
                    slots["name"] = profile.name
                    slots["onboarded"] = True
                if profile.language and not slots.get("language"):
                    slots["language"] = profile.language
        events.extend(SlotSet(k, v) for k, v in slots.items())

        # A call start arrives as a `/session_start` message carrying call metadata. Rasa may
        # run this action twice for a new caller (before and after that message); speaking
        # only when the latest user message is that session start welcomes exactly once.
        metadata = _latest_user_metadata(tracker) if latest_intent(tracker) == "session_start" else {}
        if metadata.get("call_start"):
            language = slots.get("language")
            if slots.get("name") or slots.get("onboarded"):
                name_part = f", {slots['name']}" if slots.get("name") else ""
                dispatcher.utter_message(text=messages.text("call_welcome_back", language, name_part=name_part))
            else:
                dispatcher.utter_message(text=messages.text("call_welcome_new", language))
        events.append(ActionExecuted("action_listen"))
        return events


class ActionGreet(Action):
    def name(self) -> Text:
        return "action_greet"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        name = tracker.get_slot("name")
        if name or tracker.get_slot("onboarded"):
            language = language_of(tracker)
            if name:
                dispatcher.utter_message(text=messages.text("welcome_back", language, name=name))
            else:
                dispatcher.utter_message(text=messages.text("welcome_back_anonymous", language))
            return [SlotSet("learner_status", "known")]
        return [SlotSet("learner_status", "new")]


class ActionAskName(Action):
    def name(self) -> Text:
        return "action_ask_name"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        dispatcher.utter_message(text=messages.text("ask_name", language_of(tracker)))
        return []


class ValidateNameForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_name_form"

    def validate_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        name = clean_name(latest_entity(tracker, "name")) or clean_name(value if isinstance(value, str) else None)
        if name:
            return {"name": name}
        dispatcher.utter_message(text=messages.text("name_unclear", language_of(tracker)))
        return {"name": None}


class ActionFinishOnboarding(Action):
    """After the name form (or skipping it, or a name said later): remember the learner."""

    def name(self) -> Text:
        return "action_finish_onboarding"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        language = language_of(tracker)
        name = tracker.get_slot("name")
        if (tracker.latest_message or {}).get("intent", {}).get("name") == "inform":
            name = clean_name(latest_entity(tracker, "name")) or name
        await learner_store.save_profile(learner_id(tracker), name=name, language=language)
        if name:
            dispatcher.utter_message(text=messages.text("nice_to_meet", language, name=name))
        else:
            dispatcher.utter_message(text=messages.text("name_skipped", language))
        return [SlotSet("name", name), SlotSet("onboarded", True), SlotSet("learner_status", "known")]
