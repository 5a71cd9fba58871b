"""Helpers the four tutors share: message length, content files, progress (texts: core.texts)."""
from __future__ import annotations

import functools
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict

import yaml

from actions.tutoring.base import Progress

CONTENT_DIR = Path(__file__).resolve().parent.parent / "content"
MAX_CHARS = 300  # longest tutor message


def fit(text: str, limit: int = MAX_CHARS) -> str:
    """``text`` on one line, cut at a word boundary (with "...") to at most ``limit`` characters."""
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 3]
    if " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:") + "..."


@functools.lru_cache(maxsize=None)
def load_content_file(name: str) -> Dict[str, Any]:
    """The parsed ``actions/content/<name>``, read once per process: callers must not change it."""
    with (CONTENT_DIR / name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def copy_progress(progress: Progress) -> Progress:
    """A copy the tutor may update (``seen`` included) without touching the caller's."""
    return replace(progress, seen=list(progress.seen or []))
