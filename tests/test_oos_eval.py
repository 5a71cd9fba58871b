"""The off-topic evaluation (scripts/oos_eval.py): its arithmetic on a tiny fixture with a stub
model, where the command list comes from, and that held-out sets never leak into training."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import check_data  # noqa: E402
import oos_eval  # noqa: E402

DOMAIN = """
slots:
  answer:
    type: text
    mappings:
      - type: from_text
        not_intent: [goodbye, stop, set_language]
"""
OFF_TOPIC = """
examples:
  weather: [is it raining tomorrow, how hot is Kigali]
  travel: [book a flight to Rwanda, rent a car, a bus to Huye]
"""
IN_SCOPE = """
version: "3.1"
nlu:
- intent: stop
  examples: |
    - stop now
    - please stop
- intent: set_language
  examples: |
    - speak [Kinyarwanda](language) please
"""
# A stub model with the mistakes the issue describes.
PREDICTIONS = {
    "is it raining tomorrow": "goodbye", "how hot is Kigali": "out_of_scope",
    "book a flight to Rwanda": "set_language", "rent a car": "nlu_fallback", "a bus to Huye": "answer",
    "stop now": "stop", "please stop": "goodbye", "speak Kinyarwanda please": "set_language",
}


@pytest.fixture
def project(tmp_path):
    (tmp_path / "domain.yml").write_text(DOMAIN)
    (tmp_path / "oos").mkdir()
    (tmp_path / "oos" / "en.yml").write_text(OFF_TOPIC)
    (tmp_path / "heldout" / "en").mkdir(parents=True)
    (tmp_path / "heldout" / "en" / "nlu.yml").write_text(IN_SCOPE)
    return tmp_path


def report(project):
    return oos_eval.oos_report(PREDICTIONS.__getitem__, project, ["en", "rw"], project / "oos", project / "heldout")


def test_commands_are_the_intents_the_answer_slot_refuses(project):
    assert oos_eval.command_intents(project / "domain.yml") == ["goodbye", "stop", "set_language"]


def test_false_command_rate_overall_and_per_command(project):
    off = report(project)["languages"]["en"]["off_topic"]
    assert off["utterances"] == 5 and off["false_commands"] == 2 and off["false_command_rate"] == 0.4
    assert off["per_command"] == {"goodbye": {"count": 1, "rate": 0.2}, "stop": {"count": 0, "rate": 0.0},
                                  "set_language": {"count": 1, "rate": 0.2}}
    # Fallback, out_of_scope and answer are not commands.
    assert {e["text"] for e in off["errors"]} == {"is it raining tomorrow", "book a flight to Rwanda"}
    assert off["errors"][0]["corpus_intent"] == "weather"


def test_in_scope_accuracy_strips_entity_annotations(project):
    ins = report(project)["languages"]["en"]["in_scope"]
    assert ins["utterances"] == 3 and ins["correct"] == 2 and ins["accuracy"] == round(2 / 3, 4)
    assert ins["fallback"] == 0 and ins["wrong_intent"] == 1
    assert ins["errors"] == [{"text": "please stop", "intent": "stop", "predicted": "goodbye"}]


def test_languages_without_held_out_files_are_left_out(project):
    assert list(report(project)["languages"]) == ["en"]


def test_markdown_shows_rates_per_language_and_command(project):
    text = oos_eval.markdown(report(project))
    assert "**40.0 %** (2)" in text and "**66.7 %**" in text
    assert "| goodbye | 1 (20.0 %) |" in text and "| stop | 0 (0.0 %) |" in text


def test_texts_to_parse_covers_both_sets(project):
    texts = oos_eval.texts_to_parse(project, ["en"], project / "oos", project / "heldout")
    assert set(texts) == set(PREDICTIONS)


@pytest.mark.parametrize("lang", ["en", "rw"])
def test_held_out_sets_never_enter_training(lang):
    """No held-out utterance (off-topic or in-scope) is also a training example."""
    training = {check_data.plain_text(e.text).lower()
                for e in check_data.load_examples(check_data.Project(ROOT), check_data.Report())}
    offtopic = oos_eval.load_offtopic(ROOT / "tests" / "data" / "oos" / f"{lang}.yml")
    inscope = oos_eval.load_inscope(ROOT / "tests" / "data" / "heldout" / lang / "nlu.yml")
    assert len(offtopic) >= 150 and len(inscope) >= 100
    assert [t for t, _ in offtopic + inscope if check_data.plain_text(t) in training] == []


def test_real_domain_commands_are_the_lesson_interrupting_intents():
    commands = oos_eval.command_intents(ROOT / "domain.yml")
    assert {"stop", "goodbye", "set_language", "help", "start_math", "check_progress"} <= set(commands)
    assert not {"answer", "out_of_scope", "inform"} & set(commands)
