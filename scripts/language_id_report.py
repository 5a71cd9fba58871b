#!/usr/bin/env python
"""Language identification on held-out public messages -> results/language_id.md and .json.

Compares, on tests/data/language_id_heldout.csv (AfriSenti Kinyarwanda tweets, Common Voice,
CLINC150; sources, licences and the labelling rule are in its header):

- markers:   core.language without the n-gram model (marker words only, the earlier detector)
- py3langid: py3langid alone, restricted to our languages (its own identifier instance)
- combined:  core.language.detect as the assistant runs it (markers, then py3langid)

each with no current language (a first message) and with the opposite current language (the
message has to switch the conversation; short ones are meant not to: see core/language.py).
Accuracy overall, per language, code-switched vs monolingual, short (<= 3 words); time per
message (median, p99). Run alone: ``python scripts/language_id_report.py``; ``make evaluate``
runs it too (scripts/evaluate.py).
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HELDOUT = Path("tests") / "data" / "language_id_heldout.csv"
SHORT_WORDS = 3
TIMING_ROUNDS = 3


@dataclass(frozen=True)
class Message:
    text: str
    label: str
    code_switched: bool

    @property
    def short(self) -> bool:
        return len(self.text.split()) <= SHORT_WORDS


# A detector: (text, current language or None) -> a language code or None (no answer).
Detector = Callable[[str, Optional[str]], Optional[str]]


def load(path: Path) -> List[Message]:
    """The held-out messages; lines starting with '#' are the file's documentation."""
    with path.open(encoding="utf-8") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        return [Message(r["text"], r["label"], r["code_switched"] == "1") for r in rows]


def groups(languages: Sequence[str]) -> Dict[str, Callable[[Message], bool]]:
    """The slices each accuracy is reported on."""
    slices: Dict[str, Callable[[Message], bool]] = {"all": lambda m: True}
    for code in languages:
        slices[code] = lambda m, code=code: m.label == code
    slices["code-switched"] = lambda m: m.code_switched
    slices["monolingual"] = lambda m: not m.code_switched
    slices[f"short (<= {SHORT_WORDS} words)"] = lambda m: m.short
    return slices


def accuracy(messages: Sequence[Message], answered: Sequence[str],
             slices: Dict[str, Callable[[Message], bool]]) -> Dict[str, Dict[str, float]]:
    """{slice: {accuracy, correct, n}}: the share answered in the labelled language."""
    out: Dict[str, Dict[str, float]] = {}
    for name, member in slices.items():
        hits = [a == m.label for m, a in zip(messages, answered) if member(m)]
        out[name] = {"accuracy": round(sum(hits) / len(hits), 4) if hits else None,
                     "correct": sum(hits), "n": len(hits)}
    return out


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1) of non-empty ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))  # ceil without float surprises for 0.5, 0.99
    return ordered[int(rank) - 1]


def timed(detector: Detector, messages: Sequence[Message], current: Callable[[Message], Optional[str]],
          rounds: int = TIMING_ROUNDS) -> Dict[str, object]:
    """Predictions and per-message time (the fastest of ``rounds`` runs, to drop scheduler noise)."""
    best: List[float] = [float("inf")] * len(messages)
    predictions: List[Optional[str]] = []
    for round_ in range(rounds):
        for i, message in enumerate(messages):
            start = time.perf_counter()
            predicted = detector(message.text, current(message))
            best[i] = min(best[i], time.perf_counter() - start)
            if round_ == 0:
                predictions.append(predicted)
    return {"predictions": predictions, "median_ms": round(statistics.median(best) * 1000, 4),
            "p99_ms": round(percentile(best, 0.99) * 1000, 4)}


def detectors(codes: Sequence[str]) -> Dict[str, Detector]:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from core.language import languages

    langs = languages()
    alone = LanguageIdentifier.from_pickled_model(MODEL_FILE, norm_probs=True)
    alone.set_languages([langs.by_code[c].model_code for c in codes])
    to_ours = {langs.by_code[c].model_code: c for c in codes}
    langs.model()  # loaded before timing: the assistant loads it once per process
    return {
        "markers": lambda text, current: langs.detect(text, current, use_model=False),
        "py3langid": lambda text, current: to_ours.get(alone.classify(text)[0]),
        "combined": lambda text, current: langs.detect(text, current),
    }


def evaluate(path: Path) -> Dict[str, object]:
    from core.language import languages, or_default

    codes = list(languages().codes)
    messages = load(path)
    slices = groups(codes)
    opposite = {code: languages().other(code) for code in codes}
    conditions = {"no current language": lambda m: None,
                  "opposite current language": lambda m: opposite[m.label]}
    results: Dict[str, object] = {}
    for name, detector in detectors(codes).items():
        results[name] = {}
        for condition, current in conditions.items():
            if name == "py3langid" and condition != "no current language":
                continue  # py3langid has no notion of a conversation's language
            run = timed(detector, messages, current)
            # What the learner gets: no answer keeps the current language, else the default (as
            # actions/common.language_of and infra/errors.learner_language do).
            answered = [or_default(p if p is not None else current(m)) for m, p in zip(messages, run["predictions"])]
            results[name][condition] = {"accuracy": accuracy(messages, answered, slices),
                                        "median_ms": run["median_ms"], "p99_ms": run["p99_ms"]}
    return {"data": str(path), "messages": len(messages),
            "per_slice": {name: sum(1 for m in messages if member(m)) for name, member in slices.items()},
            "results": results}


def markdown(report: Dict[str, object]) -> str:
    results = report["results"]
    slices = list(report["per_slice"])
    lines = ["# Language identification", "",
             f"Held-out data: `{report['data']}` ({report['messages']} messages). "
             "Generated by `python scripts/language_id_report.py` (also run by `make evaluate`).", "",
             "| detector | current language | " + " | ".join(f"{s} (n={report['per_slice'][s]})" for s in slices)
             + " | median ms | p99 ms |",
             "|---|---|" + "---:|" * (len(slices) + 2)]
    for name, conditions in results.items():
        for condition, figures in conditions.items():
            cells = [_pct(figures["accuracy"][s]["accuracy"]) for s in slices]
            lines.append(f"| {name} | {condition} | " + " | ".join(cells)
                         + f" | {figures['median_ms']:.3f} | {figures['p99_ms']:.3f} |")
    lines += ["", "Accuracy = share of messages answered in the language the file's header labels them with. "
              "A detector's \"no signal\" keeps the current language, or the default (English) on a first "
              "message, as the assistant does. With the opposite current language, short messages are meant "
              "to keep the conversation's language (one stray word does not switch it).", ""]
    return "\n".join(lines)


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


def write(out: Path, project: Path = ROOT) -> Optional[Dict[str, object]]:
    """Evaluate and write ``out``/language_id.md and .json; None when the project has no held-out file."""
    path = project / HELDOUT
    if not path.exists():
        print(f"(no {path}: language identification skipped)")
        return None
    report = evaluate(path)
    report["data"] = str(HELDOUT)
    out.mkdir(parents=True, exist_ok=True)
    (out / "language_id.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "language_id.md").write_text(markdown(report))
    print(f"Language identification: {out / 'language_id.md'}")
    return report


def main(argv: Optional[Iterable[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args(list(argv) if argv is not None else None)
    report = write(args.out)
    if report:
        for name, conditions in report["results"].items():
            for condition, figures in conditions.items():
                print(f"{name:10} {condition:26} accuracy {figures['accuracy']['all']['accuracy']:.3f} "
                      f"median {figures['median_ms']:.3f} ms p99 {figures['p99_ms']:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
