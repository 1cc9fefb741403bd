"""Rasa actions for the informational intents: thin adapters over ``bot.answers`` (see ``turn.answer_turn``).

Each topic's action answers in the context of the conversation, so a specific question gets its facet's
answer and a follow-up keeps the topic and the values said before."""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import answering
from actions.common import knowledge
from actions.escalation import deescalate, hand_off
from actions.filed import corrects_filed
from actions.service import ActionComplain, NO_FORM, emergency_follow_up
from bot.answers.topics import INTENT_TOPIC, TOPICS
from bot.answers.emergency import URGENT

EMERGENCY_ANSWER_TOO = 0.55  # in emergency mode, only a question this clear is also answered
# 「刚才那片子…」「刚才说的，…」 point back in the chat, not to something happening now
RECALLED = re.compile(r"刚才(你|您)?(说|问|讲|提|聊)?的?(那|这)?")
# 「我要投诉，昨晚九点IMAX那场停车场…」: a complaint said outright, whatever topic its details named
COMPLAINT_SAID = re.compile(r"(我|我们)?(要|想|必须|一定要|得)投诉|^投诉[:：，,\s]|投诉你们|我投诉|"
                            # 「4DX喷水把我新买的手机弄坏了」: damage the cinema caused, told as it is
                            r"把我.{0,10}(弄坏|搞坏|弄湿|淋湿|喷湿|烫坏|刮花|夹坏|摔坏|弄脏)了")


async def complaint_said(dispatcher: CollectingDispatcher, tracker: Tracker,
                         domain: Dict[Text, Any]) -> Optional[List[Dict[Text, Any]]]:
    """A complaint said outright (「我要投诉…」「把我的手机弄坏了」) starts the complaint, whatever the classifier
    read; None when the words say none (or a form is already running)."""
    if not COMPLAINT_SAID.search(answering.folded_text(tracker)) or tracker.active_loop.get("name"):
        return None
    events = await ActionComplain().run(dispatcher, tracker, domain)
    return events if NO_FORM in events else events + [FollowupAction("complaint_form")]


class TopicAction(Action):
    """Answer the turn with this topic as the classifier's choice."""

    topic: str = "showtimes"

    def name(self) -> Text:
        return f"action_{self.topic}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        intent, confidence = answering.intent_of(tracker)
        ctx = answering.context_of(tracker)
        if ctx.in_emergency:
            # safety first: the guidance again; a plain, confident question is answered after it
            events = emergency_follow_up(dispatcher, tracker, ctx)
            if confidence < EMERGENCY_ANSWER_TOO or URGENT.search(RECALLED.sub("", answering.folded_text(tracker))):
                return events
            return events + (answering.answer(dispatcher, tracker, self.topic, confidence) or [])
        complained = await complaint_said(dispatcher, tracker, domain)
        if complained is not None:
            return complained
        mood_events, escalate = deescalate(dispatcher, tracker)
        if escalate:
            return mood_events + hand_off(dispatcher, tracker, "angry_twice", priority=2)
        if INTENT_TOPIC.get(intent or "") != self.topic:  # chosen by a button or a rule, not by the classifier
            confidence = 1.0
        events = answering.answer(dispatcher, tracker, self.topic, confidence)
        if events is None:  # nothing in context fits: the topic's own answer, never silence
            events = answering.answer(dispatcher, tracker, self.topic, 1.0, fresh_context=True) or []
        return mood_events + events


corrects_filed(TopicAction)  # 「人数打错了，是二十五个」 after the booking was filed: the ticket amended


def _topic_action(topic: str) -> type:
    return type(f"Action_{topic}", (TopicAction,), {"topic": topic})


TOPIC_ACTIONS = {topic: _topic_action(topic) for topic in TOPICS if topic not in ("order_problem", "complaint")}
ActionShowtimes = TOPIC_ACTIONS["showtimes"]
ActionFilmInfo = TOPIC_ACTIONS["film_info"]
ActionHallTypes = TOPIC_ACTIONS["hall_types"]
ActionTicketPrice = TOPIC_ACTIONS["ticket_price"]
ActionRefundPolicy = TOPIC_ACTIONS["refund_policy"]
ActionParking = TOPIC_ACTIONS["parking"]
ActionMemberPoints = TOPIC_ACTIONS["member_points"]
ActionMemberBenefits = TOPIC_ACTIONS["member_benefits"]
ActionFacilities = TOPIC_ACTIONS["facilities"]
ActionViewingRules = TOPIC_ACTIONS["viewing_rules"]
ActionCinemaInfo = TOPIC_ACTIONS["cinema_info"]
ActionVipService = TOPIC_ACTIONS["vip_service"]


class ActionOrderProblemInfo(TopicAction):
    topic = "order_problem"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        # the form that follows asks for the order id in the store's words
        events = await super().run(dispatcher, tracker, domain)
        return events + [SlotSet("order_id_format", knowledge().section("orders")["order_id"]["text"])]
