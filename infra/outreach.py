"""Reaching learners and guardians at no cost to them: missed-call callback, practice
reminders, guardian reports (docs/outreach.md).

:class:`Outreach` is what the channels call (``connectors/outreach_voice.py``,
``connectors/outreach_desk.py``) and the worker that sends:

* ``request_callback`` -- a missed call on the callback number: limits (per learner per
  Rwanda day, quiet hours) checked at once; a callback job due ``callback_delay`` seconds later
  (not bound to the 08:00-20:00 window: the learner asked for it);
* ``request_reminder`` -- one reminder (SMS or call) a day, at the time asked, sent only
  08:00-20:00 Rwanda time;
* ``link_guardian`` / ``guardian_said_yes`` -- double opt-in: the invitation, then weekly
  reports once the guardian replies YES / YEGO;
* ``run_due`` -- every job due: opt-out (``infra.optout``, every send), the window for
  scheduled jobs, the number (``infra.number_store``; gone after an erase: nothing is sent),
  the monthly budget and, for calls, the cap on calls in progress (over it the job waits),
  then one send (``JobQueue.once``).

SMS go through Twilio's REST API, or with ``OUTREACH_SMS_VIA=aggregator`` through the
aggregator's outbox (``infra.at_outbox``: where Twilio cannot deliver in Rwanda).

``start`` runs ``run_due`` every ``poll_seconds`` in the Rasa process, only in the process
holding the Redis lock ``<prefix>:worker`` (several Rasa processes, one sender).
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional, Text, Tuple

from core import texts
from core.identity import short_ref
from core.number_vault import NumberVault, VaultConfigError
from infra import guardian_report
from infra.number_store import NumberStore, outreach_prefix
from infra.optout import RWANDA, OptOutRegistry, next_bulk_time
from infra.outbound import OutboundCaps, TwilioOutbound
from infra.outreach_jobs import Job, JobQueue
from infra.outreach_settings import OutreachSettings

logger = logging.getLogger(__name__)

WEEK = 7 * 86400.0
RETRY_SECONDS = 30.0  # a call waiting for a free slot, a failed send
MAX_ATTEMPTS = 5


def rwanda(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc).astimezone(RWANDA)


class Outreach:
    def __init__(self, settings: OutreachSettings, client: Any, vault: NumberVault, sender: Any,
                 optouts: OptOutRegistry, progress: Any = None, prefix: Optional[Text] = None,
                 clock: Callable[[], float] = time.time, sms_outbox: Any = None) -> None:
        """``client``: async Redis; ``sender``: ``TwilioOutbound``; ``progress``: a ``ProgressStore``;
        ``sms_outbox``: the aggregator's ``SmsOutbox`` SMS go through (``OUTREACH_SMS_VIA=aggregator``;
        None: Twilio's REST API)."""
        self.settings, self.client, self.sender, self.optouts = settings, client, sender, optouts
        self.sms_outbox = sms_outbox
        self.progress, self.clock = progress, clock
        self.prefix = prefix or outreach_prefix()
        self.numbers = NumberStore(client, vault, self.prefix)
        self.jobs = JobQueue(client, self.prefix)
        self.caps = OutboundCaps(client, settings.max_calls, settings.monthly_budget_cents, self.prefix)
        self._task: Optional[asyncio.Task] = None
        self._token = uuid.uuid4().hex

    @classmethod
    def from_env(cls, settings: Optional[OutreachSettings] = None) -> Optional["Outreach"]:
        """The process's outreach when ``OUTREACH_ENABLED`` and configured, else None (logged)."""
        settings = settings or OutreachSettings.from_env()
        if not settings.enabled:
            return None
        if settings.problems():
            logger.error("Outreach is off: %s.", "; ".join(settings.problems()))
            return None
        from core.config import env
        from infra.optout import get_registry
        from infra.progress_store import ProgressStore
        from infra.redis_client import redis_client

        try:
            vault = NumberVault.from_env(env("SENDER_ID_SECRET"))
        except VaultConfigError as exc:
            logger.error("Outreach is off: %s.", exc)
            return None
        sender = TwilioOutbound(settings.account_sid, settings.auth_token, settings.api_base_url)
        client, optouts = redis_client(settings.redis_url), get_registry(settings.redis_url)
        return cls(settings, client, vault, sender, optouts, ProgressStore(),
                   sms_outbox=aggregator_outbox(settings, client, vault, optouts))

    # ------------------------------------------------------------------ requests
    async def _count(self, what: Text, sender_id: Text, now: float) -> int:
        """How many ``what`` the learner had today (Rwanda day), this one included."""
        key = f"{self.prefix}:count:{what}:{sender_id}:{rwanda(now):%Y%m%d}"
        count = int(await self.client.incr(key))
        await self.client.expire(key, 2 * 86400)
        return count

    async def request_callback(self, sender_id: Text, number: Text) -> Text:
        """``queued``, ``quiet_hours``, ``daily_limit`` or ``opted_out``."""
        now = self.clock()
        if self.settings.in_quiet_hours(rwanda(now).hour):
            return "quiet_hours"
        if await self.optouts.is_opted_out(sender_id):
            return "opted_out"
        if await self._count("callback", sender_id, now) > self.settings.callbacks_per_day:
            return "daily_limit"
        await self.numbers.keep(sender_id, number)
        await self.jobs.put(Job(f"callback:{sender_id}:{int(now * 1000)}", "callback", sender_id,
                                now + self.settings.callback_delay, bulk=False, channel="call"))
        return "queued"

    async def request_reminder(self, sender_id: Text, number: Text, due: float, channel: Text,
                               language: Optional[Text]) -> Text:
        """``set`` (one per Rwanda day: a second request for the same day replaces the first)."""
        await self.numbers.keep(sender_id, number)
        job_id = f"reminder:{sender_id}:{rwanda(due):%Y%m%d}"
        await self.jobs.put(Job(job_id, "reminder", sender_id, due, channel=channel, language=language))
        return "set"

    async def link_guardian(self, learner_id: Text, guardian_id: Text, number: Text, language: Optional[Text]) -> None:
        await self.numbers.link(learner_id, guardian_id, number, language or "")
        await self.jobs.put(Job(f"guardian_invite:{learner_id}:{guardian_id}", "guardian_invite", guardian_id, self.clock(),
                                language=language, learner_id=learner_id))

    async def is_pending_guardian(self, guardian_id: Text) -> bool:
        for learner_id in await self.numbers.wards(guardian_id):
            record = await self.numbers.guardian_of(learner_id)
            if record and record["guardian"] == guardian_id and record["status"] == "pending":
                return True
        return False

    async def guardian_said_yes(self, guardian_id: Text, language: Optional[Text] = None) -> List[Text]:
        """Confirm the guardian's pending links; each learner's weekly report is scheduled, in
        ``language`` when the guardian chose one (else the learner's at the request)."""
        confirmed = await self.numbers.confirm(guardian_id, language)
        for learner_id in confirmed:
            record = await self.numbers.guardian_of(learner_id) or {}
            totals = await self._totals(learner_id)
            await self.jobs.put(Job(f"guardian_report:{learner_id}", "guardian_report", guardian_id,
                                    self.next_report_time(self.clock()), language=record.get("language") or None,
                                    learner_id=learner_id, extra={"totals": totals}))
        return confirmed

    async def _totals(self, learner_id: Text) -> Dict[Text, List[int]]:
        """The learner's running totals now (the first report counts from here); {} if unknown."""
        try:
            return guardian_report.totals_of(await self.progress.summary(learner_id)) if self.progress else {}
        except Exception:  # noqa: BLE001 - the database may be down: the first report counts everything
            logger.warning("Progress of %s unknown at the guardian's YES; the first report counts all.",
                           short_ref(learner_id))
            return {}

    def next_report_time(self, now: float) -> float:
        local = rwanda(now)
        due = local.replace(hour=self.settings.report_hour, minute=0, second=0, microsecond=0)
        due += timedelta(days=(self.settings.report_weekday - local.weekday()) % 7)
        return (due if due > local else due + timedelta(days=7)).timestamp()

    async def call_ended(self, call_sid: Text) -> None:
        await self.caps.call_ended(call_sid)

    # ------------------------------------------------------------------ worker
    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _lead(self) -> bool:
        """Whether this process sends: holds (or takes) the worker lock, renewed each round."""
        key, ttl = f"{self.prefix}:worker", max(10, int(self.settings.poll_seconds * 5))
        if await self.client.set(key, self._token, nx=True, ex=ttl):
            return True
        holder = await self.client.get(key)
        if holder in (self._token, self._token.encode()):
            await self.client.expire(key, ttl)  # a GET then EXPIRE race only shortens one lease
            return True
        return False

    async def _loop(self) -> None:
        while True:
            try:
                if await self._lead():
                    await self.run_due()
            except Exception:
                logger.exception("Outreach worker round failed; trying again.")
            await asyncio.sleep(self.settings.poll_seconds)

    async def run_due(self) -> int:
        """Send every job due now; how many messages or calls went out."""
        sent = 0
        for job in await self.jobs.claim(self.clock()):
            try:
                sent += await self._run(job)
            except Exception as exc:  # noqa: BLE001 - twilio's and the network's errors: retried
                await self._failed(job, exc)
        return sent

    async def _failed(self, job: Job, exc: Exception) -> None:
        job.attempts += 1
        if job.attempts >= MAX_ATTEMPTS:
            logger.error("Outreach %s to %s dropped after %d attempts: %s", job.kind, short_ref(job.sender_id),
                         job.attempts, exc)
            await self.jobs.done(job)
        else:
            logger.warning("Outreach %s to %s failed (%s); retrying.", job.kind, short_ref(job.sender_id), exc)
            await self.jobs.later(job, self.clock() + RETRY_SECONDS * job.attempts)

    async def _gate(self, job: Job, now: float) -> Optional[Text]:
        """Why ``job`` does not go out now (``drop`` / ``wait``), or None."""
        opening = next_bulk_time(rwanda(now), self.settings.send_hours).timestamp()
        if job.bulk and opening > now:
            await self.jobs.later(job, opening)
            return "outside the sending hours (08:00-20:00): moved to the next window"
        if not await self.optouts.may_send(job.sender_id, now=rwanda(now)):  # the window: just above
            await self.jobs.done(job)
            return "opted out: dropped"
        cost = self.settings.call_cost_cents if job.channel == "call" else self.settings.sms_cost_cents
        if not await self.caps.within_budget(cost, now):
            await self.jobs.done(job)
            return "over the monthly budget: dropped"
        if job.channel == "call" and not await self.caps.call_slot_free(now):
            await self.jobs.later(job, now + RETRY_SECONDS)
            return "all call slots busy: waiting"
        return None

    async def _run(self, job: Job) -> int:
        now = self.clock()
        if job.kind == "guardian_report" and not await self._still_confirmed(job):
            await self.jobs.done(job)
            return 0
        held = await self._gate(job, now)
        number = None if held else await self.numbers.number(job.sender_id)
        if held or number is None:
            if not held:
                await self.jobs.done(job)  # erased (or never kept): nobody to send to
            logger.info("Outreach %s to %s not sent: %s.", job.kind, short_ref(job.sender_id), held or "no number")
            return 0
        body, extra = await self._body(job)
        if not await self.jobs.once(job):
            await self._finish(job)
            return 0
        try:
            await self._send(job, number, body, now)
        except Exception:
            await self.jobs.release(job)
            raise
        job.extra = extra  # a report's totals move on only once it went out
        await self._finish(job)
        return 1

    async def _still_confirmed(self, job: Job) -> bool:
        record = await self.numbers.guardian_of(job.learner_id or "")
        return bool(record and record["guardian"] == job.sender_id and record["status"] == "confirmed")

    async def _body(self, job: Job) -> Tuple[Optional[Text], Dict[Text, Any]]:
        """The SMS text (None for a call) and the job's ``extra`` once it is sent (a report's new totals)."""
        if job.channel == "call":
            return None, job.extra
        if job.kind == "guardian_report":
            body, totals = await guardian_report.compose(
                self.progress, job.learner_id or "", job.language, job.extra.get("totals") or {})
            return body, dict(job.extra, totals=totals)
        key = "outreach.guardian_invite" if job.kind == "guardian_invite" else "outreach.reminder_sms"
        return texts.text(key, job.language), job.extra

    async def _send(self, job: Job, number: Text, body: Optional[Text], now: float) -> None:
        s = self.settings
        if job.channel == "call":
            base = f"{s.public_base_url}/webhooks/twilio_voice"
            call_sid = await self.sender.call(number, s.call_from, f"{base}/webhook", f"{base}/status")
            await self.caps.call_started(call_sid, now)
            await self.caps.spend(s.call_cost_cents, now)
        else:
            if self.sms_outbox is not None:  # queued; the outbox asks the opt-out registry again as it sends
                await self.sms_outbox.put(job.sender_id, number, body or "")
            else:
                await self.sender.sms(number, s.sms_from, body or "")
            await self.caps.spend(s.sms_cost_cents, now)
        logger.info("Outreach %s sent to %s by %s.", job.kind, short_ref(job.sender_id), job.channel)

    async def _finish(self, job: Job) -> None:
        if job.kind == "guardian_report":  # weekly: the next one
            await self.jobs.later(job, self.next_report_time(job.due + 3600))
        else:
            await self.jobs.done(job)


def aggregator_outbox(settings: OutreachSettings, client: Any, vault: NumberVault, optouts: OptOutRegistry,
                      key: Optional[Text] = None) -> Any:
    """The aggregator's SMS outbox (``infra.at_outbox``, the one ``at_sms`` replies go through)
    when ``OUTREACH_SMS_VIA=aggregator``; else None (SMS through Twilio)."""
    if settings.sms_via != "aggregator":
        return None
    from core.config import env
    from infra.at_outbox import AtSmsSender, SmsOutbox

    sender = AtSmsSender(settings.at_username or "", settings.at_api_key or "", settings.at_sender,
                         settings.at_api_base_url)
    return SmsOutbox(sender, optouts, vault, client,
                     key=key or f"{env('REDIS_KEY_PREFIX', default='bakame')}:at_sms:outbox")


_PROCESS: Dict[Text, Optional[Outreach]] = {}


def process_outreach() -> Optional[Outreach]:
    """The process's outreach (``Outreach.from_env``, built once), or None when it is off."""
    if "outreach" not in _PROCESS:
        _PROCESS["outreach"] = Outreach.from_env()
    return _PROCESS["outreach"]
