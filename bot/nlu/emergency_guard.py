"""Rasa NLU component: emergencies never slip, and a question about a rule is never one.

After the intent classifiers, before the fallback: a message that says an emergency is happening (a cue
word of ``complaints.yml`` emergency.cues: 晕倒, 叫不应, 冒烟, 打架 …) is read as ``report_emergency`` even
when the classifier thought otherwise, unless it is a question about a rule (「孕妇能看4DX吗」) or about the
film (「电影里着火那段」); and ``report_emergency`` on a rule question with nothing happening now is replaced
by the next intent of the ranking. The words are the store's, so editors can add one without retraining.
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

from bot.nlu import knowledge_names

from bot.answers.emergency import CONFIDENCE, EMERGENCY, decide


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class EmergencyGuard(GraphComponent):
    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "EmergencyGuard":
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        names = knowledge_names.current()
        for message in messages:
            intent = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
            if intent is None:
                continue
            ranking = [dict(r) for r in message.get(INTENT_RANKING_KEY) or []]
            likely = next((r["confidence"] for r in ranking if r[INTENT_NAME_KEY] == EMERGENCY), 0.0)
            emergency = decide(message.get(TEXT) or "", intent, names.emergency_cues, names.rule_words, likely)
            if emergency and (intent != EMERGENCY or message.get(INTENT)["confidence"] < CONFIDENCE):
                # an emergency the classifier was unsure of (or read as something else) stays one: the fallback
                # must not swallow it — neither by its threshold nor by its ambiguity margin, so the other
                # readings are held below what is left (a complaint at 0.97 beside it made it "ambiguous")
                ranking = [{INTENT_NAME_KEY: EMERGENCY, "confidence": CONFIDENCE}] + \
                          [dict(r, confidence=min(r["confidence"], 1.0 - CONFIDENCE))
                           for r in ranking if r[INTENT_NAME_KEY] != EMERGENCY]
            elif not emergency and intent == EMERGENCY:
                ranking = [r for r in ranking if r[INTENT_NAME_KEY] != EMERGENCY]
                if ranking:  # the next reading, held as sure as the classifier was of the emergency
                    ranking[0]["confidence"] = max(ranking[0]["confidence"], message.get(INTENT)["confidence"])
            else:
                continue
            if ranking:
                message.set(INTENT, ranking[0], add_to_output=True)
                message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
