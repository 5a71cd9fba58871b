#!/usr/bin/env python
"""BAKAME's own data checks, run by `make validate` after `rasa data validate`.

Prints one line per problem, ``file:line — what to fix``, and exits 1 when there is an error:

* intents: listed in domain.yml and present in every language folder (data/nlu/en, data/nlu/rw)
  with at least 25 examples each; no NLU intent missing from the domain;
* examples: the same example text under two different intents (in any language);
* responses: a default-language (English) variation and one per other language
  (``condition: language == rw``) for every domain response; the ``language`` slot takes
  exactly the languages of core/languages.yml;
* catalogues (every file in core/texts.py ``CATALOGUES``: actions/content/messages.yml,
  channel.yml and the tutors' ``texts:``): every key has a text in every language of
  core/languages.yml, the same ``{placeholders}`` in each, and every key the code looks up
  with a literal (``texts.text("math.intro", ...)``) exists;
* length: every text fits one SMS segment (160 GSM-7 characters, plain ASCII: with its fields
  filled and joined to the turn's other messages a reply stays within the SMS channel's
  2-segment budget) and a voice turn (40 words, about 16 seconds at 150 words a minute, and
  250 characters; ``call_*`` texts are voice-only, ``sms_*`` texts SMS-only);
* USSD: every ``ussd_`` text of channel.yml, its fields filled, fits a 182-character screen
  with the longest option line (``ussd_menu``, ``ussd_*_footer``), which leave 40 characters;
* actions: every action named in rules, stories, test stories and the domain's ``actions:``
  is implemented in actions/ (a class whose ``name()`` returns it), every form slot has a
  question (``utter_ask_<slot>`` or ``action_ask_<slot>``), and implemented
  ``validate_<form>`` actions are listed in the domain;
* recordings: voice/recordings/<lang>/*.wav (scripts/check_recordings.py).

Usage: ``python scripts/check_data.py [--project-dir DIR] [--strict]``. The same checks are
importable: ``check_project(Path(...))`` returns the list of findings (see tests/test_check_data.py).
docs/designers.md explains every message.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_recordings import check_recordings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the project's packages (core) importable
    sys.path.insert(0, str(ROOT))

from core import gsm  # noqa: E402
from core import language as core_language  # noqa: E402
from core.texts import CATALOGUES, Catalogue  # noqa: E402

LANGUAGES = core_language.SUPPORTED
MIN_EXAMPLES = 25
SMS_LIMIT = gsm.SINGLE_SEGMENT  # septets in one GSM-7 SMS
USSD_LIMIT = 182  # characters on one USSD screen (Rwandan operators; connectors/ussd.py)
# The USSD screens' option lines (channel.yml): every other ussd_ text, its fields filled,
# must fit one screen with the longest of them.
USSD_FOOTERS = ("ussd_menu", "ussd_menu_outreach", "ussd_math_footer", "ussd_answer_footer", "ussd_name_footer")
USSD_WHOLE = ("ussd_outreach_menu", "ussd_outreach_guardian")  # whole screens: no option line added
USSD_ROOM = 40  # characters a footer leaves for the lesson's own text
USSD_SAMPLE = {"name": "Nyiramahoro", "name_part": ", Nyiramahoro", "module": "icyongereza", "code": "*384*12345#"}
VOICE_MAX_WORDS = 40  # about 15 seconds of speech
VOICE_MAX_CHARS = 250

ERROR = "error"
WARNING = "warning"

# Rasa's built-in actions (rasa.shared.core.constants.DEFAULT_ACTION_NAMES in 3.6).
_FALLBACK_DEFAULT_ACTIONS = {
    "action_listen", "action_restart", "action_session_start", "action_default_fallback",
    "action_deactivate_loop", "action_revert_fallback_events", "action_default_ask_affirmation",
    "action_default_ask_rephrase", "action_two_stage_fallback", "action_unlikely_intent",
    "action_back", "action_send_text", "action_extract_slots",
}


def default_actions() -> Set[str]:
    try:
        from rasa.shared.core.constants import DEFAULT_ACTION_NAMES

        return set(DEFAULT_ACTION_NAMES) | _FALLBACK_DEFAULT_ACTIONS
    except Exception:  # pragma: no cover - rasa not importable
        return set(_FALLBACK_DEFAULT_ACTIONS)


@dataclass(frozen=True)
class Finding:
    level: str
    path: str
    line: int
    message: str
    code: str  # short machine-readable kind, e.g. "missing-translation"

    def __str__(self) -> str:
        tag = "" if self.level == ERROR else "warning: "
        return f"{self.path}:{self.line} — {tag}{self.message}"


@dataclass
class Example:
    text: str
    intent: str
    language: Optional[str]
    path: str
    line: int


@dataclass
class Report:
    findings: List[Finding] = field(default_factory=list)
    counts: Dict[str, Dict[str, int]] = field(default_factory=dict)  # intent -> language -> n
    checked: Dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> List[Finding]:
        return [f for f in self.findings if f.level == ERROR]

    @property
    def warnings(self) -> List[Finding]:
        return [f for f in self.findings if f.level == WARNING]

    def add(self, level: str, path: str, line: int, code: str, message: str) -> None:
        self.findings.append(Finding(level, path, line, message, code))


# ----------------------------------------------------------------------------- loading

def _yaml() -> YAML:
    return YAML(typ="rt")


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return _yaml().load(handle)


def _line_of_key(mapping: Any, key: str) -> int:
    try:
        return mapping.lc.key(key)[0] + 1
    except Exception:
        return 1


def _line_of_item(sequence: Any, index: int) -> int:
    try:
        return sequence.lc.item(index)[0] + 1
    except Exception:
        return 1


def _line(node: Any) -> int:
    try:
        return node.lc.line + 1
    except Exception:
        return 1


def _yaml_files(folder: Path) -> List[Path]:
    if not folder.exists():
        return []
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


_ENTITY = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\}|\[[^\]]*\])")


def plain_text(example: str) -> str:
    """Example text without entity annotations, lower case, single spaces, no end punctuation."""
    text = _ENTITY.sub(r"\1", example)
    text = " ".join(text.lower().split())
    return text.strip(" .,!?;:")


class Project:
    """Paths of a Rasa project laid out like BAKAME."""

    def __init__(self, root: Path, languages: Sequence[str] = LANGUAGES):
        self.root = Path(root).resolve()
        self.languages = tuple(languages)
        self.data = self.root / "data"
        self.nlu = self.data / "nlu"
        self.domain = self.root / "domain.yml"
        if not self.domain.exists() and (self.root / "domain").is_dir():
            self.domain = self.root / "domain"
        self.actions = self.root / "actions"
        self.tests = self.root / "tests"

    def rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    def load_domain(self) -> List[Tuple[Path, Any]]:
        return [(p, _load(p) or {}) for p in _yaml_files(self.domain)]


# ----------------------------------------------------------------------------- checks

def _language_of_nlu_file(project: Project, path: Path) -> Optional[str]:
    try:
        first = path.resolve().relative_to(project.nlu.resolve()).parts[0]
    except (ValueError, IndexError):
        return None
    return first if first in project.languages else None


def load_examples(project: Project, report: Report) -> List[Example]:
    examples: List[Example] = []
    for path in _yaml_files(project.data):
        doc = _load(path)
        if not isinstance(doc, dict) or "nlu" not in doc:
            continue
        rel = project.rel(path)
        language = _language_of_nlu_file(project, path)
        items = doc.get("nlu") or []
        if language is None and any(isinstance(i, dict) and "intent" in i for i in items):
            report.add(WARNING, rel, 1, "nlu-outside-language-folder",
                       f"NLU examples outside data/nlu/<language>/ cannot be counted per language: "
                       f"move them to data/nlu/{'/ or data/nlu/'.join(project.languages)}/")
        for item in items:
            if not isinstance(item, dict) or "intent" not in item:
                continue
            intent = str(item["intent"])
            raw = item.get("examples")
            if isinstance(raw, str):
                first_line = _line_of_key(item, "examples") + 1
                for offset, line in enumerate(raw.splitlines()):
                    stripped = line.strip()
                    if stripped.startswith("- "):
                        stripped = stripped[2:]
                    elif stripped == "-":
                        stripped = ""
                    else:
                        continue
                    examples.append(Example(stripped, intent, language, rel, first_line + offset))
            elif isinstance(raw, list):
                for index, entry in enumerate(raw):
                    text = entry.get("text") if isinstance(entry, dict) else entry
                    examples.append(Example(str(text or ""), intent, language, rel, _line_of_item(raw, index)))
    return examples


def _intent_headers(project: Project) -> Dict[Tuple[str, Optional[str]], Tuple[str, int]]:
    """(intent, language) -> (file, line) of the first `- intent:` block."""
    headers: Dict[Tuple[str, Optional[str]], Tuple[str, int]] = {}
    for path in _yaml_files(project.data):
        doc = _load(path)
        if not isinstance(doc, dict) or not isinstance(doc.get("nlu"), list):
            continue
        language = _language_of_nlu_file(project, path)
        for item in doc["nlu"]:
            if isinstance(item, dict) and "intent" in item:
                headers.setdefault((str(item["intent"]), language), (project.rel(path), _line(item)))
    return headers


def check_intents(project: Project, report: Report, domain_docs, examples: List[Example], min_examples: int) -> None:
    domain_intents: Dict[str, Tuple[str, int]] = {}
    for path, doc in domain_docs:
        intents = doc.get("intents") or []
        for index, entry in enumerate(intents):
            name = next(iter(entry)) if isinstance(entry, dict) else str(entry)
            domain_intents[name] = (project.rel(path), _line_of_item(intents, index))
    headers = _intent_headers(project)
    counts: Dict[str, Dict[str, int]] = {}
    for example in examples:
        if example.language and example.text.strip():
            counts.setdefault(example.intent, {}).setdefault(example.language, 0)
            counts[example.intent][example.language] += 1
    report.counts = {i: {lang: counts.get(i, {}).get(lang, 0) for lang in project.languages}
                     for i in sorted(set(domain_intents) | set(counts))}

    for intent, (path, line) in domain_intents.items():
        for lang in project.languages:
            n = counts.get(intent, {}).get(lang, 0)
            name = core_language.name(lang)
            if n == 0:
                report.add(ERROR, path, line, "intent-missing-language",
                           f"intent '{intent}' has no {name} examples: add at least {min_examples} "
                           f"under '- intent: {intent}' in data/nlu/{lang}/nlu.yml")
            elif n < min_examples:
                hpath, hline = headers.get((intent, lang), (path, line))
                report.add(ERROR, hpath, hline, "too-few-examples",
                           f"intent '{intent}' has only {n} {name} examples: add {min_examples - n} more "
                           f"(minimum {min_examples} per language)")
    for (intent, lang), (path, line) in sorted(headers.items(), key=lambda kv: (kv[1], kv[0][0])):
        if intent not in domain_intents:
            report.add(ERROR, path, line, "intent-not-in-domain",
                       f"intent '{intent}' has examples but is not listed under 'intents:' in domain.yml: add it there")
    report.checked["intents"] = len(domain_intents)


def check_duplicates(project: Project, report: Report, examples: List[Example]) -> None:
    first_seen: Dict[str, Example] = {}
    reported: Set[Tuple[str, str, str]] = set()
    for example in examples:
        key = plain_text(example.text)
        if not key:
            report.add(ERROR, example.path, example.line, "empty-example",
                       f"empty example under intent '{example.intent}': remove the line")
            continue
        earlier = first_seen.get(key)
        if earlier is None:
            first_seen[key] = example
        elif earlier.intent != example.intent:
            pair = (key, *sorted((earlier.intent, example.intent)))
            if pair in reported:
                continue
            reported.add(pair)
            report.add(ERROR, example.path, example.line, "duplicate-example",
                       f"'{example.text}' is an example of both '{earlier.intent}' ({earlier.path}:{earlier.line}) "
                       f"and '{example.intent}': keep it under one intent only")
    report.checked["examples"] = len(examples)


# ----------------------------------------------------------------------------- responses

def _is_language_condition(condition: Any, value: str) -> bool:
    if not isinstance(condition, list):
        return False
    return any(isinstance(c, dict) and c.get("type") == "slot" and c.get("name") == "language"
               and str(c.get("value")) == value for c in condition)


def bilingual_detector(project: Project) -> Callable[[str], bool]:
    """True when a single text already says things in every language, sentence by sentence
    (like utter_greet_first: "Muraho! Hello! Ndi BAKAME... I am BAKAME...")."""

    def detect(text: str) -> bool:
        seen = set()
        for sentence in re.split(r"[.!?]+", text):
            scores = core_language.scores(sentence)
            best = max(scores.values(), default=0)
            leaders = [code for code, score in scores.items() if score == best and score > 0]
            if len(leaders) == 1:
                seen.add(leaders[0])
        return set(project.languages) <= seen

    return detect


def check_text(report: Report, path: str, line: int, label: str, text: str, *, sms: bool = True,
               voice: bool = True, sms_limit: int = SMS_LIMIT, voice_words: int = VOICE_MAX_WORDS,
               voice_chars: int = VOICE_MAX_CHARS) -> None:
    text = str(text)
    if sms:
        bad = sorted(gsm.not_gsm(text))
        if bad:
            shown = " ".join(repr(c) for c in bad[:5])
            report.add(ERROR, path, line, "not-gsm",
                       f"{label}: {shown} not in the GSM-7 alphabet (SMS would switch to 70-character "
                       f"segments): use plain ASCII quotes, dashes and letters")
        length = gsm.septets(text)
        if length > sms_limit:
            report.add(ERROR, path, line, "too-long-sms",
                       f"{label} is {length} characters, over one SMS ({sms_limit}): shorten it by "
                       f"{length - sms_limit} characters or split it into two responses")
    if voice:
        words = len(text.split())
        if words > voice_words or len(text) > voice_chars:
            report.add(ERROR, path, line, "too-long-voice",
                       f"{label} is {words} words / {len(text)} characters, too long to listen to on a call "
                       f"(max {voice_words} words, {voice_chars} characters): shorten or split it")


def check_language_slot(project: Project, report: Report, domain_docs) -> None:
    """The domain's `language` slot takes exactly the languages of core/languages.yml."""
    for path, doc in domain_docs:
        slots = doc.get("slots") or {}
        spec = slots.get("language")
        if isinstance(spec, dict) and spec.get("type") == "categorical":
            values = [str(v) for v in spec.get("values") or []]
            if sorted(values) != sorted(project.languages):
                report.add(ERROR, project.rel(path), _line_of_key(slots, "language"), "language-slot",
                           f"slot 'language' takes {values} but the languages are {list(project.languages)} "
                           f"(core/languages.yml): give it the same values")


