"""English tutor: grammar practice and vocabulary, for voice calls and SMS.

Two activities alternate (the learner may pick one by saying "grammar" or
"vocabulary"/"amagambo"; then it stays on that one):

* grammar: the tutor gives a prompt ("Tell me a sentence about your family"), the
  learner says a sentence, :func:`grammar_check.check_grammar` finds common errors and
  the tutor answers with the corrected sentence and a short explanation in the
  learner's language, or praises an error-free sentence.
* vocabulary: the tutor presents a new word (meaning, Kinyarwanda translation,
  example) and checks it, alternately by asking for a sentence with the word or by
  asking "What is the English word for <rw>?".

State (``Reply.state``, JSON-serialisable, kept in the ``tutor_state`` slot)::

    {"module": "english", "activity": "grammar"|"vocab", "item": <id>,
     "mode": "sentence"|"use"|"translate", "choice": None|"grammar"|"vocab",
     "vocab_count": int, "turns": int}

``Progress.seen`` holds "g:<prompt id>" and "v:<word id>"; items are not repeated until
every item of that activity has been used.
"""
from __future__ import annotations

import random
import re
from typing import Any, Dict, List, Optional, Sequence, Set

from core import language, texts
from core.fuzzy import edit_distance

from .base import LLMTask, Progress, Reply, Tutor
from . import grammar_check
from .common import MAX_CHARS, copy_progress, fit, load_content_file
from .grammar_check import check_grammar, explain, known_word_ratio, word_forms

POINTS_CORRECT = 10
POINTS_PARTIAL = 5
MAX_LEVEL = 3
LEVEL_UP_STREAK = 5
LEVEL_DOWN_MISSES = 3

GRAMMAR = "grammar"
VOCAB = "vocab"

_GRAMMAR_WORDS = {"grammar", "sentence", "sentences", "interuro", "ikibonezamvugo", "gramatika", "grama"}
_VOCAB_WORDS = {"vocabulary", "vocab", "words", "amagambo", "ijambo", "vocabulaire", "new words"}
_DONT_KNOW = ("i don't know", "i dont know", "idk", "sinzi", "simbizi", "ntabyo nzi", "sinabimenya",
              "ntabwo nzi")
_ARTICLES = {"a", "an", "the", "to"}

def load_vocabulary() -> List[Dict[str, Any]]:
    return list(load_content_file("vocabulary.yml").get("words") or [])


def load_prompts() -> List[Dict[str, Any]]:
    return list(grammar_check.load_grammar_data().get("prompts") or [])


def _quote(sentence: str) -> str:
    """'sentence' with a full stop after it when the sentence has no final punctuation."""
    sentence = sentence.strip()
    return f"'{sentence}'" + ("" if sentence[-1:] in (".", "!", "?") else ".")


def _words(text: str) -> List[str]:
    return re.findall(r"[a-z]+(?:'[a-z]+)?", (text or "").lower().replace("\u2019", "'"))


def matches_word(answer: str, targets: Sequence[str]) -> bool:
    """Tolerant check that ``answer`` gives one of ``targets`` (typos, articles, short sentences)."""
    words = [w for w in _words(answer) if w not in _ARTICLES]
    if not words:
        return False
    joined = " ".join(words)
    for target in targets:
        t = target.lower().strip()
        if not t:
            continue
        if " " in t:
            if re.search(r"\b" + re.escape(t) + r"\b", joined):
                return True
            continue
        for w in words:
            if w == t:
                return True
            if len(t) >= 4 and abs(len(w) - len(t)) <= 2:
                if edit_distance(w, t) <= (1 if len(t) < 8 else 2):
                    return True
    return False


