"""The satisfaction rating in the Rasa server process, for every channel: after the bot's goodbye the
patron is asked for a 1–5 rating (quick replies on the web, numbered choices on WeChat); their answer (the
quick reply, a typed digit, then an optional comment) is stored and thanked for before NLU, so a 「4」 is
never taken for a question. Installed with the message gate (``bot.services.message_gate.install``).

The prompt after an agent's close or hand-back is sent by the desk through ``action_agent_message``; the
answer is taken here the same way.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Dict, Optional

from bot.db import database_url, session_scope
from bot.tickets import handoff
from bot.tickets import satisfaction

log = logging.getLogger(__name__)

GOODBYE_ACTIONS = frozenset({"utter_goodbye"})


def _complaints() -> Optional[Dict[str, Any]]:
    from bot.kb.store import default_store

    try:
        return default_store().get().section("complaints")
    except Exception:
        log.exception("satisfaction: knowledge store unavailable")
        return None


def _answer_sync(sender: str, text: str) -> Optional[str]:
    complaints = _complaints()
    if not complaints or not complaints.get("satisfaction"):
        return None
    with session_scope(database_url()) as s:
        return satisfaction.answer(s, sender, text, complaints["satisfaction"], complaints["sla_minutes"])


async def intercept(message: Any) -> Optional[str]:
    """The reply when ``message`` answers a pending rating request, else None (the bot handles it)."""
    text = message.text or ""
    if len(text) > 1000:
        return None
    try:
        return await asyncio.to_thread(_answer_sync, str(message.sender_id), text)
    except Exception:
        log.exception("satisfaction: could not read or store a rating")
        return None


def watch(channel: Any) -> Callable[[], bool]:
    """Wrap ``channel.send_response`` to notice the bot's goodbye; returns a function saying if it was seen."""
    seen = {"goodbye": False}
    if channel is None or not hasattr(channel, "send_response"):
        return lambda: False
    original = channel.send_response

    async def send_response(recipient_id, message):
        if isinstance(message, dict) and message.get("utter_action") in GOODBYE_ACTIONS:
            seen["goodbye"] = True
        return await original(recipient_id, message)

    channel.send_response = send_response  # this message's channel object only
    return lambda: seen["goodbye"]


def _request_sync(sender: str, channel: str) -> Optional[Dict[str, Any]]:
    complaints = _complaints()
    if not complaints or not complaints.get("satisfaction"):
        return None
    with session_scope(database_url()) as s:
        conv = handoff.get_conversation(s, sender)
        if conv is not None and conv.state != "bot":
            return None  # waiting for or talking with an agent: the desk asks when it ends
        row = satisfaction.request(s, sender, channel, "goodbye",
                                   ticket_number=conv.ticket_number if conv is not None else None)
        if row is None:
            return None
    wording = complaints["satisfaction"]
    return {"text": wording["prompt"], "buttons": satisfaction.buttons(wording["choices"])}


async def ask_after_goodbye(message: Any) -> None:
    """Ask for the rating through the message's own channel (once per ending)."""
    channel = message.output_channel
    if channel is None:
        return
    try:
        prompt = await asyncio.to_thread(_request_sync, str(message.sender_id), message.input_channel or "")
    except Exception:
        log.exception("satisfaction: could not record the rating request")
        return
    if prompt is not None:
        await channel.send_text_with_buttons(message.sender_id, prompt["text"], prompt["buttons"])
