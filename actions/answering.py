"""Rasa side of the answering layer: read the turn from the tracker, call ``bot.answers.turn``, and turn the
result into messages and slot events."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import knowledge
from bot.answers import emergency
from bot.answers.ask import entity_values
from bot.answers.context import CROSS_TOPIC, FOLLOW_KEYS, DialogueContext
from bot.answers.topics import films_list
from bot.answers.turn import Turn, answer_turn, unknown_film_to_see
from bot.nlu import knowledge_names
from bot.text.normalise import fold

CONTEXT_SLOT = "topic_context"
MAX_SUGGESTIONS = 3


def suggest_follow_ups(turn: Turn) -> None:
    """After a specific question was answered: up to three other specific questions of its topic (their first
    phrasing in questions.yml) as quick replies on the last message, unless it has buttons of its own."""
    if turn.facet is None or not turn.topic or not turn.replies.messages:
        return
    last = turn.replies.messages[-1]
    if last.get("buttons"):
        return
    questions = (knowledge().section("questions") or {}).get("questions", [])
    picks = [q["examples"][0] for q in questions
             if q.get("topic") == turn.topic and q.get("key") not in (turn.facet, *turn.also) and q.get("examples")][:MAX_SUGGESTIONS]
    if picks:
        last["buttons"] = [{"title": text, "payload": text} for text in picks]


def context_of(tracker: Tracker) -> DialogueContext:
    """The conversation's context; emergency mode ends when the patron says it is over (「人已经送走了」)."""
    ctx = DialogueContext.from_slot(tracker.get_slot(CONTEXT_SLOT))
    said = (tracker.latest_message or {}).get("text") or ""
    if ctx.in_emergency and (emergency.is_over(said) or emergency.is_over(_folded(tracker))):
        ctx.emergency_turns, ctx.emergency_ticket = 0, None
    return ctx


def folded_text(tracker: Tracker) -> Text:
    """The patron's words as the NLU read them (folded), without news that help has come before a question
    (「保安来了。刚才说的积分…」); empty for a button payload like ``/ask_parking``."""
    return emergency.without_over(_folded(tracker))


def _folded(tracker: Tracker) -> Text:
    message = tracker.latest_message or {}
    text = message.get("folded_text") or message.get("text") or ""
    if text.startswith("/"):
        return ""
    if "folded_text" not in message:
        text = fold(text, knowledge_names.current().lexicon).text
    return text


def last_said_with(tracker: Tracker, intent: Text) -> Text:
    """The patron's latest message read as ``intent`` (「取票码扫不出来」 that opened an order problem), or ""."""
    return next((e.get("text") or "" for e in reversed(tracker.events or []) if e.get("event") == "user"
                 and ((e.get("parse_data") or {}).get("intent") or {}).get("name") == intent), "")


def last_bot_responses(tracker: Tracker) -> set:
    """The responses (``utter_*`` names) the bot sent since the patron's previous message."""
    said = set()
    seen_user = False
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            if seen_user:
                break
            seen_user = True  # the latest message itself
        elif event.get("event") == "bot" and seen_user:
            name = (event.get("metadata") or {}).get("utter_action")
            if name:
                said.add(name)
    return said


def intent_of(tracker: Tracker) -> tuple:
    intent = (tracker.latest_message or {}).get("intent") or {}
    return intent.get("name"), float(intent.get("confidence") or 0.0)


def answer(dispatcher: CollectingDispatcher, tracker: Tracker, intent_topic: Optional[Text],
           confidence: float, allow_follow_up: bool = True, fresh_context: bool = False,
           open_topics: bool = False, by_clause: bool = False) -> Optional[List[Dict[Text, Any]]]:
    """Answer an informational turn; None when nothing informational fits (the caller decides)."""
    entities = (tracker.latest_message or {}).get("entities") or []
    ctx = DialogueContext() if fresh_context else context_of(tracker)
    turn: Turn = answer_turn(knowledge(), ctx, intent_topic, confidence, folded_text(tracker),
                             entities, allow_follow_up=allow_follow_up, open_topics=open_topics,
                             by_clause=by_clause)
    if open_topics and turn.facet is None:
        return None  # only a specific question that matched well answers a message nobody understood
    if not turn.handled:
        return None
    suggest_follow_ups(turn)
    turn.replies.replay(dispatcher)
    return [SlotSet(CONTEXT_SLOT, turn.context.to_slot()), SlotSet("fallback_count", 0)]


def answer_if_decided(dispatcher: CollectingDispatcher, tracker: Tracker, topic: Optional[Text],
                      confidence: float) -> Optional[List[Dict[Text, Any]]]:
    """For a low-confidence turn: answer on ``topic`` only if a specific question matched or the patron named
    a value that topic answers with (「我爸65岁了 看电影有优惠吗」 → a price); None otherwise."""
    if topic is None:
        return None
    entities = (tracker.latest_message or {}).get("entities") or []
    turn = answer_turn(knowledge(), context_of(tracker), topic, confidence, folded_text(tracker), entities)
    decided = turn.facet is not None or (turn.topic == topic and bool(set(entity_values("", entities))
                                                                        & set(FOLLOW_KEYS.get(topic, ()))))
    if not (turn.handled and decided):
        return None
    suggest_follow_ups(turn)
    turn.replies.replay(dispatcher)
    return [SlotSet(CONTEXT_SLOT, turn.context.to_slot()), SlotSet("fallback_count", 0)]


def remember_values(tracker: Tracker) -> List[Dict[Text, Any]]:
    """Keep the film/date a not-understood message named in the context (for the next follow-up)."""
    ctx = context_of(tracker)
    fresh = entity_values(folded_text(tracker), (tracker.latest_message or {}).get("entities") or [])
    kept = {k: v for k, v in fresh.items() if k in CROSS_TOPIC}
    if not kept:
        return []
    ctx.values.update(kept)
    return [SlotSet(CONTEXT_SLOT, ctx.to_slot())]


def say_film_not_showing(dispatcher: CollectingDispatcher, text: Text) -> bool:
    """「…想包场看流浪地球3」: a film to see that the store does not have is said not to be showing, with what
    is on. Returns whether it was."""
    k = knowledge()
    missing = unknown_film_to_see(k, text)
    if missing:
        dispatcher.utter_message(response="utter_film_not_showing", film=missing, films=films_list(k))
    return bool(missing)
