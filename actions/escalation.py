"""De-escalation on every message and handoff to a human (queue inside service hours with an agent
online, otherwise a logged message with the reply time). Wording comes from knowledge/complaints.yml."""
from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import knowledge
from actions.tickets import due_label, log_ticket
from bot.anger import assess
from bot.db import database_url, session_scope
from bot.tickets import handoff as queue
from bot.tickets import store as tickets
from bot.tickets.durable import Receipt

logger = logging.getLogger(__name__)
ANGER_ESCALATE_AT = 2


def deescalate(dispatcher: CollectingDispatcher, tracker: Tracker) -> Tuple[List[Dict[Text, Any]], bool]:
    """Answer anger with empathy first; returns the events and whether to hand off now (anger twice)."""
    k = knowledge()
    complaints = k.section("complaints")
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    mood = assess(tracker.latest_message.get("text") or "", complaints, intent)
    if not mood.angry:
        return [], False
    count = int(tracker.get_slot("anger_count") or 0) + 1
    empathy = complaints["empathy"][(count - 1) % len(complaints["empathy"])]
    dispatcher.utter_message(response="utter_anger_empathy", empathy=empathy)
    return [SlotSet("anger_count", count)], count >= ANGER_ESCALATE_AT


def end_form(tracker: Tracker) -> List[Dict[Text, Any]]:
    if tracker.active_loop.get("name"):
        return [ActiveLoop(None), SlotSet("requested_slot", None)]
    return []


def hand_off(dispatcher: CollectingDispatcher, tracker: Tracker, reason: Text,
             priority: Optional[int] = None) -> List[Dict[Text, Any]]:
    """Queue for an agent (and pause the bot) or take a message; always a logged ticket."""
    k = knowledge()
    hours = k.section("cinema")["human_service"]
    escalation = k.section("complaints")["escalation"]
    open_now = queue.in_service_hours(None, hours["start"], hours["end"])
    try:
        with session_scope(database_url()) as session:
            online = bool(queue.agents_online(session)) if open_now else False
    except Exception:  # database down: take a message (the ticket is queued durably)
        logger.exception("handoff: cannot read agent presence")
        online = False
    # Asking for a human right after a complaint: the agent takes that complaint's ticket, no second one.
    receipt = _recent_complaint(tracker.sender_id) or log_ticket(
        dispatcher, tracker, type="handoff", facts={"reason": reason}, priority=priority, announce=False)
    events = end_form(tracker) + [SlotSet("fallback_count", 0)]
    if online and receipt.number:
        with session_scope(database_url()) as session:
            queue.request_human(session, tracker.sender_id, tracker.get_latest_input_channel() or "",
                                priority or 4, receipt.number)
            ahead = max(0, (queue.position(session, tracker.sender_id) or 1) - 1)
        # Nobody ahead: 「马上为您接通」, never 「您前面还有0位」.
        waiting = escalation["human_online"].format(position=ahead) if ahead or not escalation.get("human_next") \
            else escalation["human_next"]
        dispatcher.utter_message(response="utter_handoff_waiting", text=waiting)
        _publish("queue", {"sender_id": tracker.sender_id, "ticket": receipt.number})
        return events + [ConversationPaused()]
    due = due_label(receipt.reply_due) if receipt.reply_due else ""
    ticket = receipt.number or receipt.client_ref[:8]
    # Inside service hours nobody is online: say that, not that it is outside the hours.
    wording = escalation.get("human_no_agent") if open_now and escalation.get("human_no_agent") else escalation["human_offline"]
    dispatcher.utter_message(response="utter_handoff_waiting", text=wording.format(
        start=hours["start"], end=hours["end"], ticket=ticket, due=due))
    return events


RECENT_COMPLAINT = dt.timedelta(minutes=30)


def _recent_complaint(sender_id: Text) -> Optional[Receipt]:
    """The patron's open complaint of the last half hour, as the handoff's ticket (None when there is none
    or the database cannot say)."""
    try:
        with session_scope(database_url()) as session:
            ticket = tickets.latest_open_for_sender(session, sender_id, dt.datetime.utcnow() - RECENT_COMPLAINT,
                                                    types=("complaint",))
            if ticket is None:
                return None
            return Receipt(queued=False, number=ticket.number, client_ref=ticket.client_ref or ticket.number,
                           reply_due=ticket.reply_due)
    except Exception:
        logger.exception("handoff: cannot look up a recent complaint")
        return None


def _publish(kind: Text, payload: Dict[Text, Any]) -> None:
    """Tell the agent desk at once (Redis pub/sub); the desk also polls the database, so this may fail."""
    try:
        import os

        import redis

        r = redis.Redis(host=os.environ.get("REDIS_HOST", "127.0.0.1"), port=int(os.environ.get("REDIS_PORT", "6379")),
                        socket_connect_timeout=0.5, socket_timeout=0.5)
        r.publish("xinghe:desk", json.dumps({"kind": kind, **payload}, ensure_ascii=False))
    except Exception:
        logger.debug("desk notification not published", exc_info=True)


publish = _publish
