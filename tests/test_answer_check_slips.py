"""The answer checker on what learners, keypads and speech recognisers produce.

Slips (actions/number_slips.py), spoken digit conventions, the held-out table's shape and the
accuracy report (scripts/answer_check_report.py). The accuracy on the held-out table is
reported, never asserted: it measures the checker on data it was not tuned on.
"""
import csv
import importlib.util
from pathlib import Path

import pytest

from actions import answer_check
from actions.answer_check import AnswerCheck, check_math_answer, parse_number
from actions.number_slips import REAL_WORDS_PATH, SlipReader, load_real_words

ROOT = Path(__file__).resolve().parents[1]


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ slips
@pytest.mark.parametrize("message, value", [
    ("fivd", 5), ("sevem", 7), ("twemty", 20), ("humdred", 100), ("gatamu", 5), ("umumani", 8),  # keypad
    ("twentyfive", 25), ("fivehundredandtwenty", 520), ("makumyabirinagatanu", 25),  # no spaces
    ("makumyabiriNa gatanu", 25), ("mirongoitatu", 30), ("ibihumbibibiri", 2000),
    ("fourtey", 40), ("thirtean", 13), ("eightty", 80), ("thowsand", 1000), ("gatandtu", 6),  # closeness
    ("kacyenda", 9), ("izero", 0), ("ga-tanu", 5), ("ka-bili", 2),  # prefixes, hyphenated stems
])
def test_slips_are_read_as_numbers(message, value):
    assert parse_number(message, "en") == value


@pytest.mark.parametrize("message", [
    "then", "weight", "I'm thirsty", "fifth", "seventh", "fine thanks", "nice", "dive", "your turn",
    "often", "none", "someone", "abana", "uwo", "tow", "teh",  # real words and typos of them
    "gatabu",  # as close to gatanu (5) as to gatatu (3): no reading
])
def test_real_words_and_ties_are_not_numbers(message):
    assert check_math_answer(5, message, "en") == AnswerCheck(False, None)


def test_real_words_list_blocks_every_rule():
    words = load_real_words()
    assert {"then", "weight", "thirsty", "tow", "uwo", "murongo"} <= words
    assert "fifth" not in words  # a fraction word now (the lexicon lists it), never a slip
    reader = SlipReader({"ten": ("en", (10,)), "five": ("en", (5,))}, {"en": ["and"]}, ["ten", "five"],
                        {"cutoff_by_length": {4: 0.75}, "keypad": ["def", "mno"]}, frozenset({"then", "dive"}))
    assert reader.resolve("then") is None and reader.resolve("dive") is None
    assert reader.resolve("tenn") == ("ten",)
    assert reader.resolve("fivd") == ("five",)  # keypad: d and e share a key
    assert reader.resolve("tenfive") == ("ten", "five")


def test_real_words_file_is_what_the_script_generates():
    script = _script("real_words_near_numbers")
    assert script.DEFAULT_WORDS.exists(), "no English word list: apt-get install wamerican (.ci/run installs it)"
    english = [w.strip() for w in script.DEFAULT_WORDS.read_text().splitlines() if "'" not in w]
    assert script.near_number_words(english + script.kinyarwanda_words() + list(script.project_words())) == sorted(
        load_real_words())
    assert REAL_WORDS_PATH.read_text().startswith("#")


def test_slips_are_cached_per_word():
    answer_check._SLIPS.resolve.cache_clear()
    answer_check._word_tokens.cache_clear()
    parse_number("fourtey", "en")
    parse_number("fourtey", "en")
    assert answer_check._SLIPS.resolve.cache_info().misses == 1  # the slip is read once
    assert answer_check._word_tokens.cache_info().hits >= 1  # then the word's tokens come from the cache
    assert parse_number("fourtey", "en") == 40


# ------------------------------------------------------- spoken conventions
@pytest.mark.parametrize("message, value", [
    ("point o five", 0.05), ("nine o five", 905), ("one triple oh one", 10001), ("two double o eight", 2008),
    ("double two", 22), ("point fifteen", 0.15), ("twelve point ninety-nine", 12.99),
    ("five twenty four", 524), ("three and a half million", 3500000), ("two five", 25),
])
def test_spoken_digit_conventions(message, value):
    assert parse_number(message, "en") == pytest.approx(value)


@pytest.mark.parametrize("message", ["oh", "o", "oh no", "the answer is o", "double", "one second please",
                                     "hold on one moment"])
def test_spoken_words_alone_are_not_numbers(message):
    assert parse_number(message, "en") is None


@pytest.mark.parametrize("expected, message", [
    (13, "1.3"), (13, "1,3"), (13, "one point three"), (13, "rimwe koma gatatu"), (1.3, "13"),
    (1.3, "thirteen"), (1.3, "cumi na gatatu"), (13, "1.30"),
    (13, "rimwe n'ibice gatatu"), (13, "1 3/10"), (13, "one and three tenths"), (13, "one point three hundred"),
])
def test_one_point_three_is_never_thirteen(expected, message):
    assert not check_math_answer(expected, message, "en").correct


def test_ambiguous_thousands_count_lets_the_expected_answer_decide():
    message = "ibihumbi makumyabiri n'icyenda"  # 29 thousand, or 20 thousand and 9
    assert check_math_answer(29000, message, "rw") == AnswerCheck(True, 29000)
    assert check_math_answer(20009, message, "rw") == AnswerCheck(True, 20009)
    assert not check_math_answer(25000, message, "rw").correct
    assert parse_number("ibihumbi magana cyenda na mirongo irindwi na bitanu na mirongo itandatu", "rw") == 975060


# ------------------------------------------------------------- held-out + report
@pytest.mark.parametrize("name, least", [("math_answers_heldout.csv", 200), ("math_answers_heldout2.csv", 100),
                                         ("math_answers_heldout3.csv", 60), ("math_answers_heldout4.csv", 60),
                                         ("math_answers_heldout5.csv", 30),
                                         ("math_answers_heldout6.csv", 200),
                                         ("math_answers_heldout7.csv", 100)])
def test_heldout_table_names_its_sources(name, least):
    path = ROOT / "tests" / "data" / name
    text = path.read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("#")]
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    assert len(rows) >= least and {r["language"] for r in rows} == {"en", "rw"}
    sources = {r["source"] for r in rows}
    assert all(any(f"  {source} " in line or f"#   {source} " in line for line in header) for source in sources)
    text_of_header = " ".join(header)
    assert any(lic in text_of_header for lic in ("MIT", "Apache-2.0", "BSD", "CC0", "LGPL", "CC BY"))


def test_report_covers_both_tables_per_language():
    report = _script("answer_check_report")
    results = report.report()
    heldout = ["held-out", "held-out 2", "held-out 3", "held-out 4", "held-out 5", "held-out 6", "held-out 7"]
    assert set(results) == {"main", *heldout}
    assert results["main"]["accuracy"] == 1.0
    assert all(set(results[name]["languages"]) == {"en", "rw"} for name in heldout)
    lines = report.summary_lines(results, failures=True)
    assert lines[0].startswith("answer check, main table: 100.0%")
    assert [line.split(":")[0] for line in lines if line.startswith("answer check")] == [
        f"answer check, {name} table" for name in ["main", *heldout]]
    assert len(lines) == 1 + len(heldout) + sum(len(results[name]["failures"]) for name in heldout)
