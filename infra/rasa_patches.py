"""Every patch of Rasa's internals, in one place, installed by :func:`install` (issue 12).

Written for Rasa 3.6.21, the version ``requirements.lock`` pins: several patches replace
private methods with code adapted from that version. ``install()`` refuses any other
version (:class:`UnsupportedRasa`, nothing patched) -- a start that stops and names this
file is safer than copies of old Rasa code running silently inside a new one.

Every Rasa process gets them the same way, through one launcher, ``python -m
infra.rasa_main <rasa arguments>`` (:mod:`infra.rasa_main`): ``make run``, ``make
run-prod``, the Docker image, ``make shell`` / ``interactive`` / ``test-stories``, the
benchmark and the tests' servers. A Rasa started otherwise (plain ``rasa run``) serves
without them; the Twilio channels and the Redis tracker store then log a warning.

Fixes (always installed):

``failsafe``  Rasa wraps every tracker store in ``FailSafeTrackerStore``, which swallows
              errors and carries on with an EMPTY tracker (the learner greeted as a
              stranger, the turn saved nowhere). :class:`infra.errors.StoreUnavailable`
              -- and only it -- goes through, so the turn stops and the channel apologises
              (:mod:`infra.tracker_store`, :mod:`infra.rest_channel`).
``timing``    ``MessageProcessor``'s ``parse_message``, ``predict_next_with_tracker_if_should``,
              ``_run_action`` and ``run_action_extract_slots`` add their elapsed time to
              the turn in :data:`measured_turn` (its ``nlu``, ``policy``, ``actions``), and
              ``save_tracker`` hands it the saved tracker (its ``tracker``), so the Twilio
              channels log where a turn's time went and read the learner's language without
              a second read of the store (:mod:`connectors.timing`). Outside a measured turn
              (the REST channel, the HTTP API) the cost is one ``ContextVar`` lookup.

Speed-ups (issue 6, measured with ``make bench``: docs/benchmarks.md), selected by
``RASA_SPEEDUPS`` (default ``schema,events,pool,window,slotmap,nlucache,applied,states,askskip,gcfreeze,fastload``;
empty: none):

``schema``  Rasa validates every action server answer with ``jsonschema.validate``, which
            first validates the *schema itself* against the JSON-Schema meta-schema: about
            a quarter of Rasa's CPU per turn. Here a validator is compiled once.
``events``  ``Event.resolve_by_type`` walks every subclass of ``Event`` (with ``inspect``)
            for each event it deserialises; here a dict lookup.
``pool``    Rasa opens a new aiohttp session -- a new TCP connection -- for every action
            call (three per turn). Here one keep-alive pool per event loop; idle
            connections are dropped after 3 s, before the action server's Sanic closes
            them (keep-alive timeout 5 s). The body is encoded with ujson.
``window``  the action server receives the events of the last ``ACTION_EVENTS_TURNS`` (3)
            user turns instead of the whole conversation (slots, active loop, latest
            message and latest action are still sent in full). Our actions read at most
            the last two turns of events (``actions/conversation.py``, ``onboarding.py``).
            ``ACTION_EVENTS_TURNS=0`` sends everything, as Rasa does.

Speed-ups of issue 16 (same selection; measured with ``make bench-ratio``: docs/benchmarks.md):

``slotmap``   the custom slot mapping of ``language`` / ``language_locked``
              (``action_detect_language`` in domain.yml) is decided in the Rasa process by
              the function the action server's action runs (:mod:`core.language_slots`),
              over the language the NLU pipeline detected: one action-server round trip
              per turn fewer. Other custom mappings still call the action server.
``nlucache``  the NLU result of a learner's message is kept per Rasa process (an LRU of
              ``NLU_CACHE_SIZE`` (4096) texts of at most ``NLU_CACHE_MAX_CHARS`` (200)
              characters): the same text parses the same -- Rasa 3.6's NLU reads only the
              message, never the conversation -- so "yes", "2", "stop" from a class of
              learners pass DIET once. Each hit is a fresh copy. ``POST /model/parse`` (no
              conversation) is never cached: it stays the NLU floor ``make bench`` measures.
``applied``   ``DialogueStateTracker.applied_events`` (the events minus reverted ones and
              finished loop turns) is recomputed from the first event each time it is asked
              -- by each policy's featurisation, the session check, the tracker store: about
              a sixth of Rasa's CPU per turn, more as a form runs (each loop execution copies
              the list). Here each tracker remembers its result and, when events were only
              appended since (and named no new loop), continues from it with Rasa's own loop
              body. Callers get a new list each time, as before.
``states``    ``DialogueStateTracker.past_states`` (the policies' featurisation) replays every
              applied event into a fresh tracker and builds the state at each action:
              RulePolicy (once or twice) and MemoizationPolicy each did it for every
              prediction. Here each tracker remembers the replay -- the states at each
              action and the replayed tracker -- per domain and ``omit_unset_slots``, and
              continues it when its applied events only grew; the rule-only filtering (which
              differs between the policies) runs on copies with Rasa's own loop, so every
              caller gets new states, as before.
``askskip``   the tutor form's ask (``action_ask_answer``) only clears a mark in
              ``tutor_state`` when the graded reply already presented the next question --
              almost every form turn. That case is decided in Rasa by the function the
              action server's action runs (:mod:`core.form_ask`): one action-server round
              trip per form turn fewer. Otherwise (the question has to be said) the action
              server is called as before.
``gcfreeze``  once the model is loaded, everything alive is moved out of the cyclic garbage
              collector's sight (``gc.freeze()``): Rasa with TensorFlow holds millions of
              objects, and every full collection -- triggered by the allocations of ordinary
              turns -- walked all of them; a turn that allocates more (a Twilio turn: form
              parsing, channel state, TwiML) paid for it more often. Frozen objects are still
              freed by reference counting; a model replaced at run time (``PUT /model``) keeps
              the old one's reference cycles, so restart the process instead.
``fastload``  loading a model: Rasa builds DIET's weights by training one step on one
              example before it loads the trained weights, and traced that step -- a
              training graph with gradients -- for 70 of the 77 s a Rasa process took to
              start on a slow machine. Here that one step runs eagerly (the same variables,
              no graph); predictions run in graph mode as before, traced by Rasa's own
              warm-up prediction. Faster starts for every Rasa process: a scaled-out
              process that was killed, ``make run``, the tests' servers, ``rasa test``.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import json
import logging
import operator
import os
import pickle
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Text

from core.config import as_int, env

logger = logging.getLogger(__name__)

RASA_VERSION = "3.6.21"
FIXES = ("failsafe", "timing")
SPEEDUPS = ("schema", "events", "pool", "window", "slotmap", "nlucache", "applied", "states", "askskip", "gcfreeze",
            "fastload")

# The turn being measured (the Twilio channels set a connectors.timing.TurnTimer): any object
# with float attributes nlu, policy, actions and a tracker attribute. Lives here, not in
# connectors/, because infra must not import connectors.
measured_turn: "contextvars.ContextVar[Optional[Any]]" = contextvars.ContextVar("bakame_turn_timer", default=None)

_installed: List[Text] = []


class UnsupportedRasa(RuntimeError):
    """The installed Rasa is not the one these patches were written for."""


def check_version(version: Optional[Text] = None) -> None:
    """Raise :class:`UnsupportedRasa` unless Rasa is :data:`RASA_VERSION`."""
    if version is None:
        import rasa

        version = rasa.__version__
    if version != RASA_VERSION:
        raise UnsupportedRasa(
            f"infra/rasa_patches.py was written for Rasa {RASA_VERSION} and this is Rasa {version}: "
            f"nothing was patched. Check each patch against Rasa {version}, then change RASA_VERSION."
        )


def install() -> List[Text]:
    """Install the fixes and the chosen speed-ups once per process; the names installed.

    Raises :class:`UnsupportedRasa` (and patches nothing) on another Rasa version."""
    if _installed:
        return list(_installed)
    check_version()
    for name in selected():
        patch = _PATCHES[name]
        try:
            patch()
            _installed.append(name)
        except Exception:  # noqa: BLE001 - a patch that fails must not stop Rasa from serving
            logger.exception("Rasa patch %r not installed", name)
    logger.info("Rasa %s patched: %s", RASA_VERSION, ", ".join(_installed) or "nothing")
    return list(_installed)


def installed() -> List[Text]:
    """The names :func:`install` installed in this process (empty: Rasa is unpatched)."""
    return list(_installed)


def selected() -> List[Text]:
    """What :func:`install` installs: the fixes, then the ``RASA_SPEEDUPS`` speed-ups (all of
    them when it is unset, none when empty), each once, unknown names left out (logged)."""
    names: List[Text] = []
    chosen = [s.strip() for s in os.environ.get("RASA_SPEEDUPS", ",".join(SPEEDUPS)).split(",") if s.strip()]
    for name in FIXES + tuple(chosen):
        if name in names:  # named twice: wrapped once
            continue
        if name not in _PATCHES:
            logger.warning("unknown RASA_SPEEDUPS entry %r ignored", name)
            continue
        names.append(name)
    return names


# --------------------------------------------------------------------------- fixes
def _failsafe() -> None:
    from rasa.core.tracker_store import FailSafeTrackerStore

    from infra.errors import StoreUnavailable

    on_error = FailSafeTrackerStore.on_tracker_store_error
    on_retrieve_error = FailSafeTrackerStore.on_tracker_store_retrieve_error

    def on_tracker_store_error(self: Any, error: Exception) -> None:
        if isinstance(error, StoreUnavailable):
            raise error
        on_error(self, error)

    def on_tracker_store_retrieve_error(self: Any, error: Exception) -> None:
        if isinstance(error, StoreUnavailable):
            raise error
        on_retrieve_error(self, error)

    FailSafeTrackerStore.on_tracker_store_error = on_tracker_store_error
    FailSafeTrackerStore.on_tracker_store_retrieve_error = on_tracker_store_retrieve_error


_TIMED = (  # MessageProcessor method, the turn's attribute it adds to, async
    ("parse_message", "nlu", True),
    ("predict_next_with_tracker_if_should", "policy", False),
    ("_run_action", "actions", True),
    ("run_action_extract_slots", "actions", True),
)


def _timed(original: Callable, bucket: Text, is_async: bool) -> Callable:
    if is_async:
        @functools.wraps(original)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            turn = measured_turn.get()
            if turn is None:
                return await original(*args, **kwargs)
            start = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                setattr(turn, bucket, getattr(turn, bucket) + time.perf_counter() - start)
    else:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            turn = measured_turn.get()
            if turn is None:
                return original(*args, **kwargs)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                setattr(turn, bucket, getattr(turn, bucket) + time.perf_counter() - start)

    wrapper.__bakame_timed__ = True  # type: ignore[attr-defined]
    return wrapper


def _keeps_saved_tracker(original: Callable) -> Callable:
    @functools.wraps(original)
    async def wrapper(self: Any, tracker: Any, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, tracker, *args, **kwargs)
        turn = measured_turn.get()
        if turn is not None:
            turn.tracker = tracker
        return result

    wrapper.__bakame_timed__ = True  # type: ignore[attr-defined]
    return wrapper


def instrument_processor(processor_class: Any = None) -> bool:
    """The ``timing`` fix on ``processor_class`` (Rasa's ``MessageProcessor`` by default),
    each method wrapped once; ``False`` when one of the methods is missing."""
    if processor_class is None:
        from rasa.core.processor import MessageProcessor as processor_class  # noqa: N813
    complete = True
    for name, bucket, is_async in _TIMED:
        original = getattr(processor_class, name, None)
        if original is None:
            logger.warning("MessageProcessor.%s not found; its time is not split out of the turn.", name)
            complete = False
        elif not getattr(original, "__bakame_timed__", False):
            setattr(processor_class, name, _timed(original, bucket, is_async))
    save = getattr(processor_class, "save_tracker", None)
    if save is not None and not getattr(save, "__bakame_timed__", False):
        processor_class.save_tracker = _keeps_saved_tracker(save)
    return complete


def _timing() -> None:
    if not instrument_processor():
        raise RuntimeError("MessageProcessor is not laid out as in Rasa 3.6.21")


# --------------------------------------------------------------------------- speed-ups
def _schema() -> None:
    from jsonschema import ValidationError
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)

    def _validate_action_result(self: Any, result: Dict[Text, Any]) -> bool:
        try:
            validator.validate(result)
            return True
        except ValidationError as e:
            e.message += (
                ". Failed to validate Action server response from API, make sure your response from the Action "
                f"endpoint is valid. For more information about the format visit {DOCS_BASE_URL}/custom-actions"
            )
            raise e

    RemoteAction._validate_action_result = _validate_action_result


def _events() -> None:
    import rasa.shared.utils.common
    from rasa.shared.core.events import Event

    by_name: Dict[Text, Any] = {}
    original = Event.resolve_by_type

    def resolve_by_type(type_name: Text, default: Optional[Any] = None) -> Optional[Any]:
        cls = by_name.get(type_name)
        if cls is None:
            for candidate in rasa.shared.utils.common.all_subclasses(Event):
                by_name.setdefault(candidate.type_name, candidate)
            cls = by_name.get(type_name)
        return cls if cls is not None else original(type_name, default)

    Event.resolve_by_type = staticmethod(resolve_by_type)


def _pool() -> None:
    import aiohttp
    import ujson
    from aiohttp import ContentTypeError
    from rasa.core.actions.action import RemoteAction
    from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, ClientResponseError, concat_url

    sessions: Dict[int, aiohttp.ClientSession] = {}

    def shared_session() -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = sessions.get(id(loop))
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=200, keepalive_timeout=3.0),
                timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            )
            sessions[id(loop)] = session
        return session

    async def request(endpoint: Any, method: Text = "post", subpath: Optional[Text] = None,
                      content_type: Optional[Text] = "application/json", compress: bool = False,
                      **kwargs: Any) -> Any:
        headers = {"Content-Type": content_type} if content_type else {}
        headers.update(kwargs.pop("headers", None) or {})
        headers.update(endpoint.headers or {})
        if endpoint.basic_auth:
            kwargs["auth"] = aiohttp.BasicAuth(endpoint.basic_auth["username"], endpoint.basic_auth["password"])
        if "json" in kwargs:
            kwargs["data"] = ujson.dumps(kwargs.pop("json"), ensure_ascii=False,
                                         escape_forward_slashes=False).encode("utf-8")
        async with shared_session().request(method, concat_url(endpoint.url, subpath), headers=headers,
                                            params=endpoint.combine_parameters(kwargs), compress=compress,
                                            **kwargs) as response:
            if response.status >= 400:
                raise ClientResponseError(response.status, response.reason, await response.content.read())
            try:
                return await response.json(loads=ujson.loads)
            except ContentTypeError:
                return None

    original_run = RemoteAction.run

    async def run(self: Any, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> Any:
        endpoint = self.action_endpoint
        if endpoint is not None and not endpoint.cafile and not getattr(endpoint, "_bakame_pooled", False):
            endpoint.request = request.__get__(endpoint)  # this endpoint (the action server) only
            endpoint._bakame_pooled = True
        return await original_run(self, output_channel, nlg, tracker, domain)

    RemoteAction.run = run


def _window() -> None:
    turns = as_int(env("ACTION_EVENTS_TURNS"), 3)
    if turns <= 0:
        return
    import rasa
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
                  "version": rasa.__version__}
        if not self._is_selective_domain_enabled() or domain.does_custom_action_explicitly_need_domain(self.name()):
            result["domain"] = domain.as_dict()
        return result

    RemoteAction._action_call_format = _action_call_format


def language_slot_events(tracker: Any) -> List[Any]:
    """What ``action_detect_language`` returns for Rasa's ``tracker``, decided here (the
    ``slotmap`` speed-up). Reads the latest message as rasa-sdk's ``Tracker.latest_message``
    shows it to the action (parse data, entities of NLU and policies)."""
    from rasa.shared.core.events import SlotSet

    from core import language_slots

    latest = tracker.latest_message
    parse = latest.parse_data if latest is not None else {}
    values = language_slots.slot_values(
        intent=(parse.get("intent") or {}).get("name"),
        named=language_slots.first_entity(latest.entities if latest is not None else []),
        text=parse.get("text"), detection=parse.get(language_slots.DETECTION_KEY),
        current=tracker.get_slot("language"), locked=tracker.get_slot("language_locked"),
        active_loop=tracker.active_loop_name, active_module=tracker.get_slot("active_module"))
    return [SlotSet(slot, value) for slot, value in values.items()]


def _slotmap() -> None:
    from rasa.core.actions.action import ActionExtractSlots

    from core import language_slots

    original = ActionExtractSlots._run_custom_action

    async def _run_custom_action(self: Any, custom_action: Text, output_channel: Any, nlg: Any, tracker: Any,
                                 domain: Any) -> List[Any]:
        if custom_action == language_slots.ACTION:
            return language_slot_events(tracker)
        return await original(self, custom_action, output_channel, nlg, tracker, domain)

    ActionExtractSlots._run_custom_action = _run_custom_action


class ParseCache:
    """A bounded LRU of pickled parse results (pickled: every hit is a new, exact copy).
    Hand-written: functools.lru_cache cannot wrap a coroutine, and cachetools is not a
    dependency for ten lines."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = self.misses = 0
        self._items: "OrderedDict[Any, bytes]" = OrderedDict()

    def get(self, key: Any) -> Optional[Dict[Text, Any]]:
        blob = self._items.get(key)
        if blob is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return pickle.loads(blob)

    def put(self, key: Any, value: Dict[Text, Any]) -> None:
        self._items[key] = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def _nlucache() -> None:
    size, max_chars = as_int(env("NLU_CACHE_SIZE"), 4096), as_int(env("NLU_CACHE_MAX_CHARS"), 200)
    if size <= 0:
        return
    from rasa.core.processor import MessageProcessor

    original = MessageProcessor.parse_message

    @functools.wraps(original)
    async def parse_message(self: Any, message: Any, tracker: Any = None,
                            only_output_properties: bool = True) -> Dict[Text, Any]:
        text = message.text
        if tracker is None or self.http_interpreter is not None or not isinstance(text, str) \
                or len(text) > max_chars:
            return await original(self, message, tracker, only_output_properties)
        cache = self.__dict__.get("_bakame_parse_cache")
        if cache is None:  # one per processor: a new model gets a new processor, and an empty cache
            cache = self._bakame_parse_cache = ParseCache(size)
        key = (text, only_output_properties)
        parsed = cache.get(key)
        if parsed is None:
            parsed = await original(self, message, tracker, only_output_properties)
            cache.put(key, parsed)
        if (cache.hits + cache.misses) % 1000 == 0:
            logger.info("NLU cache: %d hits, %d misses, %d texts", cache.hits, cache.misses, len(cache))
        return parsed

    MessageProcessor.parse_message = parse_message


