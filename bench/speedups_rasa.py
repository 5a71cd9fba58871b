"""The Rasa-process side of :mod:`bench.speedups` (loaded by Rasa through the endpoints
file the benchmark writes; see that module for what each speedup does)."""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Text

from bench.speedups import enabled, last_session_start, prefix_slots, same_events

logger = logging.getLogger(__name__)


try:  # Rasa and the infra stores (the Rasa process; unit tests import the pure helpers)
    from infra.event_broker import BufferedSQLEventBroker
    from infra.errors import languages
    from infra.tracker_store import ResilientRedisTrackerStore
except Exception:  # noqa: BLE001 - the harness imports this module without Rasa's stores
    ResilientRedisTrackerStore = object  # type: ignore[misc,assignment]
    BufferedSQLEventBroker = object  # type: ignore[misc,assignment]
    languages = None  # type: ignore[assignment]


def compact(tracker: Any, live: List[Any]) -> Optional[List[Any]]:
    """The last session cut down to its start, a snapshot of the state, and the last
    ``BENCH_COMPACT_KEEP_TURNS`` (8) user turns -- once it holds more than
    ``BENCH_COMPACT_AFTER_TURNS`` (24); ``None`` while it is shorter.

    [action_session_start, session_started, SlotSet(every slot not at its initial value),
    ActiveLoop(the active form)] + the events from the ``action_listen`` before the kept turns.
    Policies (Memoization max_history 5, rules a few turns long) and our actions (the last
    two turns at most) see the same recent history; the snapshot carries the rest.
    """
    from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
    from rasa.shared.core.events import ActionExecuted, ActiveLoop, SessionStarted, SlotSet, UserUttered

    after = int(os.environ.get("BENCH_COMPACT_AFTER_TURNS") or 24)
    keep = max(2, int(os.environ.get("BENCH_COMPACT_KEEP_TURNS") or 8))
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


class SpeedupTrackerStore(ResilientRedisTrackerStore):  # type: ignore[misc,valid-type]
    """``ResilientRedisTrackerStore`` with the ``merge`` speedup (when enabled)."""

    async def save(self, tracker: Any, timeout: Optional[float] = None) -> None:
        chosen = enabled()
        if "merge" not in chosen and "compact" not in chosen:
            return await super().save(tracker, timeout)
        key = self.key_prefix + tracker.sender_id
        stored = await self.redis.call(lambda r: r.get(key))
        live = list(tracker.events)
        prefix: List[Dict[Text, Any]] = []
        new_events = live
        if stored is not None:
            raw = _loads(stored).get("events") or []
            split = last_session_start(raw)
            last = raw[split:]
            if not same_events(last, live):  # changed under us: Rasa's general merge
                return await super().save(tracker, timeout)
            prefix, new_events = raw[:split], live[len(last):]
        body = None
        if "compact" in chosen:
            compacted = compact(tracker, live)
            if compacted is not None:  # older sessions and old turns are in PostgreSQL (event broker)
                body = [e.as_dict() for e in compacted]
        if body is None:
            body = prefix + [e.as_dict() for e in live]
        serialised = _dumps({"events": body, "name": tracker.sender_id})
        expiry = timeout or self.record_exp
        await self.redis.call(lambda r: r.set(key, serialised, ex=int(expiry) if expiry else None))
        languages.remember(tracker.sender_id, tracker.get_slot("language"))
        if self.event_broker is not None and new_events:
            await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)

    async def _retrieve(self, sender_id: Text, fetch_all_sessions: bool) -> Any:
        if ("merge" not in enabled() and "compact" not in enabled()) or fetch_all_sessions:
            return await super()._retrieve(sender_id, fetch_all_sessions)
        stored = await self.redis.call(lambda r: r.get(self.key_prefix + sender_id))
        if stored is None:
            return None
        from rasa.shared.core.conversation import Dialogue

        raw = _loads(stored)
        events = raw.get("events") or []
        split = last_session_start(events)
        last = Dialogue.from_parameters({"name": sender_id, "events": events[split:]}).events
        tracker = self.init_tracker(sender_id)
        if split == 0:  # one session: exactly Rasa's deserialisation
            tracker.recreate_from_dialogue(Dialogue(sender_id, last))
        else:  # Rasa's last-session tracker: slots as the history left them, then the session
            carried = prefix_slots(events[:split])
            carried.pop("__reset__", None)
            for name, value in carried.items():
                if name in tracker.slots:
                    tracker.slots[name].value = value
            from rasa.shared.core.trackers import DialogueStateTracker

            tracker = DialogueStateTracker.from_events(sender_id, last, list(tracker.slots.values()),
                                                       max_event_history=tracker._max_event_history)
        languages.remember(sender_id, tracker.get_slot("language"))
        return tracker


