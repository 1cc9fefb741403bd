"""A correction right after a form was filed (「号码错了，是189…」「人数打错了，是二十五个」) amends the ticket just
logged and says so, instead of answering the topic again or opening a second ticket."""
from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import answering, form_values
from actions.common import knowledge, now
from actions.escalation import REUSE_WINDOW
from actions.forms import CORRECTABLE, CORRECTION, FORM_TOPIC
from bot.answers.ask import is_question
from bot.answers.context import DialogueContext
from bot.answers.correction import new_value
from bot.answers.resolvers import normalize_order_id, normalize_phone, parse_party_size
from bot.db import database_url, session_scope
from bot.privacy import mask_phone
from bot.tickets import store as tickets

logger = logging.getLogger(__name__)
# what the classifier makes of a wish or a name said after filing (a new complaint is its own intent)
SUPPLEMENT_INTENTS = ("nlu_fallback", "inform", "give_feedback", "affirm", "thank")
WRONG = re.compile(r"错了|有误|不是这个")  # 「号码错了，是189…」

# ticket type → the slots a correction may replace → the ticket's fact for each (None: the contact name)
AMENDABLE: Dict[str, Dict[str, Optional[str]]] = {
    "group_booking": {"party_size": "party_size", "booking_time": "when", "film": "film",
                      "hall_pref": "hall_preference", "invoice": "invoice", "contact_name": None},
    "lost_item": {"lost_where": "where", "seat": "seat"},
    "complaint": {"complaint_when": "when"},
    "order_problem": {},
    "refund": {},
}
# a ticket's type is its form's name without 「_form」 (actions/service.py files them so)
TOPIC_OF_TYPE = {form.removesuffix("_form"): topic for form, topic in FORM_TOPIC.items()}


def _on_filed_topic(tracker: Tracker) -> Optional[DialogueContext]:
    """The conversation's context when it is still on a form's topic outside any form (a filed ticket may be
    meant), None otherwise (inside a form its own validation takes the values; emergency mode first)."""
    if tracker.active_loop.get("name"):
        return None
    ctx = answering.context_of(tracker)
    return None if ctx.in_emergency or ctx.topic not in TOPIC_OF_TYPE.values() else ctx


def _latest_filed(session: Any, tracker: Tracker, ctx: DialogueContext) -> Optional[Any]:
    """The patron's ticket filed in the last half hour by the form of the conversation's topic, if any."""
    since = dt.datetime.now(dt.timezone.utc) - REUSE_WINDOW
    ticket = tickets.latest_open_for_sender(session, tracker.sender_id, since, tuple(AMENDABLE))
    return ticket if ticket is not None and TOPIC_OF_TYPE[ticket.type] == ctx.topic else None


def correct_filed(dispatcher: CollectingDispatcher, tracker: Tracker) -> Optional[List[Dict[Text, Any]]]:
    """Amend the patron's ticket filed in the last half hour when this turn corrects one of its values and the
    conversation is still on that form's topic; None when the turn is no such correction."""
    folded = answering.folded_text(tracker) or ""
    ctx = _on_filed_topic(tracker)
    if ctx is None or not (CORRECTION.search(folded) or WRONG.search(folded)):
        return None
    words = new_value(folded) or folded
    try:
        with session_scope(database_url()) as session:
            ticket = _latest_filed(session, tracker, ctx)
            if ticket is None:
                return None
            said = _amendments(ticket, words, folded)
            if not said:
                return None
            facts = {fact: value for fact, value, _, _ in said if fact and fact not in ("phone", "name")}
            phone = next((value for fact, value, _, _ in said if fact == "phone"), None)
            name = next((value for fact, value, _, _ in said if fact == "name"), None)
            tickets.add_facts(session, ticket, actor="bot", facts=facts, phone=phone, name=name)
            number = ticket.number
    except Exception:  # database down: nothing amended, the turn is answered as before
        logger.exception("correction: cannot amend the filed ticket")
        return None
    for _, _, what, shown in said:
        dispatcher.utter_message(response="utter_ticket_corrected", ticket=number, what=what, value=shown)
    # listen next: the rule that starts a form after action_complain (or another form's first action) must not
    # open a second one for the value just corrected
    return [SlotSet("topic_context", ctx.to_slot()), FollowupAction("action_listen")]


# 「希望尽快整改 给我个答复 我姓韩」 right after filing: what the patron wants, or who they are — added to the ticket
SUPPLEMENT = re.compile(r"希望|要求|给我(个|一个)?(答复|说法|交代)|尽快|道歉|赔偿|补偿|整改|我姓|我叫|联系人")


def supplement_filed(dispatcher: CollectingDispatcher, tracker: Tracker) -> Optional[List[Dict[Text, Any]]]:
    """Add what the patron says right after a form was filed (a wish, their name) to that ticket and say so;
    None when the turn is no such supplement (a question, another topic, nothing filed)."""
    folded = answering.folded_text(tracker) or ""
    ctx = _on_filed_topic(tracker)
    if ctx is None or not SUPPLEMENT.search(folded) or is_question(folded) or len(folded) > 80:
        return None
    try:
        with session_scope(database_url()) as session:
            ticket = _latest_filed(session, tracker, ctx)
            if ticket is None:
                return None
            name = form_values.contact_name(folded)
            tickets.add_facts(session, ticket, actor="bot", facts={"supplement": folded[:300]},
                              name=name if name and not ticket.contact_name else None)
            number = ticket.number
    except Exception:  # database down: the turn is answered as before
        logger.exception("supplement: cannot add to the filed ticket")
        return None
    dispatcher.utter_message(response="utter_ticket_supplemented", ticket=number)
    return [SlotSet("topic_context", ctx.to_slot()), FollowupAction("action_listen")]


def _amendments(ticket: Any, words: str, folded: str) -> List[tuple]:
    """(fact, value, what, shown) for each value the words replace on this ticket."""
    out = []
    phone = normalize_phone(words)
    if phone and phone != ticket.contact_phone:
        out.append(("phone", phone, "手机号", mask_phone(phone)))
    order_id = normalize_order_id(words)
    if order_id and order_id != (ticket.facts or {}).get("order_id"):
        out.append(("order_id", order_id, "订单号", order_id))
    name = form_values.contact_name(words)
    if name and name != ticket.contact_name and "contact_name" not in AMENDABLE.get(ticket.type, {}):
        out.append(("name", name, "联系人", name))  # 「手机号我打错了，是151…，我姓潘」
    if out:
        return out
    slots = AMENDABLE.get(ticket.type, {})
    if "人数" in folded and parse_party_size(words) and not form_values.PARTY.search(words):
        words += "人"  # 「人数打错了，是二十五个」
    found = form_values.prefill(knowledge(), now().date(), list(slots), words)
    for slot, value in found.items():
        fact = slots[slot]
        stored = parse_party_size(value) if slot == "party_size" else value
        if fact is None:
            out.append(("name", value, CORRECTABLE[slot], value))
        elif (ticket.facts or {}).get(fact) != stored:
            out.append((fact, stored, CORRECTABLE[slot], value))
    return out


def corrects_filed(cls: type) -> type:
    """Wrap an action's run: a correction of the ticket just filed is handled before the action's own answer."""
    original = cls.run

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        amended = correct_filed(dispatcher, tracker)
        if amended is None and (tracker.latest_message.get("intent") or {}).get("name") in SUPPLEMENT_INTENTS:
            amended = supplement_filed(dispatcher, tracker)
        if amended is not None:
            return amended
        return await original(self, dispatcher, tracker, domain)

    run.__doc__ = original.__doc__
    cls.run = run
    return cls