class _Applied:
    """A tracker's ``applied_events`` up to its ``count``-th event (the ``applied`` speed-up)."""

    __slots__ = ("events", "count", "last", "loop_names", "applied")

    def __init__(self, events: Any, count: int, last: Any, loop_names: frozenset, applied: List[Any]) -> None:
        self.events, self.count, self.last, self.loop_names, self.applied = events, count, last, loop_names, applied


def _applied() -> None:
    from rasa.shared.core.events import (ActionExecuted, ActionReverted, ActiveLoop, Restarted, SessionStarted,
                                         UserUttered, UserUtteranceReverted)
    from rasa.shared.core.trackers import DialogueStateTracker

    def loop_names_of(events: Any) -> frozenset:
        return frozenset(e.name for e in events if isinstance(e, ActiveLoop) and e.name)

    def apply(tracker: Any, events: Any, loop_names: frozenset, applied: List[Any]) -> None:
        # The loop body of DialogueStateTracker.applied_events, Rasa 3.6.21, unchanged.
        for event in events:
            if isinstance(event, (Restarted, SessionStarted)):
                applied.clear()
            elif isinstance(event, ActionReverted):
                tracker._undo_till_previous(ActionExecuted, applied)
            elif isinstance(event, UserUtteranceReverted):
                tracker._undo_till_previous(UserUttered, applied)
                tracker._undo_till_previous(ActionExecuted, applied)
            elif (isinstance(event, ActionExecuted) and event.action_name in loop_names
                  and not tracker._first_loop_execution_or_unhappy_path(event.action_name, applied)):
                tracker._undo_till_previous_loop_execution(event.action_name, applied)
            else:
                applied.append(event)

    def applied_events(self: Any) -> List[Any]:
        events = self.events
        count = len(events)
        last = events[-1] if count else None
        memo = self.__dict__.get("_bakame_applied")
        if memo is not None and memo.events is events and memo.count == count and memo.last is last:
            return list(memo.applied)
        if memo is not None and memo.events is events and 0 < memo.count < count \
                and events[memo.count - 1] is memo.last:  # events appended since: continue
            new = list(itertools.islice(events, memo.count, None))
            if loop_names_of(new) <= memo.loop_names:  # a new loop would change how earlier events apply
                applied = list(memo.applied)
                apply(self, new, memo.loop_names, applied)
                self._bakame_applied = _Applied(events, count, last, memo.loop_names, applied)
                return list(applied)
        loop_names = loop_names_of(events)
        applied = []
        apply(self, events, loop_names, applied)
        self._bakame_applied = _Applied(events, count, last, loop_names, applied)
        return list(applied)

    applied_events.__doc__ = DialogueStateTracker.applied_events.__doc__
    applied_events.__wrapped__ = DialogueStateTracker.applied_events  # type: ignore[attr-defined]  # Rasa's, for tests
    DialogueStateTracker.applied_events = applied_events


