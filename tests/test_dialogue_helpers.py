"""Pure helpers behind repeat, fallback, names and the progress report."""
import pytest

from actions.conversation import last_bot_turn, trailing_fallbacks
from actions.module_actions import progress_report
from actions.onboarding import clean_name
from actions.tutoring.base import Progress


def user(text, intent="greet"):
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}


def bot(text):
    return {"event": "bot", "text": text, "data": {}}


def test_last_bot_turn_is_what_the_bot_said_before_the_latest_message():
    events = [user("hi"), bot("Hello!"), bot("What is your name?"), user("repeat", "repeat")]
    assert [e["text"] for e in last_bot_turn(events)] == ["Hello!", "What is your name?"]


def test_last_bot_turn_skips_older_turns():
    events = [user("hi"), bot("old"), user("math"), bot("3 + 4?"), user("repeat", "repeat")]
    assert [e["text"] for e in last_bot_turn(events)] == ["3 + 4?"]


def test_last_bot_turn_empty_at_the_start():
    assert last_bot_turn([user("repeat", "repeat")]) == []


def test_trailing_fallbacks_counts_only_consecutive_misses():
    fb = lambda: user("xqz", "nlu_fallback")  # noqa: E731
    assert trailing_fallbacks([user("hi"), fb()]) == 1
    assert trailing_fallbacks([fb(), user("hi"), fb(), bot("?"), fb()]) == 2
    assert trailing_fallbacks([fb(), user("hi")]) == 0
    assert trailing_fallbacks([user("asdf", "out_of_scope"), fb()]) == 2  # off-topic counts too


@pytest.mark.parametrize("said, name", [
    ("Aline", "Aline"), ("my name is aline", "Aline"), ("I'm Jean Paul", "Jean Paul"),
    ("nitwa Uwase", "Uwase"), ("izina ryanjye ni Mugisha", "Mugisha"), ("call me Keza.", "Keza"),
    ("hello", None), ("yes", None), ("25", None), ("my name is", None),
    ("I do not want to tell you my name today", None), ("", None),
])
def test_clean_name(said, name):
    assert clean_name(said) == name


def test_progress_report_lists_tried_modules_in_the_learners_language():
    summary = {"math": Progress(attempts=4, correct=3, level=2, points=40), "reading": Progress()}
    en = progress_report(summary, "en")
    rw = progress_report(summary, "rw")
    assert en == ["Math: 40 points, level 2, 3 of 4 right (75%).", "Total: 40 points."]
    assert rw[0].startswith("Imibare: amanota 40, urwego 2")
    assert rw[-1] == "Amanota yose hamwe: 40."


def test_progress_report_when_nothing_tried():
    assert progress_report({}, "rw") == ["Nturatangira isomo. Hitamo imibare, icyongereza, gusoma cyangwa impaka."]
