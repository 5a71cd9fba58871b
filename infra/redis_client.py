"""An asyncio Redis client with short timeouts and a bounded retry, shared by the
tracker store and the lock store.

Every call goes through :meth:`ResilientRedis.call`: connection errors and timeouts are
retried with exponential backoff (``retries`` times, starting at ``retry_backoff``
seconds: by default 0.1 + 0.2 + 0.4 + 0.8 s, enough to ride out a Redis restart with its
append-only file), then :class:`infra.errors.StoreUnavailable` is raised. Waiting happens
with ``asyncio.sleep``: one learner's retries never block the others.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Dict, Optional, Text, TypeVar

import redis.asyncio as redis_asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra.errors import StoreUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError, asyncio.TimeoutError)

DEFAULT_SOCKET_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_RETRIES = 4
DEFAULT_RETRY_BACKOFF = 0.1


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def as_number(value: Any, default: float, kind: Callable[[Any], Any] = float) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        return kind(value)
    except (TypeError, ValueError):
        logger.warning("ignoring invalid number %r, using %s", value, default)
        return default


class ResilientRedis:
    """One ``redis.asyncio.Redis`` per event loop (its connections belong to that loop)."""

    def __init__(
        self,
        what: Text,
        host: Optional[Text] = "localhost",
        port: Any = 6379,
        db: Any = 0,
        username: Optional[Text] = None,
        password: Optional[Text] = None,
        use_ssl: Any = False,
        ssl_keyfile: Optional[Text] = None,
        ssl_certfile: Optional[Text] = None,
        ssl_ca_certs: Optional[Text] = None,
        socket_timeout: Any = DEFAULT_SOCKET_TIMEOUT,
        socket_connect_timeout: Any = DEFAULT_CONNECT_TIMEOUT,
        retries: Any = DEFAULT_RETRIES,
        retry_backoff: Any = DEFAULT_RETRY_BACKOFF,
        decode_responses: bool = True,
    ) -> None:
        self.what = what
        self.options: Dict[Text, Any] = dict(
            host=host or "localhost",
            port=int(as_number(port, 6379, int)),
            db=int(as_number(db, 0, int)),
            username=username or None,
            password=password or None,
            ssl=as_bool(use_ssl),
            socket_timeout=as_number(socket_timeout, DEFAULT_SOCKET_TIMEOUT),
            socket_connect_timeout=as_number(socket_connect_timeout, DEFAULT_CONNECT_TIMEOUT),
            decode_responses=decode_responses,
            health_check_interval=30,
        )
        if self.options["ssl"]:
            self.options.update(ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile, ssl_ca_certs=ssl_ca_certs)
        self.retries = max(0, int(as_number(retries, DEFAULT_RETRIES, int)))
        self.retry_backoff = max(0.0, float(as_number(retry_backoff, DEFAULT_RETRY_BACKOFF)))
        self._client: Optional[redis_asyncio.Redis] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._down_since: Optional[float] = None

    def __repr__(self) -> Text:
        o = self.options
        return f"ResilientRedis({self.what}: {o['host']}:{o['port']}/{o['db']})"

    def client(self) -> redis_asyncio.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = redis_asyncio.Redis(**self.options)
            self._loop = loop
        return self._client

    async def call(self, operation: Callable[[redis_asyncio.Redis], Awaitable[T]]) -> T:
        """``operation(client)`` with retries; :class:`StoreUnavailable` when Redis stays away."""
        last: Optional[BaseException] = None
        for attempt in range(self.retries + 1):
            try:
                result = await operation(self.client())
            except RETRYABLE as exc:
                last = exc
                if attempt < self.retries:
                    await asyncio.sleep(self.retry_backoff * (2 ** attempt))
                continue
            if self._down_since is not None:
                logger.warning("%s is reachable again after %.1f s", self.what, time.monotonic() - self._down_since)
                self._down_since = None
            return result
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.error("%s unreachable after %d attempt(s): %s", self.what, self.retries + 1, type(last).__name__)
        raise StoreUnavailable(self.what, last)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception:  # noqa: BLE001
                pass
