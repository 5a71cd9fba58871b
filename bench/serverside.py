"""What the servers measured themselves, matched to the load phases by time.

* Rasa: the Twilio channels log one line per turn (``connectors/timing.py``):
  ``turn channel=twilio_sms ... nlu_ms=41 policy_ms=12 actions_ms=220 rasa_ms=301
  total_ms=305`` -- the split of a turn into speech recognition (``asr_ms``, recorded
  Kinyarwanda turns), NLU, policy prediction, actions (Rasa's side of the calls: building the
  request, HTTP, validating and applying the answer) and speech synthesis of the voice reply
  (``tts_ms``).
* the action server: one line per call from :mod:`bench.action_server`.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from bench.stats import percentile

_TURN = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}).*?\bturn (?P<fields>channel=\S+ .*)$")
FIELDS = ("asr_ms", "tts_ms", "nlu_ms", "policy_ms", "actions_ms", "rasa_ms", "total_ms")


def parse_turn_lines(lines: Iterable[str]) -> List[Dict[str, object]]:
    """The per-turn timing lines of a Rasa log (``--log-file``), with a POSIX timestamp."""
    out = []
    for line in lines:
        m = _TURN.match(line.strip())
        if not m:
            continue
        try:
            ts = datetime.strptime(m.group("ts"), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            continue
        row: Dict[str, object] = {"t": ts}
        for part in m.group("fields").split():
            key, _, value = part.partition("=")
            row[key] = int(value) if value.lstrip("-").isdigit() else value
        out.append(row)
    return out


def split_for_window(rows: Sequence[Dict[str, object]], start: float, end: float) -> Optional[Dict[str, object]]:
    """Mean and p50 of each part of a turn for the lines logged in ``[start, end]``."""
    chosen = [r for r in rows if start <= float(r["t"]) <= end and r.get("kind") not in
              ("silence", "low_confidence", "too_long", "media", "empty")]
    if not chosen:
        return None
    out: Dict[str, object] = {"turns": len(chosen)}
    for key in FIELDS:
        values = [float(r[key]) for r in chosen if isinstance(r.get(key), int)]
        if values:
            out[key.replace("_ms", "")] = {"mean_ms": round(sum(values) / len(values), 1),
                                           "p50_ms": round(percentile(values, 50), 1)}
    return out


def read_action_timings(directory: Path) -> List[Tuple]:
    """(time, action, ms, decode_ms, request_bytes, response_bytes, status, sender), by time."""
    rows = []
    for path in sorted(directory.glob("actions-*.jsonl")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                t, action, ms, parse_ms, req, resp, status, sender = (json.loads(line) + [None])[:8]
            except (ValueError, TypeError):
                continue
            rows.append((float(t), str(action), float(ms), float(parse_ms), int(req), int(resp), int(status),
                         sender))
    rows.sort(key=lambda r: r[0])
    return rows


PER_TURN_ACTIONS = ("action_detect_language", "validate_tutor_form")


def request_kb_by_turn(rows: Sequence[Tuple], start: float, end: float, checkpoints: Sequence[int],
                       per_turn_actions: Sequence[str] = PER_TURN_ACTIONS) -> Dict[int, Optional[float]]:
    """Size of the request Rasa sends to the action server at turn N of a conversation:
    the N-th call of the first of ``per_turn_actions`` called in the window, per conversation
    -- the language slot mapping ran once every turn until Rasa decided it itself (issue 16);
    since then the drill's answer validation (once per answer: turn N+1 less hint turns);
    median over conversations, in KB."""
    in_window = [row for row in rows if start <= row[0] <= end and row[7]]
    called = {row[1] for row in in_window}
    action = next((a for a in per_turn_actions if a in called), None)
    calls: Dict[str, List[int]] = {}
    for row in in_window:
        if row[1] == action:
            calls.setdefault(row[7], []).append(row[4])
    out: Dict[int, Optional[float]] = {}
    for n in checkpoints:
        sizes = [sizes[n - 1] for sizes in calls.values() if len(sizes) >= n]
        out[n] = round(percentile(sizes, 50) / 1024, 1) if sizes else None
    return out


def actions_for_window(rows: Sequence[Tuple], start: float, end: float) -> Dict[str, Dict[str, object]]:
    """Per action: calls, p50/p95 of the server's own time, JSON decode time, request size."""
    by: Dict[str, List[Tuple]] = {}
    for row in rows:
        if start <= row[0] <= end:
            by.setdefault(row[1], []).append(row)
    out = {}
    for action, calls in sorted(by.items(), key=lambda kv: -len(kv[1])):
        ms = [c[2] for c in calls]
        out[action] = {
            "calls": len(calls),
            "p50_ms": round(percentile(ms, 50), 2),
            "p95_ms": round(percentile(ms, 95), 2),
            "decode_p50_ms": round(percentile([c[3] for c in calls], 50), 2),
            "request_kb_mean": round(sum(c[4] for c in calls) / len(calls) / 1024, 1),
            "request_kb_max": round(max(c[4] for c in calls) / 1024, 1),
            "errors": sum(1 for c in calls if c[6] >= 400),
        }
    return out
