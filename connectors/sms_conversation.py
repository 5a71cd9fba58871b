"""What both SMS channels do with an incoming message (Twilio's and the aggregator's).

The channel turns its request into a form in Twilio's vocabulary (``_params``: ``Body``,
``From``, ``MessageSid``, ``NumMedia``, ``FromCountry``) and delivers the reply its own way
(TwiML for Twilio, an outbound SMS through the aggregator's SDK):

* all bot messages of the turn are joined into one reply (buttons become numbered lines,
  answered by sending the number);
* the reply is mapped to GSM-7 (no emoji or smart quotes, which would cut a segment from 160
  to 70 characters) and cut to ``max_segments`` segments (``SMS_MAX_SEGMENTS``, default 2);
  the rest is kept and sent when the learner replies MORE (or KOMEZA / IBINDI);
* empty bodies, media-only messages and oversized bodies get a short explanation and do
  not reach Rasa; a message id seen before (a retry) is never processed again:
  the retry gets the reply of the first delivery (or nothing while that is still running);
* a turn that takes longer than ``turn_budget`` (``SMS_TURN_BUDGET``, default 10 s) is
  answered with a short "still thinking" message; the finished answer is sent with the
  reply to the learner's next message (OK fetches it without starting a new turn);
* with ``optout`` (the aggregator's default), STOP / HAGARIKA / START / TANGIRA / HELP /
  UBUFASHA alone are handled at once without the assistant (``infra.optout``), and an
  opted-out learner gets no reply until START;
* outreach requests (a guardian's YES / YEGO, a guardian's number, "remind me tomorrow") are
  answered by ``connectors.outreach_desk`` without the assistant, and every phone number in a
  message is replaced by ``[number]`` before Rasa sees it (docs/outreach.md).

Keypad-style replies work as on a call: a single digit picks a menu item or a button, and
during a math problem digits are the answer (``connectors.keypad``).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Text

from sanic.request import Request

from connectors import gsm
from connectors.common import BotOutput, as_int
from connectors.security import short_ref
from connectors.session_state import SmsState
from connectors.settings import SmsOptions
from connectors.sms_input import REFUSAL_PROMPTS, SmsKind, is_keypad, keyword, refusal
from connectors.state import wait_for_value
from connectors.timing import TurnTimer, log_turn
from connectors.turns import result_of
from connectors.outreach_desk import Learner, OutreachDesk
from infra.optout import OptOutRegistry, get_registry, keyword_of
from infra.outreach import process_outreach

CONV_TTL = 24 * 3600.0
MORE_TTL = 3600.0
OPTOUT_PROMPTS = {"stop": "optout_stopped", "start": "optout_started", "help": "optout_help"}


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
    saved: Any = None  # ``conv`` as the store had it (read with the MessageSid's claim)
    processed: bool = False  # the message was answered: ``conv`` is to be saved
    confirmation: bool = False  # the reply confirms an opt-out: it goes out although the learner opted out
    body: Optional[Text] = None  # the text for the assistant: the message with phone numbers masked


class SmsConversation:
    """Mixed into an SMS channel (before its provider's base): the conversation over SMS."""

    settings: SmsOptions
    optouts: Optional[OptOutRegistry] = None  # set on first use (infra.optout.get_registry)
    outreach: Any = None  # infra.outreach.Outreach; None: the process's (OUTREACH_ENABLED), if any
    _outreach_desk: Optional[OutreachDesk] = None
    # True: ``_deliver`` sends the reply (it is not the webhook's answer): the conversation is saved
    # before it and the message id's record after it; False: both in one write after the reply
    delivers_reply: bool = False

    # ------------------------------------------------------------------ webhook
    def _params(self, request: Request) -> Any:
        """The message's fields in Twilio's vocabulary (``Body``, ``From``, ``MessageSid``, ``NumMedia``)."""
        raise NotImplementedError

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
            return (await self._load_conv(self.hasher.sender_id(self._params(request).get("From")))).lang
        except Exception:
            return None

    # ------------------------------------------------------------------ handling
    async def _handle(self, request: Request, on_new_message: Callable, started: float) -> Optional[Text]:
        form = self._params(request)
        if self.hasher is None:
            return gsm.sanitize(self.prompts.get("error", None))
        message_sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
        sender_id = self.hasher.sender_id(form.get("From"), fallback=message_sid)
        dedupe_ttl = self.settings.dedupe_ttl
        if message_sid:  # claimed and the conversation read in one round trip
            claimed, saved = await self.store.add_and_get(self._sid_key(message_sid), {"status": "processing"},
                                                          dedupe_ttl, self._conv_key(sender_id))
            if not claimed:
                return await self._duplicate(message_sid, sender_id)
        else:
            self._log.warning("%s request without MessageSid: it cannot be de-duplicated.", self.name())
            saved = await self.store.get(self._conv_key(sender_id))
        sms = SmsRequest(request, on_new_message, form, sender_id, message_sid, started, saved=saved)
        try:
            reply = await self._process(sms)
        except Exception:
            self._log.exception("%s turn failed; answering with an apology.", self.name())
            reply = gsm.sanitize(self.prompts.get("error", await self._safe_language(request)))
        conv = [(self._conv_key(sender_id), sms.conv.to_dict(), CONV_TTL)] if sms.processed else []
        # a retry of this MessageSid gets this same reply
        done = [(self._sid_key(message_sid), {"status": "done", "reply": reply or ""}, dedupe_ttl)] if message_sid else []
        if self.delivers_reply:
            await self.store.set_many(conv)
            await self._deliver(sms, reply)
            await self.store.set_many(done)
        else:
            await self.store.set_many(conv + done)  # the one save per message
        return reply

    async def _deliver(self, sms: SmsRequest, reply: Optional[Text]) -> None:
        """Send ``reply`` when the channel does not answer in the webhook's response (Twilio does)."""

    async def _process(self, sms: SmsRequest) -> Optional[Text]:
        conv = sms.conv = SmsState.from_dict(sms.saved)
        await self._recall_conversation(sms.request, sms.sender_id, conv)
        refused = refusal(sms.form, self.settings)
        optout = await self._optout(sms, conv) if self.settings.optout and refused is None else None
        if optout is not None:
            reply = optout or None
        elif refused is not None:
            reply = self._fit(self.prompts.get(REFUSAL_PROMPTS[refused], conv.lang), conv, keep_more=True)
            log_turn(self.name(), short_ref(sms.sender_id), TurnTimer(sms.started), kind=refused.value, messages=1,
                     over_budget=False)
        else:
            reply = await self._outreach_or_answer(sms)
        sms.processed = True  # ``_handle`` saves ``conv``
        return reply

    async def _optout(self, sms: SmsRequest, conv: SmsState) -> Optional[Text]:
        """STOP / START / HELP handled at once (the reply; "" for silence), or None: not a keyword
        and the learner has not opted out, so the message goes to the assistant."""
        self.optouts = self.optouts or get_registry(self.settings.redis_url)
        kind = keyword_of(sms.form.get("Body"))
        if kind == "stop":
            await self.optouts.opt_out(sms.sender_id, self.name())
        elif kind == "start":
            await self.optouts.opt_in(sms.sender_id, self.name())
        elif await self.optouts.is_opted_out(sms.sender_id):
            return "" if kind is None else gsm.sanitize(self.prompts.get("optout_help", conv.lang))
        if kind is None:
            return None
        log_turn(self.name(), short_ref(sms.sender_id), TurnTimer(sms.started), kind=f"optout_{kind}", messages=1,
                 over_budget=False)
        sms.confirmation = kind == "stop"  # the one message an opted-out learner still gets
        return gsm.sanitize(self.prompts.get(OPTOUT_PROMPTS[kind], conv.lang))

    async def _outreach_or_answer(self, sms: SmsRequest) -> Optional[Text]:
        """Reminders, guardians' numbers and YES answered here (connectors.outreach_desk), else the assistant."""
        if self._outreach_desk is None:
            self._outreach_desk = OutreachDesk(self.outreach or process_outreach(), self.hasher)
        step = await self._outreach_desk.step((sms.form.get("Body") or "").strip(),
                                              Learner(sms.sender_id, sms.form.get("From") or "", sms.conv.lang))
        if step.reply is not None:
            log_turn(self.name(), short_ref(sms.sender_id), TurnTimer(sms.started), kind="outreach", messages=1,
                     over_budget=False)
            return self._fit(step.reply, sms.conv, keep_more=True)
        sms.body = step.body
        return await self._answer(sms)

    async def _duplicate(self, message_sid: Text, sender_id: Text) -> Optional[Text]:
        record = await wait_for_value(
            self.store, self._sid_key(message_sid), lambda v: v.get("status") == "done", self.turn_budget
        )
        if record and record.get("status") == "done":
            self._log.info("%s retry of an answered message for %s: same reply, not processed again.",
                           self.name(), short_ref(sender_id))
            return record.get("reply") or None
        self._log.info("%s retry of a message still being processed for %s: ignored.", self.name(),
                       short_ref(sender_id))
        return None

    async def _answer(self, sms: SmsRequest) -> Text:
        conv, form = sms.conv, sms.form
        text = sms.body if sms.body is not None else (form.get("Body") or "").strip()
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