class _Replay:
    """A tracker's replay for ``past_states`` (the ``states`` speed-up): its applied events,
    the tracker they were replayed into, and per action the state before it."""

    __slots__ = ("domain", "omit", "applied", "tracker", "points", "final")

    def __init__(self, domain: Any, omit: bool, applied: List[Any], tracker: Any, points: List[Any],
                 final: Any) -> None:
        self.domain, self.omit, self.applied, self.tracker = domain, omit, applied, tracker
        self.points, self.final = points, final


def _point(domain: Any, tracker: Any, omit_unset_slots: bool, hide_rule_turn: bool) -> tuple:
    """What ``Domain.states_for_tracker_history`` reads of one prior tracker."""
    return (domain.get_active_state(tracker, omit_unset_slots=omit_unset_slots), hide_rule_turn,
            bool(tracker.followup_action), tracker.latest_action_name == tracker.active_loop_name)


def replay_points(tracker: Any, domain: Any, omit_unset_slots: bool = False) -> List[tuple]:
    """``(state, hide_rule_turn, followup action?, latest action is the active loop?)`` of each
    prior tracker ``generate_all_prior_trackers`` yields, remembered on ``tracker`` and
    continued when its applied events only grew (the states are the cache's: copy them)."""
    from rasa.shared.core.events import ActionExecuted

    applied = tracker.applied_events()
    memo = tracker.__dict__.get("_bakame_replay")
    if memo is not None and memo.domain is domain and memo.omit == omit_unset_slots \
            and len(applied) >= len(memo.applied) and all(map(operator.is_, memo.applied, applied)):
        if len(applied) == len(memo.applied):
            return memo.points + [memo.final]
        replay, points, start = memo.tracker, memo.points, len(memo.applied)
    else:
        replay, points, start = tracker.init_copy(), [], 0
    for event in itertools.islice(applied, start, None):  # generate_all_prior_trackers, Rasa 3.6.21
        if isinstance(event, ActionExecuted):
            points.append(_point(domain, replay, omit_unset_slots, event.hide_rule_turn))
        replay.update(event)
    final = _point(domain, replay, omit_unset_slots, False)
    tracker._bakame_replay = _Replay(domain, omit_unset_slots, applied, replay, points, final)
    return points + [final]


