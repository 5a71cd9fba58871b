"""A small, fast, rule-based English grammar checker for BAKAME learners.

It finds the errors Rwandan learners of English make most often and proposes a fix:

* subject-verb agreement: "she go" -> "she goes", "they was" -> "they were"
* verb form after do/does/did/modals/to: "she doesn't goes" -> "go"
* tense with time words: "yesterday I go" -> "went", "tomorrow I went" -> "will go"
* articles: "a apple" -> "an apple", "I am student" -> "a student", "the Kigali" -> "Kigali"
* plurals: "two cat" -> "two cats", "childs" -> "children", "every days" -> "every day"
* "I am agree" -> "I agree", "more better" -> "better", "I have 15 years" -> "I am 15 years old"

Design: the word knowledge (verbs with their forms, irregular plurals, uncountable
nouns, vowel-sound exceptions, place names, time words, explanations) is data in
``actions/content/grammar.yml``; this module holds only the rules. Tokenisation uses
``spacy.blank("en")`` (tokenizer only, no pretrained model), loaded once on first use;
when spaCy is missing a small regex tokenizer is used instead. The rules prefer
missing an error to raising a false alarm: a learner told that a correct sentence is
wrong loses trust quickly.
"""
from __future__ import annotations

import functools
import logging
import re
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Set, Tuple

from actions.tutoring.common import load_content_file
from core import texts

logger = logging.getLogger(__name__)

# Correction kinds
SUBJECT_VERB = "subject_verb"
VERB_FORM = "verb_form"
TENSE = "tense"
ARTICLE = "article"
PLURAL = "plural"
COMPARATIVE = "comparative"
EXPRESSION = "expression"
KINDS = (SUBJECT_VERB, VERB_FORM, TENSE, ARTICLE, PLURAL, COMPARATIVE, EXPRESSION)


@dataclass(frozen=True)
class Correction:
    """One error found in a sentence.

    ``wrong`` is the text span as the learner wrote it (``sentence[start:end]`` of the
    whitespace-normalised sentence), ``suggestion`` what should replace it, and
    ``corrected`` the whole sentence with *all* corrections of the check applied.
    ``explanation`` is a key of ``explanations`` in grammar.yml (see :func:`explain`).
    """

    kind: str
    wrong: str
    suggestion: str
    corrected: str
    explanation: str
    start: int = 0
    end: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

_NUMBER_WORDS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000, "million": 1000000,
}
_BIG_NUMBERS = {"hundred", "thousand", "million"}
_PRONOUNS = {"i": "i", "you": "pl", "we": "pl", "they": "pl", "he": "3sg", "she": "3sg", "it": "3sg"}
_DETS_SG = {"my", "your", "his", "her", "our", "their", "the", "a", "an", "this", "that", "every", "each", "its"}
_DETS_PL = {"these", "those"}
_POSSESSIVE_DETS = {"the", "my", "your", "his", "her", "our", "their", "these", "those"}
_BE_PRESENT = {"am", "is", "are"}
_BE_PAST = {"was", "were"}
_BE_ALL = _BE_PRESENT | _BE_PAST
_DO = {"do", "does", "did"}
_INVERT_AUX = _BE_ALL | _DO | {"have", "has", "had", "can", "could", "will", "would", "shall",
                               "should", "must", "may", "might"}
_BOUNDARY_WORDS = {"and", "but", "or", "so", "because", "when", "if", "while", "before", "until",
                   "although", "though", "then", "since", "what", "who", "which", "where",
                   "whose", "cause", "cos"}
_BOUNDARY_PUNCT = {",", ";", ":", "(", ")", '"', "-", "--", "..."}
_SENT_END = {".", "!", "?"}
# words that may follow a noun without making it part of a compound noun
_FOLLOW_OK = {"and", "but", "because", "so", "to", "for", "from", "at", "in", "on", "with", "today",
              "yesterday", "tomorrow", "now", "every", "please", "too", "also", "here", "there",
              "when", "if", "or", "last", "next", "this", "very", "every", "of", "like", "than"}
_FOLLOW_OK_NO_OF = _FOLLOW_OK - {"of", "like", "than"}
_REPORTED = {"that", "what", "who", "which", "whose", "where", "if"}
_QUANTIFIERS = {"many", "several", "few", "both", "these", "those", "various", "numerous"}
_OF_QUANT = {"one", "some", "many", "each", "all", "both", "most", "any", "none", "several", "few"}
_CONTRACTIONS = {"n't": "not", "'m": "am", "'re": "are", "'ve": "have", "'ll": "will", "'d": "would"}
_FUNCTION_WORDS = {
    "the", "a", "an", "and", "to", "of", "in", "on", "at", "is", "am", "are", "was", "were", "my",
    "your", "his", "her", "our", "their", "i", "you", "he", "she", "it", "we", "they", "this",
    "that", "with", "for", "from", "very", "not", "no", "yes", "have", "has", "do", "does", "did",
    "can", "will", "because", "so", "but", "or", "me", "him", "us", "them", "there", "here",
    "what", "who", "when", "where", "why", "how", "there", "some", "all", "many", "much",
    "every", "one", "after", "before", "then", "too", "also", "again", "please", "hello", "thank",
    "thanks", "like", "good", "bad", "nice", "happy", "sad", "than", "more", "most", "would",
    "could", "should", "must", "about", "by", "up", "down", "out", "home", "time", "people",
}