def check_responses(project: Project, report: Report, domain_docs, limits: Dict[str, int]) -> Set[str]:
    is_bilingual = bilingual_detector(project)
    names: Set[str] = set()
    for path, doc in domain_docs:
        rel = project.rel(path)
        responses = doc.get("responses") or {}
        for name, variations in responses.items():
            names.add(name)
            line = _line_of_key(responses, name)
            if not isinstance(variations, list) or not variations:
                report.add(ERROR, rel, line, "empty-response", f"response '{name}' has no variations")
                continue
            default = [v for v in variations if isinstance(v, dict) and not v.get("condition") and not v.get("channel")]
            translated = {lang: [v for v in variations if isinstance(v, dict)
                                 and _is_language_condition(v.get("condition"), lang)]
                          for lang in project.languages if lang != core_language.DEFAULT}
            if not default:
                report.add(ERROR, rel, line, "missing-default",
                           f"response '{name}' has no default ({core_language.name(core_language.DEFAULT)}) "
                           f"variation: add one without a condition")
            bilingual = any(is_bilingual(str(v.get("text", ""))) for v in default)
            for lang, found in translated.items():
                if not found and not bilingual:
                    report.add(ERROR, rel, line, "missing-translation",
                               f"response '{name}' has no {core_language.name(lang)} variation: add one with "
                               f"'condition: [{{type: slot, name: language, value: {lang}}}]'")
            for index, variation in enumerate(variations):
                if isinstance(variation, dict) and variation.get("text"):
                    which = next((lang for lang, found in translated.items() if variation in found), "default")
                    check_text(report, rel, _line_of_item(variations, index), f"response '{name}' ({which})",
                               variation["text"], **limits)
    report.checked["responses"] = len(names)
    return names


