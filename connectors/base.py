"""What the Twilio voice and SMS channels share: the signature check and TwiML answers.

Everything else (learner identity, the webhook, one Rasa turn) is the provider-neutral
:class:`connectors.channel_base.PhoneInputBase`. A Twilio channel subclasses
:class:`TwilioInputBase`, names itself, names its settings class (``connectors.settings``) and
answers ``_handle`` (a signed webhook request) and ``_apology`` (the reply when ``_handle`` failed).
"""
from __future__ import annotations

from typing import Any, Optional, Text, Type

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.channel_base import PhoneInputBase
from connectors.security import TwilioRequestAuthenticator
from connectors.settings import TwilioSettings


class TwilioInputBase(PhoneInputBase):
    """A Twilio webhook channel: ``GET /`` health, ``POST /webhook`` signed requests answered in TwiML."""

    settings_class: Type[TwilioSettings] = TwilioSettings
    rejection = "Twilio signature"
    settings: TwilioSettings

    def _authenticator(self, settings: TwilioSettings) -> TwilioRequestAuthenticator:
        return TwilioRequestAuthenticator(
            settings.auth_token, settings.validate_signature, settings.public_base_url, settings.trust_proxy
        )

    def _reject_unsigned(self, request: Request, what: Text) -> Optional[HTTPResponse]:
        """403 for a request without a valid Twilio signature, before anything else happens."""
        return self._reject_unauthenticated(request, what)

    def _xml(self, twiml: Any) -> HTTPResponse:
        return response.text(str(twiml), content_type="text/xml")
