"""core.language and core.texts: the one list of languages and the one lookup for texts.

A third language is data only: a block in the languages file and its texts in the
catalogues; these tests add French to temporary copies and change no code.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core import language, texts
from core.language import LANGUAGES_FILE, Languages
from core.texts import CATALOGUES, Catalogue, MissingText, Texts

ROOT = Path(__file__).resolve().parent.parent

FRENCH = {
    "name": "French",
    "names": ["fr", "fra", "french", "francais", "igifaransa", "fr-fr"],
    "detection": {"weight": 1, "words": ["bonjour", "je", "veux", "apprendre", "merci", "les", "oui"]},
}


@pytest.fixture
def three_languages(tmp_path) -> Path:
    """The project's languages file with French added (a block of data, nothing else)."""
    data = yaml.safe_load(LANGUAGES_FILE.read_text(encoding="utf-8"))
    data["languages"]["fr"] = FRENCH
    path = tmp_path / "languages.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- languages
def test_the_project_languages_come_from_the_data_file():
    data = yaml.safe_load(LANGUAGES_FILE.read_text(encoding="utf-8"))
    assert language.SUPPORTED == tuple(data["languages"]) == ("en", "rw")
    assert language.DEFAULT == data["default"] == "en"
    assert language.name("rw") == "Kinyarwanda"


@pytest.mark.parametrize("value, expected", [
    ("kin", "rw"), ("rw-RW", "rw"), ("Ikinyarwanda", "rw"), (" English ", "en"), ("en-GB", "en"), ("xx", None),
])
def test_normalise_names_and_codes(value, expected):
    assert language.normalise(value) == expected


@pytest.mark.parametrize("value, expected", [(None, "en"), ("", "en"), ("xx", "en"), ("rw", "rw"), ("Kinyarwanda", "rw")])
def test_or_default(value, expected):
    assert language.or_default(value) == expected


def test_other_toggles_between_two_languages():
    assert [language.other(c) for c in ("en", "rw", None, "xx")] == ["rw", "en", "rw", "rw"]


def test_a_marker_word_in_two_lists_counts_for_the_heavier_language():
    # "he" is English and Kinyarwanda ("where"); Kinyarwanda words decide mixed messages.
    assert language.scores("he") == {"en": 0.0, "rw": 1.0}


def test_a_third_language_is_data_only(three_languages):
    langs = Languages.load(three_languages)
    assert langs.codes == ("en", "rw", "fr") and langs.default == "en"
    assert [langs.normalise(v) for v in ("French", "igifaransa", "FR-fr", "francias", "Kinyarwanda")] == \
        ["fr", "fr", "fr", "fr", "rw"]
    assert [langs.other(c) for c in ("en", "rw", "fr")] == ["rw", "fr", "en"]  # the toggle cycles
    assert langs.detect("bonjour je veux apprendre") == "fr"
    assert langs.detect("merci", current="rw") == "rw"  # one stray word does not switch
    assert langs.detect("ndashaka imibare") == "rw" and langs.detect("I want to learn") == "en"
    assert langs.unknown_order() == ("rw", "fr", "en")  # before the learner's is known, the default last


def test_the_languages_file_can_be_replaced_without_code(three_languages):
    code = ("from core import language, texts; print(language.SUPPORTED, language.normalise('francais'), "
            "texts.text('menu', 'fr') == texts.text('menu', 'en'))")
    env = dict(os.environ, BAKAME_LANGUAGES_FILE=str(three_languages), PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    # No French texts yet: every lookup falls back to the default language.
    assert run.stdout.split() == ["('en',", "'rw',", "'fr')", "fr", "True"]


def test_a_default_that_is_not_listed_is_refused(tmp_path):
    path = tmp_path / "languages.yml"
    path.write_text("default: fr\nlanguages:\n  en: {name: English}\n")
    with pytest.raises(ValueError, match="default language 'fr'"):
        Languages.load(path)


# ----------------------------------------------------------------------------- texts
def test_lookup_in_each_language_with_fields():
    assert texts.text("welcome_back", "rw", name="Aline") == "Murakaza neza nanone, Aline!"
    assert texts.text("welcome_back", "en", name="Aline") == "Welcome back, Aline!"
    assert texts.text("channel.holding", "rw") == "Tegereza gato."
    assert texts.text("math.points", "en", points=10, total=30) == "+10 points, 30 in all."


def test_unknown_language_gets_the_default():
    assert texts.text("menu", None) == texts.text("menu", "xx") == texts.text("menu", "en")
    assert texts.text("menu", "Kinyarwanda") == texts.text("menu", "rw")


def test_a_missing_key_is_a_clear_error():
    with pytest.raises(MissingText, match="no text 'math.nope' in any catalogue"):
        texts.text("math.nope", "en")


def test_lists_and_mappings_are_values_not_texts():
    assert "Ni byo!" in texts.value("math.praise", "rw")
    assert texts.value("module_names", "rw")["math"] == "imibare"
    with pytest.raises(TypeError, match="use value"):
        texts.text("math.praise", "en")


def test_every_catalogue_file_exists_and_is_loaded_once():
    for catalogue in CATALOGUES:
        assert (ROOT / catalogue.path).exists(), catalogue.path
    assert texts.catalogue() is texts.catalogue()


def test_a_key_in_two_catalogues_is_refused(tmp_path):
    (tmp_path / "a.yml").write_text('hi:\n  en: "Hi"\n  rw: "Muraho"\n')
    with pytest.raises(ValueError, match="'hi' is in both a.yml and a.yml"):
        Texts([Catalogue("", "a.yml"), Catalogue("", "a.yml")], root=tmp_path)


def test_a_third_language_catalogue_needs_no_code(tmp_path, three_languages):
    (tmp_path / "messages.yml").write_text(
        'hello:\n  en: "Hello {name}!"\n  rw: "Muraho {name}!"\n  fr: "Bonjour {name} !"\n'
        'bye:\n  en: "Bye!"\n  rw: "Murabeho!"\n')
    (tmp_path / "tutor.yml").write_text('texts:\n  intro:\n    en: "Hi"\n    rw: "Muraho"\n    fr: "Salut"\n')
    catalogue = Texts([Catalogue("", "messages.yml"), Catalogue("tutor", "tutor.yml", "texts")],
                      root=tmp_path, languages=Languages.load(three_languages))
    assert catalogue.text("hello", "fr", name="Aline") == "Bonjour Aline !"
    assert catalogue.text("hello", "French", name="Aline") == "Bonjour Aline !"
    assert catalogue.text("tutor.intro", "fr") == "Salut"
    assert catalogue.text("bye", "fr") == "Bye!"  # not translated yet: the default language


def test_make_validate_lists_every_text_a_new_language_lacks(tmp_path, three_languages):
    project = tmp_path / "project"
    (project / "actions" / "content").mkdir(parents=True)
    (project / "domain.yml").write_text('version: "3.1"\nintents: []\n')
    (project / "actions" / "content" / "messages.yml").write_text(
        'hello:\n  en: "Hello"\n  rw: "Muraho"\n  fr: "Bonjour"\nbye:\n  en: "Bye!"\n  rw: "Murabeho!"\n')
    env = dict(os.environ, BAKAME_LANGUAGES_FILE=str(three_languages), PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_data.py"), "--project-dir", str(project)],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 1
    missing = [line for line in run.stdout.splitlines() if "no 'fr'" in line]
    assert missing == ["actions/content/messages.yml:5 — message 'bye' has no 'fr' (French) text: add it"]
