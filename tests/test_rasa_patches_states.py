"""Speed-ups `states` and `askskip` of infra/rasa_patches.py (issue 16): the policies'
featurisation remembered per tracker gives Rasa's own states, and the form's silent ask
decided inside Rasa gives the events the action server's action gives."""
from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import List

import pytest
from aiohttp import web

from infra import rasa_patches

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def applied():
    names = rasa_patches.install()
    assert {"states", "askskip", "applied"} <= set(names)
    return names


@pytest.fixture(scope="module")
def domain():
    from rasa.shared.core.domain import Domain

    return Domain.load(str(ROOT / "domain.yml"))


def _random_events(rng: random.Random, count: int):
    """What the policies' featurisation reads: user messages (intents, entities), actions
    (some hidden rule turns), featurised slots, forms running, rejected, finished; follow-up
    actions; reverts, restarts, new sessions."""
    from rasa.shared.core.events import (ActionExecuted, ActionExecutionRejected, ActionReverted, ActiveLoop,
                                         FollowupAction, Restarted, SessionStarted, SlotSet, UserUttered,
                                         UserUtteranceReverted)

    def user():
        intent = rng.choice(["inform", "affirm", "start_math", "stop", "ask_hint"])
        entities = rng.choice([[], [{"entity": "number", "value": "7", "start": 0, "end": 1}],
                               [{"entity": "language", "value": "rw", "start": 0, "end": 2, "role": "x"}]])
        return UserUttered(rng.choice(["7", "yes", "stop", "hint"]), {"name": intent, "confidence": 0.9}, entities)

    makers = [
        user,
        lambda: ActionExecuted("action_listen"),
        lambda: ActionExecuted(rng.choice(["tutor_form", "name_form"])),
        lambda: ActionExecuted(rng.choice(["action_start_module", "action_give_hint", "utter_greet"]),
                               hide_rule_turn=rng.random() < 0.4),
        lambda: ActiveLoop(rng.choice(["tutor_form", "name_form", None])),
        lambda: ActionExecutionRejected(rng.choice(["tutor_form", "name_form"])),
        lambda: SlotSet(rng.choice(["learner_status", "requested_slot", "answer"]),
                        rng.choice(["new", "known", "answer", None])),
        lambda: FollowupAction("action_listen"),
        lambda: ActionReverted(), lambda: UserUtteranceReverted(), lambda: Restarted(), lambda: SessionStarted(),
    ]
    weights = [6, 6, 6, 5, 3, 1, 4, 0.5, 1, 1, 0.3, 0.3]
    return [rng.choices(makers, weights)[0]() for _ in range(count)]


def _argument_sets():
    from rasa.shared.core.constants import RULE_ONLY_LOOPS, RULE_ONLY_SLOTS

    rule_only = {RULE_ONLY_SLOTS: ["learner_status"], RULE_ONLY_LOOPS: ["name_form"]}
    return [  # RulePolicy's, MemoizationPolicy's, and the other combinations
        dict(omit_unset_slots=False, ignore_rule_only_turns=False, rule_only_data=rule_only),
        dict(omit_unset_slots=False, ignore_rule_only_turns=True, rule_only_data=rule_only),
        dict(omit_unset_slots=False, ignore_rule_only_turns=True, rule_only_data=None),
        dict(omit_unset_slots=True, ignore_rule_only_turns=True, rule_only_data=rule_only),
        dict(omit_unset_slots=False, ignore_rule_only_turns=False, rule_only_data=None),
    ]


def test_past_states_are_rasas_however_the_tracker_grew(domain):
    """Asked after every event, with the policies' arguments in turn (continuing the
    remembered replay), and from scratch at the end: Rasa's own states every time."""
    from rasa.shared.core.trackers import DialogueStateTracker

    rasas = DialogueStateTracker.past_states.__wrapped__
    assert rasas is not DialogueStateTracker.past_states
    rng = random.Random(1616)
    arguments = _argument_sets()
    compared = 0
    for _ in range(120):
        events = _random_events(rng, rng.randint(1, 50))
        growing = DialogueStateTracker("learner", domain.slots)
        for event in events:
            growing.update(event)
            for args in rng.sample(arguments, 3):
                assert growing.past_states(domain, **args) == rasas(growing, domain, **args)
                compared += 1
        fresh = DialogueStateTracker.from_events("learner", events, domain.slots)
        for args in arguments:
            assert fresh.past_states(domain, **args) == rasas(fresh, domain, **args) == growing.past_states(domain,
                                                                                                          **args)
    assert compared > 3000


