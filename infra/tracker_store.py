"""Conversation trackers in Redis, for production (``endpoints.prod.yml``)::

    tracker_store:
      type: infra.tracker_store.ResilientRedisTrackerStore
      url: ${REDIS_HOST}          # plus port, db, password, use_ssl
      key_prefix: ${REDIS_KEY_PREFIX}
      record_exp: ${TRACKER_EXPIRY_SECONDS}   # sliding expiry since the last turn

Same keys and format as Rasa's ``RedisTrackerStore`` (``<prefix>:tracker:<sender_id>``,
the tracker as JSON), with these differences:

* asyncio Redis with short timeouts and a bounded retry (:mod:`infra.redis_client`);
  when Redis stays unreachable :class:`infra.errors.StoreUnavailable` is raised. Rasa
  wraps every tracker store in ``FailSafeTrackerStore``, which would swallow the error and
  carry on with an EMPTY tracker (the learner greeted as a stranger, their turn saved
  nowhere); the ``failsafe`` fix of :mod:`infra.rasa_patches` (installed by the launcher,
  :mod:`infra.rasa_main`) lets ``StoreUnavailable`` -- and only it -- through, so the turn
  stops and the channel apologises instead (:mod:`infra.rest_channel`). Without it this
  store logs a warning when Rasa creates it.
* new events go to the event broker only AFTER the tracker was written (Rasa publishes
  first), so the events table never holds a turn the tracker does not.
* the learner's language is remembered in-process, for the apology when Redis is down.
* linear-time save and retrieve (issue 6, docs/benchmarks.md): Rasa 3.6 merges the stored
  and the turn's tracker comparing every event with every other one whenever the stored
  tracker holds more than the retrieved last session -- always once a message carried
  metadata (the ``session_started_metadata`` slot comes before ``action_session_start``),
  i.e. every Twilio conversation: 8 s per turn at turn 90 in ``make bench``. Here the stored
  events before the last session are kept as they are and the turn's tracker follows them;
  ``retrieve`` builds event objects for the last session only.
* long sessions are compacted: once the last session holds more than
  ``compact_after_turns`` (24) user turns, the stored tracker keeps its start, a snapshot
  of the state (every slot not at its initial value, the active form) and the last
  ``compact_keep_turns`` (8) turns. Every event is still in PostgreSQL (the event
  broker), the policies (memoization ``max_history`` 5, rules a few turns long) and the
  actions (the last two turns at most) see the same recent history, so a turn late in a
  math drill costs what a turn early in it costs. ``compact_after_turns: 0`` keeps
  everything, as Rasa does. (``python -m bench.check_compaction`` compares the policies'
  decisions on full and compacted conversations.)
* the event spool (an fsync'ed SQLite write) is written off the event loop.
* a tracker ``retrieve`` handed out is saved without reading the key again (issue 16): the
  text read is kept on the tracker, the turn's new events are appended to it as text, and
  a Lua script writes it only if the key still holds exactly that text (length and last
  bytes) -- otherwise (another writer, a deleted key, compaction due) the save reads the key
  and goes on as above. One Redis round trip and one parse + serialisation of the whole
  conversation fewer per turn.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Iterable, List, Optional, Sequence, Text

import ujson

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import RedisTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.conversation import Dialogue
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import (
    DialogueStateTracker,
    TrackerEventDiffEngine,
    get_trackers_for_conversation_sessions,
)

from core.config import as_float, as_int
from infra import rasa_patches
from infra.errors import StoreUnavailable, languages
from infra.redis_client import ResilientRedis

logger = logging.getLogger(__name__)


class ResilientRedisTrackerStore(RedisTrackerStore):
    """``RedisTrackerStore`` that retries, then fails loudly and politely (see module doc)."""

    def __init__(
        self,
        domain: Domain,
        host: Text = "localhost",
        port: Any = 6379,
        db: Any = 0,
        username: Optional[Text] = None,
        password: Optional[Text] = None,
        event_broker: Optional[EventBroker] = None,
        record_exp: Any = None,
        key_prefix: Optional[Text] = None,
        use_ssl: Any = False,
        ssl_keyfile: Optional[Text] = None,
        ssl_certfile: Optional[Text] = None,
        ssl_ca_certs: Optional[Text] = None,
        socket_timeout: Any = None,
        socket_connect_timeout: Any = None,
        retries: Any = None,
        retry_backoff: Any = None,
        compact_after_turns: Any = None,
        compact_keep_turns: Any = None,
        **kwargs: Any,
    ) -> None:
        if "failsafe" not in rasa_patches.installed():
            logger.warning("Rasa is not patched (start it with `python -m infra.rasa_main run ...`): when Redis "
                           "is down, Rasa will answer from an empty conversation instead of apologising.")
        self.compact_after = as_int(compact_after_turns, 24)
        self.compact_keep = max(2, as_int(compact_keep_turns, 8))
        self.redis = ResilientRedis(
            "conversation store (Redis)",
            host=host, port=port, db=db, username=username, password=password, use_ssl=use_ssl,
            ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile, ssl_ca_certs=ssl_ca_certs,
            **{k: v for k, v in dict(socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout,
                                     retries=retries, retry_backoff=retry_backoff).items() if v not in (None, "")},
        )
        expiry = as_float(record_exp, 0.0)
        super().__init__(
            domain=domain, host=self.redis.options["host"], port=self.redis.options["port"],
            db=self.redis.options["db"], username=username or None, password=password or None,
            event_broker=event_broker, record_exp=expiry if expiry and expiry > 0 else None,
            key_prefix=key_prefix or None, use_ssl=self.redis.options["ssl"],
            ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile, ssl_ca_certs=ssl_ca_certs, **kwargs,
        )

    # ------------------------------------------------------------------ save
    async def save(self, tracker: DialogueStateTracker, timeout: Optional[float] = None) -> None:
        key = self.key_prefix + tracker.sender_id
        read = tracker.__dict__.pop("_bakame_stored", None)  # (stored text, its events) of retrieve
        if read is not None and await self._save_continued(key, tracker, read[0], read[1], timeout):
            return
        stored = await self.redis.call(lambda r: r.get(key))
        raw = (ujson.loads(stored).get("events") or []) if stored is not None else None
        await self._save_over(key, tracker, stored, raw, timeout)

    async def _save_over(self, key: Text, tracker: DialogueStateTracker, stored: Any,
                         raw: Optional[List[Dict[Text, Any]]], timeout: Optional[float]) -> None:
        live = list(tracker.events)
        earlier: List[Dict[Text, Any]] = []  # stored events before the last session, as stored
        new_events = live
        if raw is not None:
            split = last_session_start(raw)
            if not starts_with(live, raw[split:]):  # not the tracker we handed out: Rasa's merge
                await self._save_merged(key, tracker, stored, timeout)
                return
            earlier, new_events = raw[:split], live[len(raw) - split:]
        compacted = compact(tracker, live, self.compact_after, self.compact_keep)
        if compacted is not None:  # earlier sessions and old turns stay in PostgreSQL only
            body = [e.as_dict() for e in compacted]
        else:
            body = earlier + [e.as_dict() for e in live]
        serialised = ujson.dumps({"events": body, "name": tracker.sender_id}, ensure_ascii=False,
                                 escape_forward_slashes=False)
        await self._write(key, serialised, tracker, new_events, timeout)

    async def _save_continued(self, key: Text, tracker: DialogueStateTracker, stored: Text,
                              raw: List[Dict[Text, Any]], timeout: Optional[float]) -> bool:
        """Save a tracker :meth:`retrieve` handed out without reading it again (issue 16):
        when it continues what was read, the stored text gets the new events appended as
        text (no re-read, no re-serialising of the stored events), written only if the key
        still holds exactly what was read (:data:`SET_IF_UNCHANGED`: its length and last
        bytes; the lock store keeps other turns out, this catches other writers). ``False``:
        not done, save the usual way."""
        live = list(tracker.events)
        split = last_session_start(raw)
        tail = _tail(tracker.sender_id)
        if not starts_with(live, raw[split:]) or not stored.endswith(tail) \
                or compact(tracker, live, self.compact_after, self.compact_keep) is not None:
            return False
        new_events = live[len(raw) - split:]
        added = ",".join(ujson.dumps(e.as_dict(), ensure_ascii=False, escape_forward_slashes=False)
                         for e in new_events)
        head = stored[:-len(tail)]
        serialised = head + ("," if added and not head.endswith("[") else "") + added + tail
        was = stored.encode("utf-8")
        expiry = timeout or self.record_exp
        written = await self.redis.call(lambda r: r.eval(
            SET_IF_UNCHANGED, 1, key, serialised, len(was), was[-_GUARD_BYTES:], int(expiry) if expiry else 0))
        if not int(written):
            return False
        await self._after_write(tracker, new_events)
        return True

    async def _save_merged(self, key: Text, tracker: DialogueStateTracker, stored: Any,
                           timeout: Optional[float]) -> None:
        """Rasa's own merge (quadratic), for a tracker that does not continue the stored one."""
        prior = self.deserialise_tracker(tracker.sender_id, stored)
        new_events = TrackerEventDiffEngine.event_difference(_last_session(prior), tracker)
        merged = self._merge_trackers(prior, tracker) if prior is not None else tracker
        await self._write(key, self.serialise_tracker(merged), tracker, new_events, timeout)

    async def _write(self, key: Text, serialised: Text, tracker: DialogueStateTracker, new_events: List[Any],
                     timeout: Optional[float]) -> None:
        """The tracker into Redis, then (only then) its new events to the event broker."""
        expiry = timeout or self.record_exp
        await self.redis.call(lambda r: r.set(key, serialised, ex=int(expiry) if expiry else None))
        await self._after_write(tracker, new_events)

    async def _after_write(self, tracker: DialogueStateTracker, new_events: List[Any]) -> None:
        languages.remember(tracker.sender_id, tracker.get_slot("language"))
        if self.event_broker is not None and new_events:
            await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)

    async def _stream_new_events(self, event_broker: EventBroker, new_events: List[Any], sender_id: Text) -> None:
        """As Rasa's (same event bodies), but one ``publish_many`` call per turn when the
        broker has it (:class:`infra.event_broker.BufferedSQLEventBroker`: one fsync)."""
        bodies = []
        for event in new_events:
            body: Dict[Text, Any] = {"sender_id": sender_id}
            body.update(event.as_dict())
            bodies.append(body)
        publish_many = getattr(event_broker, "publish_many", None)
        if callable(publish_many):  # an fsync'ed spool write: not on the event loop
            await asyncio.get_running_loop().run_in_executor(None, publish_many, bodies)
        else:
            for body in bodies:
                event_broker.publish(body)

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Publishing happens in :meth:`save`, after the write (not before it)."""
        return None

    # ------------------------------------------------------------------ read
    async def _retrieve(self, sender_id: Text, fetch_all_sessions: bool) -> Optional[DialogueStateTracker]:
        stored = await self.redis.call(lambda r: r.get(self.key_prefix + sender_id))
        if stored is None:
            return None
        if fetch_all_sessions:
            tracker = self.deserialise_tracker(sender_id, stored)
        else:
            raw = ujson.loads(stored).get("events") or []
            tracker = self._last_session_of(sender_id, raw)
            tracker._bakame_stored = (stored, raw)  # save() continues it without reading it again
        if tracker is not None:
            languages.remember(sender_id, tracker.get_slot("language"))
        return tracker

    def _last_session_of(self, sender_id: Text, events: List[Dict[Text, Any]]) -> DialogueStateTracker:
        """What Rasa's ``retrieve`` returns (the last session, slots as the history left
        them), building event objects for the last session only."""
        split = last_session_start(events)
        session = Dialogue.from_parameters({"name": sender_id, "events": events[split:]}).events
        tracker = self.init_tracker(sender_id)
        if split == 0:
            tracker.recreate_from_dialogue(Dialogue(sender_id, session))
            return tracker
        for name, value in slots_set_by(events[:split]).items():
            if name in tracker.slots:
                tracker.slots[name].value = value
        return DialogueStateTracker.from_events(sender_id, session, list(tracker.slots.values()),
                                                max_event_history=tracker._max_event_history)

    async def exists(self, conversation_id: Text) -> bool:
        return bool(await self.redis.call(lambda r: r.exists(self.key_prefix + conversation_id)))

    async def keys(self) -> Iterable[Text]:
        """Sender ids (without the key prefix)."""
        prefix = self.key_prefix

        async def scan(r: Any) -> List[Text]:
            return [k[len(prefix):] async for k in r.scan_iter(match=prefix + "*", count=500)]

        return await self.redis.call(scan)


# The key holds exactly what was read (same length, same last bytes: the last event's
# timestamp is among them): then write the new text. KEYS[1]; ARGV: text, length, last
# bytes, expiry in seconds (0: none). 1 when written.
SET_IF_UNCHANGED = """
if redis.call('STRLEN', KEYS[1]) ~= tonumber(ARGV[2]) then return 0 end
if redis.call('GETRANGE', KEYS[1], -string.len(ARGV[3]), -1) ~= ARGV[3] then return 0 end
if tonumber(ARGV[4]) > 0 then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
else redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""
_GUARD_BYTES = 96


