"""The one way BAKAME makes a Redis client: short timeouts and redis-py's bounded retry.

:func:`redis_client` builds every client of the Rasa process (tracker store, lock store,
the Twilio channels' shared state) and the health probe: explicit socket and connect
timeouts, and ``Retry(ExponentialBackoff(...), retries)`` on connection errors and
timeouts. The backoff starts at ``retry_backoff`` seconds and doubles (by default
0.1 + 0.2 + 0.4 + 0.8 s, enough to ride out a Redis restart with its append-only file);
redis-py waits with ``asyncio.sleep`` in the asyncio client, so one learner's retries
never block the others.

:class:`ResilientRedis` (tracker and lock stores) turns "still unreachable after the
retries" into :class:`infra.errors.StoreUnavailable` and logs when Redis comes back.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Dict, Optional, Text, TypeVar

import redis
import redis.asyncio as redis_asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from core.config import as_bool, as_float, as_int
from infra.errors import StoreUnavailable
from infra.settings import parse_redis_url

logger = logging.getLogger(__name__)

T = TypeVar("T")
# OSError too: a refused connection surfaces as one inside redis-py's connect retry.
RETRYABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError, asyncio.TimeoutError)

DEFAULT_SOCKET_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_RETRIES = 4
DEFAULT_RETRY_BACKOFF = 0.1
MAX_RETRY_BACKOFF = 2.0


# Prefix of the phone channels' own state in Redis (call and SMS state, turns, dedupe):
# connectors/state.py writes it, the learner export/erase reads it.
CHANNEL_STATE_PREFIX = "bakame:twilio:"


def redis_client(
    url: Optional[Text] = None,
    *,
    use_asyncio: bool = True,
    socket_timeout: Any = None,
    socket_connect_timeout: Any = None,
    retries: Any = None,
    retry_backoff: Any = None,
    **options: Any,
) -> Any:
    """A ``redis.asyncio.Redis`` (or, with ``use_asyncio=False``, a ``redis.Redis``) for
    ``url`` or for the connection ``options`` (host, port, db, ...)."""
    retries = max(0, as_int(retries, DEFAULT_RETRIES))
    # redis-py sleeps base * 2**failures from the first failure on: base is half the first wait
    base = max(0.0, as_float(retry_backoff, DEFAULT_RETRY_BACKOFF)) / 2
    retry_class = AsyncRetry if use_asyncio else Retry
    settings = dict(
        options,
        socket_timeout=as_float(socket_timeout, DEFAULT_SOCKET_TIMEOUT),
        socket_connect_timeout=as_float(socket_connect_timeout, DEFAULT_CONNECT_TIMEOUT),
        retry=retry_class(ExponentialBackoff(cap=MAX_RETRY_BACKOFF, base=base), retries, supported_errors=RETRYABLE),
        retry_on_error=list(RETRYABLE),
    )
    module = redis_asyncio if use_asyncio else redis
    return module.Redis.from_url(url, **settings) if url else module.Redis(**settings)


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
            port=as_int(port, 6379),
            db=as_int(db, 0),
            username=username or None,
            password=password or None,
            ssl=as_bool(use_ssl, False),
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            retries=retries,
            retry_backoff=retry_backoff,
            decode_responses=decode_responses,
            health_check_interval=30,
        )
        if self.options["ssl"]:
            self.options.update(ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile, ssl_ca_certs=ssl_ca_certs)
        self._client: Optional[redis_asyncio.Redis] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._down_since: Optional[float] = None

    @classmethod
    def from_url(cls, what: Text, url: Text, **options: Any) -> "ResilientRedis":
        """From ``redis://[:password@]host[:port][/db]`` (``rediss://``: TLS), as ``REDIS_URL`` is written."""
        parts = parse_redis_url(url)
        return cls(what, host=parts["REDIS_HOST"], port=parts["REDIS_PORT"], db=parts["REDIS_DB"],
                   password=parts["REDIS_PASSWORD"] or None, use_ssl=parts["REDIS_SSL"], **options)

    def __repr__(self) -> Text:
        o = self.options
        return f"ResilientRedis({self.what}: {o['host']}:{o['port']}/{o['db']})"

    def client(self) -> redis_asyncio.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = redis_client(**self.options)
            self._loop = loop
        return self._client

    async def call(self, operation: Callable[[redis_asyncio.Redis], Awaitable[T]]) -> T:
        """``operation(client)`` (each command retried by redis-py); :class:`StoreUnavailable`
        when Redis stays away."""
        try:
            result = await operation(self.client())
        except RETRYABLE as exc:
            if self._down_since is None:
                self._down_since = time.monotonic()
                logger.error("%s unreachable after its retries: %s", self.what, type(exc).__name__)
            raise StoreUnavailable(self.what, exc) from exc
        if self._down_since is not None:
            logger.warning("%s is reachable again after %.1f s", self.what, time.monotonic() - self._down_since)
            self._down_since = None
        return result

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception:  # noqa: BLE001
                pass
