"""The end of a call: logged once, its state cleared, and optionally told to the bot.

Twilio reports a final ``CallStatus`` (completed, busy, failed, no-answer, canceled) on the
status callback and, often, on a webhook request too; the first report wins (an atomic
``add`` in the state store). When ``call_end_intent`` is set, ``/<intent>`` goes to Rasa
with ``{"call_end": true, "call_status", "duration_s", "ended_by"}`` in the background, so
the tracker records how the call ended without delaying Twilio's request.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Optional, Text

from rasa.core.channels.channel import UserMessage
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.twiml.voice_response import VoiceResponse

from connectors.common import TwilioVoiceCollector, as_int
from connectors.security import short_ref, twilio_params
from connectors.session_state import CALL_TTL, CallState, call_key
from connectors.state import StateStore
from connectors.voice_input import call_ended, call_metadata

logger = logging.getLogger("connectors.twilio_voice")  # the channel's log, as before


class CallEndRecorder:
    def __init__(self, store: StateStore, channel: Text, call_end_intent: Optional[Text],
                 on_end: Optional[Callable[[Text], Awaitable[Any]]] = None) -> None:
        """``on_end(call_sid)``: told once per ended call (the outreach frees its call slot)."""
        self.store = store
        self.on_end = on_end
        self.channel = channel
        self.call_end_intent = call_end_intent
        self._background: set = set()

    async def record(self, form: Any, call_sid: Text, sender_id: Text, on_new_message: Callable) -> None:
        call_status = (form.get("CallStatus") or "").strip().lower()
        if not await self.store.add(f"voice:ended:{call_sid}", {"status": call_status}, CALL_TTL):
            return  # already recorded (webhook and status callback both report it)
        if self.on_end is not None:
            try:
                await self.on_end(call_sid)
            except Exception:
                logger.exception("Could not free the outbound call slot of an ended call.")
        state = CallState.from_dict(await self.store.pop(call_key(call_sid)))
        duration = as_int(form.get("CallDuration"), 0) or (
            int(time.time() - state.started_at) if state.started_at else 0
        )
        logger.info(
            "call_end channel=%s conv=%s status=%s duration_s=%d turns=%d ended_by=%s pending=%d",
            self.channel, short_ref(sender_id), call_status, duration, state.turns, state.ended_by,
            len(state.pending),
        )
        if self.call_end_intent:
            metadata = call_metadata(form, call_sid, self.channel, call_end=True, call_status=call_status,
                                     duration_s=duration, ended_by=state.ended_by)
            message = UserMessage(f"/{self.call_end_intent}", TwilioVoiceCollector(), sender_id,
                                  input_channel=self.channel, message_id=f"{call_sid}:end", metadata=metadata)
            self._in_background(on_new_message(message))

    def _in_background(self, work: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                logger.exception("Could not record the end of a call in the tracker.")

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def add_status_route(bp: Blueprint, channel: Any, on_new_message: Callable) -> None:
    """``POST /status``: Twilio's "Call status changes" callback (signed); an ended call is recorded."""

    @bp.route("/status", methods=["POST"])
    async def status(request: Request) -> HTTPResponse:
        rejected = channel._reject_unsigned(request, "status callback")
        if rejected is not None:
            return rejected
        try:
            form = twilio_params(request)
            call_sid = (form.get("CallSid") or "").strip()
            if call_sid and call_ended(form) and channel.hasher:
                await channel.call_end.record(form, call_sid, channel._sender_id(form, call_sid), on_new_message)
        except Exception:
            logger.exception("twilio_voice status callback failed.")
        return channel._xml(VoiceResponse())
