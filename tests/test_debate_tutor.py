"""DebateTutor: topics, side detection, argument structure, counter-arguments, rounds."""
import json
import random

import pytest

from actions.tutoring.base import LLMTask, Progress, Tutor
from actions.tutoring.debate import (AGAINST, FOR, DebateTutor, analyse_argument, detect_side,
                                     infer_side, load_topics)

THEMES = {"school_uniforms", "phones_at_school", "boarding_vs_day", "language_of_instruction",
          "girls_in_science", "homework_every_day", "umuganda_students", "tree_planting",
          "farming_vs_city", "social_media", "school_feeding", "sports_time", "study_abroad",
          "tourism_gorillas", "plastic_bag_ban", "exams"}


@pytest.fixture
def tutor():
    return DebateTutor(rng=random.Random(3))


def topic(topic_id):
    return next(t for t in load_topics() if t["id"] == topic_id)


def state_at(topic_id, stage="side", side=None, **extra):
    return dict({"module": "debate", "topic": topic_id, "stage": stage, "side": side, "rounds": 0}, **extra)


def texts(topic_id, side, lang):
    return [a[lang] for a in topic(topic_id)[side]]


def check_messages(reply):
    for m in reply.messages:
        assert m and len(m) <= 300, m
        assert m.isascii(), m
    json.dumps(reply.state)


# ----------------------------------------------------------------------------- content
def test_topics_content():
    topics = load_topics()
    assert len(topics) >= 16
    ids = [t["id"] for t in topics]
    assert len(ids) == len(set(ids))
    assert THEMES <= set(ids)
    for t in topics:
        for lang in ("en", "rw"):
            assert t["motion"][lang].strip() and t["example"][lang].strip(), t["id"]
            assert t["motion"][lang].isascii() and t["example"][lang].isascii()
        assert t["motion"]["en"] != t["motion"]["rw"]
        for side in (FOR, AGAINST):
            assert 2 <= len(t[side]) <= 3, (t["id"], side)
            for arg in t[side]:
                assert arg["en"].strip() and arg["rw"].strip() and arg["en"] != arg["rw"]
                assert arg["en"].isascii() and arg["rw"].isascii()
                assert len(arg["en"]) <= 200 and len(arg["rw"]) <= 200
        # the example prompt is a model argument: claim, reason and example in both languages
        for lang in ("en", "rw"):
            assert analyse_argument(t["example"][lang]) == {"claim": True, "reason": True, "example": True}, \
                (t["id"], lang)


# ----------------------------------------------------------------------------- sides
@pytest.mark.parametrize("text,side", [
    ("I agree", FOR), ("yes", FOR), ("Yes, because it helps", FOR), ("agree", FOR), ("for", FOR),
    ("I'm for it", FOR), ("I support this", FOR), ("I'm not against it", FOR), ("1", FOR),
    ("I disagree", AGAINST), ("no", AGAINST), ("No. Phones are bad", AGAINST), ("against", AGAINST),
    ("I don't agree", AGAINST), ("i dont agree with this", AGAINST), ("I do not agree because", AGAINST),
    ("I am against it", AGAINST), ("disagree", AGAINST), ("2", AGAINST),
    ("Many people disagree but I agree", FOR),
    # Kinyarwanda
    ("ndabyemera", FOR), ("Ndabyemera kuko", FOR), ("yego", FOR), ("ndabishyigikiye", FOR), ("ni byo", FOR),
    ("simbyemera", AGAINST), ("Simbyemera kuko bihenze", AGAINST), ("oya", AGAINST),
    ("ntabwo ndabyemera", AGAINST), ("sinemera", AGAINST), ("si byo", AGAINST),
    # no side
    ("For example, in my school", None), ("maybe", None), ("", None), ("Uniforms are colours", None),
])
def test_detect_side(text, side):
    assert detect_side(text) == side


@pytest.mark.parametrize("text,side", [
    ("Uniforms are good because they make us equal", FOR),
    ("Phones are bad because they waste time", AGAINST),
    ("Homework is not good for small children", AGAINST),
    ("Kwiga mu Rwanda ni byiza kuko bihendutse", FOR),
    ("Uniforms are blue and white", None),
])
def test_infer_side_from_an_argument(text, side):
    assert infer_side(text) == side