class Lexicon:
    """Word knowledge built once from grammar.yml."""

    def __init__(self, data: Dict[str, Any]):
        self.data = data
        verbs: Dict[str, Tuple[str, str, str]] = {}
        for base, forms in (data.get("verbs") or {}).items():
            if not forms:
                continue
            third, past = forms[0], forms[1]
            pp = forms[2] if len(forms) > 2 else past
            verbs[str(base)] = (str(third), str(past), str(pp))
        self.verbs = verbs
        self.third_of = {b: f[0] for b, f in verbs.items()}
        self.past_of = {b: f[1] for b, f in verbs.items()}
        self.base_of_third = {f[0]: b for b, f in verbs.items()}
        self.base_of_past: Dict[str, str] = {}
        for b, f in verbs.items():
            if f[1] != b:
                self.base_of_past[f[1]] = b
        for form, base in (data.get("past_variants") or {}).items():
            if base in verbs:
                self.base_of_past[form] = base
        self.pp_forms = {f[2] for f in verbs.values()}
        self.same_form = {b for b, f in verbs.items() if f[1] == b}
        self.past_not_after_to = set(data.get("past_not_after_to") or [])
        self.be_plus_verb = set(data.get("be_plus_verb") or [])
        self.modals = set(data.get("modals") or [])
        self.adverbs = set(data.get("frequency_adverbs") or [])

        nouns = data.get("nouns") or {}
        self.countable: Set[str] = set(nouns.get("countable") or [])
        self.same_plural = set(nouns.get("same_plural") or [])
        self.collective = set(nouns.get("collective") or [])
        self.uncountable = set(nouns.get("uncountable") or [])
        self.wrong_plurals = {str(k): str(v) for k, v in (nouns.get("wrong_plurals") or {}).items()}
        self.uncountable_wrong_plurals = set(nouns.get("uncountable_wrong_plurals") or [])
        self.plural_of: Dict[str, str] = {}
        self.singular_of: Dict[str, str] = {}
        irregular = nouns.get("irregular_plurals") or {}
        for n in sorted(self.countable | set(irregular)):
            forms = irregular.get(n)
            if forms is None:
                forms = [regular_plural(n)]
            elif isinstance(forms, str):
                forms = [forms]
            self.plural_of[n] = forms[0]
            for f in forms:
                self.singular_of[f] = n
        self.plurals = set(self.singular_of)
        self.nouns = (self.countable | self.plurals | self.uncountable | self.same_plural
                      | self.collective)

        arts = data.get("articles") or {}
        self.vowel_prefixes = tuple(arts.get("vowel_sound_prefixes") or [])
        self.consonant_prefixes = tuple(arts.get("consonant_sound_prefixes") or [])
        self.vowel_letters = set(arts.get("vowel_sound_letters") or [])
        self.places = {p.lower(): p for p in (arts.get("place_names") or [])}
        self.languages = set(arts.get("languages") or [])
        self.language_verbs = set(arts.get("language_verbs") or [])
        self.person_nouns = set(arts.get("person_nouns") or [])
        self.countable_things = set(arts.get("countable_things") or [])

        self.comparative_of: Dict[str, str] = {}
        self.superlative_of: Dict[str, str] = {}
        for adj, forms in (data.get("short_adjectives") or {}).items():
            self.comparative_of[adj] = forms[0]
            self.superlative_of[adj] = forms[1]
        self.comparatives = set(self.comparative_of.values())
        self.superlatives = set(self.superlative_of.values())
        self.adjectives = set(self.comparative_of) | set(data.get("other_adjectives") or [])

        t = data.get("time") or {}
        self.past_words = set(t.get("past_words") or [])
        self.future_words = set(t.get("future_words") or [])
        self.present_words = set(t.get("present_words") or [])
        self.periods = set(t.get("periods") or [])
        self.ago_units = set(t.get("ago_units") or [])
        self.explanations: Dict[str, Dict[str, str]] = data.get("explanations") or {}

        self.known_words = (
            set(verbs) | set(self.third_of.values()) | set(self.base_of_past) | self.pp_forms
            | self.nouns | self.adjectives | self.comparatives | self.superlatives
            | set(self.places) | self.languages | self.person_nouns | self.periods
            | self.adverbs | self.modals | _FUNCTION_WORDS | set(_NUMBER_WORDS) | set(_PRONOUNS)
            | self.past_words | self.future_words | self.present_words | {"be", "been", "being"}
        )

    # verb helpers --------------------------------------------------------------
    def is_base(self, w: str) -> bool:
        return w in self.verbs and w not in ("be", "have", "do")

    def is_third(self, w: str) -> bool:
        return w in self.base_of_third and w not in ("is", "has", "does")

    def is_past(self, w: str) -> bool:
        return w in self.base_of_past and w not in ("was", "were", "had", "did")

    def to_past(self, w: str) -> Optional[str]:
        base = self.base_of_third.get(w, w)
        if base in self.verbs and base not in self.same_form:
            return self.past_of[base]
        if base in self.same_form and w != base:  # "reads" -> "read"
            return self.past_of[base]
        return None

    def base(self, w: str) -> str:
        return self.base_of_third.get(w) or self.base_of_past.get(w) or w


def regular_plural(noun: str) -> str:
    if re.search(r"(s|x|z|ch|sh)$", noun):
        return noun + "es"
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    return noun + "s"


def load_grammar_data() -> Dict[str, Any]:
    return load_content_file("grammar.yml")


@functools.lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    return Lexicon(load_grammar_data())


# ---------------------------------------------------------------------------
# Tokenisation
# ---------------------------------------------------------------------------

@dataclass
class Tok:
    text: str
    lower: str
    norm: str
    idx: int
    ws: str

    @property
    def end(self) -> int:
        return self.idx + len(self.text)

    @property
    def is_word(self) -> bool:
        return bool(re.match(r"^[A-Za-z][A-Za-z'-]*$", self.text))


_NLP: Any = None
_NLP_FAILED = False
_FALLBACK_RE = re.compile(
    r"[A-Za-z]+(?=n't\b)|n't\b|'(?:m|s|re|ve|ll|d)\b|[A-Za-z]+|\d+(?:[.,]\d+)*|\.\.\.|\S"
)


def _get_nlp() -> Any:
    """The blank English spaCy pipeline, created once (None when spaCy is unavailable)."""
    global _NLP, _NLP_FAILED
    if _NLP is None and not _NLP_FAILED:
        try:
            import spacy  # imported lazily: importing spaCy takes seconds

            _NLP = spacy.blank("en")
        except Exception as exc:  # pragma: no cover - depends on the environment
            logger.warning("spaCy unavailable (%s); using the regex tokenizer", exc)
            _NLP_FAILED = True
    return _NLP


