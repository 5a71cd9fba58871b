"""The phone numbers outreach must keep, sealed (``core.number_vault``), and the guardian links.

All in Redis under ``<REDIS_KEY_PREFIX>:outreach:`` (apart from the pseudonymous
conversations, which never hold a number):

* ``numbers`` -- hash: conversation id -> the sealed number of that learner or guardian
  (sealed with the conversation id as associated data);
* ``guardian`` -- hash: learner id -> ``{"guardian": <guardian's conversation id>,
  "status": "pending" | "confirmed", "language": .., "since": ..}`` (no number: the
  guardian's number is in ``numbers`` under the guardian's id);
* ``wards:<guardian id>`` -- set of the learners a guardian gets reports for.

``python -m infra.number_store reencrypt`` re-seals every stored number (these and the
aggregator's SMS outbox; queued jobs hold none) under the first key of ``NUMBER_KEYS`` (docs/outreach.md,
key rotation). :func:`export_sync` / :func:`erase_sync`: one learner's outreach data (``infra.learner_data``).
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, Dict, List, Optional, Text

from core.config import env
from core.number_vault import NumberVault


def outreach_prefix(key_prefix: Optional[Text] = None) -> Text:
    return f"{key_prefix or env('REDIS_KEY_PREFIX', default='bakame')}:outreach"


def _text(raw: Any) -> Optional[Text]:
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw


class NumberStore:
    """Sealed numbers per conversation id, and guardian links (async Redis client)."""

    def __init__(self, client: Any, vault: NumberVault, prefix: Optional[Text] = None) -> None:
        self.client, self.vault = client, vault
        self.prefix = prefix or outreach_prefix()
        self.numbers_key, self.guardian_key = f"{self.prefix}:numbers", f"{self.prefix}:guardian"

    async def keep(self, sender_id: Text, number: Text) -> None:
        await self.client.hset(self.numbers_key, sender_id, self.vault.seal(number, sender_id))

    async def number(self, sender_id: Text) -> Optional[Text]:
        return self.vault.open(_text(await self.client.hget(self.numbers_key, sender_id)), sender_id)

    # ------------------------------------------------------------------ guardians
    async def link(self, learner_id: Text, guardian_id: Text, number: Text, language: Text) -> None:
        """A pending link: reports start once the guardian confirms (double opt-in)."""
        await self.keep(guardian_id, number)
        old = await self.guardian_of(learner_id)
        if old and old["guardian"] != guardian_id:
            await self.client.srem(self._wards_key(old["guardian"]), learner_id)
        record = {"guardian": guardian_id, "status": "pending", "language": language, "since": round(time.time())}
        await self.client.hset(self.guardian_key, learner_id, json.dumps(record))
        await self.client.sadd(self._wards_key(guardian_id), learner_id)

    async def guardian_of(self, learner_id: Text) -> Optional[Dict[Text, Any]]:
        raw = _text(await self.client.hget(self.guardian_key, learner_id))
        return json.loads(raw) if raw else None

    async def wards(self, guardian_id: Text) -> List[Text]:
        return sorted(_text(m) for m in await self.client.smembers(self._wards_key(guardian_id)))

    async def confirm(self, guardian_id: Text, language: Optional[Text] = None) -> List[Text]:
        """The guardian said YES (in ``language``: the reports' language from now on, when given):
        their pending links become confirmed; the learners confirmed now."""
        confirmed = []
        for learner_id in await self.wards(guardian_id):
            record = await self.guardian_of(learner_id)
            if record and record["guardian"] == guardian_id and record["status"] == "pending":
                record.update(status="confirmed", confirmed_at=round(time.time()))
                if language:
                    record["language"] = language
                await self.client.hset(self.guardian_key, learner_id, json.dumps(record))
                confirmed.append(learner_id)
        return confirmed

    def _wards_key(self, guardian_id: Text) -> Text:
        return f"{self.prefix}:wards:{guardian_id}"


def export_sync(client: Any, sender_id: Text, prefix: Optional[Text] = None) -> Dict[Text, Any]:
    """What outreach holds about ``sender_id`` (synchronous client; ``infra.learner_data``): whether
    a number is kept (never the number), the guardian link, the learners they get reports for,
    queued jobs."""
    prefix = prefix or outreach_prefix()
    raw = _text(client.hget(f"{prefix}:guardian", sender_id))
    jobs = [json.loads(_text(v)) for v in client.hgetall(f"{prefix}:jobs").values()]
    return {"number_kept_encrypted": bool(client.hexists(f"{prefix}:numbers", sender_id)),
            "guardian": json.loads(raw) if raw else None,
            "reports_for": sorted(_text(m) for m in client.smembers(f"{prefix}:wards:{sender_id}")),
            "jobs": [j for j in jobs if sender_id in (j.get("sender_id"), j.get("learner_id"))]}


def erase_sync(client: Any, sender_id: Text, prefix: Optional[Text] = None) -> int:
    """Remove a learner's number, guardian link (and the guardian's number when no other learner
    names them) and queued outreach jobs; a synchronous client (``infra.learner_data``). Keys removed."""
    from infra.outreach_jobs import erase_jobs_sync

    prefix = prefix or outreach_prefix()
    removed = int(client.hdel(f"{prefix}:numbers", sender_id))
    raw = _text(client.hget(f"{prefix}:guardian", sender_id))
    if raw:
        guardian = json.loads(raw)["guardian"]
        removed += int(client.hdel(f"{prefix}:guardian", sender_id))
        client.srem(f"{prefix}:wards:{guardian}", sender_id)
        if not client.scard(f"{prefix}:wards:{guardian}"):
            removed += int(client.hdel(f"{prefix}:numbers", guardian))
    for ward in client.smembers(f"{prefix}:wards:{sender_id}"):  # the one erased is a guardian
        client.hdel(f"{prefix}:guardian", _text(ward))
    removed += int(client.delete(f"{prefix}:wards:{sender_id}"))
    removed += erase_jobs_sync(client, sender_id, prefix)
    for key in client.scan_iter(match=f"{prefix}:count:*:{sender_id}:*", count=1000):
        removed += int(client.delete(key))
    return removed


async def reencrypt(client: Any, vault: NumberVault, prefix: Optional[Text] = None,
                    outbox_key: Optional[Text] = None) -> Dict[Text, int]:
    """Re-seal every stored number under the vault's current key; counts per place."""
    prefix = prefix or outreach_prefix()
    counts = {"numbers": 0, "unreadable": 0, "outbox": 0}
    for field, sealed in (await client.hgetall(f"{prefix}:numbers")).items():
        field, sealed = _text(field), _text(sealed)
        fresh = vault.reseal(sealed, field)
        if fresh is None:
            counts["unreadable"] += 1
        elif fresh != sealed:
            await client.hset(f"{prefix}:numbers", field, fresh)
            counts["numbers"] += 1
    outbox_key = outbox_key or f"{env('REDIS_KEY_PREFIX', default='bakame')}:at_sms:outbox"
    for key in (outbox_key, outbox_key + ":sending"):
        counts["outbox"] += await _reseal_list(client, vault, key)
    return counts


async def _reseal_list(client: Any, vault: NumberVault, key: Text) -> int:
    """The aggregator's outbox items (``infra.at_outbox``): ``to`` sealed with ``sender_id``."""
    changed = 0
    for index, raw in enumerate(await client.lrange(key, 0, -1)):
        item = json.loads(_text(raw))
        fresh = vault.reseal(item.get("to") or "", item.get("sender_id") or "")
        if fresh and fresh != item.get("to"):
            item["to"] = fresh
            await client.lset(key, index, json.dumps(item))
            changed += 1
    return changed


def main(argv: Optional[List[Text]] = None) -> int:
    """``reencrypt``: re-seal every number under the first key of ``NUMBER_KEYS``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] != ["reencrypt"]:
        print("usage: python -m infra.number_store reencrypt", file=sys.stderr)
        return 2
    from infra.redis_client import redis_client
    from infra.settings import production_env

    client = redis_client(production_env()["REDIS_URL"])
    counts = asyncio.run(reencrypt(client, NumberVault.from_env()))
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 1 if counts["unreadable"] else 0


if __name__ == "__main__":
    sys.exit(main())
