"""Tests for actions/answer_check.py (the math answer checker).

The main test is the table tests/data/math_answers.csv (expected, message, language,
correct, understood); ``understood`` empty means None. Speed is NOT asserted here
(shared, noisy machines): see scripts/bench_answer_check.py.
"""
import copy
import csv
import dataclasses
import importlib.util
import math
from pathlib import Path

import pytest
import yaml

from actions import answer_check
from actions.answer_check import AnswerCheck, check_math_answer, parse_number

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "tests" / "data" / "math_answers.csv"


def _load_table():
    with open(TABLE, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


ROWS = _load_table()


def _number(text):
    text = text.strip()
    if not text:
        return None
    return float(text) if any(c in text for c in ".eE") else int(text)


def _same_understood(got, want):
    if want is None:
        return got is None
    if got is None or isinstance(got, bool):
        return False
    if isinstance(want, int) and not isinstance(got, int):
        return False  # whole values come back as int
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("row", ROWS, ids=[f"{i + 2}:{r['language']}:{r['message'][:40]}" for i, r in enumerate(ROWS)])
def test_table(row):
    expected = _number(row["expected"])
    want_correct = row["correct"].strip().lower() == "true"
    want_understood = _number(row["understood"])
    result = check_math_answer(expected, row["message"], row["language"])
    assert isinstance(result, AnswerCheck)
    assert result.correct is want_correct, result
    assert _same_understood(result.understood, want_understood), result


def test_table_size_and_languages():
    assert sum(r["language"] == "rw" for r in ROWS) >= 300
    assert sum(r["language"] == "en" for r in ROWS) >= 300
    assert set(r["language"] for r in ROWS) == {"en", "rw"}
    assert list(ROWS[0].keys()) == ["expected", "message", "language", "correct", "understood"]


def test_parse_number_agrees_with_check():
    """parse_number is the primary reading; check_math_answer differs only when an ambiguous
    message's other reading ("1,500"; "ibihumbi makumyabiri n'icyenda") is the expected answer."""
    differ = 0
    for row in ROWS:
        got = parse_number(row["message"], row["language"])
        check = check_math_answer(_number(row["expected"]), row["message"], row["language"])
        if check.understood != got:
            differ += 1
            assert check.correct and check.understood == _number(row["expected"]), row
    assert differ >= 3


def test_answer_check_is_small_frozen_dataclass():
    check = AnswerCheck(True, 5)
    assert [f.name for f in dataclasses.fields(AnswerCheck)] == ["correct", "understood"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        check.correct = False  # type: ignore[misc]
    assert check == AnswerCheck(True, 5)


def test_language_is_only_a_hint():
    for message in ("makumyabiri na gatanu", "twenty five", "25"):
        assert parse_number(message, "en") == parse_number(message, "rw") == parse_number(message, "fr") == 25


@pytest.mark.parametrize("expected", [17, 17.0])
@pytest.mark.parametrize("message", ["17", "17.0", "17.00", "seventeen", "cumi na karindwi"])
def test_int_and_float_expected(expected, message):
    assert check_math_answer(expected, message, "en") == AnswerCheck(True, 17)


def test_float_tolerance_but_not_rounding():
    assert check_math_answer(0.1 + 0.2, "0.3", "en").correct
    assert check_math_answer(1 / 3, "1/3", "en").correct
    assert not check_math_answer(1 / 3, "0.33", "en").correct


def test_whole_values_are_ints():
    assert type(parse_number("2.0", "en")) is int
    assert type(parse_number("1.5 million", "en")) is int
    assert type(parse_number("2.5", "en")) is float


@pytest.mark.parametrize("message", [
    None, "", " ", "\n\t", "?!.,;:", "-", "--5--", "n'", "n'n'n'", "a", "and", "na", "minus", "point", "/",
    "1/0", "0/0", "\x00\x01\x02", "\u200b\u200b", "ßüé", "😀" * 50, "١٢٣", "x" * 10_000,
    "9" * 10_000, "1," * 5_000, "1." * 5_000, "1 " * 5_000, "one " * 2_500, "n'" * 5_000,
    "makumyabiri na " * 700, "-" * 10_000, "1/" * 5_000, "e" * 10_000, "thousand " * 1_200,
    "mirongo " * 1_300, "ibihumbi " * 1_100, "and a half " * 900, "point " * 1_700,
])
def test_garbage_never_crashes(message):
    result = check_math_answer(5, message, "en")
    assert isinstance(result, AnswerCheck)
    assert result.understood is None or isinstance(result.understood, (int, float))
    assert parse_number(message, "rw") == result.understood


def test_long_message_keeps_the_answer_at_the_end():
    message = "blah " * 2_000 + "so the answer is 42"
    assert len(message) > 10_000
    assert check_math_answer(42, message, "en") == AnswerCheck(True, 42)


def test_huge_digit_strings_are_ignored_not_crashing():
    # Python 3.10.7+ refuses int() of > 4300 digits; the checker must never get there.
    assert parse_number("1" * 5_000, "en") is None
    assert parse_number("one " * 60, "en") is not None  # a long digit run is kept per word


def test_non_numeric_expected_is_not_correct():
    assert check_math_answer("abc", "5", "en") == AnswerCheck(False, 5)  # type: ignore[arg-type]
    assert check_math_answer(None, "5", "en") == AnswerCheck(False, 5)  # type: ignore[arg-type]


def test_lexicon_loaded_once_at_import():
    lexicon = answer_check._LEX
    check_math_answer(5, "gatanu", "rw")
    assert answer_check._LEX is lexicon
    assert answer_check.LEXICON_PATH.name == "number_words.yml"
    assert answer_check.LEXICON_PATH.exists()


def _lexicon_data():
    with open(answer_check.LEXICON_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def test_lexicon_rejects_duplicates_and_yaml_booleans():
    data = _lexicon_data()
    answer_check._Lexicon(copy.deepcopy(data))  # the shipped file is valid

    dup = copy.deepcopy(data)
    dup["kinyarwanda"]["units"][2].append("gatatu")  # already 3
    with pytest.raises(ValueError, match="listed twice"):
        answer_check._Lexicon(dup)

    boolean = copy.deepcopy(data)
    boolean["sentence"]["alternatives"].append(False)  # an unquoted `no` in YAML
    with pytest.raises(ValueError, match="quoted"):
        answer_check._Lexicon(boolean)

    clash = copy.deepcopy(data)
    clash["sentence"]["copulas"].append("five")
    with pytest.raises(ValueError, match="also a number word"):
        answer_check._Lexicon(clash)


def test_generated_spellings_never_override_listed_words():
    words = answer_check._WORDS
    assert words["nine"][0].kind == answer_check.UNIT  # not n' + "ine" (4)
    assert [t.kind for t in words["nicyenda"]] == [answer_check.NA, answer_check.RUNIT]
    assert words["makumyabili"] is words["makumyabiri"]


def test_bench_script_runs_and_table_is_fully_accurate():
    path = ROOT / "scripts" / "bench_answer_check.py"
    spec = importlib.util.spec_from_file_location("bench_answer_check", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    stats = bench.run(repetitions=1)
    assert stats["cases"] == len(ROWS)
    assert stats["accuracy"] == 1.0  # timing values are reported, never asserted
