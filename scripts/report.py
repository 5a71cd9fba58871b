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
import json
import logging
import os
import re
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

logger = logging.getLogger("report")

KIGALI_UTC_OFFSET = 2  # Central Africa Time, no daylight saving
MODULES = ("math", "english", "reading", "debate")
NO_MODULE = "none"
REDACTED = "[redacted]"
_CHANNEL_NAME = re.compile(r"^[a-z0-9_.-]{1,32}$")


# --------------------------------------------------------------------------- privacy
def looks_like_phone_number(value: str) -> bool:
    from infra.progress_store import looks_like_phone_number as check

    if check(value):
        return True
    digits = re.sub(r"[\s\-().]", "", value)
    return bool(re.search(r"\+?\d{9,}", digits)) and not re.fullmatch(r"-?\d+(\.\d+)?", value.strip())


def scrub(value: Any) -> Any:
    """A number stays a number; any text that looks like a phone number is redacted."""
    if isinstance(value, (int, float)) or value is None:
        return value
    text = str(value)
    return REDACTED if looks_like_phone_number(text) else text


def channel_name(value: Any) -> str:
    text = str(value or "").strip().lower()
    if not text:
        return "unknown"
    return text if _CHANNEL_NAME.match(text) and not looks_like_phone_number(text) else "other"


# --------------------------------------------------------------------------- reading
def load_events(url: str, since: Optional[date] = None, until: Optional[date] = None,
                utc_offset: float = KIGALI_UTC_OFFSET) -> List[Tuple[int, str, Dict[str, Any]]]:
    """``(id, sender_id, event)`` for every event (optionally only days in [since, until])."""
    import sqlalchemy as sa

    engine = sa.create_engine(_sync_url(url), future=True)
    events = sa.Table("events", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column("sender_id", sa.String),
                      sa.Column("data", sa.Text))
    rows: List[Tuple[int, str, Dict[str, Any]]] = []
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(
                sa.select(events.c.id, events.c.sender_id, events.c.data).order_by(events.c.id)
            )
            for row_id, sender_id, data in result:
                try:
                    event = json.loads(data)
                except (TypeError, ValueError):
                    continue
                if not isinstance(event, dict):
                    continue
                day = local_day(event.get("timestamp"), utc_offset)
                if day is None or (since and day < since) or (until and day > until):
                    continue
                rows.append((row_id, sender_id or event.get("sender_id") or "", event))
    finally:
        engine.dispose()
    return rows


def load_math_progress(url: Optional[str], schema: Optional[str] = None) -> Optional[List[Tuple[int, int, int]]]:
    """``(level, attempts, correct)`` per learner from the progress store's math rows;
    ``None`` when the store cannot be read (the report says so instead of failing)."""
    if not url:
        return None
    import sqlalchemy as sa

    table = sa.Table("learner_progress", sa.MetaData(schema=schema or None), sa.Column("module", sa.String),
                     sa.Column("level", sa.Integer), sa.Column("attempts", sa.Integer),
                     sa.Column("correct", sa.Integer))
    try:
        engine = sa.create_engine(_sync_url(url), future=True)
        try:
            with engine.connect() as conn:
                result = conn.execute(sa.select(table.c.level, table.c.attempts, table.c.correct)
                                      .where(table.c.module == "math"))
                return [(int(level or 1), int(attempts or 0), int(correct or 0)) for level, attempts, correct in result]
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - missing table, unreachable: report without it
        logger.warning("progress store not read (%s)", type(exc).__name__)
        return None


def _sync_url(url: str) -> str:
    url = url.strip()
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    return (url.replace("postgresql+asyncpg://", "postgresql://")
               .replace("sqlite+aiosqlite://", "sqlite://"))


