"""Service flows that end in a ticket: complaints, lost items, group bookings, order problems,
refunds, emergencies, handoff and feedback. Forms collect the facts (see actions/forms.py)."""
from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import answering, form_values
from actions.common import knowledge, latest_entities, money, now
from actions.escalation import REUSE_WINDOW, REUSED_TYPES, deescalate, end_form, hand_off, has_recent_ticket, publish
from bot.answers.resolvers import normalize_order_id, normalize_phone, parse_party_size, resolve_date, resolve_time_window
from actions.tickets import due_label, log_ticket, writer
from bot.privacy import mask_phone
from actions.filed import corrects_filed
from actions.forms import FORM_TOPIC, MESSAGE_SAID, PLACE
from bot.answers.context import EMERGENCY_TURNS, DialogueContext, is_elliptical
from bot.anger import Mood, assess
from bot.answers.ask import STRONG_QUESTION, is_question
from bot.answers.emergency import NOW, PAST, danger_named
from bot.answers.topics import COMPLAINT_REMEDY, about_complaint, complaint_category_named, GROUP_PRICE, INTENT_TOPIC, TOPICS
from bot.nlu import knowledge_names
from bot.text.normalise import fold
from bot.answers.correction import ADMITTED, corrected
from bot.answers.facets import LONG_MESSAGE
from bot.answers.turn import QUOTED_TITLE, answer_turn, asked_as_film, facet_turn, unknown_title
from bot.db import database_url, session_scope
from bot.kb import rules
from bot.kb.store import Knowledge, Showing
from bot.tickets import store as tickets

logger = logging.getLogger(__name__)
FORM_SLOTS = ["complaint_detail", "complaint_when", "complaint_wish", "lost_item", "lost_where", "seat",
              "contact_name", "party_size", "booking_time", "film", "hall_pref", "invoice", "order_id",
              "purchase_channel", "refund_show", "complaint_category", "complaint_onsite", "order_problem_kind",
              "form_retries", "needs_human"]


GROUP_SLOTS = ("contact_name", "phone", "party_size", "booking_time", "film", "hall_pref", "invoice")


def reset_form_slots() -> List[Dict[Text, Any]]:
    return [SlotSet(s, None) for s in FORM_SLOTS if s not in ("form_retries", "needs_human")] + \
        [SlotSet("form_retries", 0), SlotSet("needs_human", False)]


def complaint_category(k: Knowledge, text: Text) -> Dict[str, Any]:
    """The complaint category whose keywords the message mentions (the last one, 其他, otherwise)."""
    cats = k.section("complaints")["categories"]
    return next((c for c in cats if any(w in text for w in c["keywords"])), cats[-1])


INFORMATIONAL = set(TOPICS) - {"complaint"}
# a question answered instead of a complaint: the complaint form the rule would start next is not started
NO_FORM = FollowupAction("action_listen")
# what a refund or change request says (「退」「改签」「换场」 …)
REFUND_SAID = re.compile(r"退|改签|改期|改时间|改场|换场|换票|换一场|换个场|换到|改到|取消|不看了|不去了|去不了|来不了|看不了|赶不上|买错|订错")
WISH_CLAUSE = re.compile(r"希望|要求|想要|给个说法|给我个说法|给个解释|退钱|退票|退款|赔偿|补偿|道歉|改签")


def wish_in(text: Text) -> Optional[Text]:
    """What the patron wants, when the opening message already says it (「…我希望你们给个说法」)."""
    clauses = [c.strip() for c in re.split(r"[，,。！!？?；;]", text or "") if c.strip()]
    wished = [c for c in clauses[1:] if WISH_CLAUSE.search(c)]  # the first clause says what happened
    return "，".join(wished)[:200] or None


def _when_from(values: Dict[str, str], least: int = 2) -> Optional[Text]:
    """The showing the patron named (hall, date, time, film), if they named at least ``least`` of them."""
    parts = [values.get(key) for key in ("hall", "hall_type", "date", "time", "film") if values.get(key)]
    return " ".join(parts) if len(parts) >= least else None


def _question_not_complaint(dispatcher: CollectingDispatcher, tracker: Tracker, ctx: DialogueContext,
                            folded: Text, facet_only: bool = False) -> Optional[List[Dict[Text, Any]]]:
    ranking = [r for r in (tracker.latest_message or {}).get("intent_ranking") or []
               if r.get("name") not in ("complain", "nlu_fallback")]
    topic = INTENT_TOPIC.get(ranking[0]["name"]) if ranking else None
    turn = answer_turn(knowledge(), ctx, topic, float(ranking[0].get("confidence") or 0) if ranking else 0.0,
                       folded, (tracker.latest_message or {}).get("entities") or [],
                       by_clause=len(folded) > LONG_MESSAGE)  # a long story with the question at its end
    if not (turn.handled and (turn.facet or turn.decided and not facet_only)):
        return None
    answering.suggest_follow_ups(turn)
    turn.replies.replay(dispatcher)
    return [SlotSet(answering.CONTEXT_SLOT, turn.context.to_slot())]


def _unknown_quoted(k: Knowledge, text: Text) -> Optional[Text]:
    """A title in 《》 that is no film of the store (「你们有《无声告白》吗」)."""
    m = QUOTED_TITLE.search(text or "")
    return m.group(1) if m and k.film_by_name(m.group(1)) is None and k.film_misspelt(m.group(1)) is None else None


