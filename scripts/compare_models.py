#!/usr/bin/env python
"""`make compare A=... B=...`: two models or two configs side by side, per language.

* Two models (``.tar.gz``): both are evaluated exactly like `make evaluate` (NLU per language on
  the same data, test stories) into results/compare/<name>/, then compared.
* Two configs (``.yml``): per-language cross-validation with each config (``--folds``, default 3),
  the same as ``rasa test nlu --nlu data/nlu/<lang> --config X --cross-validation`` — an honest
  comparison on examples the model did not see. ``--train`` instead trains a full model per config
  (models/<config name>.tar.gz) and compares the two models (adds stories and training time).

Writes results/compare.md (markdown table: A, B and B - A) and results/compare.json, and prints
the table. docs/ml.md shows examples.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

SCRIPTS = Path(__file__).resolve().parent
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import evaluate  # noqa: E402  (sets the TF/matplotlib environment first)

ROOT = evaluate.ROOT


def kind_of(path: Path) -> str:
    name = path.name
    if name.endswith(".tar.gz"):
        return "model"
    if path.suffix in (".yml", ".yaml"):
        return "config"
    raise SystemExit(f"compare: {path} is neither a model (.tar.gz) nor a config (.yml)")


def labels_for(a: Path, b: Path) -> Tuple[str, str]:
    def stem(p: Path) -> str:
        return p.name[: -len(".tar.gz")] if p.name.endswith(".tar.gz") else p.stem

    la, lb = stem(a), stem(b)
    if la == lb:
        la, lb = f"A-{la}", f"B-{lb}"
    return la, lb


# ----------------------------------------------------------------------------- configs: cross-validation

async def _cross_validate(config: Path, project: Path, out: Path, languages: Sequence[str], folds: int) -> Dict[str, Any]:
    import logging

    import rasa.utils.common
    from rasa.model_testing import perform_nlu_cross_validation
    from rasa.shared.importers.importer import TrainingDataImporter

    rasa.utils.common.configure_logging_and_warnings(logging.INFO)
    config_dict = TrainingDataImporter.load_from_dict(config_path=str(config)).get_config()
    result: Dict[str, Any] = {"nlu": {}, "stories": None, "seconds": {}}
    for lang in languages:
        folder = out / f"nlu-{lang}"
        folder.mkdir(parents=True, exist_ok=True)
        data = TrainingDataImporter.load_from_dict(
            training_data_paths=[str(project / "data" / "nlu" / lang)], domain_path=str(project / "domain.yml")
        ).get_nlu_data()
        print(f"Cross-validation ({lang}, {folds} folds) with {config} -> {folder}", flush=True)
        start = time.monotonic()
        await perform_nlu_cross_validation(config_dict, data, str(folder),
                                           {"folds": folds, "errors": True, "disable_plotting": False})
        result["seconds"][lang] = round(time.monotonic() - start)
        result["nlu"][lang] = {
            "intent": evaluate.summarise_intent_report(evaluate._read_json(folder / "intent_report.json")),
            "entities": evaluate.summarise_entity_reports(folder),
        }
    return result


# ----------------------------------------------------------------------------- table

def _fmt(value: Optional[float], digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _delta(a: Optional[float], b: Optional[float], digits: int = 3) -> str:
    if a is None or b is None:
        return "-"
    d = b - a
    return f"{d:+.{digits}f}" if round(d, digits) else "0"


def rows(result_a: Dict[str, Any], result_b: Dict[str, Any], languages: Sequence[str]) -> List[Tuple[str, Any, Any, int]]:
    """(metric, a, b, digits) for the summary table."""
    out: List[Tuple[str, Any, Any, int]] = []
    for lang in languages:
        ia, ib = result_a["nlu"][lang]["intent"], result_b["nlu"][lang]["intent"]
        out.append((f"intent F1 weighted ({lang})", ia["f1_weighted"], ib["f1_weighted"], 3))
        out.append((f"intent F1 macro ({lang})", ia["f1_macro"], ib["f1_macro"], 3))
        extractors = sorted(set(result_a["nlu"][lang]["entities"]) | set(result_b["nlu"][lang]["entities"]))
        for x in extractors:
            ea = result_a["nlu"][lang]["entities"].get(x, {}).get("f1_weighted")
            eb = result_b["nlu"][lang]["entities"].get(x, {}).get("f1_weighted")
            out.append((f"entity F1 {x} ({lang})", ea, eb, 3))
    sa, sb = result_a.get("stories"), result_b.get("stories")
    if sa or sb:
        out.append(("story accuracy", (sa or {}).get("story_accuracy"), (sb or {}).get("story_accuracy"), 3))
        out.append(("action accuracy", (sa or {}).get("action_accuracy"), (sb or {}).get("action_accuracy"), 3))
    ta, tb = result_a.get("training_seconds"), result_b.get("training_seconds")
    if ta is not None or tb is not None:
        out.append(("training time (s)", ta, tb, 0))
    ma, mb = result_a.get("model_mb"), result_b.get("model_mb")
    if ma is not None or mb is not None:
        out.append(("model size (MB)", ma, mb, 1))
    cva, cvb = result_a.get("seconds"), result_b.get("seconds")
    if cva and cvb:
        out.append(("cross-validation time (s)", sum(cva.values()), sum(cvb.values()), 0))
    return out


def markdown(a: Path, b: Path, la: str, lb: str, method: str, result_a, result_b, languages) -> str:
    lines = [
        f"# Comparison: {la} vs {lb}",
        "",
        f"* **A** `{a}`",
        f"* **B** `{b}`",
        f"* method: {method}",
        "",
        f"| metric | A: {la} | B: {lb} | B - A |",
        "|---|---:|---:|---:|",
    ]
    for metric, va, vb, digits in rows(result_a, result_b, languages):
        lines.append(f"| {metric} | {_fmt(va, digits)} | {_fmt(vb, digits)} | {_delta(va, vb, digits)} |")
    for lang in languages:
        pa = result_a["nlu"][lang]["intent"]["per_intent_f1"]
        pb = result_b["nlu"][lang]["intent"]["per_intent_f1"]
        intents = sorted(set(pa) | set(pb), key=lambda i: (-abs((pb.get(i) or 0) - (pa.get(i) or 0)), i))
        lines += ["", f"Intent F1 per intent ({lang}), biggest changes first:", "",
                  f"| intent | A | B | B - A |", "|---|---:|---:|---:|"]
        lines += [f"| {i} | {_fmt(pa.get(i))} | {_fmt(pb.get(i))} | {_delta(pa.get(i), pb.get(i))} |" for i in intents]
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main

def _model_result(card: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "nlu": card["nlu"],
        "stories": card["stories"],
        "training_seconds": card["training_time"]["seconds"],
        "model_mb": round(card["model"]["size_bytes"] / 1_000_000, 1),
    }


def compare(a: Path, b: Path, *, project: Path = ROOT, out: Optional[Path] = None, folds: int = 3,
            languages: Sequence[str] = evaluate.LANGUAGES, train: bool = False, stories: bool = True,
            nlu_test_dir: Optional[Path] = None) -> Dict[str, Any]:
    project = project.resolve()
    evaluate._importable(project)
    out = (out or project / "results").resolve()
    kinds = {kind_of(a), kind_of(b)}
    if len(kinds) != 1:
        raise SystemExit("compare: give two models (.tar.gz) or two configs (.yml), not one of each")
    kind = kinds.pop()
    la, lb = labels_for(a, b)
    results = {}
    if kind == "config" and not train:
        method = (f"{folds}-fold cross-validation per language on {project / 'data' / 'nlu'}/<lang> "
                  f"(scores on held-out folds)")
        for label, config in ((la, a), (lb, b)):
            results[label] = asyncio.run(_cross_validate(config.resolve(), project, out / "compare" / label, languages, folds))
    else:
        test_data = f"held-out data in {nlu_test_dir}/<lang>" if nlu_test_dir else f"{project / 'data' / 'nlu'}/<lang> (the training data)"
        method = f"both models evaluated on the same data: NLU on {test_data}" + ("; test stories" if stories else "")
        if kind == "config":
            method = "a model trained per config, then " + method
        for label, path in ((la, a), (lb, b)):
            card = evaluate.evaluate(project, model=path if kind == "model" else None,
                                     config=path if kind == "config" else None, out=out / "compare" / label,
                                     languages=languages, core=stories, nlu_test_dir=nlu_test_dir)
            results[label] = _model_result(card)
    text = markdown(a, b, la, lb, method, results[la], results[lb], languages)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(text)
    (out / "compare.json").write_text(json.dumps({"a": str(a), "b": str(b), "labels": [la, lb], "method": method,
                                                  "results": results}, indent=2) + "\n")
    print(text)
    print(f"Written to {out / 'compare.md'}")
    return {"labels": (la, lb), "results": results, "markdown": text}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Compare two models or two configs, per language.")
    parser.add_argument("a", type=Path, help="model (.tar.gz) or config (.yml)")
    parser.add_argument("b", type=Path, help="model (.tar.gz) or config (.yml)")
    parser.add_argument("--project-dir", type=Path, default=ROOT)
    parser.add_argument("--out", type=Path, help="results folder (default: <project>/results)")
    parser.add_argument("--folds", type=int, default=3, help="cross-validation folds for configs (default 3)")
    parser.add_argument("--train", action="store_true", help="configs: train a model each and compare the models")
    parser.add_argument("--languages", default=",".join(evaluate.LANGUAGES))
    parser.add_argument("--no-stories", action="store_true", help="models: skip the story tests")
    parser.add_argument("--nlu-test-dir", type=Path, help="models: held-out NLU data, DIR/<lang>/")
    args = parser.parse_args(argv)
    cwd = Path.cwd()
    a, b = (p if p.is_absolute() else cwd / p for p in (args.a, args.b))
    for p in (a, b):
        if not p.exists():
            raise SystemExit(f"compare: {p} does not exist")
    compare(a, b, project=args.project_dir, out=args.out, folds=args.folds, languages=args.languages.split(","),
            train=args.train, stories=not args.no_stories, nlu_test_dir=args.nlu_test_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
