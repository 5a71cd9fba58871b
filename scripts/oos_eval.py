"""Off-topic robustness: how often an utterance nobody on this project wrote becomes a command.

Two held-out sets per language, neither ever used for training:

* ``tests/data/oos/<lang>.yml`` - off-topic requests by native speakers (banking, travel,
  cooking, music, weather... from the Injongo corpus; see each file's header), grouped by the
  corpus's own intent. The **false-command rate** is the share of them predicted as a command.
* ``tests/data/heldout/<lang>/nlu.yml`` - in-scope examples in Rasa NLU format; the **in-scope
  accuracy** is the share predicted as their own intent.

A *command* is an intent that interrupts a lesson: exactly the intents the tutor's ``answer`` slot
refuses to take as an answer (its ``not_intent`` list in domain.yml), so the list lives in one
place, the domain. Everything here is pure arithmetic over a ``predict(text) -> intent`` function;
scripts/evaluate.py supplies the real model's (tests/test_oos_eval.py a stub).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Sequence, Tuple

import yaml

from check_data import _ENTITY as ENTITY_ANNOTATION

Predict = Callable[[str], str]
ANSWER_SLOT = "answer"
SHOWN_ERRORS = 20  # misclassified utterances listed per language in results/oos.json
NOT_UNDERSTOOD = ("nlu_fallback", "out_of_scope")


def command_intents(domain_path: Path) -> List[str]:
    """The intents that interrupt a lesson: the ``answer`` slot's ``not_intent`` list."""
    domain = yaml.safe_load(domain_path.read_text()) or {}
    slot = (domain.get("slots") or {}).get(ANSWER_SLOT) or {}
    found: List[str] = []
    for mapping in slot.get("mappings") or []:
        found += [i for i in mapping.get("not_intent") or [] if i not in found]
    if not found:
        raise ValueError(f"{domain_path}: slot '{ANSWER_SLOT}' lists no not_intent (the command intents)")
    return found


def load_offtopic(path: Path) -> List[Tuple[str, str]]:
    """(text, corpus intent) pairs from a tests/data/oos/<lang>.yml file."""
    doc = yaml.safe_load(path.read_text()) or {}
    return [(str(text).strip(), source) for source, texts in (doc.get("examples") or {}).items()
            for text in texts or [] if str(text).strip()]


def load_inscope(path: Path) -> List[Tuple[str, str]]:
    """(text, intent) pairs from a Rasa NLU yml file, entity annotations removed (text as the
    learner would type it: case and punctuation kept)."""
    doc = yaml.safe_load(path.read_text()) or {}
    pairs = []
    for block in doc.get("nlu") or []:
        if "intent" not in block:
            continue
        for line in str(block.get("examples") or "").splitlines():
            line = line.strip()
            if line.startswith("- "):
                pairs.append((ENTITY_ANNOTATION.sub(r"\1", line[2:].strip()), block["intent"]))
    return pairs


def false_command_report(predict: Predict, offtopic: Sequence[Tuple[str, str]],
                         commands: Iterable[str]) -> Dict[str, Any]:
    """Share of off-topic utterances predicted as a command, overall and per command intent."""
    commands = list(commands)
    predicted = [(text, source, predict(text)) for text, source in offtopic]
    wrong = [(text, source, intent) for text, source, intent in predicted if intent in commands]
    per_command = Counter(intent for _, _, intent in wrong)
    total = len(predicted)
    return {
        "utterances": total,
        "false_commands": len(wrong),
        "false_command_rate": round(len(wrong) / total, 4) if total else None,
        "per_command": {c: {"count": per_command[c], "rate": round(per_command[c] / total, 4) if total else None}
                        for c in commands},
        "predicted": dict(Counter(intent for _, _, intent in predicted).most_common()),
        "errors": [{"text": t, "corpus_intent": s, "predicted": i} for t, s, i in wrong[:SHOWN_ERRORS]],
    }


