"""Per-turn timings without personal data.

The channel measures the whole turn; the split between NLU, policy prediction and actions
happens inside Rasa's ``MessageProcessor``, whose methods the ``timing`` fix of
:mod:`infra.rasa_patches` wraps (installed by the launcher, :mod:`infra.rasa_main`). The
wrappers add elapsed time to the ``TurnTimer`` of the current asyncio task (the
``measured_turn`` ``ContextVar``, set by the channel through :meth:`TurnTimer.activate`),
so other channels and the HTTP API are untouched and pay nothing but a ``ContextVar`` lookup.

One log line per turn (logger ``connectors.timing``)::

    turn channel=twilio_voice conv=tw_1a2b3c4d asr_ms=0 tts_ms=12 nlu_ms=41
    policy_ms=12 nlu_policy_ms=53 actions_ms=220 rasa_ms=301 total_ms=317 kind=speech
    messages=2 over_budget=false

``asr_ms``: transcribing a recorded (Kinyarwanda) turn; ``tts_ms``: making the reply's audio
(``connectors.speech``). The voice channel logs a turn once its reply is rendered, so the
line carries ``tts_ms`` and a ``total_ms`` that includes it (:func:`with_tts`).

``conv`` is a prefix of the hashed conversation id; no number, CallSid or text is logged.
"""
from __future__ import annotations

import contextvars
import logging
import time
from typing import Any, Optional, Text

from infra.rasa_patches import measured_turn as _current

logger = logging.getLogger(__name__)


class TurnTimer:
    def __init__(self, started: Optional[float] = None) -> None:
        self.started = started if started is not None else time.perf_counter()
        self.nlu = 0.0
        self.policy = 0.0
        self.actions = 0.0
        self.asr = 0.0  # speech recognition (record-and-transcribe)
        self.tts = 0.0  # speech synthesis of the reply
        self.rasa = 0.0
        self.tracker: Any = None  # the tracker Rasa saved at the end of the turn (no second read)
        self._token: Optional[contextvars.Token] = None

    def activate(self) -> "TurnTimer":
        self._token = _current.set(self)
        return self

    def deactivate(self) -> None:
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:  # reset from another context: just clear it
                _current.set(None)
            self._token = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def as_fields(self) -> dict:
        ms = lambda s: int(round(s * 1000))  # noqa: E731
        return {
            "asr_ms": ms(self.asr),
            "tts_ms": ms(self.tts),
            "nlu_ms": ms(self.nlu),
            "policy_ms": ms(self.policy),
            "nlu_policy_ms": ms(self.nlu + self.policy),
            "actions_ms": ms(self.actions),
            "rasa_ms": ms(self.rasa),
            "total_ms": ms(self.elapsed()),
        }


def current_timer() -> Optional[TurnTimer]:
    return _current.get()


def turn_fields(channel: Text, conv_ref: Text, timer: TurnTimer, **extra: Any) -> dict:
    """The fields of one turn's log line (:func:`emit` writes it)."""
    fields = {"channel": channel, "conv": conv_ref}
    fields.update(timer.as_fields())
    fields.update(extra)
    return fields


def with_tts(fields: dict, seconds: float) -> dict:
    """``fields`` of a turn whose reply then took ``seconds`` to synthesise."""
    tts_ms = int(round(seconds * 1000))
    return dict(fields, tts_ms=fields.get("tts_ms", 0) + tts_ms, total_ms=fields.get("total_ms", 0) + tts_ms)


def log_turn(channel: Text, conv_ref: Text, timer: TurnTimer, **extra: Any) -> dict:
    return emit(turn_fields(channel, conv_ref, timer, **extra))


def emit(fields: dict) -> dict:
    line = " ".join(
        f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in fields.items()
    )
    logger.info("turn %s", line)
    return fields
