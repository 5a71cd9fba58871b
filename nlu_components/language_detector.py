"""LanguageDetector: the learner's language, read from the message in the NLU pipeline.

Language identification (``core.language``: marker words plus py3langid) used to run on the
action server, called by the language slot's custom mapping on every turn -- a round trip
of the whole tracker for a few microseconds of work. Here it runs once per message with the
rest of NLU (and is cached with it). Which language the conversation continues in depends
on the language it is in (a Kinyarwanda speaker's "yes" stays Kinyarwanda), which NLU does
not know; so the parse data gets the detection *for each current language*::

    "language_detection": {"none": "rw", "en": "en", "rw": "rw"}

("none": no language yet; ``null``: keeps the current one), and the slot mapping picks the
entry of the conversation's language (``core.language_slots``). Not trainable.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from core import language
from core.language_slots import DETECTION_KEY


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class LanguageDetector(GraphComponent):
    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "LanguageDetector":
        language.languages().model()  # load py3langid's model with the pipeline, not on the first message
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if isinstance(text, str):
                message.set(DETECTION_KEY, language.detections(text), add_to_output=True)
        return messages
