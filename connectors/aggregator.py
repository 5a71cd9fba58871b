"""What the aggregator's channels share (Africa's Talking protocol: USSD and two-way SMS).

The aggregator's callbacks are form POSTs without a signature: :class:`AggregatorInputBase`
accepts them through ``connectors.callback_guard`` (source address + secret path segment) on
``POST /webhooks/<channel>/webhook/<secret>`` -- or ``/webhook`` from loopback when no
secret is configured (``make run``) -- and answers anything else 403. Answers are plain text.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Text, Type

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from rasa.shared.exceptions import InvalidConfigException

from connectors.callback_guard import CallbackGuard
from connectors.channel_base import PhoneInputBase
from connectors.settings import AggregatorSettings


def form_of(request: Request) -> Dict[Text, Text]:
    """The callback's form fields, blank ones included (first value of each)."""
    try:
        return {key: values[0] for key, values in (request.form or {}).items() if values}
    except Exception:  # a malformed body: no fields
        return {}


class AggregatorInputBase(PhoneInputBase):
    """An aggregator callback channel: ``GET /`` health, ``POST /webhook[/<secret>]``."""

    settings_class: Type[AggregatorSettings] = AggregatorSettings
    rejection = "source address and callback secret"
    webhook_paths = ("/webhook", "/webhook/<secret>")
    settings: AggregatorSettings

    def _authenticator(self, settings: AggregatorSettings) -> CallbackGuard:
        try:
            return CallbackGuard(settings.callback_secret, settings.allowed_sources, settings.trust_proxy)
        except ValueError as exc:
            raise InvalidConfigException(str(exc)) from exc

    def _xml(self, reply: Optional[Text]) -> HTTPResponse:
        return response.text(reply or "", content_type="text/plain")

    @staticmethod
    def _number(raw: Any) -> Text:
        """The caller's number as E.164 (the aggregator sends ``+250...``; some gateways drop the +)."""
        number = str(raw or "").strip()
        return "+" + number if number.isdigit() and len(number) > 9 else number
