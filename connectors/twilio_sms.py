"""BAKAME's Twilio SMS channel: ``POST /webhooks/twilio_sms/webhook``.

Point the Twilio number's "A message comes in" webhook at
``.../webhooks/twilio_sms/webhook`` (POST). The reply goes back synchronously as TwiML
``<Message>`` (no REST call, no account SID needed):

* all bot messages of the turn are joined into one reply (buttons become numbered lines,
  answered by sending the number);
* the reply is mapped to GSM-7 (no emoji or smart quotes, which would cut a segment from 160
  to 70 characters) and cut to ``max_segments`` segments (``SMS_MAX_SEGMENTS``, default 2);
  the rest is kept and sent when the learner replies MORE (or KOMEZA / IBINDI);
* empty bodies, media-only messages and oversized bodies get a short explanation and do
  not reach Rasa; a ``MessageSid`` seen before (Twilio retries) is never processed again:
  the retry gets the reply of the first delivery (or nothing while that is still running);
* a turn that takes longer than ``turn_budget`` (``SMS_TURN_BUDGET``, default 10 s) is
  answered with a short "still thinking" message; the finished answer is sent with the
  reply to the learner's next message (OK fetches it without starting a new turn).

Keypad-style replies work as on a call: a single digit picks a menu item or a button, and
during a math problem digits are the answer (``connectors.keypad``).
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Text

from sanic.request import Request
from sanic.response import HTTPResponse

from connectors import gsm
from connectors.base import TwilioInputBase
from connectors.common import BotOutput, TwilioSmsCollector, as_int
from connectors.security import short_ref, twilio_params
from connectors.session_state import SmsState
from connectors.settings import SmsSettings
from connectors.sms_input import REFUSAL_PROMPTS, SmsKind, is_keypad, keyword, refusal
from connectors.state import wait_for_value
from connectors.timing import TurnTimer, log_turn
from connectors.turns import result_of
from connectors.twiml import sms_twiml

logger = logging.getLogger(__name__)

CONV_TTL = 24 * 3600.0
MORE_TTL = 3600.0


@dataclass
class SmsRequest:
    """One incoming message: what every step of answering it needs."""

    request: Request
    on_new_message: Callable
    form: Any  # Twilio's POST parameters (connectors.security.twilio_params)
    sender_id: Text  # the hashed conversation id
    message_sid: Text
    started: float
    conv: SmsState = field(default_factory=SmsState)  # loaded at the start, saved once at the end


class TwilioSmsInput(TwilioInputBase):
    """Twilio Programmable Messaging (SMS), English and Kinyarwanda."""

    settings_class = SmsSettings
    state_namespace = "sms"
    collector_class = TwilioSmsCollector
    settings: SmsSettings

    @classmethod
    def name(cls) -> Text:
        return "twilio_sms"

    # ------------------------------------------------------------------ webhook
    def _xml(self, reply: Optional[Text]) -> HTTPResponse:
        return super()._xml(sms_twiml(reply))

    async def _apology(self, request: Request) -> Optional[Text]:
        return self.prompts.get("error", await self._safe_language(request))

    @staticmethod
    def _conv_key(sender_id: Text) -> Text:
        return f"sms:conv:{sender_id}"

    @staticmethod
    def _sid_key(message_sid: Text) -> Text:
        return f"sms:sid:{message_sid}"

    async def _load_conv(self, sender_id: Text) -> SmsState:
        return SmsState.from_dict(await self.store.get(self._conv_key(sender_id)))

    async def _safe_language(self, request: Request) -> Optional[Text]:
        try:
            if self.hasher is None:
                return None
            return (await self._load_conv(self.hasher.sender_id(twilio_params(request).get("From")))).lang
        except Exception:
            return None

    # ------------------------------------------------------------------ handling
    async def _handle(self, request: Request, on_new_message: Callable, started: float) -> Optional[Text]:
        form = twilio_params(request)
        if self.hasher is None:
            return gsm.sanitize(self.prompts.get("error", None))
        message_sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
        sender_id = self.hasher.sender_id(form.get("From"), fallback=message_sid)
        dedupe_ttl = self.settings.dedupe_ttl
        if message_sid:
            claimed = await self.store.add(self._sid_key(message_sid), {"status": "processing"}, dedupe_ttl)
            if not claimed:
                return await self._duplicate(message_sid, sender_id)
        else:
            logger.warning("twilio_sms request without MessageSid: it cannot be de-duplicated.")
        try:
            reply = await self._process(SmsRequest(request, on_new_message, form, sender_id, message_sid, started))
        except Exception:
            logger.exception("twilio_sms turn failed; answering with an apology.")
            reply = gsm.sanitize(self.prompts.get("error", await self._safe_language(request)))
        if message_sid:  # a retry of this MessageSid gets this same reply
            await self.store.set(self._sid_key(message_sid), {"status": "done", "reply": reply or ""}, dedupe_ttl)
        return reply

    async def _process(self, sms: SmsRequest) -> Optional[Text]:
        conv = sms.conv = await self._load_conv(sms.sender_id)
        await self._recall_conversation(sms.request, sms.sender_id, conv)
        refused = refusal(sms.form, self.settings)
        if refused is not None:
            reply = self._fit(self.prompts.get(REFUSAL_PROMPTS[refused], conv.lang), conv, keep_more=True)
            log_turn(self.name(), short_ref(sms.sender_id), TurnTimer(sms.started), kind=refused.value, messages=1,
                     over_budget=False)
        else:
            reply = await self._answer(sms)
        await self.store.set(self._conv_key(sms.sender_id), conv.to_dict(), CONV_TTL)  # the one save per message
        return reply

    async def _duplicate(self, message_sid: Text, sender_id: Text) -> Optional[Text]:
        record = await wait_for_value(
            self.store, self._sid_key(message_sid), lambda v: v.get("status") == "done", self.turn_budget
        )
        if record and record.get("status") == "done":
            logger.info("twilio_sms retry of an answered message for %s: same reply, not processed again.",
                        short_ref(sender_id))
            return record.get("reply") or None
        logger.info("twilio_sms retry of a message still being processed for %s: ignored.", short_ref(sender_id))
        return None

    async def _answer(self, sms: SmsRequest) -> Text:
        conv, form = sms.conv, sms.form
        text = (form.get("Body") or "").strip()
        records, conv.pending = await self.turns.collect_ready(sms.sender_id, conv.pending)
        earlier = self._take_carried(conv, records)
        asked = keyword(text, conv, self.settings, ready=bool(earlier.texts), running=bool(conv.pending),
                        now=time.time())
        if asked is SmsKind.PENDING:
            return self._compose(earlier, conv)
        if asked is SmsKind.IN_PROGRESS:
            return self._fit(self.prompts.get("sms_in_progress", conv.lang), conv, keep_more=True)
        if asked is SmsKind.MORE:
            return self._fit(conv.take_more(), conv)

        message_text, input_kind = text, "text"
        if is_keypad(text, self.settings):
            entry = self.keypad.resolve(text, language=conv.lang, math_active=conv.math,
                                        buttons=[b.get("payload") for b in conv.buttons])
            if entry is not None:
                message_text, input_kind = entry.text, f"keypad_{entry.kind}"
        metadata = {"channel": self.name(), "message_sid": sms.message_sid, "input": input_kind,
                    "num_media": as_int(form.get("NumMedia"), 0) or None, "sender_country": form.get("FromCountry")}
        metadata = {k: v for k, v in metadata.items() if v}
        return await self._turn(sms, earlier, message_text, input_kind, metadata)

    async def _turn(
        self, sms: SmsRequest, earlier: BotOutput, text: Text, kind: Text, metadata: Dict[Text, Any]
    ) -> Text:
        """One message through Rasa: its reply after what ``earlier`` turns left, or a holding reply."""
        conv, turn_id = sms.conv, uuid.uuid4().hex[:16]

        async def work(timer: TurnTimer) -> Dict[Text, Any]:
            return await self._ask_rasa(sms.request.app, sms.on_new_message, timer, text, sms.sender_id,
                                        sms.message_sid or turn_id, metadata, kind)

        record = await self._run_turn(sms.sender_id, turn_id, sms.started, work)
        if record is None:
            conv.pending.append(turn_id)
            holding = self.prompts.get("sms_holding", conv.lang)
            if earlier.texts:
                return self._compose(BotOutput(texts=earlier.texts + [holding]), conv)
            return self._fit(holding, conv, keep_more=True)
        result = result_of(record)
        if result is None:
            return self._compose(BotOutput(texts=earlier.texts + [self.prompts.get("error", conv.lang)]), conv)
        conv.learn(result.get("language"), result.get("math"))
        return self._compose(earlier.extend(BotOutput.from_dict(result.get("output"))), conv)

    # ------------------------------------------------------------------ formatting
    def _compose(self, output: BotOutput, conv: SmsState) -> Text:
        parts = list(output.texts)
        if output.buttons:
            parts.extend(
                self.prompts.one("sms_option", conv.lang, n=i + 1, title=b["title"])
                for i, b in enumerate(output.buttons)
            )
        conv.buttons = output.buttons
        return self._fit(gsm.join_messages(parts), conv)

    def _fit(self, text: Text, conv: SmsState, keep_more: bool = False) -> Text:
        """GSM-7, at most ``max_segments``; the rest is kept for MORE."""
        clean = gsm.sanitize(text)
        hint = gsm.sanitize(self.prompts.get("sms_more_hint", conv.lang))
        reply, rest = gsm.split_for_sms(clean, self.settings.max_segments, hint)
        if rest:
            conv.keep_more(rest, MORE_TTL)
        elif not keep_more:
            conv.drop_more()
        return reply
