"""The module actions with a real (SQLite) progress store and the fake LLM server:
the LLM enriches a reply when it works, and its failures never reach the learner."""
import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import llm
from infra import progress_store
from actions.module_actions import ActionStartModule, ValidateTutorForm

DOMAIN = {"slots": {}, "forms": {"tutor_form": {"required_slots": ["answer"]}}}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("PROGRESS_DB_URL", f"sqlite:///{tmp_path / 'progress.db'}")
    monkeypatch.setenv("PROGRESS_SPOOL_PATH", str(tmp_path / "progress-queue.sqlite"))
    for key in ("LLM_BASE_URL", "OPENAI_BASE_URL", "LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    progress_store.reset_store()
    llm.reset_llm()
    yield
    progress_store.reset_store()
    llm.reset_llm()


def tracker(text, intent, slots, sender="learner-abc", candidates=()):
    """A tracker as Rasa sends it; `candidates` are slots just extracted (to validate)."""
    message = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": []}
    events = [{"event": "user", "text": text, "parse_data": message}]
    events += [{"event": "slot", "name": k, "value": slots[k]} for k in candidates]
    return Tracker(
        sender_id=sender, slots=slots, latest_message=message,
        events=events, paused=False, followup_action=None, active_loop={"name": "tutor_form"},
        latest_action_name="action_listen",
    )


async def start_reading(language="en"):
    dispatcher = CollectingDispatcher()
    events = await ActionStartModule().run(dispatcher, tracker("read me a story", "start_reading", {"language": language}), DOMAIN)
    return dict({e["name"]: e["value"] for e in events if e["event"] == "slot"}, language=language)


async def wrong_reading_answer(slots):
    dispatcher = CollectingDispatcher()
    slots = dict(slots, answer="a red car", requested_slot="answer")
    events = await ValidateTutorForm().run(dispatcher, tracker("a red car", "answer", slots, candidates=["answer"]), DOMAIN)
    return [m["text"] for m in dispatcher.messages], events


async def test_offline_without_llm_explains_from_the_bundled_content():
    texts, _ = await wrong_reading_answer(await start_reading())
    assert texts[0].startswith("Not quite.")


async def test_llm_reply_replaces_the_explanation(fake_openai, monkeypatch):
    monkeypatch.setenv("LLM_BASE_URL", fake_openai.url)
    fake_openai.configure(mode="ok", reply="Keza went to the market with her mother on Saturday.")
    slots = await start_reading()
    texts, _ = await wrong_reading_answer(dict(slots, name="Aline"))
    assert texts[0] == "Keza went to the market with her mother on Saturday."
    sent = fake_openai.all_text()
    assert "a red car" in sent  # the learner's text went as data
    assert "Aline" not in sent  # never the learner's name


@pytest.mark.parametrize("mode", ["http_error", "garbage", "refusal"])
async def test_llm_failures_fall_back_to_the_bundled_content(fake_openai, monkeypatch, mode):
    monkeypatch.setenv("LLM_BASE_URL", fake_openai.url)
    fake_openai.configure(mode=mode)
    texts, events = await wrong_reading_answer(await start_reading())
    assert texts[0].startswith("Not quite.")
    assert len(fake_openai.requests) >= 1  # the LLM was tried


async def test_llm_timeout_falls_back(fake_openai, monkeypatch):
    monkeypatch.setenv("LLM_BASE_URL", fake_openai.url)
    monkeypatch.setenv("LLM_TIMEOUT", "0.5")
    fake_openai.configure(mode="slow", delay=3)
    texts, _ = await wrong_reading_answer(await start_reading("rw"))
    assert texts[0].startswith("Si byo.")


async def test_progress_is_kept_between_turns():
    slots = await start_reading()
    _, events = await wrong_reading_answer(slots)
    summary = await progress_store.get_store().summary("learner-abc")
    assert summary["reading"].attempts == 1 and summary["reading"].correct == 0


# ---------------------------------------------------------------- off-topic inside a lesson

async def start(module, language="en"):
    dispatcher = CollectingDispatcher()
    intent = f"start_{module}"
    events = await ActionStartModule().run(dispatcher, tracker(module, intent, {"language": language}), DOMAIN)
    return dict({e["name"]: e["value"] for e in events if e["event"] == "slot"}, language=language)


async def say_in_lesson(slots, text, intent, confidence):
    dispatcher = CollectingDispatcher()
    slots = dict(slots, answer=text, requested_slot="answer")
    t = tracker(text, intent, slots, candidates=["answer"])
    t.latest_message["intent"]["confidence"] = confidence
    events = await ValidateTutorForm().run(dispatcher, t, DOMAIN)
    return [m["text"] for m in dispatcher.messages], {e["name"]: e["value"] for e in events if e["event"] == "slot"}


@pytest.mark.parametrize("language, nudge", [("en", "Let's get back to the question."),
                                             ("rw", "Reka dusubire ku kibazo.")])
async def test_clearly_off_topic_message_gets_back_to_the_question(language, nudge):
    slots = await start("math", language)
    texts, set_slots = await say_in_lesson(slots, "Is there a flight from Abuja to England tomorrow?", "out_of_scope", 0.97)
    assert len(texts) == 1 and texts[0].endswith(nudge)
    # Not graded, and the form asks the same question again (the "asked" mark is cleared).
    assert set_slots["answer"] is None
    assert set_slots["tutor_state"] == {k: v for k, v in slots["tutor_state"].items() if k != "_asked"}


@pytest.mark.parametrize("module, text, intent, confidence", [
    ("math", "people should travel more by bus", "nlu_fallback", 0.5),  # not clearly anything
    ("math", "people should travel more by bus", "out_of_scope", 0.75),  # not sure enough
    ("debate", "people should travel more by bus", "out_of_scope", 0.99),  # a debate turn is an answer
    ("reading", "a red car", "out_of_scope", 1.0),  # a short phrase answers a reading question
])
async def test_anything_less_than_clearly_off_topic_is_graded_as_the_answer(module, text, intent, confidence):
    slots = await start(module)
    texts, set_slots = await say_in_lesson(slots, text, intent, confidence)
    assert texts and not any("back to the question" in t for t in texts)
    assert set_slots["tutor_state"].get("_asked") is True  # the tutor replied with its next step
