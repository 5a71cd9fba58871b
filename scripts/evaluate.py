#!/usr/bin/env python
"""`make evaluate`: per-language NLU reports, story test results and a model card.

1. Model: ``--model PATH``, or models/bakame.tar.gz trained if needed (scripts/train_if_needed.sh)
   for config.yml, or ``models/<config name>.tar.gz`` trained from ``--config OTHER.yml``.
2. NLU, one language at a time — the same evaluation as
   ``rasa test nlu --nlu data/nlu/<lang> --model MODEL --out results/nlu/<lang>``
   (intent report and confusion matrix, entity report per extractor, errors), in one process so
   the model is loaded once. By default the test data *is* the training data (it shows fit and
   regressions between models); ``--nlu-test-dir DIR`` takes held-out data from DIR/<lang>/.
   For generalisation use cross-validation: ``make nlu-report``.
3. Stories: ``rasa test core --stories tests/test_stories.yml`` into results/stories/.
4. Off-topic robustness (scripts/oos_eval.py): per language, the share of held-out off-topic
   utterances by native speakers (tests/data/oos/<lang>.yml) predicted as a command, overall and
   per command intent, and intent accuracy on held-out in-scope examples
   (tests/data/heldout/<lang>/nlu.yml) -> results/oos.json, results/oos.md.
   ``--oos-only`` runs just this part (no training: pass ``--model``, or models/bakame.tar.gz).
5. results/model_card.md and results/model_card.json: data size per language, scores, training
   time, model size, config sha256.

Everything is relative to ``--project-dir`` (default: this repository), so the same command
works on a copy of the project. docs/ml.md describes the results/ layout.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import subprocess
import sys
import tarfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
for _path in (str(SCRIPTS), str(ROOT)):  # the report scripts beside it; infra (rasa_patches)
    if _path not in sys.path:
        sys.path.insert(0, _path)

import answer_check_report  # noqa: E402  (math answer checker accuracy, main and held-out tables)
import check_data  # noqa: E402  (examples per intent per language)
import language_id_report  # noqa: E402  (language identification on held-out messages)
import oos_eval  # noqa: E402  (off-topic false-command rate, in-scope held-out accuracy)

LANGUAGES = check_data.LANGUAGES  # core/languages.yml
SUMMARY_ROWS = ("weighted avg", "macro avg", "micro avg", "accuracy")
logger = logging.getLogger("evaluate")


# ----------------------------------------------------------------------------- model

def _rasa(project: Path) -> str:
    local = Path(sys.executable).parent / "rasa"
    return str(local) if local.exists() else "rasa"


def _env(project: Path) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(project) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _importable(project: Path) -> None:
    """The project's custom components (config.yml names e.g. nlu_components.*) must import."""
    if str(project) not in sys.path:
        sys.path.insert(0, str(project))


def _inputs_mtime(project: Path, config: Path) -> float:
    paths = [config, project / "domain.yml"] + [p for folder in ("data", "nlu_components")
                                                 for p in (project / folder).rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in paths if p.exists())


def ensure_model(project: Path, config: Path, model: Optional[Path], force: bool = False) -> Tuple[Path, Optional[float]]:
    """The model to evaluate and, when it was trained here, the measured training time."""
    if model is not None:
        if not model.exists():
            raise SystemExit(f"evaluate: no model at {model}")
        return model, None
    default_config = config.resolve() == (project / "config.yml").resolve()
    script = project / "scripts" / "train_if_needed.sh"
    if default_config and script.exists():
        if force:
            (project / "models" / ".fingerprint").unlink(missing_ok=True)
        start = time.monotonic()
        run = subprocess.run([str(script)], cwd=project, env=_env(project), text=True, capture_output=True)
        sys.stdout.write(run.stdout)
        if run.returncode != 0:
            sys.stderr.write(run.stderr[-5000:])
            raise SystemExit("evaluate: training failed")
        trained = "Training" in run.stdout
        return project / "models" / "bakame.tar.gz", (time.monotonic() - start if trained else None)
    name = "bakame" if default_config else config.stem
    target = project / "models" / f"{name}.tar.gz"
    if target.exists() and not force and target.stat().st_mtime >= _inputs_mtime(project, config):
        return target, None
    print(f"Training {target} with {config} ...", flush=True)
    start = time.monotonic()
    run = subprocess.run(
        [_rasa(project), "train", "--config", str(config), "--domain", str(project / "domain.yml"),
         "--data", str(project / "data"), "--out", str(target.parent), "--fixed-model-name", name, "--quiet"],
        cwd=project, env=_env(project), text=True, capture_output=True)
    if run.returncode != 0 or not target.exists():
        sys.stderr.write((run.stdout + run.stderr)[-5000:])
        raise SystemExit("evaluate: training failed")
    seconds = time.monotonic() - start
    print(f"Trained in {seconds:.0f} s.")
    return target, seconds


