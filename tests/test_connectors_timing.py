"""Per-turn timings (connectors.timing, and the ``timing`` fix of infra.rasa_patches that
instruments Rasa's processor): only a measured turn is timed."""
from __future__ import annotations

import asyncio
import logging
import time

import pytest

from connectors.timing import TurnTimer, current_timer, log_turn
from infra.rasa_patches import instrument_processor


class DummyProcessor:
    async def parse_message(self, message, tracker=None):
        await asyncio.sleep(0.02)
        return {"intent": {"name": "greet"}}

    def predict_next_with_tracker_if_should(self, tracker):
        time.sleep(0.01)
        return "action_listen"

    async def _run_action(self, *args, **kwargs):
        await asyncio.sleep(0.03)
        return False

    async def run_action_extract_slots(self, output_channel, tracker):
        await asyncio.sleep(0.01)
        return tracker

    async def save_tracker(self, tracker):
        self.saved = tracker


async def _one_turn(processor):
    await processor.parse_message("hi")
    processor.predict_next_with_tracker_if_should(None)
    await processor._run_action()
    await processor.run_action_extract_slots(None, None)


async def test_wrappers_split_the_turn_into_nlu_policy_and_actions():
    assert instrument_processor(DummyProcessor) is True
    assert instrument_processor(DummyProcessor) is True  # idempotent
    processor = DummyProcessor()
    timer = TurnTimer().activate()
    try:
        await _one_turn(processor)
    finally:
        timer.deactivate()
    assert 0.015 <= timer.nlu < 0.2
    assert 0.005 <= timer.policy < 0.2
    assert 0.035 <= timer.actions < 0.3
    fields = timer.as_fields()
    assert fields["nlu_policy_ms"] == fields["nlu_ms"] + fields["policy_ms"] or abs(
        fields["nlu_policy_ms"] - fields["nlu_ms"] - fields["policy_ms"]) <= 1
    assert current_timer() is None


async def test_without_an_active_turn_nothing_is_recorded():
    instrument_processor(DummyProcessor)
    other = TurnTimer()
    await _one_turn(DummyProcessor())  # e.g. the REST channel or the HTTP API
    assert other.nlu == other.policy == other.actions == 0


async def test_concurrent_turns_do_not_mix():
    instrument_processor(DummyProcessor)

    async def turn(repeats):
        timer = TurnTimer().activate()
        try:
            for _ in range(repeats):
                await DummyProcessor().parse_message("x")
        finally:
            timer.deactivate()
        return timer.nlu

    one, three = await asyncio.gather(asyncio.create_task(turn(1)), asyncio.create_task(turn(3)))
    assert one < 0.05 <= three


async def test_rasa_message_processor_has_the_instrumented_methods():
    from rasa.core.processor import MessageProcessor

    assert instrument_processor() is True
    for name in ("parse_message", "predict_next_with_tracker_if_should", "_run_action", "run_action_extract_slots"):
        assert getattr(getattr(MessageProcessor, name), "__bakame_timed__", False), name


async def test_log_line_format(caplog):
    timer = TurnTimer(time.perf_counter() - 0.25)
    timer.nlu, timer.policy, timer.actions = 0.04, 0.01, 0.12
    with caplog.at_level(logging.INFO, logger="connectors.timing"):
        fields = log_turn("twilio_sms", "tw_abcdef12", timer, kind="text", over_budget=False)
    line = caplog.records[-1].getMessage()
    assert line.startswith("turn channel=twilio_sms conv=tw_abcdef12 ")
    assert "nlu_ms=40 policy_ms=10 nlu_policy_ms=50 actions_ms=120" in line
    assert "over_budget=false" in line and 240 <= fields["total_ms"] < 400


async def test_the_turn_keeps_the_tracker_rasa_saved():
    """The channel reads the learner's language and state from the tracker Rasa just saved
    (no second read of the conversation from the store); other turns' trackers never leak."""
    from connectors.common import view_of
    from rasa.shared.core.events import SlotSet
    from rasa.shared.core.trackers import DialogueStateTracker

    instrument_processor(DummyProcessor)
    instrument_processor(DummyProcessor)  # wrapped once only

    async def turn(sender, language):
        tracker = DialogueStateTracker.from_events(sender, [SlotSet("language", language)])
        timer = TurnTimer().activate()
        try:
            await asyncio.sleep(0.01)
            await DummyProcessor().save_tracker(tracker)
        finally:
            timer.deactivate()
        return timer.tracker

    a, b = await asyncio.gather(turn("a", "rw"), turn("b", "en"))
    assert (a.sender_id, view_of(a).language) == ("a", "rw")
    assert (b.sender_id, view_of(b).language) == ("b", "en")
    outside = DummyProcessor()
    await outside.save_tracker("no turn")  # e.g. the HTTP API: nothing to hand over, no error
    assert outside.saved == "no turn"
