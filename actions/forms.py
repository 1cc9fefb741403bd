"""Validation of the service forms: specific re-asks for invalid values (at most twice, then a human),
side questions answered mid-form, and corrections by simply saying the new value."""
from __future__ import annotations

import contextvars
import re
from typing import Any, Callable, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from rasa_sdk.events import ActiveLoop, FollowupAction, SlotSet

from actions import answering, form_values
from actions.common import knowledge, now
from actions.escalation import deescalate
from bot.anger import assess
from bot.answers.emergency import PAST, danger_named
from bot.answers.resolvers import last_phone, normalize_order_id, normalize_phone, parse_party_size, resolve_date, resolve_time_window
from bot.answers.ask import NOT_A_QUESTION, QUESTION, STRONG_QUESTION, entity_values, is_question
from bot.answers.context import FOLLOW_KEYS
from bot.answers.correction import new_value
from bot.answers.topics import COMPLAINT_REMEDY, GROUP_PRICE, INTENT_TOPIC, about_complaint, complaint_category_named
from bot.answers.replies import render as render_reply
from bot.answers.turn import answer_turn
from bot.nlu import knowledge_names
from bot.privacy import mask_phone
from bot.text.normalise import fold

MAX_RETRIES = 2
_CALMED: contextvars.ContextVar = contextvars.ContextVar("calmed", default=False)
# set when this message corrected a value given before: the slot asked keeps waiting for its own answer
_CORRECTED: contextvars.ContextVar = contextvars.ContextVar("corrected", default=False)
SIDE_QUESTION_CONFIDENCE = 0.6
PRICE_ASKED = re.compile(r"多少钱|几多钱|多钱|几钱|票价|一张多少|怎么卖|什么价")
NOT_GIVEN = "未提供"
CORRECTION = re.compile(r"打错|说错|写错|输错|记错|搞错|弄错|不对|更正|改成|改为|改一下|应该是|纠正|换成|不是.{1,12}是")
# what a correction may replace, with its name in the message that confirms it
CORRECTABLE = {"party_size": "人数",  # phone and order id: their validators confirm corrections
               "booking_time": "日期时段",
               "contact_name": "联系人", "seat": "座位", "complaint_when": "场次", "lost_where": "场次",
               "hall_pref": "影厅", "film": "影片", "invoice": "发票需求"}
# where a turn turns from giving a value to asking something: 「…5排6座，对了你们保管多久」
ASIDE = re.compile(r"[，,。.;；!！\s]*(?:对了|然后|另外|还有个?问题|还想问|顺便问?一?下?|顺带问?一?下?|请问|想问一?下|问一下|再问一?下|话说)[，,：:\s]*")


# what comes before 「问一下…」 that is no value: 「等下，先」「那个」「好的」
FILLER_ONLY = re.compile(r"[，,。.!！\s~～]*(?:(?:等下|等一下|等等|稍等|先|那个|这个|嗯+|额|呃|好的?|哦+|噢|对了|请问|我想|我|啊|诶|哎)[，,。.!！\s~～]*)*")


def split_aside(text: Text) -> tuple:
    """(value part, question part) of a turn that gives a value and then asks; ("", "") otherwise."""
    m = ASIDE.search(text or "")
    if m and m.start() > 0 and is_question(text[m.end():]):
        return text[:m.start()].strip(), text[m.end():].strip()
    clauses = [c for c in re.split(r"[，,。;；!！]", text or "") if c.strip()]
    if len(clauses) >= 2 and STRONG_QUESTION.search(clauses[-1]) and not NOT_A_QUESTION.search(clauses[-1]) \
            and not any(QUESTION.search(c) for c in clauses[:-1]):
        return "，".join(clauses[:-1]).strip(), clauses[-1].strip()
    return "", ""


# 「算了不投诉了，」「那不用登记了，」: the form called off, before another question
CANCEL_LEAD = re.compile(r"^(?:那|哦|嗯|好吧|唉|哎)?[，,\s]*(?:算了|不用了|不用登记了?|不投诉了|不登记了|不找了|不弄了|不办了|不订了|不退了|"
                         r"先不(?:投诉|登记|报|订|退|找)了?)[^，,。!！?？]{0,8}?[，,。!！\s]+")


# 「我现在就要人过来」「我就在里面看」: staff wanted on the spot now, for an on-site complaint
STAFF_NOW = re.compile(r"(现在|马上|立刻|立即|赶紧|赶快|快)(就)?(要|派|叫|找)?(个)?人(过来|来)|派(个)?人|来(个)?人|叫人来|"
                       r"(就|还|正)在(里面|厅里|影厅里|现场|这看|看)|人还在|还没散场|才散场|还要看")


def cancelled_then_asked(text: Text) -> Text:
    """The question after calling the form off (「算了不投诉了，我就问问会员日是周几」); empty otherwise."""
    m = CANCEL_LEAD.match(text or "")
    rest = (text or "")[m.end():].strip() if m else ""
    return rest if rest and is_question(rest) else ""


def question_part(text: Text) -> Text:
    """The question a turn asks besides its value (empty when it asks none)."""
    return split_aside(text)[1]


