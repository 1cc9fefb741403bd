"""What a turn's events say about it: the replies that mean "not understood", the slot the answering
layer sets when it answered, the handoff action. Shared by the ingest (writing) and the review queue."""
from __future__ import annotations

MISSED_RESPONSES = frozenset({"utter_clarify", "utter_rephrase", "utter_offer_human", "utter_default"})
MISSED_ACTIONS = frozenset({"action_default_fallback"})
ANSWERED_SLOT = "topic_context"
HANDOFF_ACTIONS = frozenset({"action_request_human"})
FALLBACK_INTENT = "nlu_fallback"
TEXT_MAX = 500
