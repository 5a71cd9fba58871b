#!/usr/bin/env python
"""Answer-checker accuracy on the main table and on the held-out tables, per language.

    python scripts/answer_check_report.py [--failures]

* ``tests/data/math_answers.csv``: the test table (``tests/test_answer_check.py`` requires 100 %);
* ``tests/data/math_answers_heldout.csv``: cases drawn from public sources (its header names them),
  never used to tune the checker, so its figure is the honest one;
* ``tests/data/math_answers_heldout2.csv``: a second held-out set from other public sources, written
  and measured before the next round of changes (issue 13), so that the first set's remaining misses
  are not the only yardstick;
* ``tests/data/math_answers_heldout3.csv``: measured once after that round, before any change for
  it (real Kinyarwanda writing from Common Voice, two more English libraries' tests);
* ``tests/data/math_answers_heldout4.csv``: written and measured before round 3 (more Common Voice
  Kinyarwanda, words-to-numbers' tests with misspelt inputs);
* ``tests/data/math_answers_heldout5.csv``: measured once after round 3, the checker unchanged since;
* ``tests/data/math_answers_heldout6.csv``: 201 cases written before round 4 (recogniser transcripts of
  numbers read aloud, learners' and children's misspellings, more Common Voice Kinyarwanda), measured
  once before and once after it;
* ``tests/data/math_answers_heldout7.csv``: 120 cases from still other sources (Kinyarwanda tweets and
  news, English spoken forms), written after round 4 and measured once, the checker unchanged since.

A row counts as right when both ``correct`` and ``understood`` match. ``make evaluate`` prints
this report (scripts/evaluate.py) and so does ``scripts/bench_answer_check.py``. Lines starting
with ``#`` in a table are comments.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from actions.answer_check import check_math_answer  # noqa: E402

MAIN_TABLE = ROOT / "tests" / "data" / "math_answers.csv"
HELDOUT_TABLE = ROOT / "tests" / "data" / "math_answers_heldout.csv"
HELDOUT2_TABLE = ROOT / "tests" / "data" / "math_answers_heldout2.csv"
HELDOUT3_TABLE = ROOT / "tests" / "data" / "math_answers_heldout3.csv"
HELDOUT4_TABLE = ROOT / "tests" / "data" / "math_answers_heldout4.csv"
HELDOUT5_TABLE = ROOT / "tests" / "data" / "math_answers_heldout5.csv"
HELDOUT6_TABLE = ROOT / "tests" / "data" / "math_answers_heldout6.csv"
HELDOUT7_TABLE = ROOT / "tests" / "data" / "math_answers_heldout7.csv"
HELDOUT_TABLES = [HELDOUT_TABLE, HELDOUT2_TABLE, HELDOUT3_TABLE, HELDOUT4_TABLE, HELDOUT5_TABLE, HELDOUT6_TABLE,
                  HELDOUT7_TABLE]
TABLES = {"main": MAIN_TABLE, "held-out": HELDOUT_TABLE, "held-out 2": HELDOUT2_TABLE, "held-out 3": HELDOUT3_TABLE,
          "held-out 4": HELDOUT4_TABLE, "held-out 5": HELDOUT5_TABLE, "held-out 6": HELDOUT6_TABLE,
          "held-out 7": HELDOUT7_TABLE}


def number(text: str):
    text = text.strip()
    if not text:
        return None
    return float(text) if any(c in text for c in ".eE") else int(text)


def load_table(path: Path) -> List[Dict[str, Any]]:
    """Rows as dicts: expected, message, language, correct (bool), understood (number or None)."""
    with open(path, encoding="utf-8", newline="") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    return [{**r, "expected": number(r["expected"]), "correct": r["correct"].strip().lower() == "true",
             "understood": number(r["understood"])} for r in csv.DictReader(lines)]


def row_is_right(row: Dict[str, Any], result) -> bool:
    if result.correct is not row["correct"]:
        return False
    want, got = row["understood"], result.understood
    if want is None or got is None:
        return want is None and got is None
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


def score(path: Path) -> Dict[str, Any]:
    rows = load_table(path)
    out: Dict[str, Any] = {"cases": len(rows), "right": 0, "languages": {}, "failures": []}
    for row in rows:
        result = check_math_answer(row["expected"], row["message"], row["language"])
        groups = [out["languages"].setdefault(row["language"], {"cases": 0, "right": 0})]
        if row.get("source"):
            groups.append(out.setdefault("sources", {}).setdefault(row["source"], {"cases": 0, "right": 0}))
        right = row_is_right(row, result)
        out["right"] += right
        for group in groups:
            group["cases"] += 1
            group["right"] += right
        if not right:
            out["failures"].append({"message": row["message"], "language": row["language"],
                                    "expected": row["expected"], "want": (row["correct"], row["understood"]),
                                    "got": (result.correct, result.understood)})
    out["accuracy"] = out["right"] / len(rows) if rows else 0.0
    for group in [*out["languages"].values(), *out.get("sources", {}).values()]:
        group["accuracy"] = group["right"] / group["cases"]
    return out


def report(tables: Optional[Dict[str, Path]] = None) -> Dict[str, Dict[str, Any]]:
    return {name: score(path) for name, path in (tables or TABLES).items() if path.exists()}


def _groups(groups: Dict[str, Dict[str, Any]]) -> str:
    return ", ".join(f"{code} {v['accuracy']:.1%} ({v['right']}/{v['cases']})" for code, v in sorted(groups.items()))


def summary_lines(results: Dict[str, Dict[str, Any]], failures: bool = False, sources: bool = False) -> List[str]:
    lines = []
    for name, s in results.items():
        lines.append(f"answer check, {name} table: {s['accuracy']:.1%} ({s['right']}/{s['cases']}); "
                     f"{_groups(s['languages'])}")
        if sources and s.get("sources"):
            lines.append(f"  by source: {_groups(s['sources'])}")
        if failures:
            lines += [f"  {f['language']} {f['message']!r} expected {f['expected']}: want {f['want']}, got {f['got']}"
                      for f in s["failures"]]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", action="store_true", help="list every row the checker gets wrong")
    parser.add_argument("--sources", action="store_true", help="accuracy per source of the held-out tables")
    args = parser.parse_args(argv)
    print("\n".join(summary_lines(report(), args.failures, args.sources)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
