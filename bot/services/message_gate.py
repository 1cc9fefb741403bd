"""The gate every patron message passes before NLU, in every channel (REST, socket.io, WeChat):
too long → refused with a polite reply; too many from one sender or one client address → refused likewise;
the answer to a satisfaction rating request → stored and thanked for (``satisfaction_gate``), and after
the bot's goodbye the rating is asked.

Installed into the Rasa server process by ``bot.services.rasa_server`` around ``Agent.handle_message``,
which is what every input channel's ``on_new_message`` calls, so no channel can bypass it. DIET's attention
is quadratic in the message length: a 200,000-character message held the server for over a minute.
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Any, Optional

from bot.services.ratelimit import Limiter, default_limiter
from bot.services.refusals import refusal

log = logging.getLogger(__name__)

#: Longer than anything a patron types in one message (the longest holdout message is ~60 characters).
MAX_MESSAGE_CHARS = int(os.environ.get("XINGHE_MAX_MESSAGE_CHARS", "500"))


def check(message: Any, limiter: Optional[Limiter] = None) -> Optional[str]:
    """The refusal text for ``message`` (a Rasa ``UserMessage``), or None to let it through."""
    text = message.text or ""
    if len(text) > MAX_MESSAGE_CHARS:
        log.warning("refused a %d-character message from %s (limit %d)", len(text),
                    str(message.sender_id)[:8], MAX_MESSAGE_CHARS)
        return refusal("too_long", limit=MAX_MESSAGE_CHARS)
    limiter = limiter or default_limiter()
    channel = message.input_channel or "-"
    ip = (message.metadata or {}).get("client_ip") if isinstance(message.metadata, dict) else None
    if ip and not limiter.hit("message_ip", str(ip)):
        log.warning("rate limit message_ip: refused a message from %s", ip)
        return refusal("too_many_messages")
    if not limiter.hit("message_sender", f"{channel}:{message.sender_id}"):
        log.warning("rate limit message_sender: refused a message from %s", str(message.sender_id)[:8])
        return refusal("too_many_messages")
    return None


def install() -> None:
    """Wrap ``rasa.core.agent.Agent.handle_message`` with the gate (idempotent)."""
    from rasa.core.agent import Agent

    original = Agent.handle_message
    if getattr(original, "_xinghe_gate", False):
        return

    from bot.services import satisfaction_gate

    @functools.wraps(original)
    async def handle_message(self, message):
        refused = check(message)
        if refused is not None:
            if message.output_channel is not None:
                await message.output_channel.send_text_message(message.sender_id, refused)
            return None
        rated = await satisfaction_gate.intercept(message)  # a rating or its comment: stored and thanked for
        if rated is not None:
            if message.output_channel is not None:
                await message.output_channel.send_text_message(message.sender_id, rated)
            return None
        said_goodbye = satisfaction_gate.watch(message.output_channel)
        result = await original(self, message)
        if said_goodbye():
            await satisfaction_gate.ask_after_goodbye(message)
        return result

    handle_message._xinghe_gate = True  # type: ignore[attr-defined]
    Agent.handle_message = handle_message
