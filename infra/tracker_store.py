"""Conversation trackers in Redis, for production (``endpoints.prod.yml``)::

    tracker_store:
      type: infra.tracker_store.ResilientRedisTrackerStore
      url: ${REDIS_HOST}          # plus port, db, password, use_ssl
      key_prefix: ${REDIS_KEY_PREFIX}
      record_exp: ${TRACKER_EXPIRY_SECONDS}   # sliding expiry since the last turn

Same keys and format as Rasa's ``RedisTrackerStore`` (``<prefix>:tracker:<sender_id>``,
the tracker as JSON), with three differences:

* asyncio Redis with short timeouts and a bounded retry (:mod:`infra.redis_client`);
  when Redis stays unreachable :class:`infra.errors.StoreUnavailable` is raised. Rasa
  wraps every tracker store in ``FailSafeTrackerStore``, which would swallow the error and
  carry on with an EMPTY tracker (the learner greeted as a stranger, their turn saved
  nowhere). Importing this module lets ``StoreUnavailable`` -- and only it -- through, so
  the turn stops and the channel apologises instead (:mod:`infra.rest_channel`).
* new events go to the event broker only AFTER the tracker was written (Rasa publishes
  first), so the events table never holds a turn the tracker does not.
* the learner's language is remembered in-process, for the apology when Redis is down.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, List, Optional, Text

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import FailSafeTrackerStore, RedisTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import (
    DialogueStateTracker,
    TrackerEventDiffEngine,
    get_trackers_for_conversation_sessions,
)

from infra.errors import StoreUnavailable, languages
from infra.redis_client import ResilientRedis, as_number

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
        **kwargs: Any,
    ) -> None:
        self.redis = ResilientRedis(
            "conversation store (Redis)",
            host=host, port=port, db=db, username=username, password=password, use_ssl=use_ssl,
            ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile, ssl_ca_certs=ssl_ca_certs,
            **{k: v for k, v in dict(socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout,
                                     retries=retries, retry_backoff=retry_backoff).items() if v not in (None, "")},
        )
        expiry = as_number(record_exp, 0.0)
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
        stored = await self.redis.call(lambda r: r.get(key))
        prior = self.deserialise_tracker(tracker.sender_id, stored) if stored is not None else None

        new_events = TrackerEventDiffEngine.event_difference(_last_session(prior), tracker)
        merged = self._merge_trackers(prior, tracker) if prior is not None else tracker
        expiry = timeout or self.record_exp
        serialised = self.serialise_tracker(merged)
        await self.redis.call(lambda r: r.set(key, serialised, ex=int(expiry) if expiry else None))

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
        if callable(publish_many):
            publish_many(bodies)
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
        tracker = self.deserialise_tracker(sender_id, stored)
        if tracker is not None:
            languages.remember(sender_id, tracker.get_slot("language"))
        return tracker if fetch_all_sessions else _last_session(tracker)

    async def exists(self, conversation_id: Text) -> bool:
        return bool(await self.redis.call(lambda r: r.exists(self.key_prefix + conversation_id)))

    async def keys(self) -> Iterable[Text]:
        """Sender ids (without the key prefix)."""
        prefix = self.key_prefix

        async def scan(r: Any) -> List[Text]:
            return [k[len(prefix):] async for k in r.scan_iter(match=prefix + "*", count=500)]

        return await self.redis.call(scan)


def _last_session(tracker: Optional[DialogueStateTracker]) -> Optional[DialogueStateTracker]:
    if tracker is None:
        return None
    sessions = get_trackers_for_conversation_sessions(tracker)
    return sessions[-1] if len(sessions) > 1 else tracker


# --------------------------------------------------------------------------- FailSafe
def _install_failsafe_passthrough() -> None:
    """Let :class:`StoreUnavailable` out of Rasa's ``FailSafeTrackerStore`` (which the Agent
    wraps around every tracker store); every other error keeps Rasa's own handling."""
    if getattr(FailSafeTrackerStore, "_bakame_passthrough", False):
        return
    on_error = FailSafeTrackerStore.on_tracker_store_error
    on_retrieve_error = FailSafeTrackerStore.on_tracker_store_retrieve_error

    def on_tracker_store_error(self: FailSafeTrackerStore, error: Exception) -> None:
        if isinstance(error, StoreUnavailable):
            raise error
        on_error(self, error)

    def on_tracker_store_retrieve_error(self: FailSafeTrackerStore, error: Exception) -> None:
        if isinstance(error, StoreUnavailable):
            raise error
        on_retrieve_error(self, error)

    FailSafeTrackerStore.on_tracker_store_error = on_tracker_store_error  # type: ignore[assignment]
    FailSafeTrackerStore.on_tracker_store_retrieve_error = on_tracker_store_retrieve_error  # type: ignore[assignment]
    FailSafeTrackerStore._bakame_passthrough = True  # type: ignore[attr-defined]


_install_failsafe_passthrough()
