"""The one lookup for learner-facing text: ``text(key, language, **fields)``.

Texts live in catalogue YAML files (listed in ``CATALOGUES`` below), each entry one key
with a text per language::

    welcome_back:
      en: "Welcome back, {name}!"
      rw: "Murakaza neza nanone, {name}!"

A catalogue may be a whole file or one section of a content file (the tutors keep their
phrases next to their content, under ``texts:``). Keys are namespaced by catalogue:
``math.intro``, ``channel.holding``; the action server's own messages have no prefix.
The rule responses stay in ``domain.yml`` (Rasa's convention). ``make validate``
(scripts/check_data.py) checks every catalogue: every language, GSM-7, SMS and voice length.

A text missing in the learner's language falls back to the default language; a key in no
catalogue raises :class:`MissingText`. Catalogues are read once per process.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Text

import yaml

from core import language as languages_module
from core.language import Languages

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Catalogue:
    prefix: Text  # "" or "math": keys are "<prefix>.<key>"
    path: Text  # relative to the repository
    section: Optional[Text] = None  # the top-level key holding the entries; None: the whole file
    voice_only: Sequence[Text] = ("call_",)  # keys starting with these are never sent by SMS
    sms_only: Sequence[Text] = ("sms_",)  # keys starting with these are never spoken

    def key(self, entry: Text) -> Text:
        return f"{self.prefix}.{entry}" if self.prefix else entry


# Every catalogue of learner-facing text. A new one is one line here; make validate checks it.
CATALOGUES = (
    Catalogue("", "actions/content/messages.yml"),  # what the action server says itself
    Catalogue("channel", "actions/content/channel.yml",  # what the phone channels say on their own
              sms_only=("sms_", "ussd_", "optout_")),
    Catalogue("outreach", "actions/content/outreach.yml", sms_only=("",)),  # reminders, guardian reports
    Catalogue("math", "actions/content/math.yml", "texts"),
    Catalogue("reading", "actions/content/stories.yml", "texts"),
    Catalogue("english", "actions/content/english.yml", "texts"),
    Catalogue("debate", "actions/content/debate_topics.yml", "texts"),
    Catalogue("grammar", "actions/content/grammar.yml", "explanations"),
)


class MissingText(KeyError):
    """A key no catalogue holds (or holds in no language)."""

    def __str__(self) -> str:
        return str(self.args[0])


def read_catalogue(catalogue: Catalogue, root: Path = ROOT) -> Dict[Text, Any]:
    """The entries of one catalogue file (``{}`` when the section is absent)."""
    data = yaml.safe_load((root / catalogue.path).read_text(encoding="utf-8")) or {}
    return dict((data.get(catalogue.section) if catalogue.section else data) or {})


class Texts:
    """Catalogues merged into one key space, looked up per language with a default fallback."""

    def __init__(self, catalogues: Sequence[Catalogue] = CATALOGUES, root: Path = ROOT,
                 languages: Optional[Languages] = None) -> None:
        self.languages = languages or languages_module.languages()
        self.entries: Dict[Text, Mapping[Text, Any]] = {}
        self.sources: Dict[Text, Text] = {}
        for catalogue in catalogues:
            for key, entry in read_catalogue(catalogue, root).items():
                full = catalogue.key(str(key))
                if full in self.entries:
                    raise ValueError(f"text {full!r} is in both {self.sources[full]} and {catalogue.path}")
                self.entries[full] = entry if isinstance(entry, Mapping) else {}
                self.sources[full] = catalogue.path

    def __contains__(self, key: Text) -> bool:
        return key in self.entries

    def value(self, key: Text, language: Optional[Text]) -> Any:
        """The raw entry of ``key`` in ``language`` (a text, or a list/mapping of texts)."""
        entry = self.entries.get(key)
        if entry is None:
            raise MissingText(f"no text {key!r} in any catalogue (core/texts.py CATALOGUES): add it, "
                              f"in every language, and run make validate")
        for code in (self.languages.or_default(language), self.languages.default):
            found = entry.get(code)
            if found not in (None, "", [], {}):
                return found
        raise MissingText(f"text {key!r} ({self.sources[key]}) has no {self.languages.default!r} text")

    def text(self, key: Text, language: Optional[Text], **fields: Any) -> Text:
        """The text ``key`` in ``language`` with its ``{placeholders}`` filled."""
        template = self.value(key, language)
        if not isinstance(template, str):
            raise TypeError(f"text {key!r} is a {type(template).__name__}, not one text: use value()")
        return template.format(**fields) if fields else template


@lru_cache(maxsize=1)
def catalogue() -> Texts:
    """The project's catalogues, read once per process."""
    return Texts()


def text(key: Text, language: Optional[Text], **fields: Any) -> Text:
    return catalogue().text(key, language, **fields)


def value(key: Text, language: Optional[Text]) -> Any:
    return catalogue().value(key, language)


def has(key: Text) -> bool:
    return key in catalogue()
