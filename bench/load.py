"""Load phases (asyncio + aiohttp, traffic to 127.0.0.1 only, bounded in time and count).

* closed loop: every learner sends its next turn as soon as the previous answer arrived
  (the most the stack can serve at that concurrency);
* paced: every learner sends a turn every ``period`` seconds (start to start; at once if
  the previous answer took longer), first turns spread over one period -- "a class after
  school, each learner answering every 2 s";
* long session: a few learners each take ``turns`` turns back to back; latency and
  throughput are read around given turn numbers.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from bench.learners import Learner, TurnResult
from bench.stats import summarise, throughput, window_stats


@dataclass
class PhaseResult:
    name: str
    channel: str
    concurrency: int
    mode: str                      # closed | paced | long
    period_s: Optional[float]
    started_wall: float            # time.time() at the start (to match server-side logs)
    ended_wall: float
    started: float                 # time.monotonic()
    measure_from: float
    deadline: float
    turns: List[TurnResult] = field(default_factory=list)

    def measured(self) -> List[TurnResult]:
        """Turns started inside the measurement window (after the ramp-up)."""
        return [t for t in self.turns if self.measure_from <= t.started <= self.deadline]

    def errors(self) -> List[TurnResult]:
        return [t for t in self.turns if not t.ok]

    def summary(self) -> Dict[str, object]:
        measured = self.measured()
        ok = [t for t in measured if t.ok]
        out: Dict[str, object] = {
            "name": self.name, "channel": self.channel, "concurrency": self.concurrency, "mode": self.mode,
            "period_s": self.period_s, "duration_s": round(self.deadline - self.measure_from, 1),
            "turns_total": len(self.turns), "errors": len(self.errors()),
            "error_kinds": _count(t.error for t in self.errors()),
            "error_samples": [t.detail for t in self.errors() if t.detail][:5],
            "calls_ended_by_bot": sum(1 for t in self.turns if t.ended),
            "ended_samples": [t.detail for t in self.turns if t.ended][:3],
            "turns_per_s": throughput([t.finished for t in self.turns if t.ok], self.measure_from, self.deadline),
        }
        out.update(summarise([t.latency for t in ok]))
        by_kind: Dict[str, object] = {}
        for kind in sorted({t.kind for t in measured}):
            mine = [t.latency for t in ok if t.kind == kind]
            by_kind[kind] = summarise(mine)
        if len(by_kind) > 1:
            out["by_kind"] = by_kind
        llm = [t.latency for t in ok if t.llm]
        if llm:
            out["llm_turns"] = summarise(llm)
            out["non_llm_turns"] = summarise([t.latency for t in ok if not t.llm])
        return out


def _count(values) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out


def _session(concurrency: int):
    import aiohttp

    connector = aiohttp.TCPConnector(limit=max(10, concurrency + 10), force_close=False, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector)


async def run_phase(
    name: str,
    channel: str,
    learners: Sequence[Learner],
    duration: float,
    mode: str = "closed",
    period: Optional[float] = None,
    ramp: Optional[float] = None,
    max_turns_per_learner: int = 10_000,
) -> PhaseResult:
    """Drive ``learners`` for ``duration`` seconds after a ramp-up (``ramp``, default 3 s
    closed loop, one period paced); in-flight turns finish after the deadline."""
    if mode not in ("closed", "paced"):
        raise ValueError(mode)
    if mode == "paced" and not period:
        raise ValueError("paced mode needs a period")
    ramp = ramp if ramp is not None else (period if mode == "paced" else 3.0)
    concurrency = len(learners)
    t0, wall0 = time.monotonic(), time.time()
    result = PhaseResult(name, channel, concurrency, mode, period, wall0, wall0, t0, t0 + ramp, t0 + ramp + duration)

    async with _session(concurrency) as session:
        async def drive(i: int, learner: Learner) -> None:
            if mode == "paced":  # spread the first turns over one period
                await asyncio.sleep(period * i / max(1, concurrency))
            next_at = time.monotonic()
            for _ in range(max_turns_per_learner):
                if time.monotonic() >= result.deadline:
                    return
                turn = await learner.turn(session)
                result.turns.append(turn)
                if mode == "paced":
                    next_at += period
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    else:
                        next_at = time.monotonic()

        await asyncio.gather(*(drive(i, l) for i, l in enumerate(learners)))
    result.ended_wall = time.time()
    return result


async def run_long_session(
    name: str,
    channel: str,
    learners: Sequence[Learner],
    turns: int,
    checkpoints: Sequence[int] = (10, 100, 300),
    half_width: int = 5,
    time_limit: float = 600.0,
) -> Dict[str, object]:
    """Every learner takes ``turns`` turns back to back (stops at ``time_limit``)."""
    t0, wall0 = time.monotonic(), time.time()
    results: List[TurnResult] = []
    deadline = t0 + time_limit

    async with _session(len(learners)) as session:
        async def drive(learner: Learner) -> None:
            for _ in range(turns):
                if time.monotonic() >= deadline:
                    return
                results.append(await learner.turn(session))

        await asyncio.gather(*(drive(l) for l in learners))
    rows = [(t.index, t.started, t.finished) for t in results if t.ok]
    out: Dict[str, object] = {
        "name": name, "channel": channel, "learners": len(learners), "turns_each": turns,
        "turns_total": len(results), "errors": sum(1 for t in results if not t.ok),
        "error_kinds": _count(t.error for t in results if not t.ok),
        "started_wall": wall0, "ended_wall": time.time(), "elapsed_s": round(time.monotonic() - t0, 1),
        "completed": all(l.turns >= turns for l in learners),
        "reached_turn": min(l.turns for l in learners) if learners else 0,
        "checkpoints": [window_stats(rows, c, half_width) for c in checkpoints if c <= turns],
    }
    # stopped at the time limit before the last checkpoint: add where every learner got to
    reached = int(out["reached_turn"])
    if reached < turns and reached > half_width and all(c["turn"] != reached - half_width for c in out["checkpoints"]):
        out["checkpoints"] = [c for c in out["checkpoints"] if c["turn"] + half_width <= reached]
        out["checkpoints"].append(dict(window_stats(rows, reached - half_width, half_width), reached_only=True))
    # the whole curve, in buckets of 20 turns (for the doc's growth figures)
    curve = []
    for start in range(1, turns + 1, 20):
        chosen = [end - begin for index, begin, end in rows if start <= index < start + 20]
        if chosen:
            s = summarise(chosen)
            curve.append({"turns": f"{start}-{start + 19}", "p50_ms": s["p50_ms"], "p95_ms": s["p95_ms"]})
    out["curve"] = curve
    first, last = out["checkpoints"][0] if out["checkpoints"] else None, out["checkpoints"][-1] if out["checkpoints"] else None
    if first and last and first.get("p50_ms") and last.get("p50_ms"):
        out["growth_p50"] = round(last["p50_ms"] / first["p50_ms"], 2)
    return out