_PLACEHOLDER = re.compile(r"{(\w*)[^{}]*}")


def _texts_in(value: Any, line: int) -> List[Tuple[str, int]]:
    """(text, line) for a catalogue value: one text, a list of variants or a mapping of texts."""
    if isinstance(value, str):
        return [(value, line)]
    if isinstance(value, list):
        return [(str(v), _line_of_item(value, i)) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return [(str(v), _line_of_key(value, k)) for k, v in value.items()]
    return []


def _same_shape(report: Report, rel: str, line: int, label: str, values: Dict[str, Any]) -> None:
    """Lists and mappings give the same entries in every language; every text is a valid template."""
    mappings = [set(v) for v in values.values() if isinstance(v, dict)]
    if len(mappings) >= 2 and set().union(*mappings) != set.intersection(*mappings):
        missing = set().union(*mappings) - set.intersection(*mappings)
        report.add(ERROR, rel, line, "missing-translation",
                   f"{label}: entries {sorted(missing)} are not given in every language")
    lists = {lang: len(v) for lang, v in values.items() if isinstance(v, list)}
    if len(set(lists.values())) > 1:
        report.add(ERROR, rel, line, "missing-translation",
                   f"{label}: {', '.join(f'{lang} has {n}' for lang, n in lists.items())} variants: "
                   f"give the same number in every language")
    # Translations may use different fields (rw says "wa kabiri" where en says "2"), but every
    # text must be a valid template: a stray brace fails when the code fills it.
    fields = {m.group(1) for v in values.values() for text, _ in _texts_in(v, line) for m in _PLACEHOLDER.finditer(text)}
    for lang, value in values.items():
        for text, text_line in _texts_in(value, line):
            try:
                text.format(**{name: "" for name in fields if name})
            except (KeyError, IndexError, ValueError) as exc:
                report.add(ERROR, rel, text_line, "bad-placeholder",
                           f"{label} ({lang}) is not a valid template ({type(exc).__name__}: {exc}): "
                           f"write fields as {{name}} and a literal brace as {{{{ or }}}}")


def check_catalogue(project: Project, report: Report, catalogue: Catalogue, limits: Dict[str, int]) -> Set[str]:
    """One catalogue file (or its section): every language, placeholders, GSM-7 and length."""
    path = project.root / catalogue.path
    if not path.exists():
        return set()
    rel = project.rel(path)
    doc = _load(path) or {}
    entries = doc.get(catalogue.section) if catalogue.section else doc
    if not isinstance(entries, dict):
        report.add(ERROR, rel, 1, "no-catalogue", f"no '{catalogue.section}:' section of texts: add it")
        return set()
    for key, entry in entries.items():
        line = _line_of_key(entries, key)
        label = f"message '{catalogue.key(str(key))}'"
        if not isinstance(entry, dict):
            report.add(ERROR, rel, line, "missing-translation",
                       f"{label} must be a mapping with {', '.join(repr(l) for l in project.languages)} texts")
            continue
        for lang in project.languages:
            if entry.get(lang) in (None, "", {}, []):
                report.add(ERROR, rel, line, "missing-translation",
                           f"{label} has no '{lang}' ({core_language.name(lang)}) text: add it")
        _same_shape(report, rel, line, label, {lang: entry[lang] for lang in project.languages if lang in entry})
        voice_only = str(key).startswith(tuple(catalogue.voice_only))
        sms_only = str(key).startswith(tuple(catalogue.sms_only))
        for lang in project.languages:
            for text, text_line in _texts_in(entry.get(lang), _line_of_key(entry, lang)):
                check_text(report, rel, text_line, f"{label} ({lang})", text,
                           **dict(limits, sms=not voice_only, voice=not sms_only))
    return {catalogue.key(str(key)) for key in entries}


# A lookup whose key is one literal (keys built at run time, "debate." + key, are not checked).
_LOOKUP = re.compile(r"""\b(?:texts\.text|texts\.value|texts\.has|messages\.text)\(\s*["']([\w.]+)["']\s*[,)]""")


def check_catalogues(project: Project, report: Report, limits: Dict[str, int]) -> None:
    """Every catalogue, and every key the code looks up with a literal exists in one."""
    keys: Set[str] = set()
    for catalogue in CATALOGUES:
        keys |= check_catalogue(project, report, catalogue, limits)
    report.checked["texts"] = len(keys)
    if not keys:
        return
    for folder in ("actions", "connectors", "infra", "core"):
        for path in sorted((project.root / folder).rglob("*.py")):
            for number, source in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for match in _LOOKUP.finditer(source):
                    if match.group(1) not in keys:
                        report.add(ERROR, project.rel(path), number, "unknown-text",
                                   f"text '{match.group(1)}' is in no catalogue: add it (every language) "
                                   f"or fix the key")


def check_ussd_screens(project: Project, report: Report) -> None:
    """Every ``ussd_`` text of the channel catalogue fits a 182-character USSD screen: the option
    lines leave room for the lesson's text, the other texts (fields filled with long values)
    fit with the longest option line of their language."""
    path = project.root / "actions/content/channel.yml"
    if not path.exists():
        return
    rel, entries = project.rel(path), _load(path) or {}
    for lang in project.languages:
        footers = [str((entries.get(key) or {}).get(lang) or "") for key in USSD_FOOTERS]
        longest = max((len(footer) for footer in footers), default=0)
        for key, entry in entries.items():
            if not str(key).startswith("ussd_") or not isinstance(entry, dict) or not entry.get(lang):
                continue
            try:
                text = str(entry[lang]).format(**USSD_SAMPLE)
            except (KeyError, IndexError, ValueError):
                continue  # check_catalogue reports bad templates
            room = USSD_LIMIT - USSD_ROOM if key in USSD_FOOTERS else USSD_LIMIT if key in USSD_WHOLE \
                else USSD_LIMIT - 1 - longest
            report.checked["ussd screens"] = report.checked.get("ussd screens", 0) + 1
            if len(text) > room:
                report.add(ERROR, rel, _line_of_key(entry, lang), "too-long-ussd",
                           f"message 'channel.{key}' ({lang}) is {len(text)} characters with its fields filled; "
                           f"a USSD screen of {USSD_LIMIT} leaves it {room}: shorten it by {len(text) - room}")


# ----------------------------------------------------------------------------- actions

def implemented_actions(project: Project) -> Dict[str, str]:
    """Action name -> file, for every class in actions/ whose name() returns a string literal."""
    found: Dict[str, str] = {}
    for path in sorted(project.actions.rglob("*.py")) if project.actions.exists() else []:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == "name":
                        for sub in ast.walk(item):
                            if isinstance(sub, ast.Return) and isinstance(sub.value, ast.Constant) \
                                    and isinstance(sub.value.value, str):
                                found.setdefault(sub.value.value, project.rel(path))
    return found


def _steps(steps: Any) -> Iterable[Any]:
    for step in steps or []:
        if isinstance(step, dict) and "or" in step:
            yield from _steps(step["or"])
        else:
            yield step


def used_actions(project: Project) -> List[Tuple[str, str, int]]:
    """(action, file, line) for every `action:` step in rules and stories (data/ and tests/)."""
    used: List[Tuple[str, str, int]] = []
    files = _yaml_files(project.data) + _yaml_files(project.tests)
    for path in files:
        try:
            doc = _load(path)
        except Exception:
            continue
        if not isinstance(doc, dict):
            continue
        for section in ("rules", "stories"):
            for block in doc.get(section) or []:
                if not isinstance(block, dict):
                    continue
                for key in ("condition", "steps"):
                    for step in _steps(block.get(key)):
                        if isinstance(step, dict) and step.get("action"):
                            used.append((str(step["action"]), project.rel(path), _line(step)))
    return used


def check_actions(project: Project, report: Report, domain_docs, response_names: Set[str]) -> None:
    implemented = implemented_actions(project)
    builtin = default_actions()
    domain_actions: Dict[str, Tuple[str, int]] = {}
    forms: Dict[str, Tuple[str, int, List[str]]] = {}
    for path, doc in domain_docs:
        rel = project.rel(path)
        actions = doc.get("actions") or []
        for index, entry in enumerate(actions):
            name = next(iter(entry)) if isinstance(entry, dict) else str(entry)
            domain_actions[name] = (rel, _line_of_item(actions, index))
        for form, spec in (doc.get("forms") or {}).items():
            slots = list((spec or {}).get("required_slots") or []) if isinstance(spec, dict) else []
            forms[form] = (rel, _line_of_key(doc["forms"], form), [str(s) for s in slots])

    def known(name: str) -> bool:
        return name in implemented or name in response_names or name in forms or name in builtin

    for name, (path, line) in domain_actions.items():
        if name.startswith("utter_") and name not in response_names and name not in implemented:
            report.add(ERROR, path, line, "missing-response",
                       f"'{name}' is listed under actions: but domain.yml has no response with that name")
        elif not name.startswith("utter_") and name not in implemented and name not in forms:
            # A built-in action listed in the domain is an override: it needs an implementation too.
            report.add(ERROR, path, line, "unimplemented-action",
                       f"action '{name}' is listed in domain.yml but not implemented: add a class in actions/ "
                       f"whose name() returns \"{name}\" (or remove it)")
    for name, path, line in used_actions(project):
        if name.startswith("utter_"):
            if name not in response_names and name not in implemented:
                report.add(ERROR, path, line, "missing-response",
                           f"'{name}' is used here but domain.yml has no response '{name}': add it (both languages)")
        elif name in forms or (name in builtin and name not in domain_actions):
            continue
        elif name not in implemented:
            report.add(ERROR, path, line, "unimplemented-action",
                       f"action '{name}' is used here but not implemented: add a class in actions/ whose "
                       f"name() returns \"{name}\"" + ("" if name in domain_actions else " and list it under actions: in domain.yml"))
        elif name not in domain_actions and name not in builtin:
            report.add(ERROR, path, line, "action-not-in-domain",
                       f"action '{name}' is used here but not listed under actions: in domain.yml: add it")
    for form, (path, line, slots) in forms.items():
        for slot in slots:
            questions = [f"utter_ask_{form}_{slot}", f"utter_ask_{slot}", f"action_ask_{form}_{slot}", f"action_ask_{slot}"]
            if not any(q in response_names or (q in implemented and q in domain_actions) for q in questions):
                report.add(ERROR, path, line, "form-slot-without-question",
                           f"form '{form}' asks for slot '{slot}' but there is no question: add a response "
                           f"'utter_ask_{slot}' (both languages) or an action 'action_ask_{slot}'")
        validator = f"validate_{form}"
        if validator in implemented and validator not in domain_actions:
            report.add(WARNING, path, line, "validator-not-in-domain",
                       f"'{validator}' is implemented in {implemented[validator]} but not listed under actions: "
                       f"in domain.yml, so Rasa never calls it")
    report.checked["actions"] = len(domain_actions)


# ----------------------------------------------------------------------------- entry points

def check_project(root: Path = ROOT, *, languages: Sequence[str] = LANGUAGES, min_examples: int = MIN_EXAMPLES,
                  sms_limit: int = SMS_LIMIT, voice_words: int = VOICE_MAX_WORDS,
                  voice_chars: int = VOICE_MAX_CHARS) -> Report:
    project = Project(Path(root), languages)
    report = Report()
    if not _yaml_files(project.domain):
        report.add(ERROR, "domain.yml", 1, "no-domain", f"no domain.yml in {project.root}")
        return report
    limits = dict(sms_limit=sms_limit, voice_words=voice_words, voice_chars=voice_chars)
    domain_docs = project.load_domain()
    examples = load_examples(project, report)
    check_intents(project, report, domain_docs, examples, min_examples)
    check_duplicates(project, report, examples)
    check_language_slot(project, report, domain_docs)
    responses = check_responses(project, report, domain_docs, limits)
    check_catalogues(project, report, limits)
    check_ussd_screens(project, report)
    check_actions(project, report, domain_docs, responses)
    check_recordings(project.root, report.add, report.checked)  # voice/recordings (scripts/check_recordings.py)
    report.findings.sort(key=lambda f: (f.level != ERROR, f.path, f.line))
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project-dir", default=str(ROOT), help="project to check (default: this repository)")
    parser.add_argument("--languages", default=",".join(LANGUAGES), help="comma-separated language folders")
    parser.add_argument("--min-examples", type=int, default=MIN_EXAMPLES)
    parser.add_argument("--sms-limit", type=int, default=SMS_LIMIT)
    parser.add_argument("--voice-words", type=int, default=VOICE_MAX_WORDS)
    parser.add_argument("--voice-chars", type=int, default=VOICE_MAX_CHARS)
    parser.add_argument("--strict", action="store_true", help="warnings fail too")
    parser.add_argument("--counts", action="store_true", help="print examples per intent per language")
    args = parser.parse_args(argv)

    report = check_project(Path(args.project_dir), languages=args.languages.split(","),
                           min_examples=args.min_examples, sms_limit=args.sms_limit,
                           voice_words=args.voice_words, voice_chars=args.voice_chars)
    if args.counts:
        langs = args.languages.split(",")
        print("intent".ljust(20) + "".join(lang.rjust(6) for lang in langs))
        for intent, per_lang in report.counts.items():
            print(intent.ljust(20) + "".join(str(per_lang.get(lang, 0)).rjust(6) for lang in langs))
    for finding in report.findings:
        print(finding)
    failed = bool(report.errors) or (args.strict and bool(report.warnings))
    checked = ", ".join(f"{n} {what}" for what, n in report.checked.items())
    if failed:
        print(f"check_data: {len(report.errors)} error(s), {len(report.warnings)} warning(s) — fix the lines above "
              f"(docs/designers.md explains each message). Checked {checked}.")
        return 1
    summary = f"check_data: OK ({checked}"
    summary += f"; {len(report.warnings)} warning(s))." if report.warnings else ")."
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
