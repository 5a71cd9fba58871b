"""The analysis of the event stream shared by ``make report`` (scripts/report.py) and the
dashboard (dashboard/): reading ``events`` (and the progress store's math rows), turning
events into turns and sessions, and the programme tables.

Definitions (a turn, its channel and module, latency, fallback, math accuracy, sessions,
learners) are in scripts/report.py's docstring; they are the same for both.

Privacy: the tables hold only counts; ``scrub`` redacts anything that looks like a phone number.
"""
from __future__ import annotations

import json
import logging
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

Grader = Callable[[Any, str, Optional[str]], bool]

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
# The event's time inside its JSON; PostgreSQL indexes this expression (dashboard/db.py,
# ``make dashboard``), so a bounded read of recent days does not scan the whole table.
EVENT_TIME_SQL = "((data::json ->> 'timestamp')::float8)"


def load_events(url: Any, since: Optional[date] = None, until: Optional[date] = None,
                utc_offset: float = KIGALI_UTC_OFFSET, sender: Optional[str] = None,
                max_rows: Optional[int] = None) -> List[Tuple[int, str, Dict[str, Any]]]:
    """``(id, sender_id, event)`` for every event (optionally only days in [since, until], one
    conversation, the latest ``max_rows``). ``url`` is a database URL or an SQLAlchemy engine."""
    import sqlalchemy as sa

    engine = url if isinstance(url, sa.engine.Engine) else sa.create_engine(_sync_url(url), future=True)
    events = sa.Table("events", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column("sender_id", sa.String),
                      sa.Column("data", sa.Text))
    query = sa.select(events.c.id, events.c.sender_id, events.c.data)
    if sender is not None:
        query = query.where(events.c.sender_id == sender)
    if since is not None and engine.dialect.name == "postgresql":
        start = datetime(since.year, since.month, since.day, tzinfo=timezone.utc) - timedelta(hours=utc_offset)
        query = query.where(sa.text(f"{EVENT_TIME_SQL} >= :since_ts").bindparams(since_ts=start.timestamp()))
    query = query.order_by(events.c.id.desc()).limit(max_rows) if max_rows else query.order_by(events.c.id)
    rows: List[Tuple[int, str, Dict[str, Any]]] = []
    try:
        with engine.connect() as conn:
            for row_id, sender_id, data in conn.execution_options(stream_results=True).execute(query):
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
        if engine is not url:
            engine.dispose()
    return sorted(rows, key=lambda row: row[0]) if max_rows else rows


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
    replies: List[str] = field(default_factory=list)  # the bot's texts (the dashboard shows them to admins)
    grade: Optional[Grader] = field(default=None, repr=False, compare=False)

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
        if self.grade is None:
            return None  # a second try's outcome needs the answer checker
        return level, self.grade(p0.get("answer"), self.answer or self.text or "", self.language)


@dataclass
class Analysis:
    turns: List[Turn]
    sessions: List[Tuple[str, date]]


def analyse(rows: Iterable[Tuple[int, str, Dict[str, Any]]], utc_offset: float = KIGALI_UTC_OFFSET,
            grade: Optional[Grader] = None) -> Analysis:
    """Turns and sessions from the events. ``grade(expected, answer, language) -> right`` is
    the math answer checker (actions/answer_check.py, passed in by the callers: infra does not
    import actions), needed only for events written before outcomes were recorded."""
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
                    state_before=slots.get("tutor_state"), text=event.get("text"), grade=grade,
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
                if event.get("text"):
                    turn.replies.append(str(event["text"]))
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




# --------------------------------------------------------------------------- dashboard
SESSION_GAP_SECONDS = 3600  # domain.yml session_expiration_time (60 min): a longer pause starts a session


def overview_tables(analysis: Analysis, progress: Optional[List[Tuple[int, int, int]]]) -> Dict[str, Tuple[List[str], List[list]]]:
    """The report's tables plus what the dashboard's overview adds: off-topic rate, p95
    latency, and learners whose math level went up or down (first vs last graded answer)."""
    tables = build_tables(analysis, progress)
    turns = analysis.turns
    latencies = [t.latency for t in turns if t.latency is not None]
    off_topic = sum(t.intent == "out_of_scope" for t in turns)
    _, summary = tables["summary"]
    summary.extend([
        ["off_topic_turns", off_topic],
        ["off_topic_rate", _rate(off_topic, len(turns))],
        ["p95_turn_latency_ms", _ms(_percentile(latencies, 0.95))],
    ])
    levels: Dict[str, List[int]] = defaultdict(list)
    for t in turns:
        outcome = t.math_outcome()
        if outcome is not None:
            levels[t.sender].append(outcome[0])
    moves = Counter("up" if lv[-1] > lv[0] else "down" if lv[-1] < lv[0] else "same" for lv in levels.values())
    tables["math_level_moves"] = (["direction", "learners"], [[d, moves.get(d, 0)] for d in ("up", "same", "down")])
    return tables


def learner_tables(analysis: Analysis, sender: str, with_texts: bool = False,
                   recent_sessions: int = 10) -> Dict[str, Tuple[List[str], List[list]]]:
    """One learner's activity per day and module, and their recent sessions (what they and
    the tutor said only ``with_texts``: admins)."""
    turns = [t for t in analysis.turns if t.sender == sender]
    per_day: Dict[Tuple[date, str], List[int]] = defaultdict(lambda: [0, 0, 0])
    for t in turns:
        cell = per_day[(t.day, t.module)]
        cell[0] += 1
        outcome = t.math_outcome() if t.module == "math" else None
        graded = outcome is not None or (t.graded is not None and t.graded.get("module") == t.module)
        if graded:
            cell[1] += 1
            cell[2] += int(outcome[1] if outcome is not None else bool(t.graded.get("correct")))
    activity = [[day.isoformat(), module, n, g, c, _rate(c, g)] for (day, module), (n, g, c) in sorted(per_day.items())]
    sessions: List[List[Turn]] = []
    for t in turns:
        if not sessions or t.timestamp - sessions[-1][-1].timestamp > SESSION_GAP_SECONDS:
            sessions.append([])
        sessions[-1].append(t)
    header = ["started_utc", "channel", "turns", "modules"] + (["texts"] if with_texts else [])
    rows = []
    for session in reversed(sessions[-recent_sessions:]):
        started = datetime.fromtimestamp(session[0].timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")
        modules = sorted({t.module for t in session} - {NO_MODULE})
        row: list = [started, session[0].channel, len(session), " ".join(modules) or NO_MODULE]
        if with_texts:
            row.append(" | ".join(f"> {t.text or ''} < {' '.join(t.replies)}" for t in session))
        rows.append(row)
    return {"activity_by_day": (["date", "module", "turns", "graded_answers", "correct", "accuracy"], activity),
            "recent_sessions": (header, rows)}
