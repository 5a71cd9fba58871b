"""Reading comprehension tutor: short Rwandan stories, three questions each.

Content (stories, questions, accepted answers, explanations and the tutor's phrases)
lives in ``actions/content/stories.yml``.

Flow: ``start`` tells a story (title, then the text in chunks of at most ~160
characters) and asks question 1. Every ``answer`` is graded once (one try per
question), gets feedback (praise and points, or the explanation of the right answer)
and the next question; after question 3 comes a summary (x/3) and an offer of another
story. The next ``answer`` (whatever it says) or ``start`` then tells an unseen story.

Grading is tolerant: case, punctuation and accents are ignored; an answer is right when
it holds every word of one accepted answer (words of either language), allowing small
typos (core.fuzzy similarity) and Kinyarwanda prefixes/suffixes around a stem of 5+ letters.

Scoring: 10 points per right answer; ``attempts``/``correct`` count questions;
``streak``/``misses`` count consecutive right/wrong answers; ``level`` is
``stories completed // 3 + 1`` (max 5), where stories completed = ``attempts // 3``.
``Progress.seen`` holds the ids of the stories already told (oldest first); when all
were told, the one told longest ago comes again.

State (the ``tutor_state`` slot), JSON only::

    {"module": "reading", "story": "umuganda", "q": 0..3, "score": 0..3,
     "phase": "question" | "offer", "finished": false | true}

``finished`` is true once the summary of a story was given (``phase`` "offer").
"""
from __future__ import annotations

import random
import re
import unicodedata
from typing import Any, Dict, List, Optional, Sequence

from actions.tutoring.base import LLMTask, Progress, Reply, Tutor
from actions.tutoring.common import copy_progress, load_content_file
from core import language, texts
from core.fuzzy import similarity

QUESTIONS_PER_STORY = 3
POINTS_PER_ANSWER = 10
STORIES_PER_LEVEL = 3
MAX_LEVEL = 5
CHUNK = 160  # aim for one SMS segment per story message

# Words that carry no answer (dropped from accepted answers, not from the learner's text).
STOPWORDS = {
    "a", "an", "the", "of", "to", "in", "on", "at", "and", "for", "with", "is", "was", "it",
    "by", "his", "her", "their", "too", "go", "day",
    "na", "ku", "mu", "kuri", "ya", "wa", "ba", "y", "w", "z", "cy", "by", "bw", "rw", "ry", "k", "n",
}


def load_content() -> Dict[str, Any]:
    """The parsed ``stories.yml``."""
    return load_content_file("stories.yml")


# --- tolerant matching ----------------------------------------------------------------

def normalize(text: str) -> str:
    """Lower case, no accents, only letters, digits and single spaces."""
    text = unicodedata.normalize("NFKD", str(text or "")).encode("ascii", "ignore").decode("ascii")
    return " ".join(re.findall(r"[a-z]+|\d+", text.lower()))


def tokens(text: str) -> List[str]:
    return normalize(text).split()


def _key_tokens(phrase: str) -> List[str]:
    words = tokens(phrase)
    kept = [w for w in words if w not in STOPWORDS]
    return kept or words


def word_matches(key: str, word: str) -> bool:
    """Is the learner's ``word`` the accepted ``key`` word (allowing small typos)?"""
    if key == word:
        return True
    if key.isdigit() or word.isdigit():
        return False
    if len(key) <= 3:
        return word in (key + "s", key + "es") or key in (word + "s", word + "es")
    if len(key) >= 5 and key in word:  # a stem inside a longer (Kinyarwanda) word
        return True
    if abs(len(key) - len(word)) > 3:
        return False
    return similarity(key, word) >= 0.8


def phrase_matches(phrase: str, words: Sequence[str]) -> bool:
    """Does the learner's text (``words``) hold every key word of ``phrase``?"""
    keys = _key_tokens(phrase)
    return bool(keys) and all(any(word_matches(k, w) for w in words) for k in keys)


