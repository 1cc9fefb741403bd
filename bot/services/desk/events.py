"""The desk's server-sent event stream (``/desk/api/events``): queue snapshots, new messages of the agent's
conversations and alerts. While a page's stream is open its agent is online."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Dict

from aiohttp import web

from bot.models import utcnow
from bot.services.auth import current_user
from bot.services.common.rasa import RasaError
from bot.services.desk.core import STAFF_ROLES, desk_of, iso
from bot.services.desk.operations import queue_snapshot, set_presence_sync
from bot.services.desk.tracker_views import channel_window, transcript

log = logging.getLogger(__name__)


async def api_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``queue`` snapshots, ``messages`` of the agent's conversations, ``alert``s."""
    identity = current_user(request)
    if identity.role not in STAFF_ROLES:
        return web.json_response({"error": "forbidden", "role": identity.role}, status=403)
    desk = desk_of(request)
    settings = desk.settings
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    inbox = desk.hub.add(identity.username)
    seen: Dict[str, int] = {}
    windows: Dict[str, Any] = {}
    last_snapshot = None
    last_beat = last_ping = 0.0

    async def send(event: str, data: Any) -> None:
        payload = json.dumps(data, ensure_ascii=False)
        await response.write(f"event: {event}\ndata: {payload}\n\n".encode("utf-8"))

    try:
        await response.write(f"retry: {int(settings.sse_retry_ms)}\n\n".encode())
        while True:
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            now = time.monotonic()
            if now - last_beat >= settings.heartbeat_s:
                await desk.db(set_presence_sync, identity.username, True)
                last_beat = now
            snap = await desk.db(queue_snapshot, identity.username, identity.role)
            if snap != last_snapshot:
                await send("queue", {**snap, "server_time": iso(utcnow())})
                last_snapshot = snap
            mine = [c["sender_id"] for c in snap["mine"]]
            for sender in list(seen):
                if sender not in mine:
                    seen.pop(sender, None)
                    windows.pop(sender, None)
            for sender in mine:
                try:
                    tracker = await desk.rasa.tracker(sender)
                except RasaError as exc:
                    log.debug("desk stream: tracker of %s unavailable: %s", sender[:12], exc)
                    continue
                events = tracker.get("events") or []
                items = transcript(events)
                channel = tracker.get("latest_input_channel")
                window = channel_window(channel, events)
                start = seen.get(sender, 0)
                if len(items) < start:
                    start = 0  # the conversation was restarted
                window_key = {k: v for k, v in window.items() if k != "seconds_left"}
                if len(items) > start or windows.get(sender) != window_key:
                    await send("messages", {"sender_id": sender, "items": items[start:], "total": len(items),
                                            "window": window, "channel": channel})
                    seen[sender] = len(items)
                    windows[sender] = window_key
            if now - last_ping >= settings.ping_s:
                await response.write(b": ping\n\n")
                last_ping = now
            try:
                message = await asyncio.wait_for(inbox.get(), timeout=settings.poll_s)
            except asyncio.TimeoutError:
                continue
            batch = [message]
            while not inbox.empty():  # coalesce a burst of wake-ups
                batch.append(inbox.get_nowait())
            if any(m.get("kind") == "shutdown" for m in batch):
                break
            for m in batch:
                payload = m.get("payload") or {}
                if m.get("kind") == "notify" and payload.get("kind") in ("emergency", "alert"):
                    await send("alert", payload)
    except (ConnectionResetError, RuntimeError):
        pass  # the page went away
    finally:
        if desk.hub.remove(identity.username, inbox) == 0:
            try:
                await asyncio.shield(desk.db(set_presence_sync, identity.username, False))
            except Exception:
                log.exception("desk: could not mark %s offline", identity.username)
            desk.hub.wake()
    return response
