"""EnglishTutor: grammar practice with corrections, vocabulary, alternation, points, no repeats."""
import json
import random
from collections import Counter

import pytest

from actions.tutoring.base import LLMTask, Progress, Reply, Tutor
from actions.tutoring.english import EnglishTutor, load_prompts, load_vocabulary, matches_word
from actions.tutoring.grammar_check import check_grammar, word_forms

REQUIRED_TOPICS = {"school", "market", "farm", "health", "weather", "feelings"}


@pytest.fixture
def tutor():
    return EnglishTutor(rng=random.Random(7))


def vocab_state(word_id, mode="use", choice=None):
    return {"module": "english", "activity": "vocab", "item": word_id, "mode": mode, "choice": choice,
            "vocab_count": 1, "turns": 1}


def grammar_state(prompt_id="family", choice=None):
    return {"module": "english", "activity": "grammar", "item": prompt_id, "mode": "sentence",
            "choice": choice, "vocab_count": 0, "turns": 1}


def check_messages(reply):
    for m in reply.messages:
        assert m and len(m) <= 300, m
        assert m.isascii(), m
    json.dumps(reply.state)


# ----------------------------------------------------------------------------- content
def test_vocabulary_content():
    words = load_vocabulary()
    assert len(words) >= 40
    ids = [w["id"] for w in words]
    assert len(ids) == len(set(ids))
    assert REQUIRED_TOPICS <= {w["topic"] for w in words}
    for w in words:
        for key in ("word", "meaning", "rw", "example"):
            assert isinstance(w[key], str) and w[key].strip(), (w["id"], key)
            assert w[key].isascii(), (w["id"], key)
        # the example really uses the word, and is good English
        forms = word_forms(w["word"]) | {str(f).lower() for f in w.get("forms") or []}
        example_words = w["example"].lower().replace(".", " ").replace(",", " ").split()
        assert forms & set(example_words), w["id"]
        assert check_grammar(w["example"]) == [], w["example"]


def test_grammar_prompts_content():
    prompts = load_prompts()
    assert len(prompts) >= 10
    assert len({p["id"] for p in prompts}) == len(prompts)
    for p in prompts:
        assert p["en"].strip() and p["rw"].strip() and p["en"] != p["rw"]
        assert p["en"].isascii() and p["rw"].isascii()
        assert check_grammar(p["example"]) == [], p["example"]
    ids = {p["id"] for p in prompts}
    assert {"family", "yesterday"} <= ids


# ----------------------------------------------------------------------------- interface
def test_is_a_tutor(tutor):
    assert isinstance(tutor, Tutor)
    assert tutor.name == "english"


def test_start_presents_a_grammar_prompt(tutor):
    progress = Progress()
    reply = tutor.start("en", progress)
    assert isinstance(reply, Reply) and reply.outcome is None
    assert reply.state["module"] == "english" and reply.state["activity"] == "grammar"
    prompt = next(p for p in load_prompts() if p["id"] == reply.state["item"])
    assert reply.messages[-1] == prompt["en"]
    assert reply.progress.seen == [f"g:{prompt['id']}"]
    assert progress.seen == []  # the caller's progress is not mutated
    check_messages(reply)


def test_start_in_kinyarwanda(tutor):
    reply = tutor.start("rw", Progress())
    prompt = next(p for p in load_prompts() if p["id"] == reply.state["item"])
    assert reply.messages[-1] == prompt["rw"]
    assert "Icyongereza" in reply.messages[0]


def test_start_with_a_chosen_activity(tutor):
    reply = tutor.start("en", Progress(), {"choice": "vocabulary"})
    assert reply.state["activity"] == "vocab" and reply.state["choice"] == "vocab"


def test_prompt_repeats_the_current_question(tutor):
    reply = tutor.start("en", Progress())
    assert tutor.prompt("en", reply.state) == reply.messages[-1]
    state = vocab_state("market", "translate")
    assert tutor.prompt("en", state).endswith("What is the English word for 'isoko'?")
    assert "isoko" in tutor.prompt("rw", state)


# ----------------------------------------------------------------------------- grammar
def test_correct_sentence_is_praised_and_echoed(tutor):
    reply = tutor.answer("My mother is a teacher.", "en", Progress(), grammar_state())
    assert reply.outcome is True
    assert "'My mother is a teacher.'" in reply.messages[0]
    assert reply.progress.points == 10 and reply.progress.correct == 1 and reply.progress.attempts == 1
    assert reply.progress.streak == 1
    assert reply.llm_task is None
    # activities alternate: a new word comes next
    assert reply.state["activity"] == "vocab"
    check_messages(reply)


def test_error_is_corrected_with_explanation(tutor):
    reply = tutor.answer("My mother work on a farm.", "en", Progress(), grammar_state())
    assert reply.outcome is False
    assert "My mother works on a farm." in reply.messages[0]
    assert "-s" in reply.messages[0]
    assert reply.progress.points == 0 and reply.progress.attempts == 1 and reply.progress.misses == 1
    task = reply.llm_task
    assert isinstance(task, LLMTask)
    assert (task.module, task.task, task.replace_index) == ("english", "grammar_feedback", 0)
    assert set(task.variables) == {"sentence", "corrections", "language"}
    assert task.variables["corrections"][0]["suggestion"] == "works"
    json.dumps(task.variables)
    check_messages(reply)


