"""Turns that may outlast Twilio's 15-second webhook limit.

A turn (transcription + Rasa) runs as a background task whose result is written to the
state store under ``<namespace>:turn:<scope>:<turn_id>``. The webhook waits for it up to
the turn budget (``VOICE_TURN_BUDGET``, about 10 s):

* answered in time: the result is returned in this very response; the store is not
  touched (``TurnRunner.run``: nobody else knows the turn yet);
* not in time: the channel answers with a short holding prompt and, on voice, a
  ``<Redirect>`` to ``...?step=await&turn=<turn_id>``; that request (in this process, or in
  another one when the store is Redis) waits again and takes the result.

Once handed over, the record is written once, when the turn ends, and only ``pop`` hands it out, so a turn is
delivered at most once; a result nobody picked up (the caller was cut off, the holding
limit was reached) stays listed as pending in the call/conversation state and is prepended
to the next reply, so no turn is lost either.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text, Tuple

from connectors.state import StateStore, wait_for_value

logger = logging.getLogger(__name__)

RUNNING, DONE, FAILED, MISSING = "running", "done", "failed", "missing"


def result_of(record: Optional[Dict[Text, Any]]) -> Optional[Dict[Text, Any]]:
    """What a turn that ended well left (its result), else None."""
    result = (record or {}).get("result")
    return result if (record or {}).get("status") == DONE and isinstance(result, dict) else None


def results_of(records: Optional[List[Dict[Text, Any]]]) -> List[Dict[Text, Any]]:
    """The results of the turns among ``records`` that ended well, in order."""
    return [result for result in map(result_of, records or []) if result is not None]


class TurnRunner:
    def __init__(self, store: StateStore, namespace: Text, result_ttl: float = 900.0, poll_interval: float = 0.1) -> None:
        self.store = store
        self.namespace = namespace
        self.result_ttl = result_ttl
        self.poll_interval = poll_interval
        self._local: Dict[Text, "asyncio.Task"] = {}

    def key(self, scope: Text, turn_id: Text) -> Text:
        return f"{self.namespace}:turn:{scope}:{turn_id}"

    async def start(self, scope: Text, turn_id: Text, work: Callable[[], Awaitable[Any]]) -> None:
        """Run ``work()`` in the background; its (JSON) result becomes the turn's record."""
        key = self.key(scope, turn_id)
        await self.store.set(key, {"status": RUNNING, "since": time.time()}, self.result_ttl)
        self._track(key, asyncio.get_running_loop().create_task(self._run(key, work)))

    async def run(
        self, scope: Text, turn_id: Text, work: Callable[[], Awaitable[Any]], timeout: float
    ) -> Optional[Dict[Text, Any]]:
        """``start`` then ``wait`` in one, for a turn nobody else knows of yet: the store is
        written only if the turn outlasts ``timeout`` (then as ``start`` would have), so a turn
        answered in time costs no round trip to Redis."""
        key = self.key(scope, turn_id)
        since = time.time()
        task = asyncio.get_running_loop().create_task(self._outcome(work))
        try:
            return await asyncio.wait_for(asyncio.shield(task), max(0.0, timeout))
        except asyncio.TimeoutError:
            pass
        # handed over: listed as running before the caller names the turn (pending, <Redirect>)
        await self.store.set(key, {"status": RUNNING, "since": since}, self.result_ttl)
        self._track(key, asyncio.get_running_loop().create_task(self._persist(key, task)))
        return None

    def _track(self, key: Text, task: "asyncio.Task") -> None:
        self._local[key] = task

        def _forget(_: Any) -> None:
            try:
                asyncio.get_running_loop().call_later(self.result_ttl, self._local.pop, key, None)
            except RuntimeError:  # loop closing
                self._local.pop(key, None)

        task.add_done_callback(_forget)

    @staticmethod
    async def _outcome(work: Callable[[], Awaitable[Any]]) -> Dict[Text, Any]:
        try:
            return {"status": DONE, "result": await work()}
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("A Twilio turn failed.")
            return {"status": FAILED}

    async def _persist(self, key: Text, task: "asyncio.Task") -> Dict[Text, Any]:
        try:
            record = await task
        except asyncio.CancelledError:
            await self._save(key, {"status": FAILED})
            raise
        await self._save(key, record)
        return record

    async def _run(self, key: Text, work: Callable[[], Awaitable[Any]]) -> Dict[Text, Any]:
        try:
            record = await self._outcome(work)
        except asyncio.CancelledError:
            await self._save(key, {"status": FAILED})
            raise
        await self._save(key, record)
        return record

    async def _save(self, key: Text, record: Dict[Text, Any]) -> None:
        try:
            await self.store.set(key, record, self.result_ttl)
        except Exception:
            logger.exception("Could not store the result of a Twilio turn.")

    async def wait(self, scope: Text, turn_id: Text, timeout: float) -> Optional[Dict[Text, Any]]:
        """The finished record, consumed; ``None`` if still running after ``timeout``.

        ``{"status": "missing"}`` when there is nothing to deliver (unknown turn, expired,
        or already delivered).
        """
        key = self.key(scope, turn_id)
        task = self._local.get(key)
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), max(0.0, timeout))
            except asyncio.TimeoutError:
                return None
            except Exception:  # the task itself failed: its record says so
                pass
        else:
            value = await wait_for_value(
                self.store, key, lambda v: v.get("status") != RUNNING, timeout, self.poll_interval
            )
            if value is None:
                return {"status": MISSING}
            if value.get("status") == RUNNING:
                return None
        record = await self.store.pop(key)
        self._local.pop(key, None)
        if record is None:
            return {"status": MISSING}
        if record.get("status") == RUNNING:  # cannot happen once the task ended; be safe
            await self.store.set(key, record, self.result_ttl)
            return None
        return record

    async def collect_ready(self, scope: Text, turn_ids: List[Text]) -> Tuple[List[Dict[Text, Any]], List[Text]]:
        """Finished records of earlier, undelivered turns (consumed) and the ids still running."""
        ready, running = [], []
        for turn_id in turn_ids or []:
            key = self.key(scope, turn_id)
            value = await self.store.get(key)
            if value is None:
                continue
            if value.get("status") == RUNNING:
                running.append(turn_id)
                continue
            record = await self.store.pop(key)
            self._local.pop(key, None)
            if record is not None:
                ready.append(record)
        return ready, running