# --------------------------------------------------------------------------- complaints
# 「你们怎么搞的」「为什么扣我两次」: a complaint asked as a question
RHETORICAL = re.compile(r"怎么(搞|回事|弄的|做事|管的|能这样)|为什么|为啥|凭什么|搞什么|什么情况|啥情况")
RULE_WHY = re.compile(r"(为什么|为啥|凭什么|凭啥|怎么)[^，,。]{0,16}(不让|不能|不给|不准|不许|不可以)")
LEAVE_MESSAGE = re.compile(r"留(个|句)?言|留句话|留个话|转告|带个话")
FOLLOW_UP_HEAD = re.compile(r"^(那|那么)?[^，,。\s]{1,8}呢")  # 「X呢」 opening the message: a follow-up
UNSURE_COMPLAINT = 0.6


class ActionComplain(Action):
    """Empathy and apology first, the remedy within the bot's authority, then the facts (form)."""

    def name(self) -> Text:
        return "action_complain"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        k = knowledge()
        complaints = k.section("complaints")
        text = tracker.latest_message.get("text") or ""
        ctx = answering.context_of(tracker)
        folded = answering.folded_text(tracker)
        if ctx.topic == "complaint" and about_complaint(folded) and is_question(folded):
            # 「多久给我回复」「能补偿点啥吗」 about the complaint just made: answered, no second complaint
            turn = answer_turn(k, ctx, "complaint", 1.0, folded, [])
            turn.replies.replay(dispatcher)
            return [SlotSet("topic_context", turn.context.to_slot()), NO_FORM]
        mood = assess(text, complaints)
        mood = mood if not mood.mild else Mood(False, mood.threat, mood.score, mood.cues)  # reproaches alone: still calm here
        _, confidence = answering.intent_of(tracker)
        if ctx.topic in INFORMATIONAL and FOLLOW_UP_HEAD.match(folded.strip()) and confidence < UNSURE_COMPLAINT \
                and not (mood.angry or mood.threat):
            # 「冰可乐呢🥤」「激光笔呢 我想指一下屏幕」 after the food rule: the rule again for it, not a complaint
            events = answering.answer(dispatcher, tracker, None, 0.0)
            if events is not None:
                return events + [NO_FORM]
        if ctx.topic in INFORMATIONAL and STRONG_QUESTION.search(folded) and not (mood.angry or mood.threat):
            # 「哦那音响呢，几个声道」 after a hall question: a follow-up that names a complaint word, not a complaint
            events = answering.answer(dispatcher, tracker, None, 0.0)
            if events is not None:
                return events + [NO_FORM]
        calm = not (mood.angry or mood.threat)
        no_fault = complaint_category(k, folded) is complaints["categories"][-1]
        if (no_fault or ctx.topic == "complaint") and (LEAVE_MESSAGE.search(folded) or HUMAN_WANTED.search(folded)):
            # 「能帮我留个言给你们经理吗，我想反映个事」「我要人工，现在！」: a person (or a message for one); right
            # after a complaint was filed 「24小时太久了！我现在就要跟人说话」 wants a person for it, not a second one
            return hand_off(dispatcher, tracker, "patron_request")
        owned = corrected(folded) is not None and bool(ADMITTED.search(folded))  # 「不对，我记错了，其实只停了5个小时」
        if calm and ctx.topic in INFORMATIONAL and (owned or no_fault and (
                corrected(folded) is not None or is_elliptical(folded, None, ctx.topic) and is_question(folded))):
            # 「不对，我说的是周三」「不好意思搞错了，我是银卡」: the last question again with the new value;
            # 「螺蛳粉也不行吧」 after the food rule: a follow-up, with no fault named
            events = answering.answer(dispatcher, tracker, None, 0.0)
            if events is not None:
                return events + [NO_FORM]
        title = _unknown_quoted(k, folded) or unknown_title(k, folded)
        if calm and is_question(folded) and title and (no_fault or QUOTED_TITLE.search(folded)) \
                and (QUOTED_TITLE.search(folded) or asked_as_film(folded, title)):
            # 「火星救援队还在上吗」「你们有《无声告白》吗」: a film the store does not have, not a complaint
            events = answering.answer(dispatcher, tracker, "showtimes", 1.0)
            if events is not None:
                return events + [NO_FORM]
        asked = re.sub(r"一([\u4e00-\u9fff])不\1", "", folded)  # 「一动不动」 is no 「动不动」 question
        if (STRONG_QUESTION.search(asked) or re.search(r"[?？]$", asked.strip()) or ctx.topic in INFORMATIONAL) \
                and is_question(asked) and calm and (no_fault or STRONG_QUESTION.search(asked) and not RHETORICAL.search(asked)):
            # 「导盲犬也不行？」「最长那部是哪个」: a question with no complaint in it, read as one by the
            # classifier; answered when a specific question or the next likeliest topic decides it.
            # 「订单号是不是都XH开头的」 names an order but asks calmly: answered when a specific question matches
            events = _question_not_complaint(dispatcher, tracker, ctx, folded, facet_only=not no_fault)
            if events is not None:
                return events + [NO_FORM]
        mood_events, escalate = deescalate(dispatcher, tracker)
        if escalate:
            return mood_events + hand_off(dispatcher, tracker, "angry_twice", priority=2)
        cat = complaint_category(k, folded)
        if cat["onsite"] and cat.get("handling_later") and PAST.search(folded) and not NOW.search(folded):
            # 「昨晚的电影声音太小了」: told afterwards — no one to send, the reply time of a complaint instead
            cat = dict(cat, onsite=False, handling=cat["handling_later"])
        empathy = "" if mood_events else complaints["empathy"][0]
        dispatcher.utter_message(response="utter_complaint_ack", empathy=empathy, handling=cat["handling"],
                                 remedy=cat["remedy"])
        if RULE_WHY.search(folded) and no_fault:
            # 「凭什么不让我带螺蛳粉进去」「为什么开场12分钟就不让我进」: the rule behind it said too, after the apology
            # (its own context is not kept: the conversation is on the complaint now)
            _question_not_complaint(dispatcher, tracker, ctx, folded, facet_only=True)
        values = latest_entities(tracker)
        events = reset_form_slots() + mood_events + [
            SlotSet("complaint_category", cat["code"]), SlotSet("complaint_onsite", cat["onsite"]),
            SlotSet("complaint_detail", text if len(text) >= 4 and not text.startswith("/") else None),
            SlotSet("complaint_when", _when_from(values, least=1)),
            SlotSet("complaint_wish", wish_in(text)),
        ] + [SlotSet(slot, value) for slot, value in
             form_values.prefill(k, now().date(), ("phone",), text).items()]
        if cat["onsite"]:
            # picture/sound: the on-site team is alerted now, before any question
            receipt = log_ticket(dispatcher, tracker, type="complaint", category=cat["code"], onsite=True,
                                 facts={"detail": text, "when": _when_from(values)}, announce=False)
            publish("alert", {"sender_id": tracker.sender_id, "ticket": receipt.number, "category": cat["code"]})
            events.append(SlotSet("topic_context", {"topic": "complaint", "values": {"ticket": receipt.number or "",
                                                                                     "category": cat["code"]}}))
        else:
            events.append(SlotSet("topic_context", {"topic": "complaint", "values": {"category": cat["code"]}}))
        return events


