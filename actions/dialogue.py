"""Conversation glue: the welcome, turns that are not plainly one topic (bare values, low confidence,
feedback, out of scope, goodbyes that carry a value), emergency mode, and honest clarification."""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import answering
from actions.common import knowledge, latest_entities
from actions.escalation import deescalate, hand_off
from actions.filed import corrects_filed
from actions.service import ActionFeedback, emergency_follow_up
from actions.topics import complaint_said
from bot.answers.ask import is_question
from bot.answers.context import DialogueContext
from bot.answers.facets import LONG_MESSAGE
from bot.answers.resolvers import normalize_order_id, normalize_phone
from bot.answers.topics import INTENT_TOPIC, TOPICS
from bot.db import database_url, session_scope
from bot.privacy import mask_phone
from bot.tickets import store as tickets

# Without a previous topic, a bare value most likely continues this topic.
DEFAULT_TOPIC_FOR_ENTITY = [("film", "showtimes"), ("date", "showtimes"), ("time", "showtimes"),
                            ("hall_type", "hall_types"), ("ticket_type", "ticket_price"), ("facility", "facilities")]
CLARIFY_EXCLUDE = {"nlu_fallback", "inform", "affirm", "deny", "request_human", "greet", "goodbye", "thank"}
# Yes/no, thanks and goodbyes: answered by their response unless the conversation gives them a meaning.
PLEASANTRY_HEAD = re.compile(r"^(谢谢|多谢|感谢|谢了|好的|好吧|嗯+|OK|哈哈+|你好|您好|哈喽|嗨|HELLO|HI)[你您哦啊呀哈啦了的～~]*[，,。.!！\s]+", re.I)
SMALL_TALK = {"affirm": "utter_affirm_ack", "deny": "utter_deny_ack", "thank": "utter_thank",
              "goodbye": "utter_goodbye"}
CLARIFYING = {"utter_clarify", "utter_rephrase"}
# 「？？？」「qwertyuiop」: no word at all (the classifier still picks a small-talk intent for them); emoji and
# the latin small talk patrons type (ok, thx, 3q, 88) are words
NO_WORDS = re.compile(r"[\s\W_]*|[A-Za-z\s]{5,}", re.A)
LATIN_TALK = re.compile(r"\b(ok|okay|yes|yeah|yep|no|nope|thx|thanks?|ty|bye|hi|hello|hey|sorry|sure|fine|good|great|xie|xiexie|zaijian|haode|hao)\b", re.I)


# 「嗯嗯嗯呜啦啦啦」「阿巴阿巴」: sounds, no words (a plain 「嗯嗯」「哈哈」 still is a yes or a laugh)
SOUNDS = set("呜啦咕噜阿巴叽呱咿嘿吼喵汪")
INTERJECTIONS = set("嗯啊哦噢呃额诶哎唉哈呵呀哇") | SOUNDS


def says_nothing(text: Text) -> bool:
    """Only punctuation, letters that are no word (a keyboard mash) or sounds: not thanks or a yes."""
    text = (text or "").strip()
    letters = [c for c in text if unicodedata.category(c)[0] == "L"]
    if len(letters) >= 4 and all(c in INTERJECTIONS for c in letters) and any(c in SOUNDS for c in letters):
        return True
    if not text or any(ord(c) > 0x7F and unicodedata.category(c) in ("Lo", "Ll", "Lu", "So") for c in text):
        return False  # Chinese, or an emoji: something was said
    return bool(NO_WORDS.fullmatch(text)) and not LATIN_TALK.search(text)


class ActionGreet(Action):
    def name(self) -> Text:
        return "action_greet"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(response="utter_welcome", cinema_name=knowledge().section("cinema")["name"])
        return []


