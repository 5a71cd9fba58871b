"""The production tracker store saves a tracker it handed out without reading it again
(infra/tracker_store.py, issue 16), against a REAL private redis-server started here:

* what ends up in Redis is what the save that re-reads the key writes (same events, two
  sessions, non-ASCII text, compaction), and the broker gets every new event once;
* the save does not GET the key again (Redis's own command statistics);
* when anything else wrote or deleted the key after the read, the text is not written over
  it: the save reads the key and proceeds as before (Rasa's merge keeps both turns).
"""
from __future__ import annotations

import asyncio
import json
from typing import Dict, List

import pytest
import redis

from tests.services import RedisServer
from tests.test_tracker_store_compaction import (CollectingBroker, drill_turn, session_start, start_math,
                                                 store_for, take_turn)


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


def stored(server: RedisServer, prefix: str, sender: str) -> Dict:
    return json.loads(redis.Redis(port=server.port).get(f"{prefix}:tracker:{sender}"))


def gets(server: RedisServer) -> int:
    stats = redis.Redis(port=server.port).info("commandstats")
    return int(stats.get("cmdstat_get", {}).get("calls", 0))


def conversation():
    """Turns of two sessions, with Kinyarwanda and non-ASCII text."""
    from rasa.shared.core.events import BotUttered, SlotSet, UserUttered

    turns = [session_start("rw") + start_math()]
    turns += [drill_turn(i) for i in range(6)]
    turns.append([UserUttered("ndashaka imibare é ü ✓", {"name": "start_math", "confidence": 1.0}),
                  BotUttered("Byiza cyane! 3 + 4 = ?"), SlotSet("tutor_state", {"q": "3 + 4 ✓"})])
    turns.append(session_start("en") + [SlotSet("name", "Aline")])
    turns += [drill_turn(i) for i in range(10, 22)]
    return turns


def test_a_continued_save_writes_what_the_re_reading_save_writes(redis_server, domain):
    async def scenario(prefix: str, reread: bool, sender: str):
        broker = CollectingBroker()
        store = store_for(redis_server, domain, prefix, compact_after_turns=8, compact_keep_turns=3)
        store.event_broker = broker
        for turn in conversation():
            tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
            if reread:
                tracker.__dict__.pop("_bakame_stored", None)  # as before issue 16
            for event in turn:
                tracker.update(event)
            await store.save(tracker)
        await store.redis.close()
        return broker.published

    sender = "tw_ü_learner"
    before = gets(redis_server)
    published_reread = asyncio.run(scenario("reread", True, sender))
    gets_reread = gets(redis_server) - before
    before = gets(redis_server)
    published = asyncio.run(scenario("continued", False, sender))
    gets_continued = gets(redis_server) - before
    turns = len(conversation())
    # the first turn: retrieve (nothing), save of the new tracker, save of the turn
    assert gets_reread == 3 + 2 * (turns - 1)  # then retrieve and save
    assert gets_continued == 3 + (turns - 1) + 1  # then retrieve only; the one compacting save reads

    def without_time(events: List[Dict]) -> List[Dict]:
        return [{k: v for k, v in e.items() if k != "timestamp"} for e in events]

    ours, theirs = stored(redis_server, "continued", sender), stored(redis_server, "reread", sender)
    assert ours["name"] == theirs["name"] == sender
    assert without_time(ours["events"]) == without_time(theirs["events"])
    assert len(ours["events"]) < sum(len(t) for t in conversation())  # compaction happened
    assert without_time(published) == without_time(published_reread)
    assert len(published) == sum(len(t) for t in conversation())  # every event once


def test_a_key_changed_after_the_read_is_not_written_over(redis_server, domain):
    """Another process saved a turn in between: the guarded write refuses, the save reads
    the key and Rasa's merge keeps both turns."""
    from rasa.shared.core.events import UserUttered

    async def scenario():
        store = store_for(redis_server, domain, "guard", compact_after_turns=0)
        await take_turn(store, "l1", session_start())
        stale = await store.retrieve("l1")
        assert "_bakame_stored" in stale.__dict__
        await take_turn(store, "l1", [UserUttered("first")])
        stale.update(UserUttered("second"))
        await store.save(stale)
        return await store.retrieve("l1"), store

    again, store = asyncio.run(scenario())
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == ["first", "second"]


def test_a_key_deleted_after_the_read_is_saved_as_the_tracker(redis_server, domain):
    from rasa.shared.core.events import UserUttered

    async def scenario():
        store = store_for(redis_server, domain, "deleted", compact_after_turns=0)
        await take_turn(store, "l1", session_start() + [UserUttered("one")])
        tracker = await store.retrieve("l1")
        redis.Redis(port=redis_server.port).delete("deleted:tracker:l1")
        tracker.update(UserUttered("two"))
        await store.save(tracker)
        return await store.retrieve("l1")

    again = asyncio.run(scenario())
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == ["one", "two"]


def test_the_expiry_is_kept(redis_server, domain):
    async def scenario():
        store = store_for(redis_server, domain, "expiry", compact_after_turns=0, record_exp=600)
        await take_turn(store, "l1", session_start())
        await take_turn(store, "l1", drill_turn(1))
        await store.redis.close()

    asyncio.run(scenario())
    assert 0 < redis.Redis(port=redis_server.port).ttl("expiry:tracker:l1") <= 600
