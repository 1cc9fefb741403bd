"""The rating asked after inactivity: a background task of the desk finds conversations whose patron went
quiet after the bot's answer (``satisfaction.idle_conversations``, from the analytics turns) and asks for the
1–5 rating in the patron's channel, once per conversation:

- web chat: only while the patron's page is connected through this application's relay (quick replies);
- WeChat: numbered choices, only inside the 48-hour customer-service window and its quota;
- never while an agent holds or is awaited for the conversation, nor during an emergency (an open emergency
  ticket, or the conversation's emergency mode in the tracker).

The tracker is read again before asking: the analytics lag behind the conversation by the broker's delivery,
and a patron who just wrote again is not idle. The request is recorded first (so the answer is taken by the
message gate wherever it arrives) and withdrawn when the message could not be sent.

How long is idle: ``Settings.satisfaction_idle_s`` (``SATISFACTION_IDLE_S``), else ``complaints.yml`` →
``satisfaction.idle_minutes`` (10)."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any, Callable, Dict, List, Optional

from bot.services.common.rasa import RasaError
from bot.services.desk.core import WECHAT_CHANNEL, Desk
from bot.services.desk.followup import say
from bot.services.desk.knowledge import complaints_wording
from bot.services.desk.tracker_views import channel_window, last_patron_message
from bot.tickets import satisfaction

log = logging.getLogger(__name__)

CONTEXT_SLOT = "topic_context"  # the answering layer's context (bot.answers.context): emergency mode
Connected = Callable[[str], bool]


def idle_after(desk: Desk, wording: Dict[str, Any]) -> dt.timedelta:
    seconds = getattr(desk.settings, "satisfaction_idle_s", None)
    if seconds is None:
        seconds = 60.0 * float(wording.get("idle_minutes") or 10)
    return dt.timedelta(seconds=float(seconds))


def _in_emergency(tracker: Dict[str, Any]) -> bool:
    ctx = (tracker.get("slots") or {}).get(CONTEXT_SLOT)
    return isinstance(ctx, dict) and int(ctx.get("emergency_turns") or 0) > 0


async def _ask(desk: Desk, item: satisfaction.IdleConversation, wording: Dict[str, Any], idle: dt.timedelta,
               connected: Optional[Connected]) -> bool:
    sender = item.sender_id
    if item.channel == "socketio" and not (connected is not None and connected(sender)):
        return False  # the page is closed: a message would go nowhere
    tracker = await desk.rasa.tracker(sender)
    events = tracker.get("events") or []
    _, last_at = last_patron_message(events)
    if tracker.get("paused") or _in_emergency(tracker) or last_at is None or time.time() - last_at < idle.total_seconds():
        return False
    if tracker.get("latest_input_channel") == WECHAT_CHANNEL:
        window = channel_window(WECHAT_CHANNEL, events)
        if not window["open"] or window["remaining"] < 1:
            return False  # outside the 48-hour window or its quota: WeChat would refuse the message

    def record(s):
        row = satisfaction.request(s, sender, item.channel, "inactivity")
        return row.id if row is not None else None
    row_id = await desk.db(record)
    if row_id is None:
        return False
    sent = await say(desk, sender, {"text": wording["prompt"], "buttons": satisfaction.buttons(wording["choices"])})
    if not sent:
        await desk.db(satisfaction.withdraw, row_id)
    return sent


async def ask_idle_once(desk: Desk, connected: Optional[Connected]) -> List[str]:
    """One pass: the senders asked for a rating now."""
    wording = complaints_wording(desk, "satisfaction")
    if not wording:
        return []
    idle = idle_after(desk, wording)
    channels = tuple(getattr(desk.settings, "inactivity_channels", satisfaction.IDLE_CHANNELS))
    due = await desk.db(satisfaction.idle_conversations, idle, channels=channels)
    asked = []
    for item in due:
        try:
            async with desk.locks[item.sender_id]:
                if await _ask(desk, item, wording, idle, connected):
                    asked.append(item.sender_id)
        except RasaError as exc:
            log.warning("desk: rating after inactivity for %s not asked: %s", item.sender_id[:12], exc)
    if asked:
        log.info("desk: asked %d idle conversation(s) for a rating", len(asked))
    return asked


async def inactivity_loop(desk: Desk, connected: Optional[Connected]) -> None:
    while True:
        await asyncio.sleep(desk.settings.inactivity_every_s)
        try:
            await ask_idle_once(desk, connected)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("desk: rating-after-inactivity pass failed")