# ----------------------------------------------------------------------------- structure
@pytest.mark.parametrize("text,claim,reason,example", [
    ("I agree because uniforms make us equal. For example, in my school nobody laughs.", True, True, True),
    ("I think phones help us because we can search for information.", True, True, False),
    ("Uniforms are cheap.", True, False, False),
    ("because it is cheap", False, True, False),
    ("For example, in my school", False, False, True),
    ("I disagree. My friend failed an exam after playing games.", True, False, True),
    ("Phones distract students, so they learn less. In my class 20 students have phones.", True, True, True),
    ("Trees are important since they stop erosion, like on the hill near my home.", True, True, True),
    ("Ndabyemera kuko impuzankano zituma tungana. Urugero, mu ishuri ryacu nta wusekwa.", True, True, True),
    ("Simbyemera kuko telefoni zirangaza abanyeshuri.", True, True, False),
    ("Ndatekereza ko siporo ari nziza, nk'umupira w'amaguru.", True, False, True),
    ("kubera ko bihenze", False, True, False),
])
def test_argument_structure(text, claim, reason, example):
    assert analyse_argument(text) == {"claim": claim, "reason": reason, "example": example}


def test_rebuttal_counts_but_as_a_claim():
    assert analyse_argument("but it is expensive", rebuttal=True)["claim"] is True
    assert analyse_argument("ariko bihenze", rebuttal=True)["claim"] is True


def test_like_as_a_verb_is_not_an_example():
    assert analyse_argument("I like phones because they are fun")["example"] is False
    assert analyse_argument("Students like football because it is fun")["example"] is False
    assert analyse_argument("Sports, like football, keep us fit")["example"] is True


# ----------------------------------------------------------------------------- flow
def test_is_a_tutor(tutor):
    assert isinstance(tutor, Tutor) and tutor.name == "debate"


def test_start_presents_a_motion(tutor):
    progress = Progress()
    reply = tutor.start("en", progress)
    t = topic(reply.state["topic"])
    assert reply.state["stage"] == "side" and reply.state["module"] == "debate"
    assert t["motion"]["en"] in reply.messages[-1]
    assert "agree or disagree" in reply.messages[-1]
    assert reply.progress.seen == [t["id"]] and progress.seen == []
    assert reply.outcome is None
    check_messages(reply)


def test_taking_a_side_then_arguing(tutor):
    reply = tutor.answer("yes", "en", Progress(), state_at("school_uniforms"))
    assert reply.outcome is None
    assert reply.state["stage"] == "argue" and reply.state["side"] == FOR
    assert reply.messages[0].startswith("You agree")

    reply = tutor.answer("Uniforms make us equal because everybody looks the same", "en", reply.progress, reply.state)
    assert reply.outcome is True
    assert reply.state["stage"] == "rebut"
    assert reply.progress.points == 10  # claim + reason
    feedback, counter = reply.messages
    assert "your opinion" in feedback and "a reason" in feedback and "add an example" in feedback
    assert any(arg in counter for arg in texts("school_uniforms", AGAINST, "en"))
    assert counter.endswith("What is your reply?")
    check_messages(reply)


def test_counter_argument_comes_from_the_other_side(tutor):
    r = tutor.answer("I disagree because uniforms cost money.", "en", Progress(), state_at("school_uniforms"))
    assert r.state["side"] == AGAINST
    assert any(arg in r.messages[1] for arg in texts("school_uniforms", FOR, "en"))
    r = tutor.answer("Ndabyemera kuko impuzankano zituma tungana.", "rw", Progress(), state_at("school_uniforms"))
    assert r.state["side"] == FOR
    assert any(arg in r.messages[1] for arg in texts("school_uniforms", AGAINST, "rw"))
    assert r.messages[1].startswith("Abandi bavuga bati")


