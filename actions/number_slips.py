"""Which number word(s) an unknown word stands for: learners' and keypads' slips.

Used by :mod:`actions.answer_check` for a word its lexicon does not list. Works on strings
only (the checker turns the words found into its tokens). In order, the first rule that
reads the word wins:

1. hyphenated stems joined: ``li-mwe`` -> ``limwe``, ``ka-bili`` -> ``kabili``;
2. keypad (T9) slips: one letter swapped for another on the same phone key (``fivd`` -> ``five``,
   ``sevem`` -> ``seven``): a key pressed once too often or too rarely;
   typing slips on an English number word of 3+ letters, the two commonest single errors of
   typists: two neighbouring letters swapped (``oen`` -> ``one``, ``tow`` would be ``two`` but is
   a real word) or one letter replaced by its neighbour on a QWERTY keyboard (``oje`` -> ``one``,
   ``sux`` -> ``six``; in a 3-letter word only the middle letter, so ``teh`` -- "the" -- is not
   ``ten``). These reach the 3-letter words closeness never reads;
3. glued compounds, no spaces: ``twentyfive`` -> ``twenty five``, ``makumyabirinagatanu`` ->
   ``makumyabiri nagatanu`` (every piece a number word or a connector of the same language);
4. a Kinyarwanda class prefix on a number word: ``kacyenda`` -> ``cyenda``, ``izero`` -> ``zero``;
5. closeness (core/fuzzy similarity) to one number word, with a cutoff that depends on the
   word's length; short words (< ``min_length``) are never matched by closeness, nor
   Kinyarwanda words shorter than ``kinyarwanda_min_length``, and a tie between two words of
   different value reads nothing;
6. one letter dropped from a Kinyarwanda number form of 6+ letters (``ehatu`` -> ``eshatu``): the
   5-letter words closeness does not read (``dropped_letter_min_length``);
7. sound: an English word spelt as it sounds (``wun``, ``fuore``, ``sixtine``, ``trie``, ``oun``) has
   the same sound key as one number word -- first letter, then its consonants, with
   ph/f, th/t, c/k, x/ks, m/n... merged, silent gh and h dropped, doubles collapsed
   (:func:`sound_key`). Number words whose spelling hides their sound have a respelling in
   ``sound_spellings`` (``one`` sounds ``wun``). Keys of two different values (``eight`` and
   ``eighty`` are both "et") read nothing; words under ``sound_min_length`` letters or keys of one
   letter never match.

Where only a Kinyarwanda unit can stand (after ``mirongo``/``magana``), :meth:`SlipReader.unit_in_slot`
reads an unknown word as the unit form it is closest to (``slot_cutoff``, one value only):
``magana anane`` = 400, ``mirongo inane`` = 80. The slot is evidence enough for a looser cutoff.
Likewise :meth:`SlipReader.en_unit_in_slot` right after an English tens word, real words included
(``twinty sex`` = 26; ``en_slot_cutoff``).

A real word is never a slip: ``actions/content/real_words_near_numbers.txt`` lists the English
(dictionary) and Kinyarwanda (a public word list and project data) words that rules 2-7 would otherwise read as
numbers ("then", "weight", "dive", "abana"...); ``scripts/real_words_near_numbers.py``
regenerates it. Results are cached per word, so a word costs a dictionary hit after its first
time.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Set, Tuple

from core.fuzzy import nearest, similarity

REAL_WORDS_PATH = Path(__file__).resolve().parent / "content" / "real_words_near_numbers.txt"
MAX_WORD = 40  # longer "words" are not glued numbers worth a search


_SOUND_MERGES = (("tch", "ch"), ("ph", "f"), ("gh", ""), ("th", "t"), ("wh", "w"), ("ck", "k"), ("qu", "kw"),
                 ("x", "ks"), ("c", "k"), ("z", "s"), ("m", "n"))


def sound_key(word: str) -> str:
    """How a word sounds, roughly: its first letter, then its consonants (see rule 7)."""
    first = word[:1]
    for a, b in _SOUND_MERGES:
        word = word.replace(a, b)
    if not word:
        return ""
    out = [first if first == "m" else word[0]]  # m/n merge inside the word only: "wum" is "wun"
    for c in word[1:]:
        if c not in "aeiouyh" and c != out[-1]:
            out.append(c)
    return "".join(out)


def load_real_words(path: Path = REAL_WORDS_PATH) -> FrozenSet[str]:
    if not path.exists():
        return frozenset()
    with open(path, encoding="utf-8") as fh:
        return frozenset(w.strip() for w in fh if w.strip() and not w.startswith("#"))


class SlipReader:
    """Reads unknown words as number words; see the module docstring for the rules.

    ``numbers``: every known number word -> its language ("en"/"rw") and value key (words
    with equal keys are interchangeable in a tie); ``connectors``: joining words per language
    ("and", "na"); ``targets``: the canonical spellings closeness compares with.
    """

    def __init__(self, numbers: Mapping[str, Tuple[str, object]], connectors: Mapping[str, Iterable[str]],
                 targets: Iterable[str], settings: Mapping, real_words: FrozenSet[str] = frozenset()):
        self.numbers = dict(numbers)
        self.connectors = {lang: frozenset(ws) for lang, ws in connectors.items()}
        self.real_words = real_words
        self.min_length = int(settings.get("min_length", 4))
        self.cutoffs = sorted((int(k), float(v)) for k, v in settings["cutoff_by_length"].items())
        self.rw_min_length = int(settings.get("kinyarwanda_min_length", self.min_length))
        self.prefixes = tuple(sorted((str(p) for p in settings.get("class_prefixes", [])), key=len, reverse=True))
        self.prefix_min_rest = int(settings.get("prefix_min_rest", 4))
        self.targets = [t for t in dict.fromkeys(targets) if t in self.numbers]
        self.keypad = self._keypad_slips(settings.get("keypad", []))
        self.typed = self._typed_slips(settings.get("qwerty", []), int(settings.get("typed_min_length", 3)))
        self.slot_cutoff = float(settings.get("slot_cutoff", 0.75))
        self.unit_forms = [w for w, (lang, values) in self.numbers.items()
                           if lang == "rw" and len(values) == 1 and isinstance(values[0], int) and 1 <= values[0] <= 9]
        self.resolve = lru_cache(maxsize=8192)(self._resolve)
        self.unit_in_slot = lru_cache(maxsize=2048)(self._unit_in_slot)
        self.en_unit_forms = [w for w in self.targets if self.numbers[w][0] == "en"
                              and len(self.numbers[w][1]) == 1 and self.numbers[w][1][0] in range(1, 10)]
        self.en_slot_cutoff = float(settings.get("en_slot_cutoff", 0.65))
        self.en_unit_in_slot = lru_cache(maxsize=2048)(self._en_unit_in_slot)
        self.dropped = self._dropped_letter(int(settings.get("dropped_letter_min_length", 5)))
        self.sound_min_length = int(settings.get("sound_min_length", 3))
        self.respellings = {str(w): [str(x) for x in v] for w, v in (settings.get("sound_spellings") or {}).items()}
        self.sounds = self._sound_keys(self.respellings)
        self.sound_min_similarity = float(settings.get("sound_min_similarity", 0.6))

    # ------------------------------------------------------------------ rules
    def _keypad_slips(self, keys: List[str]) -> Dict[str, str]:
        same_key = {c: k for k in keys for c in k}
        pairs = ((word[:i] + other + word[i + 1:], word) for word in self.targets
                 for i, c in enumerate(word) for other in same_key.get(c, "") if other != c)
        return self._unambiguous((slip, word) for slip, word in pairs
                                 if slip not in self.numbers and slip not in self.real_words)

    def _typed_slips(self, rows: List[str], min_length: int) -> Dict[str, str]:
        """English number words with two neighbouring letters swapped or one letter replaced by a
        QWERTY neighbour (same row, or the row above/below within three quarters of a key)."""
        pos = {c: (r, x + (0.0, 0.25, 0.75)[min(r, 2)]) for r, row in enumerate(rows) for x, c in enumerate(row)}
        near = {a: [b for b, (rb, xb) in pos.items() if b != a and (
            (rb == ra and abs(xb - xa) == 1) or (abs(rb - ra) == 1 and abs(xb - xa) <= 0.75))]
            for a, (ra, xa) in pos.items()}
        def variants(word: str) -> Set[str]:
            swapped = {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)}
            # A 3-letter word keeps its outline (first and last letter): "oje" is "one", "teh" is no "ten".
            inner = range(1, len(word) - 1) if len(word) < 4 else range(len(word))
            return swapped | {word[:i] + b + word[i + 1:] for i in inner for b in near.get(word[i], ())}

        return self._unambiguous(
            (slip, word) for word in self.targets
            if self.numbers[word][0] == "en" and len(word) >= min_length
            for slip in variants(word) - {word} if slip not in self.numbers)

    def _dropped_letter(self, min_length: int) -> Dict[str, str]:
        """Kinyarwanda number forms of min_length + 1 letters or more, with one letter left out."""
        return self._unambiguous(
            (slip, word) for word in self.targets
            if self.numbers[word][0] == "rw" and len(word) > min_length
            for slip in {word[:i] + word[i + 1:] for i in range(len(word))} if slip not in self.numbers)

    def _sound_keys(self, respellings: Mapping[str, Iterable[str]]) -> Dict[str, str]:
        """Sound key -> English number word, keys shared by two values left out."""
        spellings = [(w, w) for w in self.targets if self.numbers[w][0] == "en" and w.isalpha()
                     and self.numbers[w][1] != (0,)]  # "zero"'s key "sr" is too common a sound
        spellings += [(str(sound), str(w)) for w, sounds in respellings.items() if w in self.numbers
                      for sound in sounds]
        keyed = ((sound_key(spelling), word) for spelling, word in spellings)
        return self._unambiguous((key, word) for key, word in keyed if len(key) >= 2)

    def _unambiguous(self, pairs: Iterable[Tuple[str, str]]) -> Dict[str, str]:
        """key -> the first number word given for it; a key that words of different values
        share is left out (a slip that could be either is no evidence for one)."""
        found: Dict[str, str] = {}
        clashes = set()
        for key, word in pairs:
            if key in found and self.numbers[found[key]][1] != self.numbers[word][1]:
                clashes.add(key)
            found.setdefault(key, word)
        for key in clashes:
            del found[key]
        return found

    def _sounds_like(self, word: str) -> Optional[Tuple[str, ...]]:
        if len(word) < self.sound_min_length:
            return None
        found = self.sounds.get(sound_key(word))
        if not found:
            return None
        # Same sound and still a likeness in letters to the word or its respelling: "turota" has
        # thirty's consonants but is a Kinyarwanda verb, "trie" is three.
        spellings = [found, *self.respellings.get(found, ())]
        if max(similarity(word, s) for s in spellings) < self.sound_min_similarity:
            return None
        return (found,)

    def _cutoff(self, n: int) -> float:
        cut = 1.0
        for length, value in self.cutoffs:
            if n >= length:
                cut = value
        return cut

    def _glued(self, word: str) -> Optional[Tuple[str, ...]]:
        """Fewest pieces, all number words or connectors of one language, >= 2 pieces."""
        n = len(word)
        for lang in ("en", "rw"):
            joins = self.connectors.get(lang, frozenset())
            best: List[Optional[Tuple[str, ...]]] = [None] * (n + 1)
            best[0] = ()
            for end in range(3, n + 1):
                for start in range(max(0, end - 16), end - 1):
                    prev = best[start]
                    if prev is None:
                        continue
                    piece = word[start:end]
                    info = self.numbers.get(piece)
                    is_number = info is not None and info[0] == lang and len(piece) >= 3
                    if not is_number and not (piece in joins and prev):
                        continue
                    cand = prev + (piece,)
                    if best[end] is None or len(cand) < len(best[end]):
                        best[end] = cand
            found = best[n]
            if found and len(found) >= 2 and found[-1] not in joins:
                return found
        return None

    def _prefixed(self, word: str) -> Optional[Tuple[str, ...]]:
        for prefix in self.prefixes:
            rest = word[len(prefix):]
            if (word.startswith(prefix) and len(rest) >= self.prefix_min_rest and rest in self.numbers
                    and len(self.numbers[rest][1]) == 1):  # a stem, not a glued "n'" + stem
                return (rest,)
        return None

    def _close(self, word: str) -> Optional[Tuple[str, ...]]:
        if len(word) < self.min_length:
            return None
        found = nearest(word, self.targets, self._cutoff(len(word)), limit=2)
        if not found:
            return None
        best, score = found[0]
        if len(found) > 1 and found[1][1] == score and self.numbers[found[1][0]][1] != self.numbers[best][1]:
            return None  # equally close to two different numbers
        if self.numbers[best][0] == "rw" and len(word) < self.rw_min_length:
            return None
        return (best,)

    def _unit_in_slot(self, word: str) -> Optional[str]:
        """The Kinyarwanda unit form (1-9) an unknown word after mirongo/magana stands for, or None."""
        if not word.isalpha() or len(word) < self.min_length or word in self.real_words:
            return None
        found = nearest(word, self.unit_forms, self.slot_cutoff, limit=2)
        if not found:
            return None
        best, score = found[0]
        if len(found) > 1 and found[1][1] == score and self.numbers[found[1][0]][1] != self.numbers[best][1]:
            return None
        return best

    def _en_unit_in_slot(self, word: str) -> Optional[str]:
        """The English unit (1-9) a word right after a tens word stands for, or None. Real words
        count here ("twinty sex" = 26): after "twenty" only a unit can follow."""
        if not word.isalpha() or len(word) < 3:
            return None
        found = nearest(word, self.en_unit_forms, self.en_slot_cutoff, limit=2)
        if not found:
            return None
        best, score = found[0]
        if len(found) > 1 and found[1][1] == score and self.numbers[found[1][0]][1] != self.numbers[best][1]:
            return None
        return best

    def _resolve(self, word: str) -> Optional[Tuple[str, ...]]:
        if "-" in word:
            joined = word.replace("-", "")
            return (joined,) if joined in self.numbers else None
        if not word.isalpha() or len(word) > MAX_WORD or word in self.real_words:
            return None
        slip = self.keypad.get(word) or self.typed.get(word)
        if slip is not None:
            return (slip,)
        dropped = self.dropped.get(word)
        if dropped is not None:
            return (dropped,)
        return self._glued(word) or self._prefixed(word) or self._close(word) or self._sounds_like(word)
