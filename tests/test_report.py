"""scripts/report.py on a known event stream: every number checked by hand.

The events are written the way production writes them (infra/event_broker.py into an
``events`` table, here a SQLite file) and the progress rows through the progress store.
The same script runs on the real PostgreSQL in tests/test_production_stack.py.
"""
import asyncio
import csv
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from infra.progress_store import ProgressStore
from actions.tutoring.base import Progress
from infra.event_broker import BufferedSQLEventBroker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import report  # noqa: E402

PHONE = "+250788123456"
# 2025-03-03 07:00 UTC = 09:00 in Kigali; 2025-03-03 23:30 UTC = 01:30 on 03-04 in Kigali
DAY1 = datetime(2025, 3, 3, 7, 0, tzinfo=timezone.utc).timestamp()
LATE = datetime(2025, 3, 3, 23, 30, tzinfo=timezone.utc).timestamp()


class Stream:
    """Builds one conversation's events with increasing timestamps."""

    def __init__(self, sender, start, channel="rest", metadata_channel=None):
        self.sender, self.t, self.channel, self.metadata_channel = sender, start, channel, metadata_channel
        self.events = []

    def add(self, kind, dt=0.1, **fields):
        self.t += dt
        self.events.append({"sender_id": self.sender, "event": kind, "timestamp": self.t, **fields})
        return self

    def session(self):
        return self.add("action", name="action_session_start").add("session_started").add("action", name="action_listen")

    def user(self, text, intent="inform"):
        metadata = {"channel": self.metadata_channel} if self.metadata_channel else {}
        return self.add("user", dt=5, text=text, input_channel=self.channel, metadata=metadata,
                        parse_data={"intent": {"name": intent, "confidence": 0.9}, "text": text})

    def slot(self, name, value):
        return self.add("slot", name=name, value=value)

    def action(self, name, dt=0.1):
        return self.add("action", dt=dt, name=name)

    def listen(self, latency):
        """action_listen exactly `latency` seconds after the last user event."""
        last_user = max(e["timestamp"] for e in self.events if e["event"] == "user")
        self.events.append({"sender_id": self.sender, "event": "action", "name": "action_listen",
                            "timestamp": last_user + latency})
        self.t = last_user + latency
        return self


def problem(pid, answer, level=1):
    return {"id": pid, "tid": "add1", "level": level, "answer": answer, "values": {}}


def math_state(pid, answer, tries=0, level=1, asked=False):
    state = {"module": "math", "problem": problem(pid, answer, level), "tries": tries}
    if asked:
        state["_asked"] = True
    return state


def learner_a():
    """SMS learner on day 1: onboarding, math (right, wrong, wrong second try), a fallback."""
    s = Stream("a" * 64, DAY1, channel="twilio_sms", metadata_channel="twilio_sms").session()
    s.user("hello", "greet").slot("language", "en").action("action_greet").add("bot", text="Hello").listen(0.4)
    s.user("math", "start_math").action("action_start_module").add("bot", text="Q1") \
        .slot("active_module", "math").slot("tutor_state", math_state("l1:a", 5, asked=True)) \
        .action("tutor_form").slot("tutor_state", math_state("l1:a", 5)).listen(0.6)
    s.user("5").slot("answer", "5").action("tutor_form").add("bot", text="Right") \
        .slot("answer", None).slot("tutor_state", math_state("l1:b", 7, asked=True)) \
        .slot("tutor_state", math_state("l1:b", 7)).listen(0.8)                       # right, level 1
    s.user("three").slot("answer", "three").action("tutor_form") \
        .slot("tutor_state", math_state("l1:b", 7, tries=1, asked=True)) \
        .slot("tutor_state", math_state("l1:b", 7, tries=1)).listen(1.0)              # wrong, first try
    s.user("eight").slot("answer", "eight").action("tutor_form") \
        .slot("tutor_state", math_state("l2:c", 30, level=2, asked=True)) \
        .slot("tutor_state", math_state("l2:c", 30, level=2)).listen(1.2)             # wrong, second try
    s.user("repeat", "repeat").action("action_repeat").listen(0.2)                    # not graded
    s.user("thirty").slot("answer", "thirty").action("tutor_form") \
        .slot("tutor_state", math_state("l2:d", 12, level=2)).listen(1.4)             # right, level 2
    s.user("blorp", "nlu_fallback").action("action_handle_fallback").listen(0.3)      # fallback
    s.user("stop", "stop").action("action_stop_module").slot("active_module", None) \
        .slot("tutor_state", None).listen(0.5)
    return s.events


