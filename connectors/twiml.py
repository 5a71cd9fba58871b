"""TwiML of the channels' replies, built with twilio's ``VoiceResponse``/``MessagingResponse``.

A voice reply is described by :class:`VoiceReply` (what to say, in which language, and what
comes next: listen, hang up, or hold while a slow turn finishes); :class:`VoiceTwiml`
renders it. Each text is turned into a verb by a :data:`Speech` function of the learner's
language: ``say_in_voice`` (``<Say>`` with the configured voice) by default; a reply's own
(``connectors.speech``: ``<Play>`` of recorded or synthesised audio, ``<Say>`` as the last
resort) when given to ``render``. Listening, in ``gather`` mode, is a
``<Gather input="dtmf speech" bargeIn>`` around the texts; in ``record`` mode (Kinyarwanda
transcribed by ``connectors.transcription``) a keypad-only ``<Gather>`` around them, then
``<Record>`` and a ``<Redirect>`` for silence.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Text
from urllib.parse import urlencode

from twilio.twiml import TwiML
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, Say, VoiceResponse

from connectors.security import TwilioRequestAuthenticator
from connectors.settings import VoiceSettings

logger = logging.getLogger("connectors.twilio_voice")  # the channel's log

LISTEN, HANGUP, HOLD = "listen", "hangup", "hold"
GATHER, RECORD = "gather", "record"

Speech = Callable[[Text, Optional[Text]], TwiML]  # (text, learner language) -> a verb to nest


@dataclass(frozen=True)
class VoiceReply:
    texts: Sequence[Text]
    lang: Optional[Text] = None  # the learner's language (None: not known yet)
    then: Text = LISTEN  # LISTEN | HANGUP | HOLD
    math: bool = False  # a math problem is open: longer keypad timeout, multi-digit answers
    single_key: bool = False  # every valid entry is one key: Twilio need not wait for '#'
    mode: Text = GATHER  # how to listen: GATHER (Twilio ASR) | RECORD (<Record> + transcription)
    turn_id: Text = ""  # HOLD: the turn the <Redirect> picks up
    holds: int = 0  # HOLD: holding prompts so far, this one included


def say_in_voice(settings: VoiceSettings) -> Speech:
    """``<Say>`` in the voice (and ``language``) configured for the learner's language."""

    def say(text: Text, lang: Optional[Text]) -> TwiML:
        return Say(text, voice=settings.per_language("voice", lang),
                   language=settings.per_language("say_language", lang))

    return say


def url(base: Text, **params: Any) -> Text:
    return f"{base}?{urlencode(params)}"


def action_base(request: Any, auth: TwilioRequestAuthenticator) -> Text:
    """The webhook URL for ``action``/``<Redirect>``: public when configured, else a path."""
    path = request.path
    if path.endswith("/status"):
        path = path[: -len("/status")] + "/webhook"
    if auth.public_base_url or auth.trust_proxy:
        public = auth.public_url(request).split("?", 1)[0]
        return public[: len(public) - len(request.path)] + path
    return path


def kinyarwanda_listen_mode(rw_mode: Text, transcription_enabled: bool) -> Text:
    """How to listen to Kinyarwanda: the configured ``rw_mode``, where the transcriber allows it."""
    if rw_mode == "auto":
        return RECORD if transcription_enabled else GATHER
    if rw_mode == RECORD and not transcription_enabled:
        logger.warning(
            "VOICE_RW_MODE=record needs STT_BASE_URL (or LLM_BASE_URL); "
            "falling back to <Gather> speech recognition for Kinyarwanda."
        )
        return GATHER
    return rw_mode


class VoiceTwiml:
    def __init__(self, settings: VoiceSettings, speech: Optional[Speech] = None) -> None:
        self.settings = settings
        self.speech = speech or say_in_voice(settings)

    def render(self, reply: VoiceReply, action_base: Text, speech: Optional[Speech] = None) -> VoiceResponse:
        """``action_base``: the webhook URL that ``action``/``<Redirect>`` point back to;
        ``speech``: this reply's (``connectors.speech``: ``<Play>`` of its audio), else the default."""
        twiml = VoiceResponse()
        speak = speech or self.speech
        if reply.then == LISTEN:
            return self._listen(twiml, reply, action_base, speak)
        self._speak(twiml, reply.texts, reply.lang, speak)
        if reply.then == HOLD:
            twiml.redirect(url(action_base, step="await", turn=reply.turn_id, n=reply.holds), method="POST")
        else:
            twiml.hangup()
        return twiml

    @staticmethod
    def plain_hangup(text: Text) -> VoiceResponse:
        """The last resort when nothing else can be rendered: no voice settings involved."""
        twiml = VoiceResponse()
        twiml.say(text)
        twiml.hangup()
        return twiml

    @staticmethod
    def _speak(target: TwiML, texts: Sequence[Text], lang: Optional[Text], speech: Speech) -> None:
        for text in texts:
            if text:
                target.append(speech(text, lang))

    def _listen(self, twiml: VoiceResponse, reply: VoiceReply, action_base: Text, speech: Speech) -> VoiceResponse:
        s = self.settings
        keys = dict(finish_on_key="#", num_digits=1 if reply.single_key else None)
        if reply.mode == RECORD:
            gather = Gather(input="dtmf", action=url(action_base, step="input"), method="POST",
                            timeout=s.math_gather_timeout if reply.math else s.record_dtmf_window, **keys)
        else:
            gather = Gather(
                input="dtmf speech", action=url(action_base, step="input"), method="POST",
                action_on_empty_result=True, language=s.per_language("gather_language", reply.lang),
                speech_timeout=s.speech_timeout, speech_model=s.speech_model,
                enhanced=True if s.enhanced else None, hints=s.speech_hints,
                timeout=s.math_gather_timeout if reply.math else s.gather_timeout, barge_in=True, **keys,
            )
        self._speak(gather, reply.texts, reply.lang, speech)
        twiml.append(gather)
        if reply.mode == RECORD:
            twiml.record(
                action=url(action_base, step="record"), method="POST",
                timeout=s.record_silence_timeout, max_length=s.record_max_length,
                play_beep=s.play_beep, trim="trim-silence",
                finish_on_key="#" if reply.math else "0123456789*#",
            )
            twiml.redirect(url(action_base, step="silence"), method="POST")
        return twiml


def sms_twiml(text: Optional[Text]) -> MessagingResponse:
    """One ``<Message>`` with ``text``; an empty ``<Response/>`` when there is nothing to send."""
    twiml = MessagingResponse()
    if text:
        twiml.message(text)
    return twiml