def test_counter_argument_answers_the_learner_point():
    t = topic("school_uniforms")
    # a learner for uniforms who talks about money gets the "uniforms cost money" counter
    idx = DebateTutor.choose_counter(t, FOR, "Uniforms save money for families")
    assert "money" in t[AGAINST][idx]["en"]


def test_llm_task_on_the_counter_argument(tutor):
    r = tutor.answer("I agree because phones help us learn. For example, I use a dictionary app.",
                     "en", Progress(), state_at("phones_at_school"))
    task = r.llm_task
    assert isinstance(task, LLMTask)
    assert (task.module, task.task, task.replace_index) == ("debate", "counter_argument", 1)
    assert set(task.variables) == {"motion", "side", "argument", "language"}
    assert task.variables["side"] == FOR and task.variables["language"] == "en"
    assert task.variables["motion"] == topic("phones_at_school")["motion"]["en"]
    assert r.messages[task.replace_index].startswith("The other side says")


def test_direct_full_argument_scores_all_parts(tutor):
    r = tutor.answer("I agree because uniforms make us equal. For example, in my school nobody laughs at clothes.",
                     "en", Progress(), state_at("school_uniforms"))
    assert r.outcome is True and r.progress.points == 15
    assert r.messages[0].startswith("Excellent")
    assert r.state["stage"] == "rebut"


def test_weak_argument_gets_advice_and_fewer_points(tutor):
    r = tutor.answer("because it is cheap", "en", Progress(), state_at("school_uniforms", "argue", FOR))
    assert r.outcome is False
    assert r.progress.points == 5 and r.progress.attempts == 1 and r.progress.correct == 0
    assert "I think" in r.messages[0] and "For example" in r.messages[0]


def test_too_short_argument_asks_for_more(tutor):
    r = tutor.answer("yes", "en", Progress(), state_at("school_uniforms", "argue", FOR))
    assert r.outcome is None and r.state["stage"] == "argue"
    assert "because" in r.messages[0]


def test_argument_without_side_is_kept_until_the_side_is_known(tutor):
    r = tutor.answer("Uniforms are blue and white in most schools here", "en", Progress(), state_at("school_uniforms"))
    assert r.outcome is None and r.state["stage"] == "side"
    assert "agree or disagree" in r.messages[0]
    r = tutor.answer("I agree", "en", r.progress, r.state)
    assert r.state["stage"] == "rebut" and r.state["side"] == FOR
    assert r.llm_task.variables["argument"].startswith("Uniforms are blue")  # kept from before
    assert r.outcome is False and r.progress.points == 5  # a claim, but no reason and no example
    assert "because" in r.messages[0]


def test_side_inferred_from_a_direct_argument(tutor):
    r = tutor.answer("Phones are bad because they waste time in class", "en", Progress(), state_at("phones_at_school"))
    assert r.state["side"] == AGAINST and r.state["side_inferred"] is True
    assert r.messages[0].startswith("I understand that you disagree")
    assert any(arg in r.messages[1] for arg in texts("phones_at_school", FOR, "en"))


def test_full_round_in_english(tutor):
    progress = Progress()
    r = tutor.start("en", progress)
    first = r.state["topic"]
    r = tutor.answer("I disagree", "en", r.progress, r.state)
    assert r.state["stage"] == "argue"
    r = tutor.answer("I think it is a bad idea because it costs money. For example, my family cannot pay.",
                     "en", r.progress, r.state)
    assert r.outcome is True and r.state["stage"] == "rebut" and r.progress.points == 15
    r = tutor.answer("But I still think so because many families are poor, like my neighbours.", "en",
                     r.progress, r.state)
    assert r.outcome is True and r.state["stage"] == "done" and r.state["rounds"] == 1
    assert r.progress.points == 30 and r.progress.attempts == 2 and r.progress.correct == 2
    assert r.messages[-1].startswith("Well done")
    assert r.llm_task is None
    # the next answer starts an unseen topic
    r = tutor.answer("yes", "en", r.progress, r.state)
    assert r.state["stage"] == "side" and r.state["topic"] != first and r.state["side"] is None
    assert r.progress.seen == [first, r.state["topic"]]
    check_messages(r)


