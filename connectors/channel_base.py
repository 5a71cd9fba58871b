"""What every phone channel shares, whoever carries it (Twilio, a local aggregator): settings,
learner identity, the webhook, one Rasa turn.

A provider's base (``connectors.base.TwilioInputBase``, ``connectors.aggregator.AggregatorInputBase``)
says how a request is authenticated (``_authenticator``) and rendered (``_xml``); a channel
names itself, names its settings class (``connectors.settings``) and answers ``_handle`` (an
authenticated webhook request) and ``_apology`` (the reply when ``_handle`` failed).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text, Tuple, Type

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.exceptions import InvalidConfigException

from connectors.common import BotOutput, parse_bot_messages, read_conversation, view_of
from connectors.keypad import KeypadMenu
from connectors.prompts import Prompts
from connectors.security import DEV_SENDER_ID_SECRET, SenderIdHasher, short_ref
from connectors.session_state import ConversationState
from connectors.settings import PhoneSettings
from connectors.state import StateStore, get_state_store
from connectors.timing import TurnTimer, emit, turn_fields
from connectors.turns import TurnRunner, results_of
from infra import rasa_patches
from infra.rate_limit import LearnerRateLimit, registered_app


class PhoneInputBase(InputChannel):
    """A phone webhook channel: ``GET /`` health, ``POST /webhook`` authenticated requests."""

    settings_class: Type[PhoneSettings] = PhoneSettings
    rejection: Text = "authentication"  # what a rejected request lacked, for the log
    webhook_paths: Tuple[Text, ...] = ("/webhook",)
    state_namespace: Text = ""  # prefix of the channel's keys in the state store
    collector_class: Type[CollectingOutputChannel] = CollectingOutputChannel
    log_after_reply: bool = False  # True: _ask_rasa leaves the turn's log line to the channel

    # ------------------------------------------------------------------ configuration
    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls(cls.settings_class.from_credentials(credentials))

    def __init__(self, settings: PhoneSettings, *, store: Optional[StateStore] = None) -> None:
        """``store``: the state store (default: Redis when ``redis_url``/``REDIS_URL`` is set, else in memory)."""
        self.settings = settings
        self.auth = self._authenticator(settings)
        secret = settings.sender_id_secret or (DEV_SENDER_ID_SECRET if settings.dev_secret_allowed else None)
        if not settings.sender_id_secret and settings.dev_secret_allowed:
            self._log.warning("SENDER_ID_SECRET is not set: using the development default (local use only).")
        if not secret:
            self._log.error(
                "SENDER_ID_SECRET is not set: %s cannot name conversations and will only apologise.", self.name()
            )
        self.hasher = SenderIdHasher(secret) if secret else None
        self.turn_budget = settings.turn_budget
        try:
            self.keypad = KeypadMenu(settings.keypad, default_language=settings.default_language)
        except ValueError as exc:
            raise InvalidConfigException(str(exc)) from exc
        self.prompts = Prompts(settings.prompts)
        self.store = store if store is not None else get_state_store(settings.redis_url)
        self.turns = TurnRunner(self.store, self.state_namespace)
        # turns per learner, counted like ``store`` (Redis or this process); read by ``blueprint``
        self.rate_limit: Optional[LearnerRateLimit] = (
            LearnerRateLimit.with_limits(settings.rate_limits, settings.redis_url) if settings.rate_limits else None
        )
        if settings.timing_instrumentation and "timing" not in rasa_patches.installed():
            self._log.warning("Rasa is not patched (start it with `python -m infra.rasa_main run ...`): turn "
                              "timings are not split into nlu/policy/actions and every turn reads the store twice.")

    def _authenticator(self, settings: Any) -> Any:
        """What checks a request: an object with ``is_valid(request) -> bool``."""
        raise NotImplementedError

    @property
    def _log(self) -> logging.Logger:
        # log records keep the channel module's name (connectors.twilio_voice / _sms)
        return logging.getLogger(type(self).__module__)

    # ------------------------------------------------------------------ blueprint
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint(f"bakame_{self.name()}", type(self).__module__)
        if self.rate_limit is not None:  # over the limit: no Rasa turn; a call ends, an SMS gets no reply
            on_new_message = self.rate_limit.guard(on_new_message, lambda: registered_app(bp), end_call=True)

        @bp.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        async def receive(request: Request, **_: Any) -> HTTPResponse:
            started = time.perf_counter()
            rejected = self._reject_unauthenticated(request, "request")
            if rejected is not None:
                return rejected
            try:
                reply = await self._handle(request, on_new_message, started)
            except Exception:
                self._log.exception("%s webhook failed; answering with an apology.", self.name())
                reply = await self._apology(request)
            return self._xml(reply)

        for index, path in enumerate(self.webhook_paths):
            bp.add_route(receive, path, methods=["POST"], name=f"receive{index or ''}")
        return bp

    def _reject_unauthenticated(self, request: Request, what: Text) -> Optional[HTTPResponse]:
        """403 for a request that fails ``self.auth``, before anything else happens."""
        if self.auth.is_valid(request):
            return None
        self._log.warning("Rejected a %s %s without a valid %s.", self.name(), what, self.rejection)
        return response.text("Forbidden", status=403)

    def _xml(self, reply: Any) -> HTTPResponse:
        """The HTTP answer carrying ``reply`` (TwiML for Twilio, plain text for the aggregator)."""
        raise NotImplementedError

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

        return await self.turns.run(scope, turn_id, timed, self._remaining(started))

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
        fields = turn_fields(self.name(), short_ref(sender_id), timer, kind=kind, messages=len(output.texts),
                             over_budget=timer.elapsed() > self.turn_budget)
        result = {"output": output.as_dict(), "language": view.language, "math": view.math_active,
                  "module": view.module, "loop": view.active_loop}
        if self.log_after_reply:
            result["timing"] = fields  # the channel logs the turn once its reply is ready (tts_ms)
        else:
            emit(fields)
        return result

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
    async def _recall_conversation(request: Request, sender_id: Text, state: ConversationState) -> None:
        """Language and math flag from the tracker when the channel's state has lost them."""
        if not state.known:
            view = await read_conversation(request.app, sender_id)
            state.learn(view.language, view.math_active)

    @staticmethod
    def _take_carried(state: ConversationState, records: List[Dict[Text, Any]]) -> BotOutput:
        """Earlier turns' records nobody picked up: their output, oldest first; each sets the state it left."""
        for result in results_of(records):
            state.learn(result.get("language"), result.get("math"))
        return PhoneInputBase._carried_output(records)