@corrects_filed  # a correction of the ticket just filed, before anything else reads the turn
class ActionRoute(Action):
    """A turn no topic claimed outright: emergency mode first, then a follow-up or a specific question in
    the conversation's context, else what the intent itself asks (clarify, thanks for feedback, …)."""

    def name(self) -> Text:
        return "action_route"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        intent, confidence = answering.intent_of(tracker)
        ctx = answering.context_of(tracker)
        if ctx.in_emergency:
            return emergency_follow_up(dispatcher, tracker, ctx)
        resumed = resume_interrupted_form(dispatcher, tracker, ctx)
        if resumed is not None:
            return resumed
        if intent in SMALL_TALK and says_nothing(answering.folded_text(tracker)):
            return await ActionClarify().run(dispatcher, tracker, domain)  # misunderstood: twice → a person
        if intent in SMALL_TALK:
            return await self._small_talk(intent, dispatcher, tracker, domain)
        complained = await complaint_said(dispatcher, tracker, domain)
        if complained is not None:
            return complained
        # anger first, whatever the words turn out to ask (「你们机器人听得懂人话吗😡」 read as nothing sure)
        mood, escalate = deescalate(dispatcher, tracker) if intent != "give_feedback" else ([], False)
        if escalate:
            return mood + hand_off(dispatcher, tracker, "angry_twice", priority=2)
        return mood + await self._route(intent, confidence, ctx, dispatcher, tracker, domain)

    async def _route(self, intent: Text, confidence: float, ctx: Any, dispatcher: CollectingDispatcher,
                     tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        if intent == "give_feedback" and not is_question(answering.folded_text(tracker)):
            # 「你们辛苦了，服务挺好的」: thanks for the feedback, not a facet its words lean to (前台, 服务)
            return await ActionFeedback().run(dispatcher, tracker, domain)
        events = answering.answer(dispatcher, tracker, None, confidence if intent != "nlu_fallback" else 0.0)
        if events is not None:
            return events
        if intent == "nlu_fallback":
            # unsure between meanings: the likeliest topic still answers when its words or values decide it
            events = answering.answer_if_decided(dispatcher, tracker, *self._top_topic(tracker))
            if events is not None:
                return events
            film = latest_entities(tracker).get("film")
            if film and knowledge().film_by_name(film) is not None and not ctx.topic:
                # 「我打算周日去看笑料百出」 nobody understood: a film of the store named — its showings
                events = answering.answer(dispatcher, tracker, "showtimes", 1.0)
                if events is not None:
                    return events
            if len(answering.folded_text(tracker)) > LONG_MESSAGE:
                # a long (voice) message with the question in one clause: a specific question it matches well
                events = answering.answer(dispatcher, tracker, None, 0.0, open_topics=True, by_clause=True)
                if events is not None:
                    return events
        if intent in ("inform", "deny", "nlu_fallback"):
            corrected = correct_recent_ticket(dispatcher, tracker)
            if corrected is not None:
                return corrected
        if intent == "inform" and latest_entities(tracker).get("order_id") and not tracker.active_loop.get("name"):
            # 「好，订单号是XH…」 after the refund rules (or an order's trouble): that request begins with the id
            form = "refund_form" if ctx.topic == "refund_policy" else "order_problem_form"
            order_id = normalize_order_id(latest_entities(tracker)["order_id"])
            if order_id:
                return [SlotSet("order_id", order_id), FollowupAction(form)]
        if intent == "inform":
            values = latest_entities(tracker)
            topic = next((t for entity, t in DEFAULT_TOPIC_FOR_ENTITY if entity in values), None)
            if topic in TOPICS:
                return answering.answer(dispatcher, tracker, topic, 1.0) or []
        if intent == "give_feedback":
            return await ActionFeedback().run(dispatcher, tracker, domain)
        if intent == "out_of_scope":
            dispatcher.utter_message(response="utter_out_of_scope")
            # a second turn in a row the bot cannot help with (or did not understand): a person is offered
            count = int(tracker.get_slot("fallback_count") or 0) + 1
            if count >= 2:
                human = {"title": ActionClarify._label(domain, "request_human") or "转人工", "payload": "/request_human"}
                dispatcher.utter_message(response="utter_offer_human_out_of_scope", buttons=[human])
                return [SlotSet("fallback_count", 0)]
            return [SlotSet("fallback_count", count)]
        # remember the film and day said, so 「它多长时间」 after the clarification still knows them
        return await ActionClarify().run(dispatcher, tracker, domain) + answering.remember_values(tracker)

    async def _small_talk(self, intent: Text, dispatcher: CollectingDispatcher, tracker: Tracker,
                          domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        """「好」 after an offer of a person accepts it; 「不是」「你没懂」 after a clarification is another miss;
        「不是手机，是电动车充电」 still answers what it names; otherwise the intent's own response."""
        said = answering.last_bot_responses(tracker)
        if intent == "affirm" and "utter_offer_human" in said:
            return hand_off(dispatcher, tracker, "patron_request")
        if intent == "deny" and said & (CLARIFYING | {"utter_offer_human"}):  # 「不是这个」: still not understood
            return await ActionClarify().run(dispatcher, tracker, domain)
        # 「收费不」「有冇」 read as a no, but asked as a question: a follow-up on what was just answered
        folded = answering.folded_text(tracker)
        # 「谢谢你哦，那卖品部也开到那么晚吗」「ok 那周五3D就是55对吧」: thanks or an ok, then the next question
        asked = is_question(folded) and (intent in ("deny", "affirm") or bool(PLEASANTRY_HEAD.match(folded)))
        events = answering.answer(dispatcher, tracker, None, 0.0, allow_follow_up=asked)
        if events is not None:
            return events
        dispatcher.utter_message(response=SMALL_TALK[intent])
        return []

    @staticmethod
    def _top_topic(tracker: Tracker) -> tuple:
        ranking = [r for r in tracker.latest_message.get("intent_ranking", []) if r.get("name") != "nlu_fallback"]
        if not ranking:
            return None, 0.0
        return INTENT_TOPIC.get(ranking[0]["name"]), float(ranking[0].get("confidence") or 0.0)


def resume_interrupted_form(dispatcher: CollectingDispatcher, tracker: Tracker,
                            ctx: Any) -> Optional[List[Dict[Text, Any]]]:
    """「人已经送走了。钱包的事：黑色的…」: the emergency over, the form it interrupted goes on (its answers kept)."""
    loop = ctx.values.get("interrupted")
    was = DialogueContext.from_slot(tracker.get_slot(answering.CONTEXT_SLOT))
    if not loop or ctx.in_emergency or not was.in_emergency:  # only as the patron says it is over
        return None
    ctx.values.pop("interrupted", None)
    dispatcher.utter_message(response="utter_form_resumed")
    return [SlotSet(answering.CONTEXT_SLOT, ctx.to_slot()), FollowupAction(loop)]


CORRECTION_WINDOW = dt.timedelta(minutes=30)
CORRECTION = re.compile(r"错|不对|改成|改为|应该是|换成|换个|更正|写错|打错|输错|重新|是这个")


def correct_recent_ticket(dispatcher: CollectingDispatcher, tracker: Tracker) -> Optional[List[Dict[Text, Any]]]:
    """「电话错了，是151…」 right after a ticket was logged: the ticket takes the new number, and says so."""
    text = tracker.latest_message.get("text") or ""
    phone = normalize_phone(text)
    if phone is None or not CORRECTION.search(text):
        return None
    since = dt.datetime.now(dt.timezone.utc) - CORRECTION_WINDOW
    with session_scope(database_url()) as session:
        ticket = tickets.latest_open_for_sender(session, tracker.sender_id, since)
        if ticket is None:
            return None
        tickets.add_facts(session, ticket, actor="bot", facts={}, phone=phone)
        number = ticket.number
    dispatcher.utter_message(response="utter_value_corrected", what=f"工单{number}的联系电话", value=mask_phone(phone))
    return [SlotSet("phone", phone)]


class ActionClarify(Action):
    """Low confidence: the two likeliest meanings as buttons and 转人工; after two misses in a row, offer a
    person (the patron chooses; no ticket is opened behind their back)."""

    def name(self) -> Text:
        return "action_clarify"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        count = int(tracker.get_slot("fallback_count") or 0) + 1
        human = {"title": self._label(domain, "request_human"), "payload": "/request_human"}
        if count >= 2:
            dispatcher.utter_message(response="utter_offer_human", buttons=[human])
            return [SlotSet("fallback_count", 0)]
        buttons: List[Dict[str, str]] = []
        for r in tracker.latest_message.get("intent_ranking", []):
            label = self._label(domain, r.get("name"))
            if r.get("name") in CLARIFY_EXCLUDE or label is None or any(b["title"] == label for b in buttons):
                continue
            buttons.append({"title": label, "payload": f"/{r['name']}"})
            if len(buttons) == 2:
                break
        dispatcher.utter_message(response="utter_clarify" if buttons else "utter_rephrase", buttons=buttons + [human])
        return [SlotSet("fallback_count", count)]

    @staticmethod
    def _label(domain: Dict[Text, Any], intent: Optional[Text]) -> Optional[Text]:
        responses = domain.get("responses", {}).get(f"utter_label_{intent}")
        return responses[0].get("text") if responses else None
