"""What a request of a call brings: one pure function of Twilio's form and the call state.

``classify`` looks at the POST parameters Twilio sent (``CallStatus``, ``Digits``,
``SpeechResult``, ``Confidence``, ``RecordingUrl``, ``RecordingDuration``), the ``step``
the channel put in the action URL and the call state, and says what to do; the voice
channel (``connectors.twilio_voice``) then does it. No I/O, so it is tested directly.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Text

from connectors.common import as_float
from connectors.keypad import keypad_entry
from connectors.session_state import CallState

FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
KEYPAD_RECORDING_MAX_S = 2.0  # a key that ends a recording this soon is keypad input
SPOKEN_RECORDING_MIN_S = 0.5  # shorter recordings hold no answer


class InputKind(str, enum.Enum):
    """The values are the ``kind`` of the per-turn log line."""

    CALL_ENDED = "call_end"  # a final CallStatus (hangup, busy, ...): record the end
    AWAIT = "await"  # the <Redirect> that picks up a slow turn
    CALL_START = "call_start"  # the number's own webhook
    RECORDING_HANGUP = "record_hangup"  # the caller hung up during <Record>: not a turn
    RECORDING = "record"  # speech recorded for transcription
    DIGITS = "dtmf"  # a keypad entry (``connectors.keypad`` maps it)
    SPEECH = "speech"  # recognised by <Gather>
    LOW_CONFIDENCE = "low_confidence"  # recognised, but too unsure to act on: ask again
    SILENCE = "silence"  # nothing (the <Gather> timed out)


@dataclass(frozen=True)
class VoiceInput:
    kind: InputKind
    text: Text = ""  # the digits or the recognised speech
    confidence: Optional[float] = None  # of the speech, when Twilio gave one
    recording_url: Text = ""  # of a RECORDING
    discard_recording: bool = False  # a recording came but is not used: delete it


def confidence_of(value: Any) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def is_low_confidence(value: Any, minimum: float) -> bool:
    confidence = confidence_of(value)
    if confidence is None or confidence <= 0.0:
        # Twilio omits the score (or sends 0) for some speech models: not evidence
        return False
    return confidence < minimum


def call_metadata(form: Mapping[Text, Any], call_sid: Text, channel: Text, **extra: Any) -> Dict[Text, Any]:
    """The metadata of a message to Rasa: what the call is, never the number."""
    direction = (form.get("Direction") or "inbound").lower()
    country = form.get("ToCountry") if direction.startswith("outbound") else form.get("FromCountry")
    metadata = {"channel": channel, "call_sid": call_sid, "direction": direction}
    if country:
        metadata["caller_country"] = country
    metadata.update({k: v for k, v in extra.items() if v is not None})
    return metadata


def call_ended(form: Mapping[Text, Any]) -> bool:
    """The call is over (Twilio reports the final ``CallStatus`` on any request)."""
    return (form.get("CallStatus") or "").strip().lower() in FINAL_STATUSES


def classify(
    form: Mapping[Text, Any], step: Optional[Text], call: CallState, *,
    min_confidence: float, max_low_confidence: int,
) -> VoiceInput:
    """What this request of the call is; ``min_confidence``/``max_low_confidence``: settings."""
    field = lambda name: (form.get(name) or "").strip()  # noqa: E731
    if call_ended(form):
        return VoiceInput(InputKind.CALL_ENDED, discard_recording=bool(field("RecordingUrl")))
    if step == "await":
        return VoiceInput(InputKind.AWAIT)
    if not step:
        return VoiceInput(InputKind.CALL_START)
    digits, discard = field("Digits"), False
    if step == "record":
        recording_url, duration = field("RecordingUrl"), as_float(form.get("RecordingDuration"), 0.0)
        if digits == "hangup":
            return VoiceInput(InputKind.RECORDING_HANGUP, discard_recording=bool(recording_url))
        keyed = digits and digits != "#" and duration < KEYPAD_RECORDING_MAX_S
        if not keyed and recording_url and duration >= SPOKEN_RECORDING_MIN_S:
            return VoiceInput(InputKind.RECORDING, recording_url=recording_url)
        discard = bool(recording_url)
        digits = digits if keyed else ""
    if keypad_entry(digits):
        return VoiceInput(InputKind.DIGITS, text=digits, discard_recording=discard)
    speech, confidence = field("SpeechResult"), form.get("Confidence")
    if speech:
        if is_low_confidence(confidence, min_confidence) and call.low_conf < max_low_confidence:
            return VoiceInput(InputKind.LOW_CONFIDENCE, text=speech, discard_recording=discard)
        return VoiceInput(InputKind.SPEECH, text=speech, confidence=confidence_of(confidence),
                          discard_recording=discard)
    return VoiceInput(InputKind.SILENCE, discard_recording=discard)
