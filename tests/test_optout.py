"""Opt-out keywords, records and the bulk window (infra/optout.py)."""
import uuid
from datetime import datetime, timezone

import pytest

from infra.optout import OptOutRegistry, bulk_window_open, keyword_of
from infra.redis_client import redis_client

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("text,kind", [
    ("STOP", "stop"), ("stop.", "stop"), (" Hagarika! ", "stop"), ("UNSUBSCRIBE", "stop"), ("stopall", "stop"),
    ("END", "stop"), ("quit", "stop"), ("cancel", "stop"),
    ("START", "start"), ("tangira", "start"), ("HELP", "help"), ("Ubufasha", "help"),
    ("stop the story", None), ("7", None), ("", None), ("muraho", None),
])
async def test_keywords_alone_in_both_languages(text, kind):
    assert keyword_of(text) == kind


async def test_bulk_window_is_0800_to_2000_rwanda_time():
    assert not bulk_window_open(datetime(2026, 1, 5, 5, 59, tzinfo=timezone.utc))  # 07:59 in Kigali
    assert bulk_window_open(datetime(2026, 1, 5, 6, 0, tzinfo=timezone.utc))  # 08:00
    assert bulk_window_open(datetime(2026, 1, 5, 17, 59, tzinfo=timezone.utc))  # 19:59
    assert not bulk_window_open(datetime(2026, 1, 5, 18, 0, tzinfo=timezone.utc))  # 20:00


async def _opt_out_and_in(registry):
    assert await registry.may_send("tw_a") and await registry.record("tw_a") is None
    await registry.opt_out("tw_a", "at_sms")
    record = await registry.record("tw_a")
    assert record["opted_out"] is True and record["channel"] == "at_sms" and record["at"] > 0
    assert not await registry.may_send("tw_a") and await registry.may_send("tw_b")
    await registry.opt_in("tw_a", "at_sms")
    assert await registry.may_send("tw_a")
    night = datetime(2026, 1, 5, 21, 0, tzinfo=timezone.utc)
    assert await registry.may_send("tw_a", now=night) and not await registry.may_send("tw_a", bulk=True, now=night)


async def test_registry_in_memory():
    await _opt_out_and_in(OptOutRegistry())


async def test_registry_in_redis_is_durable_across_instances():
    client = redis_client("redis://127.0.0.1:6379/0")
    key = f"test{uuid.uuid4().hex[:8]}:optout"
    try:
        await _opt_out_and_in(OptOutRegistry(client, key=key))
        await OptOutRegistry(client, key=key).opt_out("tw_c", "twilio_sms")
        assert await OptOutRegistry(redis_client("redis://127.0.0.1:6379/0"), key=key).is_opted_out("tw_c")
        assert await client.ttl(key) == -1  # kept: the record is the proof of the opt-out
    finally:
        await client.delete(key)
