"""MathTutor (actions/tutoring/math.py, content actions/content/math.yml)."""
import json
import random

import pytest

from actions.tutoring.base import Progress, Reply, Tutor
from actions.tutoring.math import MathTutor, load_content

LANGS = ("en", "rw")

# The answer of every template, computed here independently of the YAML expressions.
EXPECTED = {
    "add1": lambda v: v["a"] + v["b"],
    "mangoes1": lambda v: v["a"] + v["b"],
    "animals1": lambda v: v["a"] + v["b"],
    "children1": lambda v: v["a"] + v["b"],
    "add2": lambda v: v["a"] + v["b"],
    "sub2": lambda v: v["a"] - v["b"],
    "eggs2": lambda v: v["a"] - v["b"],
    "pupils2": lambda v: v["a"] + v["b"],
    "busseats2": lambda v: v["a"] - v["b"],
    "mul3": lambda v: v["a"] * v["b"],
    "div3": lambda v: v["q"],
    "banana3": lambda v: v["r"] * v["n"],
    "legs3": lambda v: v["c"] * 4,
    "mandazi3": lambda v: v["e"],
    "trip3": lambda v: v["k"],
    "change4": lambda v: v["paid"] - v["p"],
    "moto4": lambda v: v["p"] * v["n"],
    "bus4": lambda v: v["p"] * v["n"],
    "banana4": lambda v: v["p"] * v["n"],
    "fees4": lambda v: v["f"] - v["paid"],
    "beans5": lambda v: v["paid"] - v["n"] * v["p"],
    "milk5": lambda v: v["c"] * v["l"] * v["p"],
    "huye5": lambda v: 2 * v["p"] + v["m"],
    "maize5": lambda v: v["s"] * v["k"] - v["keep"],
    "savings5": lambda v: v["w"] * v["n"] - v["b"],
    "shopping5": lambda v: v["n"] * v["p"] + v["m"] * v["r"],
}


@pytest.fixture
def tutor():
    return MathTutor(random.Random(2024))


def state_with(tutor, template_id, tries=0, **values):
    return {"module": "math", "problem": tutor.make_problem(template_id, **values), "tries": tries}


def all_messages_ok(reply):
    for message in reply.messages:
        assert message.strip()
        assert len(message) <= 300, message
        assert message.isascii(), message
        assert "{" not in message and "}" not in message, message


# --- content and generation ------------------------------------------------------------

def test_is_a_tutor_named_math(tutor):
    assert isinstance(tutor, Tutor)
    assert tutor.name == "math"


def test_content_has_five_levels_with_templates_in_both_languages():
    content = load_content()
    assert sorted(content["levels"]) == [1, 2, 3, 4, 5]
    ids = []
    for level, templates in content["levels"].items():
        assert len(templates) >= 4, level
        for template in templates:
            ids.append(template["id"])
            for lang in LANGS:
                for part in ("q", "hint", "worked"):
                    assert template[lang][part].strip(), (template["id"], lang, part)
                    assert template[lang][part].isascii(), (template["id"], lang, part)
            assert template["en"]["q"] != template["rw"]["q"]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(EXPECTED), "a template without an independent answer check in this test"
    for key in ("intro", "praise", "points", "level_up", "level_down", "wrong_first", "wrong_second",
                "not_number", "next", "hint", "no_problem"):
        for lang in LANGS:
            assert content["texts"][key][lang], (key, lang)


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5])
def test_generated_problems_have_whole_answers_in_both_languages(tutor, level):
    templates_used = set()
    for _ in range(300):
        problem = tutor.generate_problem(level)
        templates_used.add(problem["tid"])
        assert problem["level"] == level
        assert problem["id"].startswith(f"l{level}:")
        assert isinstance(problem["answer"], int) and not isinstance(problem["answer"], bool)
        assert problem["answer"] >= 0
        assert problem["answer"] == EXPECTED[problem["tid"]](problem["values"])
        json.dumps(problem)  # kept in the tutor_state slot
        texts = {lang: tutor.render(problem, lang) for lang in LANGS}
        for lang in LANGS:
            for part, text in texts[lang].items():
                assert "{" not in text and "}" not in text, text
                assert text.isascii() and len(text) <= 200, text
            assert str(problem["answer"]) in texts[lang]["worked"]
            assert texts[lang]["q"].endswith("?")
        assert texts["en"]["q"] != texts["rw"]["q"]
        assert "ngahe" in texts["rw"]["q"]  # angahe / bingahe / bangahe / zingahe ...
    assert templates_used == {t["id"] for t in load_content()["levels"][level]}


