"""Debate tutor: take a side, build an argument (claim, reason, example), answer a counter-argument.

Flow of one round (``state["stage"]``)::

    "side"   the motion is presented; the learner takes a side ("I agree", "simbyemera",
             "no", ...) or argues directly ("I agree because ...")
    "argue"  the side is known; the learner gives the argument
    "rebut"  the argument got structure feedback and a counter-argument from the other
             side; the learner replies
    "done"   the reply got structure feedback; the round is over. The next answer (or
             start) presents a new, unseen topic.

Structure feedback checks three parts - a claim (a stance or opinion), a reason
(because/kuko/kubera/since/so/bityo...) and an example (for example/urugero/nka/like,
numbers, personal experience such as "in my school") - and gives points for each.

State (JSON-serialisable): ``{"module": "debate", "topic": id, "stage": ..., "side":
"for"|"against"|None, "counter": int|None, "pending": str, "side_inferred": bool,
"rounds": int}``. ``Progress.seen`` holds topic ids.
"""
from __future__ import annotations

import random
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from core import language, texts

from .base import LLMTask, Progress, Reply, Tutor
from .common import copy_progress, fit, load_content_file

POINTS_PER_PART = 5
PARTS = ("claim", "reason", "example")

FOR = "for"
AGAINST = "against"

STAGE_SIDE = "side"
STAGE_ARGUE = "argue"
STAGE_REBUT = "rebut"
STAGE_DONE = "done"

# ---------------------------------------------------------------------------
# Side detection. Tier 1: first-person stances anywhere; tier 2: a stance word that
# opens the answer ("Yes, because ..."); tier 3: bare agree/disagree anywhere.
# Within a tier the earliest match wins (so "I don't agree" beats "agree").
# ---------------------------------------------------------------------------
_TIER1 = [
    (r"i (?:do not|don't|dont) agree", AGAINST), (r"i (?:do not|don't|dont) support", AGAINST),
    (r"i (?:do not|don't|dont) think so", AGAINST), (r"i think (?:no|not)", AGAINST),
    (r"i(?: am|'m| m|m) not (?:for|in favou?r)", AGAINST), (r"i(?: am|'m| m|m) not against", FOR),
    (r"i disagree", AGAINST), (r"i(?: am|'m| m|m) against", AGAINST), (r"i oppose", AGAINST),
    (r"we disagree", AGAINST), (r"i(?: am|'m| m|m) not agree", AGAINST),
    (r"i agree", FOR), (r"we agree", FOR), (r"i(?: am|'m| m|m) (?:for|in favou?r)", FOR),
    (r"i support", FOR), (r"i think so", FOR), (r"i think yes", FOR), (r"i(?: am|'m| m|m) agree", FOR),
    # Kinyarwanda
    (r"ntabwo (?:nd?abyemera|nemera|mbyemera|mbishyigikiye|ndabishyigikiye)", AGAINST),
    (r"simbyemera", AGAINST), (r"sinemera", AGAINST), (r"simbishyigikiye", AGAINST),
    (r"sinshyigikiye", AGAINST), (r"ndabirwanya", AGAINST), (r"ndwanya", AGAINST),
    (r"ntibikwiye", AGAINST),
    (r"ndabyemera", FOR), (r"ndemera", FOR), (r"ndabishyigikiye", FOR), (r"ndashyigikiye", FOR),
    (r"birakwiye", FOR),
]
_TIER2 = [  # only when the answer starts with them
    (r"(?:no|nope|not really|false|wrong|against|disagree|oya|si byo|nta?bwo)", AGAINST),
    (r"(?:yes|yeah|yep|yup|of course|sure|true|right|for(?! example| instance)|agree|correct|yego|ni byo|nibyo|cyane)", FOR),
]
_TIER3 = [
    (r"(?:don't|dont|do not|not) agree", AGAINST), (r"disagree", AGAINST),
    (r"agree", FOR),
]
_NUMBER_CHOICE = {"1": FOR, "2": AGAINST}

# Polarity cues, used only when no side was stated ("Uniforms are good because ...").
_NEG_CUES = [r"not good", r"no good", r"not useful", r"not important", r"not fair", r"should ?n[o']t",
             r"shouldnt", r"must not", r"mustn't", r"don't need", r"no need", r"bad", r"worse", r"worst",
             r"harmful", r"dangerous", r"waste", r"wastes", r"problem", r"problems", r"never",
             r"si byiza", r"ni bibi", r"bibi", r"ntibikwiye", r"ntabwo ari byiza", r"byangiza",
             r"ibibazo", r"ikibazo"]
