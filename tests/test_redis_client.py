"""infra.redis_client: the one Redis client factory (timeouts, redis-py Retry with backoff),
against real redis-server processes (tests/services.py)."""
from __future__ import annotations

from unittest import mock

import pytest
import redis.asyncio.connection as async_connection
from redis.exceptions import ConnectionError as RedisConnectionError

from connectors.state import RedisStateStore, get_state_store
from infra.errors import StoreUnavailable
from infra.redis_client import ResilientRedis, redis_client
from tests.services import RedisServer, free_port


@pytest.fixture
def redis_server():
    server = RedisServer(appendonly=False)
    server.start()
    yield server
    server.remove()


def test_clients_get_explicit_timeouts_and_a_bounded_exponential_retry():
    client = redis_client("redis://127.0.0.1:1/0", retries=3, retry_backoff=0.2, socket_timeout=1.5)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 1.5 and kwargs["socket_connect_timeout"] == 2.0
    retry = kwargs["retry"]
    assert retry._retries == 3
    assert [retry._backoff.compute(n) for n in (1, 2, 3)] == [0.2, 0.4, 0.8]  # waits after each failure
    sync = redis_client("redis://127.0.0.1:1/0", use_asyncio=False, retries=0)
    assert sync.connection_pool.connection_kwargs["retry"]._retries == 0


def test_the_channel_state_uses_the_same_factory():
    store = get_state_store(f"redis://127.0.0.1:{free_port()}/0")
    assert isinstance(store, RedisStateStore)
    assert store.client.connection_pool.connection_kwargs["retry"]._retries == 4


async def test_an_unreachable_redis_is_tried_retries_plus_one_times_then_store_unavailable():
    attempts = []
    original = async_connection.Connection._connect

    async def counted(self):
        attempts.append(1)
        return await original(self)

    store = ResilientRedis("test store", host="127.0.0.1", port=free_port(), retries=2, retry_backoff=0.01)
    with mock.patch.object(async_connection.Connection, "_connect", counted):
        with pytest.raises(StoreUnavailable):
            await store.call(lambda r: r.get("anything"))
    assert len(attempts) == 3
    await store.close()


async def test_a_connection_broken_by_a_redis_restart_is_retried_on_a_new_one(redis_server):
    client = redis_client(redis_server.url, retries=2, retry_backoff=0.01)
    once = redis_client(redis_server.url, retries=0)
    assert await client.ping() and await once.ping()  # both hold a pooled connection now
    redis_server.stop(kill=True)
    redis_server.start()
    assert await client.ping()  # the dead connection failed, the retry reconnected
    with pytest.raises(RedisConnectionError):
        await once.ping()  # without retries the same break reaches the caller
    await client.close()
    await once.close()
