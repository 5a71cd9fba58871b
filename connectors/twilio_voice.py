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

The callback number's webhook ``.../webhooks/twilio_voice/callback`` rejects the call
(``<Reject reason="busy"/>``, free for the learner) and queues a callback that starts a call
like any other (``connectors.outreach_voice``, docs/outreach.md).

Every request must carry a valid ``X-Twilio-Signature`` (403 otherwise, before anything
else happens). Internal errors are answered with polite TwiML, never an HTTP 500.

A request is handled in four steps: load the ``CallState`` (``connectors.session_state``),
``classify`` it (``connectors.voice_input``), answer it (a turn through Rasa or a local
reply, as a ``VoiceReply``), save the state once and render the reply
(``connectors.twiml``). Settings: ``connectors.settings.VoiceSettings``.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Text

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.twiml.voice_response import VoiceResponse

from rasa.core.channels.channel import UserMessage

from connectors.base import TwilioInputBase
from connectors.outreach_desk import OutreachDesk
from connectors.outreach_voice import add_outreach, learner_number, on_call, slot_freer
from connectors.call_end import CallEndRecorder, add_status_route
from connectors.outreach_input import mask_numbers
from connectors.common import BotOutput, TwilioVoiceCollector, as_int, read_conversation, strip_emoji
from connectors.security import short_ref, twilio_params
from infra.outreach import process_outreach
from connectors.session_state import CALL_TTL, STT_FAILURES_BEFORE_GATHER, CallState, call_key
from connectors.settings import VoiceSettings
from connectors.speech import VoiceOut, audio_secret
from connectors.speech_settings import SpeechSettings
from connectors.timing import TurnTimer, log_turn
from connectors.transcription import Transcriber, TranscriptionError
from connectors.turns import MISSING, result_of
from connectors.twiml import GATHER, HANGUP, HOLD, Speech, VoiceReply, VoiceTwiml, action_base, kinyarwanda_listen_mode
from connectors.voice_input import InputKind, VoiceInput, call_metadata, classify
from core import language as languages

logger = logging.getLogger(__name__)


@dataclass
class CallRequest:
    """One webhook request of a call: what every step of answering it needs."""

    request: Request
    on_new_message: Callable
    form: Any  # Twilio's POST parameters (connectors.security.twilio_params)
    call_sid: Text
    sender_id: Text  # the hashed conversation id
    state: CallState  # loaded at the start, saved once at the end
    action_base: Text
    started: float
    carried: BotOutput = field(default_factory=BotOutput)  # answers of earlier turns nobody picked up
    timing: Optional[Dict[Text, Any]] = None  # the delivered turn's log fields (logged with tts_ms)

    def log_local(self, channel: Text, kind: Text) -> None:
        """The per-turn log line of a request answered without Rasa."""
        log_turn(channel, short_ref(self.sender_id), TurnTimer(self.started), kind=kind, messages=1,
                 over_budget=False)