def test_feedback_in_kinyarwanda_keeps_english_sentence(tutor):
    reply = tutor.answer("Yesterday I go to the market.", "rw", Progress(), grammar_state("yesterday"))
    assert reply.outcome is False
    msg = reply.messages[0]
    assert msg.startswith("Hafi!")
    assert "Yesterday I went to the market." in msg
    assert "igihe cyashize" in msg  # the explanation is in Kinyarwanda
    assert reply.llm_task.variables["language"] == "rw"


@pytest.mark.parametrize("text", ["yes", "", "ok thanks"])
def test_too_short_is_not_graded(tutor, text):
    state = grammar_state()
    reply = tutor.answer(text, "en", Progress(), state)
    assert reply.outcome is None
    assert reply.state["item"] == "family" and reply.progress.attempts == 0
    assert reply.messages[-1] == "Tell me a sentence about your family."


def test_kinyarwanda_answer_asks_for_english(tutor):
    reply = tutor.answer("Mama ni umwarimu mwiza cyane", "rw", Progress(), grammar_state())
    assert reply.outcome is None
    assert "Cyongereza" in reply.messages[0]
    assert reply.state["item"] == "family"


# ----------------------------------------------------------------------------- switching
@pytest.mark.parametrize("word,lang,activity", [
    ("vocabulary", "en", "vocab"), ("amagambo", "rw", "vocab"), ("new words please", "en", "vocab"),
    ("grammar", "en", "grammar"), ("interuro", "rw", "grammar"),
])
def test_learner_chooses_the_activity(tutor, word, lang, activity):
    start = grammar_state() if activity == "vocab" else vocab_state("market")
    reply = tutor.answer(word, lang, Progress(), start)
    assert reply.outcome is None
    assert reply.state["activity"] == activity and reply.state["choice"] == activity


def test_chosen_activity_is_kept(tutor):
    reply = tutor.answer("vocabulary", "en", Progress(), grammar_state())
    for _ in range(4):
        reply = tutor.answer("I like this word very much.", "en", reply.progress, reply.state)
        assert reply.state["activity"] == "vocab"


def test_activities_alternate_by_default(tutor):
    reply = tutor.start("en", Progress())
    activities = [reply.state["activity"]]
    for _ in range(5):
        reply = tutor.answer("I go to school every day.", "en", reply.progress, reply.state)
        activities.append(reply.state["activity"])
    assert activities == ["grammar", "vocab", "grammar", "vocab", "grammar", "vocab"]


# ----------------------------------------------------------------------------- vocabulary
def test_vocabulary_presentation_and_check(tutor):
    reply = tutor.answer("I go to school every day.", "en", Progress(), grammar_state())
    word = next(w for w in load_vocabulary() if w["id"] == reply.state["item"])
    present, ask = reply.messages[-2], reply.messages[-1]
    for part in (word["word"], word["rw"], word["meaning"], word["example"]):
        assert part in present
    assert word["word"] in ask if reply.state["mode"] == "use" else word["rw"] in ask
    assert f"v:{word['id']}" in reply.progress.seen


def test_vocabulary_check_modes_alternate(tutor):
    reply = tutor.start("en", Progress(), {"choice": "vocab"})
    modes = [reply.state["mode"]]
    for _ in range(3):
        reply = tutor.answer("nothing", "en", reply.progress, reply.state)
        modes.append(reply.state["mode"])
    assert modes == ["use", "translate", "use", "translate"]


@pytest.mark.parametrize("text", ["I buy beans at the market.", "There are two markets in our town.",
                                  "We go to the market on Friday"])
def test_use_in_a_sentence_correct(tutor, text):
    reply = tutor.answer(text, "en", Progress(), vocab_state("market"))
    assert reply.outcome is True
    assert reply.progress.points == 10
    assert "market" in reply.messages[0]


def test_use_with_grammar_error_gets_partial_points(tutor):
    reply = tutor.answer("My mother go to the market.", "en", Progress(), vocab_state("market"))
    assert reply.outcome is False
    assert reply.progress.points == 5
    assert "My mother goes to the market." in reply.messages[0]
    assert reply.llm_task.task == "grammar_feedback"


def test_use_inflected_verb(tutor):
    reply = tutor.answer("Yesterday my mother bought rice.", "en", Progress(), vocab_state("buy"))
    assert reply.outcome is True


def test_use_without_the_word(tutor):
    reply = tutor.answer("I like to play football.", "en", Progress(), vocab_state("market"))
    assert reply.outcome is False and reply.progress.points == 0
    assert "I buy beans at the market." in reply.messages[0]


def test_use_single_word_asks_for_a_sentence(tutor):
    reply = tutor.answer("market", "en", Progress(), vocab_state("market"))
    assert reply.outcome is None
    assert reply.state["item"] == "market"