def tokenizer_backend() -> str:
    """"spacy" or "regex" - which tokenizer the checker uses."""
    return "spacy" if _get_nlp() is not None else "regex"


def warm_up() -> None:
    """Load spaCy and the rules now (e.g. when the action server starts)."""
    _get_nlp()
    lexicon()
    check_grammar("She goes to school.")


def normalise(sentence: str) -> str:
    text = (sentence or "").replace("\u2019", "'").replace("\u2018", "'")
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    return re.sub(r"\s+", " ", text).strip()


def tokenize(text: str) -> List[Tok]:
    nlp = _get_nlp()
    raw: List[Tuple[str, int, str]] = []
    if nlp is not None:
        for t in nlp.tokenizer(text):
            if t.is_space:
                continue
            raw.append((t.text, t.idx, t.whitespace_))
    else:
        matches = list(_FALLBACK_RE.finditer(text))
        for k, m in enumerate(matches):
            nxt = matches[k + 1].start() if k + 1 < len(matches) else len(text)
            raw.append((m.group(0), m.start(), text[m.end():nxt]))
    toks: List[Tok] = []
    for k, (txt, idx, ws) in enumerate(raw):
        low = txt.lower()
        norm = _CONTRACTIONS.get(low, low)
        attached_prev = k > 0 and raw[k - 1][2] == ""
        attached_next = k + 1 < len(raw) and ws == ""
        nxt_low = raw[k + 1][0].lower() if k + 1 < len(raw) else ""
        if low == "nt" and attached_prev:
            norm = "not"
        elif low == "m" and attached_prev and raw[k - 1][0].lower() == "i":
            norm = "am"
        elif attached_next and nxt_low in ("n't", "nt"):
            norm = {"ca": "can", "wo": "will", "sha": "shall"}.get(low, low)
        toks.append(Tok(txt, low, norm, idx, ws))
    return toks


# ---------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------

@dataclass
class _Edit:
    start: int  # token index
    end: int  # token index (exclusive)
    repl: str
    kind: str
    key: str


def _case_like(src: str, repl: str) -> str:
    if not repl:
        return repl
    if len(src) > 1 and src.isupper():
        return repl.upper()
    if src[:1].isupper():
        return repl[:1].upper() + repl[1:]
    return repl


def _number_value(tok: Tok) -> Optional[int]:
    if tok.lower in _NUMBER_WORDS:
        return _NUMBER_WORDS[tok.lower]
    if re.fullmatch(r"\d{1,3}(,\d{3})*", tok.text):
        return int(tok.text.replace(",", ""))
    return None


