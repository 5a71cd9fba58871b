"""Conversation trackers in Redis, for production (``endpoints.prod.yml``)::

    tracker_store:
      type: infra.tracker_store.ResilientRedisTrackerStore
      url: ${REDIS_HOST}          # plus port, db, password, use_ssl
      key_prefix: ${REDIS_KEY_PREFIX}
      record_exp: ${TRACKER_EXPIRY_SECONDS}   # sliding expiry since the last turn
      # optional: outbox_sweep_interval (20 s; 0: this process never sweeps), outbox_grace (30 s)

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
  first), so the events table never holds a turn the tracker does not -- and none is lost
  when the process dies in between (a SIGKILL mid-load): the write that stores the tracker
  also stores the turn's new events in an **outbox** in Redis, atomically (one Lua script,
  one round trip): the hash ``<prefix>:event_outbox``, field ``<ms since epoch>:<random>:<sender
  id>``, value the JSON list of the event bodies the broker gets. Once the broker has them on
  disk (its fsync'ed spool, :mod:`infra.event_broker`) the field is removed, batched (below).
  Every process sweeps the outbox every ``outbox_sweep_interval`` seconds (20): entries older
  than ``outbox_grace`` (30 s; a live process removes its own within a second) are published
  through its own broker, then removed -- a killed process's last turn reaches PostgreSQL
  through the survivors. Published twice (the process died after the spool write, before the
  removal) is harmless: the spool and the ``events`` table keep one row per event key.
  Without an event broker there is no outbox.
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
import json
import logging
import random
import secrets
import time
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
from infra.event_broker import SpoolRow, spool_rows
from infra.redis_client import ResilientRedis

logger = logging.getLogger(__name__)

OUTBOX_SWEEP_INTERVAL = 20.0  # seconds between two sweeps of the outbox by one process (0: never)
OUTBOX_GRACE = 30.0  # seconds an outbox entry is left to the process that wrote it
OUTBOX_REMOVE_DELAY = 0.1  # seconds delivered entries wait, so the turns of that moment share one HDEL


def outbox_key(key_prefix: Optional[Text]) -> Text:
    """The outbox hash of a store with that ``key_prefix`` (beside, not among, its tracker keys)."""
    return f"{key_prefix}:event_outbox" if key_prefix else "event_outbox"


class _Outgoing:
    """A turn's new events on their way to the broker: its outbox field and value, and the
    bodies serialised once (``rows``: the spool's rows; ``value``: the same JSON texts)."""

    __slots__ = ("field", "bodies", "rows", "value")

    def __init__(self, sender_id: Text, bodies: List[Dict[Text, Any]]) -> None:
        self.field = f"{int(time.time() * 1000)}:{secrets.token_hex(4)}:{sender_id}"
        self.bodies = bodies
        self.rows = spool_rows(bodies)
        self.value = "[" + ",".join(row[2] for row in self.rows) + "]"


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
        outbox_sweep_interval: Any = None,
        outbox_grace: Any = None,
        **kwargs: Any,
    ) -> None:
        if "failsafe" not in rasa_patches.installed():
            logger.warning("Rasa is not patched (start it with `python -m infra.rasa_main run ...`): when Redis "
                           "is down, Rasa will answer from an empty conversation instead of apologising.")
        self.compact_after = as_int(compact_after_turns, 24)
        self.compact_keep = max(2, as_int(compact_keep_turns, 8))
        self.outbox_key = outbox_key(key_prefix or None)
        self.outbox_sweep_interval = as_float(outbox_sweep_interval, OUTBOX_SWEEP_INTERVAL)
        self.outbox_grace = max(0.0, as_float(outbox_grace, OUTBOX_GRACE))
        self._sweeper: Optional[asyncio.Task] = None
        self._remover: Optional[asyncio.Task] = None
        self._delivered: List[Text] = []  # outbox fields whose events are spooled, to remove
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
        self._start_sweeper()
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
        dicts = [e.as_dict() for e in new_events]  # once, for the tracker text and the broker
        added = ",".join(ujson.dumps(d, ensure_ascii=False, escape_forward_slashes=False) for d in dicts)
        head = stored[:-len(tail)]
        serialised = head + ("," if added and not head.endswith("[") else "") + added + tail
        was = stored.encode("utf-8")
        expiry = timeout or self.record_exp
        outgoing = self._outgoing(tracker.sender_id, dicts)
        field, value = (outgoing.field, outgoing.value) if outgoing else ("", "")
        written = await self.redis.call(lambda r: r.eval(
            SET_IF_UNCHANGED, 2, key, self.outbox_key, serialised, len(was), was[-_GUARD_BYTES:],
            int(expiry) if expiry else 0, field, value))
        if not int(written):
            return False
        await self._after_write(tracker, outgoing)
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
        """The tracker and its new events' outbox entry into Redis (one script: both or
        neither), then (only then) the new events to the event broker."""
        expiry = timeout or self.record_exp
        outgoing = self._outgoing(tracker.sender_id, [e.as_dict() for e in new_events]) \
            if self.event_broker is not None else None
        if outgoing is None:
            await self.redis.call(lambda r: r.set(key, serialised, ex=int(expiry) if expiry else None))
        else:
            await self.redis.call(lambda r: r.eval(SET_WITH_OUTBOX, 2, key, self.outbox_key, serialised,
                                                   int(expiry) if expiry else 0, outgoing.field, outgoing.value))
        await self._after_write(tracker, outgoing)

    def _outgoing(self, sender_id: Text, dicts: List[Dict[Text, Any]]) -> Optional[_Outgoing]:
        """The turn's event bodies as Rasa publishes them (``sender_id`` + the event), or
        ``None`` when there is nothing to deliver (no broker, no new event): no outbox entry."""
        if self.event_broker is None or not dicts:
            return None
        return _Outgoing(sender_id, [{"sender_id": sender_id, **d} for d in dicts])

    async def _after_write(self, tracker: DialogueStateTracker, outgoing: Optional[_Outgoing]) -> None:
        languages.remember(tracker.sender_id, tracker.get_slot("language"))
        if outgoing is not None and await self._deliver(outgoing.bodies, outgoing.rows):
            self._remove_from_outbox([outgoing.field])

    async def _deliver(self, bodies: List[Dict[Text, Any]], rows: List[SpoolRow]) -> bool:
        """Hand events to the broker: one ``publish_rows`` (:class:`~infra.event_broker.
        BufferedSQLEventBroker`: the rows serialised once, one fsync) off the event loop, else
        ``publish_many`` or ``publish``. ``True`` once they are safe (on disk): their outbox
        entry may go."""
        broker = self.event_broker
        loop = asyncio.get_running_loop()
        publish_rows = getattr(broker, "publish_rows", None)
        if callable(publish_rows):  # an fsync'ed spool write: not on the event loop
            return bool(await loop.run_in_executor(None, publish_rows, rows))
        publish_many = getattr(broker, "publish_many", None)
        if callable(publish_many):
            await loop.run_in_executor(None, publish_many, bodies)
        else:
            for body in bodies:
                broker.publish(body)
        return True

    # ------------------------------------------------------------------ outbox
    def _remove_from_outbox(self, fields: List[Text]) -> None:
        """Remove delivered entries soon, off the turn's path: the fields collected while one
        task waits and runs its HDEL go into the next one, so busy moments share a command
        (piggy-backing them on the next save's script would leave a quiet process's entries
        to the other processes' sweeps, published twice)."""
        self._delivered.extend(fields)
        if self._remover is None or self._remover.done():
            self._remover = asyncio.get_running_loop().create_task(self._remove_delivered())

    async def _remove_delivered(self) -> None:
        while self._delivered:
            await asyncio.sleep(OUTBOX_REMOVE_DELAY)
            fields, self._delivered = self._delivered, []
            try:
                await self.redis.call(lambda r: r.hdel(self.outbox_key, *fields))
            except Exception as exc:  # noqa: BLE001 - left in the outbox: a sweep publishes them again (kept once)
                logger.warning("could not remove %d delivered outbox entr(ies): %s", len(fields), type(exc).__name__)

    def _start_sweeper(self) -> None:
        """The periodic sweep, started by the first save on this event loop (never waited for)."""
        if self.event_broker is None or self.outbox_sweep_interval <= 0:
            return
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:  # jittered, so the processes' sweeps spread out
            await asyncio.sleep(self.outbox_sweep_interval * random.uniform(0.75, 1.25))
            try:
                swept = await self.sweep_outbox()
                if swept:
                    logger.warning("outbox: %d turn(s) of events published for a process that did not", swept)
            except Exception as exc:  # noqa: BLE001 - Redis or the disk down: the next sweep tries again
                logger.warning("outbox sweep failed: %s", type(exc).__name__)

    async def sweep_outbox(self) -> int:
        """Publish the outbox entries older than ``outbox_grace`` (their writer died before its
        broker had them) through this process's broker, then remove them; how many."""
        if self.event_broker is None:
            return 0
        key, cutoff = self.outbox_key, (time.time() - self.outbox_grace) * 1000

        async def scan(r: Any) -> List[Any]:
            return [item async for item in r.hscan_iter(key, count=500)]

        due, bodies = [], []
        for field, value in await self.redis.call(scan):
            try:
                if int(field.split(":", 1)[0]) > cutoff:
                    continue
                turn = json.loads(value)
                if not isinstance(turn, list) or not all(isinstance(body, dict) for body in turn):
                    raise ValueError(field)
                bodies.extend(turn)
            except (ValueError, TypeError):  # not ours: dropped, not published
                logger.warning("outbox: unreadable entry %r removed", field[:40])
            due.append(field)
        if not due:
            return 0
        if bodies and not await self._deliver(bodies, spool_rows(bodies)):
            return 0  # the spool is failing: kept for the next sweep
        await self.redis.call(lambda r: r.hdel(key, *due))
        return len(due)

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
# timestamp is among them): then write the new text and the turn's outbox entry. KEYS: the
# tracker, the outbox; ARGV: text, length, last bytes, expiry in seconds (0: none), outbox
# field ('': no entry) and value. 1 when written.
SET_IF_UNCHANGED = """
if redis.call('STRLEN', KEYS[1]) ~= tonumber(ARGV[2]) then return 0 end
if redis.call('GETRANGE', KEYS[1], -string.len(ARGV[3]), -1) ~= ARGV[3] then return 0 end
if tonumber(ARGV[4]) > 0 then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
else redis.call('SET', KEYS[1], ARGV[1]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], ARGV[5], ARGV[6]) end
return 1
"""
# The tracker and the turn's outbox entry, together. KEYS: the tracker, the outbox; ARGV:
# text, expiry in seconds (0: none), outbox field and value.
SET_WITH_OUTBOX = """
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
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
