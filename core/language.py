"""The one place that knows BAKAME's languages: which ones, the default, names, detection.

Everything else asks this module; the languages themselves are data (``core/languages.yml``),
so a third language is a block there plus its texts, never a code search.

Detection, for mixed (code-switched) messages: the heavier language's marker words decide.
Learners speak Kinyarwanda with English topic words ("ndashaka math"), so Kinyarwanda words
count double. Where the marker words are silent, tied or too few to leave the current language,
py3langid's character n-gram model (restricted to our languages) decides messages of a few words.
Messages with no signal (numbers, names, "ok") return the current language.
Measured on held-out public messages: docs/nlu-evaluation.md ("Language identification").
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
MODEL_MIN_WORDS = 2  # shorter messages (a name, "ok") are never given to the n-gram model
MODEL_SWITCH_WORDS = 3  # words the model needs to leave the current language on its own
UNKNOWN_CURRENT = "none"  # the key of Languages.detections for a conversation whose language is not known yet
# Both chosen on AfriSenti/CLINC150 *train* messages (the held-out set is their dev splits).


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
    model_code: Text = ""

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
            model_code=str(detection.get("model_code") or code),
        )

    def fragment_evidence(self, token: Text) -> float:
        """Weak evidence from a word no list knows (see ``fragments`` in languages.yml)."""
        if (self.fragments and len(token) >= self.fragment_min_length
                and (not self.fragment_endings or token.endswith(self.fragment_endings))
                and any(part in token for part in self.fragments)):
            return self.fragment_score
        return 0.0


class NgramModel:
    """py3langid's naive Bayes model over character n-grams, restricted to our languages.

    A maintained library (97 languages, Kinyarwanda among them) instead of our own statistics;
    it knows words no marker list holds, but guesses poorly on one or two words.
    """

    def __init__(self, codes: Dict[Text, Text]) -> None:  # our code -> the model's code
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        # Our own identifier: py3langid's module-level one is shared by anyone who imports it.
        self._identifier = LanguageIdentifier.from_pickled_model(MODEL_FILE, norm_probs=True)
        known = {theirs: ours for ours, theirs in codes.items() if theirs in self._identifier.nb_classes}
        self._ours = known if len(known) >= 2 else {}
        if self._ours:
            self._identifier.set_languages(sorted(self._ours))

    def guess(self, text: Text) -> Optional[Tuple[Text, float]]:
        """(our code, probability), or None when the model knows nothing of the text."""
        if not self._ours:
            return None
        features = self._identifier.instance2fv(text)
        if not features.any():
            return None  # no known n-gram: the answer would only be the model's prior
        probabilities = self._identifier.norm_probs(self._identifier.nb_classprobs(features))
        best = int(probabilities.argmax())
        return self._ours[self._identifier.nb_classes[best]], float(probabilities[best])


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
        self._model: Optional[NgramModel] = None

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

    def detect(self, text: Optional[Text], current: Optional[Text] = None, *,
               use_model: bool = True) -> Optional[Text]:
        """The message's language, or ``current`` when it carries no signal.

        Away from a ``current`` language only on clear evidence: ``SWITCH_EVIDENCE`` marker
        words, or the n-gram model on ``MODEL_SWITCH_WORDS`` words, so a Kinyarwanda speaker
        answering "yes" keeps hearing Kinyarwanda. ``use_model=False``: marker words only.
        """
        return self._decide(_Evidence(self, text, use_model), current)

    def detections(self, text: Optional[Text]) -> Dict[Text, Optional[Text]]:
        """What :meth:`detect` returns for ``text`` in a conversation in each language, keyed
        by that language's code, and under :data:`UNKNOWN_CURRENT` when none is known yet;
        ``None``: the message keeps the current language. The message is read once: the NLU
        pipeline detects this way (``nlu_components/language_detector.py``), without the
        conversation, and the language slot's mapping picks the entry of the current language
        (:func:`detected_in`)."""
        evidence = _Evidence(self, text, True)
        out: Dict[Text, Optional[Text]] = {UNKNOWN_CURRENT: self._decide(evidence, None)}
        for code in self.codes:
            out[code] = self._decide(evidence, code)
        return out

    def detected_in(self, detections: Dict[Text, Optional[Text]], current: Optional[Text]) -> Optional[Text]:
        """``detect(text, current)`` from ``detections(text)``."""
        detected = detections.get(current if current in self.by_code else UNKNOWN_CURRENT)
        return current if detected is None else detected

    def _decide(self, evidence: "_Evidence", current: Optional[Text]) -> Optional[Text]:
        known = current if current in self.by_code else None
        scores, weighted = evidence.scores, evidence.weighted
        present = [lang.code for lang in self._by_weight if scores[lang.code] > 0]
        leaders = [code for code in present if weighted[code] == max(weighted.values())]
        if len(leaders) == 1 and (known is None or leaders[0] == known
                                  or scores[leaders[0]] >= SWITCH_EVIDENCE):
            return leaders[0]
        # Markers silent, tied, or too few to leave the current language: ask the model.
        words = evidence.words
        guess = evidence.guess() if words >= MODEL_MIN_WORDS else None
        if guess is not None and (known is None or guess[0] == known or words >= MODEL_SWITCH_WORDS):
            return guess[0]
        if known is None and leaders:
            return leaders[0]  # a tie: the heavier language (leaders keep the weight order)
        return current

    def model(self) -> NgramModel:
        """The n-gram model, loaded on first use (~0.2 s)."""
        if self._model is None:
            self._model = NgramModel({lang.code: lang.model_code for lang in self.by_code.values()})
        return self._model


class _Evidence:
    """What a message says about its language, read once: marker scores, word count, and
    the n-gram model's guess (asked at most once, and only when the markers do not decide)."""

    def __init__(self, languages: Languages, text: Optional[Text], use_model: bool) -> None:
        self._languages, self._text, self._use_model = languages, text or "", use_model
        self.scores = languages.scores(text)
        self.weighted = {code: self.scores[code] * languages.by_code[code].weight for code in languages.codes}
        self.words = len(_TOKEN.findall(self._text.lower()))
        self._guess: Optional[Tuple[Text, float]] = None
        self._guessed = False

    def guess(self) -> Optional[Tuple[Text, float]]:
        if not self._use_model:
            return None
        if not self._guessed:
            self._guess, self._guessed = self._languages.model().guess(self._text), True
        return self._guess


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


def detections(text: Optional[Text]) -> Dict[Text, Optional[Text]]:
    return languages().detections(text)


def detected_in(detections: Dict[Text, Optional[Text]], current: Optional[Text]) -> Optional[Text]:
    return languages().detected_in(detections, current)