def _tail(sender_id: Text) -> Text:
    """How the stored text of :meth:`ResilientRedisTrackerStore.save` ends after its events."""
    return '],"name":' + ujson.dumps(sender_id, ensure_ascii=False, escape_forward_slashes=False) + "}"


def last_session_start(events: Sequence[Dict[Text, Any]]) -> int:
    """Where the last session starts in stored events (Rasa's split: at ``action_session_start``)."""
    for i in range(len(events) - 1, -1, -1):
        if events[i].get("event") == "action" and events[i].get("name") == ACTION_SESSION_START_NAME:
            return i
    return 0


def starts_with(live: Sequence[Any], stored: Sequence[Dict[Text, Any]]) -> bool:
    """The turn's tracker begins with the stored last session (same types and timestamps)."""
    if len(stored) > len(live):
        return False
    return all(d.get("timestamp") == e.timestamp and d.get("event") == e.type_name for d, e in zip(stored, live))


def slots_set_by(events: Sequence[Dict[Text, Any]]) -> Dict[Text, Any]:
    """Slot values the stored events leave behind (restarts and resets clear them)."""
    values: Dict[Text, Any] = {}
    for e in events:
        if e.get("event") == "slot":
            values[e.get("name")] = e.get("value")
        elif e.get("event") in ("restart", "reset_slots"):
            values.clear()
    return values