class ActionSubmitComplaint(Action):
    def name(self) -> Text:
        return "action_submit_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        k = knowledge()
        facts = {"detail": tracker.get_slot("complaint_detail"), "when": tracker.get_slot("complaint_when"),
                 "wish": tracker.get_slot("complaint_wish")}
        phone = normalize_phone(tracker.get_slot("phone") or "")
        category = tracker.get_slot("complaint_category") or complaint_category(k, facts["detail"] or "")["code"]
        alert_number = ((tracker.get_slot("topic_context") or {}).get("values") or {}).get("ticket")
        due = None
        if alert_number:
            # The number comes from a slot, which a caller can set: only this patron's own ticket is amended.
            with session_scope(database_url()) as session:
                ticket = tickets.get_by_number(session, str(alert_number))
                if ticket is not None and ticket.sender_id == tracker.sender_id and ticket.type == "complaint":
                    tickets.add_facts(session, ticket, actor="bot", facts=facts, phone=phone)
                    due = ticket.reply_due
                else:
                    logger.warning("complaint facts: ticket %s is not this patron's; logging a new one", alert_number)
        if due is not None:
            from actions.tickets import due_label

            dispatcher.utter_message(response="utter_ticket_logged", ticket=alert_number, due=due_label(due))
        else:
            log_ticket(dispatcher, tracker, type="complaint", category=category, facts=facts, phone=phone,
                       onsite=bool(tracker.get_slot("complaint_onsite")))
        cat = next((c for c in k.section("complaints")["categories"] if c["code"] == category), None)
        if cat:  # the promise again: staff on site within 10 minutes, a reply within 24 hours …
            later = cat["onsite"] and not tracker.get_slot("complaint_onsite") and cat.get("handling_later")
            dispatcher.utter_message(response="utter_text", text=later or cat["handling"])
            if COMPLAINT_REMEDY.search(fold(facts["wish"] or "", knowledge_names.current().lexicon).text):  # 「我要求退票」: what they may have, said to the wish
                dispatcher.utter_message(response="utter_text", text=cat["remedy"])
        dispatcher.utter_message(response="utter_text", text=k.section("complaints")["apology_after"])
        # the complaint stays the topic: 「多久给我回复」 next is about it (the alert ticket is done with)
        events = reset_form_slots() + [SlotSet("topic_context", {"topic": "complaint", "values": {"category": category}})]
        if tracker.get_slot("needs_human"):
            events += hand_off(dispatcher, tracker, "form_failed", priority=3)
        return events


# --------------------------------------------------------------------------- lost items
# 「我的钱包落在3号厅了」「手机丢了」: a loss told, which the form registers
LOSS_TOLD = re.compile(r"(我|我的|我们|孩子|老婆|老公|朋友).{0,10}(丢|落|不见|(?<!怕)(?<!会)忘|掉)|(丢了|落下了|不见了|找不到了)|"
                       r"(把|将).{1,10}(留|落|忘|丢|放)在.{0,10}(了|没拿)|帮我找|"  # 「把外套留在座位上了，能帮我找吗」
                       r"(落|丢|忘)在.{1,10}了|帮(我|忙)(登记|找找|查查)|登记一下")  # 「包落在电影院了，能帮我登记一下吗」
LOST_WORDS = re.compile(r"丢|落下|落在|遗失|失物|捡到|不见|找不到|认领")