def model_info(model: Path) -> Dict[str, Any]:
    """Size, metadata and the training time as seen in the archive (first file to metadata)."""
    info: Dict[str, Any] = {"path": str(model), "size_bytes": model.stat().st_size}
    with tarfile.open(model, "r:gz") as archive:
        members = archive.getmembers()
        meta_member = next((m for m in members if m.name.lstrip("/") == "metadata.json"), None)
        metadata = json.load(archive.extractfile(meta_member)) if meta_member else {}
        times = [m.mtime for m in members if m.isfile()]
    info.update({
        "trained_at": metadata.get("trained_at"),
        "model_id": metadata.get("model_id"),
        "rasa_version": metadata.get("rasa_open_source_version"),
        "archive_training_seconds": (max(times) - min(times)) if times else None,
    })
    return info


def config_info(config: Path) -> Dict[str, Any]:
    import yaml

    raw = config.read_bytes()
    parsed = yaml.safe_load(raw) or {}
    pipeline = []
    for step in parsed.get("pipeline") or []:
        extra = {k: v for k, v in step.items() if k in ("epochs", "analyzer", "threshold")}
        pipeline.append(step["name"] + (f" ({', '.join(f'{k} {v}' for k, v in extra.items())})" if extra else ""))
    return {
        "path": str(config),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "pipeline": pipeline,
        "policies": [p["name"] for p in parsed.get("policies") or []],
    }


def model_is_current(project: Path, model: Path) -> Optional[bool]:
    """Whether models/.fingerprint (written by train_if_needed.sh) matches data/domain/config now."""
    stamp = model.parent / ".fingerprint"
    if model.name != "bakame.tar.gz" or not stamp.exists():
        return None
    command = ("find data domain.yml config.yml -type f -print0 | sort -z | xargs -0 sha256sum "
               "| sha256sum | cut -c1-16")
    script = project / "scripts" / "train_if_needed.sh"
    if script.exists():  # the script's own fingerprint command, so both always agree
        for line in script.read_text().splitlines():
            if line.startswith("fingerprint=$(") and line.endswith(")"):
                command = line[len("fingerprint=$("):-1]
    run = subprocess.run(["bash", "-c", command], cwd=project, capture_output=True, text=True)
    return run.returncode == 0 and run.stdout.strip() == stamp.read_text().strip()


# ----------------------------------------------------------------------------- data

def data_summary(project: Path, languages: Sequence[str]) -> Dict[str, Any]:
    report = check_data.Report()
    prj = check_data.Project(project, languages)
    examples = check_data.load_examples(prj, report)
    per_intent: Dict[str, Dict[str, int]] = {}
    entities: Dict[str, int] = {lang: 0 for lang in languages}
    for example in examples:
        if example.language in languages:
            per_intent.setdefault(example.intent, {lang: 0 for lang in languages})[example.language] += 1
            entities[example.language] += len(check_data._ENTITY.findall(example.text))
    return {
        "examples_per_intent": dict(sorted(per_intent.items())),
        "examples": {lang: sum(v[lang] for v in per_intent.values()) for lang in languages},
        "intents": {lang: sum(1 for v in per_intent.values() if v[lang]) for lang in languages},
        "entity_annotations": entities,
    }


# ----------------------------------------------------------------------------- evaluation

