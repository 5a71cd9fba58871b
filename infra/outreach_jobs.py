"""Outbound jobs that survive restarts: a Redis sorted set of due times and a hash of jobs.

Why not Rasa's ``ReminderScheduled``: Rasa keeps reminders in the process's scheduler and
re-creates them from the tracker only when that tracker is loaded again, so a restart can
lose or delay them, and several Rasa processes would each fire them. Here:

* ``<prefix>:jobs`` -- hash: job id -> JSON (``kind``, ``sender_id``, ``due``, ...; never a
  number: the number is looked up in ``infra.number_store`` when the job runs, so an erased
  learner's job finds nothing to send to);
* ``<prefix>:due`` -- sorted set: job id -> due time (epoch seconds).

:meth:`JobQueue.claim` takes the due jobs atomically (a Lua script moves their due time a
lease ahead), so two workers never take the same job, and a worker that dies mid-job leaves
it to be taken again when the lease ends: nothing queued is lost. :meth:`JobQueue.once` is
the idempotency key (``once_key``: the job id, plus the due time for a weekly report), set
just before the request to Twilio, so a job taken twice is still sent once; a request that
fails is released (``release``) and retried (one that timed out after Twilio accepted it
could then go out twice: docs/outreach.md).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Text

from infra.number_store import _text, outreach_prefix

# Take up to ARGV[3] jobs due by ARGV[1]; push each one's due time to ARGV[2] (the lease).
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
"""


@dataclass
class Job:
    id: Text
    kind: Text  # callback | reminder | guardian_invite | guardian_report
    sender_id: Text  # whom the job sends to (a learner, or a guardian)
    due: float
    bulk: bool = True  # scheduled (08:00-20:00 only); False: a callback the learner asked for
    channel: Text = "sms"  # sms | call
    language: Optional[Text] = None
    learner_id: Optional[Text] = None  # guardian jobs: the learner reported on
    attempts: int = 0
    extra: Dict[Text, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Text) -> "Job":
        return cls(**json.loads(raw))

    def to_json(self) -> Text:
        return json.dumps(asdict(self))


class JobQueue:
    def __init__(self, client: Any, prefix: Optional[Text] = None, lease: float = 120.0) -> None:
        self.client, self.lease = client, lease
        self.prefix = prefix or outreach_prefix()
        self.jobs_key, self.due_key = f"{self.prefix}:jobs", f"{self.prefix}:due"
        self._claim = client.register_script(_CLAIM)

    async def put(self, job: Job) -> None:
        """Add or replace ``job`` (same id: the new one wins)."""
        await self.client.hset(self.jobs_key, job.id, job.to_json())
        await self.client.zadd(self.due_key, {job.id: job.due})

    async def get(self, job_id: Text) -> Optional[Job]:
        raw = _text(await self.client.hget(self.jobs_key, job_id))
        return Job.from_json(raw) if raw else None

    async def claim(self, now: Optional[float] = None, limit: int = 20) -> List[Job]:
        now = time.time() if now is None else now
        ids = await self._claim(keys=[self.due_key], args=[now, now + self.lease, limit])
        jobs = []
        for job_id in ids:
            job = await self.get(_text(job_id))
            if job is None:
                await self.client.zrem(self.due_key, job_id)
            else:
                jobs.append(job)
        return jobs

    async def done(self, job: Job) -> None:
        await self.client.hdel(self.jobs_key, job.id)
        await self.client.zrem(self.due_key, job.id)

    async def later(self, job: Job, due: float) -> None:
        """Run ``job`` again at ``due`` (postponed, or its next week)."""
        job.due = due
        await self.put(job)

    def once_key(self, job: Job) -> Text:
        weekly = f":{int(job.due)}" if job.kind == "guardian_report" else ""
        return f"{self.prefix}:sent:{job.id}{weekly}"

    async def once(self, job: Job, ttl: float = 14 * 86400.0) -> bool:
        """True the first time this job (this week's, for a report) is about to be sent, False after."""
        return bool(await self.client.set(self.once_key(job), "1", nx=True, ex=int(ttl)))

    async def release(self, job: Job) -> None:
        """The send failed: ``once`` lets it through again."""
        await self.client.delete(self.once_key(job))

    async def pending(self, sender_id: Optional[Text] = None) -> List[Job]:
        jobs = [Job.from_json(_text(raw)) for raw in (await self.client.hgetall(self.jobs_key)).values()]
        return [j for j in jobs if sender_id is None or sender_id in (j.sender_id, j.learner_id)]


def erase_jobs_sync(client: Any, sender_id: Text, prefix: Optional[Text] = None) -> int:
    """Remove every job to or about ``sender_id`` (synchronous client); how many."""
    prefix = prefix or outreach_prefix()
    removed = 0
    for job_id, raw in client.hgetall(f"{prefix}:jobs").items():
        record = json.loads(_text(raw))
        if sender_id in (record.get("sender_id"), record.get("learner_id")):
            client.hdel(f"{prefix}:jobs", job_id)
            client.zrem(f"{prefix}:due", job_id)
            removed += 1
    return removed
