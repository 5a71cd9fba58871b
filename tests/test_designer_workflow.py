"""The newcomer's walkthrough of docs/designers.md, on a copy of the project:

1. add an intent (`praise`) in both languages, a response in both languages and a rule;
   `make validate` passes;
2. delete the Kinyarwanda variation of the response: `make validate` stops with
   `domain.yml:<line> — response 'utter_praise_reply' has no Kinyarwanda variation`;
3. put it back, `make evaluate` retrains and writes the per-language reports, which include
   the new intent.

The copy gets configs/tiny.yml as its config.yml so that retraining takes seconds (the steps and
commands are those of the docs; only the model is smaller). tests/test_evaluate.py reuses the
evaluated copy (`evaluated_copy()`)."""
from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List


ROOT = Path(__file__).resolve().parent.parent

COPIED = ["data", "actions", "core", "connectors", "infra", "voice", "nlu_components", "scripts", "mk", "configs", "domain.yml", "Makefile", "requirements.lock",
          "endpoints.yml", "credentials.yml", "tests/test_stories.yml", "tests/data/oos", "tests/data/heldout"]

EN_EXAMPLES = [f"{core}{tail}" for core in ("you are a good teacher", "you teach very well", "i like learning with you",
                                            "you are the best teacher", "you are so clever")
               for tail in ("", " bakame", " my friend", " really", " today")]
RW_EXAMPLES = [f"{core}{tail}" for core in ("uri mwarimu mwiza", "wigisha neza cyane", "nkunda kwiga nawe",
                                            "uri umwarimu w'igitangaza", "uri umunyabwenge")
               for tail in ("", " bakame", " nshuti yanjye", " rwose", " uyu munsi")]

RW_VARIATION = """\
    - condition:
        - type: slot
          name: language
          value: rw
      text: "Urakoze! Nawe uri umunyeshuri mwiza."
"""
RESPONSE = "  utter_praise_reply:\n" + RW_VARIATION + '    - text: "Thank you! You are a good learner too."\n'

RULE = """
  - rule: answer praise
    steps:
      - intent: praise
      - action: utter_praise_reply
"""

_STATE: Dict[str, Path] = {}


def make(copy: Path, *targets: str) -> subprocess.CompletedProcess:
    """`make <targets>` in the copy (the venv is the real one; it is not rebuilt there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    env["RASA_TELEMETRY_ENABLED"] = "false"
    return subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", *targets], cwd=copy, env=env,
                          capture_output=True, text=True)


def _insert_after(text: str, anchor: str, block: str) -> str:
    head, sep, tail = text.partition(anchor)
    assert sep, f"{anchor!r} not found"
    return head + sep + block + tail


def add_intent_in_both_languages(copy: Path) -> None:
    """What docs/designers.md tells the designer to edit, in the same files."""
    domain = (copy / "domain.yml").read_text()
    domain = _insert_after(domain, "\nintents:\n", "  - praise\n")
    domain = _insert_after(domain, "\nresponses:\n", RESPONSE + "\n")
    (copy / "domain.yml").write_text(domain)
    for lang, examples in (("en", EN_EXAMPLES), ("rw", RW_EXAMPLES)):
        path = copy / "data" / "nlu" / lang / "nlu.yml"
        block = "\n- intent: praise\n  examples: |\n" + "".join(f"    - {e}\n" for e in examples)
        path.write_text(path.read_text().rstrip("\n") + "\n" + block)
    rules = copy / "data" / "rules.yml"
    rules.write_text(rules.read_text().rstrip("\n") + "\n" + RULE)


def project_copy() -> Path:
    """A copy of the project with `praise` added (made once per test session)."""
    if "copy" not in _STATE:
        base = Path(tempfile.mkdtemp(prefix="bakame-designer-"))
        atexit.register(shutil.rmtree, base, True)
        copy = base / "project"
        for name in COPIED:
            source, target = ROOT / name, copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            elif source.exists():
                shutil.copy2(source, target)
        (copy / ".venv").symlink_to(ROOT / ".venv")
        shutil.copy2(ROOT / "configs" / "tiny.yml", copy / "config.yml")  # seconds to train, same steps
        add_intent_in_both_languages(copy)
        _STATE["copy"] = copy
    return _STATE["copy"]


def evaluated_copy() -> Path:
    """The copy after `make evaluate` (retrained, per-language reports in results/)."""
    copy = project_copy()
    if "evaluated" not in _STATE:
        run = make(copy, "evaluate")
        assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
        _STATE["evaluated"] = copy
        _STATE["evaluate_output"] = run.stdout  # type: ignore[assignment]
    return copy


def lines(run: subprocess.CompletedProcess) -> List[str]:
    return (run.stdout + run.stderr).splitlines()


def test_the_walkthrough_examples_are_new_to_the_project():
    """The new intent's examples collide with no existing example (else make validate would rightly
    report a duplicate): checked first, so a data change that adds one of them is named clearly."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import check_data

    existing = {check_data.plain_text(e.text): (e.intent, e.path, e.line)
                for e in check_data.load_examples(check_data.Project(ROOT), check_data.Report())}
    for examples in (EN_EXAMPLES, RW_EXAMPLES):
        assert len(set(examples)) == 25
        assert {e: existing[e] for e in examples if e in existing} == {}


