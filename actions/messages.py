"""Texts the action server sends itself, in the learner's language (actions/content/messages.yml)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Optional, Text

import yaml

from actions.language import DEFAULT_LANGUAGE, SUPPORTED


@lru_cache(maxsize=1)
def catalogue() -> Dict[Text, Dict[Text, Any]]:
    path = Path(__file__).parent / "content" / "messages.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def lang_or_default(language: Optional[Text]) -> Text:
    return language if language in SUPPORTED else DEFAULT_LANGUAGE


def text(key: Text, language: Optional[Text], **values: Any) -> Text:
    """The message ``key`` in ``language`` (English when unknown), placeholders filled."""
    entry = catalogue()[key][lang_or_default(language)]
    return entry.format(**values) if values else entry


def module_name(module: Optional[Text], language: Optional[Text]) -> Text:
    return catalogue()["module_names"][lang_or_default(language)].get(module or "", module or "")
