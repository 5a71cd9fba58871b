"""What the channels say on their own (never the tutoring content, which the bot sends).

The texts are the ``channel`` catalogue (actions/content/channel.yml, looked up through
core.texts). When the learner's language is not known yet (slot ``language`` is None) a
prompt is said in every language, the default last (Kinyarwanda first). Any prompt can be
replaced per channel in credentials.yml (``prompts: {holding: {en: ..., rw: ...}}``).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Text

from core import language, texts

CATALOGUE = "channel."


class Prompts:
    def __init__(self, overrides: Optional[Mapping[Text, Any]] = None) -> None:
        # key -> language -> text, for the prompts this channel's credentials replace
        self.overrides: Dict[Text, Dict[Text, Text]] = {}
        for key, value in (overrides or {}).items():
            if isinstance(value, Mapping):
                self.overrides[key] = {str(k): str(v) for k, v in value.items() if v}
            elif value:
                self.overrides[key] = {code: str(value) for code in language.SUPPORTED}

    def _template(self, key: Text, code: Text) -> Text:
        override = self.overrides.get(key, {})
        if override.get(code):
            return override[code]
        if texts.has(CATALOGUE + key):
            return texts.value(CATALOGUE + key, code)
        return override.get(language.DEFAULT, "")  # a prompt only the credentials define

    def one(self, key: Text, lang: Optional[Text], **values: Any) -> Text:
        """The prompt in one language only (the default when unknown): for button phrases."""
        template = self._template(key, language.or_default(lang))
        return template.format(**values) if values else template

    def get(self, key: Text, lang: Optional[Text], **values: Any) -> Text:
        """The prompt in ``lang``; in every language (the default last) when it is unknown."""
        if language.is_supported(lang):
            return self.one(key, lang, **values)
        said = []
        for code in language.unknown_order():
            text = self.one(key, code, **values)
            if text and text not in said:
                said.append(text)
        return " ".join(said)