class _Run:
    """The state of checking one sentence (a few hundred tokens at most)."""

    def __init__(self, text: str, toks: List[Tok], lex: Lexicon):
        self.text = text
        self.toks = toks
        self.lex = lex
        self.n = len(toks)
        self.edits: List[_Edit] = []
        self.taken: Set[int] = set()
        letters = [c for c in text if c.isalpha()]
        self.all_caps = bool(letters) and sum(c.isupper() for c in letters) > 0.8 * len(letters)
        self._segment()

    # small accessors ------------------------------------------------------------
    def w(self, i: int) -> str:
        return self.toks[i].lower if 0 <= i < self.n else ""

    def nm(self, i: int) -> str:
        return self.toks[i].norm if 0 <= i < self.n else ""

    def span_text(self, i: int, j: int) -> str:
        return self.text[self.toks[i].idx:self.toks[j - 1].end]

    def add(self, i: int, j: int, repl: str, kind: str, key: str) -> bool:
        if j <= i or any(k in self.taken for k in range(i, j)):
            return False
        self.edits.append(_Edit(i, j, repl, kind, key))
        self.taken.update(range(i, j))
        return True

    def follow_ok(self, i: int) -> bool:
        """Token i may follow a noun without making it part of a compound ("a water bottle")."""
        return self.end_or_punct(i) or self.w(i) in _FOLLOW_OK_NO_OF or self.nm(i) in _INVERT_AUX

    def end_or_punct(self, i: int) -> bool:
        return i >= self.n or not self.toks[i].is_word or i >= self.sent_end[i]

    # segmentation ---------------------------------------------------------------
    def _segment(self) -> None:
        n, lex = self.n, self.lex
        self.sent_start = [0] * n
        self.sent_end = [n] * n
        start = 0
        for i, t in enumerate(self.toks):
            if t.text in _SENT_END or (t.text.startswith(".") and set(t.text) <= {".", "!", "?"}):
                for k in range(start, i + 1):
                    self.sent_start[k], self.sent_end[k] = start, i
                start = i + 1
        for k in range(start, n):
            self.sent_start[k], self.sent_end[k] = start, n
        self.hard_start = [False] * n
        for i in range(n):
            if i == self.sent_start[i]:
                self.hard_start[i] = True
                continue
            prev = self.toks[i - 1]
            if prev.text in _BOUNDARY_PUNCT or prev.lower in _BOUNDARY_WORDS:
                self.hard_start[i] = True
            elif prev.lower == "that" and (self.w(i) in _PRONOUNS or self.w(i) in _DETS_SG | _DETS_PL):
                self.hard_start[i] = True
        self.clause_start = list(self.hard_start)
        self.phrases: List[Tuple[int, int, str]] = []
        i = 0
        while i < n:
            w = self.w(i)
            prev = self.w(i - 1) if i > self.sent_start[i] else ""
            ph: Optional[Tuple[int, int, str]] = None
            if w in lex.past_words:
                ph = (i, i + 1, "past")
            elif w in lex.future_words:
                ph = (i, i + 1, "future")
            elif w in lex.present_words:
                ph = (i, i + 1, "present")
            elif w in ("last", "next", "every", "this") and self.w(i + 1) in lex.periods and \
                    prev not in _DETS_SG | {"at", "the"} and i + 1 < self.sent_end[i]:
                kind = {"last": "past", "next": "future"}.get(w, "present")
                ph = (i, i + 2, kind)
            elif w == "ago":
                j = i - 1
                while j >= self.sent_start[i] and (
                        self.w(j) in lex.ago_units or _number_value(self.toks[j]) is not None
                        or self.w(j) in {"a", "an", "few", "many", "several", "long", "couple", "of", "one"}):
                    j -= 1
                if j < i - 1:
                    ph = (j + 1, i + 1, "past")
            elif w == "in" and self.w(i + 1) == "the" and self.w(i + 2) == "future":
                ph = (i, i + 3, "future")
            if ph:
                self.phrases.append(ph)
                if ph[1] < n:
                    self.clause_start[ph[1]] = True
                i = ph[1]
            else:
                i += 1

    # subjects -------------------------------------------------------------------
    def _phrase_start_of_subject_ending(self, k: int) -> bool:
        """True when token k ends a subject (pronoun, name or determiner + noun) at a clause start."""
        lex = self.lex
        w = self.w(k)
        if w in _PRONOUNS or (self.toks[k].text[:1].isupper() and self.toks[k].is_word and w not in lex.known_words):
            return self.clause_start[k] or (k > 0 and self.w(k - 1) in ("and", "or"))
        if w in lex.nouns:
            j = k - 1
            while j >= 0 and self.w(j) in lex.adjectives:
                j -= 1
            if j >= 0 and self.w(j) in _DETS_SG | _DETS_PL:
                return self.clause_start[j]
            return self.clause_start[j + 1]
        return False

    def subject_at(self, i: int) -> Optional[Tuple[int, str, str]]:
        """If a subject starts at token i: (index after it, "i"/"3sg"/"pl", "pron"/"np")."""
        lex = self.lex
        w = self.w(i)
        if i > self.sent_start[i] and self.nm(i - 1) in _INVERT_AUX and not self.hard_start[i]:
            return None  # question: "does she go", "can you swim"
        if i - 2 >= self.sent_start[i] and self.w(i - 1) in ("and", "or") and \
                self._phrase_start_of_subject_ending(i - 2):
            return None  # compound subject: "my mother and my father work"
        if w in _PRONOUNS:
            if w in ("it", "you") and not self.clause_start[i]:
                return None
            return i + 1, _PRONOUNS[w], "pron"
        if not self.clause_start[i]:
            return None
        if w in _DETS_SG or w in _DETS_PL:
            j = i + 1
            adj = 0
            while adj < 2 and (self.w(j) in lex.adjectives or self.w(j) == "very") and \
                    self.w(j + 1) not in _BE_ALL:
                j += 1
                adj += 1
            noun = self.w(j)
            if self.w(j + 1) in ("'s", "s", "-"):
                return None
            if noun in lex.plurals or (w in _DETS_PL and noun in lex.same_plural):
                return j + 1, "pl", "np"
            if w in _DETS_PL:
                return None
            if noun in lex.collective:
                return None
            if noun in lex.countable or noun in lex.uncountable:
                return j + 1, "3sg", "np"
            return None
        if w in lex.plurals and w != "people" or w in ("people", "children", "men", "women"):
            if self.w(i + 1) in ("'s", "-"):
                return None
            return i + 1, "pl", "np"
        return None

    def verb_after(self, j: int) -> Optional[int]:
        while j < self.n and self.w(j) in self.lex.adverbs:
            j += 1
        if j >= self.n or j >= self.sent_end[j] or not self.toks[j].is_word and not self.toks[j].text.startswith("'"):
            return None
        return j

    def looks_like_compound(self, v: int) -> bool:
        """After "my school work", the next word is the real verb: don't treat "work" as a verb."""
        nxt = self.nm(v + 1)
        return (nxt in _BE_ALL or nxt in _INVERT_AUX or self.lex.is_third(nxt) or self.lex.is_past(nxt)
                or nxt in ("'s",))

    # rules --------------------------------------------------------------------
    def rule_wrong_plurals(self) -> None:
        lex = self.lex
        for i, t in enumerate(self.toks):
            if t.lower in lex.wrong_plurals:
                right = _case_like(t.text, lex.wrong_plurals[t.lower])
                if t.lower in lex.uncountable_wrong_plurals:
                    if self.w(i - 1) == "many":  # "many homeworks" -> "much homework"
                        much = _case_like(self.toks[i - 1].text, "much")
                        self.add(i - 1, i + 1, f"{much} {right}", PLURAL, "much_not_many")
                    else:
                        self.add(i, i + 1, right, PLURAL, "uncountable")
                else:
                    self.add(i, i + 1, right, PLURAL, "plural_irregular")

    def rule_be_plus_verb(self) -> None:
        lex = self.lex
        for i in range(self.n):
            if self.w(i) not in _PRONOUNS or (self.w(i) in ("it", "you") and not self.clause_start[i]):
                continue
            cls = _PRONOUNS[self.w(i)]
            v = i + 1
            be = self.nm(v)
            if be not in _BE_ALL:
                continue
            m = v + 1
            neg = self.nm(m) == "not"
            if neg:
                m += 1
            verb = self.w(m)
            if verb not in lex.be_plus_verb:
                continue
            past = be in _BE_PAST or self._scope_of(v) == "past"
            if neg:
                aux = "didn't" if past else ("doesn't" if cls == "3sg" else "don't")
                phrase = f"{aux} {verb}"
            elif past:
                phrase = lex.past_of[verb]
            else:
                phrase = lex.third_of[verb] if cls == "3sg" else verb
            if self.toks[v].text.startswith("'") or self.toks[i].ws == "":
                self.add(i, m + 1, f"{self.toks[i].text} {phrase}", VERB_FORM, "be_with_verb")
            else:
                self.add(v, m + 1, phrase, VERB_FORM, "be_with_verb")

    def rule_age(self) -> None:
        for i in range(self.n):
            s = self.subject_at(i)
            if not s:
                continue
            k, cls, _ = s
            v = k
            if self.w(v) not in ("have", "has", "had") or v + 1 >= self.n:
                continue
            if _number_value(self.toks[v + 1]) is None:
                continue
            if self.w(v + 2) not in ("year", "years"):
                continue
            last = v + 3
            if self.w(last) == "old":
                last += 1
            if not (self.end_or_punct(last) or self.w(last) in ("and", "now", "but", "so", "today")):
                continue
            if self.w(v) == "had":
                be = "were" if cls == "pl" else "was"
            else:
                be = {"i": "am", "3sg": "is", "pl": "are"}[cls]
            self.add(v, last, f"{be} {self.toks[v + 1].text} years old", EXPRESSION, "age")

    def _scope_of(self, i: int) -> Optional[str]:
        return self.scope[i] if hasattr(self, "scope") else None

    def _compute_scope(self) -> None:
        n = self.n
        self.scope: List[Optional[str]] = [None] * n
        by_sentence: Dict[int, List[Tuple[int, int, str]]] = {}
        for ph in self.phrases:
            by_sentence.setdefault(self.sent_start[ph[0]], []).append(ph)
        for s0, phs in by_sentence.items():
            s1 = self.sent_end[s0]
            first_subject = s1
            for i in range(s0, s1):
                if any(a <= i < b for a, b, _ in phs):
                    continue
                if self.subject_at(i):
                    first_subject = i
                    break
            for idx, (a, b, kind) in enumerate(phs):
                if kind == "present":
                    continue
                nxt = phs[idx + 1][0] if idx + 1 < len(phs) else s1
                if a <= first_subject:
                    lo, hi = s0, nxt
                    # reported speech keeps its own tense: "yesterday she said that she likes rice"
                    for k in range(b, hi):
                        if self.hard_start[k] and self.w(k - 1) in _REPORTED:
                            hi = k - 1
                            break
                else:
                    lo = a
                    while lo > s0 and not self.hard_start[lo]:
                        lo -= 1
                    hi = b
                    while hi < s1 and not self.hard_start[hi]:
                        hi += 1
                    hi = min(hi, nxt)
                for k in range(lo, hi):
                    if self.scope[k] is None:
                        self.scope[k] = kind

    def rule_tense(self) -> None:
        lex = self.lex
        flagged_sentences: Set[int] = set()
        # "yesterday there is a meeting" -> "there was"
        for i in range(self.n - 1):
            if self.w(i) == "there" and self.scope[i + 1] == "past" and self.w(i + 1) in ("is", "are"):
                repl = "was" if self.w(i + 1) == "is" else "were"
                if self.add(i + 1, i + 2, repl, TENSE, "tense_past"):
                    flagged_sentences.add(self.sent_start[i])
        for i in range(self.n):
            kind = self.scope[i]
            if kind is None:
                continue
            s = self.subject_at(i)
            if not s:
                continue
            k, cls, typ = s
            v = self.verb_after(k)
            if v is None or self.scope[v] != kind or v in self.taken:
                continue
            w, nm = self.w(v), self.nm(v)
            if typ == "np" and lex.is_base(w) and self.looks_like_compound(v):
                continue
            neg_attached = self.nm(v + 1) == "not" and self.toks[v].ws == ""
            done = False
            if kind == "past":
                if nm in _BE_PRESENT:
                    repl = "were" if cls == "pl" else "was"
                    if self.toks[v].text.startswith("'"):
                        done = self.add(i, v + 1, f"{self.toks[i].text} {repl}", TENSE, "tense_past")
                    else:
                        done = self.add(v, v + 1, _case_like(self.toks[v].text, repl), TENSE, "tense_past")
                elif nm in ("have", "has") and not self.toks[v].text.startswith("'"):
                    nxt = self.verb_after(v + 1)
                    if nxt is not None and (self.w(nxt) in lex.pp_forms or self.w(nxt) == "been"):
                        continue
                    done = self.add(v, v + 1, "had", TENSE, "tense_past")
                elif w in ("do", "does"):
                    if neg_attached:
                        done = self.add(v, v + 2, "didn't", TENSE, "tense_past")
                    else:
                        done = self.add(v, v + 1, "did", TENSE, "tense_past")
                elif nm == "can" and w in ("can", "ca"):
                    if neg_attached:
                        done = self.add(v, v + 2, "couldn't", TENSE, "tense_past")
                    else:
                        done = self.add(v, v + 1, "could", TENSE, "tense_past")
                elif lex.is_base(w) or lex.is_third(w):
                    past = lex.to_past(w)
                    if past:
                        done = self.add(v, v + 1, _case_like(self.toks[v].text, past), TENSE, "tense_past")
            else:  # future
                if nm in _BE_PAST:
                    done = self.add(v, v + 1, "will be", TENSE, "tense_future")
                elif w == "did":
                    if neg_attached:
                        done = self.add(v, v + 2, "won't", TENSE, "tense_future")
                    else:
                        done = self.add(v, v + 1, "will", TENSE, "tense_future")
                elif w == "had":
                    nxt = self.verb_after(v + 1)
                    if nxt is not None and (self.w(nxt) in lex.pp_forms):
                        continue
                    done = self.add(v, v + 1, "will have", TENSE, "tense_future")
                elif lex.is_past(w):
                    done = self.add(v, v + 1, "will " + lex.base(w), TENSE, "tense_future")
            if done:
                flagged_sentences.add(self.sent_start[v])
        # "yesterday I go to the market and buy rice": verbs joined with "and"/"then"
        for j in range(1, self.n):
            kind = self.scope[j]
            if kind != "past" or self.sent_start[j] not in flagged_sentences or j in self.taken:
                continue
            if self.w(j - 1) not in ("and", "then"):
                continue
            w = self.w(j)
            if (lex.is_base(w) or lex.is_third(w)) and lex.to_past(w) and not self.looks_like_compound(j):
                self.add(j, j + 1, lex.to_past(w), TENSE, "tense_past")

    def rule_aux(self) -> None:
        lex = self.lex
        for i in range(self.n):
            aux = self.w(i)
            is_to = aux == "to"
            if not (aux in _DO or aux in lex.modals or is_to):
                continue
            if aux in ("may", "will", "can") and (self.toks[i].text == "May" and i != self.sent_start[i]
                                                 or self.w(i - 1) in _DETS_SG):
                continue
            j = i + 1
            if aux in lex.modals and self.w(j) == "to" and lex.is_base(self.w(j + 1)) and \
                    self.w(i - 1) not in _DETS_SG:
                # "I can to go" -> "I can go"
                self.add(j, j + 2, self.toks[j + 1].text, VERB_FORM, "verb_base_after_aux")
                continue
            if is_to:
                w = self.w(j)
                if j >= self.n:
                    continue
                bad = (lex.is_past(w) and w not in lex.past_not_after_to and w not in lex.verbs) or \
                      (lex.is_third(w) and w not in lex.nouns and w not in lex.plurals)
                if bad and self.w(i - 1) not in ("next", "according", "due", "thanks"):
                    self.add(j, j + 1, _case_like(self.toks[j].text, lex.base(w)), VERB_FORM,
                             "verb_base_after_aux")
                continue
            if self.nm(j) == "not":
                j += 1
            if self.w(j) in _PRONOUNS and (aux in _DO or aux in lex.modals):
                j += 1
            while self.w(j) in lex.adverbs:
                j += 1
            if j >= self.n:
                continue
            w = self.w(j)
            if w in _BE_PAST and aux in lex.modals:
                self.add(j, j + 1, "be", VERB_FORM, "verb_base_after_aux")
            elif (lex.is_third(w) or lex.is_past(w) or w in ("has", "had")) and w not in lex.verbs:
                if aux in _DO and w in ("has", "had") and self.w(j + 1) in lex.pp_forms:
                    continue
                self.add(j, j + 1, _case_like(self.toks[j].text, lex.base(w)), VERB_FORM,
                         "verb_base_after_aux")

    def rule_agreement(self) -> None:
        lex = self.lex
        for i in range(self.n):
            s = self.subject_at(i)
            if not s:
                continue
            k, cls, typ = s
            v = self.verb_after(k)
            if v is None or v in self.taken:
                continue
            t = self.toks[v]
            w, nm = t.lower, t.norm
            if t.text.startswith("'"):
                continue
            if nm in _BE_PRESENT:
                exp = {"i": "am", "3sg": "is", "pl": "are"}[cls]
                if nm != exp:
                    self.add(v, v + 1, _case_like(t.text, exp), SUBJECT_VERB, "sva_be")
            elif nm in _BE_PAST:
                exp = "were" if cls == "pl" else "was"
                if nm != exp:
                    if nm == "were" and any(self.w(x) in ("if", "wish") for x in range(max(0, i - 3), i)):
                        continue
                    self.add(v, v + 1, _case_like(t.text, exp), SUBJECT_VERB, "sva_be")
            elif w in ("have", "has"):
                exp = "has" if cls == "3sg" else "have"
                if w != exp:
                    self.add(v, v + 1, _case_like(t.text, exp), SUBJECT_VERB, "sva_have")
            elif w in ("do", "does"):
                exp = "does" if cls == "3sg" else "do"
                if w != exp:
                    if self.nm(v + 1) == "not" and t.ws == "":
                        self.add(v, v + 2, _case_like(t.text, exp + "n't"), SUBJECT_VERB, "sva_do")
                    else:
                        self.add(v, v + 1, _case_like(t.text, exp), SUBJECT_VERB, "sva_do")
            elif cls == "3sg" and lex.is_base(w) and w not in lex.same_form:
                if typ == "np" and self.looks_like_compound(v):
                    continue
                self.add(v, v + 1, _case_like(t.text, lex.third_of[w]), SUBJECT_VERB, "sva_3sg")
            elif cls in ("i", "pl") and lex.is_third(w):
                if typ == "np" and self.looks_like_compound(v):
                    continue
                self.add(v, v + 1, _case_like(t.text, lex.base(w)), SUBJECT_VERB, "sva_base")

    def rule_there_are(self) -> None:
        for i in range(self.n - 2):
            if self.w(i) != "there" or self.w(i + 1) not in ("is", "was"):
                continue
            q = self.toks[i + 2]
            val = _number_value(q)
            if (val is not None and val > 1) or q.lower in ("many", "several", "lots"):
                repl = "are" if self.w(i + 1) == "is" else "were"
                self.add(i + 1, i + 2, _case_like(self.toks[i + 1].text, repl), SUBJECT_VERB, "there_are")

    def vowel_sound(self, word: str) -> bool:
        lw = word.lower()
        if word.isupper() and 2 <= len(word) <= 5 and not self.all_caps:
            return lw[0] in self.lex.vowel_letters
        if lw.startswith(self.lex.vowel_prefixes):
            return True
        if lw.startswith(self.lex.consonant_prefixes):
            return False
        return lw[:1] in ("a", "e", "i", "o", "u")

    def _article_for(self, word: str) -> str:
        return "an" if self.vowel_sound(word) else "a"

    def rule_articles(self) -> None:
        lex = self.lex
        n = self.n
        # "a homework" -> "homework"
        for i in range(n - 1):
            if self.w(i) in ("a", "an") and self.w(i + 1) in lex.uncountable:
                if self.follow_ok(i + 2):
                    self.add(i, i + 2, _case_like(self.toks[i].text, self.toks[i + 1].text) if i == self.sent_start[i]
                             else self.toks[i + 1].text, ARTICLE, "article_uncountable")
        # "the Kigali" -> "Kigali", "speak the English" -> "speak English"
        for i in range(n - 1):
            if self.w(i) != "the":
                continue
            nxt = self.w(i + 1)
            after = self.toks[i + 2] if i + 2 < n else None
            part_of_name = after is not None and after.is_word and (
                after.text[:1].isupper() or after.lower in lex.nouns or after.lower in lex.person_nouns
                or after.lower in ("city", "district", "province", "campus", "stadium", "airport",
                                   "flag", "border", "embassy", "language", "word", "words", "lesson",
                                   "teacher", "book", "class", "exam", "version", "way", "one", "ones"))
            if after is not None and after.lower in ("'s", "-"):
                part_of_name = True
            if part_of_name:
                continue
            if nxt in lex.places:
                repl = self.toks[i + 1].text
                self.add(i, i + 2, _case_like(self.toks[i].text, repl) if i == self.sent_start[i] else repl,
                         ARTICLE, "article_place")
            elif nxt in lex.languages and self.w(i - 1) in lex.language_verbs:
                self.add(i, i + 2, self.toks[i + 1].text, ARTICLE, "article_place")
        # "I am student" -> "I am a student"
        for i in range(n - 1):
            nm = self.nm(i)
            trig = nm in ("am", "is", "was") or self.w(i) in ("be", "become", "becomes", "became")
            if self.w(i) == "'s" and self.w(i - 1) in ("he", "she", "it", "this", "that"):
                trig = True
            if not trig or self.w(i - 1) in ("who", "what", "which", "there"):
                continue
            j = i + 1
            if self.nm(j) == "not":
                j += 1
            start = j
            if self.w(j) in ("very", "really", "so"):
                j += 1
            adj = 0
            while adj < 2 and self.w(j) in lex.adjectives and self.w(j) not in ("more", "other", "best"):
                j += 1
                adj += 1
            noun = self.w(j)
            ok = noun in lex.person_nouns or (noun in lex.countable_things
                                              and self.w(i - 1) in ("it", "this", "that"))
            if not ok or self.w(j + 1) in ("'s", "-", "s"):
                continue
            if j + 1 < n and self.toks[j + 1].is_word and (self.w(j + 1) in lex.nouns) and noun not in lex.person_nouns:
                continue
            phrase = self.span_text(start, j + 1)
            self.add(start, j + 1, f"{self._article_for(self.toks[start].text)} {phrase}", ARTICLE,
                     "article_missing")
        # "I have cow" -> "I have a cow"
        have_verbs = {"have", "has", "had", "want", "wants", "wanted", "need", "needs", "needed",
                      "buy", "buys", "bought"}
        for i in range(n - 1):
            if self.w(i) not in have_verbs:
                continue
            p = i - 1
            while p >= 0 and self.w(p) in lex.adverbs:
                p -= 1
            if not (self.w(p) in _PRONOUNS or self.w(p) == "to" or self.w(p) in lex.modals):
                continue
            j = i + 1
            start = j
            if self.w(j) in lex.adjectives and self.w(j) not in ("more", "other", "best", "english",
                                                                  "kinyarwanda", "french"):
                j += 1
            noun = self.w(j)
            if noun not in lex.countable_things or (self.toks[j].text[:1].isupper() and j != self.sent_start[j]):
                continue
            if not self.follow_ok(j + 1):
                continue
            phrase = self.span_text(start, j + 1)
            self.add(start, j + 1, f"{self._article_for(self.toks[start].text)} {phrase}", ARTICLE,
                     "article_missing")
        # "a apple" -> "an apple", "an university" -> "a university"
        for i in range(n - 1):
            if self.w(i) not in ("a", "an"):
                continue
            nxt = self.toks[i + 1]
            if not nxt.is_word or len(nxt.text) < 2 or nxt.text.startswith("'"):
                continue
            if nxt.lower in _FUNCTION_WORDS or nxt.lower in ("other", "lot"):
                continue
            if i > 0 and self.toks[i - 1].text in ("-", "'"):
                continue
            exp = self._article_for(nxt.text)
            if self.w(i) != exp:
                self.add(i, i + 1, _case_like(self.toks[i].text, exp), ARTICLE,
                         "article_an" if exp == "an" else "article_a")

    def _skip_adjs(self, j: int, limit: int = 2) -> int:
        k = 0
        while k < limit and self.w(j) in self.lex.adjectives and self.w(j) not in ("more",):
            j += 1
            k += 1
        return j

    def _noun_is_free(self, m: int) -> bool:
        """The noun at m is not the first part of a compound ("two bus stops") or a possessive."""
        nxt = self.w(m + 1)
        if nxt in ("'s", "-", "s", "'"):
            return False
        if m + 1 < self.n and self.toks[m + 1].is_word and nxt in self.lex.nouns:
            return False
        return True

    def rule_plurals(self) -> None:
        lex = self.lex
        n = self.n
        for i in range(n - 1):
            t = self.toks[i]
            val = _number_value(t)
            is_quant = (val is not None and val > 1) or t.lower in _QUANTIFIERS
            if not is_quant:
                continue
            if re.fullmatch(r"(19|20)\d\d", t.text):
                continue
            if t.lower not in _BIG_NUMBERS and t.lower != "few" and self.w(i - 1) in ("a", "an"):
                continue
            if t.lower in ("these", "those") and self.w(i + 1) in ("are", "is", "were", "was"):
                continue
            j = i + 1
            while j < n and _number_value(self.toks[j]) is not None:
                j += 1
            m = self._skip_adjs(j)
            noun = self.w(m)
            if m >= n or noun not in lex.countable or noun in lex.same_plural or noun in lex.plurals:
                continue
            if not self._noun_is_free(m) or self.toks[m].text[:1].isupper() and m != self.sent_start[m]:
                continue
            if self.w(m + 1) == "old" and (self.w(i - 1) in _DETS_SG | _DETS_PL):
                continue  # "my two year old sister" (an adjective, written two-year-old)
            plural = _case_like(self.toks[m].text, lex.plural_of[noun])
            repl = self.text[t.idx:self.toks[m].idx] + plural
            self.add(i, m + 1, repl, PLURAL, "plural_number")
        # "one of my friend" -> "one of my friends"
        for i in range(1, n - 2):
            if self.w(i) != "of" or self.w(i - 1) not in _OF_QUANT or self.w(i + 1) not in _POSSESSIVE_DETS:
                continue
            m = self._skip_adjs(i + 2)
            noun = self.w(m)
            if noun not in lex.countable or noun in lex.collective or noun in lex.same_plural:
                continue
            if not self._noun_is_free(m):
                continue
            self.add(m, m + 1, _case_like(self.toks[m].text, lex.plural_of[noun]), PLURAL, "plural_number")
        # "every days" -> "every day", "a books" -> "a book"
        for i in range(n - 1):
            w = self.w(i)
            if w not in ("a", "an", "one", "each", "every", "another"):
                continue
            if w == "one" and self.w(i - 1) in ("the", "this", "that", "which", "every", "no", "any"):
                continue
            m = self._skip_adjs(i + 1)
            noun = self.w(m)
            if noun not in lex.plurals or noun == "people" or noun in lex.same_plural:
                continue
            if not self._noun_is_free(m):
                continue
            single = _case_like(self.toks[m].text, lex.singular_of[noun])
            repl = self.text[self.toks[i].idx:self.toks[m].idx] + single
            self.add(i, m + 1, repl, PLURAL, "singular_after_one")
        # "many money" -> "much money"
        for i in range(n - 1):
            if self.w(i) != "many" or self.w(i + 1) not in lex.uncountable:
                continue
            if self.follow_ok(i + 2):
                self.add(i, i + 2, _case_like(self.toks[i].text, "much") + " " + self.toks[i + 1].text,
                         PLURAL, "much_not_many")

    def rule_comparatives(self) -> None:
        lex = self.lex
        for i in range(self.n - 1):
            w, nxt = self.w(i), self.w(i + 1)
            if w == "more" and nxt in lex.comparatives or w == "most" and nxt in lex.superlatives:
                self.add(i, i + 2, _case_like(self.toks[i].text, self.toks[i + 1].text), COMPARATIVE,
                         "double_comparative")
            elif w == "more" and nxt in lex.comparative_of and \
                    (self.w(i + 2) == "than" or self.end_or_punct(i + 2)):
                self.add(i, i + 2, _case_like(self.toks[i].text, lex.comparative_of[nxt]), COMPARATIVE,
                         "comparative_er")
            elif w == "most" and nxt in lex.superlative_of and self.w(i - 1) == "the":
                self.add(i, i + 2, lex.superlative_of[nxt], COMPARATIVE, "comparative_er")

    # output ---------------------------------------------------------------------
    def render(self) -> str:
        pieces: List[str] = []
        by_start = {e.start: e for e in self.edits}
        i = 0
        while i < self.n:
            e = by_start.get(i)
            if e is None:
                pieces.append(self.toks[i].text + self.toks[i].ws)
                i += 1
                continue
            repl = e.repl
            if e.start == self.sent_start[e.start] and self.toks[e.start].text[:1].isupper() and repl:
                repl = repl[:1].upper() + repl[1:]
            ws = self.toks[e.end - 1].ws
            if not repl and pieces and not pieces[-1].endswith(" "):
                pieces.append(ws)
            else:
                pieces.append(repl + ws)
            i = e.end
        return re.sub(r" {2,}", " ", "".join(pieces)).strip()

    def run(self) -> List[Correction]:
        if not self.toks:
            return []
        self.rule_wrong_plurals()
        self._compute_scope()
        self.rule_be_plus_verb()
        self.rule_age()
        self.rule_tense()
        self.rule_aux()
        self.rule_agreement()
        self.rule_there_are()
        self.rule_articles()
        self.rule_plurals()
        self.rule_comparatives()
        if not self.edits:
            return []
        self.edits.sort(key=lambda e: e.start)
        if self.all_caps:
            for e in self.edits:
                e.repl = e.repl.upper()
        corrected = self.render()
        out: List[Correction] = []
        for e in self.edits:
            start, end = self.toks[e.start].idx, self.toks[e.end - 1].end
            repl = e.repl
            if e.start == self.sent_start[e.start] and self.toks[e.start].text[:1].isupper() and repl:
                repl = repl[:1].upper() + repl[1:]
            out.append(Correction(e.kind, self.text[start:end], repl, corrected, e.key, start, end))
        return out