def test_level_one_is_single_digit_sums(tutor):
    for _ in range(200):
        values = tutor.generate_problem(1)["values"]
        assert 1 <= values["a"] <= 9 and 1 <= values["b"] <= 9


def test_level_two_is_two_digit_addition_and_subtraction(tutor):
    for _ in range(200):
        problem = tutor.generate_problem(2)
        assert 10 <= problem["values"]["a"] <= 99 and 10 <= problem["values"]["b"] <= 99
        q = tutor.render(problem, "en")["q"]
        assert "plus" in q or "minus" in q or "left" in q or "in all" in q or "empty" in q


def test_division_problems_divide_exactly(tutor):
    for _ in range(200):
        problem = tutor.generate_problem(3)
        if problem["tid"] == "div3":
            assert problem["values"]["a"] == problem["answer"] * problem["values"]["b"]


def test_money_problems_are_in_rwf_and_set_in_rwanda(tutor):
    for _ in range(100):
        problem = tutor.generate_problem(4)
        assert "RWF" in tutor.render(problem, "en")["q"]
        assert "amafaranga" in tutor.render(problem, "rw")["q"].lower()
    every_text = json.dumps(load_content())
    for place_or_thing in ("Kimironko", "Huye", "Kigali", "Nyabugogo", "moto", "beans", "bananas", "cows",
                           "School fees", "ibishyimbo", "inka", "ibitoki", "isoko"):
        assert place_or_thing in every_text, place_or_thing


def test_multi_step_problems_show_two_steps(tutor):
    for _ in range(100):
        problem = tutor.generate_problem(5)
        worked = tutor.render(problem, "en")["worked"]
        assert worked.count(" is ") >= 2, worked


def test_generated_problems_do_not_repeat(tutor):
    seen, last = [], None
    for _ in range(60):
        problem = tutor.generate_problem(1, seen, avoid=last)
        assert problem["id"] not in seen
        seen.append(problem["id"])
        last = problem["id"]


def test_a_session_never_repeats_a_problem_and_records_ids_in_seen(tutor):
    reply = tutor.start("en", Progress(level=2))
    ids = [reply.state["problem"]["id"]]
    for _ in range(30):
        problem = reply.state["problem"]
        reply = tutor.answer(str(problem["answer"]), "en", reply.progress, reply.state)
        ids.append(reply.state["problem"]["id"])
    assert len(ids) == len(set(ids))
    assert set(ids) <= set(reply.progress.seen)
    # a problem already in Progress.seen is not given again either
    again = tutor.start("en", Progress(level=1, seen=list(ids)))
    assert again.state["problem"]["id"] not in ids


def test_generation_is_seedable():
    a, b = MathTutor(random.Random(7)), MathTutor(random.Random(7))
    assert [a.generate_problem(4)["id"] for _ in range(10)] == [b.generate_problem(4)["id"] for _ in range(10)]
    assert a.start("rw", Progress()).messages == b.start("rw", Progress()).messages


# --- start, prompt, hint ---------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGS)
def test_start_introduces_and_asks_a_problem_of_the_learner_level(tutor, lang):
    reply = tutor.start(lang, Progress(level=3))
    assert isinstance(reply, Reply)
    all_messages_ok(reply)
    assert reply.outcome is None
    assert reply.state["module"] == "math" and reply.state["tries"] == 0
    assert reply.state["problem"]["level"] == 3
    assert "3" in reply.messages[0]
    assert reply.messages[-1] == tutor.render(reply.state["problem"], lang)["q"]
    assert reply.messages[0] == ("Welcome to math! You are at level 3. Answer each question with a number." if lang == "en"
                                 else "Ikaze mu mibare! Uri ku rwego rwa 3. Subiza buri kibazo ukoresheje umubare.")
    json.dumps(reply.state)


def test_start_does_not_change_the_callers_progress(tutor):
    progress = Progress(level=2, seen=["l2:11+11"])
    reply = tutor.start("en", progress)
    assert progress.seen == ["l2:11+11"]
    assert reply.progress.seen[-1] == reply.state["problem"]["id"]


def test_prompt_repeats_the_current_problem_in_either_language(tutor):
    state = state_with(tutor, "add2", a=34, b=58)
    assert tutor.prompt("en", state) == "What is 34 plus 58?"
    assert tutor.prompt("rw", state) == "34 wongeyeho 58 ni bingahe?"
    assert tutor.prompt("en", {}) == load_content()["texts"]["no_problem"]["en"]


