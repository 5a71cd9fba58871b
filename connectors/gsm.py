"""Fitting an SMS reply into a few segments: the SMS channel's use of :mod:`core.gsm`.

The reply is cleaned to GSM-7 (``sanitize``, from core.gsm: voice replies are not), then cut
at a word or sentence end so it fits ``max_segments``; the rest waits for MORE.
"""
from __future__ import annotations

from typing import List, Text, Tuple

# The SMS channel reaches the alphabet through this module (twilio_sms calls gsm.sanitize).
from core.gsm import MULTI_SEGMENT, SINGLE_SEGMENT, char_septets, is_gsm, sanitize, segment_count, septets  # noqa: F401


def capacity(max_segments: int) -> int:
    return SINGLE_SEGMENT if max_segments <= 1 else MULTI_SEGMENT * max_segments


def _cut_index(text: Text, budget: int) -> int:
    """Index to cut ``text`` at so the head has at most ``budget`` septets, at a word end."""
    used, limit = 0, 0
    for i, c in enumerate(text):
        used += char_septets(c)
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
