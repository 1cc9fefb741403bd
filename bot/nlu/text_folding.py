"""Rasa NLU components around the pipeline: fold the patron's text first, restore it last.

``TextFolder`` (first in the pipeline) replaces the message text with its folded form (full width,
Traditional characters, Cantonese colloquialisms, abbreviations, typos, repeated characters: see
``bot.text.normalise``), so every later component sees the plain Simplified Chinese it was trained on.
``OriginalText`` (last) puts the patron's own text back and moves every entity's start/end onto it; the
entity value stays folded (「ＩＭＡＸ」 → value ``IMAX`` at the original span), and the folded text is kept in
the parse result as ``folded_text`` for the actions. The tracker, the desk and tickets therefore keep
what the patron wrote.
"""
from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu import knowledge_names
from bot.text.normalise import Folded, fold

FOLDED = "folded_text"
_STATE = "_folding"  # the Folded object between the two components (not part of the output)


class _Component(GraphComponent):
    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "_Component":
        return cls()


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class TextFolder(_Component):
    """Fold the text before tokenizing; training examples are folded the same way."""

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        lexicon = knowledge_names.current(refresh=True).lexicon
        for message in training_data.training_examples:
            text = message.get(TEXT)
            if not text:
                continue
            folded = fold(text, lexicon)
            if folded.text == text:
                continue
            entities = message.get(ENTITIES) or []
            moved = [_to_folded(e, folded) for e in entities]
            if any(e is None for e in moved):
                continue  # an annotation that does not survive folding: keep the example as written
            message.set(TEXT, folded.text)
            if entities:
                message.set(ENTITIES, moved)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        # the store's version is checked once per message by KnowledgeVocabulary, right after this component
        lexicon = knowledge_names.current().lexicon
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            folded = fold(text, lexicon)
            message.set(_STATE, folded)
            message.set(FOLDED, folded.text, add_to_output=True)
            message.set(TEXT, folded.text)
        return messages


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class OriginalText(_Component):
    """Put back the patron's text and map entity spans onto it (last in the pipeline)."""

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            folded = message.get(_STATE)
            if not isinstance(folded, Folded):
                continue
            for entity in message.get(ENTITIES) or []:
                if "start" in entity and "end" in entity:
                    entity["start"], entity["end"] = folded.original_span(entity["start"], entity["end"])
            message.set(TEXT, folded.original)
            message.data.pop(_STATE, None)
        return messages


def _to_folded(entity: Dict[str, Any], folded: Folded):
    """An annotation on the original text, moved onto the folded text (None when it cannot be)."""
    start = next((i for i, (s, _) in enumerate(folded.spans) if s >= entity["start"]), None)
    end = next((i + 1 for i in range(len(folded.spans) - 1, -1, -1) if folded.spans[i][1] <= entity["end"]), None)
    if start is None or end is None or end <= start:
        return None
    moved = dict(entity, start=start, end=end)
    if entity.get("value") == folded.original[entity["start"]:entity["end"]]:
        moved["value"] = folded.text[start:end]
    return moved
