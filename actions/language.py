"""The one language helper: normalise language names and tell Kinyarwanda from English.

Decision for mixed (code-switched) messages: Kinyarwanda grammar words decide. Learners
speak Kinyarwanda with English topic words ("ndashaka math", "nyigisha English"), so a
message with clear Kinyarwanda words is Kinyarwanda unless English words clearly outnumber
them. Messages with no signal (numbers, names, "ok") return None: keep the current language.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Optional, Text

import yaml

from core.fuzzy import closest

SUPPORTED = ("en", "rw")
DEFAULT_LANGUAGE = "en"

_NAMES = {
    "en": "en", "eng": "en", "english": "en", "icyongereza": "en", "cyongereza": "en",
    "engilishi": "en", "ingilishi": "en", "inglish": "en", "en-us": "en", "en-gb": "en",
    "rw": "rw", "kin": "rw", "kinyarwanda": "rw", "ikinyarwanda": "rw", "kinyarwa": "rw",
    "rw-rw": "rw", "kinya": "rw",
}
_TOKEN = re.compile(r"[a-z']+")


def normalise_language(value: Optional[Text]) -> Optional[Text]:
    """Map a language name or code ("Ikinyarwanda", "English", "rw") to "en"/"rw"."""
    if not value:
        return None
    key = str(value).strip().lower()
    if key not in _NAMES:
        # Speech recognition and SMS misspell names ("kinyarwada", "englsh").
        key = closest(key, _NAMES.keys(), cutoff=0.8) or key
    return _NAMES.get(key)


@lru_cache(maxsize=1)
def _markers():
    path = Path(__file__).parent / "content" / "language_markers.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return (
        frozenset(w for w in data["rw"]["words"] if " " not in w),
        tuple(data["rw"]["fragments"]),
        frozenset(data["en"]["words"]),
    )


def language_scores(text: Text) -> tuple:
    """(Kinyarwanda score, English score) for a message."""
    rw_words, rw_fragments, en_words = _markers()
    rw = en = 0.0
    for token in _TOKEN.findall((text or "").lower().replace("’", "'")):
        if token in rw_words:
            rw += 1
        elif token in en_words:
            en += 1
        elif len(token) >= 5 and token[-1] in "aeiou" and any(f in token for f in rw_fragments):
            # Unknown long words ending in a vowel with Kinyarwanda clusters: weak evidence.
            rw += 0.5
    return rw, en


def detect_language(text: Text, current: Optional[Text] = None) -> Optional[Text]:
    """Return "rw", "en", or None when the message carries no language signal.

    With a ``current`` language, one stray word ("yes", "ok", "sawa") does not switch:
    the other language needs at least two marker words (hysteresis), so a Kinyarwanda
    speaker answering "yes" keeps hearing Kinyarwanda.
    """
    rw, en = language_scores(text)
    if rw == 0 and en == 0:
        return current
    detected = "rw" if rw > 0 and rw >= en / 2 else ("en" if en > 0 else "rw")
    if current in SUPPORTED and detected != current:
        evidence = rw if detected == "rw" else en
        if evidence < 2:
            return current
    return detected