def local_day(timestamp: Any, utc_offset: float = KIGALI_UTC_OFFSET) -> Optional[date]:
    try:
        moment = datetime.fromtimestamp(float(timestamp), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return (moment + timedelta(hours=utc_offset)).date()


# --------------------------------------------------------------------------- analysis
@dataclass
class Turn:
    sender: str
    timestamp: float
    day: date
    channel: str
    intent: Optional[str]
    language: Optional[str]
    module_before: Optional[str]
    state_before: Any
    actions: List[str] = field(default_factory=list)
    answer: Optional[str] = None
    text: Optional[str] = None
    state_after: Any = None
    module_after: Optional[str] = None
    latency: Optional[float] = None
    ended: bool = False
    graded: Optional[Dict[str, Any]] = None  # the outcome the tutor recorded (bot message metadata)

    @property
    def module(self) -> str:
        module = self.module_after if self.module_after in MODULES else self.module_before
        return module if module in MODULES else NO_MODULE

    @property
    def fallback(self) -> bool:
        return self.intent == "nlu_fallback" or "action_handle_fallback" in self.actions

    def math_outcome(self) -> Optional[Tuple[int, bool]]:
        """``(problem level, correct)`` if this turn was a graded math answer, else None.

        The outcome the tutor recorded in the event stream when it graded the answer
        (``graded`` metadata, actions/module_actions.py); events written before outcomes were
        recorded are reconstructed from the tutor state as before."""
        if self.graded is not None:
            if self.graded.get("module") != "math":
                return None
            try:
                return int(self.graded.get("level") or 1), bool(self.graded.get("correct"))
            except (TypeError, ValueError):
                return None
        return self._reconstructed_math_outcome()

    def _reconstructed_math_outcome(self) -> Optional[Tuple[int, bool]]:
        before, after = self.state_before, self.state_after
        if not isinstance(before, dict) or not isinstance(after, dict):
            return None
        if before.get("module", "math") != "math" or after.get("module", "math") != "math":
            return None
        if "tutor_form" not in self.actions or "action_start_module" in self.actions:
            return None
        p0, p1 = before.get("problem"), after.get("problem")
        if not isinstance(p0, dict) or not isinstance(p1, dict):
            return None
        t0, t1 = int(before.get("tries") or 0), int(after.get("tries") or 0)
        if p1.get("id") == p0.get("id") and t1 == t0:
            return None  # not graded (no number in it, a hint, a repeat)
        try:
            level = int(p0.get("level") or 1)
        except (TypeError, ValueError):
            level = 1
        if p1.get("id") == p0.get("id"):
            return level, False  # a first wrong try: same problem, second try
        if t0 == 0:
            return level, True  # a new problem after a first try: only a right answer does that
        return level, _graded_right(p0.get("answer"), self.answer or self.text or "", self.language)


def _graded_right(expected: Any, answer: str, language: Optional[str]) -> bool:
    from actions.answer_check import check_math_answer

    try:
        return bool(check_math_answer(expected, answer, language).correct)
    except Exception:  # noqa: BLE001
        return False


@dataclass
class Analysis:
    turns: List[Turn]
    sessions: List[Tuple[str, date]]


def analyse(rows: Iterable[Tuple[int, str, Dict[str, Any]]], utc_offset: float = KIGALI_UTC_OFFSET) -> Analysis:
    by_sender: Dict[str, List[Tuple[float, int, Dict[str, Any]]]] = defaultdict(list)
    for row_id, sender, event in rows:
        try:
            ts = float(event.get("timestamp"))
        except (TypeError, ValueError):
            continue
        by_sender[sender].append((ts, row_id, event))

    turns: List[Turn] = []
    sessions: List[Tuple[str, date]] = []
    for sender, events in by_sender.items():
        events.sort(key=lambda item: (item[0], item[1]))
        slots: Dict[str, Any] = {}
        turn: Optional[Turn] = None
        for ts, _, event in events:
            kind = event.get("event")
            if kind == "session_started":
                day = local_day(ts, utc_offset)
                if day is not None:
                    sessions.append((sender, day))
                slots = {}
            elif kind == "restart":
                slots = {}
            elif kind == "user":
                if turn is not None:
                    _close(turn, slots)
                metadata = event.get("metadata") or {}
                parse = event.get("parse_data") or {}
                turn = Turn(
                    sender=sender, timestamp=ts, day=local_day(ts, utc_offset) or date.min,
                    channel=channel_name((metadata.get("channel") if isinstance(metadata, dict) else None)
                                         or event.get("input_channel")),
                    intent=((parse.get("intent") or {}).get("name") if isinstance(parse, dict) else None),
                    language=slots.get("language"), module_before=slots.get("active_module"),
                    state_before=slots.get("tutor_state"), text=event.get("text"),
                )
                turns.append(turn)
            elif kind == "slot":
                name, value = event.get("name"), event.get("value")
                slots[name] = value
                if turn is not None and not turn.ended:
                    if name == "answer" and isinstance(value, str) and value.strip():
                        turn.answer = value
                    elif name == "tutor_state":
                        turn.state_after = value
            elif kind == "bot" and turn is not None and not turn.ended:
                graded = (event.get("metadata") or {}).get("graded") if isinstance(event.get("metadata"), dict) else None
                if isinstance(graded, dict):
                    turn.graded = graded
            elif kind == "action" and turn is not None and not turn.ended:
                name = event.get("name") or ""
                if name == "action_listen":
                    turn.latency = max(0.0, ts - turn.timestamp)
                    _close(turn, slots)
                else:
                    turn.actions.append(name)
        if turn is not None and not turn.ended:
            _close(turn, slots)
    turns.sort(key=lambda t: t.timestamp)
    return Analysis(turns=turns, sessions=sessions)


def _close(turn: Turn, slots: Dict[str, Any]) -> None:
    if not turn.ended:
        turn.module_after = slots.get("active_module")
        turn.ended = True


# --------------------------------------------------------------------------- tables
def _rate(part: int, whole: int) -> Optional[float]:
    return round(part / whole, 4) if whole else None


def _ms(seconds: Optional[float]) -> Optional[int]:
    return None if seconds is None else int(round(seconds * 1000))


def _percentile(values: Sequence[float], q: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[index]


def build_tables(analysis: Analysis, progress: Optional[List[Tuple[int, int, int]]]) -> Dict[str, Tuple[List[str], List[list]]]:
    turns = analysis.turns
    first_day: Dict[str, date] = {}
    for t in turns:
        first_day.setdefault(t.sender, t.day)

    days = sorted({t.day for t in turns} | {d for _, d in analysis.sessions})
    daily_rows = []
    for day in days:
        day_turns = [t for t in turns if t.day == day]
        learners = {t.sender for t in day_turns}
        latencies = [t.latency for t in day_turns if t.latency is not None]
        fallbacks = sum(t.fallback for t in day_turns)
        daily_rows.append([
            day.isoformat(), len(learners), sum(1 for s in learners if first_day.get(s) == day),
            sum(1 for _, d in analysis.sessions if d == day), len(day_turns), fallbacks,
            _rate(fallbacks, len(day_turns)), _ms(statistics.median(latencies)) if latencies else None,
        ])

    module_channel = Counter((t.module, t.channel) for t in turns)
    mc_rows = [[m, c, n] for (m, c), n in sorted(module_channel.items())]

    graded: Dict[int, List[bool]] = defaultdict(list)
    for t in turns:
        outcome = t.math_outcome()
        if outcome is not None:
            graded[outcome[0]].append(outcome[1])
    acc_rows = [[level, len(v), sum(v), _rate(sum(v), len(v))] for level, v in sorted(graded.items())]

    progress_rows: List[list] = []
    if progress is not None:
        per_level: Dict[int, List[int]] = defaultdict(lambda: [0, 0, 0])
        for level, attempts, correct in progress:
            per_level[level][0] += 1
            per_level[level][1] += attempts
            per_level[level][2] += correct
        progress_rows = [[level, n, a, c, _rate(c, a)] for level, (n, a, c) in sorted(per_level.items())]

    latency_rows = []
    for channel in sorted({t.channel for t in turns}) + ["all"]:
        values = [t.latency for t in turns if t.latency is not None and channel in (t.channel, "all")]
        latency_rows.append([channel, len(values), _ms(statistics.median(values)) if values else None,
                             _ms(_percentile(values, 0.9)), _ms(max(values)) if values else None])

    all_latencies = [t.latency for t in turns if t.latency is not None]
    math_total = sum(len(v) for v in graded.values())
    math_right = sum(sum(v) for v in graded.values())
    fallbacks = sum(t.fallback for t in turns)
    summary = [
        ["first_day", days[0].isoformat() if days else None],
        ["last_day", days[-1].isoformat() if days else None],
        ["learners", len({t.sender for t in turns})],
        ["sessions", len(analysis.sessions)],
        ["turns", len(turns)],
        ["median_turn_latency_ms", _ms(statistics.median(all_latencies)) if all_latencies else None],
        ["fallback_turns", fallbacks],
        ["fallback_rate", _rate(fallbacks, len(turns))],
        ["math_graded_answers", math_total],
        ["math_accuracy", _rate(math_right, math_total)],
        ["math_learners_in_progress_store", sum(r[1] for r in progress_rows) if progress is not None else None],
    ]
    return {
        "summary": (["metric", "value"], summary),
        "daily": (["date", "learners", "new_learners", "sessions", "turns", "fallback_turns", "fallback_rate",
                   "median_latency_ms"], daily_rows),
        "turns_by_module_channel": (["module", "channel", "turns"], mc_rows),
        "math_accuracy_by_level": (["level", "graded_answers", "correct", "accuracy"], acc_rows),
        "math_progress_by_level": (["level", "learners", "attempts", "correct", "accuracy"], progress_rows),
        "latency_by_channel": (["channel", "turns", "median_ms", "p90_ms", "max_ms"], latency_rows),
    }


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
