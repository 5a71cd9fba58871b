"""Channel state: TTL cache, Redis backend, and turns delivered exactly once."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time

import pytest
import pytest_asyncio

from connector_fixtures import (
    AUTH_TOKEN,
    PUBLIC_BASE,
    SENDER_SECRET,
    ScriptedAgent,
    TwilioClient,
    call_params,
    find,
    make_app,
    next_request,
    parse_twiml,
    said,
    sms_params,
    messages_of,
)
from connectors.settings import SmsSettings, VoiceSettings
from connectors.state import InMemoryStateStore, RedisStateStore, get_state_store, wait_for_value
from connectors.turns import DONE, FAILED, MISSING, TurnRunner
from connectors.twilio_sms import TwilioSmsInput
from connectors.twilio_voice import TwilioVoiceInput

pytestmark = pytest.mark.asyncio


# ---------------------------------------------------------------------- in-memory store
async def test_in_memory_store_basics_and_expiry():
    store = InMemoryStateStore()
    await store.set("a", {"x": 1}, ttl=0.05)
    assert await store.get("a") == {"x": 1}
    await asyncio.sleep(0.08)
    assert await store.get("a") is None
    assert await store.add("b", 1, ttl=10) is True
    assert await store.add("b", 2, ttl=10) is False
    assert await store.pop("b") == 1 and await store.pop("b") is None
    await store.set("c", [1], 10)
    await store.delete("c")
    assert await store.get("c") is None


async def test_in_memory_store_is_bounded():
    store = InMemoryStateStore(max_entries=100)
    for i in range(250):
        await store.set(f"k{i}", i, ttl=60)
    assert len(store) == 100
    assert await store.get("k0") is None and await store.get("k249") == 249


async def test_values_are_copies_not_shared_objects():
    store = InMemoryStateStore()
    value = {"list": [1]}
    await store.set("k", value, 10)
    value["list"].append(2)
    assert await store.get("k") == {"list": [1]}


async def test_process_store_is_shared_and_redis_is_chosen_by_url(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert get_state_store() is get_state_store("")
    assert isinstance(get_state_store(), InMemoryStateStore)
    assert isinstance(get_state_store("redis://127.0.0.1:1/0"), RedisStateStore)


async def test_wait_for_value_polls_until_ready():
    store = InMemoryStateStore()

    async def later():
        await asyncio.sleep(0.15)
        await store.set("k", {"status": "done"}, 10)

    task = asyncio.create_task(later())
    value = await wait_for_value(store, "k", lambda v: v["status"] == "done", timeout=2, interval=0.02)
    assert value == {"status": "done"}
    await task
    assert await wait_for_value(store, "missing", lambda v: True, timeout=0.05) is None


# ---------------------------------------------------------------------- turns
async def _work(result, delay=0.0, fail=False):
    await asyncio.sleep(delay)
    if fail:
        raise RuntimeError("boom")
    return result


async def test_turn_in_time_is_delivered_once():
    runner = TurnRunner(InMemoryStateStore(), "t")
    await runner.start("call", "1", lambda: _work({"a": 1}))
    record = await runner.wait("call", "1", 1.0)
    assert record == {"status": DONE, "result": {"a": 1}}
    assert (await runner.wait("call", "1", 0.1))["status"] == MISSING


async def test_slow_turn_times_out_then_is_picked_up():
    runner = TurnRunner(InMemoryStateStore(), "t")
    await runner.start("call", "1", lambda: _work({"a": 1}, delay=0.3))
    assert await runner.wait("call", "1", 0.05) is None
    assert (await runner.wait("call", "1", 1.0))["result"] == {"a": 1}


async def test_failed_turn_is_reported_as_failed():
    runner = TurnRunner(InMemoryStateStore(), "t")
    await runner.start("call", "1", lambda: _work(None, fail=True))
    assert (await runner.wait("call", "1", 1.0))["status"] == FAILED


async def test_collect_ready_returns_finished_turns_and_keeps_running_ones():
    runner = TurnRunner(InMemoryStateStore(), "t")
    await runner.start("c", "fast", lambda: _work({"n": 1}))
    await runner.start("c", "slow", lambda: _work({"n": 2}, delay=0.5))
    await asyncio.sleep(0.05)
    ready, running = await runner.collect_ready("c", ["fast", "slow", "unknown"])
    assert [r["result"] for r in ready] == [{"n": 1}] and running == ["slow"]
    ready, _ = await runner.collect_ready("c", ["fast"])
    assert ready == []  # never twice


async def test_another_process_picks_up_the_result_through_the_store():
    store = InMemoryStateStore()  # stands for Redis shared by two processes
    a, b = TurnRunner(store, "t"), TurnRunner(store, "t")
    await a.start("call", "1", lambda: _work({"a": 1}, delay=0.2))
    assert await b.wait("call", "1", 0.05) is None  # b has no local task: it polls the store
    assert (await b.wait("call", "1", 1.0))["result"] == {"a": 1}
    assert (await a.wait("call", "1", 0.1))["status"] == MISSING


async def test_run_answered_in_time_never_touches_the_store():
    store = InMemoryStateStore()
    runner = TurnRunner(store, "t")
    assert await runner.run("call", "1", lambda: _work({"a": 1}), 1.0) == {"status": DONE, "result": {"a": 1}}
    assert len(store) == 0 and (await runner.wait("call", "1", 0.1))["status"] == MISSING


async def test_run_outlasting_its_timeout_is_handed_over_through_the_store():
    store = InMemoryStateStore()  # stands for Redis shared by two processes
    a, b = TurnRunner(store, "t"), TurnRunner(store, "t")
    assert await a.run("call", "1", lambda: _work({"a": 1}, delay=0.3), 0.05) is None
    assert (await store.get(a.key("call", "1")))["status"] == "running"
    assert await b.wait("call", "1", 0.01) is None  # another process sees it running
    assert (await b.wait("call", "1", 1.0))["result"] == {"a": 1}
    assert (await a.wait("call", "1", 0.1))["status"] == MISSING  # delivered once


async def test_run_failing_after_its_timeout_is_reported_as_failed():
    runner = TurnRunner(InMemoryStateStore(), "t")
    assert await runner.run("c", "1", lambda: _work(None, delay=0.2, fail=True), 0.01) is None
    ready, running = await runner.collect_ready("c", ["1"])
    assert ready == [] and running == ["1"]
    await asyncio.sleep(0.3)
    ready, _ = await runner.collect_ready("c", ["1"])
    assert [r["status"] for r in ready] == [FAILED]


# ---------------------------------------------------------------------- Redis
@pytest_asyncio.fixture
async def redis_url():
    binary = shutil.which("redis-server")
    if not binary:
        pytest.skip("redis-server is not installed")
    folder = tempfile.mkdtemp(prefix="bakame-redis-")
    socket_path = os.path.join(folder, "redis.sock")
    process = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", socket_path, "--save", "", "--appendonly", "no",
         "--dir", folder],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(socket_path):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.skip("redis-server did not start")
            await asyncio.sleep(0.05)
        yield f"unix://{socket_path}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _redis_store(url):
    import redis.asyncio as redis_asyncio

    return RedisStateStore(redis_asyncio.from_url(url))


async def test_redis_store_semantics(redis_url):
    store = _redis_store(redis_url)
    await store.set("a", {"x": [1, 2]}, ttl=5)
    assert await store.get("a") == {"x": [1, 2]}
    assert await store.add("a", 1, ttl=5) is False
    assert await store.add("b", 1, ttl=5) is True
    assert await store.pop("b") == 1 and await store.pop("b") is None
    await store.set("short", 1, ttl=0.05)
    await asyncio.sleep(0.15)
    assert await store.get("short") is None
    keys = await store.client.keys("*")
    assert all(k.startswith(b"bakame:twilio:") for k in keys)
    await store.client.aclose() if hasattr(store.client, "aclose") else await store.client.close()


async def test_redis_store_batched_calls_mean_what_the_single_ones_do(redis_url):
    for store in (InMemoryStateStore(), _redis_store(redis_url)):
        await store.set("conv", {"lang": "rw"}, ttl=5)
        assert await store.add_and_get("sid", {"s": 1}, 5, "conv") == (True, {"lang": "rw"})
        assert await store.add_and_get("sid", {"s": 2}, 5, "none") == (False, None)
        assert await store.get("sid") == {"s": 1}
        await store.set_many([("conv", {"lang": "en"}, 5), ("sid", {"s": 3}, 0.05)])
        await store.set_many([])
        assert await store.get("conv") == {"lang": "en"} and await store.get("sid") == {"s": 3}
        await asyncio.sleep(0.15)
        assert await store.get("sid") is None  # each item keeps its own ttl
        await store.delete("conv")


async def test_two_processes_share_a_slow_voice_turn_through_redis(redis_url):
    """Process A holds the turn; Twilio's Redirect lands on process B, which answers."""
    agent = ScriptedAgent(delay=1.3)
    settings = dict(auth_token=AUTH_TOKEN, sender_id_secret=SENDER_SECRET, public_base_url=PUBLIC_BASE,
                    turn_budget=1.0, timing_instrumentation=False)
    process_a = TwilioVoiceInput(VoiceSettings(**settings), store=_redis_store(redis_url))
    process_b = TwilioVoiceInput(VoiceSettings(**settings), store=_redis_store(redis_url))
    client_a = TwilioClient(make_app([process_a], agent))
    client_b = TwilioClient(make_app([process_b], agent))
    held = parse_twiml((await client_a.post("/webhooks/twilio_voice/webhook", call_params(CallStatus="ringing"))).text)
    redirect = next_request(held)
    assert "step=await" in redirect
    answer = parse_twiml((await client_b.post(redirect, call_params())).text)
    assert said(answer) == ["Muraho! Hello! I am BAKAME. Press 1 for math, 9 to change language."]
    # the call state travelled too: B knows the menu is single-key
    assert find(answer, "Gather").get("numDigits") == "1"
    again = parse_twiml((await client_a.post(redirect, call_params())).text)
    assert "Muraho! Hello! I am BAKAME" not in " ".join(said(again))
    assert len(agent.received) == 1


async def test_sms_duplicates_are_caught_across_processes_through_redis(redis_url):
    agent = ScriptedAgent()
    settings = dict(auth_token=AUTH_TOKEN, sender_id_secret=SENDER_SECRET, public_base_url=PUBLIC_BASE,
                    timing_instrumentation=False)
    client_a = TwilioClient(make_app([TwilioSmsInput(SmsSettings(**settings), store=_redis_store(redis_url))], agent))
    client_b = TwilioClient(make_app([TwilioSmsInput(SmsSettings(**settings), store=_redis_store(redis_url))], agent))
    params = sms_params("1", sid="SM" + "f" * 32)
    first = messages_of(parse_twiml((await client_a.post("/webhooks/twilio_sms/webhook", params)).text))
    retry = messages_of(parse_twiml((await client_b.post("/webhooks/twilio_sms/webhook", params)).text))
    assert first == retry == ["What is 3 + 4?"] and len(agent.received) == 1
