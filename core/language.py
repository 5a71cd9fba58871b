"""The one place that knows BAKAME's languages: which ones, the default, names, detection.

Everything else asks this module; the languages themselves are data (``core/languages.yml``),
so a third language is a block there plus its texts, never a code search.

Detection, for mixed (code-switched) messages: the heavier language's marker words decide.
Learners speak Kinyarwanda with English topic words ("ndashaka math"), so Kinyarwanda words
count double. Messages with no signal (numbers, names, "ok") return the current language.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, FrozenSet, Optional, Sequence, Text, Tuple

import yaml

from core.fuzzy import closest

LANGUAGES_FILE = Path(__file__).with_name("languages.yml")
_TOKEN = re.compile(r"[a-z']+")
SWITCH_EVIDENCE = 2  # marker words needed to leave the current language (one stray "yes" is not enough)


@dataclass(frozen=True)
class Language:
    code: Text
    name: Text
    names: FrozenSet[Text]
    weight: float = 1.0
    words: FrozenSet[Text] = frozenset()
    fragments: Tuple[Text, ...] = ()
    fragment_min_length: int = 5
    fragment_endings: Tuple[Text, ...] = ()
    fragment_score: float = 0.5

    @classmethod
    def from_data(cls, code: Text, data: Dict) -> "Language":
        detection = data.get("detection") or {}
        fragments = detection.get("fragments") or {}
        return cls(
            code=code,
            name=str(data.get("name") or code),
            names=frozenset(str(n).strip().lower() for n in [code, *(data.get("names") or [])]),
            weight=float(detection.get("weight", 1)),
            words=frozenset(str(w).lower() for w in detection.get("words") or [] if " " not in str(w)),
            fragments=tuple(fragments.get("parts") or ()),
            fragment_min_length=int(fragments.get("min_length", 5)),
            fragment_endings=tuple(fragments.get("endings") or ()),
            fragment_score=float(fragments.get("score", 0.5)),
        )

    def fragment_evidence(self, token: Text) -> float:
        """Weak evidence from a word no list knows (see ``fragments`` in languages.yml)."""
        if (self.fragments and len(token) >= self.fragment_min_length
                and (not self.fragment_endings or token.endswith(self.fragment_endings))
                and any(part in token for part in self.fragments)):
            return self.fragment_score
        return 0.0


class Languages:
    """The supported languages (in the order listed), the default, and what to do with them."""

    def __init__(self, languages: Sequence[Language], default: Text) -> None:
        self.by_code: Dict[Text, Language] = {lang.code: lang for lang in languages}
        if default not in self.by_code:
            raise ValueError(f"default language {default!r} is not one of {sorted(self.by_code)}")
        self.codes: Tuple[Text, ...] = tuple(self.by_code)
        self.default = default
        self._names = {name: lang.code for lang in languages for name in lang.names}
        # A marker word in two lists counts for the heavier language (stable for equal weights).
        self._by_weight = sorted(languages, key=lambda lang: -lang.weight)

    @classmethod
    def load(cls, path: Path = LANGUAGES_FILE) -> "Languages":
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        entries = data.get("languages") or {}
        return cls([Language.from_data(str(code), spec or {}) for code, spec in entries.items()],
                   str(data.get("default", "")))

    # -- codes ----------------------------------------------------------------------------
    def is_supported(self, code: Optional[Text]) -> bool:
        return code in self.by_code

    def normalise(self, value: Optional[Text]) -> Optional[Text]:
        """The code for a language name or code ("Ikinyarwanda", "English", "rw-RW"), None if unknown."""
        if not value:
            return None
        key = str(value).strip().lower()
        if key not in self._names:
            # Speech recognition and SMS misspell names ("kinyarwada", "englsh").
            key = closest(key, self._names.keys(), cutoff=0.8) or key
        return self._names.get(key)

    def or_default(self, value: Optional[Text]) -> Text:
        """A supported code for any name or code; the default when unknown."""
        if value in self.by_code:
            return value  # type: ignore[return-value]
        return self.normalise(value) or self.default

    def other(self, language: Optional[Text]) -> Text:
        """The next language after ``language`` (the default when unknown): a toggle for two."""
        current = self.or_default(language)
        return self.codes[(self.codes.index(current) + 1) % len(self.codes)]

    def name(self, code: Optional[Text]) -> Text:
        """The English name of a language ("Kinyarwanda"); the code itself when unknown."""
        lang = self.by_code.get(code or "")
        return lang.name if lang else str(code)

    def unknown_order(self) -> Tuple[Text, ...]:
        """Every language, the default last: how to speak before the learner's is known
        (learners hear their local language first)."""
        return tuple(c for c in self.codes if c != self.default) + (self.default,)

    # -- detection ------------------------------------------------------------------------
    def scores(self, text: Optional[Text]) -> Dict[Text, float]:
        """Marker evidence per language for a message."""
        scores = {code: 0.0 for code in self.codes}
        for token in _TOKEN.findall((text or "").lower().replace("’", "'")):
            marked = next((lang for lang in self._by_weight if token in lang.words), None)
            if marked is not None:
                scores[marked.code] += 1
                continue
            for lang in self._by_weight:
                scores[lang.code] += lang.fragment_evidence(token)
        return scores

    def detect(self, text: Optional[Text], current: Optional[Text] = None) -> Optional[Text]:
        """The message's language, or ``current`` when it carries no signal.

        Away from a ``current`` language only on clear evidence (``SWITCH_EVIDENCE`` marker
        words), so a Kinyarwanda speaker answering "yes" keeps hearing Kinyarwanda.
        """
        scores = self.scores(text)
        present = [lang for lang in self._by_weight if scores[lang.code] > 0]
        if not present:
            return current
        # Heaviest weighted score wins; on a tie, the heavier language (sorted first).
        detected = max(present, key=lambda lang: scores[lang.code] * lang.weight).code
        if current in self.by_code and detected != current and scores[detected] < SWITCH_EVIDENCE:
            return current
        return detected


@lru_cache(maxsize=1)
def languages() -> Languages:
    """The project's languages, read once (``BAKAME_LANGUAGES_FILE`` may point elsewhere)."""
    return Languages.load(Path(os.environ.get("BAKAME_LANGUAGES_FILE") or LANGUAGES_FILE))


SUPPORTED: Tuple[Text, ...] = languages().codes
DEFAULT: Text = languages().default


def is_supported(code: Optional[Text]) -> bool:
    return languages().is_supported(code)


def normalise(value: Optional[Text]) -> Optional[Text]:
    return languages().normalise(value)


def or_default(value: Optional[Text]) -> Text:
    return languages().or_default(value)


def other(language: Optional[Text]) -> Text:
    return languages().other(language)


def name(code: Optional[Text]) -> Text:
    return languages().name(code)


def unknown_order() -> Tuple[Text, ...]:
    return languages().unknown_order()


def scores(text: Optional[Text]) -> Dict[Text, float]:
    return languages().scores(text)


def detect(text: Optional[Text], current: Optional[Text] = None) -> Optional[Text]:
    return languages().detect(text, current)
