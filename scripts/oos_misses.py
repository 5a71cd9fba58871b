#!/usr/bin/env python
"""Why each held-out utterance is missed, and what the guard / fallback settings would change.

Parses the in-scope and off-topic held-out sets (scripts/oos_eval.py) once with a model, keeps
DIET's own ranking, then replays CommandGuard and FallbackClassifier on it, so their settings can
be compared without retraining:

    python scripts/oos_misses.py --model models/bakame.tar.gz              # every miss and its cause
    python scripts/oos_misses.py --model M --set threshold=0.6 --set max_unfamiliar_share=0.25

`threshold` / `ambiguity_threshold` are FallbackClassifier's; any other key is CommandGuard's.
Calibrating on these sets makes their figures optimistic for new data (docs/nlu-evaluation.md).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
for path in (SCRIPTS, ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import oos_eval  # noqa: E402

FALLBACK = "nlu_fallback"


def _component(agent: Any, class_name: str) -> Any:
    for node in agent.processor.graph_runner._instantiated_nodes.values():
        component = getattr(node, "_component", None)
        if type(component).__name__ == class_name:
            return component
    raise SystemExit(f"no {class_name} in the model")


async def _diet_rankings(agent: Any, texts: Sequence[str]) -> Dict[str, List[Dict[str, Any]]]:
    """DIET's ranking per text: the pipeline's ranking without the fallback entries."""
    rankings = {}
    for text in dict.fromkeys(texts):
        parsed = await agent.parse_message(text)
        rankings[text] = [r for r in parsed.get("intent_ranking") or [] if r.get("name") != FALLBACK]
    return rankings


def decide(text: str, ranking: List[Dict[str, Any]], guard: Any, fallback: Dict[str, float]) -> Tuple[str, str]:
    """(predicted intent, cause) for DIET's `ranking` under the current guard/fallback settings."""
    from rasa.shared.nlu.training_data.message import Message

    if not ranking:
        return FALLBACK, "empty"
    top = ranking[0]
    message = Message(data={"text": text, "intent": dict(top), "intent_ranking": [dict(r) for r in ranking]})
    guard.process([message])
    if message.get("intent")["name"] == FALLBACK:
        return FALLBACK, "guard"
    runner_up = ranking[1]["confidence"] if len(ranking) > 1 else 0.0
    if top["confidence"] < fallback["threshold"]:
        return FALLBACK, "low confidence"
    if top["confidence"] - runner_up < fallback["ambiguity_threshold"]:
        return FALLBACK, "ambiguous"
    return top["name"], "diet"


def replay(rankings: Dict[str, List[Dict[str, Any]]], guard: Any, fallback: Dict[str, float],
           project: Path, languages: Sequence[str], oos_dir: Path, heldout_dir: Path) -> Dict[str, Any]:
    commands = oos_eval.command_intents(project / "domain.yml")
    report: Dict[str, Any] = {}
    for lang in languages:
        inscope = oos_eval.load_inscope(heldout_dir / lang / "nlu.yml")
        offtopic = oos_eval.load_offtopic(oos_dir / f"{lang}.yml")
        misses, false_commands = [], []
        for text, gold in inscope:
            predicted, cause = decide(text, rankings[text], guard, fallback)
            if predicted != gold:
                top = rankings[text][:2]
                misses.append({"text": text, "intent": gold, "predicted": predicted, "cause": cause,
                               "diet": [(r["name"], round(r["confidence"], 3)) for r in top]})
        for text, source in offtopic:
            predicted, _ = decide(text, rankings[text], guard, fallback)
            if predicted in commands:
                false_commands.append({"text": text, "corpus_intent": source, "predicted": predicted,
                                       "confidence": round(rankings[text][0]["confidence"], 3)})
        report[lang] = {"in_scope": f"{len(inscope) - len(misses)}/{len(inscope)} = "
                                    f"{100 * (len(inscope) - len(misses)) / len(inscope):.1f} %",
                        "off_topic_commands": f"{len(false_commands)}/{len(offtopic)} = "
                                              f"{100 * len(false_commands) / len(offtopic):.1f} %",
                        "misses": misses, "false_commands": false_commands}
    return report


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "bakame.tar.gz")
    parser.add_argument("--languages", default="en,rw")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a guard or fallback setting to replay with (repeatable)")
    parser.add_argument("--summary", action="store_true", help="only the figures, no miss list")
    parser.add_argument("--try", dest="trials", action="append", default=[], metavar="K=V[;K=V]",
                        help="also replay with these settings on top of --set, figures only (repeatable)")
    args = parser.parse_args(argv)
    import logging

    import rasa.utils.log_utils
    from infra.rasa_patches import load_agent_for_evaluation

    rasa.utils.log_utils.configure_structlog(logging.WARNING)  # no per-message debug lines on stdout
    agent = load_agent_for_evaluation(args.model)
    guard = _component(agent, "CommandGuard")
    fallback_component = _component(agent, "FallbackClassifier")
    fallback = {k: fallback_component.component_config[k] for k in ("threshold", "ambiguity_threshold")}
    _apply(args.set, guard, fallback)
    languages = args.languages.split(",")
    oos_dir, heldout_dir = ROOT / "tests" / "data" / "oos", ROOT / "tests" / "data" / "heldout"
    rankings = asyncio.run(_diet_rankings(agent, oos_eval.texts_to_parse(ROOT, languages, oos_dir, heldout_dir)))
    report = replay(rankings, guard, fallback, ROOT, languages, oos_dir, heldout_dir)
    if args.summary:
        report = {lang: {k: v for k, v in entry.items() if k in ("in_scope", "off_topic_commands")}
                  for lang, entry in report.items()}
    print(json.dumps(report, indent=1, ensure_ascii=False))
    base_guard, base_fallback = dict(guard.config), dict(fallback)
    for trial in args.trials:
        guard.config, fallback = dict(base_guard), dict(base_fallback)
        _apply(trial.split(";"), guard, fallback)
        figures = replay(rankings, guard, fallback, ROOT, languages, oos_dir, heldout_dir)
        print(trial, {lang: (e["in_scope"], e["off_topic_commands"]) for lang, e in figures.items()}, flush=True)
    return 0


def _apply(settings: Sequence[str], guard: Any, fallback: Dict[str, float]) -> None:
    for setting in settings:
        key, value = setting.split("=", 1)
        (fallback if key in fallback else guard.config)[key] = json.loads(value)


if __name__ == "__main__":
    sys.exit(main())
