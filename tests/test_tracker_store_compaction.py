"""The production tracker store's linear save/retrieve and long-session compaction
(infra/tracker_store.py, issue 6), against a REAL private redis-server started here.

* what ``retrieve`` returns is what Rasa's own ``RedisTrackerStore`` returns for the same
  stored conversation (last session, slots the earlier sessions left), event for event;
* a tracker that does not continue the stored one still goes through Rasa's merge: nothing
  of either is lost;
* a long session is compacted in Redis -- state (slots, active form) and the last turns kept --
  while the event broker still gets every event exactly once, in order;
* the policies decide the same on the compacted conversation as on the whole one (a real
  40-turn math drill through the running assistant, predictions by the trained model).
"""
from __future__ import annotations

import asyncio
import json
from typing import List

import pytest
import redis

from infra.tracker_store import ResilientRedisTrackerStore, compact
from tests.services import RedisServer

DRILL_TURNS = 34


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer(appendonly=False)
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="module")
def domain():
    from rasa.shared.core.domain import Domain

    from tests.stack import ROOT

    return Domain.load(str(ROOT / "domain.yml"))


class CollectingBroker:
    def __init__(self) -> None:
        self.published: List[dict] = []

    def publish(self, event: dict) -> None:
        self.published.append(event)

    def publish_many(self, events: List[dict]) -> None:
        self.published.extend(events)


def store_for(server: RedisServer, domain, prefix: str, **options) -> ResilientRedisTrackerStore:
    return ResilientRedisTrackerStore(domain, host="127.0.0.1", port=server.port, key_prefix=prefix, **options)


def session_start(language: str = "en"):
    from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet

    return [SlotSet("session_started_metadata", {"channel": "twilio_sms"}), ActionExecuted("action_session_start"),
            SessionStarted(), SlotSet("language", language), ActionExecuted("action_listen")]


def drill_turn(i: int):
    """One answer in a math drill, as the assistant records it."""
    from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered

    return [UserUttered(str(i), {"name": "answer", "confidence": 1.0}), SlotSet("answer", str(i)),
            BotUttered(f"Not quite. What is {i} + 1?"), SlotSet("tutor_state", {"asked": i}),
            SlotSet("answer", None), ActionExecuted("tutor_form"), ActionExecuted("action_listen")]


def start_math():
    from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SlotSet, UserUttered

    return [UserUttered("math", {"name": "start_math", "confidence": 1.0}), ActionExecuted("action_start_module"),
            SlotSet("active_module", "math"), BotUttered("What is 2 + 2?"), ActionExecuted("tutor_form"),
            ActiveLoop("tutor_form"), ActionExecuted("action_listen")]


async def take_turn(store: ResilientRedisTrackerStore, sender: str, events) -> None:
    """What Rasa does per message: retrieve (or create), add the turn's events, save."""
    tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
    for event in events:
        tracker.update(event)
    await store.save(tracker)


def stored_events(server: RedisServer, prefix: str, sender: str) -> List[dict]:
    return json.loads(redis.Redis(port=server.port).get(f"{prefix}:tracker:{sender}"))["events"]


def test_retrieve_returns_what_rasas_redis_store_returns(redis_server, domain):
    """Two sessions: our linear retrieve and Rasa's own ``RedisTrackerStore._retrieve``
    give the same tracker (events and slots) for the last session and for all of them."""
    from rasa.core.tracker_store import RedisTrackerStore
    from rasa.shared.core.events import SlotSet

    async def scenario():
        store = store_for(redis_server, domain, "diffa", compact_after_turns=0)
        await take_turn(store, "l1", session_start("rw") + start_math())
        for i in range(5):
            await take_turn(store, "l1", drill_turn(i))
        await take_turn(store, "l1", session_start("rw") + [SlotSet("name", "Aline")])
        await take_turn(store, "l1", drill_turn(7))
        ours = await store.retrieve("l1")
        rasas = await RedisTrackerStore._retrieve(store, "l1", fetch_all_sessions=False)
        ours_all = await store.retrieve_full_tracker("l1")
        rasas_all = await RedisTrackerStore._retrieve(store, "l1", fetch_all_sessions=True)
        await store.redis.close()
        return ours, rasas, ours_all, rasas_all

    ours, rasas, ours_all, rasas_all = asyncio.run(scenario())
    assert [e.as_dict() for e in ours.events] == [e.as_dict() for e in rasas.events]
    assert ours.current_slot_values() == rasas.current_slot_values()
    assert ours.get_slot("name") == "Aline" and ours.get_slot("language") == "rw"
    assert ours.active_loop_name == rasas.active_loop_name
    assert [e.as_dict() for e in ours_all.events] == [e.as_dict() for e in rasas_all.events]
    assert len(ours_all.events) > len(ours.events)  # the earlier session is still stored


def test_a_tracker_that_does_not_continue_the_stored_one_is_merged(redis_server, domain):
    """Another process saved a turn in between: Rasa's merge keeps both turns' events."""
    from rasa.shared.core.events import UserUttered

    async def scenario():
        store = store_for(redis_server, domain, "merge", compact_after_turns=0)
        await take_turn(store, "l2", session_start())
        stale = await store.retrieve("l2")
        await take_turn(store, "l2", [UserUttered("first")])
        stale.update(UserUttered("second"))
        await store.save(stale)
        again = await store.retrieve("l2")
        await store.redis.close()
        return again

    again = asyncio.run(scenario())
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == ["first", "second"]