_POS_CUES = [r"good", r"great", r"better", r"best", r"important", r"useful", r"helpful", r"helps?",
             r"should", r"must", r"needs?", r"benefits?", r"fair", r"ni byiza", r"ni ngombwa",
             r"bifasha", r"bikwiye", r"akamaro", r"byiza"]

# Structure markers (regexes on normalised lowercase text).
_OPINION = [r"i think", r"i believe", r"in my opinion", r"my opinion", r"i feel", r"i am sure",
            r"i'm sure", r"i still think", r"should", r"shouldn't", r"must", r"(?:is|are) (?:not )?(?:good|bad|better|worse|important|useful|necessary|fair|wrong|right)",
            r"ndatekereza", r"ntekereza", r"mbona", r"nkeka", r"ku bwanjye", r"nizera", r"ndacyatekereza",
            r"bikwiye", r"ni byiza", r"si byiza", r"ni bibi", r"ni ngombwa", r"ndacyemera"]
_REBUT_CLAIM = [r"but", r"however", r"that is not true", r"that's not true", r"not true", r"i still",
                r"ariko", r"nyamara", r"si byo", r"si ukuri"]
_REASON = [r"because", r"becuz", r"bcz", r"since", r"therefore", r"as a result", r"that is why",
           r"that's why", r"this is why", r"the reason", r"due to", r"in order to", r"this means",
           r"which means", r"that means", r"cause", r"cos", r"coz", r", so", r"so that",
           r"so (?:i|we|they|he|she|it|you|students|children|people|the|many|our|my|their|there|all|every)",
           r"kuko", r"kubera", r"bityo", r"ni yo mpamvu", r"niyo mpamvu", r"impamvu", r"kugira ngo",
           r"bitewe", r"ni cyo gituma", r"nicyo gituma", r"bigatuma", r"bituma", r"kuberako"]
_EXAMPLE = [r"for example", r"for instance", r"such as", r"e\.? ?g\.?", r"an example", r"example",
            r"(?:in|at) my (?:school|class|village|family|home|town|area|community|country|district|church|sector|cell)",
            r"at school", r"in our (?:school|class|village|family|town|area|community|country|district)",
            r"my (?:friend|friends|brother|sister|mother|father|teacher|cousin|uncle|aunt|neighbou?r|parents|grandmother|grandfather|classmate|classmates|mum|mom|dad)",
            r"when i", r"i saw", r"i have seen", r"i remember", r"last (?:year|week|month|term|time)",
            r"yesterday",
            r"urugero", r"nka", r"nko", r"nk'[a-z]+", r"mu ishuri ryacu", r"mu ishuri ryanjye",
            r"iwacu", r"mu mudugudu wacu", r"inshuti yanjye", r"mukuru wanjye", r"murumuna wanjye",
            r"mushiki wanjye", r"musaza wanjye", r"mama", r"papa", r"data", r"umwaka ushize",
            r"ukwezi gushize", r"ejo hashize", r"nabonye", r"ndibuka"]
_NUMBER_WORDS = r"(?:two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty|fifty|hundred|thousand|million|half|percent)"
_LIKE_BLOCKERS = {"i", "you", "we", "they", "he", "she", "don't", "dont", "do", "does", "doesn't", "would",
                  "to", "not", "really", "also", "students", "people", "children", "i'd", "we'd", "just",
                  "they'd", "who", "girls", "boys", "parents", "teachers", "still", "n't", "didn't"}
_STOP = {"that", "this", "with", "have", "they", "their", "there", "from", "because", "more", "when",
         "what", "will", "would", "should", "about", "some", "many", "them", "then", "than", "also",
         "very", "like", "think", "agree", "disagree", "students", "student"}

def load_topics() -> List[Dict[str, Any]]:
    return list(load_content_file("debate_topics.yml").get("topics") or [])


def normalise(text: str) -> str:
    t = (text or "").lower().replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    t = re.sub(r"[^a-z0-9',.?!% ]+", " ", t)
    return re.sub(r"\s+", " ", t).strip()


def _find(patterns: Sequence[Tuple[str, str]], text: str, anchored: bool = False) -> Optional[Tuple[int, int, str]]:
    best: Optional[Tuple[int, int, str]] = None
    for pat, side in patterns:
        rx = (r"^" if anchored else r"(?<![a-z'])") + r"(?:" + pat + r")(?![a-z])"
        m = re.search(rx, text)
        if m and (best is None or m.start() < best[0] or (m.start() == best[0] and m.end() > best[1])):
            best = (m.start(), m.end(), side)
    return best


