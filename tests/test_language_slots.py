"""The language slot's custom mapping (core.language_slots), one decision for the action
server's action_detect_language and for Rasa's own evaluation (infra/rasa_patches.py
`slotmap`): both are checked here on the same conversations."""
from __future__ import annotations

import pytest

from core import language
from core import language_slots
from core.language_slots import slot_values


def values(**given):
    base = dict(intent="inform", named=None, text="", detection=None, current=None, locked=None,
                active_loop=None, active_module=None)
    base.update(given)
    return slot_values(**base)


def test_a_named_language_is_chosen_and_locked():
    assert values(intent="set_language", named="Ikinyarwanda", current="en") == {"language": "rw",
                                                                               "language_locked": True}
    assert values(intent="set_language", named="kinyarwada", current="rw", locked=True) == {
        "language": "rw", "language_locked": True}


def test_set_language_without_a_name_toggles():
    assert values(intent="set_language", current="en") == {"language": "rw", "language_locked": True}
    assert values(intent="set_language", current="rw") == {"language": "en", "language_locked": True}


def test_a_locked_language_is_never_detected_away():
    assert values(text="I want to do math please", current="rw", locked=True) == {}


def test_no_detection_while_practising_english():
    assert values(text="ndashaka kwiga imibare", current="en", active_loop="tutor_form", active_module="english") == {}
    assert values(text="ndashaka kwiga imibare", current="en", active_loop="tutor_form",
                  active_module="math") == {"language": "rw"}


@pytest.mark.parametrize("text, current", [("ndashaka kwiga imibare", "en"), ("yes", "rw"), ("hello", None),
                                           ("42", "en"), ("42", None), ("I want to do math please", "rw")])
def test_the_nlu_detection_decides_as_the_text_does(text, current):
    from_text = values(text=text, current=current)
    from_nlu = values(text="ignored when NLU detected", detection=language.detections(text), current=current)
    assert from_nlu == from_text
    assert from_text == ({} if language.detect(text, current) in (None, current)
                         else {"language": language.detect(text, current)})


def _trackers():
    """Rasa trackers of the situations the mapping tells apart."""
    from rasa.shared.core.events import ActiveLoop, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    def user(text, intent="inform", entities=(), detect=True):
        parse = {"intent": {"name": intent, "confidence": 0.9}, "entities": list(entities), "text": text}
        if detect:
            parse["language_detection"] = language.detections(text)
        return UserUttered(text, parse["intent"], list(entities), parse)

    cases = {
        "first English message": [user("good morning, how are you")],
        "first message, no signal": [user("42")],
        "Kinyarwanda sentence in English": [SlotSet("language", "en"), user("ndashaka kwiga imibare")],
        "stray yes in Kinyarwanda": [SlotSet("language", "rw"), user("yes")],
        "old model: no detection": [SlotSet("language", "rw"), user("I want to do math please", detect=False)],
        "named language": [SlotSet("language", "en"), user("vuga ikinyarwanda", "set_language",
                                                          [{"entity": "language", "value": "ikinyarwanda"}])],
        "toggle": [SlotSet("language", "rw"), user("change language", "set_language")],
        "locked": [SlotSet("language", "rw"), SlotSet("language_locked", True), user("I want to do math please")],
        "English practice": [SlotSet("language", "en"), SlotSet("active_module", "english"),
                             ActiveLoop("tutor_form"), user("ndashaka kwiga imibare")],
        "math answer": [SlotSet("language", "en"), SlotSet("active_module", "math"), ActiveLoop("tutor_form"),
                        user("ndashaka kwiga imibare")],
    }
    return {name: DialogueStateTracker.from_events("learner", events) for name, events in cases.items()}


async def test_rasa_decides_as_the_action_server_does():
    """What rasa-sdk's action returns for the tracker Rasa would send it == what the
    `slotmap` speed-up decides inside Rasa, for every situation."""
    from rasa.shared.core.trackers import EventVerbosity
    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    from actions.language_actions import ActionDetectLanguage
    from infra.rasa_patches import language_slot_events

    decided = {}
    for name, tracker in _trackers().items():
        sdk_tracker = Tracker.from_dict(tracker.current_state(EventVerbosity.AFTER_RESTART))
        remote = await ActionDetectLanguage().run(CollectingDispatcher(), sdk_tracker, {})
        local = [e.as_dict() for e in language_slot_events(tracker)]
        assert [(e["name"], e["value"]) for e in local] == [(e["name"], e["value"]) for e in remote], name
        decided[name] = {e["name"]: e["value"] for e in local}
    assert decided == {
        "first English message": {"language": "en"},
        "first message, no signal": {},
        "Kinyarwanda sentence in English": {"language": "rw"},
        "stray yes in Kinyarwanda": {},
        "old model: no detection": {"language": "en"},
        "named language": {"language": "rw", "language_locked": True},
        "toggle": {"language": "en", "language_locked": True},
        "locked": {},
        "English practice": {},
        "math answer": {"language": "rw"},
    }


def test_the_action_server_action_is_the_mapping_action_of_the_domain():
    from actions.language_actions import ActionDetectLanguage

    assert ActionDetectLanguage().name() == language_slots.ACTION