def test_hint_gives_the_hint_of_the_current_problem_only(tutor):
    state = state_with(tutor, "beans5", n=3, p=800, paid=5000)
    progress = Progress(level=5, attempts=4, points=100)
    reply = tutor.hint("en", progress, state)
    assert reply.messages == ["Hint: First find the cost: 3 times 800. Then take it away from 5000."]
    assert reply.state == state and reply.progress == progress and reply.outcome is None
    rw = tutor.hint("rw", progress, state)
    assert rw.messages[0].startswith("Inama: Banza ubare igiciro: 3 ukubye na 800.")


def test_hint_without_a_problem_starts_one(tutor):
    reply = tutor.hint("en", Progress(), {})
    assert reply.state["problem"]["level"] == 1


# --- grading -------------------------------------------------------------------------------

@pytest.mark.parametrize("lang,text", [
    ("en", "92"),
    ("en", "ninety two"),
    ("en", "ninety-two"),
    ("en", "I think it is 92."),
    ("en", "The answer is ninety two"),
    ("rw", "92"),
    ("rw", "mirongo icyenda na kabiri"),
    ("rw", "Ni 92"),
    ("rw", "Igisubizo ni mirongo icyenda na kabiri"),
])
def test_right_answers_in_digits_words_and_sentences(tutor, lang, text):
    state = state_with(tutor, "add2", a=34, b=58)
    reply = tutor.answer(text, lang, Progress(level=2), state)
    assert reply.outcome is True
    assert reply.progress.correct == 1 and reply.progress.attempts == 1
    assert reply.progress.points == 20 and reply.progress.streak == 1
    assert reply.state["problem"]["id"] != "l2:34+58"  # next problem in the same reply
    assert reply.messages[-1].startswith("Next: " if lang == "en" else "Ikibazo gikurikira: ")
    assert reply.messages[-1].endswith(tutor.render(reply.state["problem"], lang)["q"])
    all_messages_ok(reply)


def test_praise_varies(tutor):
    praise = set()
    for _ in range(30):
        reply = tutor.answer("92", "en", Progress(level=2), state_with(tutor, "add2", a=34, b=58))
        praise.add(reply.messages[0].split("+")[0])
    assert len(praise) >= 3


def test_money_answers_with_currency(tutor):
    state = state_with(tutor, "change4", p=650, paid=1000)
    assert tutor.answer("350 RWF", "en", Progress(level=4), state).outcome is True
    assert tutor.answer("amafaranga 350", "rw", Progress(level=4), state).outcome is True
    assert tutor.answer("magana atatu na mirongo itanu", "rw", Progress(level=4), state).outcome is True


@pytest.mark.parametrize("lang", LANGS)
def test_wrong_then_hint_then_worked_answer_and_next_problem(tutor, lang):
    state = state_with(tutor, "add2", a=34, b=58)
    first = tutor.answer("82", lang, Progress(level=2, streak=2), state)
    assert first.outcome is False
    assert first.state["tries"] == 1
    assert first.state["problem"]["id"] == "l2:34+58"  # same problem again
    assert len(first.messages) == 1
    assert tutor.render(state["problem"], lang)["hint"] in first.messages[0]
    assert "92" not in first.messages[0]
    assert first.progress.attempts == 1 and first.progress.streak == 0 and first.progress.misses == 0

    second = tutor.answer("eighty", lang, first.progress, first.state)
    assert second.outcome is False
    assert second.progress.attempts == 2 and second.progress.misses == 1 and second.progress.correct == 0
    assert "92" in second.messages[0]
    assert tutor.render(state["problem"], lang)["worked"] in second.messages[0]
    assert second.state["tries"] == 0
    assert second.state["problem"]["id"] != "l2:34+58"
    assert second.messages[-1].endswith(tutor.render(second.state["problem"], lang)["q"])
    all_messages_ok(second)


def test_right_on_the_second_try_gives_half_points(tutor):
    state = state_with(tutor, "mul3", a=6, b=7)
    first = tutor.answer("40", "en", Progress(level=3), state)
    second = tutor.answer("42", "en", first.progress, first.state)
    assert second.outcome is True
    assert second.progress.points == 15
    assert second.progress.correct == 1 and second.progress.attempts == 2 and second.progress.streak == 1


@pytest.mark.parametrize("lang,text", [("en", "I don't know"), ("rw", "sinzi"), ("en", ""), ("en", "is it 7 or 8")])
def test_no_number_asks_again_without_counting(tutor, lang, text):
    state = state_with(tutor, "add1", tries=1, a=3, b=4)
    progress = Progress(attempts=5, correct=2, streak=1)
    reply = tutor.answer(text, lang, progress, state)
    assert reply.outcome is None
    assert reply.progress == progress
    assert reply.state == state
    assert tutor.render(state["problem"], lang)["q"] in reply.messages[0]
    assert ("number" if lang == "en" else "umubare") in reply.messages[0]