def check_grammar(sentence: str) -> List[Correction]:
    """Find common learner errors in ``sentence``; an empty list means no error was found.

    Offsets and ``wrong`` refer to the sentence after :func:`normalise` (curly quotes made
    straight, runs of whitespace made one space). Pure and thread-safe.
    """
    text = normalise(sentence)
    if not text:
        return []
    return _Run(text, tokenize(text), lexicon()).run()


def correct(sentence: str) -> str:
    """The sentence with every correction applied (the normalised sentence when none)."""
    found = check_grammar(sentence)
    return found[0].corrected if found else normalise(sentence)


def explain(correction: Correction, lang: Optional[str] = None) -> str:
    """The short explanation of a correction in ``lang`` (the default language when unknown)."""
    key = "grammar." + correction.explanation
    if not texts.has(key):
        return ""
    try:
        return texts.text(key, lang, wrong=correction.wrong, suggestion=correction.suggestion)
    except (KeyError, IndexError, ValueError):
        return str(texts.value(key, lang))


def known_word_ratio(sentence: str) -> float:
    """Share of the words the checker knows as English (0.0 for Kinyarwanda-only text)."""
    words = re.findall(r"[a-z]+", normalise(sentence).lower())
    if not words:
        return 0.0
    known = lexicon().known_words
    return sum(1 for w in words if w in known) / len(words)


