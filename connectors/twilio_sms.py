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
during a math problem digits are the answer (``connectors.keypad``). The conversation itself
(shared with the aggregator's SMS channel) is ``connectors.sms_conversation``.
"""
from __future__ import annotations

from typing import Any, Optional, Text

from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.base import TwilioInputBase
from connectors.common import TwilioSmsCollector
from connectors.security import twilio_params
from connectors.settings import SmsSettings
from connectors.sms_conversation import CONV_TTL, MORE_TTL, SmsConversation, SmsRequest  # noqa: F401
from connectors.twiml import sms_twiml


class TwilioSmsInput(SmsConversation, TwilioInputBase):
    """Twilio Programmable Messaging (SMS), English and Kinyarwanda."""

    settings_class = SmsSettings
    state_namespace = "sms"
    collector_class = TwilioSmsCollector
    settings: SmsSettings

    @classmethod
    def name(cls) -> Text:
        return "twilio_sms"

    def _params(self, request: Request) -> Any:
        return twilio_params(request)

    def _xml(self, reply: Optional[Text]) -> HTTPResponse:
        return super()._xml(sms_twiml(reply))
