"""What a learner asks of outreach on any channel -- an SMS, a call, a USSD screen -- answered
before the assistant (docs/outreach.md). One desk for every channel:

* :meth:`OutreachDesk.step` -- a text (an SMS, recognised speech, text typed on USSD):

  1. YES / YEGO from a number a learner gave as a guardian's: the reports are confirmed
     (double opt-in) in the language the reply names (YES: English, YEGO: Kinyarwanda,
     "YEGO EN"; "OK": the learner's), one confirmation back;
  2. a guardian's number ("my mother's number is 0788...", "umubyeyi 07..."): kept sealed
     aside, the guardian gets an invitation (within 08:00-20:00), the learner a confirmation;
  3. "remind me tomorrow", "unyibutse ejo saa 17", "... by call": one reminder, confirmed;
  4. anything else goes on to the assistant -- with every phone number in it replaced by
     ``[number]``, so no number reaches the tracker or the events in PostgreSQL.

* the keypad menu (a call's and USSD's main menu, key :data:`MENU_KEY`): :meth:`choose` reads
  a choice of it (a reminder tomorrow at an hour, by SMS or call; or "a parent's number"),
  then :meth:`typed_guardian` the number typed on the keypad or the USSD screen. The channel
  keeps which of the two it waits for and shows the texts (``channel.yml``).

Without outreach (``OUTREACH_ENABLED`` off) only step 4's masking applies and the menu is off.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional, Text

from connectors import gsm
from connectors.outreach_input import (
    ReminderRequest, find_numbers, guardian_request, guardian_yes, keypad_menu, mask_numbers, reminder_at,
    reminder_request,
)
from core import texts
from core.identity import short_ref
from infra.optout import RWANDA

logger = logging.getLogger(__name__)

MENU_KEY = "6"  # free in the keypad menu (connectors.keypad): opens reminders and reports
AWAIT_GUARDIAN = "guardian"  # what a channel waits for after the menu's "a parent's number"


@dataclass(frozen=True)
class Learner:
    """Who asks: the conversation id, the number (for outbound; never logged) and the language."""

    sender_id: Text
    number: Text
    language: Optional[Text]


@dataclass
class OutreachStep:
    reply: Optional[Text] = None  # answered here (the assistant is not asked)
    body: Optional[Text] = None  # otherwise: the message for the assistant, numbers masked


@dataclass(frozen=True)
class Choice:
    reply: Optional[Text]  # what to tell the learner (None: ask for what ``awaiting`` names)
    awaiting: Optional[Text] = None  # AWAIT_GUARDIAN: the next entry is a number


class OutreachDesk:
    def __init__(self, outreach: Any, hasher: Any) -> None:
        self.outreach, self.hasher = outreach, hasher

    @property
    def enabled(self) -> bool:
        return self.outreach is not None

    def opens_menu(self, entry: Optional[Text]) -> bool:
        """``entry`` on a main menu opens the reminders and reports menu."""
        return self.enabled and (entry or "").strip().rstrip("#") == MENU_KEY

    # ------------------------------------------------------------------ free text
    async def step(self, body: Text, who: Learner) -> OutreachStep:
        if self.outreach is not None:
            reply = await self._request(body, who)
            if reply is not None:
                return OutreachStep(reply=gsm.sanitize(reply))
        masked = mask_numbers(body)
        if masked != body:
            logger.info("A phone number in a message of %s was masked before the assistant.",
                        short_ref(who.sender_id))
        return OutreachStep(body=masked)

    async def _request(self, body: Text, who: Learner) -> Optional[Text]:
        said_yes, chosen = guardian_yes(body)
        if said_yes and await self.outreach.is_pending_guardian(who.sender_id):
            confirmed = await self.outreach.guardian_said_yes(who.sender_id, chosen)
            record = await self.outreach.numbers.guardian_of(confirmed[0]) if confirmed else None
            logger.info("Guardian %s confirmed weekly reports.", short_ref(who.sender_id))
            return texts.text("outreach.guardian_confirmed", (record or {}).get("language") or who.language)
        guardian = guardian_request(body)
        if guardian is not None:
            return await self._link(guardian, who)
        asked = reminder_request(body, self._now(), self.outreach.settings.reminder_hour)
        return None if asked is None else await self._remind(asked, who)

    # ------------------------------------------------------------------ keypad menu
    async def choose(self, entry: Text, who: Learner) -> Optional[Choice]:
        """A choice of the keypad menu (``1``..``n``), or None: not one of them."""
        entry = (entry or "").strip().rstrip("#")
        menu = keypad_menu()
        if not entry.isdigit() or not 1 <= int(entry) <= len(menu):
            return None
        choice = menu[int(entry) - 1]
        if choice.get("guardian"):
            return Choice(None, AWAIT_GUARDIAN)  # the channel asks for the number its own way
        asked = reminder_at(self._now(), int(choice["hour"]), str(choice["reminder"]))
        return Choice(gsm.sanitize(await self._remind(asked, who)))

    async def typed_guardian(self, entry: Text, who: Learner) -> Optional[Text]:
        """The confirmation for a guardian's number typed after the menu's choice; None: no number."""
        numbers = find_numbers(entry)
        if len(numbers) != 1:
            return None
        return gsm.sanitize(await self._link(numbers[0], who) or texts.text("outreach.guardian_own_number",
                                                                             who.language))

    # ------------------------------------------------------------------ both
    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.outreach.clock(), timezone.utc).astimezone(RWANDA)

    async def _link(self, guardian: Text, who: Learner) -> Optional[Text]:
        guardian_id = self.hasher.sender_id(guardian)
        if guardian_id == who.sender_id:
            return None
        await self.outreach.link_guardian(who.sender_id, guardian_id, guardian, who.language)
        logger.info("Learner %s gave a guardian's number (%s).", short_ref(who.sender_id), short_ref(guardian_id))
        return texts.text("outreach.guardian_asked", who.language)

    async def _remind(self, asked: ReminderRequest, who: Learner) -> Text:
        language = who.language
        await self.outreach.request_reminder(who.sender_id, who.number, asked.due.timestamp(), asked.channel,
                                             language)
        when = texts.text("outreach.reminder_when_" + ("tomorrow" if asked.tomorrow else "today"), language,
                          hour=f"{asked.due:%H}", minute=f"{asked.due:%M}")
        how = texts.text(f"outreach.reminder_how_{asked.channel}", language)
        return texts.text("outreach.reminder_set", language, how=how, when=when)
