#!/usr/bin/env python
"""Print intent F1 per language from `rasa test nlu --cross-validation` output folders."""
import json
import sys
from pathlib import Path

for folder in sys.argv[1:]:
    report = json.loads((Path(folder) / "intent_report.json").read_text())
    overall = report["weighted avg"]
    print(f"{folder}: intent weighted F1 {overall['f1-score']:.3f} (precision {overall['precision']:.3f}, recall {overall['recall']:.3f})")
    worst = sorted((v["f1-score"], k) for k, v in report.items() if isinstance(v, dict) and "support" in v and k not in ("weighted avg", "macro avg", "micro avg"))[:3]
    print("   lowest: " + ", ".join(f"{k} {f:.2f}" for f, k in worst))