def test_answer_without_a_current_problem_starts(tutor):
    reply = tutor.answer("5", "en", Progress(), {})
    assert reply.outcome is None and reply.progress.attempts == 0
    assert reply.state["problem"]["level"] == 1


def test_answer_does_not_mutate_its_inputs(tutor):
    state = state_with(tutor, "add1", a=3, b=4)
    progress = Progress(seen=["x"])
    snapshot = json.dumps(state)
    tutor.answer("7", "en", progress, state)
    tutor.answer("6", "en", progress, state)
    assert json.dumps(state) == snapshot
    assert progress == Progress(seen=["x"])


# --- levels ------------------------------------------------------------------------------------

def _right(tutor, reply, lang="en"):
    return tutor.answer(str(reply.state["problem"]["answer"]), lang, reply.progress, reply.state)


def _wrong(tutor, reply, lang="en"):
    return tutor.answer(str(reply.state["problem"]["answer"] + 1), lang, reply.progress, reply.state)


@pytest.mark.parametrize("lang,note", [("en", "You move up to level 2."), ("rw", "Uzamutse ku rwego rwa 2.")])
def test_three_right_in_a_row_moves_up_a_level(tutor, lang, note):
    reply = tutor.start(lang, Progress())
    reply = _right(tutor, _right(tutor, reply, lang), lang)
    assert reply.progress.level == 1 and reply.progress.streak == 2
    reply = _right(tutor, reply, lang)
    assert reply.progress.level == 2 and reply.progress.streak == 3
    assert note in reply.messages[0]
    assert reply.state["problem"]["level"] == 2
    assert reply.progress.points == 30
    reply = _right(tutor, reply, lang)
    assert reply.progress.points == 50  # 10 x level


def test_a_wrong_try_breaks_the_streak(tutor):
    reply = tutor.start("en", Progress())
    reply = _right(tutor, _right(tutor, reply))
    reply = _right(tutor, _wrong(tutor, reply))
    assert reply.progress.level == 1 and reply.progress.streak == 1


def test_level_stops_at_five(tutor):
    reply = tutor.start("en", Progress(level=5, streak=2))
    reply = _right(tutor, reply)
    assert reply.progress.level == 5
    assert "level" not in reply.messages[0].lower()


@pytest.mark.parametrize("lang,note", [("en", "Let's practise a bit more at level 2."),
                                       ("rw", "Reka twimenyereze gato ku rwego rwa 2.")])
def test_three_missed_problems_in_a_row_move_down_a_level(tutor, lang, note):
    reply = tutor.start(lang, Progress(level=3))
    for missed in (1, 2):
        reply = _wrong(tutor, _wrong(tutor, reply, lang), lang)
        assert reply.progress.misses == missed and reply.progress.level == 3
    reply = _wrong(tutor, _wrong(tutor, reply, lang), lang)
    assert reply.progress.level == 2
    assert note in reply.messages[-1]
    assert reply.state["problem"]["level"] == 2
    all_messages_ok(reply)


def test_a_right_answer_resets_the_misses(tutor):
    reply = tutor.start("en", Progress(level=3))
    reply = _wrong(tutor, _wrong(tutor, reply))
    reply = _wrong(tutor, _wrong(tutor, reply))
    reply = _right(tutor, reply)
    assert reply.progress.misses == 0
    reply = _wrong(tutor, _wrong(tutor, reply))
    assert reply.progress.level == 3


def test_level_stops_at_one(tutor):
    reply = tutor.start("en", Progress(level=1, misses=2))
    reply = _wrong(tutor, _wrong(tutor, reply))
    assert reply.progress.level == 1
    assert "level" not in reply.messages[-1].lower()


@pytest.mark.parametrize("lang", LANGS)
def test_long_random_session_keeps_messages_short_and_plain(lang):
    tutor = MathTutor(random.Random(99))
    rng = random.Random(5)
    reply = tutor.start(lang, Progress())
    levels = set()
    for _ in range(200):
        choice = rng.random()
        if choice < 0.55:
            reply = _right(tutor, reply, lang)
        elif choice < 0.95:
            reply = _wrong(tutor, reply, lang)
        else:
            reply = tutor.answer("hmm", lang, reply.progress, reply.state)
        all_messages_ok(reply)
        json.dumps(reply.state)
        levels.add(reply.progress.level)
        assert 1 <= reply.progress.level <= 5
    assert len(levels) >= 3