# --------------------------------------------------------------------------- broker
class LazyFlushBroker(BufferedSQLEventBroker):  # type: ignore[misc,valid-type]
    """Spool on publish as before, but let the flusher run on its timer (``flush_interval``,
    1 s here) instead of waking it after every turn."""

    def publish_many(self, events: List[Dict[Text, Any]]) -> None:
        from infra.event_broker import event_key

        rows = []
        for event in events:
            try:
                rows.append((event_key(event), event.get("sender_id"), json.dumps(event)))
            except Exception:  # noqa: BLE001
                logger.exception("event could not be serialised; dropped")
        if not rows:
            return
        try:
            self._drain_memory()
            self.spool.append(rows)
        except Exception:  # noqa: BLE001
            logger.exception("could not write the event spool; keeping %d event(s) in memory", len(rows))
            with self._memory_lock:
                self._memory.extend(rows)

    @classmethod
    async def from_endpoint_config(cls, broker_config: Any, event_loop: Any = None) -> "LazyFlushBroker":
        broker_config.kwargs.setdefault("flush_interval", 1.0)
        return await super().from_endpoint_config(broker_config, event_loop)


# --------------------------------------------------------------------------- process patches
def _patch_schema() -> None:
    from jsonschema import ValidationError
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)  # once
    validator = cls(schema)

    def _validate_action_result(self: Any, result: Dict[Text, Any]) -> bool:
        try:
            validator.validate(result)
            return True
        except ValidationError as e:
            e.message += (". Failed to validate Action server response from API, make sure your response from "
                          f"the Action endpoint is valid. For more information about the format visit "
                          f"{DOCS_BASE_URL}/custom-actions")
            raise e

    RemoteAction._validate_action_result = _validate_action_result


def _patch_events() -> None:
    import rasa.shared.utils.common
    from rasa.shared.core.events import Event

    cache: Dict[Text, Any] = {}
    original = Event.resolve_by_type.__func__ if hasattr(Event.resolve_by_type, "__func__") else Event.resolve_by_type

    def resolve_by_type(type_name: Text, default: Optional[Any] = None) -> Optional[Any]:
        cls = cache.get(type_name)
        if cls is None:
            for candidate in rasa.shared.utils.common.all_subclasses(Event):
                cache.setdefault(candidate.type_name, candidate)
            cls = cache.get(type_name)
        if cls is not None:
            return cls
        return original(type_name, default)

    Event.resolve_by_type = staticmethod(resolve_by_type)


def _patch_window(turns: int) -> None:
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import EventVerbosity

    original = RemoteAction._action_call_format

    def _action_call_format(self: Any, tracker: Any, domain: Any) -> Dict[Text, Any]:
        events = tracker.events
        seen, start = 0, 0
        for i in range(len(events) - 1, -1, -1):
            if isinstance(events[i], UserUttered):
                seen += 1
                if seen >= turns:
                    start = i
                    break
        if start == 0:
            return original(self, tracker, domain)
        state = tracker.current_state(EventVerbosity.NONE)
        state["events"] = [e.as_dict() for e in list(events)[start:]]
        result = {"next_action": self._name, "sender_id": tracker.sender_id, "tracker": state,
                  "version": __import__("rasa").__version__}
        if not self._is_selective_domain_enabled() or domain.does_custom_action_explicitly_need_domain(self.name()):
            result["domain"] = domain.as_dict()
        return result

    RemoteAction._action_call_format = _action_call_format


