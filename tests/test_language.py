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


# -- detection once per message, for every current language (the NLU pipeline's way) ----------
DETECTION_TEXTS = ["hello", "yes", "sawa", "ok", "42", "", "ndashaka math", "I want to do math please",
                   "ndashaka kwiga imibare", "Ejo nagiye gusura nyogokuru", "Cats sleep during rainy days",
                   "mwiriwe neza", "good morning, how are you", "nyigisha English please", "/session_start"]


@pytest.mark.parametrize("text", DETECTION_TEXTS)
def test_detections_give_what_detect_gives_in_each_current_language(text):
    from core.language import detected_in, detections

    table = detections(text)
    assert set(table) == {"none", "en", "rw"}
    for current in (None, "en", "rw", "fr"):  # "fr": a value no language has behaves as none known
        assert detected_in(table, current) == detect_language(text, current), current


def test_detections_keep_the_current_language_as_detect_does():
    from core.language import detected_in, detections

    assert detections("42") == {"none": None, "en": "en", "rw": "rw"}
    assert detected_in(detections("42"), "rw") == "rw"
    assert detected_in(detections("42"), None) is None
    assert detections("yes")["rw"] == "rw" and detections("yes")["none"] == "en"
