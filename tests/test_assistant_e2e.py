"""The assistant as `make run` starts it, through POST /webhooks/rest/webhook.

Real action server, real trained model, SQLite progress store; no LLM, no network.
"""
import uuid

import pytest


pytestmark = pytest.mark.e2e

MENU_EN = "What would you like to learn? Say: math, English, reading, or debate."
MENU_RW = "Ushaka kwiga iki? Vuga: imibare, icyongereza, gusoma inkuru, cyangwa impaka."


def new_sender() -> str:
    return f"e2e-{uuid.uuid4().hex[:10]}"


def test_first_contact_in_english(assistant):
    sender = new_sender()
    replies = assistant.texts(sender, "hello")
    assert "Muraho" in replies[0] and "Hello" in replies[0]  # bilingual first greeting
    assert replies[1].startswith("What is your name?")
    assert assistant.texts(sender, "my name is Aline") == ["Nice to meet you, Aline!", MENU_EN]
    assert assistant.slot(sender, "language") == "en"


def test_first_contact_in_kinyarwanda(assistant):
    sender = new_sender()
    replies = assistant.texts(sender, "muraho")
    assert replies[1].startswith("Witwa nde?")
    assert assistant.texts(sender, "nitwa Mugisha") == ["Nishimiye kukumenya, Mugisha!", MENU_RW]


def test_returning_learner_is_greeted_by_name_without_the_form(assistant):
    sender = new_sender()
    assistant.texts(sender, "hi")
    assistant.texts(sender, "I am Eric")
    assert assistant.texts(sender, "hello") == ["Welcome back, Eric!", MENU_EN]


def test_skipping_the_name(assistant):
    sender = new_sender()
    assistant.texts(sender, "mwiriwe")
    assert assistant.texts(sender, "oya") == ["Nta kibazo. Reka twige!", MENU_RW]
    # not asked again next time
    assert assistant.texts(sender, "muraho") == ["Murakaza neza nanone!", MENU_RW]


def test_modules_enter_switch_and_stop_in_kinyarwanda(assistant):
    sender = new_sender()
    math = assistant.texts(sender, "ndashaka imibare")
    assert math[0].startswith("Ikaze mu mibare")
    assert assistant.slot(sender, "active_module") == "math"
    reading = assistant.texts(sender, "nsomera inkuru")  # switch from inside math
    assert assistant.slot(sender, "active_module") == "reading"
    assert any(t.startswith("Inkuru:") for t in reading)
    assert assistant.texts(sender, "hagarika") == ["Ni byiza, duhagaritse gusoma.", MENU_RW]
    assert assistant.slot(sender, "active_module") is None


def test_repeat_and_help_inside_a_module_keep_the_question(assistant):
    sender = new_sender()
    question = assistant.texts(sender, "I want to do math")[-1]
    assert assistant.texts(sender, "repeat") == [question]
    help_replies = assistant.texts(sender, "help")
    assert help_replies[0].startswith("I can teach math")
    assert help_replies[-1] == question
    assert assistant.slot(sender, "active_module") == "math"


def test_language_switch_mid_module_asks_again_in_the_new_language(assistant):
    sender = new_sender()
    question_en = assistant.texts(sender, "math please")[-1]
    replies = assistant.texts(sender, "vuga ikinyarwanda")
    assert replies[0] == "Ni byiza, tuzavuga mu Kinyarwanda."
    assert replies[1] != question_en and len(replies) == 2  # same problem, now in Kinyarwanda
    assert assistant.slot(sender, "language") == "rw"
    assert assistant.slot(sender, "language_locked") is True
    # a chosen language is kept even when the learner then writes English
    assistant.texts(sender, "stop")
    assert assistant.texts(sender, "what can you do")[-1] == MENU_RW


def test_code_switched_message_is_answered_in_kinyarwanda(assistant):
    sender = new_sender()
    replies = assistant.texts(sender, "ndashaka math")
    assert replies[0].startswith("Ikaze mu mibare")


def test_low_confidence_twice_shows_the_menu(assistant):
    sender = new_sender()
    assistant.texts(sender, "hello")
    assistant.texts(sender, "skip")
    assert assistant.texts(sender, "/nlu_fallback") == ["Sorry, I did not understand. Can you say it another way?"]
    assert assistant.texts(sender, "/nlu_fallback") == ["Sorry, I still did not understand. Here is what we can do:", MENU_EN]


def test_goodbye_carries_the_end_call_payload(assistant):
    sender = new_sender()
    assistant.texts(sender, "math")
    replies = assistant.say(sender, "bye")
    assert replies[0]["text"].startswith("Goodbye!")
    assert {"end_call": True} in [r.get("custom") for r in replies]
    assert assistant.slot(sender, "active_module") == "math"  # kept for the report; the loop is closed
    tracker = __import__("requests").get(f"{assistant.url}/conversations/{sender}/tracker", timeout=30).json()
    assert tracker["active_loop"] == {}