def states_from_points(domain: Any, points: List[tuple], ignore_rule_only_turns: bool = False,
                       rule_only_data: Optional[Dict[Text, Any]] = None) -> List[Dict[Text, Any]]:
    """The loop of ``Domain.states_for_tracker_history`` (Rasa 3.6.21) over remembered
    points, on copies of their states (callers change them)."""
    from rasa.shared.core.constants import PREVIOUS_ACTION

    states: List[Dict[Text, Any]] = []
    last_ml_action_sub_state = None
    turn_was_hidden = False
    for cached, hide_rule_turn, followup, latest_is_loop in points:
        state = {key: dict(sub) for key, sub in cached.items()}
        if ignore_rule_only_turns:
            if not turn_was_hidden:  # Rasa: tracker.latest_action, i.e. this state's previous action
                last_ml_action_sub_state = state.get(PREVIOUS_ACTION)
            if not followup and not latest_is_loop:
                turn_was_hidden = hide_rule_turn
            if turn_was_hidden:
                continue
            domain._remove_rule_only_features(state, rule_only_data)
            if states:
                domain._substitute_rule_only_user_input(state, states[-1])
            if last_ml_action_sub_state:
                state[PREVIOUS_ACTION] = last_ml_action_sub_state
        states.append(domain._clean_state(state))
    return states