class ActionLostItem(Action):
    def name(self) -> Text:
        return "action_lost_item"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        ctx = answering.context_of(tracker)
        folded = answering.folded_text(tracker)
        if is_question(folded) and (ctx.topic == "lost_found" or not LOSS_TOLD.search(folded)):
            # 「里面有现金，会不会被人拿走啊」 after the item was registered, 「你们捡到东西会留多久」 before any
            # loss is told: the rule asked, not a form — of the conversation's topic when it is another one
            # (「会提醒我嘛 我怕忘了」 after VIP booking)
            other = ctx.topic not in (None, "lost_found") and not LOST_WORDS.search(folded)
            turn = answer_turn(knowledge(), ctx, None if other else "lost_found", 0.0 if other else 1.0, folded, [])
            if turn.handled and turn.facet:
                turn.replies.replay(dispatcher)
                return [SlotSet("topic_context", turn.context.to_slot())] + \
                    ([] if ctx.topic == "lost_found" else [NO_FORM])
        lf = knowledge().section("lost_found")
        mood_events, _ = deescalate(dispatcher, tracker)  # 「是不是被你们员工拿走了？」: the feeling first
        dispatcher.utter_message(response="utter_lost_item", register=lf["register"], keep=lf["keep"], claim=lf["claim"])
        values = latest_entities(tracker)
        text = tracker.latest_message.get("text") or ""
        events = reset_form_slots()
        if values.get("lost_item"):
            events.append(SlotSet("lost_item", text if len(text) <= 60 else values["lost_item"]))
        if _when_from(values):
            events.append(SlotSet("lost_where", _when_from(values)))
        elif values.get("hall"):
            events.append(SlotSet("lost_where", values["hall"]))
        found = form_values.prefill(knowledge(), now().date(), ("seat", "phone"), text)
        ctx = answering.context_of(tracker).after("lost_found", None, {})
        events += mood_events
        return events + [SlotSet(slot, value) for slot, value in found.items()] + \
            [SlotSet("topic_context", ctx.to_slot())]


class ActionSubmitLostItem(Action):
    def name(self) -> Text:
        return "action_submit_lost_item"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        facts = {"item": tracker.get_slot("lost_item"), "where": tracker.get_slot("lost_where"),
                 "seat": tracker.get_slot("seat")}
        log_ticket(dispatcher, tracker, type="lost_item", facts=facts, phone=normalize_phone(tracker.get_slot("phone") or ""))
        lf = knowledge().section("lost_found")
        dispatcher.utter_message(response="utter_lost_item_rules", keep=lf["keep"], claim=lf["claim"])
        events = reset_form_slots()
        if tracker.get_slot("needs_human"):
            events += hand_off(dispatcher, tracker, "form_failed")
        return events


# --------------------------------------------------------------------------- group bookings
class ActionGroupBooking(Action):
    def name(self) -> Text:
        return "action_group_booking"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        k = knowledge()
        s = k.section("services")
        # a specific question (「团体票要提前几天订」) gets its answer; otherwise the rules in full
        _, confidence = answering.intent_of(tracker)
        folded = answering.folded_text(tracker)
        entities = (tracker.latest_message or {}).get("entities") or []
        priced = GROUP_PRICE.search(folded) and k.find_hall_type(folded) is not None
        # 「30个人周六看IMAX，团体价一张多少」: the group price for that hall and day
        turn = answer_turn(k, answering.context_of(tracker), "ticket_price" if priced else "group_booking",
                           1.0 if priced else confidence, folded, entities, allow_follow_up=False)
        if turn.handled and (turn.facet or priced):
            turn.replies.replay(dispatcher)
        else:
            dispatcher.utter_message(response="utter_group_booking", group=s["group"]["text"],
                                     private=s["private_screening"]["text"], registration=s["registration"],
                                     callback=s["callback"])
        text = tracker.latest_message.get("text") or ""
        found = form_values.prefill(k, now().date(), GROUP_SLOTS, text)
        if "film" not in found:
            answering.say_film_not_showing(dispatcher, folded)  # 「六十人想包场看流浪地球3」
        values = latest_entities(tracker)
        if values.get("date") and "booking_time" not in found:
            found["booking_time"] = " ".join(v for v in (values.get("date"), values.get("time")) if v)
        size = parse_party_size(found.get("party_size") or "")
        if size is not None and size < s["group"]["min_people"] and "包场" not in text:
            dispatcher.utter_message(response="utter_group_rule_size", rule="", size=size, min=s["group"]["min_people"])
        return reset_form_slots() + [SlotSet(slot, value) for slot, value in found.items()]


class ActionSubmitGroupBooking(Action):
    def name(self) -> Text:
        return "action_submit_group_booking"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        k = knowledge()
        s = k.section("services")
        size = parse_party_size(tracker.get_slot("party_size") or "")
        when = tracker.get_slot("booking_time") or ""
        day = resolve_date(when, now().date())
        private = any("包场" in (e.get("text") or "") for e in tracker.events if e.get("event") == "user")
        rule = s["private_screening"] if private else s["group"]
        if size is not None and not private and size < s["group"]["min_people"]:
            dispatcher.utter_message(response="utter_group_rule_size", rule=s["group"]["text"], size=size,
                                     min=s["group"]["min_people"])
        if day is not None and (day - now().date()).days < rule["advance_days"]:
            dispatcher.utter_message(response="utter_group_rule_advance", rule=rule["text"], days=rule["advance_days"])
        facts = {"kind": "包场" if private else "团体票", "party_size": size, "when": when,
                 "date": day.isoformat() if day else None, "film": tracker.get_slot("film"),
                 "hall_preference": tracker.get_slot("hall_pref"), "invoice": tracker.get_slot("invoice")}
        log_ticket(dispatcher, tracker, type="group_booking", facts=facts, name=tracker.get_slot("contact_name"),
                   phone=normalize_phone(tracker.get_slot("phone") or ""))
        dispatcher.utter_message(response="utter_text", text=s["callback"])
        # the booking stays the topic: 「多久联系我」 next is its callback time
        events = reset_form_slots() + [SlotSet("topic_context", {"topic": "group_booking", "values": {}})]
        if tracker.get_slot("needs_human"):
            events += hand_off(dispatcher, tracker, "form_failed")
        return events


