"""Outreach settings (missed-call callback, reminders, guardian reports), read from the environment.

Every value is documented in docs/outreach.md and .env.example. Outreach needs Redis
(``REDIS_URL``: its job queue, numbers and caps are shared by every process) and Twilio's
REST credentials; production refuses to start without ``NUMBER_KEYS`` when it is on
(``infra.settings.secret_problems``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional, Text, Tuple

from core.config import as_bool, as_float, as_int, env
from infra.optout import BULK_HOURS


def outreach_enabled(environ: Optional[Mapping[Text, Text]] = None) -> bool:
    return as_bool(env("OUTREACH_ENABLED", environ=environ), False)


def _hours(value: Optional[Text], default: Tuple[int, int]) -> Tuple[int, int]:
    """``"21-07"`` -> (21, 7); empty or ``none`` -> (0, 0): no quiet hours."""
    if not value:
        return default
    if value.strip().lower() in ("none", "off", "0"):
        return (0, 0)
    start, _, end = value.partition("-")
    return (int(start) % 24, int(end or start) % 24)


def _window(value: Optional[Text]) -> Tuple[int, int]:
    """``"08-20"`` -> (8, 20): from 08:00 to 20:00 (``"00-24"``: all day); empty: the regulator's."""
    if not value or "-" not in value:
        return BULK_HOURS
    start, _, end = value.partition("-")
    return (max(0, min(23, int(start))), max(1, min(24, int(end))))


@dataclass(frozen=True)
class OutreachSettings:
    enabled: bool = False
    redis_url: Text = ""
    account_sid: Optional[Text] = None
    auth_token: Optional[Text] = None
    api_base_url: Optional[Text] = None  # another Twilio API base (a local fake in tests)
    call_from: Optional[Text] = None  # the number outbound calls come from (e.g. the callback number)
    sms_from: Optional[Text] = None  # the number reminders and reports come from (answers STOP)
    sms_via: Text = "twilio"  # twilio | aggregator: SMS through the aggregator's outbox (infra.at_outbox)
    at_username: Optional[Text] = None  # the aggregator's application (AT_USERNAME, AT_API_KEY, ...)
    at_api_key: Optional[Text] = None
    at_sender: Optional[Text] = None  # short code or sender id the SMS come from (AT_SMS_SENDER)
    at_api_base_url: Optional[Text] = None  # another API base (a local fake in tests)
    public_base_url: Text = ""  # where Twilio reaches the voice channel
    callbacks_per_day: int = 2  # per learner, per Rwanda day
    callback_delay: float = 10.0  # seconds between the rejected call and the callback
    quiet_hours: Tuple[int, int] = (21, 7)  # Rwanda time: no callback from 21:00 to 07:00
    send_hours: Tuple[int, int] = BULK_HOURS  # Rwanda time: scheduled messages and calls (the regulator's window)
    max_calls: int = 5  # outbound calls in progress at once (0: no cap)
    monthly_budget_cents: float = 5000.0  # estimated spend a month, US cents (0: no cap)
    call_cost_cents: float = 30.0  # estimate per outbound call (docs/outreach.md)
    sms_cost_cents: float = 5.0  # estimate per outbound SMS segment
    reminder_hour: int = 17  # Rwanda time, when the learner gave no hour
    report_weekday: int = 5  # Saturday (Monday is 0)
    report_hour: int = 10
    poll_seconds: float = 2.0  # how often the worker looks for due jobs

    @classmethod
    def from_env(cls, environ: Optional[Mapping[Text, Text]] = None) -> "OutreachSettings":
        e = os.environ if environ is None else environ

        def get(name: Text, default: Optional[Text] = None) -> Optional[Text]:
            return env(name, default=default, environ=e)

        return cls(
            enabled=outreach_enabled(e), redis_url=get("REDIS_URL", "") or "",
            account_sid=get("TWILIO_ACCOUNT_SID"), auth_token=get("TWILIO_AUTH_TOKEN"),
            api_base_url=get("TWILIO_API_BASE_URL"),
            call_from=get("OUTREACH_CALL_FROM"), sms_from=get("OUTREACH_SMS_FROM"),
            sms_via=(get("OUTREACH_SMS_VIA", "twilio") or "twilio").strip().lower(),
            at_username=get("AT_USERNAME"), at_api_key=get("AT_API_KEY"), at_sender=get("AT_SMS_SENDER"),
            at_api_base_url=get("AT_API_BASE_URL"),
            public_base_url=(get("PUBLIC_BASE_URL", "") or "").rstrip("/"),
            callbacks_per_day=as_int(get("CALLBACK_PER_DAY"), 2),
            callback_delay=as_float(get("CALLBACK_DELAY_SECONDS"), 10.0),
            quiet_hours=_hours(get("CALLBACK_QUIET_HOURS"), (21, 7)),
            send_hours=_window(get("OUTREACH_HOURS")),
            max_calls=as_int(get("OUTBOUND_MAX_CALLS"), 5),
            monthly_budget_cents=100 * as_float(get("OUTREACH_MONTHLY_BUDGET_USD"), 50.0),
            call_cost_cents=as_float(get("OUTREACH_CALL_COST_CENTS"), 30.0),
            sms_cost_cents=as_float(get("OUTREACH_SMS_COST_CENTS"), 5.0),
            reminder_hour=as_int(get("REMINDER_DEFAULT_HOUR"), 17),
            report_weekday=as_int(get("GUARDIAN_REPORT_WEEKDAY"), 5) % 7,
            report_hour=as_int(get("GUARDIAN_REPORT_HOUR"), 10),
            poll_seconds=as_float(get("OUTREACH_POLL_SECONDS"), 2.0),
        )

    def problems(self) -> list:
        """What stops outreach from working when it is enabled (one phrase each)."""
        if self.sms_via not in ("twilio", "aggregator"):
            return [f"OUTREACH_SMS_VIA is {self.sms_via!r} (twilio or aggregator)"]
        sms = (("AT_USERNAME", self.at_username), ("AT_API_KEY", self.at_api_key)) if self.sms_via == "aggregator" \
            else (("OUTREACH_SMS_FROM", self.sms_from),)
        missing = [name for name, value in (
            ("REDIS_URL", self.redis_url), ("TWILIO_ACCOUNT_SID", self.account_sid),
            ("TWILIO_AUTH_TOKEN", self.auth_token), ("OUTREACH_CALL_FROM", self.call_from),
            ("PUBLIC_BASE_URL", self.public_base_url)) + sms if not value]
        return [f"{name} is not set (needed by OUTREACH_ENABLED)" for name in missing]

    def in_quiet_hours(self, hour: int) -> bool:
        start, end = self.quiet_hours
        if start == end:
            return False
        return start <= hour or hour < end if start > end else start <= hour < end
