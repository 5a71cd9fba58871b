"""Outbound SMS through the aggregator's Python SDK (``africastalking``), queued.

The aggregator's SMS callback is answered 200 at once; the reply goes out afterwards through
``africastalking``'s ``SMSService.send`` (a blocking ``requests`` call, run in a thread). In
between it waits in an outbox:

* with ``REDIS_URL``: a Redis list ``<prefix>:at_sms:outbox``; an item being sent is moved to
  ``...:sending`` (``LMOVE``) and removed once sent, and a process that starts moves what a
  crashed one left in ``...:sending`` back, so a reply survives a restart (a reply whose
  send had already reached the aggregator when the process died may go out twice);
* without: a list in this process (``make run``).

The learner's number is needed to send, but no raw number is stored: it is sealed with
``core.number_vault`` (AES-GCM, ``NUMBER_KEYS``, the conversation id as associated data). Before every send the
opt-out registry (``infra.optout``) is asked; only the confirmation of an opt-out itself goes
out to an opted-out learner. A failed send is retried ``max_attempts`` times, then dropped
with a log line naming the conversation by its short reference.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Dict, List, Optional, Text

from core.identity import short_ref
from core.number_vault import NumberVault
from infra.optout import OptOutRegistry

logger = logging.getLogger(__name__)


class AtSmsSender:
    """``africastalking.SMSService`` for one application; ``send`` raises when not accepted."""

    def __init__(self, username: Text, api_key: Text, sender: Optional[Text] = None,
                 api_base_url: Optional[Text] = None) -> None:
        from africastalking.SMS import SMSService

        self.service = SMSService(username, api_key)
        if api_base_url:
            # The SDK offers only AT's own sandbox as another host; a local fake API (tests) or a
            # regional endpoint replaces the base URL it builds in _init_service.
            self.service._baseUrl = api_base_url.rstrip("/") + "/version1"
        self.sender = sender or None

    def send(self, text: Text, number: Text) -> Dict[Text, Any]:
        answer = self.service.send(text, [number], sender_id=self.sender)
        data = answer if isinstance(answer, dict) else json.loads(answer)
        recipients = (data.get("SMSMessageData") or {}).get("Recipients") or []
        if not recipients or str(recipients[0].get("status")).lower() != "success":
            raise RuntimeError(f"not accepted: {(data.get('SMSMessageData') or {}).get('Message') or recipients}")
        return data


class SmsOutbox:
    """Queued outbound SMS: ``put`` at once, a background task sends."""

    def __init__(self, sender: AtSmsSender, optouts: OptOutRegistry, box: NumberVault, client: Any = None,
                 key: Text = "bakame:at_sms:outbox", max_attempts: int = 5, retry_delay: float = 2.0) -> None:
        self.sender, self.optouts, self.box = sender, optouts, box
        self.client, self.key, self.sending_key = client, key, key + ":sending"
        self.max_attempts, self.retry_delay = max_attempts, retry_delay
        self._local: List[Text] = []
        self._task: Optional[asyncio.Task] = None
        self._recovered = False

    async def put(self, sender_id: Text, number: Text, text: Text, confirmation: bool = False) -> None:
        item = json.dumps({"sender_id": sender_id, "to": self.box.seal(number, sender_id), "text": text,
                           "confirmation": confirmation, "attempts": 0})
        await self._push(item)
        self.wake()

    def wake(self) -> None:
        """Start the sending task unless it runs."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.drain())

    async def _push(self, item: Text) -> None:
        if self.client is not None:
            await self.client.rpush(self.key, item)
        else:
            self._local.append(item)

    async def _take(self) -> Optional[Text]:
        if self.client is None:
            return self._local.pop(0) if self._local else None
        raw = await self.client.lmove(self.key, self.sending_key, "LEFT", "RIGHT")
        return raw.decode("utf-8") if isinstance(raw, bytes) else raw

    async def _done(self, item: Text) -> None:
        if self.client is not None:
            await self.client.lrem(self.sending_key, 1, item)

    async def _recover(self) -> None:
        """What a stopped process was sending goes back into the outbox (once per process)."""
        if self._recovered or self.client is None:
            return
        self._recovered = True
        while await self.client.lmove(self.sending_key, self.key, "RIGHT", "LEFT") is not None:
            pass

    async def drain(self) -> int:
        """Send everything queued (retrying failures); the number of messages sent."""
        sent = 0
        await self._recover()
        while True:
            item = await self._take()
            if item is None:
                return sent
            try:
                sent += await self._send(json.loads(item))
            finally:
                await self._done(item)

    async def _send(self, message: Dict[Text, Any]) -> int:
        ref = short_ref(message.get("sender_id") or "")
        if not message.get("confirmation") and not await self.optouts.may_send(message["sender_id"]):
            logger.info("SMS to %s not sent: the learner opted out.", ref)
            return 0
        number = self.box.open(message.get("to") or "", message.get("sender_id") or "")
        if number is None:
            logger.error("SMS to %s dropped: its number cannot be decrypted (its key left NUMBER_KEYS?).", ref)
            return 0
        try:
            await asyncio.to_thread(self.sender.send, message["text"], number)
            return 1
        except Exception as exc:  # noqa: BLE001 - the SDK raises its own and requests' errors
            message["attempts"] = int(message.get("attempts") or 0) + 1
            if message["attempts"] >= self.max_attempts:
                logger.error("SMS to %s dropped after %d attempts: %s", ref, message["attempts"], exc)
                return 0
            logger.warning("SMS to %s failed (%s); retrying.", ref, exc)
            await asyncio.sleep(self.retry_delay * message["attempts"])
            await self._push(json.dumps(message))
            return 0