# --------------------------------------------------------------------------- order problems and refunds
class ActionSubmitOrderProblem(Action):
    def name(self) -> Text:
        return "action_submit_order_problem"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        k = knowledge()
        first = answering.last_said_with(tracker, "report_order_problem")
        problem = form_values.order_problem_named(k, first)
        kind = problem["name"] if problem else None
        facts = {"order_id": normalize_order_id(tracker.get_slot("order_id") or "") or tracker.get_slot("order_id"),
                 "problem": kind, "description": first}
        log_ticket(dispatcher, tracker, type="order_problem", facts=facts,
                   phone=normalize_phone(tracker.get_slot("phone") or ""))
        events = reset_form_slots()
        if tracker.get_slot("needs_human"):
            events += hand_off(dispatcher, tracker, "form_failed")
        return events


class ActionRequestRefund(Action):
    def name(self) -> Text:
        return "action_request_refund"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        text = tracker.latest_message.get("text") or ""
        folded = answering.folded_text(tracker)
        if folded and not REFUND_SAID.search(folded) and normalize_order_id(text) is None:
            # 「我想看泰坦尼克号」 read as a refund: no refund or change in the words — answered as the question it is
            events = answering.answer(dispatcher, tracker, None, 0.0)
            if events is not None:
                return events + [NO_FORM]
        mood_events, _ = deescalate(dispatcher, tracker)  # 「我不管，我就要退」: the feeling first
        events = mood_events + reset_form_slots()
        order = normalize_order_id(text)
        phone = normalize_phone(text)
        k = knowledge()
        refund = k.section("refund")
        platform = next((p for p in refund["third_party"]["platforms"] if p in text), None)
        # what the rules say for what the patron told (an hour before the show, a member-day ticket, a
        # projector failure) comes first; the form then takes the order
        turn = answer_turn(k, answering.context_of(tracker), "refund_policy", 1.0, answering.folded_text(tracker),
                           (tracker.latest_message or {}).get("entities") or [], allow_follow_up=False)
        if not (turn.handled and turn.decided) and not platform:
            # nothing said about the show yet: where the patron can do it alone, while the form takes the order
            dispatcher.utter_message(response="utter_text", text=refund["own_channels"])
        if turn.handled and turn.decided:
            turn.replies.replay(dispatcher)
            events.append(SlotSet("topic_context", turn.context.to_slot()))
            minutes = turn.context.values.get("minutes")
            if minutes is not None and not order and not rules.refund_verdict(k, float(minutes)).changeable:
                # too late to refund or change (「还有十分钟开场，给我退了」): nothing to register; what the
                # cinema still does when it is at fault, and a person when the patron wants one
                dispatcher.utter_message(response="utter_text", text=refund["cinema_fault"])
                return events + [NO_FORM]
        if order:
            events.append(SlotSet("order_id", order))
        if phone:
            events.append(SlotSet("phone", phone))
        if platform:
            events.append(SlotSet("purchase_channel", platform))
        return events + [SlotSet("order_id_format", knowledge().section("orders")["order_id"]["text"])]


def find_showing(k: Knowledge, text: Text, today: dt.date) -> Optional[Showing]:
    """The showing a patron describes (film, date, start time) among the store's showtimes."""
    film = k.find_film(text)
    day = resolve_date(text, today) or today
    window = resolve_time_window(text)
    candidates = [s for s in k.showings(day) if film is None or s.film.id == film.id]
    if window:
        mid = (window[0].hour * 60 + window[0].minute + window[1].hour * 60 + window[1].minute) / 2
        exact = [s for s in candidates if window[0] <= s.start <= window[1]]
        candidates = sorted(exact, key=lambda s: abs(s.start.hour * 60 + s.start.minute - mid))
    elif film is None:
        return None
    return candidates[0] if film is not None and candidates else (candidates[0] if window and candidates else None)


class ActionSubmitRefund(Action):
    def name(self) -> Text:
        return "action_submit_refund"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        k = knowledge()
        refund = k.section("refund")
        channel = tracker.get_slot("purchase_channel") or ""
        events = reset_form_slots()
        if any(p in channel for p in refund["third_party"]["platforms"]):
            dispatcher.utter_message(response="utter_text", text=refund["third_party"]["text"])
            return events
        if form_values.COUNTER in channel:  # bought at the counter: refunded there, with the proof of purchase
            dispatcher.utter_message(response="utter_refund_self_help", own_channels=refund["own_channels"],
                                     arrival=refund["arrival"])
            return events
        current = now()
        show = find_showing(k, tracker.get_slot("refund_show") or "", current.date())
        facts: Dict[str, Any] = {"order_id": tracker.get_slot("order_id"), "purchase_channel": channel,
                                 "show": tracker.get_slot("refund_show")}
        if show is not None:
            minutes = (show.starts_at - current).total_seconds() / 60
            price = rules.quote(k, k.hall_type(show.hall.type_code), show.date, show.version, start=show.start).price
            verdict = rules.refund_verdict(k, minutes, price)
            label = "（已开场）" if minutes < 0 else f"约{int(minutes // 60)}小时{int(minutes % 60)}分钟" if minutes >= 60 else f"约{int(minutes)}分钟"
            fee_text = f"按票价{money(price)}元计，手续费{money(verdict.fee)}元/张。" if verdict.refundable and verdict.fee else ""
            dispatcher.utter_message(response="utter_refund_verdict", minutes_label=label, verdict=verdict.text, fee_text=fee_text)
            facts.update({"film": show.film.title, "starts_at": show.starts_at.isoformat(timespec="minutes"),
                          "hall": show.hall.name, "refundable": verdict.refundable, "fee": verdict.fee})
            if not verdict.refundable:
                dispatcher.utter_message(response="utter_text", text=refund["cinema_fault"])
                return events
        log_ticket(dispatcher, tracker, type="refund", facts=facts, phone=normalize_phone(tracker.get_slot("phone") or ""))
        dispatcher.utter_message(response="utter_refund_self_help", own_channels=refund["own_channels"], arrival=refund["arrival"])
        if tracker.get_slot("needs_human"):
            events += hand_off(dispatcher, tracker, "form_failed")
        return events


