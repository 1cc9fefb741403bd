"""Conversation glue: the welcome, follow-ups on the previous topic, and low-confidence clarification."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import knowledge, latest_entities
from actions.escalation import hand_off
from actions.topics import TOPICS

# Without a previous topic, a bare value most likely continues this topic.
DEFAULT_TOPIC_FOR_ENTITY = [("film", "showtimes"), ("date", "showtimes"), ("time", "showtimes"),
                            ("hall_type", "hall_types"), ("ticket_type", "ticket_price"), ("facility", "facilities")]
CLARIFY_EXCLUDE = {"nlu_fallback", "inform", "affirm", "deny"}


class ActionGreet(Action):
    def name(self) -> Text:
        return "action_greet"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(response="utter_welcome", cinema_name=knowledge().section("cinema")["name"])
        return []


class ActionFollowup(Action):
    """「那周二呢」「学生呢」: answer the previous topic again with the new value."""

    def name(self) -> Text:
        return "action_followup"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        topic = (tracker.get_slot("topic_context") or {}).get("topic")
        if topic not in TOPICS:
            values = latest_entities(tracker)
            topic = next((t for entity, t in DEFAULT_TOPIC_FOR_ENTITY if entity in values), None)
        if topic is None:
            return await ActionClarify().run(dispatcher, tracker, domain)
        return TOPICS[topic]().run_with(dispatcher, tracker, follow_up=True)


class ActionClarify(Action):
    """Low confidence: offer the two likeliest meanings as buttons; after two misses in a row, a human."""

    def name(self) -> Text:
        return "action_clarify"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        count = int(tracker.get_slot("fallback_count") or 0) + 1
        if count >= 2:  # two misses in a row: a person takes over
            return hand_off(dispatcher, tracker, "two_fallbacks")
        ranking = [r for r in tracker.latest_message.get("intent_ranking", []) if r.get("name") not in CLARIFY_EXCLUDE]
        buttons = [{"title": self._label(domain, r["name"]), "payload": f"/{r['name']}"} for r in ranking[:2]]
        buttons.append({"title": self._label(domain, "request_human"), "payload": "/request_human"})
        dispatcher.utter_message(response="utter_clarify", buttons=buttons)
        return [SlotSet("fallback_count", count)]

    @staticmethod
    def _label(domain: Dict[Text, Any], intent: Text) -> Text:
        responses = domain.get("responses", {}).get(f"utter_label_{intent}") or [{"text": intent}]
        return responses[0].get("text", intent)
