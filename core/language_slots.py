"""The custom slot mapping of ``language`` / ``language_locked`` (domain.yml): one function,
run by the action server's ``action_detect_language`` (actions/language_actions.py) and, in
Rasa processes started by the launcher, by Rasa itself without the round trip to the action
server (``infra/rasa_patches.py``, speed-up ``slotmap``) -- the same decision either way.

- ``set_language`` sets the language the learner named (or toggles when none is named) and
  locks it: detection never overrides a choice.
- Otherwise the message's language is detected (``core.language``); the NLU pipeline has
  already read the message (``nlu_components/language_detector.py`` puts
  :data:`DETECTION_KEY` into the parse data), else the text is read here.
- Sentences said while practising English are not a language choice: no detection inside
  the English module.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Text

from core import language

ACTION = "action_detect_language"  # the mapping's action in domain.yml
DETECTION_KEY = "language_detection"  # parse data: core.language.detections of the message
SET_LANGUAGE_INTENT = "set_language"
NAMED_LANGUAGE_ENTITY = "language"
ENGLISH_PRACTICE = ("tutor_form", "english")  # (active loop, active_module): no detection


def slot_values(*, intent: Optional[Text], named: Optional[Text], text: Optional[Text],
                detection: Optional[Dict[Text, Optional[Text]]], current: Optional[Text], locked: Any,
                active_loop: Optional[Text], active_module: Optional[Text]) -> Dict[Text, Any]:
    """The slots to set for the latest message ({} = none): ``named`` is the first
    ``language`` entity, ``detection`` the parse data's :data:`DETECTION_KEY` (if any)."""
    if intent == SET_LANGUAGE_INTENT:
        chosen = language.normalise(named)
        if chosen is None:
            chosen = language.other(current)
        return {"language": chosen, "language_locked": True}
    if locked:
        return {}
    if (active_loop, active_module) == ENGLISH_PRACTICE:
        return {}
    if isinstance(detection, dict):
        detected = language.detected_in(detection, current)
    else:  # a model without the detector
        detected = language.detect(text or "", current)
    if detected and detected != current:
        return {"language": detected}
    return {}


def first_entity(entities: Any, name: Text = NAMED_LANGUAGE_ENTITY) -> Optional[Text]:
    """The first non-empty value of entity ``name`` in a parse's entities (as
    ``actions.common.latest_entity`` reads them)."""
    for item in entities or []:
        if item.get("entity") == name and item.get("value"):
            return str(item["value"])
    return None
