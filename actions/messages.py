"""Texts the action server sends itself (catalogue actions/content/messages.yml, via core.texts)."""
from __future__ import annotations

from typing import Any, Optional, Text

from core import texts


def text(key: Text, language: Optional[Text], **values: Any) -> Text:
    """The message ``key`` in ``language`` (the default language when unknown), placeholders filled."""
    return texts.text(key, language, **values)


def module_name(module: Optional[Text], language: Optional[Text]) -> Text:
    return texts.value("module_names", language).get(module or "", module or "")
