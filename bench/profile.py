"""Where the time goes: py-spy samples of a running process, summarised (optional).

``python -m bench.profile FILE.folded [--top 25]`` prints the functions with the most
samples (inclusive: on the stack; self: at the top of the stack), from py-spy's ``raw``
(collapsed stacks) output. :func:`record` runs py-spy on a pid during a load phase.

py-spy is not a dependency of the project: ``.venv/bin/pip install py-spy==0.3.14``.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def pyspy_binary() -> Optional[str]:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path, rate: int = 100, subprocesses: bool = True,
           gil: bool = False) -> subprocess.Popen:
    """Start py-spy on ``pid`` for ``seconds`` (raw collapsed stacks into ``out``); ``gil``:
    only the thread holding the GIL (Python's own CPU, no waits; C code that releases the
    GIL -- TensorFlow, sockets -- is missed)."""
    binary = pyspy_binary()
    if binary is None:
        raise FileNotFoundError("py-spy is not installed (.venv/bin/pip install py-spy==0.3.14)")
    argv = [binary, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate),
            "--format", "raw", "--nonblocking", "-o", str(out)]
    if subprocesses:
        argv.append("--subprocesses")
    if gil:
        argv.append("--gil")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def short_frame(frame: str) -> str:
    """``run (rasa/core/processor.py:123)`` -> ``rasa/core/processor.py:run``."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "/work/main/", "lib/python3.10/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{m.group('func')}"


def parse_folded(text: str) -> List[Tuple[List[str], int]]:
    stacks = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        try:
            n = int(count)
        except ValueError:
            continue
        frames = [short_frame(f) for f in stack.split(";") if f]
        # py-spy puts "process 123:..." / "thread (0x..)" first: drop them
        frames = [f for f in frames if not f.startswith(("process ", "thread ("))]
        stacks.append((frames, n))
    return stacks


def summarise_folded(text: str, top: int = 25) -> Dict[str, object]:
    stacks = parse_folded(text)
    total = sum(n for _, n in stacks) or 1
    inclusive: Dict[str, int] = {}
    own: Dict[str, int] = {}
    for frames, n in stacks:
        for f in set(frames):
            inclusive[f] = inclusive.get(f, 0) + n
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + n

    def table(counts: Dict[str, int]) -> List[Dict[str, object]]:
        rows = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [{"frame": f, "samples": c, "share": round(c / total, 3)} for f, c in rows]

    return {"samples": total, "inclusive": table(inclusive), "self": table(own)}


def buckets(text: str, rules: List[Tuple[str, str]]) -> Dict[str, float]:
    """Share of samples whose stack contains a frame matching each rule (first rule wins)."""
    stacks = parse_folded(text)
    total = sum(n for _, n in stacks) or 1
    out: Dict[str, int] = {name: 0 for name, _ in rules}
    out["other"] = 0
    for frames, n in stacks:
        joined = "\n".join(frames)
        for name, pattern in rules:
            if re.search(pattern, joined):
                out[name] += n
                break
        else:
            out["other"] += n
    return {k: round(v / total, 3) for k, v in out.items()}


# What a Rasa turn is made of (first match wins, so order from specific to general).
RASA_BUCKETS = [
    ("nlu (parse_message)", r"processor\.py:parse_message"),
    ("action server call (HTTP + tracker JSON)", r"actions/action\.py:run\b.*|action\.py:_action_call_format|endpoints\.py:request"),
    ("tracker store (Redis, (de)serialise)", r"tracker_store\.py"),
    ("event broker (spool)", r"event_broker\.py"),
    ("lock store", r"lock_store\.py"),
    ("policy prediction", r"processor\.py:(predict_next_with_tracker_if_should|_predict_next_and_return_state)|policies/"),
    ("twilio connectors", r"connectors/"),
    ("tracker events / slots (apply, copy)", r"shared/core/trackers\.py|shared/core/events\.py"),
    ("sanic / asyncio I/O", r"sanic/|asyncio/|uvloop"),
]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folded", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    text = args.folded.read_text()
    summary = summarise_folded(text, args.top)
    print(f"{summary['samples']} samples")
    for kind in ("inclusive", "self"):
        print(f"\n{kind}:")
        for row in summary[kind]:
            print(f"  {row['share'] * 100:5.1f}%  {row['frame']}")
    print("\nbuckets:")
    for name, share in buckets(text, RASA_BUCKETS).items():
        print(f"  {share * 100:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
