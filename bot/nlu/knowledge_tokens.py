"""Rasa NLU components that make the classifier title-agnostic.

``KnowledgeVocabulary`` (before the tokenizer) teaches jieba the titles currently in the store, so a
newly published title is one token. ``FilmTitleMasker`` (after the tokenizer) gives every token inside
a known title the lemma ``__film__``; the featurizers read lemmas, so 「银河快递明天几点有」 looks to the
intent classifier exactly like 「星际归途明天几点有」 and a new title never drags the intent elsewhere
(e.g. 快递 towards out_of_scope). Training sees the same masking for the store's titles.
"""
from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu import knowledge_names

FILM_LEMMA = "__film__"


class _Base(GraphComponent):
    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "_Base":
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        raise NotImplementedError


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class KnowledgeVocabulary(_Base):
    """Refresh jieba's dictionary from the store before tokenizing."""

    def process(self, messages: List[Message]) -> List[Message]:
        knowledge_names.current(refresh=True)
        return messages


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class FilmTitleMasker(_Base):
    """Tokens inside a known film title get the lemma ``__film__``."""

    def process(self, messages: List[Message]) -> List[Message]:
        names = knowledge_names.current()
        if not names.films:
            return messages
        for message in messages:
            text = message.get(TEXT)
            tokens = message.get(TOKENS_NAMES[TEXT])
            if not text or not tokens:
                continue
            for start, end in names.film_spans(text):
                for token in tokens:
                    if start <= token.start and token.end <= end:
                        token.lemma = FILM_LEMMA
        return messages
