"""Enter, run, hint, leave and report on the four tutoring modules (tutor_form)."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import learner_store, messages
from actions.common import ASKED, language_of, latest_intent, learner_id
from actions.llm import get_llm
from actions.tutoring.base import Reply
from actions.tutoring.registry import INTENT_TO_MODULE, MODULES, get_tutor
from core import form_ask

logger = logging.getLogger(__name__)



# Metadata key of the bot message that carries a graded answer's outcome. Rasa keeps a
# message's extra keys as the BotUttered event's metadata, so the grading reaches the event
# stream (PostgreSQL) as it was decided; `make report` counts it instead of re-grading.
GRADED = "graded"


def graded_record(module: Text, reply: Reply, state_before: Dict[Text, Any], level_before: int) -> Optional[Dict[Text, Any]]:
    """What the event stream keeps of a graded answer (None when the turn was not graded)."""
    if reply.outcome is None:
        return None
    problem = state_before.get("problem") if isinstance(state_before.get("problem"), dict) else {}
    try:
        level = int(problem.get("level") or level_before or 1)
    except (TypeError, ValueError):
        level = int(level_before or 1)
    return {"module": module, "correct": bool(reply.outcome), "level": level,
            "first_try": not state_before.get("tries")}


async def _send(reply: Reply, language: Text, dispatcher: CollectingDispatcher, tracker: Tracker,
                graded: Optional[Dict[Text, Any]] = None) -> None:
    """Sends the tutor's messages; the LLM may replace one of them, never blocking the turn
    for longer than its timeout and never showing its failure (the offline text stays).
    ``graded`` rides on the first message (see :data:`GRADED`)."""
    texts = list(reply.messages)
    task = reply.llm_task
    if task is not None and 0 <= task.replace_index < len(texts):
        richer = await get_llm().complete(task, language, learner_name=tracker.get_slot("name"))
        if richer:
            texts[task.replace_index] = richer
    for i, text in enumerate(texts):
        if i == 0 and graded is not None:
            dispatcher.utter_message(text=text, **{GRADED: graded})
        else:
            dispatcher.utter_message(text=text)


async def _save(tracker: Tracker, module: Text, reply: Reply) -> None:
    reply.progress.last_seen = datetime.now(timezone.utc)
    await learner_store.save(learner_id(tracker), module, reply.progress)


def _state(tracker: Tracker) -> Dict[Text, Any]:
    state = tracker.get_slot("tutor_state")
    return dict(state) if isinstance(state, dict) else {}


class ActionStartModule(Action):
    def name(self) -> Text:
        return "action_start_module"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        module = INTENT_TO_MODULE.get(latest_intent(tracker) or "", tracker.get_slot("active_module") or "math")
        language = language_of(tracker)
        progress = await learner_store.load(learner_id(tracker), module)
        reply = get_tutor(module).start(language, progress, None)
        await _send(reply, language, dispatcher, tracker)
        await _save(tracker, module, reply)
        state = dict(reply.state, **{ASKED: True})
        return [SlotSet("active_module", module), SlotSet("tutor_state", state), SlotSet("answer", None)]


class ActionAskAnswer(Action):
    """The form's question: the tutor's current item, unless a reply just presented it."""

    def name(self) -> Text:
        return "action_ask_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        module = tracker.get_slot("active_module")
        silent = form_ask.silent_ask(module, tracker.get_slot("tutor_state"))
        if silent is not None:  # also decided inside Rasa (core/form_ask.py)
            return [SlotSet("tutor_state", silent)]
        if module not in MODULES:
            dispatcher.utter_message(text=messages.text("menu", language_of(tracker)))
            return []
        state = _state(tracker)
        state.pop(ASKED, None)  # a falsy mark
        dispatcher.utter_message(text=get_tutor(module).prompt(language_of(tracker), state))
        return []


# Mid-lesson, only a message the NLU is sure is off-topic is set aside; anything less certain
# (nlu_fallback, a weaker out_of_scope) is the learner's answer. Short phrases are answers too:
# the NLU calls "a red car", "my mother" or "Kigali" off-topic, yet they answer a reading
# question; an off-topic request is a sentence. Debate turns are free opinions: always answers.
OFF_TOPIC_CONFIDENCE = 0.9
OFF_TOPIC_MIN_WORDS = 4
FREE_TEXT_MODULES = ("debate",)


def clearly_off_topic(tracker: Tracker, module: Text) -> bool:
    message = tracker.latest_message or {}
    intent = message.get("intent") or {}
    return (module not in FREE_TEXT_MODULES and intent.get("name") == "out_of_scope"
            and float(intent.get("confidence") or 0.0) >= OFF_TOPIC_CONFIDENCE
            and len(str(message.get("text") or "").split()) >= OFF_TOPIC_MIN_WORDS)


class ValidateTutorForm(FormValidationAction):
    """Every learner turn inside a module goes to that module's tutor; the form never ends
    by itself (the answer slot is emptied again), only by stop, goodbye or a switch."""

    def name(self) -> Text:
        return "validate_tutor_form"

    async def validate_answer(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        module = tracker.get_slot("active_module")
        if module not in MODULES or not isinstance(value, str) or not value.strip():
            # Also reached when a module start empties the slot: nothing was said yet.
            return {"answer": None}
        language = language_of(tracker)
        if clearly_off_topic(tracker, module):
            # Not graded: a friendly nudge, then the form asks the same question again.
            dispatcher.utter_message(text=messages.text("back_to_question", language))
            return {"answer": None, "tutor_state": {k: v for k, v in _state(tracker).items() if k != ASKED}}
        progress = await learner_store.load(learner_id(tracker), module)
        state_before, level_before = _state(tracker), progress.level
        reply = get_tutor(module).answer(value, language, progress, state_before)
        await _send(reply, language, dispatcher, tracker, graded_record(module, reply, state_before, level_before))
        await _save(tracker, module, reply)
        return {"answer": None, "tutor_state": dict(reply.state, **{ASKED: True})}


class ActionGiveHint(Action):
    def name(self) -> Text:
        return "action_give_hint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        module = tracker.get_slot("active_module")
        language = language_of(tracker)
        if module not in MODULES or (tracker.active_loop or {}).get("name") != "tutor_form":
            dispatcher.utter_message(text=messages.text("no_hint", language))
            return []
        progress = await learner_store.load(learner_id(tracker), module)
        reply = get_tutor(module).hint(language, progress, _state(tracker))
        await _send(reply, language, dispatcher, tracker)
        await _save(tracker, module, reply)
        # The form asks the question again after the hint.
        state = dict(reply.state)
        state.pop(ASKED, None)
        return [SlotSet("tutor_state", state)]


class ActionStopModule(Action):
    def name(self) -> Text:
        return "action_stop_module"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        module = tracker.get_slot("active_module")
        language = language_of(tracker)
        if module:
            dispatcher.utter_message(text=messages.text("stopped", language, module=messages.module_name(module, language)))
        else:
            dispatcher.utter_message(text=messages.text("stopped_nothing", language))
        return [SlotSet("active_module", None), SlotSet("tutor_state", None), SlotSet("answer", None)]


def progress_report(summary: Optional[Dict[Text, Any]], language: Optional[Text]) -> List[Text]:
    """One line per module the learner has tried, then the total points."""
    if summary is None:  # not known right now: never tell a learner they have not started
        return [messages.text("progress_unavailable", language)]
    lines = []
    total = 0
    for module in MODULES:
        p = summary.get(module)
        if p is None or (p.attempts == 0 and p.points == 0):
            continue
        total += p.points
        lines.append(messages.text(
            "progress_line", language, module=messages.module_name(module, language).capitalize(),
            points=p.points, level=p.level, correct=p.correct, attempts=p.attempts,
            accuracy=round(100 * p.accuracy),
        ))
    if not lines:
        return [messages.text("progress_empty", language)]
    return lines + [messages.text("progress_total", language, points=total)]


class ActionCheckProgress(Action):
    def name(self) -> Text:
        return "action_check_progress"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        summary = await learner_store.summary(learner_id(tracker))
        dispatcher.utter_message(text=" ".join(progress_report(summary, language_of(tracker))))
        state = _state(tracker)
        state.pop(ASKED, None)
        return [SlotSet("tutor_state", state)] if tracker.get_slot("tutor_state") else []