class TwilioVoiceInput(TwilioInputBase):
    """Twilio Programmable Voice, speech and keypad, English and Kinyarwanda."""

    settings_class = VoiceSettings
    state_namespace = "voice"
    collector_class = TwilioVoiceCollector
    log_after_reply = True  # the turn's log line waits for its audio (tts_ms)
    settings: VoiceSettings

    @classmethod
    def name(cls) -> Text:
        return "twilio_voice"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "TwilioVoiceInput":
        settings = VoiceSettings.from_credentials(credentials)
        transcriber = Transcriber.from_env(base_url=settings.stt_base_url, model=settings.stt_model)
        return cls(settings, transcriber=transcriber, voice_out=VoiceOut.from_credentials(credentials, settings))

    def __init__(
        self, settings: VoiceSettings, *, store: Any = None, transcriber: Optional[Transcriber] = None,
        speech: Optional[Speech] = None, voice_out: Optional[VoiceOut] = None, outreach: Any = None,
    ) -> None:
        """``transcriber``: the Kinyarwanda ``<Record>`` path (none by default); ``voice_out``: speech
        sources (``connectors.speech``; ``<Say>`` only by default), ``speech`` their last resort;
        ``outreach``: callbacks (``connectors.outreach_voice``; default: the process's, if enabled)."""
        self.voice_out = voice_out or VoiceOut(SpeechSettings(), audio_secret(settings.sender_id_secret))
        self.transcriber = transcriber or Transcriber(None)
        self.rw_mode = kinyarwanda_listen_mode(settings.rw_mode, self.transcriber.enabled)
        self.twiml = VoiceTwiml(settings, speech)
        super().__init__(settings, store=store)
        self.outreach = outreach if outreach is not None else process_outreach()
        self.desk = OutreachDesk(self.outreach, self.hasher)  # reminders, guardians' numbers (on_call)
        self.call_end = CallEndRecorder(self.store, self.name(), settings.call_end_intent, slot_freer(self.outreach))

    def listen_mode(self, lang: Optional[Text], call: Optional[CallState] = None) -> Text:
        # Kinyarwanda, or not known yet: rw_mode (a recording is transcribed in either), unless transcription fails
        return GATHER if lang == "en" or (call is not None and call.transcription_failing) else self.rw_mode

    # ------------------------------------------------------------------ blueprint
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = super().blueprint(on_new_message)
        self.voice_out.add_route(bp)  # GET .../audio/<name>.wav: the <Play> audio
        add_outreach(bp, self, self.outreach)  # POST .../callback: the missed-call number; the worker

        add_status_route(bp, self, on_new_message)  # POST .../status: the end of a call

        return bp

    # ------------------------------------------------------------------ request handling
    def _sender_id(self, form: Any, call_sid: Text) -> Text:
        return self.hasher.sender_id(learner_number(form), fallback=call_sid)  # type: ignore[union-attr]

    async def _load_call(self, call_sid: Text) -> CallState:
        return CallState.from_dict(await self.store.get(call_key(call_sid)))

    async def _handle(self, request: Request, on_new_message: Callable, started: float) -> VoiceResponse:
        form = twilio_params(request)
        call_sid = (form.get("CallSid") or "").strip()
        if not call_sid or self.hasher is None:
            if not call_sid:
                logger.warning("twilio_voice request without CallSid.")
            return self._error_twiml(None)
        sender_id = self._sender_id(form, call_sid)
        state = await self._load_call(call_sid)
        heard = classify(form, request.args.get("step"), state, min_confidence=self.settings.asr_min_confidence,
                         max_low_confidence=self.settings.max_low_confidence)
        if heard.discard_recording:  # e.g. the <Record> action after the caller hung up: keep no recording
            self.transcriber.delete_recording_later(form.get("RecordingUrl"), form.get("AccountSid"),
                                                    self.settings.auth_token)
        if heard.kind is InputKind.CALL_ENDED:
            await self.call_end.record(form, call_sid, sender_id, on_new_message)
            return VoiceResponse()
        if heard.kind is InputKind.RECORDING_HANGUP:
            return VoiceResponse()
        base = action_base(request, self.auth)
        call = CallRequest(request, on_new_message, form, call_sid, sender_id, state, base, started)
        reply = await self._answer(call, heard)
        await self.store.set(call_key(call_sid), call.state.to_dict(), CALL_TTL)  # the one save per request
        return await self.voice_out.render(self.twiml, reply, base, self._remaining(started), call.timing)

    async def _answer(self, call: CallRequest, heard: VoiceInput) -> VoiceReply:
        if heard.kind is InputKind.AWAIT:
            return await self._resume(call)
        if heard.kind is InputKind.CALL_START:
            call.state = CallState.starting()
            metadata = call_metadata(call.form, call.call_sid, self.name(), call_start=True)
            return await self._turn(call, heard.kind, "/session_start", metadata)
        state = call.state
        # answers of earlier turns nobody picked up come first, and set the state they left
        records, state.pending = await self.turns.collect_ready(call.call_sid, state.pending)
        call.carried = self._take_carried(state, records)
        # state lost (e.g. another process without Redis): ask the tracker
        await self._recall_conversation(call.request, call.sender_id, state)
        reply, heard = await on_call(self, self.desk, call, heard)
        if reply is not None:
            return reply
        if heard.kind is InputKind.RECORDING:
            metadata = call_metadata(call.form, call.call_sid, self.name(), input="speech", asr="record")
            return await self._turn(call, heard.kind, None, metadata, recording_url=heard.recording_url)
        if heard.kind is InputKind.DIGITS:
            entry = self.keypad.resolve(heard.text, language=state.lang, math_active=state.math,
                                        buttons=[b.get("payload") for b in state.buttons])
            if entry is not None:  # always, for the non-empty entries classify lets through
                metadata = call_metadata(call.form, call.call_sid, self.name(), input="dtmf", keypad=entry.kind)
                return await self._turn(call, heard.kind, entry.text, metadata)
        if heard.kind is InputKind.LOW_CONFIDENCE:
            state.low_conf += 1
            call.log_local(self.name(), "low_confidence")
            return self._listen(call.carried.texts + [self.prompts.get("low_confidence", state.lang)], state)
        if heard.kind is InputKind.SPEECH:
            metadata = call_metadata(call.form, call.call_sid, self.name(), input="speech", asr="gather",
                                      asr_confidence=heard.confidence)
            return await self._turn(call, heard.kind, heard.text, metadata)
        return await self._silence(call)

    # ------------------------------------------------------------------ turns
    def _renderable(self, output: BotOutput) -> BotOutput:  # <Say> reads emoji by name: drop them
        output.texts = [t for t in (strip_emoji(x) for x in output.texts) if t]
        return output

    async def _turn(
        self, call: CallRequest, kind: InputKind, text: Optional[Text], metadata: Dict[Text, Any],
        recording_url: Optional[Text] = None,
    ) -> VoiceReply:
        """One turn through Rasa (after transcribing ``recording_url``), or a holding reply."""
        turn_id = uuid.uuid4().hex[:16]
        app, sender_id, language = call.request.app, call.sender_id, call.state.lang
        account_sid, auth_token = call.form.get("AccountSid"), self.settings.auth_token

        async def work(timer: TurnTimer) -> Dict[Text, Any]:
            message_text = text
            if recording_url:
                try:
                    message_text, timer.asr = await self.transcriber.transcribe_recording(
                        recording_url, language, account_sid, auth_token
                    )
                except TranscriptionError as exc:
                    logger.info("Kinyarwanda turn not transcribed (%s).", exc)
                    log_turn(self.name(), short_ref(sender_id), timer, kind=kind.value, outcome="stt_failed")
                    return {"stt_failed": True}
                message_text = mask_numbers(message_text)  # a number said never reaches Rasa
            result = await self._ask_rasa(app, call.on_new_message, timer, message_text, sender_id,
                                          f"{call.call_sid}:{turn_id}", metadata, kind.value)
            result["kind"] = kind.value
            return result

        record = await self._run_turn(call.call_sid, turn_id, call.started, work)
        if record is None:
            call.state.pending.append(turn_id)
            return self._holding(call.state.lang, turn_id, 1, before=call.carried.texts)
        return await self._deliver(call, record)

    async def _resume(self, call: CallRequest) -> VoiceReply:
        """The ``<Redirect>`` after a holding prompt: the finished turn, or another hold."""
        turn_id = call.request.args.get("turn") or ""
        holds = as_int(call.request.args.get("n"), 1)
        remaining = self._remaining(call.started)
        record = await self.turns.wait(call.call_sid, turn_id, remaining) if turn_id else {"status": MISSING}
        if record is None:
            if holds < self.settings.max_holds:
                return self._holding(call.state.lang, turn_id, holds + 1)
            logger.warning("A twilio_voice turn of %s is still running after %d holds.",
                           short_ref(call.sender_id), holds)
            return self._listen([self.prompts.get("error", call.state.lang)], call.state)
        call.state.pending = [t for t in call.state.pending if t != turn_id]
        return await self._deliver(call, record)

    async def _deliver(self, call: CallRequest, record: Dict[Text, Any]) -> VoiceReply:
        state, earlier = call.state, call.carried.texts
        result = result_of(record)
        if result is None:  # nothing to deliver (already delivered, expired) or the turn failed
            key = "reprompt_fallback" if record.get("status") == MISSING else "error"
            return self._listen(earlier + [self.prompts.get(key, state.lang)], state)
        if result.get("stt_failed"):
            state.low_conf += 1
            state.stt_failures += 1
            if state.stt_failures == STT_FAILURES_BEFORE_GATHER:
                logger.warning("Transcription keeps failing; this call falls back to <Gather> speech recognition.")
            return self._listen(earlier + [self.prompts.get("low_confidence", state.lang)], state)

        call.timing = result.get("timing")
        output = call.carried.extend(BotOutput.from_dict(result.get("output")))
        lang = result.get("language") if languages.is_supported(result.get("language")) else None
        if not output.texts and not output.end_call:
            key = "welcome" if result.get("kind") == InputKind.CALL_START.value else "reprompt_fallback"
            output.texts = [self.prompts.get(key, lang)]
        state.answered(lang, result.get("math"), output.texts, output.buttons)
        if output.end_call:
            state.ended_by_bot = True
            return VoiceReply(output.texts or [self.prompts.get("goodbye", lang)], lang, then=HANGUP)
        texts = list(output.texts)
        if output.buttons:
            texts.append(" ".join(
                self.prompts.one("press_for", lang, n=i + 1, title=strip_emoji(b["title"]))
                for i, b in enumerate(output.buttons)
            ))
        return self._listen(texts, state)

    async def _silence(self, call: CallRequest) -> VoiceReply:
        state = call.state
        lang, late = state.lang, call.carried.texts
        if late:  # a late answer arrived while the learner waited: that is the reply
            state.silences, state.last = 0, late[-1:]
            return self._listen(late, state)
        state.silences += 1
        if state.silences > self.settings.max_silences:
            state.ended_by_silence = True
            call.log_local(self.name(), "silence_hangup")
            return VoiceReply([self.prompts.get("goodbye_silence", lang)], lang, then=HANGUP)
        last = state.last
        if not last:
            view = await read_conversation(call.request.app, call.sender_id)
            last = [view.last_bot_text] if view.last_bot_text else [self.prompts.get("reprompt_fallback", lang)]
        call.log_local(self.name(), "silence")
        return self._listen([self.prompts.get("reprompt_silence", lang)] + list(last), state)

    # ------------------------------------------------------------------ replies
    def _listen(self, texts: List[Text], state: CallState) -> VoiceReply:
        single_key = not state.math and self.keypad.single_key_menu() and len(state.buttons) <= 9
        return VoiceReply(texts, state.lang, math=state.math, single_key=single_key,
                          mode=self.listen_mode(state.lang, state))

    def _holding(self, lang: Optional[Text], turn_id: Text, holds: int, before: Sequence[Text] = ()) -> VoiceReply:
        return VoiceReply(list(before) + [self.prompts.get("holding", lang)], lang, then=HOLD, turn_id=turn_id,
                          holds=holds)

    def _error_twiml(self, lang: Optional[Text], base: Optional[Text] = None) -> VoiceResponse:
        """An apology: listening again when the call can go on (``base``: the action URL), else goodbye."""
        if not base:
            reply = VoiceReply([self.prompts.get("error_hangup", lang)], lang, then=HANGUP)
        else:
            reply = self._listen([self.prompts.get("error", lang)], CallState(lang=lang))
        return self.twiml.render(reply, base or "")

    async def _apology(self, request: Request) -> VoiceResponse:
        lang = None
        try:
            call_sid = (twilio_params(request).get("CallSid") or "").strip()
            if call_sid:
                lang = (await self._load_call(call_sid)).lang
            return self._error_twiml(lang, action_base(request, self.auth))
        except Exception:
            return VoiceTwiml.plain_hangup(self.prompts.get("error_hangup", lang))
