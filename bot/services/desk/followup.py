"""Messages the desk sends on its own through the patron's channel (``action_agent_message`` with a
structured slot value): 「人工客服 小李 为您服务」 when an agent takes over, the satisfaction rating when an
agent ends the conversation, and the 回访 when a ticket is resolved (told in the channel when it can still
carry a message: WeChat within the 48-hour window, a web chat the patron used in the last half hour; else
the ticket keeps a follow-up task for a call)."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Dict, Optional

from bot.models import utcnow
from bot.services.common.rasa import RasaError
from bot.services.desk.core import Desk
from bot.services.desk.knowledge import complaints_wording
from bot.services.desk.tracker_views import channel_window, last_patron_message
from bot.services.desk.workers import deliver_desk_action
from bot.tickets import handoff, satisfaction, staff
from bot.tickets import store as tickets

log = logging.getLogger(__name__)

WEBCHAT_LIVE_S = 30 * 60  # a web chat patron silent longer than this has probably closed the page
LIVE_CHANNELS = ("socketio", "wechat")


async def reachable(desk: Desk, sender: str, *, live_within_s: Optional[float] = None,
                    channels: tuple = LIVE_CHANNELS) -> bool:
    """Whether a message can reach ``sender`` now: a live channel, WeChat inside its window, the web chat
    used within ``live_within_s`` (raises ``RasaError`` when Rasa does not answer)."""
    tracker = await desk.rasa.tracker(sender)
    channel = tracker.get("latest_input_channel")
    events = tracker.get("events") or []
    if channel not in channels:
        return False
    window = channel_window(channel, events)
    if window["limited"] and not window["open"]:
        return False
    if live_within_s is not None and channel != "wechat":
        _, at = last_patron_message(events)
        if at is None or at < utcnow().replace(tzinfo=dt.timezone.utc).timestamp() - live_within_s:
            return False
    return True


async def say(desk: Desk, sender: str, message: Dict[str, Any], *, live_within_s: Optional[float] = None,
              channels: tuple = LIVE_CHANNELS) -> bool:
    """Send ``{"text", "agent"?, "buttons"?}`` when the channel allows it now; True when it was sent."""
    if not await reachable(desk, sender, live_within_s=live_within_s, channels=channels):
        return False
    try:
        await deliver_desk_action(desk, sender, "action_agent_message",
                                  pre=[{"event": "slot", "name": "agent_message", "value": message}])
    except RasaError as exc:
        log.warning("desk: message to %s not delivered: %s", sender[:12], exc)
        return False
    return True


async def announce_agent(desk: Desk, sender: str, username: str) -> bool:
    """「人工客服 小李 为您服务」 in the web chat. Not on WeChat: there every agent message starts with the
    agent's name (``escalation.agent_prefix``), and a separate notice would use one of the five messages
    WeChat allows per patron message."""
    wording = complaints_wording(desk, "escalation").get("agent_joined")
    if not wording:
        return False
    name = await desk.db(staff.display_name, username)
    return await say(desk, sender, {"text": wording.format(agent=name), "agent": name}, channels=("socketio",))


async def ask_rating(desk: Desk, sender: str, trigger: str, agent: Optional[str], ticket: Optional[str]) -> bool:
    """Ask for the 1–5 rating (recorded first, so the answer is taken wherever it arrives)."""
    wording = complaints_wording(desk, "satisfaction")
    if not wording:
        return False

    def record(s):
        conv = handoff.get_conversation(s, sender)
        channel = conv.channel if conv else ""
        return satisfaction.request(s, sender, channel, trigger, agent=agent, ticket_number=ticket) is not None
    if not await desk.db(record):
        return False
    return await say(desk, sender, {"text": wording["prompt"], "buttons": satisfaction.buttons(wording["choices"])})


async def tell_resolution(desk: Desk, number: str, actor: str) -> str:
    """回访 of a resolved ticket: ``"sent"`` in its channel, or ``"call"`` (a follow-up task kept), or ``""``."""
    wording = complaints_wording(desk, "followup")
    if not wording:
        return ""

    def load(s):
        t = tickets.get_by_number(s, number)
        return (t.sender_id, t.resolution or "", t.status) if t is not None else None
    found = await desk.db(load)
    if found is None or found[2] != "resolved":
        return ""
    sender, resolution, _ = found
    sent = False
    if sender:
        try:
            sent = await say(desk, sender, {"text": wording["resolved"].format(ticket=number, resolution=resolution)},
                             live_within_s=WEBCHAT_LIVE_S)
        except RasaError:
            sent = False

    def record(s):
        t = tickets.get_by_number(s, number)
        if sent:
            tickets.transition(s, t, actor=actor, followup_done=True, note="已在顾客的渠道告知处理结果")
        elif t.followup_status != "scheduled":
            tickets.transition(s, t, actor=actor, followup_at=tickets.add_working_days(utcnow(), 1),
                               note=wording["call_note"])
    await desk.db(record)
    return "sent" if sent else "call"


