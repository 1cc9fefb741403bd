"""Shared helpers for the custom actions: the knowledge snapshot and the patron's values in this turn."""
from __future__ import annotations

from typing import Dict

from rasa_sdk import Tracker

from bot.answers.ask import TZ, entity_values, money, now  # noqa: F401  (re-exported for the actions)
from bot.kb.store import Knowledge, default_store


def knowledge() -> Knowledge:
    return default_store().get()


def latest_entities(tracker: Tracker) -> Dict[str, str]:
    """First value of each entity in the latest message; hall and seat are read from the words."""
    message = tracker.latest_message or {}
    return entity_values(message.get("text") or "", message.get("entities") or [])
