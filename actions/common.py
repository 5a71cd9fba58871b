"""Small helpers shared by the Rasa actions."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker

from core import language
from core.form_ask import ASKED  # noqa: F401 - the actions' name for it


def language_of(tracker: Tracker) -> Text:
    return language.or_default(tracker.get_slot("language"))


def latest_intent(tracker: Tracker) -> Optional[Text]:
    return (tracker.latest_message or {}).get("intent", {}).get("name")


def latest_entity(tracker: Tracker, entity: Text) -> Optional[Text]:
    for item in (tracker.latest_message or {}).get("entities", []) or []:
        if item.get("entity") == entity and item.get("value"):
            return str(item["value"])
    return None


def learner_id(tracker: Tracker) -> Text:
    """The conversation id; the Twilio connectors make it a keyed hash of the number."""
    return tracker.sender_id


def active_loop_name(tracker: Tracker) -> Optional[Text]:
    return (tracker.active_loop or {}).get("name")


def user_events(tracker: Tracker) -> List[Dict[Text, Any]]:
    return [e for e in tracker.events if e.get("event") == "user"]