def learner_b():
    """REST learner whose first turn is late on day 1 UTC = day 2 in Kigali; reading."""
    s = Stream("b" * 64, LATE).session()
    s.user("nsomera inkuru", "start_reading").action("action_start_module") \
        .slot("active_module", "reading").listen(2.0)
    s.user("ku isoko").action("tutor_form").listen(3.0)
    return s.events


def learner_phone():
    """A sender id that is a raw phone number (a misconfigured channel): never printed."""
    s = Stream(PHONE, DAY1 + 60).session()
    s.user("hi", "greet").listen(0.7)
    return s.events


@pytest.fixture
def databases(tmp_path):
    events_url = f"sqlite:///{tmp_path / 'events.db'}"
    broker = BufferedSQLEventBroker(events_url, spool_path=tmp_path / "spool.sqlite", start=False)
    for event in learner_a() + learner_b() + learner_phone():
        broker.publish(event)
    broker.flush_all()
    broker.stop()

    progress_url = f"sqlite:///{tmp_path / 'progress.db'}"

    async def fill():
        store = ProgressStore(progress_url, spool_path=str(tmp_path / "progress-queue.sqlite"))
        await store.save("a" * 64, "math", Progress(attempts=4, correct=2, level=2))
        await store.save("c" * 64, "math", Progress(attempts=10, correct=9, level=2))
        await store.save("d" * 64, "math", Progress(attempts=3, correct=1, level=1))
        await store.save("d" * 64, "reading", Progress(attempts=5, correct=5, level=1))
        await store.dispose()

    asyncio.run(fill())
    return events_url, progress_url


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def written(databases, tmp_path):
    events_url, progress_url = databases
    out = tmp_path / "reports"
    files = report.build_report(events_url, out, progress_url)
    return out, files


def test_all_tables_charts_and_markdown_are_written(written):
    out, files = written
    expected = {"summary.csv", "daily.csv", "turns_by_module_channel.csv", "math_accuracy_by_level.csv",
                "math_progress_by_level.csv", "latency_by_channel.csv", "learners_sessions_per_day.png",
                "turns_by_module_channel.png", "math_accuracy_by_level.png", "turn_latency.png",
                "fallback_rate_per_day.png", "report.md"}
    assert set(files) == expected
    for name in expected:
        assert (out / name).stat().st_size > 0
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_learners_and_sessions_per_day_in_kigali_time(written):
    out, _ = written
    daily = {r["date"]: r for r in read_csv(out / "daily.csv")}
    assert sorted(daily) == ["2025-03-03", "2025-03-04"]
    d1, d2 = daily["2025-03-03"], daily["2025-03-04"]
    assert (d1["learners"], d1["new_learners"], d1["sessions"], d1["turns"]) == ("2", "2", "2", "10")
    assert (d2["learners"], d2["new_learners"], d2["sessions"], d2["turns"]) == ("1", "1", "1", "2")
    assert (d1["fallback_turns"], d1["fallback_rate"]) == ("1", "0.1")


def test_turns_per_module_and_channel(written):
    out, _ = written
    table = {(r["module"], r["channel"]): int(r["turns"]) for r in read_csv(out / "turns_by_module_channel.csv")}
    # learner a: hello (none), math..stop (7 in math: math,5,three,eight,repeat,thirty,blorp + stop)
    assert table == {("none", "twilio_sms"): 1, ("math", "twilio_sms"): 8, ("reading", "rest"): 2,
                     ("none", "rest"): 1}


def test_math_accuracy_per_level_from_the_events(written):
    out, _ = written
    rows = {r["level"]: r for r in read_csv(out / "math_accuracy_by_level.csv")}
    # level 1: "5" right, "three" wrong, "eight" wrong (second try); level 2: "thirty" right
    assert (rows["1"]["graded_answers"], rows["1"]["correct"], rows["1"]["accuracy"]) == ("3", "1", "0.3333")
    assert (rows["2"]["graded_answers"], rows["2"]["correct"], rows["2"]["accuracy"]) == ("1", "1", "1.0")