def test_full_round_in_kinyarwanda(tutor):
    r = tutor.start("rw", Progress())
    t = topic(r.state["topic"])
    assert t["motion"]["rw"] in r.messages[-1] and "Urabyemera" in r.messages[-1]
    r = tutor.answer("ndabyemera", "rw", r.progress, r.state)
    assert r.messages[0].startswith("Urabyemera")
    r = tutor.answer("Ndatekereza ko ari byiza kuko bifasha abanyeshuri. Urugero, mu ishuri ryacu.", "rw",
                     r.progress, r.state)
    assert r.outcome is True and r.messages[0].startswith("Byiza cyane")
    assert any(a in r.messages[1] for a in texts(t["id"], AGAINST, "rw"))
    r = tutor.answer("Ariko ndacyatekereza ko ari byiza kuko abana biga neza", "rw", r.progress, r.state)
    assert r.state["stage"] == "done"
    assert "n'impamvu" in r.messages[0]  # "aho uhagaze n'impamvu"
    assert "urugero" in r.messages[0]  # advice to add an example
    assert r.messages[-1].startswith("Wakoze neza")
    check_messages(r)


def test_no_topic_repeats(tutor):
    topics = load_topics()
    r = tutor.start("en", Progress())
    seen = [r.state["topic"]]
    for _ in range(len(topics) - 1):
        r = tutor.answer("I agree because it helps. For example, in my school.", "en", r.progress, r.state)
        r = tutor.answer("But I still think so because it is good.", "en", r.progress, r.state)
        assert r.state["stage"] == "done"
        r = tutor.answer("yes", "en", r.progress, r.state)
        seen.append(r.state["topic"])
    assert sorted(seen) == sorted(t["id"] for t in topics)
    # all used: a new cycle, but not the topic just finished
    r = tutor.answer("I agree because it helps.", "en", r.progress, r.state)
    r = tutor.answer("But it is good since it helps.", "en", r.progress, r.state)
    r = tutor.answer("yes", "en", r.progress, r.state)
    assert r.state["topic"] != seen[-1]
    assert r.progress.seen == [r.state["topic"]]


def test_hints_and_prompts_per_stage(tutor):
    p = Progress(points=7)
    t = topic("tree_planting")
    h = tutor.hint("en", p, state_at("tree_planting"))
    assert h.outcome is None and t["example"]["en"] in h.messages[0] and h.progress.points == 7
    h = tutor.hint("en", p, state_at("tree_planting", "argue", AGAINST))
    assert t[AGAINST][0]["en"] in h.messages[0]
    h = tutor.hint("rw", p, state_at("tree_planting", "rebut", FOR, counter=0))
    assert t[FOR][1]["rw"] in h.messages[0]

    assert t["motion"]["en"] in tutor.prompt("en", state_at("tree_planting"))
    assert t["motion"]["rw"] in tutor.prompt("rw", state_at("tree_planting", "argue", FOR))
    assert t[AGAINST][1]["en"] in tutor.prompt("en", state_at("tree_planting", "rebut", FOR, counter=1))
    assert "new topic" in tutor.prompt("en", state_at("tree_planting", "done", FOR))


def test_answer_without_state_starts(tutor):
    r = tutor.answer("hello", "en", Progress(), {})
    assert r.state["stage"] == "side" and r.outcome is None


def test_all_messages_fit_sms(tutor):
    answers = ["yes", "I agree because it is good. For example, in my school.", "but no", "ok",
               "Simbyemera kuko bihenze. Urugero, iwacu nta mafaranga.", "Ariko ni byiza kuko bifasha", "yego",
               "no", "hmm", "Students need this because they learn more, like my sister who studies every day."]
    for lang in ("en", "rw"):
        r = tutor.start(lang, Progress())
        for text in answers * 3:
            r = tutor.answer(text, lang, r.progress, r.state)
            check_messages(r)
            check_messages(tutor.hint(lang, r.progress, r.state))
            assert len(tutor.prompt(lang, r.state)) <= 300
