#!/usr/bin/env python
"""Time the math answer checker over the whole test table.

    python scripts/bench_answer_check.py [--repetitions 200]

Runs ``check_math_answer`` on every row of tests/data/math_answers.csv, REPETITIONS
times, timing each call with time.perf_counter, and prints the mean, median, p99
and max time per answer (microseconds; on a shared machine the max and even the
mean can be dominated by scheduler stalls, the median and p99 are the stable figures), the accuracy on the table (a row counts when both
``correct`` and ``understood`` match) and, separately, the time for a 10 kB message; then the
accuracy per language on the main and the held-out tables (scripts/answer_check_report.py).
Nothing is asserted: speed is machine-dependent (tests never assert it).
"""
from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from actions import answer_check  # noqa: E402
from actions.answer_check import check_math_answer  # noqa: E402
from scripts import answer_check_report  # noqa: E402

TABLE = ROOT / "tests" / "data" / "math_answers.csv"


def _number(text: str):
    text = text.strip()
    if not text:
        return None
    return float(text) if any(c in text for c in ".eE") else int(text)


def load_table(path: Path = TABLE):
    with open(path, encoding="utf-8", newline="") as fh:
        return [(_number(r["expected"]), r["message"], r["language"], r["correct"].strip().lower() == "true",
                 _number(r["understood"])) for r in csv.DictReader(fh)]


def _matches(result, correct, understood) -> bool:
    if result.correct is not correct:
        return False
    if understood is None or result.understood is None:
        return understood is None and result.understood is None
    return math.isclose(result.understood, understood, rel_tol=1e-9, abs_tol=1e-9)


def _percentile(sorted_values, q: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[k]


def run(repetitions: int = 200, path: Path = TABLE) -> dict:
    rows = load_table(path)
    ok = sum(_matches(check_math_answer(e, m, lang), c, u) for e, m, lang, c, u in rows)
    clock = time.perf_counter
    times = []
    for _ in range(repetitions):
        for expected, message, language, _c, _u in rows:
            t0 = clock()
            check_math_answer(expected, message, language)
            times.append(clock() - t0)
    times.sort()
    long_message = ("blah 12 " * 1250)[:10_000]
    long_times = []
    for _ in range(max(1, repetitions // 10)):
        t0 = clock()
        check_math_answer(12, long_message, "en")
        long_times.append(clock() - t0)
    long_times.sort()
    # Cold: every unknown word met for the first time (the slip cache empty), over every table.
    answer_check._SLIPS.resolve.cache_clear()
    answer_check._SLIPS.unit_in_slot.cache_clear()
    answer_check._word_tokens.cache_clear()
    cold = []
    tables = [*answer_check_report.HELDOUT_TABLES, path]
    for row in [row for table in tables if table.exists() for row in answer_check_report.load_table(table)]:
        t0 = clock()
        check_math_answer(row["expected"], row["message"], row["language"])
        cold.append(clock() - t0)
    cold.sort()
    return {
        "cases": len(rows),
        "en": sum(r[2] == "en" for r in rows),
        "rw": sum(r[2] == "rw" for r in rows),
        "correct_rows": ok,
        "accuracy": ok / len(rows) if rows else 0.0,
        "calls": len(times),
        "mean_us": statistics.fmean(times) * 1e6 if times else 0.0,
        "median_us": _percentile(times, 0.5) * 1e6,
        "p99_us": _percentile(times, 0.99) * 1e6,
        "max_us": (times[-1] if times else 0.0) * 1e6,
        "long_10kb_mean_us": statistics.fmean(long_times) * 1e6,
        "long_10kb_p99_us": _percentile(long_times, 0.99) * 1e6,
        "cold_calls": len(cold),
        "cold_median_us": _percentile(cold, 0.5) * 1e6,
        "cold_p99_us": _percentile(cold, 0.99) * 1e6,
        "cold_max_us": (cold[-1] if cold else 0.0) * 1e6,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", "-n", type=int, default=200)
    args = parser.parse_args(argv)
    s = run(args.repetitions)
    print(f"table: {s['cases']} cases ({s['en']} en, {s['rw']} rw), "
          f"accuracy {s['accuracy']:.1%} ({s['correct_rows']}/{s['cases']})")
    print(f"timing: {s['calls']} calls ({args.repetitions} repetitions): "
          f"mean {s['mean_us']:.1f} us, median {s['median_us']:.1f} us, p99 {s['p99_us']:.1f} us, "
          f"max {s['max_us']:.1f} us per answer")
    print(f"10 kB message: mean {s['long_10kb_mean_us']:.1f} us, p99 {s['long_10kb_p99_us']:.1f} us")
    print(f"first sight (slip cache empty, all tables, {s['cold_calls']} calls): median {s['cold_median_us']:.1f} us, "
          f"p99 {s['cold_p99_us']:.1f} us, max {s['cold_max_us']:.1f} us")
    print("\n".join(answer_check_report.summary_lines(answer_check_report.report())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
