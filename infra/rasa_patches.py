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
``RASA_SPEEDUPS`` (default ``schema,events,pool,window``; empty: none):

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
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import time
from typing import Any, Callable, Dict, List, Optional, Text

from core.config import as_int, env

logger = logging.getLogger(__name__)

RASA_VERSION = "3.6.21"
FIXES = ("failsafe", "timing")
SPEEDUPS = ("schema", "events", "pool", "window")

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
    for name in FIXES + tuple(_chosen_speedups()):
        if name in _installed:  # named twice: wrapped once
            continue
        patch = _PATCHES.get(name)
        if patch is None:
            logger.warning("unknown RASA_SPEEDUPS entry %r ignored", name)
            continue
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


def _chosen_speedups() -> List[Text]:
    return [s.strip() for s in os.environ.get("RASA_SPEEDUPS", ",".join(SPEEDUPS)).split(",") if s.strip()]


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


_PATCHES: Dict[Text, Callable[[], None]] = {
    "failsafe": _failsafe, "timing": _timing,
    "schema": _schema, "events": _events, "pool": _pool, "window": _window,
}
