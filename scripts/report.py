#!/usr/bin/env python3
"""Programme report from the event stream: ``make report`` -> ``reports/``.

Reads every event from PostgreSQL's ``events`` table (what the event broker wrote) and the
math rows of the progress store, and writes CSV tables, PNG charts and ``report.md``:

``daily.csv``                    per day (Kigali time): learners, new learners, sessions,
                                 turns, fallback turns and rate, median turn latency
``turns_by_module_channel.csv``  turns per module and channel
``math_accuracy_by_level.csv``   graded math answers per problem level (from the events)
``math_progress_by_level.csv``   math learners per current level, their answers and
                                 accuracy (from the progress store)
``latency_by_channel.csv``       turn latency per channel: median, 90th percentile, max
``summary.csv``                  the headline numbers
``*.png``                        one chart per table; ``report.md`` ties it together

Definitions:

* a **turn** is one learner message (a ``user`` event); its **channel** is the message's
  ``metadata.channel`` or ``input_channel`` (``rest``, ``twilio_voice``, ``twilio_sms``);
  its **module** is the ``active_module`` slot when the turn ended (the one it started in
  if the turn left the module), ``none`` for onboarding and the menu;
* **latency**: from the ``user`` event to the next ``action_listen`` (the whole turn in
  Rasa, action server calls included; Twilio's own network time is not in it);
* **fallback**: turns whose intent was ``nlu_fallback`` or that ran ``action_handle_fallback``;
* **math accuracy**: the outcome the tutor recorded when it graded the answer (the
  ``graded`` metadata of its first reply message: module, correct, problem level), so a later
  change of the answer checker never rewrites history. Events written before outcomes were
  recorded are reconstructed from the tutor state (same problem with a second try, or a new
  problem; right/wrong by ``actions.answer_check.check_math_answer``);
* **sessions**: ``session_started`` events; **learners**: distinct conversations with at
  least one turn that day; **new**: first turn ever in the data.

Privacy: only counts leave this script -- no sender ids, no message texts, and every
output cell that looks like a phone number is replaced by ``[redacted]``.

Usage::

    python scripts/report.py [--events-url URL] [--progress-url URL] [--out reports]
                             [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--utc-offset 2]

``--events-url`` defaults to DATABASE_URL (or its parts, see infra/settings.py);
``--progress-url`` to PROGRESS_DB_URL, else the same database.
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import statistics
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

logger = logging.getLogger("report")

from actions.answer_check import is_right  # noqa: E402
from infra import analytics  # noqa: E402
from infra.analytics import (  # noqa: E402,F401 - the shared analysis (also the dashboard's)
    KIGALI_UTC_OFFSET,
    MODULES,
    NO_MODULE,
    REDACTED,
    Analysis,
    Turn,
    build_tables,
    channel_name,
    load_events,
    load_math_progress,
    local_day,
    looks_like_phone_number,
    scrub,
)


def analyse(rows, utc_offset: float = KIGALI_UTC_OFFSET) -> Analysis:
    """infra.analytics.analyse with the math answer checker (for events from before outcomes
    were recorded)."""
    return analytics.analyse(rows, utc_offset, grade=is_right)


# --------------------------------------------------------------------------- output
def write_csv(path: Path, header: List[str], rows: List[list]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([scrub(h) for h in header])
        for row in rows:
            writer.writerow(["" if cell is None else scrub(cell) for cell in row])


def write_charts(out: Path, tables: Dict[str, Tuple[List[str], List[list]]], analysis: Analysis) -> List[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: List[Path] = []

    def save(fig: Any, name: str) -> None:
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    _, daily = tables["daily"]
    fig, ax = plt.subplots(figsize=(8, 4))
    if daily:
        labels = [r[0] for r in daily]
        x = range(len(labels))
        ax.bar([i - 0.2 for i in x], [r[1] for r in daily], width=0.4, label="learners")
        ax.bar([i + 0.2 for i in x], [r[3] for r in daily], width=0.4, label="sessions")
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, rotation=45, ha="right")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Learners and sessions per day (Kigali time)")
    save(fig, "learners_sessions_per_day.png")

    _, mc = tables["turns_by_module_channel"]
    fig, ax = plt.subplots(figsize=(8, 4))
    modules = [m for m in (*MODULES, NO_MODULE) if any(r[0] == m for r in mc)]
    channels = sorted({r[1] for r in mc})
    width = 0.8 / max(1, len(channels))
    for j, channel in enumerate(channels):
        counts = [sum(r[2] for r in mc if r[0] == m and r[1] == channel) for m in modules]
        ax.bar([i + j * width - 0.4 + width / 2 for i in range(len(modules))], counts, width=width, label=channel)
    ax.set_xticks(list(range(len(modules))))
    ax.set_xticklabels(modules)
    if channels:
        ax.legend(title="channel")
    ax.set_title("Turns per module and channel")
    save(fig, "turns_by_module_channel.png")

    _, acc = tables["math_accuracy_by_level"]
    fig, ax = plt.subplots(figsize=(6, 4))
    if acc:
        ax.bar(range(len(acc)), [100 * (r[3] or 0) for r in acc])
        ax.set_xticks(list(range(len(acc))))
        ax.set_xticklabels([str(r[0]) for r in acc])
        for i, r in enumerate(acc):
            ax.annotate(f"n={r[1]}", (i, 100 * (r[3] or 0)), ha="center", va="bottom")
    ax.set_ylim(0, 105)
    ax.set_xlabel("problem level")
    ax.set_ylabel("correct answers (%)")
    ax.set_title("Math accuracy per level")
    save(fig, "math_accuracy_by_level.png")

    latencies = [t.latency * 1000 for t in analysis.turns if t.latency is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    if latencies:
        ax.hist(latencies, bins=min(30, max(5, len(latencies) // 3)))
        median = statistics.median(latencies)
        ax.axvline(median, color="red", linestyle="--", label=f"median {median:.0f} ms")
        ax.legend()
    ax.set_xlabel("turn latency (ms)")
    ax.set_ylabel("turns")
    ax.set_title("Turn latency")
    save(fig, "turn_latency.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    if daily:
        ax.plot(range(len(daily)), [100 * (r[6] or 0) for r in daily], marker="o")
        ax.set_xticks(list(range(len(daily))))
        ax.set_xticklabels([r[0] for r in daily], rotation=45, ha="right")
    ax.set_ylabel("fallback turns (%)")
    ax.set_title("Fallback rate per day")
    save(fig, "fallback_rate_per_day.png")
    return written


def write_markdown(path: Path, tables: Dict[str, Tuple[List[str], List[list]]], charts: List[Path],
                   progress_read: bool) -> None:
    lines = ["# BAKAME programme report", "",
             f"Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} from the `events` table "
             "and the progress store. Days are Kigali time. Definitions: `scripts/report.py`.", ""]
    titles = {
        "summary": "Summary", "daily": "Per day", "turns_by_module_channel": "Turns per module and channel",
        "math_accuracy_by_level": "Math accuracy per problem level (events)",
        "math_progress_by_level": "Math learners per current level (progress store)",
        "latency_by_channel": "Turn latency per channel",
    }
    for name, title in titles.items():
        header, rows = tables[name]
        lines += [f"## {title}", ""]
        if name == "math_progress_by_level" and not progress_read:
            lines += ["(progress store not readable)", ""]
            continue
        if not rows:
            lines += ["(no data)", ""]
            continue
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for row in rows:
            lines.append("| " + " | ".join("" if c is None else str(scrub(c)) for c in row) + " |")
        lines.append("")
    lines += ["## Charts", ""] + [f"![{p.stem}]({p.name})" for p in charts] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")


def build_report(events_url: str, out: Path, progress_url: Optional[str] = None,
                 progress_schema: Optional[str] = None, since: Optional[date] = None,
                 until: Optional[date] = None, utc_offset: float = KIGALI_UTC_OFFSET) -> Dict[str, Path]:
    """Read, analyse, write; the written files by name."""
    out.mkdir(parents=True, exist_ok=True)
    rows = load_events(events_url, since, until, utc_offset)
    analysis = analyse(rows, utc_offset)
    progress = load_math_progress(progress_url, progress_schema)
    tables = build_tables(analysis, progress)
    written: Dict[str, Path] = {}
    for name, (header, table_rows) in tables.items():
        path = out / f"{name}.csv"
        write_csv(path, header, table_rows)
        written[path.name] = path
    for path in write_charts(out, tables, analysis):
        written[path.name] = path
    markdown = out / "report.md"
    write_markdown(markdown, tables, [p for p in written.values() if p.suffix == ".png"], progress is not None)
    written[markdown.name] = markdown
    return written


def _date(value: str) -> date:
    return date.fromisoformat(value)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="BAKAME programme report (CSV + PNG) from the events table.")
    parser.add_argument("--events-url", help="database with the events table (default: DATABASE_URL)")
    parser.add_argument("--progress-url", help="progress store (default: PROGRESS_DB_URL, else the events database)")
    parser.add_argument("--progress-schema", default=os.environ.get("PROGRESS_DB_SCHEMA") or None)
    parser.add_argument("--out", default=str(ROOT / "reports"), help="output directory (default reports/)")
    parser.add_argument("--since", type=_date, help="first day (YYYY-MM-DD, Kigali time)")
    parser.add_argument("--until", type=_date, help="last day (YYYY-MM-DD, Kigali time)")
    parser.add_argument("--utc-offset", type=float, default=KIGALI_UTC_OFFSET, help="hours added to UTC for days")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)

    events_url = args.events_url
    if not events_url:
        from infra.settings import production_env

        events_url = production_env()["DATABASE_URL"]
    progress_url = args.progress_url or os.environ.get("PROGRESS_DB_URL") or events_url
    try:
        written = build_report(events_url, Path(args.out), progress_url, args.progress_schema,
                               args.since, args.until, args.utc_offset)
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        print(f"report: could not read the events ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
              file=sys.stderr)
        return 1
    print(f"report written to {args.out}/: " + ", ".join(sorted(written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
