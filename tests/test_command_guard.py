"""CommandGuard keeps a command intent only when the message holds one of its words."""
import pytest
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_components.command_guard import CommandGuard

EXAMPLES = {
    "goodbye": ["bye", "goodbye", "see you later", "murabeho", "ni ahandi", "good night", "bye eight"],
    "stop": ["stop", "stop this", "hagarika", "back to the menu"],
    "greet": ["hello", "hi there", "muraho"],
    "answer": ["a red car", "the market", "it is 25"],
    "help": ["what can you do", "what are the options", "help", "what is this"],
    "repeat": ["what did you say", "say it again"],
    "thank": ["thank you", "thanks a lot"],
    "deny": ["no thank you", "not now"],
    "affirm": ["yes you can", "sure"],
    "inform": ["you can call me Aline", "I am Eric"],
}


@pytest.fixture
def guard(tmp_path):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("guard")
    component = CommandGuard.create({}, storage, resource, None)
    data = TrainingData([Message(data={"text": t, "intent": i}) for i, ts in EXAMPLES.items() for t in ts],
                        lookup_tables=[{"name": "number", "elements": ["eight", "twenty five"]}])
    component.train(data)
    return CommandGuard.load({}, storage, resource, None)


def classify(guard, text, intent, confidence=1.0, runner_up=0.0):
    message = Message(data={"text": text, "intent": {"name": intent, "confidence": confidence},
                            "intent_ranking": [{"name": intent, "confidence": confidence},
                                               {"name": "answer", "confidence": runner_up}]})
    guard.process([message])
    return message.get("intent")["name"]


@pytest.mark.parametrize("text, intent", [
    ("bye bye", "goodbye"), ("byee", "goodbye"), ("murabeho neza", "goodbye"),
    ("please stop", "stop"), ("hagarikaa", "stop"), ("hello teacher", "greet"),
    ("what can you do", "help"),  # "what" is shared but mostly help's
])
def test_commands_with_their_words_are_kept(guard, text, intent):
    assert classify(guard, text, intent) == intent


@pytest.mark.parametrize("text, intent", [
    ("a red car", "goodbye"), ("xyzzy plugh", "stop"), ("the big tree", "greet"),
    ("can you", "thank"),
    ("eight", "goodbye"),  # a number word is an answer, even when a goodbye example had it
    ("sight", "goodbye"),  # close to "night", but a misspelling keeps its first letter
  # "you" and "can" are everywhere: evidence for nothing
])
def test_commands_without_their_words_become_fallback(guard, text, intent):
    assert classify(guard, text, intent) == "nlu_fallback"


def test_free_text_intents_are_never_guarded(guard):
    assert classify(guard, "xyzzy plugh", "answer") == "answer"


@pytest.mark.parametrize("text, intent", [
    ("tuhagarike", "stop"),  # "hagarika" with other affixes
    ("thnx", "thank"),  # spelt like "thanks", too far for a misspelling of it
    ("thnx bye", "goodbye"),  # every word is goodbye's own or resembles one of them ("bye")
])
def test_a_short_new_phrasing_diet_is_sure_of_is_kept(guard, text, intent):
    assert classify(guard, text, intent, confidence=0.98, runner_up=0.01) == intent


@pytest.mark.parametrize("text, intent, confidence, runner_up", [
    ("tuhagarike", "stop", 0.8, 0.1),  # DIET not sure enough
    ("tuhagarike", "stop", 0.95, 0.5),  # ... or the runner-up too close
    ("tuhagarike ubu", "stop", 1.0, 0.0),  # "ubu": unseen and unlike any of stop's words
    ("tuhagarike market", "stop", 1.0, 0.0),  # "market" was seen, but only in other intents
    ("please stop this lesson now", "thank", 1.0, 0.0),  # too long to need no keyword
])
def test_a_short_message_without_keyword_needs_diet_sure_and_no_word_against_it(guard, text, intent, confidence,
                                                                                  runner_up):
    assert classify(guard, text, intent, confidence=confidence, runner_up=runner_up) == "nlu_fallback"


def test_vocabulary_survives_persistence(guard):
    assert "murabeho" in guard.vocab["goodbye"] and "hagarika" in guard.vocab["stop"]
    assert "later" in guard.own["goodbye"] and "eight" not in guard.own["goodbye"]  # numbers are answers
    assert "market" in guard.seen


def test_a_long_message_of_unfamiliar_words_is_not_clearly_a_command(guard):
    # "stop" is stop's own word, but the rest was never seen in an in-scope example.
    assert classify(guard, "can you stop all transactions from my savings account", "stop") == "nlu_fallback"
    assert classify(guard, "please stop", "stop") == "stop"  # short: the keyword is enough
    assert classify(guard, "stop this now, back to the menu please", "stop") == "stop"  # mostly familiar words


def test_off_topic_examples_do_not_make_words_familiar(tmp_path):
    storage, resource = LocalModelStorage(tmp_path), Resource("guard")
    data = TrainingData([Message(data={"text": t, "intent": i}) for i, t in [
        ("stop", "stop"), ("stop", "stop this"), ("answer", "a red car"),
        ("out_of_scope", "freeze my savings account transactions")]])
    CommandGuard.create({}, storage, resource, None).train(data)
    guard = CommandGuard.load({}, storage, resource, None)
    assert "savings" not in guard.known and "car" in guard.known
    assert classify(guard, "stop my savings account transactions", "stop") == "nlu_fallback"


def test_a_model_trained_before_the_familiarity_check_still_loads(tmp_path):
    storage, resource = LocalModelStorage(tmp_path), Resource("guard")
    with storage.write_to(resource) as directory:
        (directory / "command_words.json").write_text('{"stop": ["stop"]}')
    guard = CommandGuard.load({}, storage, resource, None)
    assert guard.known is None
    assert classify(guard, "stop all the unusual transactions on my savings account", "stop") == "stop"
    assert classify(guard, "a red car", "stop") == "nlu_fallback"
