"""Every fixed learner-facing text, for voice: ``(key, language, text, where used)``.

What ``make voice-prompts`` renders ahead of time, ``make voice-script`` lists for
recording, ``make validate`` checks recordings against, and the voice channel uses to find
the recording of a text (``voice/recordings/<lang>/<key>.wav``).

:func:`fixed_texts` reads the catalogues of ``core.texts`` (the one list of where texts
live: ``actions/content/messages.yml``, ``channel.yml``, the tutors' ``texts:`` sections)
plus the rule responses of ``domain.yml`` (``utter_*``).

A text with ``{placeholders}`` is made per turn (a problem with numbers, a name): it is not
rendered ahead of time nor recorded; the channel synthesises it within the turn's budget.
A key with several variants (a list of texts, or several domain variations in one
language) gets ``.1``, ``.2`` ... appended.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterator, List, Text, Tuple

import yaml

from connectors.common import strip_emoji
from core import language as languages
from core import texts as core_texts

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = languages.SUPPORTED
PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


@dataclass(frozen=True)
class FixedText:
    key: Text
    lang: Text
    text: Text
    where: Text

    @property
    def per_turn(self) -> bool:
        return is_per_turn(self.text)


def is_per_turn(text: Text) -> bool:
    return bool(PLACEHOLDER.search(text))


def text_hash(text: Text) -> Text:
    """The file name of a recording made for a text outside the catalogues."""
    return hashlib.sha256(spoken(text).encode("utf-8")).hexdigest()[:16]


def spoken(text: Text) -> Text:
    """A text as the voice channel speaks it (emoji dropped, spaces trimmed)."""
    return strip_emoji(text).strip()


def _variants(key: Text, value: Any) -> Iterator[Tuple[Text, Text]]:
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, list):
        strings = [v for v in value if isinstance(v, str)]
        for i, text in enumerate(strings, 1):
            yield (f"{key}.{i}" if len(strings) > 1 else key), text


def _entries(prefix: Text, entries: Dict[Text, Any], where: Text) -> Iterator[FixedText]:
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            continue
        key = f"{prefix}.{name}" if prefix else str(name)
        for lang in LANGUAGES:
            for variant_key, text in _variants(key, entry.get(lang)):
                yield FixedText(variant_key, lang, text, where)


def _catalogues(root: Path) -> Iterator[FixedText]:
    """The catalogues of ``core.texts``: the project's (read once), or those of a copy at ``root``."""
    if root == ROOT:
        catalogue = core_texts.catalogue()
    else:
        present = [c for c in core_texts.CATALOGUES if (root / c.path).is_file()]
        catalogue = core_texts.Texts(present, root=root)
    for key, entry in catalogue.entries.items():
        yield from _entries("", {key: dict(entry)}, catalogue.sources[key])


def _domain_responses(root: Path) -> Iterator[FixedText]:
    domain = yaml.safe_load((root / "domain.yml").read_text(encoding="utf-8")) or {}
    for name, variations in (domain.get("responses") or {}).items():
        per_lang: Dict[Text, List[Text]] = {}
        for variation in variations or []:
            if not isinstance(variation, dict) or not variation.get("text"):
                continue
            lang = ""  # no language condition: said in every language without its own variation
            for condition in variation.get("condition") or []:
                if condition.get("name") == "language" and condition.get("value") in LANGUAGES:
                    lang = condition["value"]
            per_lang.setdefault(lang, []).append(variation["text"])
        for lang in LANGUAGES:
            for variant_key, text in _variants(name, per_lang.get(lang) or per_lang.get("", [])):
                yield FixedText(variant_key, lang, text, "domain.yml")


def fixed_texts(root: Path = ROOT) -> List[FixedText]:
    """Every fixed text in every language (catalogues, then domain responses)."""
    return list(_catalogues(root)) + list(_domain_responses(root))


@lru_cache(maxsize=1)
def keys_by_text() -> Dict[Tuple[Text, Text], Text]:
    """``(language, spoken text) -> key`` of the fixed texts (the first key wins)."""
    found: Dict[Tuple[Text, Text], Text] = {}
    for fixed in fixed_texts():
        found.setdefault((fixed.lang, spoken(fixed.text)), fixed.key)
    return found
