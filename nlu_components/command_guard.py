"""CommandGuard: a command intent must contain a word that was seen for that command.

DIET is confident even on messages unlike anything it was trained on ("a red car" ->
goodbye 1.00, keyboard noise -> stop 1.00). Inside an activity such a mistake ends a
reading or a call. This component, placed after DIET, keeps a guarded intent only when
the message holds at least one of that intent's characteristic words (seen in its own
training examples and in few other intents), allowing small misspellings; otherwise the
message becomes `nlu_fallback`: inside an activity it is taken as the learner's answer,
outside it gets a rephrase prompt.

One keyword is not always enough: off-topic requests by native speakers share words with
commands ("Rwanda" with set_language, "tomorrow" with goodbye, "guhagarika konti" - freeze an
account - with stop). Native off-topic examples in the training data (out_of_scope) teach DIET
most of them; in addition a message of several words made mostly of words that no in-scope
example has is not clearly a command (measured on held-out native utterances:
docs/nlu-evaluation.md).
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
                "join_class",
            ],
            # A word is evidence for an intent when it is seen in at most this many
            # intents, or in up to `shared_max_intents` with at least `shared_min_share`
            # of its uses in that intent ("what" -> help); function words ("a", "the",
            # "you") are seen everywhere and are evidence for none.
            "max_intents_per_word": 3,
            "shared_max_intents": 6,
            "shared_min_share": 0.25,
            # A message of at least `unfamiliar_min_words` words of which more than this
            # share were never seen in an in-scope example is not clearly a command.
            "unfamiliar_min_words": 4,
            "max_unfamiliar_share": 0.5,
            # Intents whose words do not make a message familiar (off-topic examples).
            "unfamiliar_intents": ["out_of_scope"],
            # How close a misspelt word must be to a known one (difflib ratio).
            "min_similarity": 0.8,
        }

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 vocab: Optional[Dict[Text, Set[Text]]] = None, known: Optional[Set[Text]] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self.vocab: Dict[Text, Set[Text]] = vocab or {}
        # Every word of the in-scope training examples (None: not trained with this check).
        self.known: Optional[Set[Text]] = known

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
        if "evidence" not in data:  # a model trained before the familiarity check
            return cls(config, model_storage, resource, {k: set(v) for k, v in data.items()})
        return cls(config, model_storage, resource, {k: set(v) for k, v in data["evidence"].items()},
                   set(data.get("known") or []))

    def train(self, training_data: TrainingData) -> Resource:
        uses: Dict[Text, Counter] = defaultdict(Counter)  # word -> examples per intent
        self.known = set()
        for example in training_data.intent_examples:
            example_words = set(words(example.get(TEXT)))
            for word in example_words:
                uses[word][example.get(INTENT)] += 1
            if example.get(INTENT) not in self.config["unfamiliar_intents"]:
                self.known |= example_words
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
            (directory / _FILE).write_text(json.dumps({
                "evidence": {k: sorted(v) for k, v in self.vocab.items()},
                "known": sorted(self.known)}), encoding="utf-8")
        return self._resource

    def _is_evidence(self, spread: int, share: float) -> bool:
        if spread <= self.config["max_intents_per_word"]:
            return True
        return spread <= self.config["shared_max_intents"] and share >= self.config["shared_min_share"]

    def _matches(self, word: Text, vocabulary: Set[Text]) -> bool:
        """`word` is in `vocabulary`, or a close misspelling of one of its words."""
        if word in vocabulary:
            return True
        # A misspelling keeps its first letter ("byee", "hagarikaa"); "eight" is not "night".
        return len(word) >= 4 and bool(difflib.get_close_matches(
            word, [v for v in vocabulary if v[0] == word[0]], n=1, cutoff=self.config["min_similarity"]))

    def supports(self, intent: Text, text: Text) -> bool:
        """Does `text` hold a characteristic word of `intent` (or a close misspelling)?"""
        vocabulary = self.vocab.get(intent)
        if not vocabulary:
            return True
        return any(self._matches(word, vocabulary) for word in words(text))

    def familiar(self, text: Text) -> bool:
        """Is `text` short, or made mostly of words seen in in-scope examples?"""
        message_words = [w for w in words(text) if not w.isdigit()]
        if self.known is None or len(message_words) < self.config["unfamiliar_min_words"]:
            return True
        unfamiliar = sum(1 for w in message_words if not self._matches(w, self.known))
        return unfamiliar / len(message_words) <= self.config["max_unfamiliar_share"]

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            name = intent.get(INTENT_NAME_KEY)
            text = message.get(TEXT)
            if name not in self.config["guarded_intents"] or (self.supports(name, text) and self.familiar(text)):
                continue
            fallback = {INTENT_NAME_KEY: DEFAULT_NLU_FALLBACK_INTENT_NAME,
                        PREDICTED_CONFIDENCE_KEY: intent.get(PREDICTED_CONFIDENCE_KEY, 0.0)}
            message.set(INTENT, fallback, add_to_output=True)
            ranking = message.get(INTENT_RANKING_KEY) or []
            message.set(INTENT_RANKING_KEY, [fallback] + ranking, add_to_output=True)
        return messages
