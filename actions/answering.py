"""Rasa side of the answering layer: read the turn from the tracker, call ``bot.answers.turn``, and turn the
result into messages and slot events."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import knowledge
from bot.answers.context import DialogueContext
from bot.answers.turn import Turn, answer_turn
from bot.nlu import knowledge_names
from bot.text.normalise import fold

CONTEXT_SLOT = "topic_context"


def context_of(tracker: Tracker) -> DialogueContext:
    return DialogueContext.from_slot(tracker.get_slot(CONTEXT_SLOT))


def folded_text(tracker: Tracker) -> Text:
    """The patron's words as the NLU read them (folded); empty for a button payload like ``/ask_parking``."""
    message = tracker.latest_message or {}
    text = message.get("folded_text") or message.get("text") or ""
    if text.startswith("/"):
        return ""
    if "folded_text" not in message:
        text = fold(text, knowledge_names.current().lexicon).text
    return text


def intent_of(tracker: Tracker) -> tuple:
    intent = (tracker.latest_message or {}).get("intent") or {}
    return intent.get("name"), float(intent.get("confidence") or 0.0)


def answer(dispatcher: CollectingDispatcher, tracker: Tracker, intent_topic: Optional[Text],
           confidence: float, allow_follow_up: bool = True) -> Optional[List[Dict[Text, Any]]]:
    """Answer an informational turn; None when nothing informational fits (the caller decides)."""
    entities = (tracker.latest_message or {}).get("entities") or []
    turn: Turn = answer_turn(knowledge(), context_of(tracker), intent_topic, confidence, folded_text(tracker),
                             entities, allow_follow_up=allow_follow_up)
    if not turn.handled:
        return None
    turn.replies.replay(dispatcher)
    return [SlotSet(CONTEXT_SLOT, turn.context.to_slot()), SlotSet("fallback_count", 0)]
