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

One keyword is not always needed either: a new phrasing of a command ("yeah", a Kinyarwanda
verb with other affixes than in training) has none. A short message (at most 3 words) that DIET
classifies with high confidence and a clear margin is kept when each of its words was seen in
that intent's own examples, or was never seen in any example and looks like one of the intent's
words (similar spelling, or one of them inside it: "hagarika" in "tuhagarike"). A word seen only
in other intents ("a red car" -> answer's words) or unlike any of the intent's words (keyboard
noise) still makes it `nlu_fallback`.
"""
from __future__ import annotations

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

from core.fuzzy import closest, contains_similar, similarity

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
            "max_unfamiliar_share": 0.2,
            # Intents whose words do not make a message familiar (off-topic examples).
            "unfamiliar_intents": ["out_of_scope"],
            # How close a misspelt word must be to a known one (core.fuzzy.similarity).
            "min_similarity": 0.8,
            # A short message DIET is sure of needs no keyword (see the module docstring):
            # at most this many words, DIET confidence and lead over the runner-up ...
            "short_max_words": 3,
            "short_min_confidence": 0.9,
            "short_min_margin": 0.5,
            # ... and each unseen word this similar to one of the intent's words (same first
            # letter), or containing one of its words of 5+ letters (with affixes) this closely.
            "unseen_min_similarity": 0.6,
            "unseen_min_containment": 0.85,
        }

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 vocab: Optional[Dict[Text, Set[Text]]] = None, known: Optional[Set[Text]] = None,
                 own: Optional[Dict[Text, Set[Text]]] = None, seen: Optional[Set[Text]] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self.vocab: Dict[Text, Set[Text]] = vocab or {}
        # Every word of the in-scope training examples (None: not trained with this check).
        self.known: Optional[Set[Text]] = known
        # Every (non-number) word of each guarded intent's examples, and every word of every
        # example (empty: trained before the short-message rule, which then keeps nothing).
        self.own: Dict[Text, Set[Text]] = own or {}
        self.seen: Set[Text] = seen or set()

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
                   set(data.get("known") or []), {k: set(v) for k, v in (data.get("own") or {}).items()},
                   set(data.get("seen") or []))

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
        self.seen = set(uses)
        self.own = {intent: {w for w, per_intent in uses.items() if intent in per_intent
                             and w not in numbers and not w.isdigit()}
                    for intent in self.config["guarded_intents"]}
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
                "known": sorted(self.known), "own": {k: sorted(v) for k, v in self.own.items()},
                "seen": sorted(self.seen)}), encoding="utf-8")
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
        return len(word) >= 4 and closest(word, [v for v in vocabulary if v[0] == word[0]],
                                          self.config["min_similarity"]) is not None

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

    def clear_short(self, intent: Text, text: Text, confidence: float, runner_up: float) -> bool:
        """Is `text` a short message DIET is sure is `intent`, with no word against it?"""
        message_words = words(text)
        if not 0 < len(message_words) <= self.config["short_max_words"] \
                or confidence < self.config["short_min_confidence"] \
                or confidence - runner_up < self.config["short_min_margin"]:
            return False
        own = self.own.get(intent)
        return bool(own) and all(w in own or (w not in self.seen and self._resembles(w, own)) for w in message_words)

    def _resembles(self, word: Text, own: Set[Text]) -> bool:
        """An unseen `word` spelt like one of the intent's words, or holding one of them."""
        return any((v[0] == word[0] and similarity(word, v) >= self.config["unseen_min_similarity"])
                   or (5 <= len(v) <= len(word) - 2 and contains_similar(v, word) >= self.config["unseen_min_containment"])
                   for v in own)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            name = intent.get(INTENT_NAME_KEY)
            text = message.get(TEXT)
            if name not in self.config["guarded_intents"] or (self.supports(name, text) and self.familiar(text)):
                continue
            ranking = message.get(INTENT_RANKING_KEY) or []
            runner_up = ranking[1].get(PREDICTED_CONFIDENCE_KEY, 0.0) if len(ranking) > 1 else 0.0
            if self.clear_short(name, text, intent.get(PREDICTED_CONFIDENCE_KEY, 0.0), runner_up):
                continue
            fallback = {INTENT_NAME_KEY: DEFAULT_NLU_FALLBACK_INTENT_NAME,
                        PREDICTED_CONFIDENCE_KEY: intent.get(PREDICTED_CONFIDENCE_KEY, 0.0)}
            message.set(INTENT, fallback, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [fallback] + ranking, add_to_output=True)
        return messages