def detect_side(text: str) -> Optional[str]:
    """"for", "against" or None, from an explicit stance in English or Kinyarwanda."""
    t = normalise(text)
    if not t:
        return None
    stripped = t.strip(" .!?")
    if stripped in _NUMBER_CHOICE:
        return _NUMBER_CHOICE[stripped]
    for tier, anchored in ((_TIER1, False), (_TIER2, True), (_TIER3, False)):
        hit = _find(tier, t, anchored=anchored)
        if hit:
            return hit[2]
    return None


def infer_side(text: str) -> Optional[str]:
    """Guess the side of an argument that states none, from positive/negative words."""
    t = normalise(text)
    neg = 0
    for pat in _NEG_CUES:
        found = re.findall(r"(?<![a-z'])" + pat + r"(?![a-z])", t)
        if found:
            neg += len(found)
            t = re.sub(r"(?<![a-z'])" + pat + r"(?![a-z])", " ", t)
    pos = sum(len(re.findall(r"(?<![a-z'])" + pat + r"(?![a-z])", t)) for pat in _POS_CUES)
    if pos > neg:
        return FOR
    if neg > pos:
        return AGAINST
    return None


def _has(patterns: Sequence[str], text: str) -> bool:
    return any(re.search(r"(?<![a-z'])(?:" + p + r")(?![a-z])", text) for p in patterns)


def _first_pos(patterns: Sequence[str], text: str) -> int:
    pos = len(text)
    for p in patterns:
        m = re.search(r"(?<![a-z'])(?:" + p + r")(?![a-z])", text)
        if m:
            pos = min(pos, m.start())
    return pos


def _has_like_example(text: str) -> bool:
    words = text.replace(",", " ").split()
    for i, w in enumerate(words):
        if w == "like" and i > 0 and i + 1 < len(words) and words[i - 1] not in _LIKE_BLOCKERS:
            return True
    return False


def analyse_argument(text: str, rebuttal: bool = False) -> Dict[str, bool]:
    """Which parts an argument has: {"claim": bool, "reason": bool, "example": bool}."""
    t = normalise(text)
    words = t.split()
    reason = _has(_REASON, t)
    example = _has(_EXAMPLE, t) or bool(re.search(r"\d", t)) or \
        bool(re.search(r"(?<![a-z])" + _NUMBER_WORDS + r"(?![a-z])", t)) or _has_like_example(t)
    stance = _find(_TIER1, t) is not None or _find(_TIER2, t, anchored=True) is not None or \
        _find(_TIER3, t) is not None
    claim = stance or _has(_OPINION, t) or (rebuttal and _has(_REBUT_CLAIM, t))
    if not claim and words:
        # a statement before the first reason/example ("Uniforms are cheap because ...")
        first = min(_first_pos(_REASON, t), _first_pos(_EXAMPLE, t))
        before = t[:first].split()
        claim = len(before) >= 3
    return {"claim": bool(claim), "reason": bool(reason), "example": bool(example)}


def _content_words(text: str) -> set:
    return {w for w in re.findall(r"[a-z]{4,}", normalise(text)) if w not in _STOP}