# --------------------------------------------------------------------------- emergencies, humans, feedback
class ActionEmergency(Action):
    """The first reply is the safety instruction; the ticket and the duty manager alert follow. While the
    conversation is in emergency mode a new report gets the guidance again on the same ticket."""

    def name(self) -> Text:
        return "action_emergency"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        ctx = DialogueContext.from_slot(tracker.get_slot("topic_context"))
        k = knowledge()
        loop = (tracker.active_loop or {}).get("name")
        text = tracker.latest_message.get("text") or ""
        if not ctx.in_emergency and (loop == "complaint_form" or ctx.topic == "complaint") \
                and not danger_named(answering.folded_text(tracker) or text,
                                     k.section("complaints")["emergency"].get("cues") or ()):
            # 「我就在3号厅，赶紧派人过来」「快点啊电影都开始了」 inside a complaint: its urgency, nobody in danger
            return self._hurry(dispatcher, tracker, k, loop)
        if ctx.in_emergency:
            ticket = ctx.emergency_ticket
            events = emergency_follow_up(dispatcher, tracker, ctx)
            ctx.emergency_turns, ctx.emergency_ticket = EMERGENCY_TURNS, ticket  # a new report: still going on
            return events[:-1] + [SlotSet("topic_context", ctx.to_slot())]
        first = k.section("complaints")["emergency"]["first_reply"].format(hotline=k.section("cinema")["hotline"])
        dispatcher.utter_message(response="utter_emergency", first_reply=first)
        values = latest_entities(tracker)
        receipt = log_ticket(dispatcher, tracker, type="emergency", priority=1,
                             facts={"message": text, "where": values.get("hall")})
        logger.warning("EMERGENCY ticket %s: duty manager alerted", receipt.number or receipt.client_ref)
        publish("emergency", {"sender_id": tracker.sender_id, "ticket": receipt.number, "text": text})
        ctx.emergency_turns = EMERGENCY_TURNS
        ctx.emergency_ticket = receipt.number
        if loop:  # the lost-item report (or other form) it interrupted is taken up again once it is over
            ctx.values["interrupted"] = loop
        return end_form(tracker) + [SlotSet("topic_context", ctx.to_slot())]


    @staticmethod
    def _hurry(dispatcher: CollectingDispatcher, tracker: Tracker, k: Any, loop: Optional[str]) -> List[Dict[Text, Any]]:
        """The complaint's handling said again (who is on the way), then its form goes on."""
        cat = complaint_category_named(k, tracker.get_slot("complaint_category"), tracker.get_slot("complaint_detail") or "")
        hurry = k.section("complaints").get("hurry")
        mood_events, _ = deescalate(dispatcher, tracker) if not hurry else ([], False)
        dispatcher.utter_message(response="utter_text", text=hurry or cat["handling"])
        text = answering.folded_text(tracker)
        where = [SlotSet("complaint_when", text[:500])] if loop == "complaint_form" and not tracker.get_slot("complaint_when") \
            and (PLACE.search(text or "") or re.search(r"[A-Za-z\d]+排", text or "")) else []  # 「我就在3号厅，快派人」
        return mood_events + where + ([FollowupAction(loop)] if loop else [])


def emergency_follow_up(dispatcher: CollectingDispatcher, tracker: Tracker, ctx: DialogueContext) -> List[Dict[Text, Any]]:
    """A message in emergency mode: the safety guidance again and that help is on the way; the on-call
    staff see the message on the emergency ticket."""
    k = knowledge()
    emergency = k.section("complaints")["emergency"]
    dispatcher.utter_message(response="utter_text", text=emergency["follow_up"].format(
        hotline=k.section("cinema")["hotline"], ticket=ctx.emergency_ticket or ""))
    text = tracker.latest_message.get("text") or ""
    phone = normalize_phone(text)
    if phone and ctx.emergency_ticket:  # the number staff can call back on goes on the emergency ticket
        with session_scope(database_url()) as session:
            ticket = tickets.get_by_number(session, ctx.emergency_ticket)
            if ticket is not None and ticket.sender_id == tracker.sender_id:
                tickets.add_facts(session, ticket, actor="bot", facts={}, phone=phone)
    publish("emergency", {"sender_id": tracker.sender_id, "ticket": ctx.emergency_ticket, "text": text})
    # each message counts down: a false alarm does not hold the conversation for ever, a real one is
    # kept alive by every new report (action_emergency restarts the count)
    ctx.emergency_turns = max(ctx.emergency_turns - 1, 0)
    if not ctx.in_emergency:
        ctx.emergency_ticket = None
        ctx.values.pop("interrupted", None)
    return [SlotSet("topic_context", ctx.to_slot())]


