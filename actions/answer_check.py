"""Math answer checker: read the number in a learner's answer and compare it.

Pure Python (standard library + PyYAML), no Rasa. The number-word lexicon lives in
``actions/content/number_words.yml`` and is loaded once, at import.

Public API
----------
``check_math_answer(expected, message, language) -> AnswerCheck``
    ``AnswerCheck(correct, understood)``: ``understood`` is the number read from the
    message (``None`` when there is none, or the answer is ambiguous); ``correct`` is
    ``True`` when it equals ``expected`` (``abs_tol=1e-6``, ``rel_tol=1e-9``, so
    ``"17"`` matches ``17.0`` and ``"2.50"`` matches ``2.5``).
``parse_number(message, language) -> int | float | None``
    The number ``check_math_answer`` would understand, without comparing.

``understood`` is an ``int`` whenever the value is whole ("2.0" -> 2), else a float.
``language`` ("en"/"rw") is only a hint and currently changes nothing: both
languages' words and every rule below apply to every message, because learners
code-switch ("ni twenty five", "it's makumyabiri").

Accepted forms
--------------
Digits
    ``17``, ``-5``, ``2.5``, ``0.5``/``.5``, ``1/2`` (a fraction: 0.5), ``25%``,
    ``25RWF``, ``2,000 frw``, ``3 000`` (space-grouped thousands).
English words
    ``twenty five``, ``twenty-five``, ``two hundred and nine``, ``one thousand two
    hundred``, ``a hundred``, ``fifteen hundred``, ``two point five``, ``two and a
    half``, ``a half``, ``minus five``/``negative five``; mixed ``2 thousand``,
    ``1 million``, ``1.5 million``, ``twenty 5`` and ``20 five`` (= 25: a tens
    number followed by a unit WORD; two digit groups ``20 5`` are never joined).
    Digit-by-digit speech: two or more English single-digit words in a row are read
    as digits (``one nine eight five`` -> 1985). Year-style pairs of two 10-99 word
    numbers are joined (``nineteen eighty five`` -> 1985). Punctuation separates
    numbers (``twenty, five`` is 20 then 5).
    Ordinal words (``third``, ``fifth``) are not numbers; digits with an ordinal
    suffix are (``25th`` -> 25). ``one`` after "which/the/this/no..." is a pronoun.
    Fraction words after a count: ``three quarters`` = 0.75, ``one fifth``, ``a quarter``,
    ``one and a quarter`` = 1.25, ``two and three eighths`` = 2.375 (singular only after
    one/a/an, plural only after more, so ``twenty third`` stays 20). ``over`` is a spoken
    fraction bar (``one over three``, ``negative one over 20`` = -0.05), as ``1/3`` is; a whole
    number then a proper fraction is a mixed number (``2 1/4`` = 2.25). A spaced hyphen joins
    word tens and a word unit (``fifty - two`` = 52; ``50 - 2`` stays an expression). Any 1-3
    digit group may take ``hundred`` (``322 hundred`` = 32200, ``2.5 hundred`` = 250); a round
    digit group, "and", a word number join (``100 and two`` = 102). A comma after
    thousand/million/billion groups digits (``a thousand, one hundred and eleven`` = 1111) unless
    a multiplier as big follows (``one thousand, two thousand`` is a list). British ``two
    thousand million`` = 2 000 000 000. Right after a tens word only a unit fits, so any word
    there is read as the closest unit (``twinty sex`` = 26; a tie reads nothing).
    ``three dollars and fifty cents`` = 3.5 (a currency word and "and" between the whole and 1-99
    cents). A 3-9 unit word then ``ten`` (``four ten``) is 410 or a split ``fourteen``: the
    expected answer decides, as for ``1,500``.
Spoken digit conventions (as speech recognisers write them)
    ``o``/``oh`` is a zero digit only inside a digit run or after "point" (``point o
    five`` = 0.05, ``nine o five`` = 905; ``oh`` alone is nothing); ``double``/``triple``
    repeat the next digit word (``two double o eight`` = 2008); ``point fifteen`` = 0.15;
    a digit word then a 10-99 word pair is hundreds (``five twenty four`` = 524);
    ``three and a half million``; ``one second``/``one moment`` is an idiom, not 1.
Misspellings / ASR slips
    A space typed one letter late or early, or inside a word, next to an unknown word is moved
    when that makes number words (``cumin a gatanu`` = 15, ``twent yfive`` = 25, ``on e`` = 1).
    Listed slips (``forteen``, ``fourty``, ``fife``, ``thirdy``...) are always numbers.
    Any other unknown word goes through ``actions/number_slips.py``: hyphenated stems
    (``li-mwe``), keypad (T9) slips (``fivd``), typing slips (two letters swapped: ``oen``;
    a QWERTY neighbour: ``oje``), glued compounds (``twentyfive``,
    ``makumyabirinagatanu``), Kinyarwanda class prefixes (``kacyenda``), closeness to
    one number word (core/fuzzy, length-dependent cutoff; never for words under 4
    letters), a letter dropped from a Kinyarwanda form (``ehatu``) and the sound of an English
    word (``wun``, ``fuore``, ``sixtine``: same sound key as one number word). Real words (``then``, ``weight``, ``fifth``, ``uwo``) are never slips. Real English
    words that stand for numbers (``to``/``too`` = 2, ``for``/``fore`` = 4, ``ate``
    = 8, ``won`` = 1, ``tree`` = 3) are numbers only in number-like context:
    the whole message is number words (``for``), they complete a compound
    (``twenty too`` = 22, ``for hundred`` = 400, ``two hundred and for`` = 204,
    ``20 for`` = 24 at the end of the message), they sit between two digit words
    (``one nine ate five``; never ``to``/``too``), or they end the message right
    after an answer marker (``it's ate``). So ``I want to say 5`` -> 5, ``it is too
    hard`` -> None, and ``five to six`` is a range (-> 6, never 526).
Kinyarwanda
    Every agreement form of the units (``rimwe/kimwe/imwe/umwe``, ``kabiri/ebyiri/
    abiri/bibiri``... ``umunani``, ``icyenda``), ``icumi`` (10), ``makumyabiri``
    (20), ``mirongo`` + unit (``mirongo itatu`` = 30 ... ``mirongo icyenda`` = 90),
    ``ijana`` (100), ``magana``/``amajana`` + unit (200-900), ``igihumbi`` (1000),
    ``ibihumbi`` + count (``ibihumbi bibiri`` = 2000, ``ibihumbi icumi`` = 10000,
    ``ibihumbi 2`` = 2000), ``miliyoni [count]``, ``miliyari``, ``zeru``. Terms are
    joined with ``na``/``n'`` (also ``n icyenda``, glued ``nicyenda``, English
    ``and``) or simply juxtaposed, biggest first: ``makumyabiri na gatanu`` = 25,
    ``mirongo irindwi n'icyenda`` = 79, ``igihumbi na magana atanu`` = 1500. Each
    term must be smaller than the place of the previous one, so ``rimwe na rimwe``
    is two numbers, not 2. After ``ibihumbi N``, ``na`` + a bi- form extends the
    count (``ibihumbi makumyabiri na bitanu`` = 25000) while any other form is added
    (``ibihumbi makumyabiri na gatanu`` = 20005). Tens, hundreds and the invariable
    ``umunani``/``icyenda`` joined by ``na`` may belong to either: the count when only
    that reads the whole message (``ibihumbi mirongo itatu n'icyenda na magana
    atandatu`` = 39600), else the expected answer decides between the two readings, as
    for ``1,500`` below (``ibihumbi makumyabiri n'icyenda``: 20009 or 29000). ``ijana rimwe``/``igihumbi kimwe``
    = 100/1000 (agreeing "one"). ``kabiri n'igice`` and ``kabiri koma gatanu``
    (also ``akadomo``/``virgule``) = 2.5. r/l spellings (``makumyabili``, ``mirongo
    ilindwi``) and split ASR words (``makumya biri``) are accepted. ``n'ibice`` + a number is
    the decimal part, its digits after the point (``gatanu n'ibice bitanu`` = 5.5,
    ``cumi na karindwi n'ibice mirongo ine na bibiri`` = 17.42); ``n'amasenti`` + N adds N
    cents; ``ku ijana``/``kwijana`` is "per cent", not 100. After ``mirongo``/``magana`` only a
    unit can follow, so an unknown word there is read as the closest unit form (``magana
    anane`` = 400, ``mirongo inane`` = 80). Fractions "N cya/bya D" (``kimwe cya kabiri`` = 0.5,
    ``bitatu bya kane`` = 0.75, proper fractions only); an elided connective before a number word
    (``w'igihumbi`` = 1000); class 16/14/2 forms (``hane``, ``butatu``, ``abatatu``) and
    ``urwenda`` (``mirongo urwenda`` = 90). ``ni`` between a number and an i-less unit
    (``cumi ni cyenda``) is the copula ("is nine") or ``n'icyenda`` with its apostrophe moved
    (19): the expected answer decides between the two readings.

Separators and decimals (the same in both languages)
----------------------------------------------------
* One comma followed by 1-2 digits is a decimal comma: ``1,5`` = 1.5, ``2,50`` = 2.5
  (no thousands group has 1-2 digits; Rwandan/French-style writing uses it).
* One comma followed by exactly 3 digits is a thousands separator: ``3,000`` = 3000.
  Any other comma use is a (possibly misplaced) separator: ``12,3496`` = 123496,
  ``1,000,000`` = 1000000.
* One dot is always a decimal point: ``1.3`` = 1.3 (never 13), ``1.500`` = 1.5.
  Several dots are thousands separators: ``1.000.000``.
* With both marks, the last one is the decimal mark if it occurs once:
  ``1,234.5`` = ``1.234,5`` = 1234.5.
* Spaces group thousands only as ``1-3 digits`` + ``(space 3 digits)+``: ``3 000``,
  ``1 500 000``. Other digit groups separated by spaces stay separate numbers.
* A single separator followed by exactly 3 digits is genuinely ambiguous (``1.500``
  French-style, ``1,500`` continental 1.5): ``parse_number`` returns the reading
  above, and ``check_math_answer`` also accepts the other reading when that one
  equals ``expected`` (the readings differ 1000-fold, so no wrong answer gets in);
  ``understood`` is then the matching reading.

Several numbers in one message
------------------------------
1. A number right after a negation (``not``, ``isn't``, ``si``, ``ntabwo``; a copula
   may sit between: ``it is not 9``, ``ntabwo ari 9``) is rejected.
2. If an alternative word (``or``, ``cyangwa``, ``ou``, ``au``) stands between two
   remaining numbers with different values, the answer is ambiguous:
   ``is it 7 or 8`` -> ``AnswerCheck(False, None)`` (the tutor asks for one number).
3. Numbers touching an operator (``+ - x * / plus minus times divided by
   wongeyeho ukuyemo gukuba``...) are operands of a restated expression and are
   skipped if any other number remains (``8 = 5 + 3`` -> 8); an expression alone
   (``3 x 4``) gives its last number.
4. The LAST remaining number is the answer: ``5 plus 3 is 8`` -> 8, ``the answer
   is 8 because 5 plus 3`` -> 8, ``it's 20, no 25`` -> 25, ``I think it is 25`` -> 25.

Robustness
----------
Empty/None/garbage never raises. Messages longer than ``MAX_CHARS`` keep only their
last ``MAX_CHARS`` characters (the answer is stated last), so the work per message is
bounded whatever its size; digit strings longer than ``MAX_DIGITS`` and fractions
over zero are ignored, so Python's int-string limit is never reached. Lookups are
dictionary hits; an unknown word's slip reading is computed once and cached: a typical
answer takes tens of microseconds, a word seen for the first time well under a
millisecond (``python scripts/bench_answer_check.py``).
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import yaml

from actions.number_slips import SlipReader, load_real_words

__all__ = ["AnswerCheck", "check_math_answer", "parse_number", "LEXICON_PATH"]

Number = Union[int, float]

LEXICON_PATH = Path(__file__).resolve().parent / "content" / "number_words.yml"
MAX_CHARS = 320  # two SMS; an answer is short and stated last
MAX_DIGITS = 18
ABS_TOL = 1e-6
REL_TOL = 1e-9


@dataclass(frozen=True)
class AnswerCheck:
    correct: bool
    understood: Optional[Number]


# --------------------------------------------------------------------------- tokens
# Token kinds.
OTHER, BREAK, NUM, UNIT, TEEN, TENS, HUNDRED, MULT, AND, ART, POINT, HALF, MINUS, WEAK = range(14)
RUNIT, RTEN, RTWENTY, RTENS, RHUNDRED, RHUNDREDS, RTHOUSAND, RTHOUSANDS, RMILLION, NA, RHALF = range(14, 25)
OP, ALT, NEG, REPEAT = range(25, 29)
DENOM, RPARTS, RCENTS = range(29, 32)  # "fifths" (aux: plural), "n'ibice" (decimal part), "amasenti"

# Flags on tokens.
F_MARKER, F_COPULA, F_FILLER, F_ONEBLOCK, F_ONE, F_IDIOM, F_FRAC = 1, 2, 4, 8, 16, 32, 64
# WEAK tokens' aux: may join a digit run (True), never (False), or only be a digit (DIGIT_ONLY).
DIGIT_ONLY = 2
# Agreement bits on Kinyarwanda units (aux).
AG_THOUSANDS, AG_MILLIONS = 1, 2

INF = float("inf")


class _Tok:
    __slots__ = ("kind", "value", "aux", "flags", "text")

    def __init__(self, kind: int, value=None, aux=None, flags: int = 0, text: str = ""):
        self.kind = kind
        self.value = value
        self.aux = aux
        self.flags = flags
        self.text = text

    def __repr__(self) -> str:  # debugging aid
        return f"_Tok({self.kind}, {self.value!r}, {self.aux!r}, {self.flags}, {self.text!r})"


_OTHER = _Tok(OTHER)
_BREAK = _Tok(BREAK)
_COMMA = _Tok(BREAK, text=",")  # a break, but "a thousand, one hundred" may group digits across it
_MINUS_SYM = _Tok(MINUS, text="-")

_EN_NUMBER_KINDS = frozenset({UNIT, TEEN, TENS, HUNDRED, MULT})
_RW_NUMBER_KINDS = frozenset({RUNIT, RTEN, RTWENTY, RTENS, RHUNDRED, RHUNDREDS, RTHOUSAND,
                              RTHOUSANDS, RMILLION})
_EN_STARTERS = frozenset({NUM, UNIT, TEEN, TENS, HUNDRED, MULT, ART, POINT})
_RW_STARTERS = frozenset({NUM}) | _RW_NUMBER_KINDS
_STARTERS = _EN_STARTERS | _RW_STARTERS
# Kinds allowed in a message that is "only number words" (homophone rule).
_NUMERICISH = _EN_NUMBER_KINDS | _RW_NUMBER_KINDS | {NUM, AND, ART, POINT, HALF, MINUS, WEAK, NA,
                                                      RHALF, BREAK, REPEAT}
# Tokens after a digit group that can never extend it (the digits stand alone).
_NUM_ALONE = frozenset({NUM, BREAK, OTHER, OP, ALT, NEG, MINUS})
_VALUE_KINDS = frozenset({NUM, UNIT, TEEN, TENS, RUNIT, RTEN, RTWENTY})
_VOWELS = frozenset("aeiou")


# -------------------------------------------------------------------------- lexicon
def _fold(text: str) -> str:
    """Lower-case, typographic marks to ASCII, accents stripped."""
    text = text.lower()
    if not text.isascii():
        text = text.translate(_TRANSLATE)
        if not text.isascii():
            text = unicodedata.normalize("NFKD", text)
            text = "".join(c for c in text if not unicodedata.combining(c))
    return text


_TRANSLATE = str.maketrans({
    "\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'", "\u02bc": "'", "\u2032": "'",
    "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u2010": "-", "\u2011": "-",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ",
})


class _Lexicon:
    def __init__(self, data: dict):
        self.words: Dict[str, Tuple[_Tok, ...]] = {}
        self.split_forms: Dict[str, str] = {}
        en = data["english"]
        rw = data["kinyarwanda"]
        sent = data["sentence"]

        # English number words.
        for w in en["zero"]:
            self._put(w, _Tok(UNIT, 0, text=str(w)))
        for w, v in en["units"].items():
            self._put(w, _Tok(UNIT, int(v), flags=F_ONE if int(v) == 1 else 0, text=str(w)))
        for w, v in en["teens"].items():
            self._put(w, _Tok(TEEN, int(v), text=str(w)))
        for w, v in en["tens"].items():
            self._put(w, _Tok(TENS, int(v), text=str(w)))
        for w in en["hundred"]:
            self._put(w, _Tok(HUNDRED, 100, text=str(w)))
        for w, v in en["multipliers"].items():
            self._put(w, _Tok(MULT, int(v), text=str(w)))
        for canonical, slips in en["misspellings"].items():
            base = self.words.get(_fold(str(canonical)))
            if base is None:
                raise ValueError(f"number_words.yml: misspelling of unknown word {canonical!r}")
            for slip in slips:
                self._put(slip, *base)
        no_runs = {_fold(str(w)) for w in en.get("homophones_not_in_digit_runs", [])}
        for w, canonical in en["homophones"].items():
            base = self.words.get(_fold(str(canonical)))
            if base is None or base[0].kind != UNIT:
                raise ValueError(f"number_words.yml: homophone {w!r} of non-unit {canonical!r}")
            key = _fold(str(w))
            self._put(key, _Tok(WEAK, base[0].value, aux=key not in no_runs, text=key))
        for w in en.get("zero_in_digit_runs", []):
            self._put(w, _Tok(WEAK, 0, aux=DIGIT_ONLY, text=str(w)))
        for w, d in (en.get("denominators") or {}).items():
            self._put(w, _Tok(DENOM, int(d), aux=str(w).endswith("s"), text=str(w)))
        for w, times in (en.get("repeats") or {}).items():
            self._put(w, _Tok(REPEAT, int(times), text=str(w)))
        for kind, section in ((ART, "article"), (AND, "and"), (POINT, "point"), (HALF, "half"),
                              (MINUS, "minus")):
            for w in en[section]:
                self._put(w, _Tok(kind, text=str(w)))

        # Kinyarwanda number words.
        thousands_forms = {_fold(str(w)) for w in rw["thousands_count_forms"]}
        millions_forms = {_fold(str(w)) for w in rw["millions_count_forms"]}
        rw_words: List[str] = []
        for v, forms in rw["units"].items():
            for w in forms:
                key = _fold(str(w))
                aux = (AG_THOUSANDS if key in thousands_forms else 0) | \
                      (AG_MILLIONS if key in millions_forms else 0)
                self._put(key, _Tok(RUNIT, int(v), aux=aux, text=key))
                rw_words.append(key)
        for key in thousands_forms | millions_forms:
            if key not in self.words or self.words[key][0].kind != RUNIT:
                raise ValueError(f"number_words.yml: count form {key!r} is not a unit form")
        for kind, section, value in ((RTEN, "ten", 10), (RTWENTY, "twenty", 20), (RTENS, "tens_marker", 10),
                                     (RHUNDRED, "hundred", 100), (RHUNDREDS, "hundreds_marker", 100),
                                     (RTHOUSAND, "thousand", 1000), (RTHOUSANDS, "thousands_marker", 1000),
                                     (RMILLION, "million", 10 ** 6), (RMILLION, "billion", 10 ** 9)):
            for w in rw[section]:
                key = _fold(str(w))
                self._put(key, _Tok(kind, value, text=key))
                rw_words.append(key)
        for w in rw["connectors"]:
            self._put(w, _Tok(NA, text=str(w)))
        for w in rw["half"]:
            self._put(w, _Tok(RHALF, 0.5, text=str(w)))
        for w in rw.get("point", []):
            self._put(w, _Tok(POINT, text=str(w)))
        for w in rw["minus"]:
            self._put(w, _Tok(MINUS, text=str(w)))
        for kind, section in ((RPARTS, "decimal_parts"), (RCENTS, "cents")):
            for w in rw.get(section, []):
                key = _fold(str(w))
                self._put(key, _Tok(kind, text=key))
                rw_words.append(key)  # gets the glued "n" + word forms: "nibice"

        # Sentence words: kinds, then flags (flags may combine on one word).
        for kind, section in ((OP, "operators"), (ALT, "alternatives"), (NEG, "negations")):
            for w in sent[section]:
                self._put(w, _Tok(kind, text=str(w)))
        for flag, section in ((F_COPULA, "copulas"), (F_MARKER, "answer_markers"),
                              (F_FILLER, "trailing_fillers")):
            for w in sent[section]:
                self._add_flag(w, flag)
        for w in en["one_is_pronoun_after"]:
            self._add_flag(w, F_ONEBLOCK)
        for w in en.get("one_is_idiom_before", []):
            self._add_flag(w, F_IDIOM)

        # Generated spellings never override a listed word.
        for a, b in rw.get("spelling_rules", []):
            a, b = _fold(str(a)), _fold(str(b))
            for key in list(rw_words):
                for variant in _variants(key, a, b):
                    if variant not in self.words:
                        self.words[variant] = self.words[key]
                        rw_words.append(variant)
        glue = rw.get("glued_connectors", {}) or {}
        na_tok = _Tok(NA, text="n'")
        for prefix, rule in glue.items():
            prefix = _fold(str(prefix))
            for key in rw_words:
                if rule == "vowel_initial" and key[0] not in _VOWELS:
                    continue
                glued = prefix + key
                if glued not in self.words:
                    self.words[glued] = (na_tok,) + self.words[key]
        for split, joined in (rw.get("split_forms") or {}).items():
            joined = _fold(str(joined))
            if joined not in self.words:
                raise ValueError(f"number_words.yml: split form of unknown word {joined!r}")
            self.split_forms[_fold(str(split))] = joined
        # Spellings a slip is compared with (actions/number_slips.py): the listed words.
        self.slip_settings = data.get("slips") or {"cutoff_by_length": {}}
        self.slip_targets = [_fold(str(w)) for w in
                             [*en["zero"], *en["units"], *en["teens"], *en["tens"], *en["hundred"],
                              *en["multipliers"], *(f for forms in rw["units"].values() for f in forms),
                              *(w for section in ("ten", "twenty", "tens_marker", "hundred", "hundreds_marker",
                                                  "thousand", "thousands_marker", "million", "billion")
                                for w in rw[section])]]
        self.fraction_re = self._fraction_re(rw)
        self.currency = frozenset(_fold(str(w)) for w in en.get("currency") or [])
        self.cents = frozenset(_fold(str(w)) for w in en.get("cents") or [])
        self.split_re = (re.compile(r"\b(?:" + "|".join(
            re.escape(s) for s in sorted(self.split_forms, key=len, reverse=True)) + r")\b")
            if self.split_forms else None)

    def _fraction_re(self, rw: dict):
        """Kinyarwanda "N cya/bya D" fractions, rewritten as "N/D" before tokenising."""
        dens = {_fold(str(w)): int(d) for w, d in (rw.get("fraction_denominators") or {}).items()}
        joins = [_fold(str(w)) for w in rw.get("fraction_connectors") or []]
        if not dens or not joins:
            return None
        self.fraction_nums = {w: t[0].value for w, t in self.words.items()
                              if w.isalpha() and len(t) == 1 and t[0].kind == RUNIT and 1 <= t[0].value <= 9}
        alt = lambda ws: "|".join(re.escape(w) for w in sorted(ws, key=len, reverse=True))  # noqa: E731
        self.fraction_dens = dens
        joined = "|".join(re.escape(j) + ("" if j.endswith("'") else " ?") for j in joins)
        return re.compile(rf"(?<![\w'])({alt(self.fraction_nums)}) (?:{joined})({alt(dens)})(?![\w'])")

    def fractions(self, text: str) -> str:
        def sub(m):
            num, den = self.fraction_nums[m.group(1)], self.fraction_dens[m.group(2)]
            return f"{num}/{den}" if num < den else m.group(0)
        return self.fraction_re.sub(sub, text)

    def _put(self, word, *toks: _Tok) -> None:
        if isinstance(word, bool) or word is None:
            raise ValueError(f"number_words.yml: {word!r} must be quoted (YAML read it as a boolean)")
        key = _fold(str(word))
        if key in self.words:
            raise ValueError(f"number_words.yml: {key!r} is listed twice")
        self.words[key] = tuple(toks)

    def _add_flag(self, word, flag: int) -> None:
        if isinstance(word, bool) or word is None:
            raise ValueError(f"number_words.yml: {word!r} must be quoted (YAML read it as a boolean)")
        key = _fold(str(word))
        old = self.words.get(key)
        if old is None:
            self.words[key] = (_Tok(OTHER, flags=flag, text=key),)
            return
        if len(old) != 1 or old[0].kind not in (OTHER, OP, ALT, NEG, DENOM):
            raise ValueError(f"number_words.yml: sentence word {key!r} is also a number word")
        t = old[0]
        self.words[key] = (_Tok(t.kind, t.value, t.aux, t.flags | flag, t.text),)


def _variants(word: str, a: str, b: str) -> List[str]:
    """All spellings of ``word`` with any subset of ``a`` replaced by ``b``."""
    parts = word.split(a)
    if len(parts) == 1 or len(parts) > 5:
        return []
    out = [""]
    for i, part in enumerate(parts):
        if i == 0:
            out = [part]
            continue
        out = [o + sep + part for o in out for sep in (a, b)]
    return [v for v in out if v != word]


def _load_lexicon(path: Path = LEXICON_PATH) -> _Lexicon:
    with open(path, encoding="utf-8") as fh:
        return _Lexicon(yaml.safe_load(fh))


def _slip_reader(lex: _Lexicon) -> SlipReader:
    """The number words by language and value, for reading unknown words (number_slips)."""
    numbers = {}
    for word, toks in lex.words.items():
        kinds = [t.kind for t in toks]
        if all(k in _EN_NUMBER_KINDS for k in kinds):
            lang = "en"
        elif any(k in _RW_NUMBER_KINDS for k in kinds) and all(k in _RW_NUMBER_KINDS or k == NA for k in kinds):
            lang = "rw"
        else:
            continue
        numbers[word] = (lang, tuple(t.value for t in toks))
    connectors = {lang: [w for w, t in lex.words.items() if len(t) == 1 and t[0].kind == kind and w.isalpha()]
                  for lang, kind in (("en", AND), ("rw", NA))}
    return SlipReader(numbers, connectors, lex.slip_targets, lex.slip_settings, load_real_words())


_LEX = _load_lexicon()
_WORDS = _LEX.words
_SLIPS = _slip_reader(_LEX)


# ------------------------------------------------------------------------ tokeniser
# One outer named group per alternative, so ``m.lastgroup`` tells which matched.
_TOKEN_RE = re.compile(r"""
    (?P<N>
      (?P<sign>(?<![^\s(=:])-)?
      (?P<num>\d{1,3}(?:\ \d{3}(?!\d))+(?:[.,]\d+)?|\d+(?:[.,]\d+)*|(?<!\d)\.\d+)
      (?:\ ?/\ ?(?P<den>\d+)(?![.,]?\d))? )
  | (?P<W>[^\W\d_]+(?:['-][^\W\d_]+)*'?)
  | (?P<S>[-=+*/\u00f7\u00d7?!.,;:()&%])
""", re.VERBOSE)

_SYMBOLS: Dict[str, _Tok] = {}


def _sym_token(s: str) -> _Tok:
    tok = _SYMBOLS.get(s)
    if tok is None:
        if s == "-":
            tok = _MINUS_SYM
        elif s == ",":
            tok = _COMMA
        else:
            entry = _WORDS.get(s)
            tok = entry[0] if entry else _BREAK
        _SYMBOLS[s] = tok
    return tok


def _int(digits: str) -> Optional[int]:
    return int(digits) if 0 < len(digits) <= MAX_DIGITS else None


def _dec(intpart: str, frac: str) -> Optional[float]:
    if not intpart:
        intpart = "0"
    if len(intpart) > MAX_DIGITS:
        return None
    return float(intpart + "." + frac[:MAX_DIGITS])


def _read_literal(raw: str) -> Tuple[Optional[Number], Optional[Number]]:
    """(value, alternative reading or None) of one digit group; see module docstring."""
    if raw.isdigit():
        return _int(raw), None
    if raw[0] == ".":
        return _dec("0", raw[1:]), None
    if " " in raw:  # space-grouped thousands; a trailing mark must be decimal
        for mark in ",.":
            if mark in raw:
                intpart, frac = raw.split(mark, 1)
                return _dec(intpart.replace(" ", ""), frac), None
        return _int(raw.replace(" ", "")), None
    commas = raw.count(",")
    dots = raw.count(".")
    if not commas and not dots:
        return _int(raw), None
    if commas and dots:
        mark = "," if raw.rfind(",") > raw.rfind(".") else "."
        if raw.count(mark) == 1:
            intpart, frac = raw.split(mark)
            return _dec(intpart.replace(",", "").replace(".", ""), frac), None
        return _int(raw.replace(",", "").replace(".", "")), None
    mark = "," if commas else "."
    groups = raw.split(mark)
    if len(groups) > 2:
        return _int("".join(groups)), None
    head, tail = groups
    if mark == ",":
        if len(tail) <= 2:
            return _dec(head, tail), None
        value = _int(head + tail)
        if len(tail) == 3 and tail != "000" and value is not None:
            return value, _dec(head, tail)
        return value, None
    value = _dec(head, tail)
    if len(tail) == 3 and value is not None:
        return value, _int(head + tail)
    return value, None


def _num_token(raw: str, sign: Optional[str], den: Optional[str]) -> Optional[_Tok]:
    value, alt = _read_literal(raw)
    if value is None:
        return None
    if den is not None:
        d = _int(den)
        if not d:
            return None
        value, alt = value / d, None
    if sign:
        value = -value
        if alt is not None:
            alt = -alt
    return _Tok(NUM, value, alt, F_FRAC if den is not None else 0, raw)


@lru_cache(maxsize=8192)
def _word_tokens(w: str) -> Tuple[_Tok, ...]:
    """The tokens of a word the lexicon does not list as it is (cached: tokens are never changed)."""
    entry = _WORDS.get(w)
    if entry is not None:
        return entry
    slip = _SLIPS.resolve(w)
    if slip is not None:
        return tuple(tok for piece in slip for tok in _WORDS[piece])
    if "-" in w:
        out: Tuple[_Tok, ...] = ()
        for part in w.split("-"):
            if part:
                out += _word_tokens(part)
        return out
    if "'" in w:
        if w.startswith("n'"):
            out = []
            while w.startswith("n'"):  # iterative: "n'n'n'..." garbage must not recurse
                out.append(_WORDS["n'"][0])
                w = w[2:]
            if w:
                out.extend(_word_tokens(w))
            return tuple(out)
        head, _, rest = w.partition("'")
        if len(head) <= 3 and rest[:1] in _VOWELS and head.isalpha():
            # An elided Kinyarwanda connective ("w'igihumbi", "y'itatu": "of 1000", "of 3").
            entry = _WORDS.get(rest)
            if entry and all(t.kind in _RW_NUMBER_KINDS for t in entry):
                return entry
        stripped = w.replace("'", "")
        if stripped:
            return _WORDS.get(stripped) or (_OTHER,)
    return (_Tok(OTHER, text=w),)


def _tokenise(text: str) -> List[_Tok]:
    toks: List[_Tok] = []
    append = toks.append
    for m in _TOKEN_RE.finditer(text):
        group = m.lastgroup
        if group == "W":
            entry = _WORDS.get(m.group("W"))
            if entry is None:
                entry = _word_tokens(m.group("W"))
            if len(entry) == 1:
                append(entry[0])
            else:
                toks.extend(entry)
        elif group == "N":
            append(_num_token(m.group("num"), m.group("sign"), m.group("den")) or _BREAK)
        else:
            append(_sym_token(m.group("S")))
    return toks


_JOINING_KINDS = _EN_NUMBER_KINDS | _RW_NUMBER_KINDS | {AND, NA}


def _number_word(w: str, joining: bool = False) -> bool:
    toks = _WORDS.get(w)
    return bool(toks) and all(t.kind in (_JOINING_KINDS if joining else _EN_NUMBER_KINDS | _RW_NUMBER_KINDS)
                              for t in toks)


def _respace(text: str) -> str:
    """A space typed one letter late or early, or inside a word, next to an unknown word: "cumin a
    gatanu" = "cumi na gatanu", "twent yfive" = "twenty five", "on e" = "one". The new words must
    be number words (or "na"/"and" after a number word)."""
    words = text.split(" ")
    i = 0
    while i < len(words) - 1:
        a, b = words[i], words[i + 1]
        i += 1
        if not (a.isalpha() and b.isalpha()) or len(a) + len(b) < 3:
            continue
        if (a in _WORDS or _SLIPS.resolve(a)) and (b in _WORDS or _SLIPS.resolve(b)):
            continue
        if _number_word(a + b):  # a space inside a word: "on e", "twen ty"
            words[i - 1:i + 1] = [a + b]
        elif len(a) > 2 and _number_word(a[:-1]) and _number_word(a[-1] + b, joining=True):
            words[i - 1], words[i] = a[:-1], a[-1] + b
        elif len(b) > 1 and _number_word(a + b[0]) and _number_word(b[1:], joining=True):
            words[i - 1], words[i] = a + b[0], b[1:]
    return " ".join(words)


def _only_tail(toks: List[_Tok], k: int) -> bool:
    for t in toks[k:]:
        if t.kind != BREAK and not t.flags & F_FILLER:
            return False
    return True


def _resolve(toks: List[_Tok]) -> List[_Tok]:
    """Decide homophones ("for", "too"...) and pronoun "one" from their context."""
    n = len(toks)
    todo = [j for j, t in enumerate(toks) if t.kind in (WEAK, REPEAT) or t.flags & F_ONE]
    if not todo:
        return toks
    all_numeric = all(t.kind in _NUMERICISH or t.flags & F_FILLER for t in toks)
    out = list(toks)
    for j in todo:
        t = toks[j]
        prev = toks[j - 1] if j else None
        nxt = toks[j + 1] if j + 1 < n else None
        if t.kind == REPEAT or t.aux == DIGIT_ONLY:
            continue  # decided by _digit_runs, once homophones are
        if t.kind != WEAK:  # "one" after "which", "the", ...; "one second"
            if (prev is not None and prev.flags & F_ONEBLOCK) or (nxt is not None and nxt.flags & F_IDIOM):
                out[j] = _OTHER
            continue
        # "five to six" is a range, even in a message of number words only.
        ok = all_numeric and (bool(t.aux) or prev is None or nxt is None
                              or prev.kind not in _VALUE_KINDS or nxt.kind not in _VALUE_KINDS)
        if not ok and prev is not None:
            pk = prev.kind
            ok = ((pk == TENS and t.value > 0)
                  or (pk == NUM and isinstance(prev.value, int) and 20 <= prev.value <= 90
                      and prev.value % 10 == 0 and t.value > 0 and _only_tail(toks, j + 1))
                  or (pk == AND and j > 1 and toks[j - 2].kind in (HUNDRED, MULT))
                  or (bool(prev.flags & F_MARKER) and _only_tail(toks, j + 1)))
        if not ok and nxt is not None:
            ok = nxt.kind in (HUNDRED, MULT) or (
                bool(t.aux) and prev is not None and prev.kind == UNIT and nxt.kind == UNIT)
        out[j] = _Tok(UNIT, t.value, None, 0, t.text) if ok else _OTHER
    return _digit_runs(out) if any(out[j].kind in (REPEAT, WEAK) for j in todo) else out


def _digit_runs(toks: List[_Tok]) -> List[_Tok]:
    """Spoken digit conventions: "o"/"oh" as a digit, "double five" = 5 5, "triple oh" = 0 0 0.

    "o" is 0 only after "point", a digit word or "double"/"triple", or before a digit word
    after one of those ("point o five", "one triple oh one", "two double o eight").
    """
    out: List[_Tok] = []
    n = len(toks)
    for j, t in enumerate(toks):
        if t.kind == WEAK and t.aux == DIGIT_ONLY:
            prev = out[-1] if out else None
            nxt = toks[j + 1] if j + 1 < n else None
            digit_before = prev is not None and (prev.kind == POINT or prev.kind == REPEAT or
                                                 (prev.kind == UNIT and prev.value < 10))
            fraction = any(x.kind == POINT for x in out)
            if digit_before and (fraction or prev.kind == REPEAT or
                                 (nxt is not None and nxt.kind in (UNIT, REPEAT, WEAK))):
                t = _Tok(UNIT, 0, None, 0, t.text)
            else:
                t = _OTHER
        if t.kind == UNIT and out and out[-1].kind == REPEAT and t.value < 10:
            out[-1:] = [t] * out[-1].value  # "double five" -> five five
            continue
        out.append(t)
    return [_OTHER if t.kind == REPEAT else t for t in out]


# ------------------------------------------------------------------------- grammars
(S_START, S_ART, S_UNIT, S_TEEN, S_TENS, S_HUND, S_MULT, S_NUM, S_NUMTENS, S_NUMF, S_DEC) = range(11)
_CAN_SMALL = (S_START, S_HUND, S_MULT)
_CAN_HUNDRED = (S_UNIT, S_TEEN, S_TENS, S_NUM, S_NUMTENS)
_CAN_MULT = (S_UNIT, S_TEEN, S_TENS, S_HUND, S_NUM, S_NUMTENS, S_NUMF, S_DEC)
_CAN_POINT = (S_START, S_UNIT, S_TEEN, S_TENS, S_HUND, S_MULT, S_NUM, S_NUMTENS)


def _num_state(v: Number) -> int:
    if isinstance(v, int) and v >= 0:
        return S_NUMTENS if 20 <= v <= 90 and v % 10 == 0 else S_NUM
    return S_NUMF


def _read_fraction(toks: List[_Tok], j: int, n: int) -> Optional[Tuple[float, int]]:
    """Digits after a spoken decimal point: "point 5", "point two five", "koma gatanu"."""
    if j >= n:
        return None
    t = toks[j]
    if t.kind == NUM and t.text.isdigit() and len(t.text) <= MAX_DIGITS:
        return int(t.text) / 10 ** len(t.text), j + 1
    digits = []
    if t.kind in (TEEN, TENS):  # "point fifteen" = .15, "point ninety-nine" = .99
        value = t.value
        j += 1
        if t.kind == TENS and j < n and toks[j].kind == UNIT and toks[j].value:
            value += toks[j].value
            j += 1
        return value / 100, j
    while j < n and toks[j].kind in (UNIT, RUNIT) and len(digits) < MAX_DIGITS:
        digits.append(str(toks[j].value))
        j += 1
    if not digits:
        return None
    return int("".join(digits)) / 10 ** len(digits), j


def _parse_en(toks: List[_Tok], i: int, n: int) -> Optional[Tuple[Number, int]]:
    """English words (and digits mixed with them) from ``i``: (value, end) or None."""
    total: Number = 0
    cur: Number = 0
    state = S_START
    last_mult = INF
    j = i
    while j < n:
        t = toks[j]
        k = t.kind
        if k == UNIT:
            if state in _CAN_SMALL:
                cur += t.value
            elif state in (S_TENS, S_NUMTENS) and t.value:
                cur += t.value
            else:
                break
            state = S_UNIT
        elif k == TEEN or k == TENS:
            if state not in _CAN_SMALL:
                break
            cur += t.value
            state = S_TEEN if k == TEEN else S_TENS
        elif k == NUM:
            v = t.value
            if state == S_START:
                cur = v
                state = _num_state(v)
            elif state == S_TENS and isinstance(v, int) and 1 <= v <= 9:
                cur += v
                state = S_UNIT
            elif state in (S_HUND, S_MULT) and isinstance(v, int) and \
                    0 < v < (100 if state == S_HUND else last_mult):
                cur += v
                state = _num_state(v) if state == S_MULT else S_UNIT
            else:
                break
        elif k == HUNDRED:
            if state in (S_START, S_ART):
                cur = 100
            elif (state in _CAN_HUNDRED and (0 < cur < 100 or (state == S_NUM and 0 < cur < 1000))) or \
                    (state == S_NUMF and 0 < cur < 1000):
                cur *= 100  # "fifteen hundred", "322 hundred", "2.5 hundred"
            else:
                break
            state = S_HUND
        elif k == MULT:
            m = t.value
            if m >= last_mult:
                if m == 10 ** 6 and last_mult == 1000 and state == S_MULT and cur == 0 and total < 10 ** 6 \
                        and toks[j - 1].kind == MULT:
                    total *= m  # "two thousand million" (British) = 2 000 000 000
                    last_mult = 10 ** 9
                    j += 1
                    continue
                break
            if state in (S_START, S_ART):
                total += m
            elif state in _CAN_MULT and cur != 0:
                total += cur * m
            else:
                break
            cur = 0
            last_mult = m
            state = S_MULT
        elif k == AND:
            nxt = toks[j + 1] if j + 1 < n else _OTHER
            if state not in (S_START, S_ART) and nxt.kind == ART and j + 2 < n and toks[j + 2].kind == HALF:
                cur += 0.5
                j += 3
                state = S_DEC  # only a multiplier may follow: "three and a half million"
                continue
            if state in (S_HUND, S_MULT) and nxt.kind in (UNIT, TEEN, TENS, NUM):
                j += 1
                continue
            if state == S_NUM and isinstance(cur, int) and cur >= 100 and cur % 100 == 0 \
                    and nxt.kind in (UNIT, TEEN, TENS):
                state = S_HUND  # "100 and two" = 102, as "one hundred and two"; "5 and 3" stay two
                j += 1
                continue
            break
        elif k == BREAK and t is _COMMA and state == S_MULT and _group_follows(toks, j + 1, n, last_mult):
            j += 1  # "a thousand, one hundred and eleven": a comma after a multiplier groups digits
            continue
        elif k == ART:
            if state != S_START or j + 1 >= n:
                break
            nk = toks[j + 1].kind
            if nk in (HUNDRED, MULT):
                state = S_ART
            elif nk == DENOM and not toks[j + 1].aux:  # "a quarter", "a fifth"
                cur = 1 / toks[j + 1].value
                j += 2
                state = S_DEC
                break
            elif nk == HALF:
                cur = 0.5
                j += 2
                state = S_DEC
                break
            else:
                break
        elif k == HALF:
            if state == S_UNIT and cur == 1 and j == i + 1:  # "one half"
                cur = 0.5
                j += 1
                state = S_DEC
            break
        elif k == MINUS and t is _MINUS_SYM and state == S_TENS and j + 1 < n and \
                toks[j + 1].kind == UNIT and 0 < toks[j + 1].value < 10:
            j += 1  # "fifty - two": a spaced hyphen between word tens and units joins them
            continue
        elif k == POINT:
            if state not in _CAN_POINT:
                break
            frac = _read_fraction(toks, j + 1, n)
            if frac is None:
                break
            cur = cur + frac[0] if cur >= 0 else cur - frac[0]
            j = frac[1]
            state = S_DEC
            continue
        else:
            break
        j += 1
    if state in (S_START, S_ART):
        return None
    return total + cur, j


def _group_follows(toks: List[_Tok], k: int, n: int, last_mult: Number) -> bool:
    """Whether words below ``last_mult`` start at ``k`` (and no multiplier as big follows them)."""
    if k >= n or toks[k].kind not in (UNIT, TEEN, TENS, ART):
        return False
    while k < n and toks[k].kind in (UNIT, TEEN, TENS, HUNDRED, AND, ART, MULT):
        if toks[k].kind == MULT and toks[k].value >= last_mult:
            return False  # "one thousand, two thousand" is a list
        k += 1
    return True


def _unit_slots(toks: List[_Tok]) -> None:
    """After an English tens word only a unit can follow: a word there that is no number word is
    read as the closest unit ("twinty sex" = 26, as "magana anane" = 400)."""
    for j in range(1, len(toks)):
        t = toks[j]
        if t.kind == OTHER and t.text and toks[j - 1].kind == TENS and t.text not in _WORDS:
            form = _SLIPS.en_unit_in_slot(t.text)
            if form is not None:
                toks[j] = _WORDS[form][0]


def _rw_unit_after(toks: List[_Tok], k: int, n: int) -> Optional[int]:
    """The unit 1-9 (word or digit) at ``k`` after mirongo/magana, or None."""
    if k >= n:
        return None
    t = toks[k]
    if t.kind == RUNIT or (t.kind == NUM and isinstance(t.value, int)):
        if 1 <= t.value <= 9:
            return t.value
    if t.kind == OTHER and t.text and t.text not in _WORDS:  # only a unit fits here: "magana anane" = 400
        form = _SLIPS.unit_in_slot(t.text)
        if form is not None:
            return _WORDS[form][0].value
    return None


def _rw_term(toks: List[_Tok], k: int, n: int, loose: bool = False) -> Optional[Tuple[int, int, int]]:
    """One Kinyarwanda term at ``k``: (value, end, place) or None."""
    t = toks[k]
    kind = t.kind
    if kind == RUNIT:
        return t.value, k + 1, 1
    if kind == RTEN or kind == RTWENTY:
        return t.value, k + 1, 10
    if kind == RTENS or kind == RHUNDREDS:
        u = _rw_unit_after(toks, k + 1, n)
        if u is None or (u == 1 and kind == RHUNDREDS):
            return None
        return u * t.value, k + 2, t.value
    if kind == RHUNDRED or kind == RTHOUSAND:
        end = k + 1
        if end < n and toks[end].kind == RUNIT and toks[end].value == 1:  # "ijana rimwe"
            end += 1
        return t.value, end, t.value
    if kind == RTHOUSANDS or kind == RMILLION:
        agree = AG_THOUSANDS if kind == RTHOUSANDS else AG_MILLIONS
        count = _rw_sum(toks, k + 1, n, 1000, agree, loose) if k + 1 < n else None
        if count is None:
            if kind == RTHOUSANDS:
                return None
            return t.value, k + 1, t.value
        value, end = count
        if value <= 0 or value != int(value):
            return None
        return int(value) * t.value, end, t.value
    if kind == NUM:
        v = t.value
        if isinstance(v, int) and v > 0:
            return v, k + 1, 10 ** (len(str(v)) - 1)
    return None


def _rw_sum(toks: List[_Tok], k: int, n: int, limit: Number = INF,
            agree: int = 0, loose: bool = False) -> Optional[Tuple[Number, int]]:
    """Kinyarwanda terms joined by na/n'/juxtaposition, biggest first.

    ``loose``: inside a thousands/millions count, a term joined by "na" that does not show the
    count's agreement (tens, hundreds, the invariable umunani/icyenda) still belongs to the
    count: "ibihumbi magana cyenda na mirongo irindwi" = 970000, not 900070.
    """
    total: Number = 0
    prev_place: Number = limit
    prev_num = False
    terms = 0
    j = k
    while j < n:
        m = j
        connected = False
        if terms and toks[m].kind in (NA, AND):
            connected = True
            m += 1
            if m >= n:
                break
        t = toks[m]
        if t.kind == RHALF:
            if connected and agree == 0:
                total += 0.5
                j = m + 1
            break
        if t.kind == NUM and prev_num and not connected:
            break  # two digit groups are never joined
        term = _rw_term(toks, m, n, loose)
        if term is None:
            break
        value, end, place = term
        if value >= prev_place:
            break
        if agree and connected and not (t.kind == RUNIT and t.aux & agree) and not (
                loose and (t.kind != RUNIT or t.value >= 8)):
            break
        total += value
        prev_place = place
        prev_num = t.kind == NUM
        terms += 1
        j = end
    return (total, j) if terms else None


# ------------------------------------------------------------------------ sentences
def _read_at(toks: List[_Tok], i: int, n: int, tail: bool = True) -> Optional[Tuple[Number, int, Optional[Number]]]:
    """The number that starts at token ``i``: (value, end, alternative reading) or None."""
    t = toks[i]
    k = t.kind
    rw_alt = None
    if k == NUM and (i + 1 == n or toks[i + 1].kind in _NUM_ALONE):
        nxt = toks[i + 1] if i + 1 < n else _OTHER
        if nxt.kind == NUM and nxt.flags & F_FRAC and not t.flags & F_FRAC and isinstance(t.value, int) \
                and t.value >= 0 and 0 < nxt.value < 1:
            return t.value + nxt.value, i + 2, None  # a mixed number: "2 1/4" = 2.25
        best = t.value, i + 1  # fast path: a digit group that nothing can extend
    else:
        best = _parse_en(toks, i, n) if k in _EN_STARTERS else None
        if k in _RW_STARTERS:
            rw = _rw_sum(toks, i, n)
            loose = _rw_sum(toks, i, n, loose=True) if rw is not None else None
            if loose is not None and loose[1] > rw[1]:
                rw = loose  # only the loose count reads the whole number
            elif loose is not None and loose[0] != rw[0]:
                rw_alt = loose[0]  # truly ambiguous: the expected answer decides
            if rw is not None and (best is None or rw[1] > best[1]):
                best = rw
                if rw[1] < n and toks[rw[1]].kind == POINT and isinstance(rw[0], int):
                    frac = _read_fraction(toks, rw[1] + 1, n)  # "kabiri koma gatanu" = 2.5
                    if frac is not None:
                        best = rw[0] + frac[0], frac[1]
    if best is None:
        return None
    value, end = best
    alt = t.aux if k == NUM and end == i + 1 else rw_alt
    if tail and end < n:
        more = _tail(toks, value, end, n)
        if more is not None:
            value, end = more
            alt = None
    return value, end, alt


def _tail(toks: List[_Tok], value: Number, end: int, n: int) -> Optional[Tuple[Number, int]]:
    """What may follow a whole number and change it: a fraction word ("three quarters", "one and
    a quarter", "two and three eighths"), "over" ("one over three"), a Kinyarwanda decimal part
    ("gatanu n'ibice bitanu" = 5.5: the part's digits after the point) or cents ("n'amasenti")."""
    if not isinstance(value, int) or value < 0:
        return None
    t = toks[end]
    k = t.kind
    if k == DENOM:
        if value > 0 and (value == 1) != bool(t.aux):  # "one fifth", "three fifths"
            return value / t.value, end + 1
        return None
    if k == AND and end + 2 < n and toks[end + 2].kind == DENOM:
        count, denom = toks[end + 1], toks[end + 2]
        if count.kind == ART and not denom.aux:
            return value + 1 / denom.value, end + 3
        if count.kind in (UNIT, NUM) and isinstance(count.value, int) and count.value > 0 \
                and (count.value == 1) != bool(denom.aux):
            return value + count.value / denom.value, end + 3
        return None
    if k == OP and t.text == "over" and end + 1 < n and toks[end + 1].kind in _STARTERS:
        below = _read_at(toks, end + 1, n, tail=False)
        if below is not None and below[0]:
            return value / below[0], below[1]
        return None
    j = end + 1 if k in (NA, AND) else end
    if j + 1 < n and toks[j].kind in (RPARTS, RCENTS) and toks[j + 1].kind in _STARTERS:
        part = _read_at(toks, j + 1, n, tail=False)
        if part is not None and isinstance(part[0], int) and part[0] >= 0:
            digits = len(str(part[0])) if toks[j].kind == RPARTS else 2
            if part[0] < 10 ** digits:
                return value + part[0] / 10 ** digits, part[1]
    return None


def _phrases(toks: List[_Tok]) -> List[list]:
    """Every number in the message: [start, end, value, alt, digit_word, pair_word]."""
    out: List[list] = []
    n = len(toks)
    i = 0
    while i < n:
        t = toks[i]
        k = t.kind
        if k not in _STARTERS:
            i += 1
            continue
        found = _read_at(toks, i, n)
        if found is None:
            i += 1
            continue
        value, end, alt = found
        start = i
        if i and toks[i - 1].kind == MINUS and not (out and out[-1][1] == i - 1):
            start = i - 1
            value = -value
            if alt is not None:
                alt = -alt
        elif i > 1 and toks[i - 1].text == "ni" and out and out[-1][1] == i - 1 and alt is None:
            alt = _split_connector(toks, out[-1], i, end, value)
        single = end == i + 1
        digit_word = single and k == UNIT and start == i
        pair_word = (start == i and k in (TEEN, TENS) and isinstance(value, int) and 10 <= value <= 99
                     and all(toks[x].kind in (UNIT, TEEN, TENS) for x in range(i, end)))
        out.append([start, end, value, alt, digit_word, pair_word])
        i = end
    if len(out) > 1:
        out = _merge_spoken(out)
        out = _merge_money(toks, out)
    return out


def _merge_money(toks: List[_Tok], phrases: List[list]) -> List[list]:
    """"three dollars and fifty cents" = 3.5: a currency word and "and" between a number and a
    whole number of cents (1-99) followed by a cents word."""
    n = len(toks)
    out: List[list] = []
    i = 0
    while i < len(phrases):
        p = phrases[i]
        if i + 1 < len(phrases):
            q = phrases[i + 1]
            e = p[1]
            if (q[0] == e + 2 and toks[e].text in _LEX.currency and toks[e + 1].kind == AND
                    and q[1] < n and toks[q[1]].text in _LEX.cents and p[3] is None and q[3] is None
                    and isinstance(q[2], int) and 0 < q[2] < 100 and p[2] >= 0):
                out.append([p[0], q[1] + 1, p[2] + q[2] / 100, None, False, False])
                i += 2
                continue
        out.append(p)
        i += 1
    return out


def _split_connector(toks: List[_Tok], prev: list, i: int, end: int, value: Number) -> Optional[Number]:
    """"cumi ni cyenda": "ni" is the copula ("is nine") or "n'icyenda" with its apostrophe moved
    (19). When the word after "ni" is a Kinyarwanda number whose i- form exists and it fits below
    the previous number's last place, the joined value is the alternative reading (the expected
    answer decides, as for "1,500")."""
    t = toks[i]
    if end != i + 1 or t.kind not in (RUNIT, RTEN) or toks[prev[0]].kind not in _RW_NUMBER_KINDS:
        return None
    full = _WORDS.get("i" + t.text)
    before = prev[2]
    if not full or full[0].kind not in (RUNIT, RTEN) or not isinstance(before, int) or before <= 0:
        return None
    place = 1
    while before % (place * 10) == 0:
        place *= 10
    return before + value if 0 < value < place else None


def _merge_spoken(phrases: List[list]) -> List[list]:
    """Digit-by-digit words ("one nine eight five") and year-style pairs ("nineteen eighty five")."""
    merged: List[list] = []
    i = 0
    n = len(phrases)
    while i < n:
        p = phrases[i]
        if p[4]:
            j = i + 1
            while j < n and phrases[j][4] and phrases[j][0] == phrases[j - 1][1]:
                j += 1
            if 2 <= j - i <= MAX_DIGITS:
                digits = "".join(str(q[2]) for q in phrases[i:j])
                merged.append([p[0], phrases[j - 1][1], int(digits), None, False, False])
            elif j - i == 1 and p[2] and j < n and phrases[j][5] and phrases[j][0] == p[1]:
                # "five twenty four" = 524: a digit word then a 10-99 word pair, as ASR hears prices;
                # "four ten" may also be "fourteen" split in two (3-9 + ten): the expected answer decides.
                q = phrases[j]
                teen = p[2] + 10 if q[2] == 10 and 3 <= p[2] <= 9 and q[1] == q[0] + 1 else None
                merged.append([p[0], q[1], p[2] * 100 + q[2], teen, False, False])
                j += 1
            else:  # a single word, or a run too long to be a number: keep as they are
                merged.extend(phrases[i:j])
            i = j
            continue
        elif p[5] and i + 1 < n and phrases[i + 1][5] and phrases[i + 1][0] == p[1]:
            q = phrases[i + 1]
            merged.append([p[0], q[1], p[2] * 100 + q[2], None, False, False])
            i += 2
            continue
        merged.append(p)
        i += 1
    return merged


def _analyse(message) -> Optional[Tuple[Number, Optional[Number]]]:
    """(value, alternative reading) of the answer in ``message``, or None."""
    if message is None:
        return None
    if not isinstance(message, str):
        message = str(message)
    if len(message) > MAX_CHARS:
        cut = len(message) - MAX_CHARS
        space = message.find(" ", cut, cut + 40)
        message = message[space if space >= 0 else cut:]
    text = _fold(message)
    if " " in text:
        if _LEX.split_re is not None:
            text = _LEX.split_re.sub(lambda m: _LEX.split_forms[m.group(0)], text)
        text = _respace(text)
        if _LEX.fraction_re is not None and ("ya" in text or "y'" in text):
            text = _LEX.fractions(text)
    toks = _tokenise(text)
    if not toks:
        return None
    toks = _resolve(toks)
    _unit_slots(toks)
    phrases = _phrases(toks)
    if not phrases:
        return None

    n = len(toks)
    kept = []
    for p in phrases:
        s = p[0]
        if s and (toks[s - 1].kind == NEG or
                  (toks[s - 1].flags & F_COPULA and s > 1 and toks[s - 2].kind == NEG)):
            continue
        operand = (s and toks[s - 1].kind in (OP, MINUS)) or (p[1] < n and toks[p[1]].kind in (OP, MINUS))
        kept.append((p, operand))
    if not kept:
        return None
    for (a, _), (b, _) in zip(kept, kept[1:]):
        if a[2] != b[2] and any(toks[x].kind == ALT for x in range(a[1], b[0])):
            return None  # "is it 7 or 8": ambiguous
    chosen = None
    for p, operand in reversed(kept):
        if not operand:
            chosen = p
            break
    if chosen is None:
        chosen = kept[-1][0]
    value = _clean(chosen[2])
    if value is None:
        return None
    return value, _clean(chosen[3]) if chosen[3] is not None else None


def _clean(v: Number) -> Optional[Number]:
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        if v.is_integer() and abs(v) < 2 ** 53:
            return int(v)
    return v


def _same(a: Number, b: Number) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


# ---------------------------------------------------------------------- public API
def parse_number(message: str, language: Optional[str] = None) -> Optional[Number]:
    """The number a learner's ``message`` states as the answer, or None.

    ``language`` is a hint only (see the module docstring): both English and
    Kinyarwanda number words are always understood. None means no number, or an
    ambiguous answer such as "7 or 8".
    """
    found = _analyse(message)
    return None if found is None else found[0]


def check_math_answer(expected: Number, message: str, language: Optional[str] = None) -> AnswerCheck:
    """Compare the number in ``message`` with ``expected``; see the module docstring."""
    found = _analyse(message)
    if found is None:
        return AnswerCheck(False, None)
    value, alt = found
    try:
        target = float(expected)
    except (TypeError, ValueError, OverflowError):
        return AnswerCheck(False, value)
    if _same(value, target):
        return AnswerCheck(True, value)
    if alt is not None and _same(alt, target):
        return AnswerCheck(True, alt)
    return AnswerCheck(False, value)


def is_right(expected: Number, message: str, language: Optional[str] = None) -> bool:
    """Whether ``message`` answers ``expected`` (never raises): the grader the programme
    report and the dashboard give infra/analytics.py for events from before outcomes were recorded."""
    try:
        return bool(check_math_answer(expected, message, language).correct)
    except Exception:  # noqa: BLE001 - an unreadable old event counts as not right
        return False