# what a try at a phone number or an order id looks like (digits, or the XH of an order id)
ATTEMPT = {"phone": re.compile(r"\d{3,}|[零一二三四五六七八九]{4,}"), "order_id": re.compile(r"\d{3,}|[Xx][Hh]")}
WISH = re.compile(r"退|赔|补偿|道歉|说法|处理|换|改签|免费|优惠券|饮料券|小食券|解释|希望|要求")
# values that only answer a form's questions (a film or a date alone may be a question's subject)
FORM_VALUES = ("lost_item", "seat", "phone", "order_id", "party_size", "contact_name", "invoice")
FORM_TOPIC = {"group_booking_form": "group_booking", "lost_item_form": "lost_found", "refund_form": "refund_policy",
              "complaint_form": "complaint",  # a complaint's questions: when they hear back, what remedy
              "order_problem_form": "order_problem"}


class ServiceFormValidation(FormValidationAction):
    """Shared behaviour; subclasses name the form and list free-text slots."""

    form: Text = ""
    free_text: tuple = ()

    def name(self) -> Text:
        return f"validate_{self.form}"

    # ------------------------------------------------------------------ helpers
    def _side_question(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                       text: Optional[Text] = None) -> Optional[Dict[Text, Any]]:
        """Answer an informational question asked mid-form (the form then asks its question again): the
        classifier sure of an informational intent, or a question that a specific question of the store, a
        value of the likeliest topic or the form's own topic decides. ``text`` is the question part of a
        turn that also gave a value. Returns the slots to set (the conversation context), None when it is
        no question."""
        intent, confidence = answering.intent_of(tracker)
        topic = INTENT_TOPIC.get(intent or "")
        whole = text is None
        text = answering.folded_text(tracker) if whole else text
        if not text:
            return None
        entities = (tracker.latest_message or {}).get("entities") or [] if whole else []
        if not whole and not (topic and topic not in FORM_TOPIC.values() and confidence >= SIDE_QUESTION_CONFIDENCE):
            # the classifier read the whole turn, not this part of it — unless it was sure the turn asks an
            # informational topic (「对了我开车来的，看巨幕能免费停几个小时」 is a parking question)
            topic, confidence = None, 0.0
        sure = topic is not None and confidence >= SIDE_QUESTION_CONFIDENCE
        valued = topic is not None and bool(set(entity_values("", entities)) & set(FOLLOW_KEYS.get(topic, ())))
        asked = is_question(text)
        if self.form == "complaint_form" and not asked:
            return None  # 「买的还是套餐…」: more of the complaint, whatever topic its words lean to
        if not asked and form_values.prefill(knowledge(), now().date(), FORM_VALUES, text):
            return None  # 「米色托特包，今晚8点6号厅，F排10号」: the form's answers, not a showtimes question
        ctx = answering.context_of(tracker)
        form_topic = FORM_TOPIC.get(self.form)
        if not ctx.topic:
            ctx.topic = form_topic
        wish = form_topic == "complaint" and whole and form_values.wish_requested(text) \
            and tracker.get_slot("requested_slot") != "complaint_wish"
        if form_topic == "complaint" and (asked and about_complaint(text) or wish):
            # about the complaint itself (「多久给我回复」「这种情况票能退吗」), or a wish said while another
            # question was asked (「能唔能调高啲」): its category's handling or remedy
            ctx.topic = "complaint"
            topic, sure = "complaint", True
        # a plain question («多扣的钱多久能退回来») that nothing else claims is asked of the form's own topic
        plain_question = asked and (STRONG_QUESTION.search(text) or not whole)
        chosen = topic if (sure or valued) else (form_topic if plain_question else None)
        if chosen == "complaint" and not about_complaint(text) and not wish:
            chosen = None  # 「都开场了我还能进去吗」 during a complaint: the rule asked, from any topic
        turn = answer_turn(knowledge(), ctx, chosen, confidence, text, entities,
                           allow_follow_up=asked, open_topics=asked)
        if not turn.handled:
            return None
        if not (sure or (asked and (turn.facet or valued or turn.decided or turn.topic == form_topic))):
            return None
        noted = knowledge().section("complaints").get("wish_noted") \
            if wish or (turn.topic == "complaint" and WISH_SAID.search(text) and not re.search(r"[吗么嘛?？]\W*$", text)) \
            else None  # 「我不要什么券，我要赔偿」 reads as a question by its 什么, and is a demand
        if noted:
            # 「我不要什么券，我要赔偿」: the wish acknowledged (with the apology), then what can be done
            dispatcher.utter_message(response="utter_text", text=noted)
        _replay_unless_said(dispatcher, tracker, turn.replies)
        kept = {"complaint_wish": text[:500]} if wish and not tracker.get_slot("complaint_wish") else {}
        return {answering.CONTEXT_SLOT: turn.context.to_slot(), **kept}

    def _aside(self, dispatcher: CollectingDispatcher, tracker: Tracker, text: Text) -> Dict[Text, Any]:
        """The question a turn asks besides giving a value (「订单XH…，对了多扣的钱会退到哪里」), answered."""
        part = question_part(text)
        if not part:
            return {}
        return self._side_question(dispatcher, tracker, part) or {}

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> List[Text]:
        if answering.context_of(tracker).in_emergency:
            return []  # nothing is asked while someone is in danger (the emergency ticket carries it)
        return await super().required_slots(domain_slots, dispatcher, tracker, domain)

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        folded = answering.folded_text(tracker)
        if self.form == "complaint_form" and STAFF_NOW.search(folded or "") \
                and (tracker.get_slot("complaint_onsite") or self._already_dispatched(tracker)) \
                and not is_question(folded) and not danger_named(folded, knowledge_names.current().emergency_cues):
            # 「我现在就要人过来」「我就在里面看，还有一个多小时」: someone on site is asked for now — who is on the
            # way said again (the complaint's hurry), and the form asks its question again
            hurry = knowledge().section("complaints").get("hurry")
            if hurry:
                dispatcher.utter_message(response="utter_text", text=hurry)
                return [SlotSet("requested_slot", tracker.get_slot("requested_slot"))]  # the same question again
        rest = cancelled_then_asked(folded)
        if rest and tracker.get_slot("requested_slot"):
            # 「算了不投诉了，我就问问会员日是周几」: the question answered, and the form stopped (said so), not
            # asked again — the classifier read the question, so no deny rule stopped it
            side = self._side_question(dispatcher, tracker, rest) or {}
            return [SlotSet(k, v) for k, v in side.items()] + [ActiveLoop(None), FollowupAction("action_stop_form")]
        token = _CALMED.set(False)  # one message is calmed once, however many of its values are validated
        fixed = _CORRECTED.set(False)
        try:
            return await super().run(dispatcher, tracker, domain)
        finally:
            _CALMED.reset(token)
            _CORRECTED.reset(fixed)

    def _calm(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict[Text, Any]:
        """An angry message inside a form gets empathy first (the complaint guidance), then the form goes on;
        angry again, the patron is offered a person (the form's facts are kept for them). Once per message:
        not again when another value of it is validated, nor when the action before the form calmed it."""
        if _CALMED.get() or _calmed_this_turn(tracker):
            return {}
        _CALMED.set(True)
        events, escalate = deescalate(dispatcher, tracker)
        if escalate:
            dispatcher.utter_message(response="utter_offer_human_angry",
                                     buttons=[{"title": "转人工", "payload": "/request_human"}])
        return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}

    def _retry(self, slot: Text, dispatcher: CollectingDispatcher, tracker: Tracker, response: Text) -> Dict[Text, Any]:
        retries = int(tracker.get_slot("form_retries") or 0) + 1
        if retries > MAX_RETRIES:
            dispatcher.utter_message(response="utter_form_too_many_tries")
            return {slot: NOT_GIVEN, "form_retries": 0, "needs_human": True}
        dispatcher.utter_message(response=response, order_id_format=tracker.get_slot("order_id_format") or "")
        return {slot: None, "form_retries": retries}

    def _accept(self, slot: Text, value: Any) -> Dict[Text, Any]:
        return {slot: value, "form_retries": 0}

    def _requested(self, tracker: Tracker, slot: Text) -> bool:
        return tracker.get_slot("requested_slot") == slot

    def _validated(self, slot: Text, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                   normalise: Callable[[Text], Any], response: Text) -> Dict[Text, Any]:
        if value == NOT_GIVEN:
            return {slot: value}
        # a value inside a sentence (「我手机号是…」「打我老婆的…也行」) counts as much as the bare value
        said = tracker.latest_message.get("text") or ""
        result = normalise(str(value or "")) or normalise(said)
        if result is not None:
            aside = self._aside(dispatcher, tracker, answering.folded_text(tracker)) if self._requested(tracker, slot) else {}
            return {**aside, **self._accept(slot, str(result))}
        if self._requested(tracker, slot):
            calmed = self._calm(dispatcher, tracker)  # 「到底能不能解决，别浪费我时间」: the feeling first
            side = self._side_question(dispatcher, tracker)
            if side is not None:
                return {slot: None, **calmed, **side}
            if calmed:  # anger, not a wrong value: no retry counted, the form asks again
                return {slot: None, **calmed}
        if not self._requested(tracker, slot):  # an entity from another turn that is not valid: ignore it
            return {slot: None}
        calmed = self._calm(dispatcher, tracker)
        if calmed:  # anger, not a wrong value: no retry counted, the form asks again
            return {slot: None, **calmed}
        if is_question(answering.folded_text(tracker)):
            # a question the store cannot answer is no wrong value: say so, and ask again without a retry
            dispatcher.utter_message(response="utter_form_question_unanswered")
            return {slot: None}
        if any(v not in (None, "") for s, v in tracker.slots_to_validate().items() if s not in (slot, "requested_slot")):
            return {slot: None}  # 「是后天晚上的场」 when the phone was asked: another answer, the form asks again
        if slot in ATTEMPT and not ATTEMPT[slot].search(answering.folded_text(tracker)):
            # 「日期没错 就是今天这家」 when the order id was asked: no try at a number, so no "wrong format" —
            # what they said is kept with the details, and the form asks again
            detail = self._more_detail(tracker)
            if detail.get("complaint_detail"):
                self._noted(dispatcher)
            return {slot: None, **detail}
        return self._retry(slot, dispatcher, tracker, response)

    @staticmethod
    def _noted(dispatcher: CollectingDispatcher) -> None:
        """More of a complaint's story: said to be noted, with an apology (the complaint guidance)."""
        noted = knowledge().section("complaints").get("noted")
        if noted:
            dispatcher.utter_message(response="utter_text", text=noted)

    def _more_detail(self, tracker: Tracker) -> Dict[Text, Any]:
        """A remark that answers no question of the form, added to the free-text details it has (if any)."""
        text = (tracker.latest_message.get("text") or "").strip()
        for detail in ("complaint_detail", "lost_item"):
            if self.form.startswith(detail.split("_")[0]) and tracker.get_slot(detail) and text:
                return {detail: f"{tracker.get_slot(detail)}；{text}"[:500]}
        return {}

    def _free(self, slot: Text, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict[Text, Any]:
        text = str(value or "").strip()
        if self._requested(tracker, slot) and _CORRECTED.get():
            return {slot: None}  # 「人数写错了，是二十八个」 when the name was asked: no name
        if self._requested(tracker, slot):
            given, asked = split_aside(text)
            if given and asked and FILLER_ONLY.fullmatch(given):
                given, asked = "", text  # 「等下，先问一下你们停车怎么收费」: only a question, no value before it
            if given and asked:  # 「昨晚9点那场雾都疑案。对了你们人工客服几点下班」: the value, and the answer
                aside = self._side_question(dispatcher, tracker, asked) or {}
                kept = given if aside else text  # an unanswered question stays part of what they said
                return {**self._calm(dispatcher, tracker), **aside, **self._accept(slot, kept[:500])}
            if slot == "complaint_wish" and form_values.wish_requested(answering.folded_text(tracker) or text):
                return {**self._calm(dispatcher, tracker), **self._accept(slot, text[:500])}  # 「能不能调高点」
            # 「你这回答有什么用？？」: the feeling first (and a person offered the second time), then the answer
            calmed = self._calm(dispatcher, tracker)
            side = self._side_question(dispatcher, tracker)
            if side is not None:
                return {slot: None, **calmed, **side}
            if calmed and self._asks(text):
                return {slot: None, **calmed}  # an angry question is no answer to the form's question
        if len(text) < 1:
            return {slot: None}
        return {**self._calm(dispatcher, tracker), **self._accept(slot, text[:500])}

    @staticmethod
    def _asks(text: Text) -> bool:
        folded = fold(text, knowledge_names.current().lexicon).text
        return is_question(folded) or bool(split_aside(folded)[1])

    async def get_extraction_events(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> List[Dict[Text, Any]]:
        """Values said in passing fill their empty slots too (「需要开发票，联系人陈经理，电话139…」)."""
        events = await super().get_extraction_events(dispatcher, tracker, domain)
        if (tracker.latest_message.get("intent") or {}).get("name") in ("deny", "goodbye", "request_human"):
            return events
        required = await self.required_slots(self.domain_slots(domain), dispatcher, tracker, domain)
        requested = tracker.get_slot("requested_slot")
        text = tracker.latest_message.get("text") or ""
        empty = [s for s in required if s != requested and tracker.get_slot(s) in (None, "")]
        found = form_values.prefill(knowledge(), now().date(), empty, text)
        folded = answering.folded_text(tracker)
        if folded and folded != text:  # 「想要ｉｍａｘ厅」「聽日」: what the NLU read (width, script, Cantonese folded)
            for slot, value in form_values.prefill(knowledge(), now().date(),
                                                   [s for s in empty if s not in found], folded).items():
                found[slot] = value
        if "phone" in required and requested != "phone" and tracker.get_slot("phone") in (None, "") and "phone" not in found \
                and normalize_phone(text) is None \
                and PHONE_TRIED.search(SERVICE_NUMBERS.sub("", answering.folded_text(tracker) or text)):
            # 「电话1381234567」: a number meant as the phone that is none — said why, then asked again
            dispatcher.utter_message(response="utter_invalid_phone")
        if self.form == "group_booking_form" and "film" in required \
                and requested != "film" and "film" not in found:
            answering.say_film_not_showing(dispatcher, folded or text)  # 「看流浪地球3」 while the phone is asked
        if CORRECTION.search(text):
            # 「说错了，是9点那场」「人数改成三十个」: a value already given is replaced, and the patron told so
            filled = [s for s in required if s != requested and tracker.get_slot(s) not in (None, "", NOT_GIVEN)
                      and s in CORRECTABLE]
            words = new_value(folded or text) or text  # 「不对不对，是5号厅，我记错了」 → 5号厅
            if "人数" in text and parse_party_size(words) and not form_values.PARTY.search(words):
                words += "人"  # 「人数写错了，是二十八个」
            for slot, value in form_values.prefill(knowledge(), now().date(), filled, words).items():
                if value != tracker.get_slot(slot):
                    found[slot] = value
                    _CORRECTED.set(True)  # the question asked is not answered by this message
                    dispatcher.utter_message(response="utter_value_corrected", what=CORRECTABLE[slot], value=value)
        return events + [SlotSet(slot, value) for slot, value in found.items()]

    # ------------------------------------------------------------------ shared slots
    def validate_phone(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        said = tracker.latest_message.get("text") or ""
        if CORRECTION.search(said):
            # 「手机号是135…0000，不对，是135…0001」: the number said last stands
            value = last_phone(said) or value
        result = self._validated("phone", value, dispatcher, tracker, normalize_phone, "utter_invalid_phone")
        before = _previous_value(tracker, "phone")
        if result.get("phone") and before and normalize_phone(before) not in (None, result["phone"]):
            dispatcher.utter_message(response="utter_value_corrected", what="手机号", value=mask_phone(result["phone"]))
        return result

    def validate_order_id(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        result = self._validated("order_id", value, dispatcher, tracker, normalize_order_id, "utter_invalid_order_id")
        if result.get("order_id") and CORRECTION.search(tracker.latest_message.get("text") or ""):
            # 「打错了，应该是XH…」: the patron is told which order id now stands
            dispatcher.utter_message(response="utter_value_corrected", what="订单号", value=result["order_id"])
        return result


# where a complaint happens: a hall by its number, or a place of the cinema (shared with action_emergency's hurry)
PLACE = re.compile(r"\d+号厅|[一二三四五六七八九]号厅|卖品部|卫生间|大厅|前台|停车场")
NOT_REMEMBERED = re.compile(r"不记得|忘了|记不清|不清楚|不知道")
# 「停车费你们也得给我报了」「要赔我」: what the patron wants done
WISH_SAID = re.compile(r"报销|给我报|赔|补偿|退钱|退款|要求|得给我|必须给|给个说法|道歉")
# a number given as a phone (after 电话/手机, or a bare run of digits) that may be one typed wrong
# 「再不处理我打12315」: the numbers of public services are no attempt at a phone number
SERVICE_NUMBERS = re.compile(r"(?<!\d)(12315|12345|12306|12320|110|119|120|122)(?!\d)")
PHONE_TRIED = re.compile(r"(?:电话|手机|号码|联系方式|打)[^\dXx]{0,5}\d[\d\s-]{3,14}\d|(?<![\dXx])1\d{5,11}(?!\d)|"
                         r"^\s*\d[\d\s-]{5,14}\d\s*$")


def _replay_unless_said(dispatcher: CollectingDispatcher, tracker: Tracker, replies: Any) -> None:
    """Send an answer, unless the action that started the form already said all of it this turn."""
    said = _said_this_turn(tracker)
    if not replies.messages or not all(render_reply(m) in said for m in replies.messages):
        replies.replay(dispatcher)


def _said_this_turn(tracker: Tracker) -> set:
    """What the bot has said since the patron's last message."""
    said = set()
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            break
        if event.get("event") == "bot" and event.get("text"):
            said.add(event["text"])
    return said


def _calmed_this_turn(tracker: Tracker) -> bool:
    """Whether an action of this turn already answered the patron's anger (set the anger count)."""
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            return False
        if event.get("event") == "slot" and event.get("name") == "anger_count":
            return True
    return False


def _previous_value(tracker: Tracker, slot: Text) -> Optional[Text]:
    """The value the slot held before this turn's extraction (for 「打错了，应该是…」)."""
    seen_current = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_current = True
            continue
        if seen_current and event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
    return None


FLOW_STARTS = ("action_complain", "action_lost_item", "action_group_booking", "action_request_refund",
               "action_order_problem")


def _asked_before(tracker: Tracker, slot: Text) -> bool:
    """Whether the form already asked for ``slot`` since its flow began."""
    for event in reversed(tracker.events or []):
        if event.get("event") == "action" and event.get("name") in FLOW_STARTS:
            return False
        if event.get("event") == "slot" and event.get("name") == "requested_slot" and event.get("value") == slot:
            return True
    return False


def _free_text_validators(*slots: Text) -> Dict[Text, Callable]:
    def make(slot: Text) -> Callable:
        def validate(self, value, dispatcher, tracker, domain):
            return self._free(slot, value, dispatcher, tracker)
        validate.__name__ = f"validate_{slot}"
        return validate
    return {f"validate_{s}": make(s) for s in slots}


class ValidateComplaintForm(ServiceFormValidation):
    """Each answer is filed under the question it answers: a showing given when the wish was asked goes to
    the showing, a wish given when the showing was asked goes to the wish."""

    form = "complaint_form"
    locals().update(_free_text_validators("complaint_detail"))

    @staticmethod
    def _names_showing(text: Text) -> bool:
        text = fold(text or "", knowledge_names.current().lexicon).text
        return bool(re.search(r"\d+号厅|[一二三四五六七八九]号厅|IMAX|杜比|4DX|巨幕|VIP|\d+[点:：]\d*|[今明昨前]天|今晚|昨晚|"
                              r"周[一二三四五六日天]|[上下中]午|晚上|[那这的]场|场次|[A-Za-z]排|\d+排|卖品部|大厅|卫生间|前台", text or "", re.I))

    @classmethod
    def _is_showing(cls, text: Text) -> bool:
        return cls._names_showing(text) and not WISH.search(text or "")

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> List[Text]:
        """The remedy in the bot's authority was offered with the apology, so the patron's own wish is filed
        when said, not asked for; with a phone already left, the hall is asked only where it matters."""
        slots = [s for s in await super().required_slots(domain_slots, dispatcher, tracker, domain)
                 if s != "complaint_wish"]
        if not tracker.get_slot("complaint_when") and (
                not self._category(tracker).get("where_needed", True)
                or tracker.get_slot("phone") and (int(tracker.get_slot("anger_count") or 0) >= 2 or _asked_before(tracker, "complaint_when"))):
            # a double charge or a rude answer happened nowhere in particular; a showing asked once and not
            # given is not asked again once the phone is left (nor of a patron angry twice over)
            slots = [s for s in slots if s != "complaint_when"]
        return slots

    @staticmethod
    def _category(tracker: Tracker) -> Dict[Text, Any]:
        return complaint_category_named(knowledge(), tracker.get_slot("complaint_category"),
                                        tracker.get_slot("complaint_detail") or "")

    def _dispatched(self, dispatcher: CollectingDispatcher, tracker: Tracker, text: Text) -> None:
        """「1号厅IMAX，现在这场」: who is on the way to the place named (the category's words)."""
        said = self._category(tracker).get("dispatched")
        folded = fold(text or "", knowledge_names.current().lexicon).text
        if PAST.search(folded) or PAST.search(tracker.get_slot("complaint_detail") or ""):
            return  # 「上周六晚上8点 2号厅」: told afterwards, nobody to send there now
        m = PLACE.search(folded)
        if said and m:  # a hall number or a place (a hall type alone names no place: 「我看的是普通厅」)
            dispatcher.utter_message(response="utter_text", text=said.format(where=m.group(0)))

    def validate_complaint_when(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: DomainDict) -> Dict[Text, Any]:
        text = str(value or "").strip()
        if self._asks(text):  # 「这种情况票能退吗」「昨晚9点那场，对了几点下班」: the question is answered first
            return self._free("complaint_when", value, dispatcher, tracker)
        requested = self._requested(tracker, "complaint_when")
        if requested and WISH.search(text) and not self._names_showing(text) and not tracker.get_slot("complaint_wish"):
            # 「我不要道歉，要解决！」: what the bot can do now, then the question again
            dispatcher.utter_message(response="utter_text", text=self._category(tracker)["remedy"])
            return {"complaint_when": None, "complaint_wish": text[:500], "form_retries": 0}
        result = self._free("complaint_when", value, dispatcher, tracker)
        if not requested or result.get(answering.CONTEXT_SLOT):
            return result  # a side question was answered
        if result.get("complaint_when") and not self._names_showing(text) and not NOT_REMEMBERED.search(text) \
                and (self._asks(text) or assess(text, knowledge().section("complaints")).angry):
            # 「你们就这样搞卫生的？第二次遇到了」: more anger, no showing — the handling, then the question again
            dispatcher.utter_message(response="utter_text", text=self._category(tracker)["handling"])
            result["complaint_when"] = None
        elif result.get("complaint_when") and not self._names_showing(text) and not NOT_REMEMBERED.search(text) \
                and not form_values.showing(text) and len(text) >= 6 and normalize_phone(text) is None \
                and normalize_order_id(text) is None:
            # 「买的还是套餐，几十块钱，吃了两口就扔了」: more of the story, not the showing — noted, asked again
            self._noted(dispatcher)
            result["complaint_when"] = None
            result["complaint_detail"] = f"{tracker.get_slot('complaint_detail') or ''}；{text}".strip("；")[:500]
        elif not result.get("complaint_when") and self._names_showing(text):
            # 「那他凭什么拦我？投诉他，5号厅晚上9点」: an angry question with the showing in it still gives the showing
            result["complaint_when"] = text[:500]
        return result

    def validate_phone(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        result = super().validate_phone(value, dispatcher, tracker, domain)
        text = answering.folded_text(tracker)
        noted = knowledge().section("complaints").get("wish_noted")
        if not result.get("phone") and self._requested(tracker, "phone") and noted and WISH_SAID.search(text or "") \
                and not is_question(text or ""):
            # 「停车费你们也得给我报了」: the wish is filed, and the phone asked again
            dispatcher.utter_message(response="utter_text", text=noted)
            if COMPLAINT_REMEDY.search(text or ""):  # 「这场我不想看了，退钱！」: what can be done, said again
                dispatcher.utter_message(response="utter_text", text=self._category(tracker)["remedy"])
            return {**result, "complaint_wish": " ".join(x for x in (tracker.get_slot("complaint_wish"), text[:300]) if x)}
        return result

    async def get_extraction_events(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> List[Dict[Text, Any]]:
        events = await super().get_extraction_events(dispatcher, tracker, domain)
        text = tracker.latest_message.get("text") or ""
        if tracker.get_slot("requested_slot") == "complaint_when" and not tracker.get_slot("complaint_when") \
                and (tracker.latest_message.get("intent") or {}).get("name") == "report_emergency" \
                and self._names_showing(text) and not answering.context_of(tracker).in_emergency \
                and not danger_named(answering.folded_text(tracker) or text, knowledge_names.current().emergency_cues):
            # 「4号厅，十点场，快派人」 read as an emergency with nobody in danger: still the showing asked for
            # (「我孩子刚在1号厅台阶上摔了，头磕破流血了」 names a showing too, and is the emergency)
            events.append(SlotSet("complaint_when", text[:500]))
        if not self._already_dispatched(tracker):
            self._dispatched(dispatcher, tracker, tracker.latest_message.get("text") or "")
        return events

    def _already_dispatched(self, tracker: Tracker) -> bool:
        said = self._category(tracker).get("dispatched") or ""
        head = said.split("{")[0]
        for event in reversed(tracker.events or []):
            if event.get("event") == "action" and event.get("name") == "action_complain":
                return False  # the complaint's own turns only
            if head and event.get("event") == "bot" and (event.get("text") or "").startswith(head):
                return True
        return False

    def validate_complaint_wish(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: DomainDict) -> Dict[Text, Any]:
        text = str(value or "").strip()
        if self._asks(text):
            return self._free("complaint_wish", value, dispatcher, tracker)
        if self._requested(tracker, "complaint_wish") and self._is_showing(text):
            known = tracker.get_slot("complaint_when") or ""
            return {"complaint_wish": None, "complaint_when": " ".join(x for x in (known, text[:200]) if x),
                    "form_retries": 0}
        return self._free("complaint_wish", value, dispatcher, tracker)


class ValidateLostItemForm(ServiceFormValidation):
    form = "lost_item_form"
    locals().update(_free_text_validators("lost_item", "lost_where", "seat"))

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> List[Text]:
        """The seat is asked only 「如记得」: once the phone is left, not at all."""
        slots = await super().required_slots(domain_slots, dispatcher, tracker, domain)
        if tracker.get_slot("phone") and not tracker.get_slot("seat"):
            slots = [s for s in slots if s != "seat"]
        return slots

# 「日期是今天的，影城也是星河滨江店，没错」: the patron has checked what the self-help said to check
CHECKED = re.compile(r"(?<![不没])(没错|都对|是对的|对的|没问题|确认过|确认了|确实是|核对过)")


class ValidateOrderProblemForm(ServiceFormValidation):
    form = "order_problem_form"

    def validate_order_id(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                          domain: DomainDict) -> Dict[Text, Any]:
        text = answering.folded_text(tracker)
        if self._requested(tracker, "order_id") and normalize_order_id(str(value or "")) is None \
                and CHECKED.search(text or "") and not is_question(text or ""):
            problem = form_values.order_problem_named(knowledge(), answering.last_said_with(tracker, "report_order_problem"))
            if problem and problem.get("checked"):
                # what is left of the self-help once the first check came out right (the counter, with the phone)
                dispatcher.utter_message(response="utter_text", text=problem["checked"])
                return {"order_id": None}
        return super().validate_order_id(value, dispatcher, tracker, domain)


class ValidateGroupBookingForm(ServiceFormValidation):
    form = "group_booking_form"
    locals().update(_free_text_validators("hall_pref"))

    def validate_film(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                      domain: DomainDict) -> Dict[Text, Any]:
        if self._requested(tracker, "film"):
            text = answering.folded_text(tracker) or str(value or "")
            if answering.say_film_not_showing(dispatcher, text):  # no such film here: said so, and asked again
                return {"film": None}
        return self._free("film", value, dispatcher, tracker)

    def _side_question(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                       text: Optional[Text] = None) -> Optional[Dict[Text, Any]]:
        # 「那一张几多钱」 while booking a group: the group price for the hall and day said so far
        asked = text if text is not None else answering.folded_text(tracker)
        hall = tracker.get_slot("hall_pref") or ""
        if asked and PRICE_ASKED.search(asked) and knowledge().find_hall_type(f"{hall} {asked}") is not None:
            day = resolve_date(tracker.get_slot("booking_time") or "", now().date())
            said = f"{day.month}月{day.day}日" if day else ""
            turn = answer_turn(knowledge(), answering.context_of(tracker), "ticket_price", 1.0,
                               f"{hall} {said} {asked} 团体价", [])
            if turn.handled:
                turn.replies.replay(dispatcher)
                return {answering.CONTEXT_SLOT: turn.context.to_slot()}
        return super()._side_question(dispatcher, tracker, text)

    def validate_contact_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> Dict[Text, Any]:
        result = self._free("contact_name", value, dispatcher, tracker)
        text = result.get("contact_name")
        if text and not form_values.contact_name(text) and form_values.prefill(
                knowledge(), now().date(), ["film", "hall_pref", "party_size", "booking_time", "invoice"], text):
            return {**result, "contact_name": None}  # 「那看星际归途吧」: the film (taken as such), no name yet
        if text and (len(text) > 8 or form_values.contact_name(text)):
            result["contact_name"] = form_values.contact_name(text) or text[:20]
        return result

    def validate_invoice(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                         domain: DomainDict) -> Dict[Text, Any]:
        result = self._free("invoice", value, dispatcher, tracker)
        if result.get("invoice"):
            result["invoice"] = form_values.invoice(result["invoice"]) or result["invoice"][:40]
        return result

    def validate_party_size(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        def size(text: Text) -> Optional[Text]:
            about = form_values.about_size(text)  # 「三十几个人」: enough to register; the callback confirms it
            if about:
                return about
            n = parse_party_size(text)
            return f"{n}人" if n else None
        result = self._validated("party_size", value, dispatcher, tracker, size, "utter_invalid_party_size")
        group = knowledge().section("services")["group"]
        new = parse_party_size(result.get("party_size") or "")
        old = parse_party_size(_previous_value(tracker, "party_size") or "")
        if new is not None and old is not None and old < group["min_people"] <= new:
            # 「打错了，是二十五个人」: now a group, so the group price applies
            dispatcher.utter_message(response="utter_text", text=group["text"])
        return result

    def validate_booking_time(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._validated("booking_time", value, dispatcher, tracker,
                               lambda t: t if resolve_date(t, now().date()) else None, "utter_invalid_booking_time")


class ValidateRefundForm(ServiceFormValidation):
    form = "refund_form"
    locals().update(_free_text_validators("purchase_channel"))

    async def next_requested_slot(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                  domain: DomainDict) -> Optional[Dict[Text, Any]]:
        # bought on another platform or at the counter: nothing for the bot to register — the form ends and
        # its submit says where the refund is made (「我是在猫眼上买的」「我是在前台付现金买的」)
        if form_values.refunded_elsewhere(knowledge(), tracker.get_slot("purchase_channel")):
            return SlotSet("requested_slot", None)
        return await super().next_requested_slot(dispatcher, tracker, domain)

    def validate_order_id(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                          domain: DomainDict) -> Dict[Text, Any]:
        result = super().validate_order_id(value, dispatcher, tracker, domain)
        if result.get("order_id") and not tracker.get_slot("purchase_channel"):
            # an order id of the cinema's own format was bought in its mini-program: no need to ask where
            result["purchase_channel"] = "小程序"
        return result

    def validate_refund_show(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        k = knowledge()

        def show(text: Text) -> Optional[Text]:
            return text if (k.find_film(text) or resolve_date(text, now().date())) else None
        result = self._validated("refund_show", value, dispatcher, tracker, show, "utter_invalid_refund_show")
        if result.get("refund_show"):
            # what the rules say for that show, now (「是后天晚上的场」 → free); the form then goes on
            turn = answer_turn(k, answering.context_of(tracker), "refund_policy", 1.0, result["refund_show"], [],
                               allow_follow_up=False)
            if turn.handled and turn.decided:
                _replay_unless_said(dispatcher, tracker, turn.replies)
        return result


# 「那我留言吧：」「你帮我留言啦，」: words that only say a message follows
MESSAGE_LEAD = re.compile(r"^(好吧|好的|好|那|那么|行|嗯)?[，,\s]*(那)?(我)?(就)?(你)?(帮我)?(给我)?(想)?留(个)?言(吧|啦|啊|一下)?[:：，,。\s]*")
# a message, not a side question, even when asked as one (「想问能不能补开发票」)
MESSAGE_SAID = re.compile(r"留言|帮我|麻烦|想问|问一下|查|请|要求|希望|反映|投诉|事|回我|联系我|打给我|打俾我")
PHONE_SAID = re.compile(r"(我的)?(手机号?码?|电话|号码|联系方式)?(是|：|:)?\s*(?<!\d)1\d{2}[\s-]?\d{4}[\s-]?\d{4}(?!\d)")


SIDE_QUESTION_MAX = 24  # characters; a longer question is the message itself
NO_MESSAGE_INTENTS = ("greet", "thank", "affirm", "request_human", "nlu_fallback", "out_of_scope", "inform")


class ValidateMessageForm(ServiceFormValidation):
    """What a patron leaves for a person when none is online: the message, and a phone to call back on."""

    form = "message_form"

    def validate_leave_message(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: DomainDict) -> Dict[Text, Any]:
        text = str(value or "").strip()
        folded = answering.folded_text(tracker) or text
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if self._requested(tracker, "leave_message") and intent == "bot_challenge":
            dispatcher.utter_message(response="utter_iamabot")  # 「你是真人吗」: said so, the message asked again
            return {"leave_message": None}
        if self._requested(tracker, "leave_message") and len(text) <= SIDE_QUESTION_MAX and is_question(folded) \
                and not MESSAGE_SAID.search(folded):
            # 「要等多久」「算了我直接打电话吧，热线多少」: answered (the clause that asks), the message asked again
            asking = [c for c in re.split(r"[，,。!！;；]", text) if c.strip() and is_question(c)]
            side = self._side_question(dispatcher, tracker) or \
                (self._side_question(dispatcher, tracker, asking[-1]) if asking and asking[-1] != text else None)
            if side is not None:
                return {"leave_message": None, **side}
        body = MESSAGE_LEAD.sub("", PHONE_SAID.sub("", text)).strip(" ，,。:：!！?？~～")
        if len(body) < 2 or len(body) <= 6 and not MESSAGE_SAID.search(body) and intent in NO_MESSAGE_INTENTS:
            return {"leave_message": None}  # only the phone, 「我留言」 or 「你好？人呢」: asked again
        return {**self._calm(dispatcher, tracker), **self._accept("leave_message", body[:500])}
