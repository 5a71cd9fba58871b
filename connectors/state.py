"""Short-lived channel state: SMS de-duplication, pending voice/SMS turns, per-call data.

Process-local by default (a bounded TTL cache). Production runs several Rasa processes
behind one Twilio number, and Twilio may send the follow-up request of a call (e.g. the
``<Redirect>`` that picks up a slow answer) to another process: set ``REDIS_URL`` to share
this state through Redis (a client from infra.redis_client: timeouts, retries). Values are
JSON documents; no phone numbers are ever stored (keys use CallSid, MessageSid or the hashed conversation id).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from typing import Any, Dict, Optional, Sequence, Text, Tuple

from core.config import env
from infra.redis_client import CHANNEL_STATE_PREFIX, redis_client

logger = logging.getLogger(__name__)


class StateStore:
    """Interface: every value is a JSON-serialisable object, every key expires."""

    async def get(self, key: Text) -> Optional[Any]:
        raise NotImplementedError

    async def set(self, key: Text, value: Any, ttl: float) -> None:
        raise NotImplementedError

    async def add(self, key: Text, value: Any, ttl: float) -> bool:
        """Set ``key`` only if absent; ``True`` if this call set it (atomic)."""
        raise NotImplementedError

    async def pop(self, key: Text) -> Optional[Any]:
        """Get and delete ``key`` atomically: only one caller ever receives a value."""
        raise NotImplementedError

    async def delete(self, key: Text) -> None:
        raise NotImplementedError

    async def add_and_get(self, key: Text, value: Any, ttl: float, other: Text) -> Tuple[bool, Optional[Any]]:
        """``add(key, value, ttl)`` and ``get(other)`` (one round trip on Redis; not atomic together)."""
        return await self.add(key, value, ttl), await self.get(other)

    async def set_many(self, items: Sequence[Tuple[Text, Any, float]]) -> None:
        """``set`` of each ``(key, value, ttl)``, in order (one round trip on Redis; not atomic together)."""
        for key, value, ttl in items:
            await self.set(key, value, ttl)


class InMemoryStateStore(StateStore):
    """Bounded TTL cache for one process (oldest entries go first when full)."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._data: "OrderedDict[Text, Tuple[float, Text]]" = OrderedDict()

    def _live(self, key: Text) -> Optional[Text]:
        item = self._data.get(key)
        if item is None:
            return None
        expires, raw = item
        if expires <= time.monotonic():
            self._data.pop(key, None)
            return None
        return raw

    def _put(self, key: Text, value: Any, ttl: float) -> None:
        self._data.pop(key, None)
        self._data[key] = (time.monotonic() + max(0.001, ttl), json.dumps(value))
        if len(self._data) > self.max_entries:
            now = time.monotonic()
            for k in [k for k, (exp, _) in self._data.items() if exp <= now]:
                self._data.pop(k, None)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    async def get(self, key: Text) -> Optional[Any]:
        raw = self._live(key)
        return None if raw is None else json.loads(raw)

    async def set(self, key: Text, value: Any, ttl: float) -> None:
        self._put(key, value, ttl)

    async def add(self, key: Text, value: Any, ttl: float) -> bool:
        if self._live(key) is not None:
            return False
        self._put(key, value, ttl)
        return True

    async def pop(self, key: Text) -> Optional[Any]:
        raw = self._live(key)
        self._data.pop(key, None)
        return None if raw is None else json.loads(raw)

    async def delete(self, key: Text) -> None:
        self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)


class RedisStateStore(StateStore):
    """The same interface on Redis, shared by all Rasa processes."""

    def __init__(self, client: Any, prefix: Text = CHANNEL_STATE_PREFIX) -> None:
        self.client = client
        self.prefix = prefix

    def _k(self, key: Text) -> Text:
        return self.prefix + key

    @staticmethod
    def _load(raw: Any) -> Optional[Any]:
        if raw is None:
            return None
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        return json.loads(raw)

    async def get(self, key: Text) -> Optional[Any]:
        return self._load(await self.client.get(self._k(key)))

    async def set(self, key: Text, value: Any, ttl: float) -> None:
        await self.client.set(self._k(key), json.dumps(value), px=max(1, int(ttl * 1000)))

    async def add(self, key: Text, value: Any, ttl: float) -> bool:
        result = await self.client.set(self._k(key), json.dumps(value), px=max(1, int(ttl * 1000)), nx=True)
        return bool(result)

    async def pop(self, key: Text) -> Optional[Any]:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.get(self._k(key))
            pipe.delete(self._k(key))
            raw, _ = await pipe.execute()
        return self._load(raw)

    async def delete(self, key: Text) -> None:
        await self.client.delete(self._k(key))

    async def add_and_get(self, key: Text, value: Any, ttl: float, other: Text) -> Tuple[bool, Optional[Any]]:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(self._k(key), json.dumps(value), px=max(1, int(ttl * 1000)), nx=True)
            pipe.get(self._k(other))
            added, raw = await pipe.execute()
        return bool(added), self._load(raw)

    async def set_many(self, items: Sequence[Tuple[Text, Any, float]]) -> None:
        if not items:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for key, value, ttl in items:
                pipe.set(self._k(key), json.dumps(value), px=max(1, int(ttl * 1000)))
            await pipe.execute()


_STORES: Dict[Text, StateStore] = {}


def get_state_store(redis_url: Optional[Text] = None) -> StateStore:
    """The process-wide store: Redis when ``redis_url`` (or ``REDIS_URL``) is set."""
    url = (redis_url if redis_url is not None else env("REDIS_URL", default="")).strip()
    store = _STORES.get(url)
    if store is None:
        if url:
            store = RedisStateStore(redis_client(url))
            logger.info("Twilio channel state is shared through Redis.")
        else:
            store = InMemoryStateStore()
        _STORES[url] = store
    return store


async def wait_for_value(
    store: StateStore, key: Text, ready, timeout: float, interval: float = 0.1
) -> Optional[Any]:
    """Poll ``key`` until ``ready(value)`` or ``timeout``; the last value read."""
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        value = await store.get(key)
        if value is not None and ready(value):
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return value
        await asyncio.sleep(min(interval, remaining))
