"""Rasa CPU per Twilio turn against Rasa CPU per ``POST /model/parse`` (the NLU floor), in one
small, repeatable run: ``make bench-ratio`` (= ``python -m bench.ratio``), ~2 minutes.

The turn-to-parse ratio is the issue-16 target (at most 2x): CPU seconds are read from
``/proc`` for the Rasa process (with its workers), so the figure holds on a busy machine
where latencies do not -- and as a ratio it holds across machines, as absolute CPU does not.

The production stack of :mod:`bench.stack` (one Rasa worker unless ``--rasa-workers``) is
started, warmed up, then ``--rounds`` times, alternating so that drift hits both alike:

* the floor: ``--parses`` messages to ``/model/parse``, one at a time (the pool of
  :func:`bench.run.nlu_floor`, as in ``make bench``);
* turns: two new learners (one SMS, one voice: the Twilio mix of ``make bench``) doing the
  math drill back to back until they took ``--turns`` turns between them.

The median of the rounds' ratios is the result (``bench/results/ratio-<run>.json``).
``--profile`` records py-spy on Rasa during the last round's turns, only the thread holding the
GIL (Python's CPU, not its waits; ``python -m bench.profile FILE`` summarises it).
``--env K=V`` passes environment to the servers (``RASA_SPEEDUPS=...`` to compare patches).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from bench import sysinfo
from bench.learners import make_learners
from bench.load import run_phase
from bench.stack import BENCH_AUTH_TOKEN, BENCH_PUBLIC_BASE_URL, MODEL, ROOT, BenchStack, check_services
from bench.twilio import Signer

RESULTS = ROOT / "bench" / "results"


def log(message: str) -> None:
    print(f"[ratio {time.strftime('%H:%M:%S')}] {message}", flush=True)


def cpu_ms(cpu: Dict[str, Any], count: int, name: str) -> Optional[float]:
    return sysinfo.cpu_ms_per_turn(cpu, count).get(name)


def thread_jiffies(pid: int) -> Dict[str, int]:
    """CPU jiffies of ``pid``'s main thread (Sanic's event loop) and of its other threads
    (the event spool's flusher, asyncio's executor, TensorFlow's pools) -- Python 3.10 does
    not name OS threads, so only these two."""
    from pathlib import Path

    out: Dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            name = "event loop" if task.name == str(pid) else "other threads"
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[name] = out.get(name, 0) + int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            continue
    return out


def threads_ms(before: Dict[str, int], after: Dict[str, int], count: int) -> Dict[str, float]:
    per = {name: (after[name] - before.get(name, 0)) * 1000 / sysinfo.CLK_TCK / max(1, count) for name in after}
    return {name: round(ms, 1) for name, ms in sorted(per.items(), key=lambda kv: -kv[1]) if ms > 0}


async def measure_floor(stack: BenchStack, pids: Dict[str, int], messages: int) -> Dict[str, Any]:
    from bench.run import nlu_floor

    meter = sysinfo.CpuMeter(pids).start()
    latency = await nlu_floor(stack.rasa_url, messages)
    cpu = meter.stop()
    count = messages + 5  # nlu_floor sends 5 warm-up messages first
    return {"messages": count, "rasa_cpu_ms": cpu_ms(cpu, count, "rasa"), "p50_ms": latency["p50_ms"]}


async def measure_turns(stack: BenchStack, pids: Dict[str, int], turns: int, tag: str,
                        profile_to: Optional[Path] = None, channel: str = "twilio",
                        seed: Optional[str] = None) -> Dict[str, Any]:
    """``turns`` turns of two learners back to back: the Twilio mix (one SMS, one voice) or,
    ``channel="rest"``, the same drill over Rasa's REST channel (the connector-overhead baseline)."""
    from bench.run import MIXES

    signer = Signer(BENCH_AUTH_TOKEN, BENCH_PUBLIC_BASE_URL)
    learners = make_learners(MIXES[channel], 2, tag, stack.rasa_url, signer, seed=seed or tag)
    spy = None
    if profile_to is not None:
        from bench import profile

        spy = profile.record(stack.procs["rasa"].popen.pid, 600, profile_to, gil=True)
    threads0 = thread_jiffies(stack.procs["rasa"].popen.pid)
    meter = sysinfo.CpuMeter(pids).start()
    phase = await run_phase(tag, channel, learners, duration=600.0, mode="closed", ramp=0.0,
                            max_turns_per_learner=max(1, turns // 2))
    cpu = meter.stop()
    threads1 = thread_jiffies(stack.procs["rasa"].popen.pid)
    if spy is not None:
        import signal

        spy.send_signal(signal.SIGINT)  # py-spy writes its samples on ^C
        spy.wait(timeout=60)
    ok = [t for t in phase.turns if t.ok]
    errors = [t.detail or t.error for t in phase.turns if not t.ok]
    return {"turns": len(ok), "errors": len(errors), "error_samples": errors[:3],
            "rasa_cpu_ms": cpu_ms(cpu, len(ok), "rasa"),
            "actions_cpu_ms": cpu_ms(cpu, len(ok), "action_server"),
            "rasa_threads_ms": threads_ms(threads0, threads1, len(ok)),  # one Rasa process: its threads
            "p50_ms": phase.summary()["p50_ms"]}


def summarise_rounds(rounds: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The median over rounds of the turn / parse CPU ratio, and the medians of its parts."""
    ratios = [r["ratio"] for r in rounds if r.get("ratio") is not None]
    turn = [r["turn"]["rasa_cpu_ms"] for r in rounds if r["turn"].get("rasa_cpu_ms") is not None]
    parse = [r["floor"]["rasa_cpu_ms"] for r in rounds if r["floor"].get("rasa_cpu_ms") is not None]
    actions = [r["turn"]["actions_cpu_ms"] for r in rounds if r["turn"].get("actions_cpu_ms") is not None]
    med = (lambda xs: round(statistics.median(xs), 2) if xs else None)
    over_rest = [r["twilio_over_rest"] for r in rounds if r.get("twilio_over_rest") is not None]
    rest = [r["rest"]["rasa_cpu_ms"] for r in rounds if (r.get("rest") or {}).get("rasa_cpu_ms") is not None]
    return {"twilio_over_rest": med(over_rest), "rest_rasa_cpu_ms": med(rest), "ratio": med(ratios), "ratio_min": min(ratios) if ratios else None,
            "ratio_max": max(ratios) if ratios else None, "turn_rasa_cpu_ms": med(turn),
            "parse_rasa_cpu_ms": med(parse), "turn_actions_cpu_ms": med(actions),
            "errors": sum(r["turn"]["errors"] + (r.get("rest") or {}).get("errors", 0) for r in rounds)}


async def rounds_of(stack: BenchStack, pids: Dict[str, int], args: argparse.Namespace, run_id: str,
                    workdir: Path) -> List[Dict[str, Any]]:
    from bench.run import warm_up

    await warm_up(stack, Signer(BENCH_AUTH_TOKEN, BENCH_PUBLIC_BASE_URL), run_id)
    out = []
    for i in range(args.rounds):
        floor = await measure_floor(stack, pids, args.parses)
        profile_to = workdir / f"turns-rasa-{i}.folded" if args.profile and i == args.rounds - 1 else None
        turn = await measure_turns(stack, pids, args.turns, f"{run_id}r{i}", profile_to, seed=f"{run_id}r{i}")
        ratio = (round(turn["rasa_cpu_ms"] / floor["rasa_cpu_ms"], 2)
                 if turn.get("rasa_cpu_ms") and floor.get("rasa_cpu_ms") else None)
        log(f"round {i + 1}: parse {floor['rasa_cpu_ms']} ms, turn {turn['rasa_cpu_ms']} ms Rasa CPU "
            f"(+ {turn['actions_cpu_ms']} ms actions) -> {ratio}x; {turn['turns']} turns, {turn['errors']} errors; "
            f"Rasa threads {turn['rasa_threads_ms']}")
        entry = {"floor": floor, "turn": turn, "ratio": ratio}
        if args.rest:  # the same drill over REST: Twilio's Rasa CPU per turn / REST's (connector overhead)
            profile_rest = workdir / f"rest-rasa-{i}.folded" if args.profile and i == args.rounds - 1 else None
            rest = await measure_turns(stack, pids, args.turns, f"{run_id}s{i}", profile_rest, channel="rest",
                                       seed=f"{run_id}r{i}")  # the Twilio round's twins
            entry["rest"] = rest
            entry["twilio_over_rest"] = (round(turn["rasa_cpu_ms"] / rest["rasa_cpu_ms"], 2)
                                         if turn.get("rasa_cpu_ms") and rest.get("rasa_cpu_ms") else None)
            log(f"round {i + 1}: REST turn {rest['rasa_cpu_ms']} ms Rasa CPU (+ {rest['actions_cpu_ms']} ms actions)"
                f" -> Twilio / REST {entry['twilio_over_rest']}x")
        out.append(entry)
    return out


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Rasa CPU per Twilio turn / per /model/parse")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--turns", type=int, default=160, help="Twilio turns per round")
    p.add_argument("--parses", type=int, default=100, help="/model/parse messages per round")
    p.add_argument("--rasa-workers", type=int, default=1)
    p.add_argument("--model", default=str(MODEL))
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--profile", action="store_true", help="py-spy on Rasa during the last round's turns")
    p.add_argument("--rest", action="store_true", help="also the same drill over REST each round: Rasa CPU per "
                                                       "Twilio turn / per REST turn (connector overhead, in CPU)")
    p.add_argument("--label", default="")
    p.add_argument("--overlay", default="", help="a directory whose packages (infra/, ...) shadow the checkout's "
                                                 "(the servers run that code: measure before / after in one checkout)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/bakame_bench")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    problems = check_services(args.redis_url, args.database_url)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    run_id = time.strftime("%Y%m%d-%H%M%S")
    workdir = RESULTS / f"ratio-{run_id}"
    stack = BenchStack(workdir, run_id, redis_url=args.redis_url, database_url=args.database_url,
                       rasa_workers=args.rasa_workers, extra_env=dict(e.split("=", 1) for e in args.env if "=" in e),
                       model=Path(args.model).resolve(), overlay=Path(args.overlay).resolve() if args.overlay else None)
    result: Dict[str, Any] = {"run_id": run_id, "label": args.label, "model": str(args.model), "env": args.env,
                              "overlay": args.overlay,
                              "git": sysinfo.git_state(), "machine": sysinfo.machine(),
                              "loadavg_start": sysinfo.loadavg()}
    try:
        log(f"starting the stack ({args.rasa_workers} Rasa worker(s), model {args.model})")
        stack.start(log=log)
        pids = {name: p.popen.pid for name, p in stack.procs.items()}
        result["rounds"] = asyncio.run(rounds_of(stack, pids, args, run_id, workdir))
    finally:
        stack.stop()
        stack.cleanup_redis()
    result["loadavg_end"] = sysinfo.loadavg()
    result["summary"] = summarise_rounds(result["rounds"])
    out = RESULTS / f"ratio-{run_id}.json"
    out.write_text(json.dumps(result, indent=1, default=str))
    s = result["summary"]
    log(f"{args.label or 'result'}: Rasa CPU per Twilio turn {s['turn_rasa_cpu_ms']} ms, per /model/parse "
        f"{s['parse_rasa_cpu_ms']} ms: ratio {s['ratio']}x (rounds {s['ratio_min']}-{s['ratio_max']}); "
        f"action server {s['turn_actions_cpu_ms']} ms per turn; {s['errors']} errors -> {out.relative_to(ROOT)}")
    if s.get("twilio_over_rest") is not None:
        log(f"connector overhead in CPU: Rasa per Twilio turn / per REST turn {s['twilio_over_rest']}x "
            f"({s['turn_rasa_cpu_ms']} / {s['rest_rasa_cpu_ms']} ms)")
    return 0 if not s["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
