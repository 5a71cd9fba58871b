"""Prototypes of the optimisations the benchmark recommends, to measure them before
anyone changes the real files (``make bench BENCH_SPEEDUPS=all`` or a list).

The benchmark loads :mod:`bench.speedups_rasa` into the Rasa process through a copy of
``endpoints.prod.yml`` whose tracker store (and, with ``broker``, event broker) is a
subclass defined there; importing it applies the process-wide patches listed in
``BENCH_SPEEDUPS`` (the Rasa process' environment). Nothing here is used in production:
each speedup is meant to move into ``infra/`` or ``connectors/`` (see docs/benchmarks.md
for the diffs).

``merge``     tracker store: ``save`` merges the stored tracker and the turn's tracker in
              linear time. Rasa 3.6's ``_merge_trackers`` compares every event with every
              other one (``as_dict`` in a double loop) whenever the stored tracker holds
              more than the retrieved "last session" -- always once a message carried
              metadata (the ``session_started_metadata`` slot event comes before
              ``action_session_start``, so it forms a "session" of its own), i.e. every
              Twilio conversation, and every conversation after its first session.
              ``retrieve`` also splits off the last session on the raw JSON before building
              event objects (Rasa replays the whole history twice to do it).
``schema``    validate the action server's answers with a validator compiled once (Rasa
              3.6 calls ``jsonschema.validate``, which checks the schema itself on every call).
``events``    ``Event.resolve_by_type`` from a dict (Rasa walks all Event subclasses for
              every event it deserialises).
``window``    send the action server only the events of the last ``BENCH_ACTION_EVENTS_TURNS``
              (10) user turns instead of the whole conversation (slots, active loop and the
              latest message are sent in full as before; our actions read at most the last
              two turns of events).
``connector`` the Twilio channels take the conversation's language and state from the tracker
              Rasa just saved instead of reading (and deserialising) it again from Redis.
``compact``   tracker store: once the last session holds more than 24 user turns, keep only
              its start, a snapshot of the state (slots, active form) and the last 8 turns
              (``BENCH_COMPACT_AFTER_TURNS`` / ``BENCH_COMPACT_KEEP_TURNS``); every event is
              still in PostgreSQL through the event broker. Bounds the per-turn work.
``pool``      keep-alive connections to the action server: Rasa 3.6 opens a new aiohttp
              session, so a new TCP connection, for every action call (three per turn).
``json``      ujson instead of json for the tracker in Redis and the action calls' bodies.
``broker``    (not in "all") the event broker's spool is flushed to PostgreSQL every
              ``flush_interval`` seconds, not woken by every turn (one PostgreSQL transaction
              per second instead of one per turn) -- but then two Rasa processes' events no
              longer reach the table in conversation order.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Sequence, Text, Tuple

# "all": the set recommended in docs/benchmarks.md (bench/proposed/ has them as patches).
ALL = ("merge", "schema", "events", "window", "connector", "compact", "pool", "json")
# Measured but not recommended: flushing the event spool on a timer breaks the order of the
# events table across Rasa processes (tests/test_production_stack.py checks it).
EXTRA = ("broker",)
SESSION_START = "action_session_start"


def parse(value: str) -> List[str]:
    names = [v.strip() for v in (value or "").split(",") if v.strip()]
    if "all" in names:
        return list(ALL)
    unknown = [n for n in names if n not in ALL + EXTRA]
    if unknown:
        raise SystemExit(f"unknown speedups {unknown}; choose from {ALL + EXTRA} or 'all'")
    return names


def enabled() -> List[str]:
    return parse(os.environ.get("BENCH_SPEEDUPS", ""))


# --------------------------------------------------------------------------- harness side
def prepare(workdir: Path, chosen: Sequence[str], stack: Any) -> Tuple[Path, Path]:
    """A copy of endpoints.prod.yml using this module's tracker store (and broker)."""
    from bench.stack import ROOT

    text = (ROOT / "endpoints.prod.yml").read_text()
    text = text.replace("type: infra.tracker_store.ResilientRedisTrackerStore",
                        "type: bench.speedups_rasa.SpeedupTrackerStore")
    if "broker" in chosen:
        text = text.replace("type: infra.event_broker.BufferedSQLEventBroker",
                            "type: bench.speedups_rasa.LazyFlushBroker")
    endpoints = workdir / "endpoints.speedups.yml"
    endpoints.write_text(text)
    credentials = workdir / "credentials.speedups.yml"
    shutil.copy(ROOT / "credentials.prod.yml", credentials)
    stack.extra_env["BENCH_SPEEDUPS"] = ",".join(chosen)
    return endpoints, credentials


# --------------------------------------------------------------------------- merge
def last_session_start(events: Sequence[Dict[Text, Any]]) -> int:
    """Index where the last conversation session starts in serialised events (the split
    rule of ``rasa.shared.core.trackers.get_trackers_for_conversation_sessions``)."""
    for i in range(len(events) - 1, -1, -1):
        e = events[i]
        if e.get("event") == "action" and e.get("name") == SESSION_START:
            return i
    return 0


def same_events(stored: Sequence[Dict[Text, Any]], live: Sequence[Any]) -> bool:
    """The live tracker's first events are the stored ones (type and timestamp)."""
    if len(stored) > len(live):
        return False
    for d, e in zip(stored, live):
        if d.get("timestamp") != e.timestamp or d.get("event") != e.type_name:
            return False
    return True


def prefix_slots(prefix: Sequence[Dict[Text, Any]]) -> Dict[Text, Any]:
    """Slot values set by the events before the last session (what Rasa's split carries
    into the last session's tracker)."""
    values: Dict[Text, Any] = {}
    for e in prefix:
        kind = e.get("event")
        if kind == "slot":
            values[e.get("name")] = e.get("value")
        elif kind in ("restart", "reset_slots"):
            values.clear()
            values["__reset__"] = True
    return values
