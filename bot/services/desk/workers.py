"""Rasa-side operations and the desk's background work: delivering desk actions through the patron's
channel, returning conversations to the bot, the handoff timeout loop and the Redis notification listener."""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Dict, List, Optional, Tuple

from bot.services.common.rasa import RasaError
from bot.services.desk.core import Desk
from bot.services.desk.operations import expire_sync
from bot.services.desk.tracker_views import channel_window

log = logging.getLogger(__name__)


async def deliver_desk_action(desk: Desk, sender: str, action: str, *, pre: Optional[List[Dict]] = None,
                              post: Optional[List[Dict]] = None) -> Dict[str, Any]:
    """Append ``pre`` events, execute ``action`` through the patron's channel, then ``post`` + action_listen."""
    if pre:
        await desk.rasa.append(sender, pre)
    result = await desk.rasa.execute(sender, action)
    await desk.rasa.append(sender, list(post or []) + [{"event": "action", "name": "action_listen"}])
    return result or {}


async def return_to_bot(desk: Desk, sender: str, action: Optional[str], *, reset_slots: bool = False) -> bool:
    """Resume the bot; say ``action``'s text when the channel still allows a message. True if it was said."""
    tracker = await desk.rasa.tracker(sender)
    channel = tracker.get("latest_input_channel")
    events = tracker.get("events") or []
    pre = [{"event": "resume"}] + ([{"event": "reset_slots"}] if reset_slots else [])
    window = channel_window(channel, events)
    if action and (not window["limited"] or window["open"]):
        try:
            await deliver_desk_action(desk, sender, action, pre=pre)
            return True
        except RasaError:
            log.exception("desk: %s for %s failed; the bot is resumed anyway", action, sender[:12])
            await desk.rasa.append(sender, [{"event": "resume"}, {"event": "action", "name": "action_listen"}])
            return False
    await desk.rasa.append(sender, pre + [{"event": "action", "name": "action_listen"}])
    return False


async def expire_once(desk: Desk) -> List[Tuple[str, str]]:
    expired = await desk.db(expire_sync, desk.settings.handoff_timeout_s)
    for sender, reason in expired:
        try:
            async with desk.locks[sender]:
                await return_to_bot(desk, sender, "action_handoff_timeout")
        except RasaError:
            log.exception("desk: could not hand %s back to the bot after %s", sender[:12], reason)
    if expired:
        desk.hub.wake()
    return expired


async def expire_loop(desk: Desk) -> None:
    while True:
        await asyncio.sleep(desk.settings.expire_every_s)
        try:
            await expire_once(desk)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("desk: handoff timeout pass failed")


async def redis_listener(desk: Desk) -> None:
    """Forward ``xinghe:desk`` notifications (queue, alert, emergency) to the open pages at once."""
    try:
        import redis.asyncio as aioredis
    except ImportError:  # pragma: no cover
        return
    while True:
        client = None
        try:
            client = desk.settings.redis.async_client(socket_connect_timeout=1)
            pubsub = client.pubsub()
            await pubsub.subscribe(desk.settings.redis_channel)
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    payload = json.loads(message["data"])
                except (ValueError, TypeError):
                    continue
                if isinstance(payload, dict):
                    desk.hub.publish({"kind": "notify", "payload": payload})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("desk: Redis notifications unavailable (%s); polling only", exc)
        finally:
            if client is not None:
                try:
                    await client.close()
                except Exception:
                    pass
        await asyncio.sleep(desk.settings.redis_retry_s)
