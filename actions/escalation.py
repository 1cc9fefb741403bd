"""De-escalation on every message and handoff to a human (queue inside service hours with an agent
online, otherwise a logged message with the reply time). Wording comes from knowledge/complaints.yml."""
from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import knowledge
from actions.tickets import due_label, log_ticket
from bot.anger import assess
from bot.db import database_url, session_scope
from bot.tickets import handoff as queue
from bot.tickets import store as tickets

logger = logging.getLogger(__name__)
ANGER_ESCALATE_AT = 2


def deescalate(dispatcher: CollectingDispatcher, tracker: Tracker) -> Tuple[List[Dict[Text, Any]], bool]:
    """Answer anger with empathy first; returns the events and whether to hand off now (anger twice)."""
    k = knowledge()
    complaints = k.section("complaints")
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    text = tracker.latest_message.get("text") or ""
    folded = tracker.latest_message.get("folded_text") or ""
    # the words as written and as the NLU read them (「搞咩」 folds to 「搞什么」)
    mood = assess(text if not folded or folded == text else f"{text}\n{folded}", complaints, intent)
    if not mood.angry:
        return [], False
    before = int(tracker.get_slot("anger_count") or 0)
    count = before + 1
    empathy = complaints["empathy"][(count - 1) % len(complaints["empathy"])]
    dispatcher.utter_message(response="utter_anger_empathy", empathy=empathy)
    if mood.mild:  # a reproach is met with empathy, not counted towards handing the patron off; the count is
        # set to what it was so the caller still sees that empathy was said (and does not say it twice)
        return [SlotSet("anger_count", before)], False
    return [SlotSet("anger_count", count)], count >= ANGER_ESCALATE_AT


def end_form(tracker: Tracker) -> List[Dict[Text, Any]]:
    if tracker.active_loop.get("name"):
        return [ActiveLoop(None), SlotSet("requested_slot", None)]
    return []


REUSE_WINDOW = dt.timedelta(minutes=30)
# handoffs the patron asked for (or an angry patron is offered): with nobody online they leave a message
TAKES_A_MESSAGE = ("patron_request", "angry_twice")
REUSED_TYPES = ("handoff", "complaint", "order_problem", "refund", "lost_item")


def has_recent_ticket(tracker: Tracker) -> bool:
    """Whether this patron has a handoff or service ticket still open from the last half hour."""
    try:
        with session_scope(database_url()) as session:
            return tickets.latest_open_for_sender(session, tracker.sender_id,
                                                  dt.datetime.now(dt.timezone.utc) - REUSE_WINDOW,
                                                  REUSED_TYPES) is not None
    except Exception:  # database down: no ticket to speak of
        logger.exception("handoff: cannot read recent tickets")
        return False


def hand_off(dispatcher: CollectingDispatcher, tracker: Tracker, reason: Text,
             priority: Optional[int] = None) -> List[Dict[Text, Any]]:
    """Queue for an agent (and pause the bot) or take a message; always a logged ticket."""
    k = knowledge()
    hours = k.section("cinema")["human_service"]
    escalation = k.section("complaints")["escalation"]
    open_now = queue.in_service_hours(None, hours["start"], hours["end"])
    recent = None
    try:
        with session_scope(database_url()) as session:
            online = bool(queue.agents_online(session)) if open_now else False
            # asked again, or right after a complaint: the ticket already logged is the one a person takes
            recent = tickets.latest_open_for_sender(session, tracker.sender_id,
                                                    dt.datetime.now(dt.timezone.utc) - REUSE_WINDOW, REUSED_TYPES)
            recent = (recent.number, recent.reply_due) if recent is not None else None
    except Exception:  # database down: take a message (the ticket is queued durably)
        logger.exception("handoff: cannot read agent presence")
        online = False
    if recent is not None and priority != 1:
        number, reply_due, client_ref = recent[0], recent[1], ""
    else:
        receipt = log_ticket(dispatcher, tracker, type="handoff", facts={"reason": reason}, priority=priority,
                             announce=False)
        number, reply_due, client_ref = receipt.number, receipt.reply_due, receipt.client_ref
    events = end_form(tracker) + [SlotSet("fallback_count", 0)]
    if online and number:
        with session_scope(database_url()) as session:
            queue.request_human(session, tracker.sender_id, tracker.get_latest_input_channel() or "",
                                priority or 4, number)
            ahead = max(0, (queue.position(session, tracker.sender_id) or 1) - 1)
        waiting = escalation["human_online"].format(position=ahead) if ahead else escalation["human_next"]
        dispatcher.utter_message(response="utter_handoff_waiting", text=waiting)
        _publish("queue", {"sender_id": tracker.sender_id, "ticket": number})
        return events + [ConversationPaused()]
    due = due_label(reply_due) if reply_due else ""
    ticket = number or client_ref[:8]
    # Inside service hours nobody is online: say that, not that it is outside the hours.
    wording = escalation.get("human_no_agent") if open_now and escalation.get("human_no_agent") else escalation["human_offline"]
    if not number and escalation.get("human_queued"):
        # kept in the durable queue: a reference now, the number in this channel once it is stored
        wording = escalation["human_queued"]
    dispatcher.utter_message(response="utter_handoff_waiting", text=wording.format(
        start=hours["start"], end=hours["end"], ticket=ticket, ref=ticket, due=due))
    if reason in TAKES_A_MESSAGE:
        # nobody to take over now: the patron leaves the message (and a phone) on that ticket
        return events + [SlotSet("leave_message", None), FollowupAction("message_form")]
    return events


def _publish(kind: Text, payload: Dict[Text, Any]) -> None:
    """Tell the agent desk at once (Redis pub/sub); the desk also polls the database, so this may fail."""
    try:
        from bot import redis_conn

        r = redis_conn.client(socket_connect_timeout=0.5, socket_timeout=0.5)
        r.publish("xinghe:desk", json.dumps({"kind": kind, **payload}, ensure_ascii=False))
    except Exception:
        logger.debug("desk notification not published", exc_info=True)


publish = _publish