class EnglishTutor(Tutor):
    """Grammar practice with correction, and vocabulary (present, then check)."""

    name = "english"

    def __init__(self, rng: Optional[random.Random] = None):
        self._rng = rng or random.Random()

    # ------------------------------------------------------------------ content
    @staticmethod
    def prompts() -> List[Dict[str, Any]]:
        return load_prompts()

    @staticmethod
    def words() -> List[Dict[str, Any]]:
        return load_vocabulary()

    def _find(self, activity: str, item_id: Any) -> Optional[Dict[str, Any]]:
        items = self.prompts() if activity == GRAMMAR else self.words()
        for it in items:
            if it.get("id") == item_id:
                return it
        return None

    # ------------------------------------------------------------------ interface
    def start(self, lang: str, progress: Progress, state: Optional[Dict[str, Any]] = None) -> Reply:
        lang = language.or_default(lang)
        progress = copy_progress(progress)
        state = dict(state or {})
        if state.get("module") == self.name and self._find(state.get("activity", ""), state.get("item")):
            return Reply([texts.text("english.resume", lang), self.prompt(lang, state)], state, progress)
        choice = self._normalise_choice(state.get("choice") or state.get("activity"))
        new_state: Dict[str, Any] = {"module": self.name, "choice": choice, "vocab_count": 0, "turns": 0}
        messages = [texts.text("english.intro", lang)]
        messages += self._present(choice or GRAMMAR, lang, progress, new_state)
        return Reply(messages, new_state, progress)

    def prompt(self, lang: str, state: Dict[str, Any]) -> str:
        lang = language.or_default(lang)
        item = self._find(state.get("activity", ""), state.get("item"))
        if item is None:
            return texts.text("english.intro", lang)
        if state.get("activity") == GRAMMAR:
            return item[lang]
        ask = self._ask(item, state.get("mode", "use"), lang)
        full = f"{self._presentation(item, lang)} {ask}"
        return full if len(full) <= MAX_CHARS else ask

    def answer(self, text: str, lang: str, progress: Progress, state: Dict[str, Any]) -> Reply:
        lang = language.or_default(lang)
        state = dict(state or {})
        item = self._find(state.get("activity", ""), state.get("item"))
        if state.get("module") != self.name or item is None:
            return self.start(lang, progress, state if state.get("module") == self.name else None)
        progress = copy_progress(progress)
        text = (text or "").strip()

        switch = self._switch_request(text)
        if switch:
            state["choice"] = switch
            ack = texts.text("english." + ("switch_grammar" if switch == GRAMMAR else "switch_vocab"), lang)
            return Reply([ack] + self._present(switch, lang, progress, state), state, progress)
        if " ".join(_words(text)) in _DONT_KNOW:
            return self.hint(lang, progress, state)

        if state["activity"] == GRAMMAR:
            result = self._grade_sentence(text, item, lang)
        elif state.get("mode") == "translate":
            result = self._grade_translation(text, item, lang)
        else:
            result = self._grade_use(text, item, lang)
        feedback, outcome, points, llm = result
        if outcome is None and points == 0:
            # not graded (too short, not English): ask the same item again
            messages = [feedback, item[lang]] if state["activity"] == GRAMMAR else [feedback]
            return Reply(messages, state, progress)

        messages = [feedback]
        level_msg = self._record(progress, outcome, points)
        if level_msg:
            messages.append(texts.text("english.level_up", lang, level=progress.level))
        nxt = state.get("choice") or (VOCAB if state["activity"] == GRAMMAR else GRAMMAR)
        messages += self._present(nxt, lang, progress, state)
        return Reply(messages, state, progress, outcome=outcome, llm_task=llm)

    def hint(self, lang: str, progress: Progress, state: Dict[str, Any]) -> Reply:
        lang = language.or_default(lang)
        state = dict(state or {})
        progress = copy_progress(progress)
        item = self._find(state.get("activity", ""), state.get("item"))
        if item is None:
            return self.start(lang, progress, None)
        if state["activity"] == GRAMMAR:
            start = " ".join(item.get("example", "").rstrip(".!?").split()[:3])
            msg = texts.text("english.hint_grammar", lang, start=start)
        elif state.get("mode") == "translate":
            word = item["word"]
            msg = texts.text("english.hint_translate", lang, first=word[0], length=len(word))
        else:
            msg = texts.text("english.hint_use", lang, example=item["example"], word=item["word"])
        return Reply([fit(msg)], state, progress)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _normalise_choice(value: Any) -> Optional[str]:
        if not isinstance(value, str):
            return None
        v = value.lower().strip()
        if v in (GRAMMAR,) or v in _GRAMMAR_WORDS:
            return GRAMMAR
        if v in (VOCAB,) or v in _VOCAB_WORDS:
            return VOCAB
        return None

    @staticmethod
    def _switch_request(text: str) -> Optional[str]:
        words = _words(text)
        if not words or len(words) > 4:
            return None
        joined = " ".join(words)
        if any(w in _VOCAB_WORDS for w in words) or "new words" in joined:
            return VOCAB
        if any(w in _GRAMMAR_WORDS for w in words):
            return GRAMMAR
        return None

    def _pick(self, items: List[Dict[str, Any]], prefix: str, progress: Progress,
              current: Any = None) -> Dict[str, Any]:
        seen: Set[str] = set(progress.seen)
        unseen = [it for it in items if f"{prefix}{it['id']}" not in seen]
        if not unseen:  # everything used: start a new cycle, avoiding an immediate repeat
            progress.seen = [s for s in progress.seen if not s.startswith(prefix)]
            unseen = [it for it in items if it["id"] != current] or list(items)
        level = max(1, int(progress.level or 1))
        pool = [it for it in unseen if int(it.get("level", 1)) <= level]
        if not pool:  # nothing left at this level: take the easiest remaining items
            easiest = min(int(it.get("level", 1)) for it in unseen)
            pool = [it for it in unseen if int(it.get("level", 1)) == easiest]
        return self._rng.choice(pool)

    def _present(self, activity: str, lang: str, progress: Progress, state: Dict[str, Any]) -> List[str]:
        """Choose the next item of ``activity``, update state/seen, return its messages."""
        current = state.get("item")
        state["turns"] = int(state.get("turns", 0)) + 1
        state["activity"] = activity
        if activity == GRAMMAR:
            item = self._pick(self.prompts(), "g:", progress, current)
            progress.seen.append(f"g:{item['id']}")
            state["item"], state["mode"] = item["id"], "sentence"
            return [item[lang]]
        item = self._pick(self.words(), "v:", progress, current)
        progress.seen.append(f"v:{item['id']}")
        count = int(state.get("vocab_count", 0))
        state["vocab_count"] = count + 1
        state["item"] = item["id"]
        state["mode"] = "use" if count % 2 == 0 else "translate"
        return [fit(self._presentation(item, lang)), self._ask(item, state["mode"], lang)]

    @staticmethod
    def _presentation(item: Dict[str, Any], lang: str) -> str:
        return texts.text("english.present", lang, word=item["word"], rw=item["rw"], meaning=item["meaning"],
                  example=item["example"])

    @staticmethod
    def _ask(item: Dict[str, Any], mode: str, lang: str) -> str:
        if mode == "translate":
            return texts.text("english.ask_translate", lang, rw=item["rw"])
        return texts.text("english.ask_use", lang, word=item["word"])

    @staticmethod
    def _record(progress: Progress, outcome: Optional[bool], points: int) -> bool:
        """Update the counters; True when the learner moved up a level."""
        progress.points += points
        if outcome is None:
            return False
        progress.attempts += 1
        if outcome:
            progress.correct += 1
            progress.streak += 1
            progress.misses = 0
            if progress.streak % LEVEL_UP_STREAK == 0 and progress.level < MAX_LEVEL:
                progress.level += 1
                return True
        else:
            progress.streak = 0
            progress.misses += 1
            if progress.misses % LEVEL_DOWN_MISSES == 0 and progress.level > 1:
                progress.level -= 1
        return False

    # ------------------------------------------------------------------ grading
    def _grade_sentence(self, text: str, item: Dict[str, Any], lang: str):
        words = _words(text)
        if len(words) < 3:
            return texts.text("english.too_short", lang), None, 0, None
        if known_word_ratio(text) < 0.34:
            return texts.text("english.not_english", lang), None, 0, None
        sentence = grammar_check.normalise(text)
        corrections = check_grammar(sentence)
        if not corrections:
            msg = texts.text("english.praise", lang, sentence=_quote(sentence), points=POINTS_CORRECT)
            if len(msg) > MAX_CHARS:
                msg = texts.text("english.praise_short", lang, points=POINTS_CORRECT)
            return msg, True, POINTS_CORRECT, None
        return self._correction_message(sentence, corrections, lang), False, 0, \
            self._llm_task(sentence, corrections, lang)

    @staticmethod
    def _correction_message(sentence: str, corrections: List[grammar_check.Correction], lang: str) -> str:
        first = corrections[0]
        expl = explain(first, lang)
        msg = texts.text("english.almost", lang, corrected=_quote(first.corrected), explanation=expl)
        if len(msg) > MAX_CHARS:
            msg = texts.text("english.almost_short", lang, suggestion=first.suggestion, wrong=first.wrong, explanation=expl)
        return fit(msg)

    def _llm_task(self, sentence: str, corrections: List[grammar_check.Correction], lang: str,
                  index: int = 0) -> LLMTask:
        return LLMTask(
            module=self.name,
            task="grammar_feedback",
            variables={
                "sentence": sentence,
                "corrections": [
                    {"kind": c.kind, "wrong": c.wrong, "suggestion": c.suggestion,
                     "corrected": c.corrected, "explanation": explain(c, lang)}
                    for c in corrections
                ],
                "language": lang,
            },
            replace_index=index,
        )

    @staticmethod
    def _targets(item: Dict[str, Any]) -> Set[str]:
        word = str(item["word"]).lower()
        targets = set(word_forms(word))
        targets.update(str(f).lower() for f in item.get("forms") or [])
        return targets

    def _grade_use(self, text: str, item: Dict[str, Any], lang: str):
        word = item["word"]
        words = _words(text)
        targets = self._targets(item)
        used = any(w in targets for w in words)
        if not used:
            # allow one typo in longer words ("medecine")
            used = any(len(w) >= 5 and edit_distance(w, word.lower()) <= 1 for w in words)
        if not used:
            return fit(texts.text("english.use_missing", lang, word=word, example=item["example"])), False, 0, None
        if len(words) < 3:
            return texts.text("english.use_short", lang, word=word), None, 0, None
        sentence = grammar_check.normalise(text)
        corrections = check_grammar(sentence)
        if not corrections:
            return texts.text("english.use_ok", lang, word=word, points=POINTS_CORRECT), True, POINTS_CORRECT, None
        msg = texts.text("english.use_fix", lang, word=word, corrected=_quote(corrections[0].corrected), points=POINTS_PARTIAL)
        if len(msg) > MAX_CHARS:
            msg = texts.text("english.use_fix", lang, word=word, corrected=_quote(corrections[0].suggestion), points=POINTS_PARTIAL)
        return fit(msg), False, POINTS_PARTIAL, self._llm_task(sentence, corrections, lang)

    def _grade_translation(self, text: str, item: Dict[str, Any], lang: str):
        word = item["word"]
        targets = [word] + [str(f) for f in item.get("forms") or []] + [str(a) for a in item.get("accept") or []]
        targets += sorted(word_forms(word))
        if matches_word(text, targets):
            return texts.text("english.translate_ok", lang, rw=item["rw"], word=word, points=POINTS_CORRECT), True, \
                POINTS_CORRECT, None
        return texts.text("english.translate_wrong", lang, rw=item["rw"], word=word), False, 0, None


__all__ = ["EnglishTutor", "load_vocabulary", "load_prompts", "matches_word"]
