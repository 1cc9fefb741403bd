"""Views of a Rasa tracker for the desk: the transcript (patron, bot, agent, system), the slots worth
showing, and what the patron's channel allows now (WeChat's 48-hour window and per-message quota)."""
from __future__ import annotations

import datetime as dt
import time
from typing import Any, Dict, Iterable, List, Optional, Tuple

from bot.channels.wechat_api import split_utf8
from bot.services.desk.core import DESK_ACTIONS, HIDDEN_SLOTS, WECHAT_CHANNEL, WECHAT_QUOTA, WECHAT_WINDOW_S, DeskError


def _ts(event: Dict[str, Any]) -> float:
    try:
        return float(event.get("timestamp") or 0)
    except (TypeError, ValueError):
        return 0.0


def _bot_text(event: Dict[str, Any]) -> str:
    text = event.get("text") or ""
    data = event.get("data") or {}
    buttons = [b.get("title") for b in (data.get("buttons") or []) if isinstance(b, dict) and b.get("title")]
    if buttons:
        text = (text + "\n" if text else "") + " / ".join(buttons)
    return text


def _agent_name(event: Dict[str, Any]) -> Optional[str]:
    """The display name ``action_agent_message`` put on the message (Rasa keeps it in the event metadata)."""
    meta = event.get("metadata") or {}
    inner = meta.get("metadata") if isinstance(meta.get("metadata"), dict) else meta
    agent = inner.get("agent") if isinstance(inner, dict) else None
    return agent.get("name") if isinstance(agent, dict) and agent.get("name") else None


def _has_buttons(event: Dict[str, Any]) -> bool:
    return bool((event.get("data") or {}).get("buttons"))


