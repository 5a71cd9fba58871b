"""Rasa 3.6 serving-path fixes, applied once in the Rasa process (issue 6, docs/benchmarks.md).

Imported by :mod:`infra.tracker_store`, which Rasa loads from ``endpoints.prod.yml``, so
every production Rasa process (and each Sanic worker) has them before the first turn.
Measured with ``make bench`` (docs/benchmarks.md: before and after):

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

``RASA_SPEEDUPS`` (default ``schema,events,pool,window``) selects them; empty turns all off.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Dict, List, Optional, Text

from core.config import as_int, env

logger = logging.getLogger(__name__)

DEFAULT = "schema,events,pool,window"
_applied: List[Text] = []


def _chosen() -> List[Text]:
    return [s.strip() for s in os.environ.get("RASA_SPEEDUPS", DEFAULT).split(",") if s.strip()]


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


def apply() -> List[Text]:
    """Apply the chosen speed-ups once per process; the names applied."""
    if _applied:
        return list(_applied)
    for name in _chosen():
        fix = {"schema": _schema, "events": _events, "pool": _pool, "window": _window}.get(name)
        if fix is None:
            logger.warning("unknown RASA_SPEEDUPS entry %r ignored", name)
            continue
        try:
            fix()
            _applied.append(name)
        except Exception:  # noqa: BLE001 - a speed-up must never stop Rasa from serving
            logger.exception("Rasa speed-up %r not applied", name)
    if _applied:
        logger.info("Rasa speed-ups: %s", ", ".join(_applied))
    return list(_applied)
