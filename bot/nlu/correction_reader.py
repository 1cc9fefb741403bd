"""Rasa NLU component: a correction with a new value is no "no".

「不对不对，是5号厅，我记错了」 starts like a refusal, and the classifier reads ``deny`` — which inside a form
cancels it. A message that corrects an earlier value and names the new one
(:func:`bot.answers.correction.new_value`) is read as ``inform``, so the form (or the last question) takes
the new value instead; 「不是的，不用了」 stays a no.
"""
from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.answers.correction import new_value

DENY, INFORM = "deny", "inform"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class CorrectionReader(GraphComponent):
    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "CorrectionReader":
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            if intent.get(INTENT_NAME_KEY) != DENY or new_value(message.get(TEXT) or "") is None:
                continue
            ranking = [dict(r) for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != INFORM]
            chosen = {INTENT_NAME_KEY: INFORM, "confidence": intent.get("confidence", 1.0)}
            message.set(INTENT, chosen, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [chosen] + ranking, add_to_output=True)
        return messages
