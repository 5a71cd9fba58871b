"""Outreach on the voice channel: the missed-call callback number and the outreach worker.

* ``POST /webhooks/twilio_voice/callback`` -- the callback number's "A call comes in"
  webhook. Signed like every Twilio request (403 otherwise). The call is always answered
  ``<Reject reason="busy"/>``: it is never connected, so the learner pays nothing; the
  callback itself (limits, queue) is ``infra.outreach.Outreach.request_callback``, and the
  callback call is a normal lesson call on ``.../twilio_voice/webhook``.
* The outreach worker (``Outreach.start``) starts with the server (and at the latest with
  the first callback request) and stops with it; calls in progress end on the status
  callback (``connectors.call_end``), freeing their slot.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Optional, Text

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.twiml.voice_response import VoiceResponse

from connectors.security import short_ref, twilio_params

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