def compact(tracker: DialogueStateTracker, live: List[Any], after: int, keep: int) -> Optional[List[Any]]:
    """The last session as its start, a snapshot of the state and its last ``keep`` user
    turns, once it holds more than ``after`` turns (``None`` otherwise, or ``after`` 0)."""
    if after <= 0:
        return None
    users = [i for i, e in enumerate(live) if isinstance(e, UserUttered)]
    if len(users) <= max(after, keep):
        return None
    start = users[-keep]
    if start > 0 and isinstance(live[start - 1], ActionExecuted) and live[start - 1].action_name == ACTION_LISTEN_NAME:
        start -= 1
    session_start = [e for e in live[:start] if isinstance(e, ActionExecuted)
                     and e.action_name == ACTION_SESSION_START_NAME][-1:]
    session_started = [e for e in live[:start] if isinstance(e, SessionStarted)][-1:]
    if not session_start or not session_started:
        return None
    past = tracker.init_copy()
    past.events.extend(live[:start])
    past.replay_events()
    ts = live[start].timestamp - 1e-6
    snapshot: List[Any] = [SlotSet(name, slot.value, timestamp=ts) for name, slot in past.slots.items()
                           if slot.value != slot.initial_value]
    if past.active_loop_name:
        snapshot.append(ActiveLoop(past.active_loop_name, timestamp=ts))
    return session_start + session_started + snapshot + live[start:]


def _last_session(tracker: Optional[DialogueStateTracker]) -> Optional[DialogueStateTracker]:
    if tracker is None:
        return None
    sessions = get_trackers_for_conversation_sessions(tracker)
    return sessions[-1] if len(sessions) > 1 else tracker
