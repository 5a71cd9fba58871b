"""core/: one reading of settings, the GSM-7 alphabet and segments, fuzzy matching."""
from __future__ import annotations

import pytest

from core import config, fuzzy, gsm
from core.plain_text import strip_emoji


# ----------------------------------------------------------------------- config
@pytest.mark.parametrize("value", [True, 1, "1", "true", "TRUE", " yes ", "on"])
def test_as_bool_true_words(value):
    assert config.as_bool(value, False) is True


@pytest.mark.parametrize("value", [False, 0, "0", "false", "No", "off "])
def test_as_bool_false_words(value):
    assert config.as_bool(value, True) is False


@pytest.mark.parametrize("value", [None, "", "  ", "maybe", 2])
def test_as_bool_anything_else_is_the_default(value):
    assert config.as_bool(value, True) is True
    assert config.as_bool(value, False) is False


def test_numbers_fall_back_to_the_default():
    assert config.as_int("8", 1) == 8 and config.as_int("8.0", 1) == 8 and config.as_int(3, 1) == 3
    assert config.as_int("eight", 1) == 1 and config.as_int(None, 1) == 1 and config.as_int(" ", 1) == 1
    assert config.as_float("1.5", 0.0) == 1.5 and config.as_float("nan", 0.5) == 0.5
    assert config.as_float("inf", 0.5) == 0.5 and config.as_float([], 0.5) == 0.5


def test_env_is_the_first_non_blank_name_stripped():
    environ = {"A": " ", "B": " b-value ", "C": "c"}
    assert config.env("A", "B", "C", environ=environ) == "b-value"
    assert config.env("A", "MISSING", environ=environ) is None
    assert config.env("A", default="d", environ=environ) == "d"


def test_env_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("BAKAME_CORE_TEST", "x")
    assert config.env("BAKAME_CORE_TEST_UNSET", "BAKAME_CORE_TEST") == "x"


# ----------------------------------------------------------------------- gsm
def test_alphabet_is_the_standard_one():
    assert len(gsm.GSM_BASIC) == 127  # 128 codes, less the escape
    assert gsm.GSM_EXTENSION == frozenset("^{}\\[~]|\u20ac\f")
    assert "\x1b" not in gsm.GSM_BASIC and gsm.is_gsm("Muraho @ \u00a3 \u00e9")
    assert gsm.not_gsm("it\u2019s caf\u00ea") == {"\u2019", "\u00ea"}


def test_form_feed_is_gsm_but_dropped_from_replies():
    assert gsm.is_gsm("a\fb") and gsm.septets("\f") == 2
    assert gsm.sanitize("a\fb") == "ab"


@pytest.mark.parametrize("text,segments", [
    ("", 0), ("\u00ea" * 70, 1), ("\u00ea" * 71, 2), ("\u00ea" * 134, 2), ("\u00ea" * 135, 3),
    ("\U0001F600" * 35, 1), ("\U0001F600" * 36, 2),  # an emoji is two UTF-16 units
])
def test_non_gsm_text_counts_ucs2_segments(text, segments):
    assert gsm.segment_count(text) == segments


def test_a_surrogate_pair_is_not_split_across_parts():
    # 134 UTF-16 units would fill two parts of 67 exactly, but the emoji cannot straddle them
    assert gsm.segment_count("\u00ea" * 66 + "\U0001F600" + "\u00ea" * 65) == 2
    assert gsm.segment_count("\u00ea" * 66 + "\U0001F600" + "\u00ea" * 66) == 3


# ----------------------------------------------------------------------- plain text
def test_strip_emoji_keeps_quotes_and_accents():
    assert strip_emoji("Ni byo \U0001F389 \u2014 it\u2019s caf\u00ea \u2728") == "Ni byo \u2014 it\u2019s caf\u00ea"


# ----------------------------------------------------------------------- fuzzy
def test_edit_distance():
    assert fuzzy.edit_distance("medecine", "medicine") == 1
    assert fuzzy.edit_distance("kitten", "sitting") == 3
    assert fuzzy.edit_distance("", "abc") == 3


def test_similarity_and_closest():
    assert fuzzy.similarity("abc", "abc") == 1.0
    assert fuzzy.similarity("umuganda", "umuganba") == pytest.approx(0.875)
    names = ["english", "kinyarwanda", "icyongereza"]
    assert fuzzy.closest("kinyarwada", names, cutoff=0.8) == "kinyarwanda"
    assert fuzzy.closest("englsh", names, cutoff=0.8) == "english"
    assert fuzzy.closest("french", names, cutoff=0.8) is None


def test_nearest_lists_ties_with_scores():
    found = fuzzy.nearest("zeor", ["zero", "zeru", "nine"], cutoff=0.7)
    assert [c for c, _ in found] == ["zero", "zeru"]
    assert all(score == pytest.approx(0.75) for _, score in found)
    assert fuzzy.nearest("asdf", ["zero", "nine"], cutoff=0.7) == []


def test_contains_similar_finds_a_stem_inside_a_longer_word():
    assert fuzzy.contains_similar("hagarika", "tuhagarike") >= 0.85  # other affixes
    assert fuzzy.contains_similar("subiramo", "wasubiramo") >= 0.85
    assert fuzzy.contains_similar("hagarika", "murakoze") < 0.5
    assert fuzzy.similarity("hagarika", "tuhagarike") < 0.85  # the whole word is longer