def word_forms(word: str) -> Set[str]:
    """The word and the inflections a learner may use: plural, -s, -ed, -ing, irregular forms."""
    lex = lexicon()
    w = word.lower().strip()
    forms = {w, w + "s", w + "es", w + "ed", w + "d", w + "ing", regular_plural(w)}
    if w.endswith("e"):
        forms.add(w[:-1] + "ing")
    if re.search(r"[^aeiou]y$", w):
        forms.update({w[:-1] + "ies", w[:-1] + "ied"})
    if re.search(r"[^aeiou][aeiou][bdgmnprt]$", w):
        forms.update({w + w[-1] + "ed", w + w[-1] + "ing"})
    if w in lex.verbs:
        forms.update(lex.verbs[w])
    for form, base in lex.base_of_past.items():
        if base == w:
            forms.add(form)
    if w in lex.plural_of:
        forms.add(lex.plural_of[w])
    if w in lex.singular_of:
        forms.add(lex.singular_of[w])
    if w in lex.comparative_of:
        forms.update({lex.comparative_of[w], lex.superlative_of[w]})
    return forms


__all__ = [
    "Correction", "check_grammar", "correct", "explain", "known_word_ratio", "word_forms",
    "tokenize", "tokenizer_backend", "warm_up", "lexicon", "load_grammar_data", "KINDS",
]
