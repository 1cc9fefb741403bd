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
            items.append({"who": "patron", "text": e.get("text") or "", "at": _ts(e), "intent": intent,
                          "channel": e.get("input_channel")})
        elif kind == "bot":
            who = "agent" if last_action == "action_agent_message" else "bot"
            items.append({"who": who, "text": _bot_text(e), "at": _ts(e)})
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
