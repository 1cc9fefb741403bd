"""Shared helpers for the custom actions: the knowledge snapshot, today's date, the patron's values."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Text
from zoneinfo import ZoneInfo

from rasa_sdk import Tracker

from bot.kb.store import Knowledge, default_store

TZ = ZoneInfo("Asia/Shanghai")
ENTITY_KEYS = ("film", "date", "time", "hall_type", "ticket_type", "facility", "phone", "order_id",
               "party_size", "lost_item", "hall", "seat")


def knowledge() -> Knowledge:
    return default_store().get()


def now() -> dt.datetime:
    """Current wall-clock time in the cinema's time zone (naive)."""
    return dt.datetime.now(TZ).replace(tzinfo=None)


HALL = re.compile(r"([1-9]\d?|[一二三四五六七八九十])号厅")
SEAT = re.compile(r"\d{1,2}\s*排\s*\d{1,2}\s*[号座]?")


def latest_entities(tracker: Tracker) -> Dict[str, str]:
    """First value of each entity in the latest message; hall and seat are read from the words."""
    values: Dict[str, str] = {}
    for e in tracker.latest_message.get("entities", []) or []:
        if e.get("entity") in ENTITY_KEYS and e.get("value") not in (None, ""):
            values.setdefault(e["entity"], str(e["value"]))
    text = tracker.latest_message.get("text") or ""
    for key, pattern in (("hall", HALL), ("seat", SEAT)):
        m = pattern.search(text)
        if m and key not in values:
            values[key] = m.group(0)
    return values


@dataclass
class Ask:
    """What the patron asked about in this turn: their words and the values in play."""

    text: str
    values: Dict[str, str] = field(default_factory=dict)
    carried: bool = False  # values were carried over from the previous answer on the same topic

    def get(self, key: str) -> Optional[str]:
        return self.values.get(key)


def build_ask(tracker: Tracker, topic: str, follow_up: bool = False) -> Ask:
    """Entities of this message, plus the previous answer's values when it is a follow-up on that topic."""
    text = tracker.latest_message.get("text") or ""
    values = latest_entities(tracker)
    ctx = tracker.get_slot("topic_context") or {}
    carried = False
    if ctx.get("topic") == topic and (follow_up or values):
        for key, value in (ctx.get("values") or {}).items():
            if key not in values:
                values[key] = value
                carried = True
    return Ask(text=text if not text.startswith("/") else "", values=values, carried=carried)


def join_lines(lines: List[Text]) -> Text:
    return "\n".join(lines)


def money(value: Any) -> Text:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:.1f}"


def date_label(day: dt.date, today: dt.date) -> Text:
    from actions.resolvers import weekday_name

    names = {0: "今天", 1: "明天", 2: "后天"}
    delta = (day - today).days
    prefix = names.get(delta, "")
    return f"{prefix}（{day.month}月{day.day}日{weekday_name(day)}）" if prefix else f"{day.month}月{day.day}日{weekday_name(day)}"


def resolve_day(ask: Ask, today: dt.date) -> dt.date:
    from actions.resolvers import resolve_date

    for source in (ask.get("date"), ask.text):
        if source:
            day = resolve_date(source, today)
            if day:
                return day
    return today
