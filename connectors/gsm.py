"""GSM-7 sanitising and segmenting of SMS replies.

One character outside the GSM 03.38 alphabet (an emoji, a smart quote, a long dash)
switches the whole SMS to UCS-2 and cuts a segment from 160 to 70 characters, so every
reply is mapped to GSM-7 first. Length is counted in septets: characters of the extension
table (``^{}[]~|\\€``) take two. A single SMS holds 160 septets, each part of a
concatenated SMS 153 (the rest is the concatenation header).
"""
from __future__ import annotations

import re
import unicodedata
from typing import List, Optional, Text, Tuple

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€")

SINGLE_SEGMENT = 160
MULTI_SEGMENT = 153

_REPLACEMENTS = {
    # quotes and apostrophes
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
    "`": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"', "\u2039": "'", "\u203a": "'",
    # dashes, bullets, ellipsis
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\u2022": "-", "\u2023": "-", "\u25cf": "-", "\u25aa": "-", "\u00b7": "-",
    "\u2026": "...",
    # spaces and invisible characters
    "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2007": " ", "\u2009": " ", "\u200a": " ",
    "\u202f": " ", "\u3000": " ", "\t": " ",
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


def is_gsm(text: Text) -> bool:
    return all(c in GSM_BASIC or c in GSM_EXTENSION for c in text)


def _to_gsm_char(char: Text) -> Text:
    if char in GSM_BASIC or char in GSM_EXTENSION:
        return char
    if char in _REPLACEMENTS:
        return _REPLACEMENTS[char]
    if unicodedata.category(char) in ("Zs", "Zl", "Zp"):
        return " "
    decomposed = unicodedata.normalize("NFKD", char)
    kept = "".join(
        c for c in decomposed if (c in GSM_BASIC or c in GSM_EXTENSION) and not unicodedata.combining(c)
    )
    if kept and kept.strip():
        return kept
    return ""  # emoji, pictographs, other scripts: dropped


def sanitize(text: Optional[Text]) -> Text:
    """``text`` in the GSM-7 alphabet: smart punctuation mapped, accents stripped, emoji dropped."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    out = "".join(_to_gsm_char(c) for c in text)
    out = re.sub(r"[ ]{2,}", " ", out)
    out = re.sub(r" *\n *", "\n", out)
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out.strip()


def septets(text: Text) -> int:
    return sum(2 if c in GSM_EXTENSION else 1 for c in text)


def segment_count(text: Text) -> int:
    """Number of SMS segments ``text`` (already GSM-7) needs."""
    total = septets(text)
    if total <= SINGLE_SEGMENT:
        return 1 if total else 0
    segments, used = 1, 0
    for c in text:
        weight = 2 if c in GSM_EXTENSION else 1
        if used + weight > MULTI_SEGMENT:  # an escape pair is never split across parts
            segments += 1
            used = 0
        used += weight
    return segments


def capacity(max_segments: int) -> int:
    return SINGLE_SEGMENT if max_segments <= 1 else MULTI_SEGMENT * max_segments


def _cut_index(text: Text, budget: int) -> int:
    """Index to cut ``text`` at so the head has at most ``budget`` septets, at a word end."""
    used, limit = 0, 0
    for i, c in enumerate(text):
        used += 2 if c in GSM_EXTENSION else 1
        if used > budget:
            break
        limit = i + 1
    else:
        return len(text)
    window = text[:limit]
    floor = int(limit * 0.6)
    for marker in ("\n", ". ", "? ", "! ", "; ", ", "):
        pos = window.rfind(marker)
        if pos >= floor:
            return pos + len(marker.rstrip(" ")) if marker != "\n" else pos
    pos = window.rfind(" ")
    if pos > 0:
        return pos
    return limit  # one very long word: hard cut


def split_for_sms(text: Text, max_segments: int, more_hint: Text = "") -> Tuple[Text, Text]:
    """``(reply, rest)``: ``reply`` fits ``max_segments`` and ends with ``more_hint`` when
    ``rest`` (to be sent on request) is not empty."""
    text = text.strip()
    max_segments = max(1, int(max_segments))
    if segment_count(text) <= max_segments:
        return text, ""
    hint = (" " + more_hint) if more_hint else ""
    budget = capacity(max_segments) - septets(hint)
    while budget > 20:
        cut = _cut_index(text, budget)
        head = text[:cut].rstrip()
        rest = text[cut:].strip()
        reply = head + hint
        if segment_count(reply) <= max_segments and head:
            return reply, rest
        budget -= 5
    head = text[: capacity(max_segments) - septets(hint)]
    return head + hint, text[len(head):].strip()


def join_messages(parts: List[Text]) -> Text:
    return "\n".join(p.strip() for p in parts if p and p.strip())