def test_callers_changing_their_states_do_not_change_the_next_callers(domain):
    """RulePolicy deletes the intent or the text of the last state: the next policy must
    still see them."""
    from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    rasas = DialogueStateTracker.past_states.__wrapped__
    tracker = DialogueStateTracker.from_events("learner", [
        ActionExecuted("action_listen"), UserUttered("7", {"name": "inform"}), SlotSet("learner_status", "known"),
        ActionExecuted("tutor_form"), ActionExecuted("action_listen"), UserUttered("stop", {"name": "stop"})],
        domain.slots)
    expected = rasas(tracker, domain)
    first = tracker.past_states(domain)
    assert first == expected
    for state in first:
        for sub in state.values():
            sub.clear()
        state.clear()
    first.clear()
    assert tracker.past_states(domain) == expected
    assert copy.deepcopy(tracker.past_states(domain, ignore_rule_only_turns=True)) == \
        rasas(tracker, domain, ignore_rule_only_turns=True)


def test_a_tracker_with_replaced_events_is_replayed_again(domain):
    from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    rasas = DialogueStateTracker.past_states.__wrapped__
    tracker = DialogueStateTracker.from_events("learner", [ActionExecuted("action_listen"), UserUttered("hi"),
                                                           SlotSet("learner_status", "new")], domain.slots)
    assert tracker.past_states(domain) == rasas(tracker, domain)
    tracker.events = tracker._create_events([ActionExecuted("action_listen"), UserUttered("yes"),
                                             SlotSet("learner_status", "known")])
    assert tracker.past_states(domain) == rasas(tracker, domain)
    assert any(s.get("slots", {}).get("learner_status") for s in tracker.past_states(domain))


# --------------------------------------------------------------------------- askskip
async def _run_ask(tracker, domain, answer):
    """Rasa's RemoteAction for the form's ask against a fake action server answering
    ``answer``; (events, actions the server was asked for)."""
    from rasa.core.actions.action import RemoteAction
    from rasa.core.channels import CollectingOutputChannel
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator
    from rasa.utils.endpoints import EndpointConfig

    called: List[str] = []

    async def webhook(request: web.Request) -> web.Response:
        called.append((await request.json())["next_action"])
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        action = RemoteAction("action_ask_answer", EndpointConfig(f"http://127.0.0.1:{port}/webhook"))
        events = await action.run(CollectingOutputChannel(), TemplatedNaturalLanguageGenerator(domain.responses),
                                  tracker, domain)
    finally:
        await runner.cleanup()
    return events, called


async def _sdk_ask(tracker):
    """The action server's action_ask_answer on the tracker as Rasa would send it."""
    from rasa.shared.core.trackers import EventVerbosity
    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    from actions.module_actions import ActionAskAnswer

    state = tracker.current_state(EventVerbosity.ALL)
    dispatcher = CollectingDispatcher()
    events = await ActionAskAnswer().run(dispatcher, Tracker.from_dict(state), {})
    return {"events": events, "responses": dispatcher.messages}


@pytest.mark.parametrize("module, state", [
    ("math", {"problem": {"a": 3, "b": 4, "level": 2}, "tries": 1, "_asked": True}),
    ("reading", {"item": 2, "_asked": True}),
])
async def test_a_silent_ask_is_decided_in_rasa_as_the_action_server_decides(domain, module, state):
    from rasa.shared.core.events import SlotSet
    from rasa.shared.core.trackers import DialogueStateTracker

    tracker = DialogueStateTracker.from_events("learner", [SlotSet("language", "en"),
                                                           SlotSet("active_module", module),
                                                           SlotSet("tutor_state", state)], domain.slots)
    server = await _sdk_ask(tracker)
    assert server["responses"] == []
    events, called = await _run_ask(tracker, domain, server)
    assert called == []  # no round trip
    expected = [SlotSet(e["name"], e["value"]) for e in server["events"]]
    assert events == expected == [SlotSet("tutor_state", {k: v for k, v in state.items() if k != "_asked"})]
    assert events[0].value is not state  # its own copy


@pytest.mark.parametrize("module, state", [
    ("math", {"problem": {"a": 3, "b": 4, "level": 2}, "tries": 1}),  # after a hint / repeat: say it
    ("math", {"problem": {"a": 3, "b": 4, "level": 2}, "_asked": False}),
    (None, {"_asked": True}),  # no module: the menu
    ("math", None),
])
async def test_an_ask_that_speaks_still_calls_the_action_server(domain, module, state):
    from rasa.shared.core.events import BotUttered, SlotSet
    from rasa.shared.core.trackers import DialogueStateTracker

    tracker = DialogueStateTracker.from_events("learner", [SlotSet("language", "en"), SlotSet("active_module", module),
                                                           SlotSet("tutor_state", state)], domain.slots)
    server = await _sdk_ask(tracker)
    assert server["responses"], "the action server's action says something here"
    events, called = await _run_ask(tracker, domain, server)
    assert called == ["action_ask_answer"]
    assert [e.text for e in events if isinstance(e, BotUttered)] == [r["text"] for r in server["responses"]]