def _states() -> None:
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    original = DialogueStateTracker.past_states
    rasas_history = Domain.states_for_tracker_history

    def past_states(self: Any, domain: Any, omit_unset_slots: bool = False, ignore_rule_only_turns: bool = False,
                    rule_only_data: Optional[Dict[Text, Any]] = None) -> List[Dict[Text, Any]]:
        if type(domain).states_for_tracker_history is not rasas_history \
                or type(domain).get_active_state is not Domain.get_active_state:
            return original(self, domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
        points = replay_points(self, domain, omit_unset_slots)
        return states_from_points(domain, points, ignore_rule_only_turns, rule_only_data)

    past_states.__doc__ = original.__doc__
    past_states.__wrapped__ = original  # type: ignore[attr-defined]  # Rasa's, for tests
    DialogueStateTracker.past_states = past_states


def _askskip() -> None:
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.events import SlotSet

    from core import form_ask

    original = RemoteAction.run

    async def run(self: Any, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> Any:
        if self._name == form_ask.ACTION:
            state = form_ask.silent_ask(tracker.get_slot("active_module"), tracker.get_slot("tutor_state"))
            if state is not None:  # as the action server's answer would be: plain JSON values
                return [SlotSet("tutor_state", json.loads(json.dumps(state)))]
        return await original(self, output_channel, nlg, tracker, domain)

    RemoteAction.run = run


def _gcfreeze() -> None:
    import gc

    import rasa.core.run

    original = rasa.core.run.load_agent_on_start

    @functools.wraps(original)
    async def load_agent_on_start(*args: Any, **kwargs: Any) -> Any:
        agent = await original(*args, **kwargs)
        gc.collect()
        gc.freeze()  # the model, TensorFlow and Rasa: never scanned again by the cyclic GC
        logger.info("gc: %d objects of the loaded model frozen", gc.get_freeze_count())
        return agent

    rasa.core.run.load_agent_on_start = load_agent_on_start


def _fastload() -> None:
    from rasa.utils.tensorflow.models import RasaModel

    if not hasattr(RasaModel.load, "__bakame_original__"):  # once, also after install_fastload()
        RasaModel.load = classmethod(_fast_model_load(RasaModel.load.__func__))


def install_fastload() -> None:
    """Only ``fastload``: the model predicts exactly as Rasa loads it, sooner. A later
    :func:`install` still installs everything it selects."""
    check_version()
    _fastload()


def load_agent_for_evaluation(model_path: Text) -> Any:
    """``rasa.core.agent.Agent.load(model_path)`` with only ``fastload`` installed, for tools
    that load a model in-process to evaluate it rather than serve (``scripts/evaluate.py``,
    ``scripts/oos_misses.py``, ``bench/check_compaction.py``)."""
    from rasa.core.agent import Agent

    install_fastload()
    return Agent.load(model_path=str(model_path))


def _fast_model_load(original: Callable) -> Callable:
    """``RasaModel.load`` whose one-example ``fit`` (run only to create the weights and the
    optimizer's slots before the trained weights are loaded) runs eagerly: the same variables
    without tracing a training graph with its gradients -- 70 of the 77 s a Rasa process took
    to load our model (``DIETClassifier``'s CRF). Predictions then run as before, traced once
    by the ``run_inference`` warm-up; a model loaded for fine-tuning takes Rasa's own path."""

    @functools.wraps(original)
    def load(cls: Any, model_file_name: Text, model_data_example: Any, predict_data_example: Any = None,
             finetune_mode: bool = False, *args: Any, **kwargs: Any) -> Any:
        if finetune_mode:
            return original(cls, model_file_name, model_data_example, predict_data_example, finetune_mode,
                            *args, **kwargs)
        import tensorflow as tf
        from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
        from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator

        model = cls(*args, **kwargs)
        config = kwargs.get("config", {})
        model.compile(optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)), run_eagerly=True)
        model.fit(RasaBatchDataGenerator(model_data_example, batch_size=1), verbose=False)
        model.run_eagerly = config.get(RUN_EAGERLY)  # predictions: graph mode, as Rasa configured them
        model.load_weights(model_file_name)
        if predict_data_example:
            model.run_inference(predict_data_example)
        return model

    load.__bakame_original__ = original  # type: ignore[attr-defined]
    return load


_PATCHES: Dict[Text, Callable[[], None]] = {
    "failsafe": _failsafe, "timing": _timing,
    "schema": _schema, "events": _events, "pool": _pool, "window": _window,
    "slotmap": _slotmap, "nlucache": _nlucache, "applied": _applied,
    "states": _states, "askskip": _askskip, "gcfreeze": _gcfreeze, "fastload": _fastload,
}