# 「人工几点上班」「现在这个点还有人吗」: when people answer, asked as a question
HUMAN_HOURS_ASKED = re.compile(r"几点|什么时候|啥时候|几时|这个点|现在.{0,4}(还)?(在|有人)|上班|下班|在不在|在线吗|有没有人")
HUMAN_WANTED = re.compile(r"转人工|找人工|要人工|叫人工|给我人工|接人工|真人|我要找|帮我转|转接|(跟|和|同)(人|客服)(说话|讲|聊|说)|活人")


# asked about the people rather than for one: the number to call, the manager on duty (the store's questions)
ASKED_ABOUT_PEOPLE = (
    (re.compile(r"(人工|客服|投诉|你们).{0,8}(电话|热线|号码)|(电话|热线|号码).{0,4}(多少|是什么|给我)"), "cinema_hotline"),
    (re.compile(r"(经理|负责人|管事的).{0,6}(在吗|在不在|在么|在不|有没有|有吗|在哪|怎么找)|有没有.{0,4}(经理|负责人)"),
     "cinema_duty_manager"),
)


def _answered_and_offered(dispatcher: CollectingDispatcher, domain: Dict[Text, Any], turn: Any,
                          offer: Text) -> List[Dict[Text, Any]]:
    """A question about people answered from the store, and a person offered with one button (no ticket)."""
    turn.replies.replay(dispatcher)
    label = domain["responses"]["utter_label_request_human"][0]["text"]
    dispatcher.utter_message(response="utter_text", text=offer, buttons=[{"title": label, "payload": "/request_human"}])
    return [SlotSet("topic_context", turn.context.to_slot())]


def _human_hours(ctx: DialogueContext) -> Any:
    """The store's answer to when people answer (the hotline / human service hours facet)."""
    return answer_turn(knowledge(), ctx, "cinema_info", 1.0, "人工客服几点上班", [])


class ActionRequestHuman(Action):
    def name(self) -> Text:
        return "action_request_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        ctx = DialogueContext.from_slot(tracker.get_slot("topic_context"))
        if ctx.in_emergency:  # safety guidance first, then a person, at the emergency's priority
            return emergency_follow_up(dispatcher, tracker, ctx) + hand_off(dispatcher, tracker, "emergency", priority=1)
        folded = answering.folded_text(tracker)
        offer = knowledge().section("complaints")["escalation"].get("offer")
        loop = (tracker.active_loop or {}).get("name")
        if loop == "message_form" and HUMAN_HOURS_ASKED.search(folded) and is_question(folded) \
                and not HUMAN_WANTED.search(folded):
            # 「人工什么时候有人」 while leaving a message: the hours, then the message asked for again
            turn = _human_hours(ctx)
            turn.replies.replay(dispatcher)
            return [SlotSet("topic_context", turn.context.to_slot()), FollowupAction(loop)]
        if ctx.topic and is_question(folded) and not HUMAN_WANTED.search(folded) and not HUMAN_HOURS_ASKED.search(folded):
            # 「人工客服能帮我查吗」 after the points query: a question about what was just said, not a request
            turn = answer_turn(knowledge(), ctx, None, 0.0, folded, (tracker.latest_message or {}).get("entities") or [])
            if turn.handled and turn.facet and turn.topic == ctx.topic:
                answering.suggest_follow_ups(turn)
                turn.replies.replay(dispatcher)
                return [SlotSet("topic_context", turn.context.to_slot())]
        asked = next((q for pattern, q in ASKED_ABOUT_PEOPLE if pattern.search(folded)), None)
        if offer and asked and is_question(folded) and not HUMAN_WANTED.search(folded):
            # 「能不能给我一个人工客服的电话」「经理现在在吗」: the number or who is on duty, and a person offered
            turn = facet_turn(knowledge(), ctx, asked)
            if turn is not None:
                return _answered_and_offered(dispatcher, domain, turn, offer)
        if offer and HUMAN_HOURS_ASKED.search(folded) and is_question(folded) and not HUMAN_WANTED.search(folded) \
                and not has_recent_ticket(tracker):  # asked again after a ticket: that ticket, with its reply time
            # 「人工客服现在这个点还在吗」 asks when people answer, not for one: the hours, and a person offered
            turn = _human_hours(ctx)
            if turn.handled:
                return _answered_and_offered(dispatcher, domain, turn, offer)
        mood_events, _ = deescalate(dispatcher, tracker)  # 「你们机器人听得懂人话吗」: sorry first, then a person
        return mood_events + hand_off(dispatcher, tracker, "patron_request")


class ActionSubmitMessage(Action):
    """The message (and phone) left while nobody was online goes on the handoff ticket a person will take."""

    def name(self) -> Text:
        return "action_submit_message"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        message = tracker.get_slot("leave_message") or ""
        phone = normalize_phone(tracker.get_slot("phone") or "")
        number, due = None, None
        since = dt.datetime.now(dt.timezone.utc) - REUSE_WINDOW
        try:
            with session_scope(database_url()) as session:
                ticket = tickets.latest_open_for_sender(session, tracker.sender_id, since, REUSED_TYPES)
                if ticket is not None:
                    tickets.add_facts(session, ticket, actor="bot", facts={"message": message}, phone=phone)
                    number, due = ticket.number, ticket.reply_due
        except Exception:  # database down: the message is queued as a ticket of its own
            logger.exception("message: cannot reach the handoff ticket")
        if number is None:
            receipt = log_ticket(dispatcher, tracker, type="handoff", facts={"reason": "message", "message": message},
                                 phone=phone, announce=False)
            number, due = receipt.number or receipt.client_ref[:8], receipt.reply_due
        dispatcher.utter_message(response="utter_message_taken", ticket=number,
                                 due=due_label(due) if due else "", phone=mask_phone(phone) if phone else "")
        return [SlotSet("leave_message", None)]


