"""BAKAME's Twilio voice channel: ``POST /webhooks/twilio_voice/webhook``.

Point the Twilio number's "A call comes in" webhook at ``.../webhooks/twilio_voice/webhook``
and its "Call status changes" callback at ``.../webhooks/twilio_voice/status`` (both POST).

One call, as Twilio sees it:

1. call start (the number's webhook, no ``step`` parameter): the channel sends
   ``/session_start`` with call metadata (never the number) so ``action_session_start``
   speaks the welcome; if the bot says nothing, a bilingual welcome of the channel's own.
2. every reply ends in a listen block whose action is ``...webhook?step=input``:
   ``<Gather input="dtmf speech" language=.. speechTimeout="auto" bargeIn="true">`` with the
   bot's messages nested (the learner may interrupt any of them); or, for Kinyarwanda in
   ``record`` mode, a keypad-only ``<Gather>`` followed by ``<Record action=..step=record>``
   whose audio is transcribed through an OpenAI-compatible endpoint.
3. keypad digits are mapped by ``connectors.keypad``; speech below the ASR confidence
   threshold is not guessed at (the learner is asked to repeat); silence reprompts in the
   learner's language and, after ``max_silences`` reprompts, says goodbye and hangs up.
4. a turn that has not finished within ``turn_budget`` seconds gets a short holding
   prompt and a ``<Redirect>`` to ``...webhook?step=await&turn=<id>`` that picks up the
   finished answer (``connectors.turns``), so no webhook runs into Twilio's 15 s limit.
5. a bot message with the custom payload ``{"end_call": true, "text": ...}`` says the text
   (or a goodbye) and ``<Hangup/>``; other custom payloads, images and attachments are
   skipped; buttons are read out as "Press 1 for ...".
6. ``CallStatus`` completed/busy/failed/no-answer/canceled (on either route) records the
   end of the call and clears its state.

Every request must carry a valid ``X-Twilio-Signature`` (403 otherwise, before anything
else happens). Internal errors are answered with polite TwiML, never an HTTP 500.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Text
from urllib.parse import urlencode

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

from rasa.core.channels.channel import UserMessage
from rasa.shared.exceptions import InvalidConfigException

from connectors.base import TwilioInputBase
from connectors.common import (
    BotOutput,
    TwilioVoiceCollector,
    as_bool,
    as_float,
    as_int,
    read_conversation,
    setting,
    strip_emoji,
)
from connectors.security import short_ref, twilio_params
from connectors.timing import TurnTimer, log_turn
from connectors.transcription import Transcriber, TranscriptionError
from connectors.turns import DONE, FAILED, MISSING, results_of

logger = logging.getLogger(__name__)

FINAL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}
CALL_TTL = 4 * 3600.0
RW_MODES = ("gather", "record", "auto")
STT_FAILURES_BEFORE_GATHER = 2


class TwilioVoiceInput(TwilioInputBase):
    """Twilio Programmable Voice, speech and keypad, English and Kinyarwanda."""

    turn_budget_env = "VOICE_TURN_BUDGET"
    state_namespace = "voice"
    collector_class = TwilioVoiceCollector

    @classmethod
    def name(cls) -> Text:
        return "twilio_voice"

    @classmethod
    def _channel_settings(cls, c: Mapping[Text, Any]) -> Dict[Text, Any]:
        stt = {
            "base_url": setting(c, "stt_base_url"),
            "model": setting(c, "stt_model"),
        }
        return dict(
            asr_min_confidence=as_float(setting(c, "asr_min_confidence", "VOICE_ASR_MIN_CONFIDENCE"), 0.4),
            rw_mode=str(setting(c, "rw_mode", "VOICE_RW_MODE", "auto")).lower(),
            voice_en=setting(c, "voice_en", default="Polly.Amy"),
            voice_rw=setting(c, "voice_rw", default="Polly.Amy"),
            say_language_en=setting(c, "say_language_en"),
            say_language_rw=setting(c, "say_language_rw"),
            gather_language_en=setting(c, "gather_language_en", default="en-US"),
            gather_language_rw=setting(c, "gather_language_rw", default="rw-RW"),
            speech_timeout=str(setting(c, "speech_timeout", default="auto")),
            speech_model=setting(c, "speech_model"),
            enhanced=as_bool(setting(c, "enhanced"), False),
            speech_hints=setting(c, "speech_hints"),
            gather_timeout=as_int(setting(c, "gather_timeout"), 6),
            math_gather_timeout=as_int(setting(c, "math_gather_timeout"), 8),
            max_silences=as_int(setting(c, "max_silences", "VOICE_MAX_SILENCES"), 2),
            max_low_confidence=as_int(setting(c, "max_low_confidence"), 2),
            max_holds=as_int(setting(c, "max_holds"), 4),
            record_max_length=as_int(setting(c, "record_max_length"), 15),
            record_silence_timeout=as_int(setting(c, "record_silence_timeout"), 2),
            record_dtmf_window=as_int(setting(c, "record_dtmf_window"), 2),
            play_beep=as_bool(setting(c, "play_beep"), True),
            call_end_intent=setting(c, "call_end_intent", "VOICE_CALL_END_INTENT"),
            transcriber=Transcriber.from_env(**stt),
        )

    def __init__(
        self,
        *,
        asr_min_confidence: float = 0.4,
        rw_mode: Text = "auto",
        voice_en: Text = "Polly.Amy",
        voice_rw: Text = "Polly.Amy",
        say_language_en: Optional[Text] = None,
        say_language_rw: Optional[Text] = None,
        gather_language_en: Text = "en-US",
        gather_language_rw: Text = "rw-RW",
        speech_timeout: Text = "auto",
        speech_model: Optional[Text] = None,
        enhanced: bool = False,
        speech_hints: Optional[Text] = None,
        gather_timeout: int = 6,
        math_gather_timeout: int = 8,
        max_silences: int = 2,
        max_low_confidence: int = 2,
        max_holds: int = 4,
        record_max_length: int = 15,
        record_silence_timeout: int = 2,
        record_dtmf_window: int = 2,
        play_beep: bool = True,
        call_end_intent: Optional[Text] = None,
        transcriber: Optional[Transcriber] = None,
        **shared: Any,
    ) -> None:
        """``shared``: the settings of every Twilio channel (``TwilioInputBase``)."""
        self.asr_min_confidence = float(asr_min_confidence)
        self.voice = {"en": voice_en, "rw": voice_rw}
        self.say_language = {"en": say_language_en, "rw": say_language_rw}
        self.gather_language = {"en": gather_language_en, "rw": gather_language_rw}
        self.speech_timeout = str(speech_timeout)
        self.speech_model = speech_model or None
        self.enhanced = bool(enhanced)
        self.speech_hints = speech_hints or None
        self.gather_timeout = int(gather_timeout)
        self.math_gather_timeout = int(math_gather_timeout)
        self.max_silences = int(max_silences)
        self.max_low_confidence = int(max_low_confidence)
        self.max_holds = max(1, int(max_holds))
        self.record_max_length = int(record_max_length)
        self.record_silence_timeout = int(record_silence_timeout)
        self.record_dtmf_window = int(record_dtmf_window)
        self.play_beep = bool(play_beep)
        self.call_end_intent = (call_end_intent or "").strip().lstrip("/") or None
        self.transcriber = transcriber or Transcriber(None)
        self.rw_mode = self._resolve_rw_mode(rw_mode)
        self._auth_token = shared.get("auth_token")  # to fetch and delete recordings
        self._background: set = set()
        self._validate_configuration()
        super().__init__(**shared)

    # ------------------------------------------------------------------ config
    def _resolve_rw_mode(self, mode: Text) -> Text:
        mode = (mode or "auto").lower()
        if mode not in RW_MODES:
            raise InvalidConfigException(f"rw_mode (VOICE_RW_MODE) must be one of {RW_MODES}, not {mode!r}.")
        if mode == "auto":
            return "record" if self.transcriber.enabled else "gather"
        if mode == "record" and not self.transcriber.enabled:
            logger.warning(
                "VOICE_RW_MODE=record needs STT_BASE_URL (or LLM_BASE_URL); "
                "falling back to <Gather> speech recognition for Kinyarwanda."
            )
            return "gather"
        return mode

    def _validate_configuration(self) -> None:
        timeout = self.speech_timeout.lower()
        if timeout != "auto":
            try:
                if int(timeout) < 1:
                    raise ValueError
            except ValueError:
                raise InvalidConfigException(
                    f"speech_timeout must be 'auto' or a positive whole number of seconds, not {self.speech_timeout!r}."
                )
        if self.speech_model and timeout == "auto" and self.speech_model != "numbers_and_commands":
            raise InvalidConfigException(
                "Twilio only accepts speech_timeout 'auto' without a speech_model (or with "
                "'numbers_and_commands'); set speech_timeout to a number of seconds."
            )
        if self.enhanced and self.speech_model != "phone_call":
            raise InvalidConfigException("enhanced speech recognition needs speech_model 'phone_call'.")
        for lang, voice in self.voice.items():
            if not voice or not isinstance(voice, str):
                raise InvalidConfigException(f"voice_{lang} must name a Twilio <Say> voice.")
        if not 0.0 <= self.asr_min_confidence <= 1.0:
            raise InvalidConfigException("asr_min_confidence must be between 0 and 1.")

    # ------------------------------------------------------------------ blueprint
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = super().blueprint(on_new_message)

        @bp.route("/status", methods=["POST"])
        async def status(request: Request) -> HTTPResponse:
            rejected = self._reject_unsigned(request, "status callback")
            if rejected is not None:
                return rejected
            try:
                form = twilio_params(request)
                call_sid = (form.get("CallSid") or "").strip()
                call_status = (form.get("CallStatus") or "").strip().lower()
                if call_sid and call_status in FINAL_STATUSES and self.hasher:
                    await self._end_call(request, on_new_message, call_sid, self._sender_id(form, call_sid), call_status)
            except Exception:
                logger.exception("twilio_voice status callback failed.")
            return self._xml(VoiceResponse())

        return bp

    # ------------------------------------------------------------------ request handling
    def _sender_id(self, form: Any, call_sid: Text) -> Text:
        direction = (form.get("Direction") or "inbound").lower()
        learner = form.get("To") if direction.startswith("outbound") else form.get("From")
        return self.hasher.sender_id(learner, fallback=call_sid)  # type: ignore[union-attr]

    @staticmethod
    def _call_key(call_sid: Text) -> Text:
        return f"voice:call:{call_sid}"

    async def _load_call(self, call_sid: Text) -> Dict[Text, Any]:
        return await self.store.get(self._call_key(call_sid)) or {}

    async def _save_call(self, call_sid: Text, call: Dict[Text, Any]) -> None:
        await self.store.set(self._call_key(call_sid), call, CALL_TTL)

    def _metadata(self, form: Any, call_sid: Text, **extra: Any) -> Dict[Text, Any]:
        direction = (form.get("Direction") or "inbound").lower()
        country = form.get("ToCountry") if direction.startswith("outbound") else form.get("FromCountry")
        metadata = {"channel": self.name(), "call_sid": call_sid, "direction": direction}
        if country:
            metadata["caller_country"] = country
        metadata.update({k: v for k, v in extra.items() if v is not None})
        return metadata

    async def _handle(self, request: Request, on_new_message: Callable, started: float) -> VoiceResponse:
        form = twilio_params(request)
        call_sid = (form.get("CallSid") or "").strip()
        call_status = (form.get("CallStatus") or "").strip().lower()
        step = request.args.get("step")
        if not call_sid:
            logger.warning("twilio_voice request without CallSid.")
            return self._error_twiml(None, hangup=True)
        if self.hasher is None:
            return self._error_twiml(None, hangup=True)
        sender_id = self._sender_id(form, call_sid)
        if call_status in FINAL_STATUSES:
            # e.g. the <Record> action after the caller hung up: keep no recording
            self.transcriber.delete_recording_later(form.get("RecordingUrl"), form.get("AccountSid"), self._auth_token)
            await self._end_call(request, on_new_message, call_sid, sender_id, call_status)
            return VoiceResponse()
        call = await self._load_call(call_sid)
        action_base = self._action_base(request)

        if step == "await":
            return await self._resume(request, call_sid, sender_id, call, action_base, started)

        if not step:  # the number's own webhook: the call starts
            call = {"started_at": time.time(), "turns": 0, "silences": 0, "low_conf": 0, "pending": []}
            metadata = self._metadata(form, call_sid, call_start=True)
            return await self._turn(
                request, on_new_message, sender_id, call_sid, call, action_base, started,
                text="/session_start", metadata=metadata, kind="call_start",
            )

        digits = (form.get("Digits") or "").strip()
        speech = (form.get("SpeechResult") or "").strip()
        recording_url = (form.get("RecordingUrl") or "").strip()
        # answers of earlier turns nobody picked up come first, and set the state they left
        carried, call["pending"] = await self.turns.collect_ready(call_sid, call.get("pending") or [])
        for result in results_of(carried):
            call.update(lang=result.get("language"), math=bool(result.get("math")))
        # state lost (e.g. another process without Redis): ask the tracker
        await self._recall_conversation(request, sender_id, call)
        language, math_active = call.get("lang"), bool(call.get("math"))

        if step == "record":
            if digits == "hangup":
                self.transcriber.delete_recording_later(recording_url, form.get("AccountSid"), self._auth_token)
                return VoiceResponse()
            duration = as_float(form.get("RecordingDuration"), 0.0)
            if digits and digits not in ("#", "hangup") and duration < 2.0:
                # a key ended the recording at once: the learner used the keypad
                self.transcriber.delete_recording_later(recording_url, form.get("AccountSid"), self._auth_token)
                recording_url = ""
            elif recording_url and duration >= 0.5:
                digits = ""
                metadata = self._metadata(form, call_sid, input="speech", asr="record")
                return await self._turn(
                    request, on_new_message, sender_id, call_sid, call, action_base, started,
                    recording_url=recording_url, account_sid=form.get("AccountSid"),
                    metadata=metadata, kind="record", language=language, carried=carried,
                )
            else:
                self.transcriber.delete_recording_later(recording_url, form.get("AccountSid"), self._auth_token)
                digits = ""

        if digits:
            entry = self.keypad.resolve(
                digits, language=language, math_active=math_active,
                buttons=[b.get("payload") for b in call.get("buttons") or []],
            )
            if entry is not None:
                metadata = self._metadata(form, call_sid, input="dtmf", keypad=entry.kind)
                return await self._turn(
                    request, on_new_message, sender_id, call_sid, call, action_base, started,
                    text=entry.text, metadata=metadata, kind="dtmf", carried=carried,
                )

        if speech:
            confidence = form.get("Confidence")
            if self._low_confidence(confidence) and call.get("low_conf", 0) < self.max_low_confidence:
                call["low_conf"] = call.get("low_conf", 0) + 1
                await self._save_call(call_sid, call)
                self._log_local(sender_id, started, "low_confidence")
                texts = self._carried_output(carried).texts + [self.prompts.get("low_confidence", language)]
                return self._listen_twiml(texts, language, math_active, call, action_base)
            metadata = self._metadata(form, call_sid, input="speech", asr="gather", asr_confidence=self._confidence(confidence))
            return await self._turn(
                request, on_new_message, sender_id, call_sid, call, action_base, started,
                text=speech, metadata=metadata, kind="speech", carried=carried,
            )

        return await self._silence(request, sender_id, call_sid, call, action_base, started, carried)

    # ------------------------------------------------------------------ input checks
    @staticmethod
    def _confidence(value: Any) -> Optional[float]:
        try:
            return float(value)
        except (TypeError, ValueError):
            return None

    def _low_confidence(self, value: Any) -> bool:
        confidence = self._confidence(value)
        if confidence is None or confidence <= 0.0:
            # Twilio omits the score (or sends 0) for some speech models: not evidence
            return False
        return confidence < self.asr_min_confidence

    # ------------------------------------------------------------------ turns
    def _renderable(self, output: BotOutput) -> BotOutput:
        # <Say> reads emoji out by name: drop them (and messages left empty)
        output.texts = [t for t in (strip_emoji(x) for x in output.texts) if t]
        return output

    async def _turn(
        self,
        request: Request,
        on_new_message: Callable,
        sender_id: Text,
        call_sid: Text,
        call: Dict[Text, Any],
        action_base: Text,
        started: float,
        metadata: Dict[Text, Any],
        kind: Text,
        text: Optional[Text] = None,
        recording_url: Optional[Text] = None,
        account_sid: Optional[Text] = None,
        language: Optional[Text] = None,
        carried: Optional[List[Dict[Text, Any]]] = None,
    ) -> VoiceResponse:
        carried = carried or []
        call.setdefault("pending", [])
        turn_id = uuid.uuid4().hex[:16]
        app = request.app

        async def work(timer: TurnTimer) -> Dict[Text, Any]:
            message_text = text
            if recording_url:
                try:
                    message_text, timer.stt = await self.transcriber.transcribe_recording(
                        recording_url, language, account_sid, self._auth_token
                    )
                except TranscriptionError as exc:
                    logger.info("Kinyarwanda turn not transcribed (%s).", exc)
                    log_turn(self.name(), short_ref(sender_id), timer, kind=kind, outcome="stt_failed")
                    return {"stt_failed": True}
            result = await self._ask_rasa(app, on_new_message, timer, message_text, sender_id,
                                          f"{call_sid}:{turn_id}", metadata, kind)
            result["kind"] = kind
            return result

        record = await self._run_turn(call_sid, turn_id, started, work)
        if record is None:
            call["pending"] = call["pending"] + [turn_id]
            await self._save_call(call_sid, call)
            before = self._carried_output(carried).texts
            return self._holding_twiml(call.get("lang"), action_base, turn_id, 1, before=before)
        return await self._deliver(record, call_sid, call, action_base, carried)

    async def _resume(
        self, request: Request, call_sid: Text, sender_id: Text, call: Dict[Text, Any], action_base: Text, started: float
    ) -> VoiceResponse:
        turn_id = request.args.get("turn") or ""
        holds = as_int(request.args.get("n"), 1)
        record = await self.turns.wait(call_sid, turn_id, self._remaining(started)) if turn_id else {"status": MISSING}
        if record is None:
            if holds < self.max_holds:
                return self._holding_twiml(call.get("lang"), action_base, turn_id, holds + 1)
            logger.warning("A twilio_voice turn of %s is still running after %d holds.", short_ref(sender_id), holds)
            lang = call.get("lang")
            return self._listen_twiml([self.prompts.get("error", lang)], lang, bool(call.get("math")), call, action_base)
        call["pending"] = [t for t in call.get("pending") or [] if t != turn_id]
        return await self._deliver(record, call_sid, call, action_base, [])

    async def _deliver(
        self, record: Dict[Text, Any], call_sid: Text, call: Dict[Text, Any], action_base: Text,
        carried: List[Dict[Text, Any]],
    ) -> VoiceResponse:
        lang, math = call.get("lang"), bool(call.get("math"))
        output = self._carried_output(carried)

        status = record.get("status")
        result = record.get("result") if status == DONE else None
        if status == FAILED or (status == DONE and not isinstance(result, dict)):
            await self._save_call(call_sid, call)
            texts = output.texts + [self.prompts.get("error", lang)]
            return self._listen_twiml(texts, lang, math, call, action_base)
        if status == MISSING:
            await self._save_call(call_sid, call)
            # nothing to deliver (already delivered, or expired): never the answer again
            texts = output.texts + [self.prompts.get("reprompt_fallback", lang)]
            return self._listen_twiml(texts, lang, math, call, action_base)
        if result.get("stt_failed"):
            call["low_conf"] = call.get("low_conf", 0) + 1
            call["stt_failures"] = call.get("stt_failures", 0) + 1
            if call["stt_failures"] == STT_FAILURES_BEFORE_GATHER:
                logger.warning("Transcription keeps failing; this call falls back to <Gather> speech recognition.")
            await self._save_call(call_sid, call)
            texts = output.texts + [self.prompts.get("low_confidence", lang)]
            return self._listen_twiml(texts, lang, math, call, action_base)

        output = output.extend(BotOutput.from_dict(result.get("output")))
        lang = result.get("language") if result.get("language") in ("en", "rw") else None
        math = bool(result.get("math"))
        if not output.texts and not output.end_call:
            key = "welcome" if result.get("kind") == "call_start" else "reprompt_fallback"
            output.texts = [self.prompts.get(key, lang)]
        call.update(
            lang=lang, math=math, silences=0, low_conf=0, stt_failures=0, turns=call.get("turns", 0) + 1,
            last=output.texts[-1:], buttons=output.buttons,
        )
        if output.end_call:
            call["ended_by_bot"] = True
            await self._save_call(call_sid, call)
            return self._hangup_twiml(output.texts or [self.prompts.get("goodbye", lang)], lang)
        await self._save_call(call_sid, call)
        texts = list(output.texts)
        if output.buttons:
            texts.append(" ".join(
                self.prompts.one("press_for", lang, n=i + 1, title=strip_emoji(b["title"]))
                for i, b in enumerate(output.buttons)
            ))
        return self._listen_twiml(texts, lang, math, call, action_base)

    async def _silence(
        self, request: Request, sender_id: Text, call_sid: Text, call: Dict[Text, Any], action_base: Text,
        started: float, carried: Optional[List[Dict[Text, Any]]] = None,
    ) -> VoiceResponse:
        lang, math = call.get("lang"), bool(call.get("math"))
        late = self._carried_output(carried).texts
        if late:  # a late answer arrived while the learner waited: that is the reply
            call.update(silences=0, last=late[-1:])
            await self._save_call(call_sid, call)
            return self._listen_twiml(late, lang, math, call, action_base)
        call["silences"] = call.get("silences", 0) + 1
        if call["silences"] > self.max_silences:
            call["ended_by_silence"] = True
            await self._save_call(call_sid, call)
            self._log_local(sender_id, started, "silence_hangup")
            return self._hangup_twiml([self.prompts.get("goodbye_silence", lang)], lang)
        last = call.get("last")
        if not last:
            view = await read_conversation(request.app, sender_id)
            last = [view.last_bot_text] if view.last_bot_text else [self.prompts.get("reprompt_fallback", lang)]
        await self._save_call(call_sid, call)
        self._log_local(sender_id, started, "silence")
        return self._listen_twiml([self.prompts.get("reprompt_silence", lang)] + list(last), lang, math, call, action_base)

    async def _end_call(
        self, request: Request, on_new_message: Callable, call_sid: Text, sender_id: Text, call_status: Text
    ) -> None:
        if not await self.store.add(f"voice:ended:{call_sid}", {"status": call_status}, CALL_TTL):
            return  # already recorded (webhook and status callback both report it)
        call = await self.store.pop(self._call_key(call_sid)) or {}
        form = twilio_params(request)
        duration = as_int(form.get("CallDuration"), 0) or (
            int(time.time() - call["started_at"]) if call.get("started_at") else 0
        )
        reason = "bot" if call.get("ended_by_bot") else "silence" if call.get("ended_by_silence") else "caller"
        logger.info(
            "call_end channel=%s conv=%s status=%s duration_s=%d turns=%d ended_by=%s pending=%d",
            self.name(), short_ref(sender_id), call_status, duration, call.get("turns", 0), reason,
            len(call.get("pending") or []),
        )
        if self.call_end_intent:
            metadata = self._metadata(form, call_sid, call_end=True, call_status=call_status,
                                      duration_s=duration, ended_by=reason)
            message = UserMessage(f"/{self.call_end_intent}", TwilioVoiceCollector(), sender_id,
                                  input_channel=self.name(), message_id=f"{call_sid}:end", metadata=metadata)

            async def notify() -> None:
                try:
                    await on_new_message(message)
                except Exception:
                    logger.exception("Could not record the end of a call in the tracker.")

            task = asyncio.get_running_loop().create_task(notify())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _log_local(self, sender_id: Text, started: float, kind: Text) -> None:
        log_turn(self.name(), short_ref(sender_id), TurnTimer(started), kind=kind, messages=1, over_budget=False)

    # ------------------------------------------------------------------ TwiML
    def _action_base(self, request: Request) -> Text:
        """The webhook URL for ``action``/``Redirect``: public when configured, else a path."""
        path = request.path
        if path.endswith("/status"):
            path = path[: -len("/status")] + "/webhook"
        if self.auth.public_base_url or self.auth.trust_proxy:
            public = self.auth.public_url(request).split("?", 1)[0]
            return public[: len(public) - len(request.path)] + path
        return path

    @staticmethod
    def _url(base: Text, **params: Any) -> Text:
        return f"{base}?{urlencode(params)}"

    def _voice_of(self, lang: Optional[Text]) -> Dict[Text, Any]:
        key = lang if lang in ("en", "rw") else "en"
        return {"voice": self.voice[key], "language": self.say_language[key]}

    def listen_mode(self, lang: Optional[Text], call: Optional[Dict[Text, Any]] = None) -> Text:
        if lang == "en":
            return "gather"
        if call and call.get("stt_failures", 0) >= STT_FAILURES_BEFORE_GATHER:
            return "gather"  # the transcription endpoint is failing: keep the call usable
        return self.rw_mode  # Kinyarwanda, or not known yet (the recording is transcribed in either)

    def _say_all(self, target: Any, texts: List[Text], lang: Optional[Text]) -> None:
        voice = self._voice_of(lang)
        for text in texts:
            if text:
                target.say(text, **voice)

    def _listen_twiml(
        self, texts: List[Text], lang: Optional[Text], math: bool, call: Dict[Text, Any], action_base: Text
    ) -> VoiceResponse:
        twiml = VoiceResponse()
        buttons = call.get("buttons") or []
        single_key = not math and self.keypad.single_key_menu() and len(buttons) <= 9
        if self.listen_mode(lang, call) == "record":
            gather = Gather(
                input="dtmf", action=self._url(action_base, step="input"), method="POST",
                timeout=self.math_gather_timeout if math else self.record_dtmf_window,
                finish_on_key="#", num_digits=1 if single_key else None,
            )
            self._say_all(gather, texts, lang)
            twiml.append(gather)
            twiml.record(
                action=self._url(action_base, step="record"), method="POST",
                timeout=self.record_silence_timeout, max_length=self.record_max_length,
                play_beep=self.play_beep, trim="trim-silence",
                finish_on_key="#" if math else "0123456789*#",
            )
            twiml.redirect(self._url(action_base, step="silence"), method="POST")
            return twiml
        key = lang if lang in ("en", "rw") else "en"
        gather = Gather(
            input="dtmf speech", action=self._url(action_base, step="input"), method="POST",
            action_on_empty_result=True, language=self.gather_language[key],
            speech_timeout=self.speech_timeout, speech_model=self.speech_model,
            enhanced=True if self.enhanced else None, hints=self.speech_hints,
            timeout=self.math_gather_timeout if math else self.gather_timeout,
            finish_on_key="#", num_digits=1 if single_key else None, barge_in=True,
        )
        self._say_all(gather, texts, lang)
        twiml.append(gather)
        return twiml

    def _hangup_twiml(self, texts: List[Text], lang: Optional[Text]) -> VoiceResponse:
        twiml = VoiceResponse()
        self._say_all(twiml, texts, lang)
        twiml.hangup()
        return twiml

    def _holding_twiml(
        self, lang: Optional[Text], action_base: Text, turn_id: Text, holds: int, before: Optional[List[Text]] = None
    ) -> VoiceResponse:
        twiml = VoiceResponse()
        self._say_all(twiml, list(before or []) + [self.prompts.get("holding", lang)], lang)
        twiml.redirect(self._url(action_base, step="await", turn=turn_id, n=holds), method="POST")
        return twiml

    def _error_twiml(self, lang: Optional[Text], hangup: bool = False, action_base: Optional[Text] = None) -> VoiceResponse:
        if hangup or not action_base:
            return self._hangup_twiml([self.prompts.get("error_hangup", lang)], lang)
        return self._listen_twiml([self.prompts.get("error", lang)], lang, False, {}, action_base)

    async def _apology(self, request: Request) -> VoiceResponse:
        lang = None
        try:
            call_sid = (twilio_params(request).get("CallSid") or "").strip()
            if call_sid:
                lang = (await self._load_call(call_sid)).get("lang")
            return self._error_twiml(lang, action_base=self._action_base(request))
        except Exception:
            twiml = VoiceResponse()
            twiml.say(self.prompts.get("error_hangup", lang))
            twiml.hangup()
            return twiml
