"""Two-way SMS through a local aggregator (Africa's Talking): ``POST /webhooks/at_sms/webhook/<secret>``.

Set the short code's or number's "incoming messages" callback in the aggregator's dashboard
to ``https://<host>/webhooks/at_sms/webhook/<AT_CALLBACK_SECRET>``. The aggregator posts a
form (``from``, ``to``, ``text``, ``date``, ``id``, ``linkId``, ``networkCode``); the callback
is answered 200 at once and the reply goes out through the SDK (``infra.at_outbox``),
from ``AT_SMS_SENDER`` (the short code, long number or registered sender id).

The conversation is the Twilio SMS channel's (``connectors.sms_conversation``): GSM-7,
segments and MORE, de-duplication by the aggregator's message ``id``, keypad digits, and
STOP / HAGARIKA / START / TANGIRA / HELP / UBUFASHA handled at once (on by default here).
The learner's conversation id is the same keyed hash of the number as on Twilio voice/SMS
and USSD, so progress follows the learner across channels.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Optional, Set, Text

from sanic.request import Request

from rasa.core.channels.channel import CollectingOutputChannel

from connectors.aggregator import AggregatorInputBase, form_of
from core.config import env
from infra.at_outbox import AtSmsSender, SmsOutbox
from connectors.security import DEV_SENDER_ID_SECRET
from connectors.settings import AtSmsSettings
from core.number_vault import NumberVault
from connectors.sms_conversation import SmsConversation, SmsRequest
from infra.optout import get_registry
from infra.redis_client import redis_client


class AtSmsCollector(CollectingOutputChannel):
    """Collects the turn's messages; the name selects ``channel: at_sms`` responses."""

    @classmethod
    def name(cls) -> Text:
        return "at_sms"


class AfricasTalkingSmsInput(SmsConversation, AggregatorInputBase):
    """Two-way SMS (short code or long number) through Africa's Talking, English and Kinyarwanda."""

    settings_class = AtSmsSettings
    state_namespace = "at_sms"
    collector_class = AtSmsCollector
    delivers_reply = True  # through the outbox, after the callback was answered
    settings: AtSmsSettings

    def __init__(self, settings: AtSmsSettings, *, store: Any = None, outbox: Optional[SmsOutbox] = None) -> None:
        super().__init__(settings, store=store)
        self.optouts = get_registry(settings.redis_url)
        self.outbox = outbox or self._outbox(settings)
        self._background: Set[asyncio.Task] = set()

    def _outbox(self, settings: AtSmsSettings) -> Optional[SmsOutbox]:
        if not settings.username or not settings.api_key:
            self._log.warning("AT_USERNAME / AT_API_KEY are not set: at_sms cannot send replies.")
            return None
        sender = AtSmsSender(settings.username, settings.api_key, settings.sender, settings.api_base_url)
        box = NumberVault.from_env(settings.sender_id_secret or DEV_SENDER_ID_SECRET)
        url = (settings.redis_url if settings.redis_url is not None else env("REDIS_URL", default="")).strip()
        prefix = env("REDIS_KEY_PREFIX", default="bakame")
        return SmsOutbox(sender, self.optouts, box, redis_client(url) if url else None, key=f"{prefix}:at_sms:outbox")

    @classmethod
    def name(cls) -> Text:
        return "at_sms"

    def _params(self, request: Request) -> Dict[Text, Text]:
        """The aggregator's fields in the Twilio vocabulary the SMS conversation reads."""
        cached = getattr(request.ctx, "at_params", None)
        if cached is None:
            form = form_of(request)
            cached = {"Body": form.get("text") or "", "From": self._number(form.get("from")),
                      "MessageSid": form.get("id") or "", "NumMedia": "0"}
            request.ctx.at_params = cached
        return cached

    async def _handle(self, request: Request, on_new_message: Callable, started: float) -> Optional[Text]:
        """Answer the callback now (empty 200); the turn and its reply go on in the background."""
        if self.outbox is not None:
            self.outbox.wake()  # replies a restart left in the outbox
        self._params(request)  # read the body while the request is open
        task = asyncio.get_running_loop().create_task(self._answer_later(request, on_new_message, started))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return None

    async def _answer_later(self, request: Request, on_new_message: Callable, started: float) -> None:
        try:
            await SmsConversation._handle(self, request, on_new_message, started)
        except Exception:
            self._log.exception("at_sms message failed.")

    async def _deliver(self, sms: SmsRequest, reply: Optional[Text]) -> None:
        if not reply:
            return
        if self.outbox is None:
            self._log.error("at_sms reply not sent: AT_USERNAME / AT_API_KEY are not set.")
            return
        await self.outbox.put(sms.sender_id, sms.form.get("From") or "", reply, confirmation=sms.confirmation)

    async def _apology(self, request: Request) -> Optional[Text]:
        return None  # the callback's answer is never shown to the learner
