"""Simulated learners: what they say, and one turn through a channel.

* ``sms``   signed Twilio SMS webhook (``Body=...``), TwiML ``<Message>`` back;
* ``voice`` a signed Twilio call: the call-start webhook, then ``<Gather>`` results
  (``SpeechResult=..., Confidence=0.9``) posted to the ``action`` URL of the previous
  answer, exactly as Twilio follows the TwiML;
* ``rest``  Rasa's REST channel (``POST /webhooks/rest/webhook``), the same messages: a REST
  learner ``speaks_as`` an SMS or a voice learner (the connector-overhead baseline must hold
  the same conversations -- voice learners say numbers in words, which the numeric fast path
  does not take, and start calls with ``/session_start``); with the same ``seed`` and index
  it sends exactly the messages of its Twilio twin.

Scenarios: ``math`` (start math, then answers -- numbers in digits or words, some wrong,
sometimes "I don't know" or "repeat"), ``debate`` (every third turn makes the tutor call
the LLM: the reply then carries the fake LLM's marker).

A turn is an error when the HTTP status is not 200, the request fails or times out, the
answer is empty or not TwiML, or it is one of the apologies / holding prompts the
channels and the actions send when something failed or took too long.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from bench import twilio
from bench.stack import BENCH_REST_TOKEN, LLM_MARK
from core import language as languages, texts

EN_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
            "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]

START = {"math": {"en": "I want to do math", "rw": "ndashaka imibare"},
         "debate": {"en": "I want to debate", "rw": "ndashaka impaka"}}
DEBATE_CYCLE = {
    "en": ["I agree because it helps children learn more, for example at our school we read every day",
           "but they are important because they keep us safe and healthy",
           "yes"],
    "rw": ["ndabyemera kuko bifasha abana kwiga, urugero ku ishuri ryacu dusoma buri munsi",
           "ariko ni ingenzi kuko bituma tugira ubuzima bwiza",
           "yego"],
}


def vocabulary() -> List[str]:
    """Every text a simulated learner can send (``Learner.next_message``): the warm-up sends
    each once, so Rasa's NLU cache (``nlucache``) holds them all before anything is measured
    and the order of the phases does not decide which channel pays for DIET."""
    said: List[str] = []
    for language in languages.SUPPORTED:
        said += [START[scenario][language] for scenario in START] + DEBATE_CYCLE[language]
        said += ["I don't know", "repeat"] if language == "en" else ["sinzi", "subiramo"]
        prefix = "it is" if language == "en" else "ni"
        said += [f"{prefix} {n}" for n in range(1, 21)]
    return list(dict.fromkeys(said + [str(n) for n in range(1, 21)] + EN_WORDS))


def failure_texts() -> List[str]:
    """Texts that mean "this turn failed" (channel apologies, holding prompts, the
    actions' "try again later"); a reply containing one is an error."""
    keys = ("channel.error", "channel.error_hangup", "channel.holding", "channel.sms_holding",
            "channel.sms_in_progress", "try_again_later")
    return [texts.text(key, lang) for key in keys for lang in languages.SUPPORTED]


FAILURES = failure_texts()


def failure_in(texts: List[str]) -> Optional[str]:
    joined = "\n".join(texts)
    for marker in FAILURES:
        if marker in joined:
            return "apology:" + marker[:40]
    return None


@dataclass
class TurnResult:
    learner: str
    kind: str          # sms | voice | rest
    index: int         # turn number in this learner's conversation (1-based)
    started: float     # time.monotonic()
    finished: float
    ok: bool
    error: Optional[str] = None
    llm: bool = False  # the reply carries the fake LLM's text
    step: str = "turn"  # call_start | turn
    ended: bool = False  # the bot ended the call (<Hangup/>): the learner calls again
    detail: Optional[str] = None  # on errors and hang-ups: what was said and answered

    @property
    def latency(self) -> float:
        return self.finished - self.started


class Learner:
    """One simulated learner; :meth:`turn` sends their next message and times it."""

    def __init__(self, kind: str, run: str, index: int, rasa_url: str, signer: twilio.Signer,
                 language: str = "en", scenario: str = "math", timeout: float = 30.0,
                 speaks_as: Optional[str] = None, seed: Optional[str] = None) -> None:
        if kind not in ("sms", "voice", "rest"):
            raise ValueError(kind)
        speaks_as = speaks_as or (kind if kind != "rest" else "sms")
        if speaks_as not in ("sms", "voice") or (kind != "rest" and speaks_as != kind):
            raise ValueError(f"{kind} learner cannot speak as {speaks_as}")
        self.kind, self.run, self.index = kind, run, index
        self.speaks_as = speaks_as  # whose messages it sends: an SMS or a voice learner's
        self.rasa_url = rasa_url.rstrip("/")
        self.signer = signer
        self.language, self.scenario = language, scenario
        self.timeout = timeout
        self.rng = twilio.jitter_rng(f"{seed if seed is not None else run}:{speaks_as}:{index}")
        self.number = twilio.learner_number(f"{run}:{kind}", index)
        self.sender = f"bench-{run}-{kind}-{index}"
        self.call_sid = twilio.sid("CA", run, kind, index)
        self.turns = 0
        self.turns_in_call = 0  # voice: turns of the current call (a hang-up starts a new call)
        self.next_path: Optional[str] = None  # voice: where Twilio posts the next <Gather> result
        self.name = f"{kind}-{index}"

    # ------------------------------------------------------------------ messages
    def next_message(self) -> Optional[str]:
        """The text of the next turn (``None`` = a voice call's start)."""
        n = self.turns  # turns already sent
        if self.speaks_as == "voice":  # a call starts with the call-start webhook, then "start math"
            if self.turns_in_call == 0:
                return None
            n = self.turns_in_call - 1
        if n == 0:
            return START[self.scenario][self.language]
        if self.scenario == "debate":
            return DEBATE_CYCLE[self.language][(n - 1) % 3]
        roll = self.rng.random()
        if roll < 0.08:
            return "I don't know" if self.language == "en" else "sinzi"
        if roll < 0.12:
            return "repeat" if self.language == "en" else "subiramo"
        value = self.rng.randint(1, 20)
        if self.speaks_as == "voice" and self.language == "en" and self.rng.random() < 0.7:
            return EN_WORDS[value - 1]
        if self.rng.random() < 0.3:
            return (f"it is {value}" if self.language == "en" else f"ni {value}")
        return str(value)

    # ------------------------------------------------------------------ one turn
    async def turn(self, session: Any) -> TurnResult:
        text = self.next_message()
        self.turns += 1
        self.turns_in_call += 1
        step = "call_start" if (self.speaks_as == "voice" and text is None) else "turn"
        started = time.monotonic()
        error: Optional[str] = None
        texts: List[str] = []
        try:
            if self.kind == "rest":
                texts, error = await self._rest(session, text)
            elif self.kind == "sms":
                texts, error = await self._sms(session, text or "")
            else:
                texts, error = await self._voice(session, text)
        except asyncio.TimeoutError:
            error = "timeout"
        except Exception as exc:  # noqa: BLE001 - connection refused/reset, ...
            error = f"{type(exc).__name__}"
        finished = time.monotonic()
        if error is None:
            error = failure_in(texts)
        ended = error == "hangup"
        if ended:  # not a failure: the bot said goodbye; a real learner would call again
            error = None
            self.call_sid = twilio.sid("CA", self.run, self.kind, self.index, self.turns)
            self.next_path = None
            self.turns_in_call = 0
        detail = f"said {text!r}, got {' | '.join(texts)[:200]!r}" if (error or ended) else None
        return TurnResult(self.name, self.kind, self.turns, started, finished, error is None, error,
                          llm=any(LLM_MARK in t for t in texts), step=step, ended=ended, detail=detail)

    async def _post(self, session: Any, path: str, **kwargs: Any):
        import aiohttp

        async with session.post(self.rasa_url + path, timeout=aiohttp.ClientTimeout(total=self.timeout),
                                **kwargs) as response:
            return response.status, await response.text()

    async def _rest(self, session: Any, text: Optional[str]):
        payload: Dict[str, Any] = {"sender": self.sender, "message": text}
        if text is None:  # a voice twin's call start: what the voice channel sends Rasa
            payload = {"sender": self.sender, "message": "/session_start", "metadata": {"call_start": True}}
        status, body = await self._post(session, twilio.REST_PATH, json=payload,
                                        headers={"Authorization": f"Bearer {BENCH_REST_TOKEN}"})
        if status != 200:
            return [], f"http_{status}"
        import json

        messages = json.loads(body)
        texts = [m.get("text") or "" for m in messages if isinstance(m, dict)]
        texts = [t for t in texts if t] or [str(m.get("custom")) for m in messages if isinstance(m, dict)
                                            and m.get("custom")]
        if self.speaks_as == "voice" and any(isinstance(m, dict) and (m.get("custom") or {}).get("end_call")
                                             for m in messages):
            return texts, "hangup"  # where the voice channel hangs up, the twin "calls again" too
        return texts, (None if texts else "empty")

    async def _twiml(self, session: Any, path: str, params: Any):
        """A signed webhook request; its TwiML, or the error it counts as."""
        path, body, headers = self.signer.request(path, params)
        status, reply = await self._post(session, path, data=body, headers=headers)
        if status != 200:
            return None, f"http_{status}"
        twiml = twilio.parse_twiml(reply)
        return (twiml, None) if twiml.valid else (None, "bad_twiml")

    async def _sms(self, session: Any, text: str):
        message_sid = twilio.sid("SM", self.run, self.kind, self.index, self.turns)
        twiml, error = await self._twiml(session, twilio.SMS_PATH, twilio.sms_params(self.number, text, message_sid))
        if error:
            return [], error
        return twiml.messages, (None if twiml.messages else "empty")

    async def _voice(self, session: Any, text: Optional[str]):
        if text is None:  # the call starts: the number's own webhook
            params = twilio.voice_params(self.number, self.call_sid)
            path = twilio.VOICE_PATH
        else:
            params = twilio.voice_params(self.number, self.call_sid, speech=text, confidence=0.9)
            path = self.next_path or (twilio.VOICE_PATH + "?step=input")
        twiml, error = await self._twiml(session, path, params)
        if error:
            return [], error
        if twiml.gather_action:
            self.next_path = self.signer.local_path(twiml.gather_action)
        if twiml.redirect:
            return twiml.says, "redirect_holding"
        if twiml.hangup:
            return twiml.says, "hangup"
        return twiml.says, (None if twiml.says else "empty")


def make_learners(kind_mix: Dict[str, float], count: int, run: str, rasa_url: str, signer: twilio.Signer,
                  scenario: str = "math", rw_share: float = 0.25, timeout: float = 30.0,
                  seed: Optional[str] = None) -> List[Learner]:
    """``count`` learners split by ``kind_mix`` (e.g. {"sms": .5, "voice": .5}, or
    {"rest:sms": .5, "rest:voice": .5}: REST learners speaking as SMS / voice learners); a
    quarter of them speak Kinyarwanda. Two calls with the same ``seed`` and the same shares
    make twins: learner i sends the same messages whatever the transport."""
    kinds: List[str] = []
    total = sum(kind_mix.values())
    for kind, share in kind_mix.items():
        kinds += [kind] * int(round(count * share / total))
    while len(kinds) < count:
        kinds.append(next(iter(kind_mix)))
    kinds = kinds[:count]
    learners = []
    for i, spec in enumerate(kinds):
        kind, _, speaks_as = spec.partition(":")
        speaks_as = speaks_as or None
        language = "rw" if (i % 4 == 3 and rw_share > 0) else "en"
        if (speaks_as or kind) == "voice" and language == "rw":
            language = "en"  # Kinyarwanda calls use <Record> + transcription in production; not benchmarked
        learners.append(Learner(kind, run, i, rasa_url, signer, language=language, scenario=scenario,
                                timeout=timeout, speaks_as=speaks_as, seed=seed))
    return learners
