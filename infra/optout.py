"""Opt-out: who asked for no more messages, and whether a message may be sent now.

Rwanda's regulator (RURA) rules for every number we send from: STOP and HELP keywords, in
English and Kinyarwanda, are handled at once and free (no turn of the assistant, the reply
to STOP is the one confirmation); opt-outs are recorded and honoured before *any* outbound
message (replies, reminders, guardian reports); bulk sending only 08:00-20:00 Rwanda time.

* :func:`keyword_of` -- the keyword an incoming SMS is (``stop`` / ``start`` / ``help``) or None.
  Only a message that is the keyword alone counts ("stop", "STOP.", "Hagarika!"), so
  "stop the story" still reaches the assistant.
* :class:`OptOutRegistry` -- per conversation id (the keyed hash, never the number): opted
  out or not, since when, on which channel. Durable: a Redis hash ``<REDIS_KEY_PREFIX>:optout``
  without expiry in production (``REDIS_URL``), a dict for ``make run``. ``may_send`` is the
  check every sender calls first.
* :func:`bulk_window_open` -- whether a bulk (not a reply) message may go out now.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Text, Tuple

import yaml

from core.config import env
from infra.redis_client import redis_client

logger = logging.getLogger(__name__)

# The keywords are data: infra/optout_keywords.yml (kind -> words).
KEYWORDS: Mapping[Text, frozenset] = {
    kind: frozenset(str(w).lower() for w in words)
    for kind, words in yaml.safe_load((Path(__file__).with_name("optout_keywords.yml")).read_text("utf-8")).items()
}

RWANDA = timezone(timedelta(hours=2))  # CAT, no daylight saving
BULK_HOURS = (8, 20)  # bulk messages from 08:00 to 20:00 Rwanda time


def keyword_of(text: Optional[Text]) -> Optional[Text]:
    """``stop``, ``start`` or ``help`` when the message is that keyword alone, else None."""
    word = (text or "").strip().strip(".!?,;:'\"").strip().lower()
    for kind, words in KEYWORDS.items():
        if word in words:
            return kind
    return None


def bulk_window_open(now: Optional[datetime] = None, hours: Tuple[int, int] = BULK_HOURS) -> bool:
    """True between 08:00 and 20:00 Rwanda time (``now``: an aware datetime, default the clock;
    ``hours``: another window, e.g. outreach's ``OUTREACH_HOURS``)."""
    local = (now or datetime.now(timezone.utc)).astimezone(RWANDA)
    return hours[0] <= local.hour < hours[1]


def next_bulk_time(now: Optional[datetime] = None, hours: Tuple[int, int] = BULK_HOURS) -> datetime:
    """``now`` when the bulk window is open, else the next opening (08:00) Rwanda time (aware, UTC)."""
    now = now or datetime.now(timezone.utc)
    if bulk_window_open(now, hours):
        return now
    local = now.astimezone(RWANDA)
    opening = local.replace(hour=hours[0], minute=0, second=0, microsecond=0)
    if local.hour >= hours[1]:
        opening += timedelta(days=1)
    return opening.astimezone(timezone.utc)


class OptOutRegistry:
    """Opt-out records per conversation id; ``may_send`` before every outbound message."""

    def __init__(self, client: Any = None, key: Optional[Text] = None) -> None:
        """``client``: an async Redis client (None: kept in this process only, for ``make run``)."""
        self.client = client
        self.key = key or f"{env('REDIS_KEY_PREFIX', default='bakame')}:optout"
        self._local: Dict[Text, Text] = {}

    async def record(self, sender_id: Text) -> Optional[Dict[Text, Any]]:
        """``{"opted_out": bool, "at": epoch seconds, "channel": ...}`` or None (never asked)."""
        raw = await self.client.hget(self.key, sender_id) if self.client is not None else self._local.get(sender_id)
        if raw is None:
            return None
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)

    async def _save(self, sender_id: Text, opted_out: bool, channel: Text) -> None:
        value = json.dumps({"opted_out": opted_out, "at": round(time.time(), 3), "channel": channel})
        if self.client is not None:
            await self.client.hset(self.key, sender_id, value)
        else:
            self._local[sender_id] = value

    async def opt_out(self, sender_id: Text, channel: Text) -> None:
        await self._save(sender_id, True, channel)
        logger.info("Learner %s opted out on %s.", sender_id[:11], channel)

    async def opt_in(self, sender_id: Text, channel: Text) -> None:
        await self._save(sender_id, False, channel)
        logger.info("Learner %s opted in again on %s.", sender_id[:11], channel)

    async def is_opted_out(self, sender_id: Text) -> bool:
        return bool((await self.record(sender_id) or {}).get("opted_out"))

    async def may_send(self, sender_id: Text, *, bulk: bool = False, now: Optional[datetime] = None) -> bool:
        """Whether a message to ``sender_id`` may go out: not opted out, and for ``bulk``
        messages (not replies) only inside the 08:00-20:00 window."""
        if bulk and not bulk_window_open(now):
            return False
        return not await self.is_opted_out(sender_id)


_REGISTRIES: Dict[Text, OptOutRegistry] = {}


def get_registry(redis_url: Optional[Text] = None) -> OptOutRegistry:
    """The process-wide registry: Redis when ``redis_url`` (or ``REDIS_URL``) is set."""
    url = (redis_url if redis_url is not None else env("REDIS_URL", default="")).strip()
    registry = _REGISTRIES.get(url)
    if registry is None:
        registry = _REGISTRIES[url] = OptOutRegistry(redis_client(url) if url else None)
    return registry
