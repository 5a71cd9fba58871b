"""Rasa 3.6 serving-path fixes (infra/rasa_speedups.py, issue 6): each keeps Rasa's
behaviour and does less work -- checked against Rasa's own code where it exists."""
from __future__ import annotations

import asyncio
from typing import List

import pytest
from aiohttp import web

from infra import rasa_speedups

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module", autouse=True)
def applied():
    names = rasa_speedups.apply()
    assert names == ["schema", "events", "pool", "window"]
    return names


async def test_action_results_are_still_validated():
    from jsonschema import ValidationError
    from rasa.core.actions.action import RemoteAction

    action = RemoteAction("action_x", None)
    assert action._validate_action_result({"events": [{"event": "slot", "name": "a", "value": 1}], "responses": []})
    with pytest.raises(ValidationError):
        action._validate_action_result({"events": "not a list"})
    with pytest.raises(ValidationError):
        action._validate_action_result({"events": [{"no_event_key": 1}]})


async def test_events_resolve_to_the_same_classes():
    import rasa.shared.utils.common
    from rasa.shared.core.events import Event, SlotSet, UserUttered

    assert Event.resolve_by_type("slot") is SlotSet
    assert Event.resolve_by_type("user") is UserUttered
    for cls in rasa.shared.utils.common.all_subclasses(Event):
        assert Event.resolve_by_type(cls.type_name) is not None
    assert Event.resolve_by_type("no_such_event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError):
        Event.resolve_by_type("no_such_event")


def _tracker(turns: int):
    from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    events = [ActionExecuted("action_session_start"), SlotSet("language", "rw"), ActionExecuted("action_listen")]
    for i in range(turns):
        events += [UserUttered(f"turn {i}"), BotUttered(f"answer {i}"), ActionExecuted("action_listen")]
    return DialogueStateTracker.from_events("learner", events)


async def test_the_action_server_gets_the_last_three_turns_and_the_full_state():
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.domain import Domain

    domain = Domain.from_yaml("version: '3.1'\nslots:\n  language:\n    type: text\n    mappings: []\n")
    action = RemoteAction("action_x", None)
    long = action._action_call_format(_tracker(25), domain)
    texts = [e["text"] for e in long["tracker"]["events"] if e["event"] == "user"]
    assert texts == [f"turn {i}" for i in range(22, 25)]
    assert long["tracker"]["slots"]["language"] == "rw"
    assert long["tracker"]["latest_message"]["text"] == "turn 24"
    assert long["next_action"] == "action_x" and long["sender_id"] == "learner"
    short = action._action_call_format(_tracker(2), domain)
    assert [e["text"] for e in short["tracker"]["events"] if e["event"] == "user"] == [f"turn {i}" for i in range(2)]
    assert short["tracker"]["events"][0]["name"] == "action_session_start"  # untouched: Rasa's own format


async def test_action_calls_reuse_one_connection():
    """Rasa 3.6 opens a new connection per action call; pooled, consecutive calls share one."""
    from rasa.core.actions.action import RemoteAction
    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator
    from rasa.shared.core.domain import Domain
    from rasa.utils.endpoints import EndpointConfig

    peers: List[int] = []

    async def webhook(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername")[1])
        body = await request.json()
        return web.json_response({"events": [{"event": "slot", "name": "language", "value": "en"}],
                                  "responses": [{"text": f"ran {body['next_action']}"}]})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        domain = Domain.from_yaml("version: '3.1'\nslots:\n  language:\n    type: text\n    mappings: []\n")
        action = RemoteAction("action_x", EndpointConfig(f"http://127.0.0.1:{port}/webhook"))
        output = CollectingOutputChannel()
        nlg = TemplatedNaturalLanguageGenerator(domain.responses)
        results = []
        for _ in range(3):
            results.append(await action.run(output, nlg, _tracker(2), domain))
            await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    assert len(peers) == 3 and len(set(peers)) == 1, peers
    assert [e.value for events in results for e in events if e.__class__.__name__ == "SlotSet"] == ["en"] * 3
    assert [e.text for events in results for e in events if e.__class__.__name__ == "BotUttered"] == \
        ["ran action_x"] * 3
