"""A learner completes each module through the running assistant (REST channel, no LLM),
and their progress is still there after the action server restarts."""
import uuid

import pytest


pytestmark = pytest.mark.e2e


def new_sender() -> str:
    return f"tut-{uuid.uuid4().hex[:10]}"


def current_answer(assistant, sender):
    return assistant.slot(sender, "tutor_state")["problem"]["answer"]


def test_math_session_levels_up_and_down_in_kinyarwanda_and_survives_a_restart(assistant):
    sender = new_sender()
    assert assistant.texts(sender, "ndashaka imibare")[0].startswith("Ikaze mu mibare! Uri ku rwego rwa 1.")
    for _ in range(3):
        replies = assistant.texts(sender, f"ni {current_answer(assistant, sender)}")
    assert any("Uzamutse ku rwego rwa 2" in t for t in replies), replies
    assert assistant.slot(sender, "tutor_state")["problem"]["level"] == 2

    # three problems missed (two wrong tries each) move the level back down
    for _ in range(3):
        wrong = current_answer(assistant, sender) + 1
        first = assistant.texts(sender, str(wrong))
        assert first[0].startswith("Si byo neza. Inama:")
        replies = assistant.texts(sender, str(wrong))
        assert replies[0].startswith("Wagerageje. Igisubizo ni")
    assert any("ku rwego rwa 1" in t for t in replies), replies

    assistant.texts(sender, "hagarika")
    assistant.stop_actions()
    assistant.start_actions()
    report = assistant.texts(sender, "amanota yanjye")
    assert report[0].startswith("Imibare: amanota 30, urwego 1, wakoze neza 3 kuri 9")


def test_math_answers_in_words_and_a_hint_in_english(assistant):
    sender = new_sender()
    assistant.texts(sender, "let's do math")
    hint = assistant.texts(sender, "I don't know")
    assert hint[0].startswith("Hint:") and len(hint) == 2  # hint, then the same question again
    words = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
             9: "nine", 10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen", 14: "fourteen", 15: "fifteen",
             16: "sixteen", 17: "seventeen", 18: "eighteen"}
    answer = current_answer(assistant, sender)
    replies = assistant.texts(sender, f"I think it is {words.get(answer, answer)}")
    assert replies[0].endswith("+10 points, 10 in all."), replies


def test_grammar_exercise(assistant):
    sender = new_sender()
    assistant.texts(sender, "teach me English")
    replies = assistant.texts(sender, "yesterday she go to the market")
    assert any("went" in t for t in replies), replies


def test_reading_story_with_three_questions(assistant):
    sender = new_sender()
    replies = assistant.texts(sender, "read me a story")
    assert any(t.startswith("Story:") for t in replies)
    assert replies[-1].startswith("Question 1:")
    for n in (2, 3):
        replies = assistant.texts(sender, "a red car")
        assert replies[0].startswith("Not quite."), replies  # the right answer is explained
        assert replies[-1].startswith(f"Question {n}:")
    replies = assistant.texts(sender, "a red car")
    assert any(t.startswith("You got 0 out of 3.") for t in replies), replies


def test_debate_round_in_kinyarwanda(assistant):
    sender = new_sender()
    replies = assistant.texts(sender, "ndashaka impaka")
    assert assistant.slot(sender, "active_module") == "debate"
    replies = assistant.texts(sender, "ndabyemera")
    replies = assistant.texts(sender, "ndabyemera kuko bituma abanyeshuri bagira isuku, urugero ku ishuri ryacu")
    assert len(replies) >= 2, replies  # structure feedback, then a counter-argument and an invitation
    assert assistant.slot(sender, "language") == "rw"


def test_graded_outcomes_are_recorded_in_the_event_stream(assistant):
    """Each graded answer leaves its outcome (module, correct, level) on the tutor's reply
    event, so the report counts what the tutor decided rather than re-grading."""
    sender = new_sender()
    assistant.texts(sender, "let's do math")
    assistant.texts(sender, str(current_answer(assistant, sender)))       # right, first try
    assistant.texts(sender, str(current_answer(assistant, sender) + 1))   # wrong, first try
    assistant.texts(sender, "I don't know")                               # a hint: not graded
    import requests

    events = requests.get(f"{assistant.url}/conversations/{sender}/tracker", timeout=30).json()["events"]
    graded = [e["metadata"]["graded"] for e in events if e["event"] == "bot" and "graded" in (e.get("metadata") or {})]
    assert graded == [{"module": "math", "correct": True, "level": 1, "first_try": True},
                      {"module": "math", "correct": False, "level": 1, "first_try": True}]