def test_math_progress_per_level_from_the_progress_store(written):
    out, _ = written
    rows = {r["level"]: r for r in read_csv(out / "math_progress_by_level.csv")}
    assert (rows["1"]["learners"], rows["1"]["attempts"], rows["1"]["correct"]) == ("1", "3", "1")
    assert (rows["2"]["learners"], rows["2"]["attempts"], rows["2"]["correct"], rows["2"]["accuracy"]) == \
        ("2", "14", "11", "0.7857")


def test_latency_and_fallback_rate(written):
    out, _ = written
    latency = {r["channel"]: r for r in read_csv(out / "latency_by_channel.csv")}
    # twilio_sms: 0.4 0.6 0.8 1.0 1.2 0.2 1.4 0.3 0.5 -> median 0.6 s
    assert latency["twilio_sms"]["turns"] == "9" and latency["twilio_sms"]["median_ms"] == "600"
    assert latency["rest"]["turns"] == "3" and latency["rest"]["median_ms"] == "2000"  # 2.0 3.0 0.7
    assert latency["all"]["turns"] == "12" and latency["all"]["max_ms"] == "3000"
    summary = {r["metric"]: r["value"] for r in read_csv(out / "summary.csv")}
    assert summary["turns"] == "12" and summary["learners"] == "3" and summary["sessions"] == "3"
    assert summary["fallback_turns"] == "1" and summary["fallback_rate"] == "0.0833"
    assert summary["median_turn_latency_ms"] == "750"  # (0.7 + 0.8) / 2 of the 12 turns
    assert summary["math_graded_answers"] == "4" and summary["math_accuracy"] == "0.5"


def test_no_sender_ids_texts_or_phone_numbers_in_the_output(written):
    out, files = written
    for path in files.values():
        if path.suffix == ".png":
            continue
        text = path.read_text(encoding="utf-8")
        for secret in ("250788123456", "a" * 64, "b" * 64, "nsomera", "thirty", "blorp"):
            assert secret not in text, f"{secret!r} leaked into {path.name}"


def test_scrub_and_channel_names():
    assert report.scrub("+250 788 123 456") == report.REDACTED
    assert report.scrub("0788123456") == report.REDACTED
    assert report.scrub(0.25) == 0.25 and report.scrub("twilio_sms") == "twilio_sms"
    assert report.channel_name("+250788123456") == "other"
    assert report.channel_name("Twilio_Voice") == "twilio_voice"
    assert report.channel_name(None) == "unknown"


def test_since_and_until_select_days(databases, tmp_path):
    events_url, progress_url = databases
    out = tmp_path / "day2"
    report.build_report(events_url, out, progress_url, since=datetime(2025, 3, 4).date())
    assert [r["date"] for r in read_csv(out / "daily.csv")] == ["2025-03-04"]


def test_command_line(databases, tmp_path):
    events_url, progress_url = databases
    out = tmp_path / "cli"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "report.py"), "--events-url", events_url,
                             "--progress-url", progress_url, "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "report written" in result.stdout and (out / "summary.csv").exists()

    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "report.py"), "--events-url",
                          "postgresql://postgres@127.0.0.1:1/none", "--out", str(tmp_path / "bad")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "could not read the events" in bad.stderr


def test_recorded_outcomes_win_over_regrading_with_todays_checker(tmp_path):
    """A checker change must not rewrite history: the outcome recorded by the tutor counts."""
    s = Stream("e" * 64, DAY1).session()
    s.user("math", "start_math").action("action_start_module").add("bot", text="Q1") \
        .slot("active_module", "math").slot("tutor_state", math_state("l3:a", 7, level=3))
    # today's checker would call "banana" wrong; the tutor of the day graded it right at level 3
    s.user("banana").slot("answer", "banana").action("tutor_form") \
        .add("bot", text="Right", metadata={"graded": {"module": "math", "correct": True, "level": 3}}) \
        .slot("tutor_state", math_state("l3:b", 9, level=3)).listen(0.5)
    # a graded reading answer is not a math answer
    s.user("ku isoko").slot("answer", "ku isoko").action("tutor_form") \
        .add("bot", text="Yes", metadata={"graded": {"module": "reading", "correct": False, "level": 1}}).listen(0.5)
    analysis = report.analyse((i, e["sender_id"], e) for i, e in enumerate(s.events))
    outcomes = [t.math_outcome() for t in analysis.turns]
    assert outcomes == [None, (3, True), None]