@pytest.mark.parametrize("word_id,answer", [
    ("market", "market"), ("market", "Market."), ("market", "the market"), ("market", "It is market"),
    ("market", "markit"), ("sick", "ill"), ("medicine", "medecine"), ("buy", "to buy"),
    ("neighbour", "neighbor"), ("beans", "bean"),
])
def test_translation_is_graded_tolerantly(tutor, word_id, answer):
    reply = tutor.answer(answer, "en", Progress(), vocab_state(word_id, "translate"))
    assert reply.outcome is True, answer
    assert reply.progress.points == 10


@pytest.mark.parametrize("word_id,answer", [("market", "isoko"), ("market", "school"), ("cow", "goat"),
                                            ("sun", "son")])
def test_wrong_translation(tutor, word_id, answer):
    reply = tutor.answer(answer, "rw", Progress(), vocab_state(word_id, "translate"))
    assert reply.outcome is False
    word = next(w for w in load_vocabulary() if w["id"] == word_id)
    assert f"'{word['word']}'" in reply.messages[0]
    assert reply.messages[0].startswith("Si byo")


def test_matches_word_helper():
    assert matches_word("the farm", ["farm"])
    assert not matches_word("", ["farm"])
    assert matches_word("good health", ["good health"])
    assert not matches_word("cat", ["cow"])


# ----------------------------------------------------------------------------- no repeats
def test_no_word_is_repeated_until_all_are_used(tutor):
    words = load_vocabulary()
    reply = tutor.start("en", Progress(), {"choice": "vocab"})
    shown = [reply.state["item"]]
    for _ in range(len(words) - 1):
        reply = tutor.answer("I do not know this word at all.", "en", reply.progress, reply.state)
        shown.append(reply.state["item"])
    assert sorted(shown) == sorted(w["id"] for w in words)
    # every word used: a new cycle starts, without repeating the last one immediately
    last = shown[-1]
    reply = tutor.answer("I do not know this word at all.", "en", reply.progress, reply.state)
    assert reply.state["item"] != last
    assert Counter(s for s in reply.progress.seen if s.startswith("v:"))[f"v:{reply.state['item']}"] == 1


def test_no_prompt_is_repeated(tutor):
    prompts = load_prompts()
    reply = tutor.start("en", Progress(level=3), {"choice": "grammar"})
    shown = [reply.state["item"]]
    for _ in range(len(prompts) - 1):
        reply = tutor.answer("I go to school every day.", "en", reply.progress, reply.state)
        shown.append(reply.state["item"])
    assert len(set(shown)) == len(prompts)


def test_level_one_gets_easy_items_first(tutor):
    reply = tutor.start("en", Progress(level=1), {"choice": "vocab"})
    levels = {w["id"]: w["level"] for w in load_vocabulary()}
    for _ in range(10):
        assert levels[reply.state["item"]] == 1
        reply = tutor.answer("nothing", "en", reply.progress, reply.state)


# ----------------------------------------------------------------------------- progress, hints
def test_level_up_after_a_streak(tutor):
    reply = tutor.start("en", Progress(), {"choice": "grammar"})
    for _ in range(5):
        reply = tutor.answer("I go to school every day.", "en", reply.progress, reply.state)
    assert reply.progress.streak == 5 and reply.progress.level == 2
    assert any("Level up" in m for m in reply.messages)
    assert reply.progress.points == 50


def test_hints(tutor):
    progress = Progress(points=3)
    r = tutor.hint("en", progress, grammar_state("family"))
    assert r.outcome is None and "My mother is" in r.messages[0]
    assert r.state["item"] == "family" and r.progress.points == 3
    r = tutor.hint("en", progress, vocab_state("market", "translate"))
    assert "'m'" in r.messages[0] and "6 letters" in r.messages[0]
    r = tutor.hint("rw", progress, vocab_state("market", "use"))
    assert r.messages[0].startswith("Inama") and "I buy beans at the market." in r.messages[0]


def test_dont_know_gives_a_hint(tutor):
    r = tutor.answer("sinzi", "rw", Progress(), grammar_state("family"))
    assert r.outcome is None and r.messages[0].startswith("Inama")


def test_answer_without_state_starts(tutor):
    r = tutor.answer("hello there friend", "en", Progress(), {})
    assert r.state["module"] == "english" and r.outcome is None


def test_long_session_messages_fit_sms(tutor):
    answers = ["My father work in Kigali.", "market", "I am student.", "I have two cat.",
               "Yesterday I go to the market and buy rice.", "vocabulary", "cow", "The cow gives milk.",
               "grammar", "My sister is a nurse at the hospital in Huye and she helps many sick people every day."]
    for lang in ("en", "rw"):
        reply = tutor.start(lang, Progress())
        check_messages(reply)
        for text in answers * 2:
            reply = tutor.answer(text, lang, reply.progress, reply.state)
            check_messages(reply)
            check_messages(tutor.hint(lang, reply.progress, reply.state))
            assert len(tutor.prompt(lang, reply.state)) <= 300