class DebateTutor(Tutor):
    """Structured debate practice on topics relevant to learners in Rwanda."""

    name = "debate"

    def __init__(self, rng: Optional[random.Random] = None):
        self._rng = rng or random.Random()

    # ------------------------------------------------------------------ content
    @staticmethod
    def topics() -> List[Dict[str, Any]]:
        return load_topics()

    def _topic(self, topic_id: Any) -> Optional[Dict[str, Any]]:
        for t in self.topics():
            if t.get("id") == topic_id:
                return t
        return None

    # ------------------------------------------------------------------ interface
    def start(self, lang: str, progress: Progress, state: Optional[Dict[str, Any]] = None) -> Reply:
        lang = language.or_default(lang)
        progress = copy_progress(progress)
        state = dict(state or {})
        if state.get("module") == self.name and self._topic(state.get("topic")) and \
                state.get("stage") in (STAGE_SIDE, STAGE_ARGUE, STAGE_REBUT):
            return Reply([texts.text("debate.resume", lang), self.prompt(lang, state)], state, progress)
        new_state = {"module": self.name, "rounds": int(state.get("rounds", 0)) if state.get("module") == self.name else 0}
        messages = [texts.text("debate.intro", lang), self._new_topic(lang, progress, new_state, state.get("topic"))]
        return Reply(messages, new_state, progress)

    def prompt(self, lang: str, state: Dict[str, Any]) -> str:
        lang = language.or_default(lang)
        topic = self._topic(state.get("topic"))
        if topic is None:
            return texts.text("debate.intro", lang)
        stage = state.get("stage")
        motion = topic["motion"][lang]
        if stage == STAGE_ARGUE:
            return fit(texts.text("debate.argue_prompt", lang, motion=motion))
        if stage == STAGE_REBUT:
            return self._counter_message(topic, state, lang)
        if stage == STAGE_DONE:
            return texts.text("debate.done", lang)
        return fit(texts.text("debate.motion", lang, motion=motion))

    def answer(self, text: str, lang: str, progress: Progress, state: Dict[str, Any]) -> Reply:
        lang = language.or_default(lang)
        state = dict(state or {})
        topic = self._topic(state.get("topic"))
        if state.get("module") != self.name or topic is None:
            return self.start(lang, progress, None)
        progress = copy_progress(progress)
        text = (text or "").strip()
        stage = state.get("stage", STAGE_SIDE)

        if stage == STAGE_DONE:
            return Reply([self._new_topic(lang, progress, state, state.get("topic"))], state, progress)

        if stage == STAGE_SIDE:
            return self._on_side(text, lang, progress, state, topic)

        if stage == STAGE_ARGUE:
            if len(normalise(text).split()) < 3:
                return Reply([texts.text("debate.argue_more", lang)], state, progress)
            explicit = detect_side(text)
            if explicit:
                state["side"] = explicit  # the learner may change their mind
            return self._score_and_counter(text, lang, progress, state, topic)

        # STAGE_REBUT
        if len(normalise(text).split()) < 3:
            return Reply([texts.text("debate.argue_more", lang)], state, progress)
        parts = analyse_argument(text, rebuttal=True)
        feedback, points, outcome = self._feedback(parts, lang)
        self._record(progress, outcome, points)
        state["stage"] = STAGE_DONE
        state["rounds"] = int(state.get("rounds", 0)) + 1
        state["last_parts"] = parts
        return Reply([feedback, texts.text("debate.done", lang)], state, progress, outcome=outcome)

    def hint(self, lang: str, progress: Progress, state: Dict[str, Any]) -> Reply:
        lang = language.or_default(lang)
        state = dict(state or {})
        progress = copy_progress(progress)
        topic = self._topic(state.get("topic"))
        if topic is None:
            return self.start(lang, progress, None)
        stage = state.get("stage")
        side = state.get("side")
        if stage in (STAGE_ARGUE, STAGE_REBUT) and side in (FOR, AGAINST):
            ideas = topic[side]
            idx = 1 if stage == STAGE_REBUT and len(ideas) > 1 else 0
            key = "hint_rebut" if stage == STAGE_REBUT else "hint_argue"
            msg = texts.text("debate." + key, lang, idea=ideas[idx][lang])
        elif stage == STAGE_DONE:
            msg = texts.text("debate.done", lang)
        else:
            msg = texts.text("debate.hint_side", lang, example=topic["example"][lang])
        return Reply([fit(msg)], state, progress)

    # ------------------------------------------------------------------ flow
    def _on_side(self, text: str, lang: str, progress: Progress, state: Dict[str, Any],
                 topic: Dict[str, Any]) -> Reply:
        words = normalise(text).split()
        side = detect_side(text)
        pending = state.pop("pending", "")
        inferred = False
        if side is None and len(words) >= 5:
            side = infer_side(text)
            inferred = side is not None
        if side is None:
            if len(words) >= 5:
                state["pending"] = text  # keep their argument until we know the side
            return Reply([texts.text("debate.ask_side", lang)], state, progress)
        state["side"] = side
        state["side_inferred"] = inferred
        argument = f"{pending} {text}".strip() if pending else text
        parts = analyse_argument(argument)
        # Kinyarwanda needs fewer words: "Ndabyemera kuko zituma tungana" is already an argument
        is_argument = bool(pending) or (len(words) >= 4 and (parts["reason"] or parts["example"])) \
            or len(words) >= 10
        if not is_argument:
            state["stage"] = STAGE_ARGUE
            return Reply([texts.text("debate." + ("side_for" if side == FOR else "side_against"), lang)], state, progress)
        return self._score_and_counter(argument, lang, progress, state, topic, inferred=inferred)

    def _score_and_counter(self, argument: str, lang: str, progress: Progress, state: Dict[str, Any],
                           topic: Dict[str, Any], inferred: bool = False) -> Reply:
        parts = analyse_argument(argument)
        feedback, points, outcome = self._feedback(parts, lang)
        if inferred:
            feedback = fit(texts.text("debate." + ("inferred_for" if state["side"] == FOR else "inferred_against"), lang) + " " + feedback)
        self._record(progress, outcome, points)
        state["counter"] = self.choose_counter(topic, state["side"], argument)
        state["stage"] = STAGE_REBUT
        state["last_parts"] = parts
        counter_msg = self._counter_message(topic, state, lang)
        llm = LLMTask(
            module=self.name,
            task="counter_argument",
            variables={"motion": topic["motion"][lang], "side": state["side"], "argument": argument,
                       "language": lang},
            replace_index=1,
        )
        return Reply([feedback, counter_msg], state, progress, outcome=outcome, llm_task=llm)

    def _new_topic(self, lang: str, progress: Progress, state: Dict[str, Any], current: Any = None) -> str:
        topics = self.topics()
        seen = set(progress.seen)
        unseen = [t for t in topics if t["id"] not in seen]
        if not unseen:  # all done: start again, but not with the topic just finished
            ids = {t["id"] for t in topics}
            progress.seen = [s for s in progress.seen if s not in ids]
            unseen = [t for t in topics if t["id"] != current] or list(topics)
        topic = self._rng.choice(unseen)
        progress.seen.append(topic["id"])
        for key in ("side", "counter", "pending", "side_inferred", "last_parts"):
            state.pop(key, None)
        state.update({"module": self.name, "topic": topic["id"], "stage": STAGE_SIDE, "side": None})
        return fit(texts.text("debate.motion", lang, motion=topic["motion"][lang]))

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def choose_counter(topic: Dict[str, Any], side: str, argument: str) -> int:
        """Index of the opposite side's argument that best answers ``argument``."""
        opposite = topic[AGAINST if side == FOR else FOR]
        words = _content_words(argument)
        best, best_score = 0, -1
        for i, arg in enumerate(opposite):
            score = len(words & (_content_words(arg["en"]) | _content_words(arg["rw"])))
            if score > best_score:
                best, best_score = i, score
        return best

    def _counter_message(self, topic: Dict[str, Any], state: Dict[str, Any], lang: str) -> str:
        side = state.get("side") or FOR
        opposite = topic[AGAINST if side == FOR else FOR]
        idx = int(state.get("counter") or 0) % len(opposite)
        return fit(texts.text("debate.counter", lang, argument=opposite[idx][lang]))

    @staticmethod
    def _join(items: List[str], lang: str) -> str:
        conj = texts.text("debate.and", lang)
        if len(items) <= 1:
            return "".join(items)
        last = items[-1]
        if lang == "rw" and last[:1] in "aeiou":
            tail = f"n'{last}"  # na + impamvu -> n'impamvu
        else:
            tail = f"{conj} {last}"
        return f"{', '.join(items[:-1])} {tail}"

    def _feedback(self, parts: Dict[str, bool], lang: str) -> Tuple[str, int, bool]:
        present = [p for p in PARTS if parts.get(p)]
        missing = [p for p in PARTS if not parts.get(p)]
        points = POINTS_PER_PART * len(present)
        outcome = len(present) >= 2
        if not missing:
            return texts.text("debate.all_parts", lang, points=points), points, outcome
        advice = self._join([texts.text(f"debate.advice_{p}", lang) for p in missing], lang)
        if not present:
            return fit(texts.text("debate.no_parts", lang, advice=advice)), points, outcome
        names = self._join([texts.text("debate." + p, lang) for p in present], lang)
        return fit(texts.text("debate.some_parts", lang, present=names, advice=advice, points=points)), points, outcome

    @staticmethod
    def _record(progress: Progress, outcome: bool, points: int) -> None:
        progress.points += points
        progress.attempts += 1
        if outcome:
            progress.correct += 1
            progress.streak += 1
            progress.misses = 0
        else:
            progress.streak = 0
            progress.misses += 1


__all__ = ["DebateTutor", "load_topics", "detect_side", "infer_side", "analyse_argument"]
