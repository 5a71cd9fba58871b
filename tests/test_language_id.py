"""Language identification: marker words and py3langid combined (core.language), and the
held-out report's arithmetic (scripts/language_id_report.py).

The messages here are written for these tests in the *kind* of the held-out set (Kinyarwanda
with English school words, plain English); none is copied from it."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from core.language import Languages, NgramModel, languages

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import language_id_report as report  # noqa: E402


# ----------------------------------------------------------------------------- the detector
@pytest.mark.parametrize("text", [
    "Ejo nagiye gusura nyogokuru",
    "Mwalimu yaduhaye homework nyinshi cyane",  # code-switched: Kinyarwanda with an English word
    "Abanyeshuri benshi bakunze imikino",
])
def test_kinyarwanda_with_few_marker_words_leaves_english_thanks_to_the_model(text):
    langs = languages()
    assert langs.detect(text, current="en", use_model=False) == "en"  # too few marker words alone
    assert langs.detect(text, current="en") == "rw"


@pytest.mark.parametrize("text", ["Cats sleep during rainy days", "My sister plays football every Sunday"])
def test_english_without_enough_marker_words_leaves_kinyarwanda(text):
    langs = languages()
    assert langs.detect(text, current="rw", use_model=False) == "rw"
    assert langs.detect(text, current="rw") == "en"


def test_the_model_decides_a_first_message_the_markers_cannot():
    langs = languages()
    assert langs.detect("Cats sleep during rainy days", use_model=False) is None
    assert langs.detect("Cats sleep during rainy days") == "en"


def test_two_words_the_model_recognises_do_not_switch_the_language():
    langs = languages()
    assert langs.detect("rainy weather") == "en"
    assert langs.detect("rainy weather", current="rw") == "rw"


@pytest.mark.parametrize("word", ["Kigali", "Aline", "homework"])
def test_one_word_is_never_left_to_the_model(word):
    assert languages().detect(word) is None
    assert languages().detect(word, current="rw") == "rw"


def test_marker_words_still_decide_code_switched_requests():
    langs = languages()
    assert langs.detect("ndashaka gukora exercises z'imibare", current="en") == "rw"
    assert langs.detect("please explain this homework again", current="rw") == "en"


def test_the_model_knows_only_our_languages():
    model = NgramModel({"en": "en", "rw": "rw"})
    code, probability = model.guess("Ejo nagiye gusura nyogokuru")
    assert code == "rw" and 0.5 <= probability <= 1.0
    assert model.guess("") is None  # nothing it knows: no guess (not its prior)


def test_a_language_the_model_lacks_is_left_out():
    assert NgramModel({"en": "en", "xx": "not-a-model-language"}).guess("hello there my friend") is None
    only_known = NgramModel({"en": "en", "rw": "rw", "xx": "not-a-model-language"})
    assert only_known.guess("hello there my friend")[0] == "en"


def test_model_code_comes_from_the_languages_file(tmp_path):
    path = tmp_path / "languages.yml"
    path.write_text("default: en\nlanguages:\n  en: {name: English}\n"
                    "  kin: {name: Kinyarwanda, detection: {model_code: rw, words: [muraho]}}\n")
    langs = Languages.load(path)
    assert langs.by_code["kin"].model_code == "rw" and langs.by_code["en"].model_code == "en"
    assert langs.detect("Ejo nagiye gusura nyogokuru mu cyaro", current="en") == "kin"


# ----------------------------------------------------------------------------- the report
def _messages():
    return [report.Message("a", "en", False), report.Message("b c d e", "rw", True),
            report.Message("f g", "rw", False), report.Message("h i j k l", "en", False)]


def test_accuracy_per_slice():
    messages = _messages()
    figures = report.accuracy(messages, ["en", "rw", "en", "rw"], report.groups(["en", "rw"]))
    assert figures["all"] == {"accuracy": 0.5, "correct": 2, "n": 4}
    assert figures["en"] == {"accuracy": 0.5, "correct": 1, "n": 2}
    assert figures["rw"] == {"accuracy": 0.5, "correct": 1, "n": 2}
    assert figures["code-switched"] == {"accuracy": 1.0, "correct": 1, "n": 1}
    assert figures["monolingual"]["correct"] == 1 and figures["monolingual"]["n"] == 3
    assert figures["short (<= 3 words)"] == {"accuracy": 0.5, "correct": 1, "n": 2}  # "a", "f g"


def test_an_empty_slice_has_no_accuracy():
    figures = report.accuracy([report.Message("a", "en", False)], ["en"], report.groups(["en", "rw"]))
    assert figures["rw"] == {"accuracy": None, "correct": 0, "n": 0}


@pytest.mark.parametrize("share, expected", [(0.5, 50), (0.99, 99), (1.0, 100), (0.01, 1)])
def test_percentile_is_nearest_rank(share, expected):
    assert report.percentile(list(range(100, 0, -1)), share) == expected


def test_timed_keeps_the_first_round_s_predictions_and_times_every_message():
    calls = []

    def detector(text, current):
        calls.append((text, current))
        return "rw" if len(text) > 1 else None

    run = report.timed(detector, _messages(), lambda m: "en", rounds=2)
    assert run["predictions"] == [None, "rw", "rw", "rw"]
    assert len(calls) == 8 and all(current == "en" for _, current in calls)
    assert 0 <= run["median_ms"] <= run["p99_ms"]


def test_the_heldout_file_is_read_without_its_documentation(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("# sources\n# label rule\nlabel,code_switched,source,text\n"
                    'rw,1,s:1,"ndashaka math, please"\nen,0,s:2,hello\n', encoding="utf-8")
    assert report.load(path) == [report.Message("ndashaka math, please", "rw", True),
                                 report.Message("hello", "en", False)]


def test_report_files_for_a_project(tmp_path):
    project = tmp_path / "project"
    (project / "tests" / "data").mkdir(parents=True)
    (project / report.HELDOUT).write_text(
        "label,code_switched,source,text\n"
        "en,0,t,I want to learn math please\n"
        "rw,0,t,ndashaka kwiga imibare\n"
        "rw,1,t,ndashaka gukora exercises z'imibare\n"
        "en,0,t,Cats sleep during rainy days\n", encoding="utf-8")
    out = tmp_path / "results"
    written = report.write(out, project)
    data = json.loads((out / "language_id.json").read_text())
    assert data == json.loads(json.dumps(written))
    assert data["messages"] == 4 and data["per_slice"]["code-switched"] == 1
    combined = data["results"]["combined"]
    assert combined["no current language"]["accuracy"]["all"]["accuracy"] == 1.0
    # markers alone cannot tell "Cats sleep during rainy days" (the default, English, is right by luck)
    # but do not leave Kinyarwanda for it:
    assert data["results"]["markers"]["opposite current language"]["accuracy"]["en"]["correct"] == 1
    assert combined["opposite current language"]["accuracy"]["en"]["correct"] == 2
    assert "opposite current language" not in data["results"]["py3langid"]
    table = (out / "language_id.md").read_text()
    assert "| combined | no current language | 1.000 |" in table


def test_no_heldout_file_no_report(tmp_path):
    assert report.write(tmp_path / "results", tmp_path) is None
    assert not (tmp_path / "results" / "language_id.json").exists()
