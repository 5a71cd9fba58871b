"""GSM-7 (3GPP TS 23.038 / GSM 03.38): the alphabet, cleaning text into it, counting segments.

One character outside the GSM-7 alphabet (an emoji, a smart quote, a long dash) switches a
whole SMS to UCS-2 and cuts a segment from 160 to 70 characters, so the SMS channel cleans
every reply with :func:`sanitize` first. Length is counted in septets: characters of the
extension table (``^{}[]~|\\€`` and form feed) take two, an escape and the character. A single
SMS holds 160 septets, each part of a concatenated SMS 153 (UCS-2: 70 and 67 UTF-16 units);
the rest of a part is the concatenation header.

The alphabet comes from the ``gsm0338`` codec's tables (maintained against the standard).
Only the SMS path uses this: voice replies keep their quotes and accents for the TTS voice.
"""
from __future__ import annotations

import re
import unicodedata
from typing import FrozenSet, Optional, Text

from gsm0338.charset import BASIC_CHARACTER_SET, BASIC_CHARACTER_SET_EXTENSION

ESCAPE = "\x1b"  # in the codec's basic table, but it only introduces an extension character


def _alphabet(table: dict) -> FrozenSet[Text]:
    return frozenset(unicodedata.lookup(name) for name in table.values()) - {ESCAPE}


GSM_BASIC = _alphabet(BASIC_CHARACTER_SET)
GSM_EXTENSION = _alphabet(BASIC_CHARACTER_SET_EXTENSION)

SINGLE_SEGMENT = 160
MULTI_SEGMENT = 153
UCS2_SINGLE_SEGMENT = 70
UCS2_MULTI_SEGMENT = 67

_REPLACEMENTS = {
    # quotes and apostrophes
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
    "`": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"', "\u2039": "'", "\u203a": "'",
    # dashes, bullets, ellipsis
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\u2022": "-", "\u2023": "-", "\u25cf": "-", "\u25aa": "-", "\u00b7": "-",
    "\u2026": "...",
    # spaces and invisible characters; a page break means nothing on a phone
    "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2007": " ", "\u2009": " ", "\u200a": " ",
    "\u202f": " ", "\u3000": " ", "\t": " ", "\f": "",
    "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "", "\ufe0f": "", "\ufe0e": "",
    # maths a tutor may write
    "\u00d7": "x", "\u00f7": "/", "\u2044": "/", "\u2215": "/", "\u2264": "<=", "\u2265": ">=",
    "\u2260": "not =", "\u2248": "about", "\u00b1": "+/-", "\u221a": "sqrt ", "\u00b2": "^2",
    "\u00b3": "^3", "\u00bd": "1/2", "\u00bc": "1/4", "\u00be": "3/4", "\u2153": "1/3",
    "\u2154": "2/3", "\u00b0": " degrees", "\u2030": " per mille",
    # currency and marks
    "\u00a2": "c", "\u00a9": "(c)", "\u00ae": "(R)", "\u2122": "TM", "\u20a3": "FRW",
    # arrows
    "\u2192": "->", "\u2190": "<-", "\u21d2": "=>",
    # lowercase c cedilla is not GSM (only the capital is)
    "\u00e7": "c",
}


# characters sanitize() keeps unchanged: in the alphabet and not mapped to something else
_KEPT_AS_IS = (GSM_BASIC | GSM_EXTENSION) - frozenset(_REPLACEMENTS)


def _in_alphabet(char: Text) -> bool:
    return char in GSM_BASIC or char in GSM_EXTENSION


def is_gsm(text: Text) -> bool:
    return all(_in_alphabet(c) for c in text)


def not_gsm(text: Text) -> FrozenSet[Text]:
    """The characters of ``text`` outside the GSM-7 alphabet."""
    return frozenset(c for c in text if not _in_alphabet(c))


def _to_gsm_char(char: Text) -> Text:
    if char in _REPLACEMENTS:
        return _REPLACEMENTS[char]
    if _in_alphabet(char):
        return char
    if unicodedata.category(char) in ("Zs", "Zl", "Zp"):
        return " "
    decomposed = unicodedata.normalize("NFKD", char)
    kept = "".join(c for c in decomposed if _in_alphabet(c) and not unicodedata.combining(c))
    if kept and kept.strip():
        return kept
    return ""  # emoji, pictographs, other scripts: dropped


def sanitize(text: Optional[Text]) -> Text:
    """``text`` in the GSM-7 alphabet: smart punctuation mapped, accents stripped, emoji dropped."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    # most replies are plain GSM-7 already: one set check instead of a call per character
    out = text if _KEPT_AS_IS.issuperset(text) else "".join(_to_gsm_char(c) for c in text)
    out = re.sub(r"[ ]{2,}", " ", out)
    out = re.sub(r" *\n *", "\n", out)
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out.strip()


def char_septets(char: Text) -> int:
    return 2 if char in GSM_EXTENSION else 1


def septets(text: Text) -> int:
    """GSM-7 length of ``text`` (a character outside the alphabet counts one)."""
    return sum(char_septets(c) for c in text)


def _ucs2_units(char: Text) -> int:
    return 2 if ord(char) > 0xFFFF else 1  # a surrogate pair in UTF-16


def _parts(text: Text, weight, single: int, multi: int) -> int:
    """Segments for ``text`` whose characters cost ``weight(c)`` units; a character's units
    (an escape pair, a surrogate pair) are never split across parts."""
    if sum(weight(c) for c in text) <= single:
        return 1
    segments, used = 1, 0
    for c in text:
        if used + weight(c) > multi:
            segments += 1
            used = 0
        used += weight(c)
    return segments


def segment_count(text: Text) -> int:
    """Number of SMS segments ``text`` needs: GSM-7 if it fits the alphabet, else UCS-2."""
    if not text:
        return 0
    if is_gsm(text):
        return _parts(text, char_septets, SINGLE_SEGMENT, MULTI_SEGMENT)
    return _parts(text, _ucs2_units, UCS2_SINGLE_SEGMENT, UCS2_MULTI_SEGMENT)
