"""Validation of the service forms: specific re-asks for invalid values (at most twice, then a human),
side questions answered mid-form, and corrections by simply saying the new value."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.common import build_ask, knowledge, now
from actions.resolvers import normalize_order_id, normalize_phone, parse_party_size, resolve_date
from actions.topics import INTENT_TOPIC, TOPICS

MAX_RETRIES = 2
SIDE_QUESTION_CONFIDENCE = 0.8
NOT_GIVEN = "未提供"


class ServiceFormValidation(FormValidationAction):
    """Shared behaviour; subclasses name the form and list free-text slots."""

    form: Text = ""
    free_text: tuple = ()

    def name(self) -> Text:
        return f"validate_{self.form}"

    # ------------------------------------------------------------------ helpers
    def _side_question(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
        """Answer an informational question asked mid-form; the form then asks its question again."""
        intent = tracker.latest_message.get("intent") or {}
        topic = INTENT_TOPIC.get(intent.get("name"))
        if topic is None or (intent.get("confidence") or 0) < SIDE_QUESTION_CONFIDENCE:
            return False
        handler = TOPICS[topic]()
        handler.answer(dispatcher, knowledge(), build_ask(tracker, topic))
        return True

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
        result = normalise(str(value or ""))
        if result is not None:
            return self._accept(slot, str(result))
        if self._requested(tracker, slot) and self._side_question(dispatcher, tracker):
            return {slot: None}
        if not self._requested(tracker, slot):  # an entity from another turn that is not valid: ignore it
            return {slot: None}
        return self._retry(slot, dispatcher, tracker, response)

    def _free(self, slot: Text, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict[Text, Any]:
        text = str(value or "").strip()
        if self._requested(tracker, slot) and self._side_question(dispatcher, tracker):
            return {slot: None}
        if len(text) < 1:
            return {slot: None}
        return self._accept(slot, text[:500])

    # ------------------------------------------------------------------ shared slots
    def validate_phone(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._validated("phone", value, dispatcher, tracker, normalize_phone, "utter_invalid_phone")

    def validate_order_id(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._validated("order_id", value, dispatcher, tracker, normalize_order_id, "utter_invalid_order_id")


def _free_text_validators(*slots: Text) -> Dict[Text, Callable]:
    def make(slot: Text) -> Callable:
        def validate(self, value, dispatcher, tracker, domain):
            return self._free(slot, value, dispatcher, tracker)
        validate.__name__ = f"validate_{slot}"
        return validate
    return {f"validate_{s}": make(s) for s in slots}


ValidateComplaintForm = type("ValidateComplaintForm", (ServiceFormValidation,), {
    "form": "complaint_form", **_free_text_validators("complaint_detail", "complaint_when", "complaint_wish")})

ValidateLostItemForm = type("ValidateLostItemForm", (ServiceFormValidation,), {
    "form": "lost_item_form", **_free_text_validators("lost_item", "lost_where", "seat")})

ValidateOrderProblemForm = type("ValidateOrderProblemForm", (ServiceFormValidation,), {"form": "order_problem_form"})


class ValidateGroupBookingForm(ServiceFormValidation):
    form = "group_booking_form"
    locals().update(_free_text_validators("contact_name", "film", "hall_pref", "invoice"))

    def validate_party_size(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        def size(text: Text) -> Optional[Text]:
            n = parse_party_size(text)
            return f"{n}人" if n else None
        return self._validated("party_size", value, dispatcher, tracker, size, "utter_invalid_party_size")

    def validate_booking_time(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._validated("booking_time", value, dispatcher, tracker,
                               lambda t: t if resolve_date(t, now().date()) else None, "utter_invalid_booking_time")


class ValidateRefundForm(ServiceFormValidation):
    form = "refund_form"
    locals().update(_free_text_validators("purchase_channel"))

    def validate_refund_show(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        k = knowledge()

        def show(text: Text) -> Optional[Text]:
            return text if (k.find_film(text) or resolve_date(text, now().date())) else None
        return self._validated("refund_show", value, dispatcher, tracker, show, "utter_invalid_refund_show")
