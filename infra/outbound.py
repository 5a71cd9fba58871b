"""Outbound calls and SMS through Twilio's REST API, and the global caps on them.

* :class:`TwilioOutbound` -- ``twilio.rest.Client`` (``calls.create``, ``messages.create``),
  run in a thread (the client is blocking). ``TWILIO_API_BASE_URL`` points it at another
  API base (a local fake in tests): the client builds every URL from ``client.api.base_url``.
* :class:`OutboundCaps` -- calls in progress (a sorted set of CallSids, removed when the
  call ends, forgotten after ``max_call_seconds``) and the month's estimated spend
  (``<prefix>:spend:<YYYY-MM>``, in US cents): a job over a cap waits or is dropped.
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any, Optional, Text

from infra.number_store import outreach_prefix


class TwilioOutbound:
    """Twilio's REST client for one account."""

    def __init__(self, account_sid: Text, auth_token: Text, api_base_url: Optional[Text] = None,
                 timeout: float = 10.0) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        if api_base_url:
            self.client.api.base_url = api_base_url.rstrip("/")

    async def call(self, to: Text, from_: Text, url: Text, status_callback: Optional[Text] = None) -> Text:
        """Start a call whose TwiML comes from ``url``; its CallSid."""
        def create() -> Any:
            extra = dict(status_callback=status_callback, status_callback_method="POST",
                         status_callback_event=["completed"]) if status_callback else {}
            return self.client.calls.create(to=to, from_=from_, url=url, method="POST", **extra)

        return (await asyncio.to_thread(create)).sid

    async def sms(self, to: Text, from_: Text, body: Text) -> Text:
        message = await asyncio.to_thread(lambda: self.client.messages.create(to=to, from_=from_, body=body))
        return message.sid


class OutboundCaps:
    """Calls in progress and the month's spend, shared by every process through Redis."""

    def __init__(self, client: Any, max_calls: int, monthly_budget_cents: float, prefix: Optional[Text] = None,
                 max_call_seconds: float = 1200.0) -> None:
        self.client, self.max_calls, self.budget = client, max_calls, monthly_budget_cents
        self.prefix = prefix or outreach_prefix()
        self.calls_key, self.max_call_seconds = f"{self.prefix}:active_calls", max_call_seconds

    async def calls_in_progress(self, now: Optional[float] = None) -> int:
        now = time.time() if now is None else now
        await self.client.zremrangebyscore(self.calls_key, "-inf", now - self.max_call_seconds)
        return int(await self.client.zcard(self.calls_key))

    async def call_slot_free(self, now: Optional[float] = None) -> bool:
        return self.max_calls <= 0 or await self.calls_in_progress(now) < self.max_calls

    async def call_started(self, call_sid: Text, now: Optional[float] = None) -> None:
        await self.client.zadd(self.calls_key, {call_sid: time.time() if now is None else now})

    async def call_ended(self, call_sid: Text) -> bool:
        return bool(await self.client.zrem(self.calls_key, call_sid))

    def _spend_key(self, now: Optional[float]) -> Text:
        month = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc).strftime("%Y-%m")
        return f"{self.prefix}:spend:{month}"

    async def spent(self, now: Optional[float] = None) -> float:
        return float(await self.client.get(self._spend_key(now)) or 0)

    async def within_budget(self, cost_cents: float, now: Optional[float] = None) -> bool:
        return self.budget <= 0 or await self.spent(now) + cost_cents <= self.budget

    async def spend(self, cost_cents: float, now: Optional[float] = None) -> None:
        key = self._spend_key(now)
        await self.client.incrbyfloat(key, cost_cents)
        await self.client.expire(key, 40 * 86400)