def test_a_long_session_is_compacted_and_every_event_still_reaches_the_broker(redis_server, domain):
    from rasa.shared.core.events import UserUttered

    async def scenario():
        broker = CollectingBroker()
        store = store_for(redis_server, domain, "compact", event_broker=broker, compact_after_turns=24,
                          compact_keep_turns=8)
        full = store_for(redis_server, domain, "full", compact_after_turns=0)
        for s in (store, full):
            await take_turn(s, "l3", session_start("rw") + start_math())
            for i in range(40):
                await take_turn(s, "l3", drill_turn(i))
        compacted, whole = await store.retrieve("l3"), await full.retrieve("l3")
        await store.redis.close()
        await full.redis.close()
        return broker, compacted, whole

    broker, compacted, whole = asyncio.run(scenario())
    stored = stored_events(redis_server, "compact", "l3")
    users = [e["text"] for e in stored if e["event"] == "user"]
    assert 8 <= len(users) <= 24 and users[-1] == "39"  # bounded, the latest turns kept
    assert len([e for e in stored_events(redis_server, "full", "l3") if e["event"] == "user"]) == 41
    # the state is the same as on the whole conversation
    assert compacted.current_slot_values() == whole.current_slot_values()
    assert compacted.active_loop_name == whole.active_loop_name == "tutor_form"
    assert compacted.get_slot("language") == "rw" and compacted.get_slot("active_module") == "math"
    assert [e.text for e in compacted.events if isinstance(e, UserUttered)][-8:] == [str(i) for i in range(32, 40)]
    # the broker got every event of the conversation once, in order
    published = broker.published
    assert [e["text"] for e in published if e["event"] == "user"] == ["math"] + [str(i) for i in range(40)]
    everything = stored_events(redis_server, "full", "l3")  # the same conversation, never compacted
    def kinds(events):
        return [(e["event"], e.get("name"), e.get("text"), e.get("value")) for e in events]

    assert kinds(published) == kinds(everything)
    assert [e["timestamp"] for e in published] == sorted(e["timestamp"] for e in published)


def test_compaction_off_keeps_the_whole_session(redis_server, domain):
    async def scenario():
        store = store_for(redis_server, domain, "nocompact", compact_after_turns=0)
        await take_turn(store, "l4", session_start() + start_math())
        for i in range(30):
            await take_turn(store, "l4", drill_turn(i))
        await store.redis.close()

    asyncio.run(scenario())
    assert len([e for e in stored_events(redis_server, "nocompact", "l4") if e["event"] == "user"]) == 31


def test_compact_leaves_short_sessions_alone(domain):
    from rasa.shared.core.trackers import DialogueStateTracker

    tracker = DialogueStateTracker.from_events("s", session_start() + start_math(), domain.slots)
    for i in range(10):
        for event in drill_turn(i):
            tracker.update(event)
    assert compact(tracker, list(tracker.events), after=24, keep=8) is None
    assert compact(tracker, list(tracker.events), after=5, keep=3) is not None
    assert compact(tracker, list(tracker.events), after=0, keep=3) is None


@pytest.mark.e2e
def test_the_policies_decide_the_same_on_a_compacted_math_drill(assistant):
    """A real drill through the running assistant; at every action after the compaction
    point, the trained policies predict the same action (and policy) on the compacted
    conversation as on the whole one."""
    import requests
    from infra.rasa_patches import load_agent_for_evaluation
    from rasa.shared.core.trackers import DialogueStateTracker

    from bench.check_compaction import compare_decisions
    from tests.stack import MODEL

    sender = "compaction-drill"
    assistant.texts(sender, "hello")
    assistant.texts(sender, "my name is Aline")
    assistant.texts(sender, "I want to do math")
    answers = ["12", "I don't know", "7", "repeat", "100", "nine", "help"]
    for i in range(DRILL_TURNS):
        assistant.texts(sender, answers[i % len(answers)])
    assistant.texts(sender, "stop")
    assistant.texts(sender, "ndashaka imibare")
    assistant.texts(sender, "5")
    body = requests.get(f"{assistant.url}/conversations/{sender}/tracker", timeout=60).json()

    agent = load_agent_for_evaluation(MODEL)
    full = DialogueStateTracker.from_dict(sender, body["events"], agent.processor.domain.slots)
    compared, differences = compare_decisions(agent.processor, full, after=24, keep=8)
    assert compared >= 20  # every action from turn 26 on
    assert differences == []


class _Event:
    def __init__(self, type_name, timestamp):
        self.type_name, self.timestamp = type_name, timestamp


def test_last_session_split_and_continuation_on_serialised_events():
    from infra.tracker_store import last_session_start, slots_set_by, starts_with

    meta = {"event": "slot", "name": "session_started_metadata", "value": {"channel": "twilio_sms"}, "timestamp": 1.0}
    start = {"event": "action", "name": "action_session_start", "timestamp": 2.0}
    user = {"event": "user", "text": "7", "timestamp": 3.0}
    assert last_session_start([meta, start, user]) == 1
    assert last_session_start([start, user, start, user]) == 2
    assert last_session_start([user]) == 0
    live = [_Event("action", 2.0), _Event("user", 3.0), _Event("bot", 4.0)]
    assert starts_with(live, [start, user])
    assert not starts_with(live, [start, dict(user, timestamp=3.5)])
    assert not starts_with(live, [start, user, user, user])
    assert slots_set_by([meta, {"event": "slot", "name": "language", "value": "rw"}]) == {
        "session_started_metadata": {"channel": "twilio_sms"}, "language": "rw"}
    assert slots_set_by([{"event": "slot", "name": "language", "value": "rw"}, {"event": "restart"}]) == {}
