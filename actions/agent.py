"""Actions the agent desk executes through Rasa's HTTP API, so every agent message and handoff change
is an event in the tracker (the single record of the conversation) and reaches the patron's channel."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import knowledge
from actions.tickets import due_label
from bot.db import database_url, session_scope
from bot.tickets import handoff as queue
from bot.tickets import store as tickets


class ActionAgentMessage(Action):
    """Deliver what the desk put in slot ``agent_message`` to the patron: a text, or
    ``{"text", "agent", "buttons"}`` (the agent's display name goes with the message as
    ``metadata.agent.name``, shown by the web chat; on WeChat, which shows text only, the text starts with
    ``escalation.agent_prefix``; buttons are the satisfaction rating's choices)."""

    def name(self) -> Text:
        return "action_agent_message"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        value = tracker.get_slot("agent_message")
        message = value if isinstance(value, dict) else {"text": value}
        text, agent = message.get("text"), message.get("agent")
        if text:
            extra: Dict[Text, Any] = {}
            if agent:
                extra["metadata"] = {"agent": {"name": agent}}
                prefix = knowledge().section("complaints")["escalation"].get("agent_prefix")
                if prefix and tracker.get_latest_input_channel() == "wechat" and agent not in text[:40]:
                    text = prefix.format(agent=agent) + text
            if message.get("buttons"):
                extra["buttons"] = [b for b in message["buttons"] if isinstance(b, dict)]
            dispatcher.utter_message(text=text, **extra)
        return [SlotSet("agent_message", None)]


class ActionHandoffTimeout(Action):
    """Nobody claimed the conversation in time: the bot takes over again and says when they hear back."""

    def name(self) -> Text:
        return "action_handoff_timeout"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        escalation = knowledge().section("complaints")["escalation"]
        with session_scope(database_url()) as session:
            conv = queue.get_conversation(session, tracker.sender_id)
            ticket = tickets.get_by_number(session, conv.ticket_number) if conv and conv.ticket_number else None
            number, due = (ticket.number, due_label(ticket.reply_due)) if ticket else ("", "")
        dispatcher.utter_message(response="utter_handoff_waiting", text=escalation["timeout"].format(ticket=number, due=due))
        return []


class ActionHandback(Action):
    """The agent handed the conversation back: tell the patron the bot continues."""

    def name(self) -> Text:
        return "action_handback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(response="utter_handoff_waiting",
                                 text=knowledge().section("complaints")["escalation"]["handback"])
        return []