def transcript(events: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Messages of a tracker: ``who`` is patron, bot, agent (uttered by action_agent_message) or system
    (``code`` paused/resumed); ``at`` is a unix timestamp."""
    items: List[Dict[str, Any]] = []
    last_action = None
    paused = False
    for e in events:
        kind = e.get("event")
        if kind == "action":
            last_action = e.get("name")
        elif kind == "user":
            intent = ((e.get("parse_data") or {}).get("intent") or {}).get("name")
            text = e.get("text") or ""
            if text.startswith("/"):
                continue  # a payload (/greet of a new chat, a WeChat menu event): not something the patron typed
            items.append({"who": "patron", "text": text, "at": _ts(e), "intent": intent,
                          "channel": e.get("input_channel")})
        elif kind == "bot":
            agent = _agent_name(e) if last_action == "action_agent_message" else None
            who = "agent" if agent or last_action == "action_agent_message" and not _has_buttons(e) else "bot"
            item = {"who": who, "text": _bot_text(e), "at": _ts(e)}
            if agent:
                item["agent_name"] = agent
            items.append(item)
        elif kind in ("pause", "resume"):
            if (kind == "pause") != paused:  # a repeated pause (bot, then the desk's claim) shows once
                paused = kind == "pause"
                items.append({"who": "system", "code": "paused" if paused else "resumed", "at": _ts(e)})
    for i, item in enumerate(items):
        item["index"] = i
    return items


def visible_slots(tracker: Dict[str, Any]) -> Dict[str, Any]:
    """Slots the bot filled (empty values, zero counters and false flags left out)."""
    return {k: v for k, v in sorted((tracker.get("slots") or {}).items())
            if k not in HIDDEN_SLOTS and v is not None and v is not False and v != 0 and v not in ("", [], {})}


#: Bookkeeping slots an agent has no use for (counters, flags, the form flags and the topic memory).
INTERNAL_SLOTS = frozenset({"form_retries", "needs_human", "anger_count", "order_id_format", "topic_context",
                            "fallback_count", "complaint_form", "lost_item_form", "group_booking_form",
                            "order_problem_form", "refund_form"})
#: What a conversation without a form is about: the answer slots.
ANSWER_SLOTS = ("film", "date", "time", "hall_type", "ticket_type", "facility", "seat")
#: Extra slots a form's topic fills besides its required ones.
FORM_EXTRAS = {"complaint_form": ("complaint_category", "complaint_onsite", "contact_name", "film", "hall_type"),
               "lost_item_form": ("contact_name", "film", "date", "time"),
               "order_problem_form": ("order_problem_kind", "purchase_channel", "film"),
               "refund_form": ("film", "date", "time")}


def current_form(events: Iterable[Dict[str, Any]]) -> Optional[str]:
    """The conversation's topic as a form: the active one, else the last one that ran."""
    name = None
    for e in events:
        if e.get("event") == "active_loop" and e.get("name"):
            name = e.get("name")
    return name


def topic_slots(tracker: Dict[str, Any], forms: Dict[str, List[str]]) -> List[Tuple[str, Any]]:
    """The values of the current topic only, in the form's order (``forms``: form → required slots, from
    the domain); without a form the answer slots. Empty values are left out."""
    slots = tracker.get("slots") or {}
    form = (tracker.get("active_loop") or {}).get("name") or current_form(tracker.get("events") or [])
    names: List[str] = []
    if form and form in forms:
        names = list(forms[form]) + [x for x in FORM_EXTRAS.get(form, ()) if x not in forms[form]]
    else:
        names = list(ANSWER_SLOTS)
    out = []
    for name in names:
        v = slots.get(name)
        if name in HIDDEN_SLOTS or name in INTERNAL_SLOTS or v is None or v is False or v in ("", [], {}):
            continue
        out.append((name, v))
    return out


def last_patron_message(events: List[Dict[str, Any]]) -> Tuple[Optional[int], Optional[float]]:
    """Index and time of the patron's last real message (intent triggers like ``/greet`` from WeChat
    events such as a subscription do not open the 48-hour window)."""
    for i in range(len(events) - 1, -1, -1):
        e = events[i]
        if e.get("event") == "user" and not (e.get("text") or "").startswith("/"):
            return i, _ts(e)
    return None, None


def wechat_window(events: List[Dict[str, Any]], now: Optional[float] = None, *,
                  window_s: float = WECHAT_WINDOW_S, quota: int = WECHAT_QUOTA) -> Dict[str, Any]:
    """Whether a customer-service message may go to a WeChat patron now, and how many more.

    ``sent`` counts the messages the desk had Rasa send (agent replies, hand-back and timeout notices; a
    text over 2048 bytes is several messages) since the patron's last message.
    """
    now = time.time() if now is None else now
    index, at = last_patron_message(events)
    if index is None or at is None:
        return {"limited": True, "open": False, "reason": "wechat_no_patron_message", "quota": quota,
                "sent": 0, "remaining": 0, "last_patron_at": None, "expires_at": None}
    sent = 0
    last_action = None
    for e in events[index + 1:]:
        if e.get("event") == "action":
            last_action = e.get("name")
        elif e.get("event") == "bot" and last_action in DESK_ACTIONS:
            sent += max(1, len(split_utf8(_bot_text(e))))
    expires = at + window_s
    remaining = max(0, quota - sent)
    reason = None
    if now >= expires:
        reason = "wechat_window_closed"
    elif remaining <= 0:
        reason = "wechat_quota_exhausted"
    return {"limited": True, "open": reason is None, "reason": reason, "quota": quota, "sent": sent,
            "remaining": remaining if reason != "wechat_window_closed" else 0,
            "last_patron_at": dt.datetime.fromtimestamp(at, dt.timezone.utc).isoformat(),
            "expires_at": dt.datetime.fromtimestamp(expires, dt.timezone.utc).isoformat(),
            "seconds_left": max(0, int(expires - now))}


def channel_window(channel: Optional[str], events: List[Dict[str, Any]], now: Optional[float] = None) -> Dict[str, Any]:
    if channel == WECHAT_CHANNEL:
        return wechat_window(events, now)
    return {"limited": False, "open": True, "reason": None, "live": channel in ("socketio", WECHAT_CHANNEL)}


def check_can_send(channel: Optional[str], events: List[Dict[str, Any]], text: str) -> Dict[str, Any]:
    """Raise ``DeskError`` when the channel's rules forbid sending ``text`` now; else the window."""
    window = channel_window(channel, events)
    if not window["limited"]:
        return window
    if not window["open"]:
        raise DeskError(window["reason"], window=window, followup=True)
    needed = max(1, len(split_utf8(text)))
    if needed > window["remaining"]:
        raise DeskError("wechat_quota_exhausted", window=window, needed=needed, followup=True)
    return window
