"""`make evaluate` and `make compare` (scripts/evaluate.py, scripts/compare_models.py).

The evaluation runs on the designer walkthrough's copy of the project (tests/test_designer_workflow.py:
retrained with configs/tiny.yml, then `make evaluate`), so no second training is needed here."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import compare_models  # noqa: E402
import evaluate  # noqa: E402
from test_check_data import make_project  # noqa: E402
from test_designer_workflow import evaluated_copy, make  # noqa: E402


@pytest.fixture(scope="module")
def results():
    return evaluated_copy() / "results"


@pytest.fixture(scope="module")
def card(results):
    return json.loads((results / "model_card.json").read_text())


@pytest.mark.parametrize("lang", ["en", "rw"])
def test_per_language_nlu_reports_and_confusion_matrices(results, lang):
    folder = results / "nlu" / lang
    for name in ("intent_report.json", "intent_errors.json", "intent_confusion_matrix.png", "intent_histogram.png"):
        assert (folder / name).exists(), name
    assert (folder / "intent_confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    entity_reports = [p for p in folder.glob("*_report.json") if p.name != "intent_report.json"]
    assert entity_reports, "no entity report"
    report = json.loads((folder / "intent_report.json").read_text())
    # Only this language's examples were tested.
    examples = sum(evaluated_copy_counts(lang).values())
    assert report["weighted avg"]["support"] == examples


def evaluated_copy_counts(lang):
    copy = evaluated_copy()
    card = json.loads((copy / "results" / "model_card.json").read_text())
    return {intent: per[lang] for intent, per in card["data"]["examples_per_intent"].items()}


def test_story_results(results, card):
    assert (results / "stories" / "story_report.json").exists()
    assert (results / "stories" / "story_confusion_matrix.png").exists()
    stories = card["stories"]
    assert stories["stories"] >= 10 and 0 <= stories["failed"] <= stories["stories"]
    assert stories["story_accuracy"] == round((stories["stories"] - stories["failed"]) / stories["stories"], 4)


def test_model_card_contents(results, card):
    copy = evaluated_copy()
    assert card["config"]["sha256"] == hashlib.sha256((copy / "config.yml").read_bytes()).hexdigest()
    assert card["training_time"]["source"].startswith("measured") and card["training_time"]["seconds"] > 0
    assert card["model"]["size_bytes"] == (copy / "models" / "bakame.tar.gz").stat().st_size
    for lang in ("en", "rw"):
        report = json.loads((results / "nlu" / lang / "intent_report.json").read_text())
        assert card["nlu"][lang]["intent"]["f1_weighted"] == round(report["weighted avg"]["f1-score"], 4)
        assert card["nlu"][lang]["entities"], lang
        assert card["data"]["examples"][lang] == sum(evaluated_copy_counts(lang).values())
    text = (results / "model_card.md").read_text()
    for heading in ("## Model", "## Data", "## NLU scores per language", "## Stories", "training time",
                    "intent F1 (weighted)", "entity F1", card["config"]["sha256"], "story accuracy"):
        assert heading in text, heading


def test_off_topic_section_is_measured_with_the_evaluated_model(results, card):
    """make evaluate also reports the off-topic false-command rate and in-scope held-out accuracy
    (arithmetic: tests/test_oos_eval.py); here, that the real model's figures reach the card."""
    oos = card["oos"]
    assert set(oos["languages"]) == {"en", "rw"} and "stop" in oos["commands"]
    for lang, entry in oos["languages"].items():
        off = entry["off_topic"]
        assert off["utterances"] >= 150 and 0 <= off["false_commands"] <= off["utterances"]
        assert off["false_commands"] == sum(v["count"] for v in off["per_command"].values())
        assert entry["in_scope"]["utterances"] >= 100
    assert json.loads((results / "oos.json").read_text())["languages"] == oos["languages"]
    text = (results / "model_card.md").read_text()
    assert "## Off-topic robustness" in text and "false-command rate" in text


def test_archive_training_time_when_not_trained_here(card):
    info = evaluate.model_info(Path(card["model"]["path"]))
    assert info["archive_training_seconds"] is not None and info["archive_training_seconds"] >= 0
    assert info["rasa_version"] == "3.6.21"


def test_make_evaluate_passes_model_and_config():
    dry = subprocess.run(["make", "-n", "-o", ".venv/.installed", "evaluate", "MODEL=models/other.tar.gz",
                          "CONFIG=configs/tiny.yml"], cwd=ROOT, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    command = " ".join(dry.stdout.split())
    assert "scripts/evaluate.py --out results --model models/other.tar.gz --config configs/tiny.yml" in command
    default = subprocess.run(["make", "-n", "-o", ".venv/.installed", "evaluate"], cwd=ROOT, capture_output=True, text=True)
    assert "--model" not in default.stdout


def test_compare_two_configs_by_cross_validation_per_language(tmp_path):
    project = make_project(tmp_path)
    other = tmp_path / "fewer-iterations.yml"
    other.write_text((ROOT / "configs" / "tiny.yml").read_text().replace("max_iterations: 30", "max_iterations: 5"))
    out = tmp_path / "results"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "compare_models.py"), str(ROOT / "configs" / "tiny.yml"),
                          str(other), "--project-dir", str(project), "--folds", "2", "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    text = (out / "compare.md").read_text()
    assert "| metric | A: tiny | B: fewer-iterations | B - A |" in text
    assert "2-fold cross-validation per language" in text
    for lang in ("en", "rw"):
        assert f"| intent F1 weighted ({lang}) |" in text
        assert (out / "compare" / "tiny" / f"nlu-{lang}" / "intent_report.json").exists()
        assert f"Intent F1 per intent ({lang})" in text and "| ask_time |" in text
    assert json.loads((out / "compare.json").read_text())["labels"] == ["tiny", "fewer-iterations"]


def test_compare_table_for_two_models(card):
    a = compare_models._model_result(card)
    b = json.loads(json.dumps(a))
    b["nlu"]["rw"]["intent"]["f1_weighted"] = round(a["nlu"]["rw"]["intent"]["f1_weighted"] - 0.05, 4)
    b["nlu"]["rw"]["intent"]["per_intent_f1"]["praise"] = round(a["nlu"]["rw"]["intent"]["per_intent_f1"]["praise"] - 0.5, 4)
    text = compare_models.markdown(Path("models/a.tar.gz"), Path("models/b.tar.gz"), "a", "b", "same data", a, b, ["en", "rw"])
    assert "| intent F1 weighted (en) |" in text and "| 0 |" in text
    assert "| intent F1 weighted (rw) |" in text and "| -0.050 |" in text
    assert "| story accuracy |" in text and "| model size (MB) |" in text
    rw_table = text.split("Intent F1 per intent (rw)")[1]
    assert rw_table.split("|---|---:|---:|---:|\n")[1].startswith("| praise |")  # biggest change first


def test_compare_refuses_a_model_and_a_config(tmp_path):
    model = tmp_path / "m.tar.gz"
    model.write_bytes(b"")
    with pytest.raises(SystemExit, match="two models"):
        compare_models.compare(model, ROOT / "config.yml", out=tmp_path)


def test_make_compare_without_arguments_prints_usage():
    copy = evaluated_copy()
    run = make(copy, "compare")
    assert run.returncode != 0 and "usage: make compare A=" in run.stdout
