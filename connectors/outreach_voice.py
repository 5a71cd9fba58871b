"""Outreach on the voice channel: the missed-call callback number and the outreach worker.

* ``POST /webhooks/twilio_voice/callback`` -- the callback number's "A call comes in"
  webhook. Signed like every Twilio request (403 otherwise). The call is always answered
  ``<Reject reason="busy"/>``: it is never connected, so the learner pays nothing; the
  callback itself (limits, queue) is ``infra.outreach.Outreach.request_callback``, and the
  callback call is a normal lesson call on ``.../twilio_voice/webhook``.
* :func:`on_call` -- reminders and reports asked on a call, through the one desk of every
  channel (``connectors.outreach_desk``): key 6 of the menu opens a spoken menu (1-3 a
  reminder tomorrow, by SMS or call; 4 a parent's number, then typed on the keypad or said);
  "remind me tomorrow" or "my mother's number is ..." said is read like an SMS. Digits or
  speech holding a phone number go on to the assistant with it masked.
* The outreach worker (``Outreach.start``) starts with the server (and at the latest with
  the first callback request) and stops with it; calls in progress end on the status
  callback (``connectors.call_end``), freeing their slot.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Awaitable, Callable, Mapping, Optional, Text, Tuple

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.twiml.voice_response import VoiceResponse

from connectors.keypad import keypad_entry
from connectors.outreach_desk import AWAIT_GUARDIAN, MENU_KEY, Learner, OutreachDesk
from connectors.outreach_input import mask_numbers
from connectors.security import short_ref, twilio_params
from connectors.twiml import VoiceReply
from connectors.voice_input import InputKind, VoiceInput
from core import texts

logger = logging.getLogger("connectors.twilio_voice")


def reject_busy() -> VoiceResponse:
    response = VoiceResponse()
    response.reject(reason="busy")
    return response


def slot_freer(outreach: Any) -> Optional[Callable[[Text], Awaitable[Any]]]:
    """What ``connectors.call_end`` tells when a call ends: the outreach frees its call slot."""
    return outreach.call_ended if outreach is not None else None


def add_outreach(bp: Blueprint, channel: Any, outreach: Any) -> None:
    add_callback_route(bp, channel, outreach)
    add_worker(bp, outreach)


def add_worker(bp: Blueprint, outreach: Any) -> None:
    """Run the outreach worker while the server runs (one process sends: ``Outreach._lead``)."""
    if outreach is None:
        return

    @bp.listener("after_server_start")
    async def start_outreach(app: Any, loop: Any) -> None:
        outreach.start()

    @bp.listener("before_server_stop")
    async def stop_outreach(app: Any, loop: Any) -> None:
        await outreach.stop()


def add_callback_route(bp: Blueprint, channel: Any, outreach: Any) -> None:
    """``POST /callback``: reject the call, queue the callback."""

    @bp.route("/callback", methods=["POST"])
    async def missed_call(request: Request) -> HTTPResponse:
        rejected = channel._reject_unsigned(request, "callback request")
        if rejected is not None:
            return rejected
        try:
            form = twilio_params(request)
            number, call_sid = form.get("From") or "", (form.get("CallSid") or "").strip()
            sender_id = channel.hasher.sender_id(number, fallback=call_sid)
            if outreach is None:
                logger.warning("A missed call on the callback number, but outreach is off (OUTREACH_ENABLED).")
            elif "_anon_" in sender_id:
                logger.info("A missed call from a withheld number: no callback.")
            else:
                outreach.start()
                outcome = await outreach.request_callback(sender_id, number)
                logger.info("missed_call conv=%s callback=%s", short_ref(sender_id), outcome)
        except Exception:
            logger.exception("Callback request failed; the call is rejected all the same.")
        return channel._xml(reject_busy())


def learner_number(form: Mapping[Text, Any]) -> Text:
    """The learner's number on a call: the caller, or the one called back."""
    direction = (form.get("Direction") or "inbound").lower()
    return (form.get("To") if direction.startswith("outbound") else form.get("From")) or ""


Answered = Tuple[Optional[VoiceReply], VoiceInput]


async def on_call(channel: Any, desk: OutreachDesk, call: Any, heard: VoiceInput) -> Answered:
    """A reply when the call's input was an outreach request (``call``: ``CallRequest``); else
    None and the input for the assistant, with any phone number in it masked."""
    if heard.kind not in (InputKind.DIGITS, InputKind.SPEECH):
        return None, heard
    state = call.state
    awaiting, state.outreach = state.outreach, None
    who = Learner(call.sender_id, learner_number(call.form), state.lang)
    entry = keypad_entry(heard.text) if heard.kind is InputKind.DIGITS else heard.text
    if awaiting == AWAIT_GUARDIAN:
        reply = await desk.typed_guardian(entry, who)
        return _said(channel, call, [reply or texts.text("outreach.guardian_not_a_number", state.lang)]), heard
    if heard.kind is InputKind.SPEECH:
        step = await desk.step(heard.text, who)
        return (_said(channel, call, [step.reply]) if step.reply else None), replace(heard, text=step.body or "")
    if awaiting == "menu":
        choice = await desk.choose(entry, who)
        if choice is not None and choice.awaiting:
            state.outreach = AWAIT_GUARDIAN
            return _said(channel, call, [channel.prompts.get("outreach_guardian_number", state.lang)], keys=True), heard
        if choice is not None:
            return _said(channel, call, [choice.reply]), heard
    elif not state.math and desk.opens_menu(entry) and int(MENU_KEY) > len(state.buttons):
        state.outreach = "menu"
        return _said(channel, call, [channel.prompts.get("outreach_menu", state.lang)]), heard
    return None, replace(heard, text=mask_numbers(heard.text))


def _said(channel: Any, call: Any, said: list, keys: bool = False) -> VoiceReply:
    """Listen after ``said``; ``keys``: a number is typed (several keys, the longer keypad timeout)."""
    state = call.state
    state.last = list(said[-1:])
    call.log_local(channel.name(), "outreach")
    if keys:
        return VoiceReply(said, state.lang, math=True, mode=channel.listen_mode(state.lang, state))
    return channel._listen(said, state)