class ActionFeedback(Action):
    def name(self) -> Text:
        return "action_feedback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(response="utter_feedback_thanks")
        log_ticket(dispatcher, tracker, type="feedback", facts={"text": tracker.latest_message.get("text")},
                   announce=False)
        return []


# what cancels a form: said outright, not only a 「没有」 that the classifier took for a no
CANCEL = re.compile(r"不用|算了|取消|不要了|不登记|不需要|不弄了|不办了|不找了|别登记|先不|不报了|不投诉|没事了|不想|再见|拜拜|不聊|不说了|结束")


# 「好的，谢谢你」「那先这样，拜拜」: only thanks or a goodbye
THANKS_ONLY = re.compile(r"好的?|好吧|行|嗯+|哦+|那|先这样|就这样|谢谢你?们?|多谢|感谢|麻烦了|辛苦了?|拜拜|再见|ok|[，,。.!！~～\s]", re.I)


class ActionStopForm(Action):
    def name(self) -> Text:
        return "action_stop_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        folded = answering.folded_text(tracker).strip()
        loop = tracker.active_loop.get("name")
        intent, _ = answering.intent_of(tracker)
        if loop and intent == "deny" and not CANCEL.search(folded) and (is_question(folded) or len(folded) >= 6):
            # 「要是修不好呢」「已经过了半小时了还没有」 read as a no: a question or more of the story — the form
            # goes on with it (a question answered first), nothing is cancelled
            events: List[Dict[Text, Any]] = []
            if is_question(folded):
                ctx = answering.context_of(tracker)
                form_topic = FORM_TOPIC.get(loop)
                ctx.topic = ctx.topic or form_topic
                chosen = "complaint" if form_topic == "complaint" and about_complaint(folded) else None
                turn = answer_turn(knowledge(), ctx, chosen, 0.0, folded, [], open_topics=True)
                if turn.handled and (turn.facet or turn.decided or turn.topic == form_topic):
                    turn.replies.replay(dispatcher)
                    events.append(SlotSet("topic_context", turn.context.to_slot()))
            return events + [FollowupAction(loop)]
        if loop == "message_form" and intent in ("thank", "goodbye"):
            body = THANKS_ONLY.sub("", folded)
            if len(body) >= 6 or MESSAGE_SAID.search(body):
                # 「谢谢，麻烦帮我补开发票」: thanks, and the message itself (thanks fill no slot by themselves)
                said = (tracker.latest_message.get("text") or "").strip()
                return [SlotSet("leave_message", said[:500]), FollowupAction(loop)]
            # the handoff ticket is logged already: nothing is cancelled, the patron is thanked or seen off
            dispatcher.utter_message(response="utter_thank" if intent == "thank" else "utter_goodbye")
            return end_form(tracker) + [SlotSet("leave_message", None)]
        dispatcher.utter_message(response="utter_form_stopped")
        # listen next (also when a form's validation stopped it for a question it answered)
        return end_form(tracker) + reset_form_slots() + [FollowupAction("action_listen")]


# --------------------------------------------------------------------------- emergency mode first
def _filed_under_its_topic(cls: type) -> None:
    """After a form is filed the conversation is on its topic (FORM_TOPIC), so 「能保存多少天」 right after the
    lost item is filed is a question about what was just filed."""
    original = cls.run
    form = cls().name().removeprefix("action_submit_") + "_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        events = await original(self, dispatcher, tracker, domain)
        ctx = answering.context_of(tracker)
        if form in FORM_TOPIC and not ctx.in_emergency and not any(e.get("name") == "topic_context" for e in events):
            ctx.topic, ctx.facet = FORM_TOPIC[form], None
            events.append(SlotSet("topic_context", ctx.to_slot()))
        return events

    run.__doc__ = original.__doc__
    cls.run = run


def _emergency_first(cls: type, submit: bool) -> None:
    """In emergency mode a service request (「保安呢，怎么还没来」 read as a complaint) gets the safety guidance
    and that help is on the way; its form asks nothing (validation's required slots are empty then) and its
    submit files nothing, so the emergency ticket stays the one staff work on."""
    original = cls.run

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        ctx = answering.context_of(tracker)
        if ctx.in_emergency:
            return reset_form_slots() if submit else emergency_follow_up(dispatcher, tracker, ctx)
        before = DialogueContext.from_slot(tracker.get_slot("topic_context"))
        ended = [SlotSet("topic_context", ctx.to_slot())] if before.in_emergency else []  # 「人已经送走了，…」
        return ended + await original(self, dispatcher, tracker, domain)

    run.__doc__ = original.__doc__
    cls.run = run


for _cls in (ActionComplain, ActionLostItem, ActionGroupBooking, ActionRequestRefund):
    corrects_filed(_cls)  # inside the emergency wrapper: emergency mode still comes first
    _emergency_first(_cls, submit=False)
for _cls in (ActionSubmitComplaint, ActionSubmitLostItem, ActionSubmitGroupBooking, ActionSubmitOrderProblem,
             ActionSubmitRefund):
    _emergency_first(_cls, submit=True)
    _filed_under_its_topic(_cls)
