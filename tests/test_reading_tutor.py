"""ReadingTutor (actions/tutoring/reading.py, content actions/content/stories.yml)."""
import json
import random

import pytest

from actions.tutoring.base import LLMTask, Progress, Reply, Tutor
from actions.tutoring.reading import (
    ReadingTutor,
    is_correct,
    load_content,
    normalize,
    reading_level,
    sentences,
)

LANGS = ("en", "rw")
STORIES = load_content()["stories"]


@pytest.fixture
def tutor():
    return ReadingTutor(random.Random(11))


def story(story_id):
    return next(s for s in STORIES if s["id"] == story_id)


def question(story_id, index):
    return story(story_id)["questions"][index]


def state_at(story_id, q=0, score=0):
    return {"module": "reading", "story": story_id, "q": q, "score": score, "phase": "question", "finished": False}


def all_messages_ok(reply):
    for message in reply.messages:
        assert message.strip()
        assert len(message) <= 300, message
        assert message.isascii(), message
        assert "{" not in message and "}" not in message, message


# --- content -----------------------------------------------------------------------------------

def test_is_a_tutor_named_reading(tutor):
    assert isinstance(tutor, Tutor)
    assert tutor.name == "reading"


def test_at_least_twelve_stories_with_unique_ids():
    assert len(STORIES) >= 12
    ids = [s["id"] for s in STORIES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("s", STORIES, ids=lambda s: s["id"])
def test_story_is_short_and_in_both_languages(s):
    for lang in LANGS:
        text = s["text"][lang]
        assert s["title"][lang].strip()
        assert 3 <= len(sentences(text)) <= 5, (lang, text)
        assert len(text.split()) < 60, (lang, len(text.split()))
        assert text.isascii(), (lang, text)
    assert s["text"]["en"] != s["text"]["rw"]


@pytest.mark.parametrize("s", STORIES, ids=lambda s: s["id"])
def test_story_has_three_questions_with_answers_and_explanations(s):
    assert len(s["questions"]) == 3
    for q in s["questions"]:
        for lang in LANGS:
            assert q["q"][lang].strip().endswith("?") or q["q"][lang].strip().endswith("."), q["q"][lang]
            assert q["answers"][lang], (q["q"]["en"], lang)
            assert all(str(a).strip() for a in q["answers"][lang])
            assert q["explain"][lang].strip()
            for text in [q["q"][lang], q["explain"][lang]] + [str(a) for a in q["answers"][lang]]:
                assert text.isascii(), text
        assert q["q"]["en"] != q["q"]["rw"]


@pytest.mark.parametrize("s", STORIES, ids=lambda s: s["id"])
def test_answers_are_in_the_story_and_in_the_explanation(s, tutor):
    for index, q in enumerate(s["questions"]):
        for lang in LANGS:
            # the explanation states the right answer
            assert is_correct(q, q["explain"][lang]), (s["id"], index, lang)
            # some sentence of the story (in each language) holds it: that is the clue
            assert any(is_correct(q, sentence) for sentence in sentences(s["text"][lang])), (s["id"], index, lang)
            clue = tutor.clue(s, index, lang)
            assert clue.startswith("Clue: listen again:" if lang == "en" else "Inama: ongera wumve aha:")
            assert is_correct(q, clue)
            assert len(clue) <= 300


def test_rwandan_settings():
    text = json.dumps(STORIES)
    for word in ("Kimironko", "Huye", "Umuganda", "Girinka", "Kivu", "Musanze", "Nyungwe", "Bakame", "ingagi"):
        assert word in text, word


# --- tolerant grading ------------------------------------------------------------------------

def test_normalize_ignores_case_punctuation_and_accents():
    assert normalize("  Kimirónko MARKET!!! ") == "kimironko market"
    assert normalize("y'ishuri, 10sacks") == "y ishuri 10 sacks"


@pytest.mark.parametrize("story_id,index,text", [
    ("kimironko_market", 0, "Kimironko market"),
    ("kimironko_market", 0, "she went to the MARKET."),
    ("kimironko_market", 0, "ku isoko"),                   # Kinyarwanda answer
    ("kimironko_market", 1, "bananas"),
    ("kimironko_market", 1, "ibishyimbo"),
    ("kimironko_market", 2, "They waited under a tree"),
    ("girinka_cow", 1, "5 litres"),
    ("girinka_cow", 1, "litiro eshanu"),
    ("girinka_cow", 2, "they sell it"),
    ("girinka_cow", 2, "barayagurisha abaturanyi"),        # stem inside a longer Kinyarwanda verb
    ("maize_harvest", 0, "corn"),                          # synonym
    ("maize_harvest", 0, "ibigori"),
    ("maize_harvest", 1, "10"),
    ("maize_harvest", 1, "icumi"),
    ("football_savings", 2, "cumi na bibiri"),
    ("gorillas", 0, "gorrilas"),                           # typo
    ("gorillas", 0, "Ingagi!"),
    ("gorillas", 2, "to stay quiet"),
    ("gorillas", 2, "don't go close"),
    ("reading_club", 1, "Bakame the hare"),
    ("reading_club", 1, "a rabbit"),
    ("coffee_hills", 0, "cofee"),                          # typo
    ("coffee_hills", 1, "zitukuye"),
    ("bus_to_huye", 0, "his grandmothr"),                  # typo
    ("bus_to_huye", 2, "sweet potatos"),                   # typo
    ("health_centre", 1, "to the hospital"),
    ("health_centre", 1, "kwa muganga"),
    ("tailor_muhanga", 0, "she is a tailer"),              # typo
    ("tailor_muhanga", 2, "school fees"),
    ("lake_kivu", 0, "Lake Kivú"),                         # accent
])
def test_right_answers_are_accepted(story_id, index, text):
    assert is_correct(question(story_id, index), text)


@pytest.mark.parametrize("story_id,index,text", [
    ("kimironko_market", 0, "Nyabugogo"),
    ("kimironko_market", 1, "rice and sugar"),
    ("maize_harvest", 0, "beans"),
    ("maize_harvest", 1, "4"),
    ("maize_harvest", 2, "ten"),
    ("gorillas", 0, "elephants"),
    ("lake_kivu", 2, "his uncle"),
    ("girinka_cow", 2, "they drink it"),
    ("coffee_hills", 1, "green"),
    ("reading_club", 2, "her sister"),
    ("tea_farm", 1, "at night"),
    ("solar_lamp", 0, "a torch"),
    ("health_centre", 0, "a broken leg"),
    ("umuganda", 1, "maize"),
    ("bus_to_huye", 1, "six hours"),
])
def test_wrong_answers_are_rejected(story_id, index, text):
    assert not is_correct(question(story_id, index), text)


# --- flow --------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGS)
def test_start_tells_the_story_then_asks_question_one(tutor, lang):
    reply = tutor.start(lang, Progress())
    assert isinstance(reply, Reply)
    all_messages_ok(reply)
    first = STORIES[0]
    assert reply.state == {"module": "reading", "story": first["id"], "q": 0, "score": 0,
                           "phase": "question", "finished": False}
    assert reply.progress.seen == [first["id"]]
    assert reply.outcome is None
    body = " ".join(reply.messages[1:-1])
    assert first["title"][lang] in body
    assert first["text"][lang] in body
    assert reply.messages[-1].endswith(first["questions"][0]["q"][lang])
    assert reply.messages[-1].startswith("Question 1:" if lang == "en" else "Ikibazo cya mbere:")
    json.dumps(reply.state)


@pytest.mark.parametrize("lang", LANGS)
def test_every_story_start_fits_short_messages(lang):
    tutor = ReadingTutor(random.Random(1))
    progress = Progress()
    for _ in STORIES:
        reply = tutor.start(lang, progress)
        all_messages_ok(reply)
        assert all(len(m) <= 160 for m in tutor.story_messages(lang, reply.state))
        progress = reply.progress
    assert sorted(progress.seen) == sorted(s["id"] for s in STORIES)


@pytest.mark.parametrize("lang", LANGS)
def test_full_story_run_to_the_summary_and_the_next_story(tutor, lang):
    reply = tutor.start(lang, Progress())
    sid = reply.state["story"]
    qs = story(sid)["questions"]

    # 1: right (answered in the other language's words, still right)
    other = "rw" if lang == "en" else "en"
    reply = tutor.answer(qs[0]["answers"][other][0], lang, reply.progress, reply.state)
    assert reply.outcome is True and reply.llm_task is None
    assert reply.progress.points == 10 and reply.progress.correct == 1 and reply.progress.streak == 1
    assert reply.state["q"] == 1 and reply.state["score"] == 1
    assert reply.messages[-1].endswith(qs[1]["q"][lang])
    assert reply.messages[-1].startswith("Question 2:" if lang == "en" else "Ikibazo cya kabiri:")

    # 2: wrong: the explanation, then question 3 (one try only)
    reply = tutor.answer("xylophone", lang, reply.progress, reply.state)
    assert reply.outcome is False
    assert qs[1]["explain"][lang] in reply.messages[0]
    assert reply.messages[-1].endswith(qs[2]["q"][lang])
    assert reply.state["q"] == 2 and reply.state["score"] == 1
    assert reply.progress.streak == 0 and reply.progress.misses == 1 and reply.progress.attempts == 2
    task = reply.llm_task
    assert isinstance(task, LLMTask)
    assert task.module == "reading" and task.task == "explain_answer"
    assert reply.messages[task.replace_index] == reply.messages[0]
    assert task.variables == {"story": story(sid)["text"][lang], "question": qs[1]["q"][lang],
                              "learner_answer": "xylophone", "right_answer": qs[1]["explain"][lang],
                              "language": lang}

    # 3: right (the explanation itself is a right answer): summary and offer
    reply = tutor.answer(qs[2]["explain"][lang], lang, reply.progress, reply.state)
    assert reply.outcome is True
    assert reply.state["phase"] == "offer" and reply.state["finished"] is True
    summary = reply.messages[-1]
    assert ("You got 2 out of 3." if lang == "en" else "Wabonye 2 kuri 3.") in summary
    assert ("Want another story?" if lang == "en" else "Urashaka indi nkuru?") in summary
    assert reply.progress.attempts == 3 and reply.progress.correct == 2 and reply.progress.points == 20
    assert tutor.prompt(lang, reply.state) == load_content()["texts"]["offer"][lang]
    all_messages_ok(reply)

    # the next turn, whatever it says, tells an unseen story
    reply = tutor.answer("yes" if lang == "en" else "yego", lang, reply.progress, reply.state)
    assert reply.outcome is None
    assert reply.state["story"] != sid and reply.state["q"] == 0 and reply.state["finished"] is False
    assert reply.progress.seen == [sid, reply.state["story"]]
    assert reply.progress.attempts == 3
    assert reply.messages[-1].endswith(story(reply.state["story"])["questions"][0]["q"][lang])
    all_messages_ok(reply)


def test_start_after_a_story_picks_an_unseen_one(tutor):
    first = tutor.start("en", Progress())
    second = tutor.start("en", first.progress, first.state)
    assert second.state["story"] != first.state["story"]
    assert len(second.progress.seen) == 2


def test_all_stories_seen_tells_the_oldest_again(tutor):
    ids = [s["id"] for s in STORIES]
    seen = ids[3:] + ids[:3]  # ids[3] told longest ago
    reply = tutor.start("en", Progress(seen=seen))
    assert reply.state["story"] == ids[3]
    assert reply.progress.seen[-1] == ids[3] and len(reply.progress.seen) == len(ids)


def test_a_perfect_story_and_kinyarwanda_feedback(tutor):
    reply = tutor.start("rw", Progress())
    for q in story(reply.state["story"])["questions"]:
        reply = tutor.answer(q["answers"]["rw"][0], "rw", reply.progress, reply.state)
        assert reply.outcome is True
        assert "amanota 10" in reply.messages[0]
    assert "Wabonye 3 kuri 3." in reply.messages[-1]
    assert reply.progress.points == 30 and reply.progress.streak == 3


def test_empty_answer_is_not_graded(tutor):
    state = state_at("umuganda", q=1)
    progress = Progress(attempts=1)
    reply = tutor.answer(" ?! ", "en", progress, state)
    assert reply.outcome is None and reply.progress == progress and reply.state == state
    assert question("umuganda", 1)["q"]["en"] in reply.messages[0]


def test_prompt_repeats_the_current_question(tutor):
    state = state_at("lake_kivu", q=2)
    assert tutor.prompt("en", state) == "Question 3: Who fried the fish?"
    assert tutor.prompt("rw", state) == "Ikibazo cya gatatu: Ni nde wakaranze amafi?"
    assert tutor.prompt("en", {}) == load_content()["texts"]["no_story"]["en"]


def test_story_messages_repeat_the_story(tutor):
    messages = tutor.story_messages("rw", state_at("gorillas"))
    assert messages[0].startswith("Inkuru: Ingagi zo mu birunga.")
    assert story("gorillas")["text"]["rw"] in " ".join(messages)


@pytest.mark.parametrize("lang,expected", [
    ("en", 'Clue: listen again: "His aunt fried the fish, and the whole family ate together."'),
    ("rw", 'Inama: ongera wumve aha: "Nyirasenge yarayakaranze, maze umuryango wose urya hamwe."'),
])
def test_hint_gives_the_sentence_that_holds_the_answer(tutor, lang, expected):
    state = state_at("lake_kivu", q=2)
    progress = Progress(attempts=2, correct=1)
    reply = tutor.hint(lang, progress, state)
    assert reply.messages == [expected]
    assert reply.state == state and reply.progress == progress and reply.outcome is None


def test_hint_picks_the_sentence_closest_to_the_explanation(tutor):
    reply = tutor.hint("en", Progress(), state_at("tailor_muhanga", q=0))
    assert reply.messages == ['Clue: listen again: "Nyiramana is a tailor in Muhanga."']


def test_hint_after_the_summary_invites_a_new_story(tutor):
    state = dict(state_at("lake_kivu", q=3, score=2), phase="offer", finished=True)
    reply = tutor.hint("en", Progress(), state)
    assert reply.messages == [load_content()["texts"]["offer_hint"]["en"]]


def test_answer_without_a_story_starts_one(tutor):
    reply = tutor.answer("hello", "en", Progress(), {})
    assert reply.outcome is None and reply.state["q"] == 0 and reply.progress.attempts == 0


def test_level_grows_every_three_completed_stories(tutor):
    assert [reading_level(n) for n in (0, 3, 8, 9, 17, 18, 27, 36, 300)] == [1, 1, 1, 2, 2, 3, 4, 5, 5]
    reply = tutor.start("en", Progress())
    for n_story in range(3):
        for q in story(reply.state["story"])["questions"]:
            reply = tutor.answer(q["answers"]["en"][0], "en", reply.progress, reply.state)
        if n_story < 2:
            assert reply.progress.level == 1
            reply = tutor.answer("yes", "en", reply.progress, reply.state)
    assert reply.progress.level == 2
    assert "You are now at reading level 2." in reply.messages[-1]
    assert reply.progress.points == 90 and reply.progress.attempts == 9


def test_answer_does_not_mutate_its_inputs(tutor):
    state = state_at("umuganda", q=0)
    progress = Progress(seen=["umuganda"])
    tutor.answer("Saturday", "en", progress, state)
    assert state == state_at("umuganda", q=0)
    assert progress == Progress(seen=["umuganda"])