def _patch_connector() -> None:
    import importlib

    from rasa.core.processor import MessageProcessor

    from connectors import common, timing

    original_save = MessageProcessor.save_tracker

    async def save_tracker(self: Any, tracker: Any) -> None:
        await original_save(self, tracker)
        timer = timing.current_timer()
        if timer is not None:
            timer.tracker = tracker  # type: ignore[attr-defined]

    MessageProcessor.save_tracker = save_tracker
    read = common.read_conversation

    async def read_conversation(app: Any, sender_id: Text) -> Any:
        timer = timing.current_timer()
        tracker = getattr(timer, "tracker", None) if timer is not None else None
        if tracker is not None and getattr(tracker, "sender_id", None) == sender_id:
            return common.view_of(tracker)
        return await read(app, sender_id)

    for name in ("connectors.base", "connectors.twilio_sms", "connectors.twilio_voice"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if getattr(module, "read_conversation", None) is read:
            module.read_conversation = read_conversation


def _dumps(value: Any) -> str:
    if "json" in enabled():
        import ujson

        return ujson.dumps(value, ensure_ascii=False, escape_forward_slashes=False)
    return json.dumps(value)


def _loads(raw: Any) -> Any:
    if "json" in enabled():
        import ujson

        return ujson.loads(raw)
    return json.loads(raw)


def _patch_pool() -> None:
    """One aiohttp session (keep-alive connection pool) per event loop for the action
    endpoint, instead of a new session -- and a new TCP connection -- per action call.
    Idle connections are dropped after 3 s, before the action server's Sanic closes them
    (its keep-alive timeout is 5 s), so a request never goes out on a closing connection."""
    import asyncio

    import aiohttp
    from aiohttp import ContentTypeError
    from rasa.core.actions.action import RemoteAction
    from rasa.utils.endpoints import ClientResponseError, DEFAULT_REQUEST_TIMEOUT, concat_url

    sessions: Dict[int, Any] = {}

    def shared_session() -> Any:
        loop = asyncio.get_running_loop()
        session = sessions.get(id(loop))
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=200, keepalive_timeout=3.0)
            session = aiohttp.ClientSession(connector=connector,
                                            timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT))
            sessions[id(loop)] = session
        return session

    original_run = RemoteAction.run

    async def request(endpoint: Any, method: Text = "post", subpath: Optional[Text] = None,
                      content_type: Optional[Text] = "application/json", compress: bool = False,
                      **kwargs: Any) -> Any:
        headers = {"Content-Type": content_type} if content_type else {}
        headers.update(kwargs.pop("headers", None) or {})
        headers.update(endpoint.headers or {})
        if endpoint.basic_auth:
            kwargs["auth"] = aiohttp.BasicAuth(endpoint.basic_auth["username"], endpoint.basic_auth["password"])
        if "json" in kwargs:
            kwargs["data"] = _dumps(kwargs.pop("json")).encode("utf-8")
        async with shared_session().request(method, concat_url(endpoint.url, subpath), headers=headers,
                                            params=endpoint.combine_parameters(kwargs), compress=compress,
                                            **kwargs) as response:
            if response.status >= 400:
                raise ClientResponseError(response.status, response.reason, await response.content.read())
            try:
                return await response.json(loads=_loads)
            except ContentTypeError:
                return None

    async def run(self: Any, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> Any:
        endpoint = self.action_endpoint
        if endpoint is not None and not endpoint.cafile and not getattr(endpoint, "_bench_pooled", False):
            endpoint.request = request.__get__(endpoint)  # this endpoint object only
            endpoint._bench_pooled = True
        return await original_run(self, output_channel, nlg, tracker, domain)

    RemoteAction.run = run


def apply() -> List[str]:
    chosen = enabled()
    if "schema" in chosen:
        _patch_schema()
    if "events" in chosen:
        _patch_events()
    if "window" in chosen:
        _patch_window(max(2, int(os.environ.get("BENCH_ACTION_EVENTS_TURNS") or 10)))
    if "connector" in chosen:
        _patch_connector()
    if "pool" in chosen:
        _patch_pool()
    if chosen:
        logger.info("bench speedups: %s", ", ".join(chosen))
    return chosen


if ResilientRedisTrackerStore is not object:  # imported by Rasa through the endpoints file
    apply()
