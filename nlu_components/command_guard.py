"""CommandGuard: a command intent must contain a word that was seen for that command.

DIET is confident even on messages unlike anything it was trained on ("a red car" ->
goodbye 1.00, keyboard noise -> stop 1.00). Inside an activity such a mistake ends a
reading or a call. This component, placed after DIET, keeps a guarded intent only when
the message holds at least one of that intent's characteristic words (seen in its own
training examples and in few other intents), allowing small misspellings; otherwise the
message becomes `nlu_fallback`: inside an activity it is taken as the learner's answer,
outside it gets a rephrase prompt.
"""
from __future__ import annotations

import difflib
import json
import re
from collections import Counter, defaultdict
from typing import Any, Dict, List, Optional, Set, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

_WORD = re.compile(r"[a-z0-9']+")
_FILE = "command_words.json"


def words(text: Optional[Text]) -> List[Text]:
    return _WORD.findall((text or "").lower().replace("\u2019", "'"))


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class CommandGuard(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # Intents that interrupt or steer the conversation; the others (answer,
            # inform, out_of_scope) carry free text and are never guarded.
            "guarded_intents": [
                "greet", "goodbye", "thank", "affirm", "deny", "help", "repeat", "stop",
                "start_math", "start_english", "start_reading", "start_debate",
                "set_language", "request_hint", "check_progress",
            ],
            # A word is evidence for an intent when it is seen in at most this many
            # intents, or in up to `shared_max_intents` with at least `shared_min_share`
            # of its uses in that intent ("what" -> help); function words ("a", "the",
            # "you") are seen everywhere and are evidence for none.
            "max_intents_per_word": 3,
            "shared_max_intents": 6,
            "shared_min_share": 0.25,
            # How close a misspelt word must be to a known one (difflib ratio).
            "min_similarity": 0.8,
        }

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 vocab: Optional[Dict[Text, Set[Text]]] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self.vocab: Dict[Text, Set[Text]] = vocab or {}

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "CommandGuard":
        return cls(config, model_storage, resource)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "CommandGuard":
        try:
            with model_storage.read_from(resource) as directory:
                data = json.loads((directory / _FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            data = {}
        return cls(config, model_storage, resource, {k: set(v) for k, v in data.items()})

    def train(self, training_data: TrainingData) -> Resource:
        uses: Dict[Text, Counter] = defaultdict(Counter)  # word -> examples per intent
        for example in training_data.intent_examples:
            for word in set(words(example.get(TEXT))):
                uses[word][example.get(INTENT)] += 1
        # Number words are answers, never evidence for a command ("eight" is not "good night").
        numbers = {w for table in training_data.lookup_tables for w in words(" ".join(table.get("elements") or []))}
        self.vocab = {intent: set() for intent in self.config["guarded_intents"]}
        for word, per_intent in uses.items():
            if word in numbers or word.isdigit():
                continue
            spread, total = len(per_intent), sum(per_intent.values())
            for intent, count in per_intent.items():
                if intent in self.vocab and self._is_evidence(spread, count / total):
                    self.vocab[intent].add(word)
        with self._storage.write_to(self._resource) as directory:
            (directory / _FILE).write_text(json.dumps({k: sorted(v) for k, v in self.vocab.items()}), encoding="utf-8")
        return self._resource

    def _is_evidence(self, spread: int, share: float) -> bool:
        if spread <= self.config["max_intents_per_word"]:
            return True
        return spread <= self.config["shared_max_intents"] and share >= self.config["shared_min_share"]

    def supports(self, intent: Text, text: Text) -> bool:
        """Does `text` hold a characteristic word of `intent` (or a close misspelling)?"""
        vocabulary = self.vocab.get(intent)
        if not vocabulary:
            return True
        cutoff = self.config["min_similarity"]
        for word in words(text):
            if word in vocabulary:
                return True
            # A misspelling keeps its first letter ("byee", "hagarikaa"); "eight" is not "night".
            if len(word) >= 4 and difflib.get_close_matches(
                    word, [v for v in vocabulary if v[0] == word[0]], n=1, cutoff=cutoff):
                return True
        return False

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            name = intent.get(INTENT_NAME_KEY)
            if name not in self.config["guarded_intents"] or self.supports(name, message.get(TEXT)):
                continue
            fallback = {INTENT_NAME_KEY: DEFAULT_NLU_FALLBACK_INTENT_NAME,
                        PREDICTED_CONFIDENCE_KEY: intent.get(PREDICTED_CONFIDENCE_KEY, 0.0)}
            message.set(INTENT, fallback, add_to_output=True)
            ranking = message.get(INTENT_RANKING_KEY) or []
            message.set(INTENT_RANKING_KEY, [fallback] + ranking, add_to_output=True)
        return messages