def inscope_report(predict: Predict, examples: Sequence[Tuple[str, str]]) -> Dict[str, Any]:
    """Intent accuracy on held-out in-scope examples."""
    wrong = [(text, gold, predicted) for text, gold in examples
             for predicted in [predict(text)] if predicted != gold]
    total = len(examples)
    # A fallback asks to rephrase (or, in a lesson, is taken as the answer); another intent acts.
    fallbacks = sum(1 for _, _, predicted in wrong if predicted in NOT_UNDERSTOOD)
    return {
        "utterances": total,
        "correct": total - len(wrong),
        "accuracy": round((total - len(wrong)) / total, 4) if total else None,
        "fallback": fallbacks,
        "wrong_intent": len(wrong) - fallbacks,
        "errors": [{"text": t, "intent": g, "predicted": p} for t, g, p in wrong[:SHOWN_ERRORS]],
    }


def texts_to_parse(project: Path, languages: Sequence[str], oos_dir: Path, heldout_dir: Path) -> List[str]:
    """Every utterance the report needs, so a caller can parse them all in one go."""
    texts: List[str] = []
    for lang in languages:
        if (oos_dir / f"{lang}.yml").exists():
            texts += [t for t, _ in load_offtopic(oos_dir / f"{lang}.yml")]
        if (heldout_dir / lang / "nlu.yml").exists():
            texts += [t for t, _ in load_inscope(heldout_dir / lang / "nlu.yml")]
    return texts


def oos_report(predict: Predict, project: Path, languages: Sequence[str], oos_dir: Path,
               heldout_dir: Path) -> Dict[str, Any]:
    """{commands, <lang>: {off_topic, in_scope}} for the languages that have held-out files."""
    commands = command_intents(project / "domain.yml")
    report: Dict[str, Any] = {"commands": commands, "oos_dir": str(oos_dir), "heldout_dir": str(heldout_dir),
                              "languages": {}}
    for lang in languages:
        entry: Dict[str, Any] = {}
        if (oos_dir / f"{lang}.yml").exists():
            entry["off_topic"] = false_command_report(predict, load_offtopic(oos_dir / f"{lang}.yml"), commands)
        if (heldout_dir / lang / "nlu.yml").exists():
            entry["in_scope"] = inscope_report(predict, load_inscope(heldout_dir / lang / "nlu.yml"))
        if entry:
            report["languages"][lang] = entry
    return report


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def markdown(report: Dict[str, Any]) -> str:
    """The off-topic section of the model card (and of results/oos.md)."""
    langs = list(report["languages"])
    if not langs:
        return "No held-out off-topic or in-scope files found.\n"
    get = lambda lang, part, key: (report["languages"][lang].get(part) or {}).get(key)  # noqa: E731
    lines = [
        "| | " + " | ".join(langs) + " |",
        "|---|" + "---:|" * len(langs),
        "| off-topic utterances | " + " | ".join(str(get(l, "off_topic", "utterances") or "-") for l in langs) + " |",
        "| **false-command rate** | " + " | ".join(
            f"**{_pct(get(l, 'off_topic', 'false_command_rate'))}** ({get(l, 'off_topic', 'false_commands')})"
            for l in langs) + " |",
        "| in-scope held-out utterances | " + " | ".join(str(get(l, "in_scope", "utterances") or "-") for l in langs) + " |",
        "| **in-scope intent accuracy** | " + " | ".join(f"**{_pct(get(l, 'in_scope', 'accuracy'))}**" for l in langs) + " |",
        "| in-scope misses: not understood / another intent | " + " | ".join(
            f"{get(l, 'in_scope', 'fallback')} / {get(l, 'in_scope', 'wrong_intent')}" for l in langs) + " |",
        "",
        "Off-topic utterances taken as each command:",
        "",
        "| command | " + " | ".join(langs) + " |",
        "|---|" + "---:|" * len(langs),
    ]
    for command in report["commands"]:
        cells = []
        for lang in langs:
            entry = (get(lang, "off_topic", "per_command") or {}).get(command)
            cells.append("-" if not entry else f"{entry['count']} ({_pct(entry['rate'])})")
        lines.append(f"| {command} | " + " | ".join(cells) + " |")
    lines += ["", f"Commands are the intents the `answer` slot refuses inside a lesson (domain.yml): "
              f"{', '.join(report['commands'])}. Held-out files: `{report['oos_dir']}/<lang>.yml` (off-topic), "
              f"`{report['heldout_dir']}/<lang>/nlu.yml` (in-scope); none is used for training.", ""]
    return "\n".join(lines)
