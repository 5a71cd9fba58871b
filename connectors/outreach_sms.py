"""Outreach on the SMS channels: what a message asks of ``infra.outreach``, before the assistant.

Called by ``connectors.sms_conversation`` for every message that is not an opt-out keyword:

1. YES / YEGO from a number a learner gave as a guardian's: the reports are confirmed
   (double opt-in), one confirmation back;
2. a guardian's number ("my mother's number is 0788...", "umubyeyi 07..."): kept sealed
   aside, the guardian gets an invitation (within 08:00-20:00), the learner a confirmation;
3. "remind me tomorrow", "unyibutse ejo saa 17", "... by call": one reminder, confirmed;
4. anything else goes on to the assistant -- with every phone number in it replaced by
   ``[number]``, so no number reaches the tracker or the events in PostgreSQL.

Without outreach (``OUTREACH_ENABLED`` off) only step 4's masking applies.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional, Text

from connectors import gsm
from connectors.outreach_input import guardian_request, is_yes, mask_numbers, reminder_request
from core import texts
from core.identity import short_ref
from infra.optout import RWANDA

logger = logging.getLogger(__name__)


@dataclass
class OutreachStep:
    reply: Optional[Text] = None  # answered here (the assistant is not asked)
    body: Optional[Text] = None  # otherwise: the message for the assistant, numbers masked


class OutreachSms:
    def __init__(self, outreach: Any, hasher: Any) -> None:
        self.outreach, self.hasher = outreach, hasher

    async def step(self, body: Text, sender_id: Text, number: Text, language: Optional[Text]) -> OutreachStep:
        if self.outreach is not None:
            reply = await self._request(body, sender_id, number, language)
            if reply is not None:
                return OutreachStep(reply=gsm.sanitize(reply))
        masked = mask_numbers(body)
        if masked != body:
            logger.info("A phone number in a message of %s was masked before the assistant.", short_ref(sender_id))
        return OutreachStep(body=masked)

    async def _request(self, body: Text, sender_id: Text, number: Text, language: Optional[Text]) -> Optional[Text]:
        if is_yes(body) and await self.outreach.is_pending_guardian(sender_id):
            confirmed = await self.outreach.guardian_said_yes(sender_id)
            record = await self.outreach.numbers.guardian_of(confirmed[0]) if confirmed else None
            logger.info("Guardian %s confirmed weekly reports.", short_ref(sender_id))
            return texts.text("outreach.guardian_confirmed", (record or {}).get("language") or language)
        guardian = guardian_request(body)
        if guardian is not None:
            guardian_id = self.hasher.sender_id(guardian)
            if guardian_id == sender_id:
                return None
            await self.outreach.link_guardian(sender_id, guardian_id, guardian, language)
            logger.info("Learner %s gave a guardian's number (%s).", short_ref(sender_id), short_ref(guardian_id))
            return texts.text("outreach.guardian_asked", language)
        now = datetime.fromtimestamp(self.outreach.clock(), timezone.utc).astimezone(RWANDA)
        asked = reminder_request(body, now, self.outreach.settings.reminder_hour)
        if asked is None:
            return None
        await self.outreach.request_reminder(sender_id, number, asked.due.timestamp(), asked.channel, language)
        when = texts.text("outreach.reminder_when_" + ("tomorrow" if asked.tomorrow else "today"), language,
                          hour=f"{asked.due:%H}", minute=f"{asked.due:%M}")
        how = texts.text(f"outreach.reminder_how_{asked.channel}", language)
        return texts.text("outreach.reminder_set", language, how=how, when=when)
