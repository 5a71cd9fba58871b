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
import re
import time
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Text

from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.twiml.messaging_response import MessagingResponse

from rasa.shared.exceptions import InvalidConfigException

from connectors import gsm
from connectors.base import TwilioInputBase
from connectors.common import BotOutput, TwilioSmsCollector, as_bool, as_float, as_int, as_list, setting
from connectors.security import short_ref, twilio_params
from connectors.state import wait_for_value
from connectors.timing import TurnTimer, log_turn
from connectors.turns import result_of, results_of

logger = logging.getLogger(__name__)

CONV_TTL = 24 * 3600.0
MORE_TTL = 3600.0
KEYPAD_BODY = re.compile(r"^[0-9*#]{1,8}$")
DEFAULT_MORE_KEYWORDS = ("more", "komeza", "ibindi")
DEFAULT_FETCH_KEYWORDS = ("ok", "okay", "sawa")


class TwilioSmsInput(TwilioInputBase):
    """Twilio Programmable Messaging (SMS), English and Kinyarwanda."""

    turn_budget_env = "SMS_TURN_BUDGET"
    state_namespace = "sms"
    collector_class = TwilioSmsCollector

    @classmethod
    def name(cls) -> Text:
        return "twilio_sms"

    @classmethod
    def _channel_settings(cls, c: Mapping[Text, Any]) -> Dict[Text, Any]:
        return dict(
            max_segments=as_int(setting(c, "max_segments", "SMS_MAX_SEGMENTS"), 2),
            max_body_chars=as_int(setting(c, "max_body_chars", "SMS_MAX_BODY_CHARS"), 640),
            more_keywords=as_list(setting(c, "more_keywords")) or list(DEFAULT_MORE_KEYWORDS),
            keypad_enabled=as_bool(setting(c, "keypad_enabled"), True),
            dedupe_ttl=as_float(setting(c, "dedupe_ttl"), 24 * 3600.0),
        )

    def __init__(
        self,
        *,
        max_segments: int = 2,
        max_body_chars: int = 640,
        more_keywords: Optional[List[Text]] = None,
        keypad_enabled: bool = True,
        dedupe_ttl: float = 24 * 3600.0,
        **shared: Any,
    ) -> None:
        """``shared``: the settings of every Twilio channel (``TwilioInputBase``)."""
        if int(max_segments) < 1:
            raise InvalidConfigException("max_segments (SMS_MAX_SEGMENTS) must be at least 1.")
        self.max_segments = int(max_segments)
        self.max_body_chars = int(max_body_chars)
        self.more_keywords = {k.lower() for k in (more_keywords or DEFAULT_MORE_KEYWORDS)}
        self.fetch_keywords = self.more_keywords | set(DEFAULT_FETCH_KEYWORDS)
        self.keypad_enabled = keypad_enabled
        self.dedupe_ttl = float(dedupe_ttl)
        super().__init__(**shared)

    # ------------------------------------------------------------------ webhook
    def _xml(self, reply: Optional[Text]) -> HTTPResponse:
        twiml = MessagingResponse()
        if reply:
            twiml.message(reply)
        return super()._xml(twiml)

    async def _apology(self, request: Request) -> Optional[Text]:
        return self.prompts.get("error", await self._safe_language(request))

    @staticmethod
    def _conv_key(sender_id: Text) -> Text:
        return f"sms:conv:{sender_id}"

    @staticmethod
    def _sid_key(message_sid: Text) -> Text:
        return f"sms:sid:{message_sid}"

    async def _safe_language(self, request: Request) -> Optional[Text]:
        try:
            if self.hasher is None:
                return None
            sender_id = self.hasher.sender_id(twilio_params(request).get("From"))
            return (await self.store.get(self._conv_key(sender_id)) or {}).get("lang")
        except Exception:
            return None

    # ------------------------------------------------------------------ handling
    async def _handle(self, request: Request, on_new_message: Callable, started: float) -> Optional[Text]:
        form = twilio_params(request)
        if self.hasher is None:
            return gsm.sanitize(self.prompts.get("error", None))
        message_sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
        sender_id = self.hasher.sender_id(form.get("From"), fallback=message_sid)
        if message_sid:
            claimed = await self.store.add(self._sid_key(message_sid), {"status": "processing"}, self.dedupe_ttl)
            if not claimed:
                return await self._duplicate(message_sid, sender_id)
        else:
            logger.warning("twilio_sms request without MessageSid: it cannot be de-duplicated.")
        try:
            reply = await self._process(request, on_new_message, sender_id, message_sid, form, started)
        except Exception:
            logger.exception("twilio_sms turn failed; answering with an apology.")
            reply = gsm.sanitize(self.prompts.get("error", await self._safe_language(request)))
        if message_sid:  # a retry of this MessageSid gets this same reply
            await self.store.set(self._sid_key(message_sid), {"status": "done", "reply": reply or ""}, self.dedupe_ttl)
        return reply

    async def _process(
        self, request: Request, on_new_message: Callable, sender_id: Text, message_sid: Text, form: Any,
        started: float,
    ) -> Optional[Text]:
        conv = await self.store.get(self._conv_key(sender_id)) or {}
        await self._recall_conversation(request, sender_id, conv)
        lang = conv.get("lang")

        body = form.get("Body") or ""
        text = body.strip()
        num_media = as_int(form.get("NumMedia"), 0)
        kind = "text"
        if len(body) > self.max_body_chars:
            reply, kind = self.prompts.get("sms_too_long", lang), "too_long"
        elif not text:
            key = "sms_media" if num_media > 0 else "sms_empty"
            reply, kind = self.prompts.get(key, lang), key[4:]
        else:
            reply, kind = await self._answer(request, on_new_message, sender_id, message_sid, conv, text,
                                             num_media, form, started)
        if kind in ("too_long", "media", "empty"):
            reply = self._fit(reply, conv, lang, keep_more=True)
            log_turn(self.name(), short_ref(sender_id), TurnTimer(started), kind=kind, messages=1, over_budget=False)
        await self.store.set(self._conv_key(sender_id), conv, CONV_TTL)
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

    async def _answer(
        self, request: Request, on_new_message: Callable, sender_id: Text, message_sid: Text,
        conv: Dict[Text, Any], text: Text, num_media: int, form: Any, started: float,
    ) -> tuple:
        lang = conv.get("lang")
        word = text.lower().strip(" .!")
        carried, running = await self.turns.collect_ready(sender_id, conv.get("pending") or [])
        conv["pending"] = running
        earlier = self._carried_output(carried)
        for result in results_of(carried):  # each sets the state it left
            lang = result.get("language")
            conv.update(lang=lang, math=bool(result.get("math")))
        if word in self.fetch_keywords and (earlier.texts or running):
            if earlier.texts:
                return self._compose(earlier, conv, lang), "pending"
            return self._fit(self.prompts.get("sms_in_progress", lang), conv, lang, keep_more=True), "in_progress"
        if word in self.more_keywords and conv.get("more") and conv.get("more_until", 0) > time.time():
            rest = conv.pop("more")
            return self._fit(rest, conv, lang), "more"

        message_text, input_kind = text, "text"
        if self.keypad_enabled and KEYPAD_BODY.match(text.replace(" ", "")):
            entry = self.keypad.resolve(
                text, language=lang, math_active=bool(conv.get("math")),
                buttons=[b.get("payload") for b in conv.get("buttons") or []],
            )
            if entry is not None:
                message_text, input_kind = entry.text, f"keypad_{entry.kind}"
        metadata = {"channel": self.name(), "message_sid": message_sid or None, "input": input_kind}
        if num_media:
            metadata["num_media"] = num_media
        if form.get("FromCountry"):
            metadata["sender_country"] = form.get("FromCountry")
        metadata = {k: v for k, v in metadata.items() if v is not None}

        turn_id = uuid.uuid4().hex[:16]
        app = request.app

        async def work(timer: TurnTimer) -> Dict[Text, Any]:
            return await self._ask_rasa(app, on_new_message, timer, message_text, sender_id,
                                        message_sid or turn_id, metadata, input_kind)

        record = await self._run_turn(sender_id, turn_id, started, work)
        if record is None:
            conv["pending"] = conv["pending"] + [turn_id]
            holding = self.prompts.get("sms_holding", lang)
            if earlier.texts:
                return self._compose(BotOutput(texts=earlier.texts + [holding]), conv, lang), "holding"
            return self._fit(holding, conv, lang, keep_more=True), "holding"
        result = result_of(record)
        if result is None:
            texts = earlier.texts + [self.prompts.get("error", lang)]
            return self._compose(BotOutput(texts=texts), conv, lang), "error"
        output = earlier.extend(BotOutput.from_dict(result.get("output")))
        new_lang = result.get("language") if result.get("language") in ("en", "rw") else None
        conv.update(lang=new_lang, math=bool(result.get("math")))
        return self._compose(output, conv, new_lang), "turn"

    # ------------------------------------------------------------------ formatting
    def _compose(self, output: BotOutput, conv: Dict[Text, Any], lang: Optional[Text]) -> Text:
        parts = list(output.texts)
        if output.buttons:
            parts.extend(
                self.prompts.one("sms_option", lang, n=i + 1, title=b["title"]) for i, b in enumerate(output.buttons)
            )
        conv["buttons"] = output.buttons
        return self._fit(gsm.join_messages(parts), conv, lang)

    def _fit(self, text: Text, conv: Dict[Text, Any], lang: Optional[Text], keep_more: bool = False) -> Text:
        """GSM-7, at most ``max_segments``; the rest is kept for MORE."""
        clean = gsm.sanitize(text)
        hint = gsm.sanitize(self.prompts.get("sms_more_hint", lang))
        reply, rest = gsm.split_for_sms(clean, self.max_segments, hint)
        if rest:
            conv["more"], conv["more_until"] = rest, time.time() + MORE_TTL
        elif not keep_more:
            conv.pop("more", None)
            conv.pop("more_until", None)
        return reply
