"""Fuzzy word matching, for learners' typos and speech-recognition slips (rapidfuzz).

* :func:`edit_distance`: Levenshtein distance (insertions, deletions, substitutions);
* :func:`similarity`: 0..1, twice the matching characters over both lengths (the ratio
  difflib's ``SequenceMatcher`` approximates; rapidfuzz computes it exactly);
* :func:`closest`: the most similar of some choices, if similar enough;
* :func:`nearest`: the few most similar choices with their similarity (to see ties);
* :func:`contains_similar`: how well ``part`` appears inside ``word`` (a Kinyarwanda stem inside
  a word with affixes: "hagarika" in "tuhagarike").
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein


def edit_distance(a: str, b: str) -> int:
    return Levenshtein.distance(a, b)


def similarity(a: str, b: str) -> float:
    return fuzz.ratio(a, b) / 100.0


def closest(word: str, choices: Iterable[str], cutoff: float) -> Optional[str]:
    """The choice most similar to ``word`` with :func:`similarity` at least ``cutoff``."""
    best = process.extractOne(word, list(choices), scorer=fuzz.ratio, score_cutoff=cutoff * 100)
    return best[0] if best else None


def nearest(word: str, choices: Sequence[str], cutoff: float, limit: int = 2) -> List[Tuple[str, float]]:
    """Up to ``limit`` choices with :func:`similarity` at least ``cutoff``, most similar first."""
    found = process.extract(word, choices, scorer=fuzz.ratio, limit=limit, score_cutoff=cutoff * 100)
    return [(choice, score / 100.0) for choice, score, _ in found]


def contains_similar(part: str, word: str) -> float:
    """0..1, :func:`similarity` of ``part`` with the best-matching stretch of ``word``."""
    return fuzz.partial_ratio(part, word) / 100.0