def _read_json(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def summarise_intent_report(report: Dict[str, Any]) -> Dict[str, Any]:
    per_intent = {k: round(v["f1-score"], 4) for k, v in report.items()
                  if isinstance(v, dict) and "f1-score" in v and k not in SUMMARY_ROWS}
    weighted = report.get("weighted avg", {})
    macro = report.get("macro avg", {})
    return {
        "f1_weighted": round(weighted.get("f1-score", 0.0), 4),
        "f1_macro": round(macro.get("f1-score", 0.0), 4),
        "precision_weighted": round(weighted.get("precision", 0.0), 4),
        "recall_weighted": round(weighted.get("recall", 0.0), 4),
        "accuracy": round(report.get("accuracy", 0.0), 4) if isinstance(report.get("accuracy"), float) else None,
        "support": weighted.get("support"),
        "per_intent_f1": per_intent,
        "lowest": sorted(per_intent.items(), key=lambda kv: (kv[1], kv[0]))[:3],
    }


def summarise_entity_reports(folder: Path) -> Dict[str, Any]:
    """{extractor: {f1_weighted, per_entity_f1}} from <Extractor>_report.json."""
    out: Dict[str, Any] = {}
    for path in sorted(folder.glob("*_report.json")):
        extractor = path.name[: -len("_report.json")]
        if extractor in ("intent", "response_selection") or extractor.endswith("Mapper"):
            continue
        report = _read_json(path)
        per_entity = {k: round(v["f1-score"], 4) for k, v in report.items()
                      if isinstance(v, dict) and "f1-score" in v and k not in SUMMARY_ROWS and k != "no_entity"}
        weighted = report.get("weighted avg") or report.get("micro avg") or {}
        out[extractor] = {"f1_weighted": round(weighted.get("f1-score", 0.0), 4), "per_entity_f1": per_entity}
    return out


def _count_stories(path: Path) -> int:
    import yaml

    if not path.exists():
        return 0
    doc = yaml.safe_load(path.read_text()) or {}
    return len(doc.get("stories") or []) if isinstance(doc, dict) else 0


async def _intents(agent: Any, texts: Sequence[str]) -> Dict[str, str]:
    """The model's predicted intent for each text (parsed once each)."""
    predicted: Dict[str, str] = {}
    for text in dict.fromkeys(texts):
        parsed = await agent.parse_message(text)
        predicted[text] = ((parsed or {}).get("intent") or {}).get("name") or ""
    return predicted


def _oos(predicted: Dict[str, str], project: Path, languages: Sequence[str], dirs: Tuple[Path, Path],
         out: Path) -> Dict[str, Any]:
    report = oos_eval.oos_report(predicted.__getitem__, project, languages, *dirs)
    report["oos_dir"], report["heldout_dir"] = (_shown(str(d), str(project)) for d in dirs)
    (out / "oos.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    (out / "oos.md").write_text("# Off-topic robustness\n\n" + oos_eval.markdown(report))
    return report


async def _evaluate(model: Path, project: Path, out: Path, languages: Sequence[str], stories: Optional[Path],
                    nlu_test_dir: Optional[Path], oos_dirs: Optional[Tuple[Path, Path]] = None,
                    nlu: bool = True) -> Dict[str, Any]:
    import rasa.utils.common
    import rasa.utils.log_utils
    from infra.rasa_patches import load_agent_for_evaluation
    from rasa.nlu.test import run_evaluation

    rasa.utils.common.configure_logging_and_warnings(logging.INFO)
    rasa.utils.log_utils.configure_structlog(logging.INFO)

    agent = load_agent_for_evaluation(model)
    domain = project / "domain.yml"
    results: Dict[str, Any] = {"nlu": {}, "stories": None, "oos": None}
    if oos_dirs is not None:
        print(f"Off-topic and in-scope held-out sets: {oos_dirs[0]}, {oos_dirs[1]}", flush=True)
        predicted = await _intents(agent, oos_eval.texts_to_parse(project, languages, *oos_dirs))
        results["oos"] = _oos(predicted, project, languages, oos_dirs, out)
    for lang in (languages if nlu else ()):
        data = (nlu_test_dir or project / "data" / "nlu") / lang
        folder = out / "nlu" / lang
        folder.mkdir(parents=True, exist_ok=True)
        print(f"NLU ({lang}): {data} -> {folder}", flush=True)
        await run_evaluation(str(data), agent.processor, output_directory=str(folder), errors=True,
                             disable_plotting=False, domain_path=str(domain))
        results["nlu"][lang] = {
            "test_data": str(data),
            "intent": summarise_intent_report(_read_json(folder / "intent_report.json")),
            "entities": summarise_entity_reports(folder),
        }
    if stories is not None:
        from rasa.core.test import test as core_test

        folder = out / "stories"
        folder.mkdir(parents=True, exist_ok=True)
        print(f"Stories: {stories} -> {folder}", flush=True)
        core = await core_test(str(stories), agent, out_directory=str(folder), disable_plotting=False,
                               errors=True, warnings=True)
        total = _count_stories(stories)
        failed = _count_stories(folder / "failed_test_stories.yml")
        results["stories"] = {
            "file": str(stories),
            "stories": total,
            "failed": failed,
            "story_accuracy": round((total - failed) / total, 4) if total else None,
            "action_accuracy": round(core.get("accuracy", 0.0), 4),
            "action_f1": round(core.get("f1", 0.0), 4),
        }
    return results


def evaluate(project: Path = ROOT, *, model: Optional[Path] = None, config: Optional[Path] = None,
             out: Optional[Path] = None, languages: Sequence[str] = LANGUAGES, stories: Optional[Path] = None,
             core: bool = True, nlu_test_dir: Optional[Path] = None, train: bool = False,
             oos_dir: Optional[Path] = None, heldout_dir: Optional[Path] = None) -> Dict[str, Any]:
    """Train if needed, evaluate, write the model card; returns the card's data."""
    project = project.resolve()
    _importable(project)
    config = (config or project / "config.yml").resolve()
    out = (out or project / "results").resolve()
    out.mkdir(parents=True, exist_ok=True)
    stories = (stories or project / "tests" / "test_stories.yml") if core else None
    if stories is not None and not stories.exists():
        print(f"(no {stories}: story tests skipped)")
        stories = None
    model, measured = ensure_model(project, config, model.resolve() if model else None, force=train)
    started = time.monotonic()
    scores = asyncio.run(_evaluate(model, project, out, languages, stories, nlu_test_dir,
                                   _oos_dirs(project, oos_dir, heldout_dir)))
    info = model_info(model)
    archive_seconds = info["archive_training_seconds"]
    training = ({"seconds": round(measured), "source": "measured while training for this evaluation"}
                if measured is not None else
                {"seconds": None if archive_seconds is None else round(archive_seconds), "source": "model archive timestamps (approximate)"})
    card = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "project": str(project),
        "model": info,
        "model_current": model_is_current(project, model),
        "config": config_info(config),
        "training_time": training,
        "evaluation_seconds": round(time.monotonic() - started),
        "data": data_summary(project, languages),
        "languages": list(languages),
        "nlu_test_data": f"held-out data in {nlu_test_dir}/<lang>" if nlu_test_dir else "the training data (data/nlu/<lang>)",
        "nlu": scores["nlu"],
        "stories": scores["stories"],
        "oos": scores["oos"],
    }
    (out / "model_card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    (out / "model_card.md").write_text(model_card_markdown(card, out))
    print(f"Model card: {out / 'model_card.md'}")
    language_id_report.write(out, project)
    return card


def _oos_dirs(project: Path, oos_dir: Optional[Path], heldout_dir: Optional[Path]) -> Optional[Tuple[Path, Path]]:
    dirs = ((oos_dir or project / "tests" / "data" / "oos").resolve(),
            (heldout_dir or project / "tests" / "data" / "heldout").resolve())
    return dirs if any(d.exists() for d in dirs) else None


def evaluate_oos(project: Path = ROOT, *, model: Optional[Path] = None, out: Optional[Path] = None,
                 languages: Sequence[str] = LANGUAGES, oos_dir: Optional[Path] = None,
                 heldout_dir: Optional[Path] = None) -> Dict[str, Any]:
    """Only the off-topic / in-scope held-out measurement of an existing model (no training)."""
    project = project.resolve()
    _importable(project)
    model = (model or project / "models" / "bakame.tar.gz").resolve()
    if not model.exists():
        raise SystemExit(f"evaluate: no model at {model} (train it first, or pass --model)")
    out = (out or project / "results").resolve()
    out.mkdir(parents=True, exist_ok=True)
    dirs = _oos_dirs(project, oos_dir, heldout_dir)
    if dirs is None:
        raise SystemExit("evaluate: no held-out files (tests/data/oos/, tests/data/heldout/)")
    scores = asyncio.run(_evaluate(model, project, out, languages, None, None, dirs, nlu=False))
    scores["oos"]["model"] = str(model)
    (out / "oos.json").write_text(json.dumps(scores["oos"], indent=2, ensure_ascii=False) + "\n")
    print(f"Off-topic report: {out / 'oos.md'}")
    return scores["oos"]


# ----------------------------------------------------------------------------- model card

def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def _shown(path: str, project: str) -> str:
    """A path relative to the project when it is inside it."""
    try:
        return str(Path(path).relative_to(project))
    except ValueError:
        return path


def model_card_markdown(card: Dict[str, Any], out: Path) -> str:
    langs = card["languages"]
    project = card["project"]
    m, c, d = card["model"], card["config"], card["data"]
    current = {True: "yes (models/.fingerprint matches data, domain and config)", False: "NO - data, domain or config "
               "changed since this model was trained", None: "unknown"}[card["model_current"]]
    lines = [
        "# Model card",
        "",
        f"Generated {card['generated_at']} by `scripts/evaluate.py` (`make evaluate`).",
        "",
        "## Model",
        "",
        "| | |",
        "|---|---|",
        f"| file | `{_shown(m['path'], project)}` |",
        f"| size | {_size(m['size_bytes'])} |",
        f"| trained at | {m.get('trained_at') or '-'} (Rasa {m.get('rasa_version') or '?'}) |",
        f"| training time | {card['training_time']['seconds']} s ({card['training_time']['source']}) |",
        f"| trained from current data | {current} |",
        f"| config | `{_shown(c['path'], project)}` sha256 `{c['sha256']}` |",
        f"| pipeline | {', '.join(c['pipeline'])} |",
        f"| policies | {', '.join(c['policies'])} |",
        "",
        "## Data",
        "",
        "| | " + " | ".join(langs) + " |",
        "|---|" + "---:|" * len(langs),
        "| examples | " + " | ".join(str(d["examples"][lang]) for lang in langs) + " |",
        "| intents | " + " | ".join(str(d["intents"][lang]) for lang in langs) + " |",
        "| entity annotations | " + " | ".join(str(d["entity_annotations"][lang]) for lang in langs) + " |",
        "",
        "Examples per intent:",
        "",
        "| intent | " + " | ".join(langs) + " |",
        "|---|" + "---:|" * len(langs),
    ]
    lines += [f"| {intent} | " + " | ".join(str(per[lang]) for lang in langs) + " |"
              for intent, per in d["examples_per_intent"].items()]
    lines += [
        "",
        "## NLU scores per language",
        "",
        f"Test data: {card['nlu_test_data']}."
        + (" Scores on training data show fit and regressions between models, not how well new phrasings "
           "are understood: see `make nlu-report` (cross-validation) for that." if "training" in card["nlu_test_data"] else ""),
        "",
        "| | " + " | ".join(langs) + " |",
        "|---|" + "---:|" * len(langs),
        "| intent F1 (weighted) | " + " | ".join(_pct(card["nlu"][lang]["intent"]["f1_weighted"]) for lang in langs) + " |",
        "| intent F1 (macro) | " + " | ".join(_pct(card["nlu"][lang]["intent"]["f1_macro"]) for lang in langs) + " |",
        "| intent accuracy | " + " | ".join(_pct(card["nlu"][lang]["intent"]["accuracy"]) for lang in langs) + " |",
    ]
    extractors = sorted({e for lang in langs for e in card["nlu"][lang]["entities"]})
    for extractor in extractors:
        lines.append(f"| entity F1 ({extractor}) | " + " | ".join(
            _pct(card["nlu"][lang]["entities"].get(extractor, {}).get("f1_weighted")) for lang in langs) + " |")
    lines.append("| lowest intents | " + " | ".join(
        ", ".join(f"{k} {v:.2f}" for k, v in card["nlu"][lang]["intent"]["lowest"]) for lang in langs) + " |")
    entities = sorted({e for lang in langs for x in extractors for e in card["nlu"][lang]["entities"].get(x, {}).get("per_entity_f1", {})})
    if entities:
        lines += ["", "Entity F1 per entity:", "", "| entity | " + " | ".join(langs) + " |", "|---|" + "---:|" * len(langs)]
        for entity in entities:
            values = []
            for lang in langs:
                found = [card["nlu"][lang]["entities"][x]["per_entity_f1"].get(entity) for x in extractors
                         if entity in card["nlu"][lang]["entities"].get(x, {}).get("per_entity_f1", {})]
                values.append(_pct(found[0]) if found else "-")
            lines.append(f"| {entity} | " + " | ".join(values) + " |")
    lines += ["", "## Stories", ""]
    s = card["stories"]
    if s:
        lines += [
            f"`{_shown(s['file'], project)}`: {s['stories'] - s['failed']} of {s['stories']} stories fully correct "
            f"(story accuracy {_pct(s['story_accuracy'])}); action accuracy {_pct(s['action_accuracy'])}, "
            f"action F1 {_pct(s['action_f1'])}. Failures: `stories/failed_test_stories.yml`.",
        ]
    else:
        lines.append("Not run.")
    lines += ["", "## Off-topic robustness", ""]
    lines.append(oos_eval.markdown(card["oos"]) if card.get("oos") else "Not measured (no held-out files).")
    lines += [
        "",
        "## Files",
        "",
        "| file | holds |",
        "|---|---|",
    ]
    for lang in langs:
        lines.append(f"| `nlu/{lang}/intent_report.json`, `nlu/{lang}/intent_confusion_matrix.png` | {lang}: "
                     f"intent precision/recall/F1 per intent, confusion matrix |")
        lines.append(f"| `nlu/{lang}/intent_errors.json`, `nlu/{lang}/*_report.json` | {lang}: misclassified "
                     f"examples, entity scores per extractor |")
    lines.append("| `stories/story_report.json`, `stories/story_confusion_matrix.png` | actions predicted in test stories |")
    lines.append("| `oos.json`, `oos.md` | off-topic false-command rate per language and command; in-scope held-out "
                 "accuracy; misclassified examples |")
    lines.append("")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Per-language NLU reports, story results and a model card.")
    parser.add_argument("--project-dir", type=Path, default=ROOT)
    parser.add_argument("--model", type=Path, help="evaluate this model instead of training/using models/bakame.tar.gz")
    parser.add_argument("--config", type=Path, help="config to train with (default: <project>/config.yml)")
    parser.add_argument("--train", action="store_true", help="retrain even if the model looks up to date")
    parser.add_argument("--out", type=Path, help="results folder (default: <project>/results)")
    parser.add_argument("--languages", default=",".join(LANGUAGES))
    parser.add_argument("--stories", type=Path, help="test stories (default: <project>/tests/test_stories.yml)")
    parser.add_argument("--no-stories", action="store_true", help="skip the story tests")
    parser.add_argument("--nlu-test-dir", type=Path, help="held-out NLU data: DIR/<lang>/ per language")
    parser.add_argument("--oos-dir", type=Path, help="off-topic held-out sets (default: tests/data/oos)")
    parser.add_argument("--heldout-dir", type=Path, help="in-scope held-out sets (default: tests/data/heldout)")
    parser.add_argument("--oos-only", action="store_true",
                        help="only the off-topic / in-scope held-out measurement of an existing model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    project = args.project_dir.resolve()
    if args.oos_only:
        report = evaluate_oos(project, model=args.model, out=args.out, languages=args.languages.split(","),
                              oos_dir=args.oos_dir, heldout_dir=args.heldout_dir)
        print_oos_summary(report)
        return 0
    config = args.config if args.config is None or args.config.is_absolute() else (Path.cwd() / args.config)
    card = evaluate(project, model=args.model, config=config, out=args.out, languages=args.languages.split(","),
                    stories=args.stories, core=not args.no_stories, nlu_test_dir=args.nlu_test_dir, train=args.train,
                    oos_dir=args.oos_dir, heldout_dir=args.heldout_dir)
    for lang in card["languages"]:
        intent = card["nlu"][lang]["intent"]
        ents = ", ".join(f"{x} {v['f1_weighted']:.3f}" for x, v in card["nlu"][lang]["entities"].items())
        print(f"{lang}: intent F1 {intent['f1_weighted']:.3f} (macro {intent['f1_macro']:.3f}); entity F1 {ents or '-'}")
    if card["stories"]:
        s = card["stories"]
        print(f"stories: {s['stories'] - s['failed']}/{s['stories']} correct")
    print("\n".join(answer_check_report.summary_lines(answer_check_report.report())))  # no model needed
    if card.get("oos"):
        print_oos_summary(card["oos"])
    return 0


def print_oos_summary(report: Dict[str, Any]) -> None:
    for lang, entry in report["languages"].items():
        off, ins = entry.get("off_topic") or {}, entry.get("in_scope") or {}
        per = ", ".join(f"{c} {v['count']}" for c, v in (off.get("per_command") or {}).items() if v["count"])
        print(f"{lang}: off-topic taken as a command {off.get('false_commands')}/{off.get('utterances')} "
              f"({100 * (off.get('false_command_rate') or 0):.1f} %){' [' + per + ']' if per else ''}; "
              f"in-scope held-out accuracy {100 * (ins.get('accuracy') or 0):.1f} % ({ins.get('utterances')})")


if __name__ == "__main__":
    sys.exit(main())
