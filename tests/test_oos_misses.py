"""scripts/oos_misses.py replays CommandGuard and FallbackClassifier on DIET's ranking and names
which of them turned a held-out utterance into `nlu_fallback`."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import oos_misses  # noqa: E402
from nlu_components.command_guard import CommandGuard  # noqa: E402
from rasa.engine.storage.local_model_storage import LocalModelStorage  # noqa: E402
from rasa.engine.storage.resource import Resource  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402
from rasa.shared.nlu.training_data.training_data import TrainingData  # noqa: E402

EXAMPLES = {"stop": ["stop", "stop this", "hagarika"], "goodbye": ["bye", "see you later"],
            "answer": ["a red car", "the market"]}
FALLBACK = {"threshold": 0.7, "ambiguity_threshold": 0.05}


@pytest.fixture(scope="module")
def guard(tmp_path_factory):
    storage = LocalModelStorage(tmp_path_factory.mktemp("guard"))
    component = CommandGuard.create({}, storage, Resource("guard"), None)
    component.train(TrainingData([Message(data={"text": t, "intent": i}) for i, ts in EXAMPLES.items() for t in ts]))
    return component


def ranking(*pairs):
    return [{"name": name, "confidence": confidence} for name, confidence in pairs]


@pytest.mark.parametrize("text, diet, expected", [
    ("stop this", ranking(("stop", 0.95), ("answer", 0.05)), ("stop", "diet")),
    ("a red car", ranking(("stop", 0.99), ("answer", 0.01)), ("nlu_fallback", "guard")),
    ("stop this", ranking(("stop", 0.6), ("answer", 0.4)), ("nlu_fallback", "low confidence")),
    ("the market", ranking(("answer", 0.72), ("goodbye", 0.70)), ("nlu_fallback", "ambiguous")),
    ("anything", [], ("nlu_fallback", "empty")),
])
def test_each_miss_is_attributed_to_what_caused_it(guard, text, diet, expected):
    assert oos_misses.decide(text, diet, guard, FALLBACK) == expected


def test_settings_change_the_replayed_decision(guard):
    diet = ranking(("stop", 0.6), ("answer", 0.4))
    assert oos_misses.decide("stop this", diet, guard, {**FALLBACK, "threshold": 0.5}) == ("stop", "diet")
