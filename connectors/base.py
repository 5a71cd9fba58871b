"""What the Twilio voice and SMS channels share: settings, learner identity, the webhook, one Rasa turn.

A channel subclasses :class:`TwilioInputBase`, names itself and answers ``_handle`` (a
signed webhook request) and ``_apology`` (the reply when ``_handle`` failed).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Text, Type

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.exceptions import InvalidConfigException

from connectors.common import (
    BotOutput, as_bool, as_float, parse_bot_messages, read_conversation, setting, view_of,
)
from connectors.keypad import KeypadMenu
from connectors.prompts import Prompts
from connectors.security import (
    DEV_SENDER_ID_SECRET, SenderIdHasher, TwilioRequestAuthenticator, require_production_secrets, short_ref,
)
from connectors.state import StateStore, get_state_store
from connectors.timing import TurnTimer, install_rasa_instrumentation, log_turn
from connectors.turns import TurnRunner, results_of


class TwilioInputBase(InputChannel):
    """A Twilio webhook channel: ``GET /`` health, ``POST /webhook`` signed requests answered in TwiML."""

    turn_budget_env: Text = ""  # environment variable of ``turn_budget``
    state_namespace: Text = ""  # prefix of the channel's keys in the state store
    collector_class: Type[CollectingOutputChannel] = CollectingOutputChannel

    # ------------------------------------------------------------------ configuration
    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        c = credentials or {}
        shared = cls._shared_settings(c)
        if as_bool(c.get("production"), False):  # credentials.prod.yml: never unsigned, never the dev key
            require_production_secrets(shared["auth_token"], shared["sender_id_secret"],
                                       shared["validate_signature"])
        return cls(**shared, **cls._channel_settings(c))

    @classmethod
    def _shared_settings(cls, c: Mapping[Text, Any]) -> Dict[Text, Any]:
        return dict(
            auth_token=setting(c, "auth_token", "TWILIO_AUTH_TOKEN"),
            validate_signature=as_bool(setting(c, "validate_signature", "TWILIO_VALIDATE_SIGNATURE"), True),
            public_base_url=setting(c, "public_base_url", "PUBLIC_BASE_URL"),
            trust_proxy=as_bool(setting(c, "trust_proxy", "TWILIO_TRUST_PROXY"), False),
            sender_id_secret=setting(c, "sender_id_secret", "SENDER_ID_SECRET"),
            turn_budget=as_float(setting(c, "turn_budget", cls.turn_budget_env), 10.0),
            keypad=c.get("keypad"),
            default_language=setting(c, "default_language", default="en"),
            prompts=c.get("prompts"),
            redis_url=setting(c, "redis_url", "REDIS_URL"),
            timing_instrumentation=as_bool(
                setting(c, "timing_instrumentation", "TWILIO_TIMING_INSTRUMENTATION"), True
            ),
        )

    @classmethod
    def _channel_settings(cls, c: Mapping[Text, Any]) -> Dict[Text, Any]:
        """The channel's own credentials keys, as keyword arguments of its constructor."""
        return {}

    def __init__(
        self,
        *,
        auth_token: Optional[Text] = None,
        validate_signature: bool = True,
        public_base_url: Optional[Text] = None,
        trust_proxy: bool = False,
        sender_id_secret: Optional[Text] = None,
        turn_budget: float = 10.0,
        keypad: Optional[Dict[Text, Text]] = None,
        default_language: Text = "en",
        prompts: Optional[Dict[Text, Any]] = None,
        redis_url: Optional[Text] = None,
        store: Optional[StateStore] = None,
        timing_instrumentation: bool = True,
    ) -> None:
        """The settings every Twilio channel has; a subclass checks its own ones first."""
        self.auth = TwilioRequestAuthenticator(auth_token, validate_signature, public_base_url, trust_proxy)
        secret = sender_id_secret or (None if validate_signature else DEV_SENDER_ID_SECRET)
        if not sender_id_secret and not validate_signature:
            self._log.warning("SENDER_ID_SECRET is not set: using the development default (local use only).")
        if not secret:
            self._log.error(
                "SENDER_ID_SECRET is not set: %s cannot name conversations and will only apologise.", self.name()
            )
        self.hasher = SenderIdHasher(secret) if secret else None
        self.turn_budget = max(1.0, float(turn_budget))
        try:
            self.keypad = KeypadMenu(keypad, default_language=default_language)
        except ValueError as exc:
            raise InvalidConfigException(str(exc)) from exc
        self.prompts = Prompts(prompts)
        self.store = store if store is not None else get_state_store(redis_url)
        self.turns = TurnRunner(self.store, self.state_namespace)
        if timing_instrumentation:
            install_rasa_instrumentation()

    @property
    def _log(self) -> logging.Logger:
        # log records keep the channel module's name (connectors.twilio_voice / _sms)
        return logging.getLogger(type(self).__module__)

    # ------------------------------------------------------------------ blueprint
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint(f"bakame_{self.name()}", type(self).__module__)

        @bp.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            started = time.perf_counter()
            rejected = self._reject_unsigned(request, "request")
            if rejected is not None:
                return rejected
            try:
                reply = await self._handle(request, on_new_message, started)
            except Exception:
                self._log.exception("%s webhook failed; answering with an apology.", self.name())
                reply = await self._apology(request)
            return self._xml(reply)

        return bp

    def _reject_unsigned(self, request: Request, what: Text) -> Optional[HTTPResponse]:
        """403 for a request without a valid Twilio signature, before anything else happens."""
        if self.auth.is_valid(request):
            return None
        self._log.warning("Rejected a %s %s without a valid Twilio signature.", self.name(), what)
        return response.text("Forbidden", status=403)

    def _xml(self, twiml: Any) -> HTTPResponse:
        return response.text(str(twiml), content_type="text/xml")

    async def _handle(self, request: Request, on_new_message: Callable, started: float) -> Any:
        """The reply to a signed webhook request (what ``_xml`` turns into TwiML)."""
        raise NotImplementedError

    async def _apology(self, request: Request) -> Any:
        """The reply when ``_handle`` failed; must not raise."""
        raise NotImplementedError

    # ------------------------------------------------------------------ turns
    def _remaining(self, started: float) -> float:
        return self.turn_budget - (time.perf_counter() - started)

    async def _run_turn(
        self, scope: Text, turn_id: Text, started: float, work: Callable[[TurnTimer], Awaitable[Dict[Text, Any]]]
    ) -> Optional[Dict[Text, Any]]:
        """Run ``work`` in the background, timed; its record if it ends within the turn budget, else None."""

        async def timed() -> Dict[Text, Any]:
            timer = TurnTimer(started).activate()
            try:
                return await work(timer)
            finally:
                timer.deactivate()

        await self.turns.start(scope, turn_id, timed)
        return await self.turns.wait(scope, turn_id, self._remaining(started))

    async def _ask_rasa(
        self, app: Any, on_new_message: Callable, timer: TurnTimer, text: Text, sender_id: Text,
        message_id: Text, metadata: Dict[Text, Any], kind: Text,
    ) -> Dict[Text, Any]:
        """One message through Rasa: the bot's output and the language and math flag it left."""
        collector = self.collector_class()
        rasa_started = time.perf_counter()
        await on_new_message(
            UserMessage(text, collector, sender_id, input_channel=self.name(), message_id=message_id,
                        metadata=metadata)
        )
        timer.rasa = time.perf_counter() - rasa_started
        saved = timer.tracker
        if saved is not None and getattr(saved, "sender_id", None) == sender_id:
            view = view_of(saved)  # the tracker Rasa just saved (connectors.timing)
        else:
            view = await read_conversation(app, sender_id)
        output = self._renderable(parse_bot_messages(collector.messages))
        log_turn(self.name(), short_ref(sender_id), timer, kind=kind, messages=len(output.texts),
                 over_budget=timer.elapsed() > self.turn_budget)
        return {"output": output.as_dict(), "language": view.language, "math": view.math_active}

    def _renderable(self, output: BotOutput) -> BotOutput:
        """The bot's output reduced to what this channel can say or send."""
        return output

    @staticmethod
    def _carried_output(records: List[Dict[Text, Any]]) -> BotOutput:
        """The output of earlier turns' records that nobody picked up, oldest first."""
        output = BotOutput()
        for result in results_of(records):
            output = output.extend(BotOutput.from_dict(result.get("output")))
        return output

    @staticmethod
    async def _recall_conversation(request: Request, sender_id: Text, state: Dict[Text, Any]) -> None:
        """Language and math flag from the tracker when the channel's state has lost them."""
        if "lang" not in state:
            view = await read_conversation(request.app, sender_id)
            state.update(lang=view.language, math=view.math_active)
