"""The one language helper (core.language): normalising names and detecting the learner's language."""
import pytest

from core.language import detect as detect_language, normalise as normalise_language


@pytest.mark.parametrize("value, expected", [
    ("English", "en"), ("icyongereza", "en"), ("EN", "en"), ("Ikinyarwanda", "rw"),
    ("kinyarwanda", "rw"), ("rw", "rw"), ("French", None), ("", None), (None, None),
    ("kinyarwada", "rw"), ("englsh", "en"), ("spanish", None),
])
def test_normalise_language(value, expected):
    assert normalise_language(value) == expected


@pytest.mark.parametrize("text, expected", [
    ("hello", "en"),
    ("good morning, how are you", "en"),
    ("I want to learn math", "en"),
    ("muraho", "rw"),
    ("mwiriwe neza", "rw"),
    ("sinzi igisubizo", "rw"),
    ("nitwa Aline", "rw"),
    ("ni makumyabiri na gatanu", "rw"),
    # code-switched: Kinyarwanda grammar with English topic words is Kinyarwanda
    ("ndashaka math", "rw"),
    ("nyigisha English please", "rw"),
    ("ndashaka kwiga reading", "rw"),
    # no language signal: numbers, names, neutral words
    ("25", None),
    ("Aline", None),
    ("ok", None),
    ("math", None),
])
def test_detect_language_first_message(text, expected):
    assert detect_language(text) == expected


def test_one_stray_word_does_not_switch_the_language():
    assert detect_language("yes", current="rw") == "rw"
    assert detect_language("sawa", current="en") == "en"
    assert detect_language("ok", current="rw") == "rw"


def test_a_clear_sentence_switches_the_language():
    assert detect_language("I want to do math please", current="rw") == "en"
    assert detect_language("ndashaka kwiga imibare", current="en") == "rw"


def test_no_signal_keeps_the_current_language():
    assert detect_language("42", current="rw") == "rw"
    assert detect_language("", current="en") == "en"