def test_docs_show_the_commands_this_walkthrough_runs():
    guide = (ROOT / "docs" / "designers.md").read_text()
    for command in ("make validate", "make train", "make evaluate", "data/nlu/en/", "data/nlu/rw/",
                    "value: rw", "data/rules.yml", "tests/test_stories.yml"):
        assert command in guide, command


def test_new_intent_in_both_languages_passes_make_validate():
    copy = project_copy()
    run = make(copy, "validate")
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    assert any(line.startswith("check_data: OK") for line in lines(run))
    assert "rasa data validate" in run.stdout  # and Rasa's own validation ran after ours


def test_make_validate_catches_the_missing_translation():
    copy = project_copy()
    domain = copy / "domain.yml"
    original = domain.read_text()
    try:
        domain.write_text(original.replace(RW_VARIATION, "", 1))
        run = make(copy, "validate")
        assert run.returncode != 0
        line = next(i for i, text in enumerate(domain.read_text().splitlines(), 1) if text == "  utter_praise_reply:")
        expected = f"domain.yml:{line} — response 'utter_praise_reply' has no Kinyarwanda variation"
        assert any(text.startswith(expected) for text in lines(run)), "\n".join(lines(run))
        assert "1 error(s)" in run.stdout
    finally:
        domain.write_text(original)
    assert make(copy, "check-data").returncode == 0


def test_too_few_examples_are_caught_too():
    copy = project_copy()
    path = copy / "data" / "nlu" / "rw" / "nlu.yml"
    original = path.read_text()
    try:
        path.write_text(original.replace("".join(f"    - {e}\n" for e in RW_EXAMPLES[20:]), ""))
        run = make(copy, "check-data")
        assert run.returncode != 0
        assert "intent 'praise' has only 20 Kinyarwanda examples: add 5 more" in run.stdout
    finally:
        path.write_text(original)


def test_retrain_and_get_the_per_language_report():
    copy = evaluated_copy()
    assert (copy / "models" / "bakame.tar.gz").exists()
    assert "Training models/bakame.tar.gz" in _STATE["evaluate_output"]  # type: ignore[operator]
    for lang, n in (("en", len(EN_EXAMPLES)), ("rw", len(RW_EXAMPLES))):
        report = json.loads((copy / "results" / "nlu" / lang / "intent_report.json").read_text())
        assert report["praise"]["support"] == n
        assert (copy / "results" / "nlu" / lang / "intent_confusion_matrix.png").stat().st_size > 1000
    card = json.loads((copy / "results" / "model_card.json").read_text())
    assert card["data"]["examples_per_intent"]["praise"] == {"en": 25, "rw": 25}
    assert card["model_current"] is True
    assert "| praise | 25 | 25 |" in (copy / "results" / "model_card.md").read_text()