def accepted_answers(question: Dict[str, Any]) -> List[str]:
    answers = question.get("answers") or {}
    return [str(a) for lang in language.SUPPORTED for a in (answers.get(lang) or [])]


def is_correct(question: Dict[str, Any], text: str) -> bool:
    """Grade ``text`` against the question's accepted answers (both languages)."""
    words = tokens(text)
    return any(phrase_matches(answer, words) for answer in accepted_answers(question))


def sentences(text: str) -> List[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", str(text).strip()) if s.strip()]


def chunk_sentences(parts: Sequence[str], limit: int = CHUNK) -> List[str]:
    """Pack sentences into messages of at most ``limit`` characters (a longer sentence
    stands alone)."""
    chunks: List[str] = []
    for part in parts:
        if chunks and len(chunks[-1]) + 1 + len(part) <= limit:
            chunks[-1] += " " + part
        else:
            chunks.append(part)
    return chunks


class ReadingTutor(Tutor):
    name = "reading"

    def __init__(self, rng: Optional[random.Random] = None) -> None:
        self.rng = rng if rng is not None else random.Random()
        self.content = load_content()
        self.stories: List[Dict[str, Any]] = list(self.content["stories"])
        self.by_id: Dict[str, Dict[str, Any]] = {s["id"]: s for s in self.stories}

    # --- texts -------------------------------------------------------------------

    def question_text(self, story: Dict[str, Any], index: int, lang: str) -> str:
        ordinals = texts.value("reading.ordinals", lang)
        return texts.text("reading.question", lang, n=index + 1, nth=ordinals[index], q=story["questions"][index]["q"][lang])

    def story_messages(self, lang: str, state: Dict[str, Any]) -> List[str]:
        """The current story (title and text), as messages of about one SMS each."""
        story = self._story(state)
        if story is None:
            return []
        lang = language.or_default(lang)
        title = texts.text("reading.title", lang, title=story["title"][lang])
        return chunk_sentences([title] + sentences(story["text"][lang]))

    def clue(self, story: Dict[str, Any], index: int, lang: str) -> str:
        """The content hint, or the sentence of the story that holds the answer."""
        question = story["questions"][index]
        if question.get("hint"):
            return texts.text("reading.clue_text", lang, hint=question["hint"][lang])
        best, best_score = None, 0
        explain_words = set(_key_tokens(question["explain"][lang]))
        for sentence in sentences(story["text"][lang]):
            words = tokens(sentence)
            if not any(phrase_matches(a, words) for a in accepted_answers(question)):
                continue
            score = 1 + len(explain_words & set(words))  # closest to the explanation wins
            if score > best_score:
                best, best_score = sentence, score
        if best is None:
            return texts.text("reading.clue_text", lang, hint=question["explain"][lang])
        return texts.text("reading.clue", lang, sentence=best)

    # --- stories -------------------------------------------------------------------

    def _story(self, state: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        if not state or state.get("module", self.name) != self.name:
            return None
        return self.by_id.get(state.get("story"))

    @staticmethod
    def _question_index(state: Dict[str, Any]) -> Optional[int]:
        """The index of the question being asked; None once the story's summary was given."""
        if state.get("phase") == "offer":
            return None
        index = int(state.get("q", 0))
        return index if index < QUESTIONS_PER_STORY else None

    def pick_story(self, seen: Sequence[str], avoid: Optional[str] = None) -> Dict[str, Any]:
        """The first story not told yet; else the one told longest ago (not ``avoid``)."""
        told = set(seen)
        for story in self.stories:
            if story["id"] not in told and story["id"] != avoid:
                return story
        for story_id in seen:
            if story_id in self.by_id and story_id != avoid:
                return self.by_id[story_id]
        return next(s for s in self.stories if s["id"] != avoid) if len(self.stories) > 1 else self.stories[0]

    def _tell_new_story(self, lang: str, progress: Progress, state: Optional[Dict[str, Any]], opening: str) -> Reply:
        p = copy_progress(progress)
        current = self._story(state)
        story = self.pick_story(p.seen, avoid=current["id"] if current else None)
        p.seen = [s for s in p.seen if s != story["id"]] + [story["id"]]
        st = {"module": self.name, "story": story["id"], "q": 0, "score": 0, "phase": "question", "finished": False}
        messages = [texts.text("reading." + opening, lang)] + self.story_messages(lang, st) + [self.question_text(story, 0, lang)]
        return Reply(messages=messages, state=st, progress=p)

    # --- Tutor interface -------------------------------------------------------------

    def start(self, lang: str, progress: Progress, state: Optional[Dict[str, Any]] = None) -> Reply:
        return self._tell_new_story(language.or_default(lang), progress, state, "intro")

    def prompt(self, lang: str, state: Dict[str, Any]) -> str:
        lang = language.or_default(lang)
        story = self._story(state)
        if story is None:
            return texts.text("reading.no_story", lang)
        index = self._question_index(state)
        if index is None:
            return texts.text("reading.offer", lang)
        return self.question_text(story, index, lang)

    def hint(self, lang: str, progress: Progress, state: Dict[str, Any]) -> Reply:
        lang = language.or_default(lang)
        story = self._story(state)
        if story is None:
            return self.start(lang, progress, state)
        index = self._question_index(state)
        message = texts.text("reading.offer_hint", lang) if index is None else self.clue(story, index, lang)
        return Reply(messages=[message], state=dict(state), progress=copy_progress(progress))

    def answer(self, text: str, lang: str, progress: Progress, state: Dict[str, Any]) -> Reply:
        lang = language.or_default(lang)
        story = self._story(state)
        if story is None:
            return self.start(lang, progress, state)
        index = self._question_index(state)
        if index is None:
            return self._tell_new_story(lang, progress, state, "next_story")

        question = story["questions"][index]
        if not tokens(text):
            return Reply(messages=[texts.text("reading.not_understood", lang, question=self.question_text(story, index, lang))],
                         state=dict(state), progress=copy_progress(progress))

        p = copy_progress(progress)
        st = dict(state)
        correct = is_correct(question, text)
        p.attempts += 1
        llm_task = None
        if correct:
            p.correct += 1
            p.points += POINTS_PER_ANSWER
            p.streak += 1
            p.misses = 0
            st["score"] = int(st.get("score", 0)) + 1
            feedback = f"{self.rng.choice(texts.value('reading.praise', lang))} " \
                       f"{texts.text('reading.points', lang, points=POINTS_PER_ANSWER)}"
        else:
            p.streak = 0
            p.misses += 1
            feedback = texts.text("reading.wrong", lang, explain=question["explain"][lang])
            llm_task = LLMTask(
                module=self.name,
                task="explain_answer",
                variables={
                    "story": story["text"][lang],
                    "question": question["q"][lang],
                    "learner_answer": str(text),
                    "right_answer": question["explain"][lang],
                    "language": lang,
                },
                replace_index=0,
            )
        messages = [feedback]
        st["q"] = index + 1
        if st["q"] < QUESTIONS_PER_STORY:
            messages.append(self.question_text(story, st["q"], lang))
        else:
            old_level = p.level
            p.level = max(old_level, reading_level(p.attempts))
            comments = texts.value("reading.comments", lang)
            score = int(st["score"])
            summary = texts.text("reading.summary", lang, score=score, comment=comments[min(score, len(comments) - 1)])
            if p.level > old_level:
                summary += " " + texts.text("reading.level_up", lang, level=p.level)
            messages.append(summary + " " + texts.text("reading.offer", lang))
            st["phase"] = "offer"
            st["finished"] = True
        return Reply(messages=messages, state=st, progress=p, outcome=correct, llm_task=llm_task)


def reading_level(attempts: int) -> int:
    """Level from the number of questions answered: stories completed // 3 + 1 (max 5)."""
    completed = attempts // QUESTIONS_PER_STORY
    return min(MAX_LEVEL, completed // STORIES_PER_LEVEL + 1)
