"""The agent desk (``setup_desk``): live queue, claimed conversations, replies through the patron's channel, tickets, statistics.

Everything a conversation says lives in Rasa's tracker; the desk reads it through Rasa's HTTP API and acts
through it too:

- reply: ``POST /conversations/{id}/tracker/events`` ``[slot agent_message]`` then ``POST .../execute``
  ``action_agent_message`` with ``output_channel=latest`` (Rasa sends it through the patron's channel:
  socket.io room of the session, or WeChat's customer-service message API), then ``action_listen`` so the
  next patron message is predicted as usual;
- hand back: ``handoff.release`` + ``resume`` + ``action_handback`` + ``action_listen``;
- claim: ``handoff.claim`` + ``pause`` (idempotent) + ticket → claimed;
- ticket numbers owed after an outage: ``notices`` tells them in the patron's channel (or leaves them for
  the desk) once the durable queue has stored the tickets;
- rating after inactivity: a background task asks a patron who went quiet after an answer for the 1–5
  rating, once per conversation (``inactivity``);
- timeout: a background task runs ``handoff.expire_waiting`` every few seconds and lets the bot take the
  expired conversations back with ``action_handoff_timeout``; a conversation whose agent has been offline
  that long is returned the same way.

Live updates reach the page as server-sent events (``/desk/api/events``): the queue (polled from the
database, and at once on a Redis ``xinghe:desk`` notification), alerts for emergencies, and the new
messages of the agent's conversations (polled from the tracker). While a page's stream is open the agent is
online (``handoff.heartbeat``); when the last one closes the agent goes offline.

WeChat: customer-service messages may only be sent within 48 hours of the patron's last message and at most
``WECHAT_QUOTA`` (5) of them per patron message (WeChat's documented rule since June 2023); the desk counts
the messages it had Rasa send since the patron's last message and refuses beyond that.

Modules: ``core`` (the Desk object, errors, hub), ``tracker_views`` (transcript, channel windows),
``operations`` (database side), ``workers`` (Rasa-side operations, timeouts, notifications), ``notices``
(ticket numbers owed after an outage), ``pages``,
``api``, ``events`` (server-sent events), ``stats`` (statistics), ``routes`` (every route).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bot.services.common.rasa import RasaClient, RasaError  # noqa: F401
from bot.services.desk.core import (DESK, DESK_KEY, Desk, DeskError, Hub, desk_of)  # noqa: F401
from bot.services.desk.operations import expire_sync  # noqa: F401
from bot.services.desk.routes import setup_routes
from bot.services.desk.stats import bot_stats, ticket_stats  # noqa: F401
from bot.services.desk.tracker_views import (check_can_send, transcript, visible_slots,  # noqa: F401
                                             wechat_window)
from bot.services.desk.notices import notice_loop
from bot.services.desk.inactivity import inactivity_loop
from bot.services.desk.workers import expire_loop, redis_listener
from bot.services.webchat_presence import WEBCHAT_PRESENCE
from bot.tickets._common import to_local  # noqa: F401 (tests read it from here)


def setup_desk(app: web.Application, settings: Any) -> Desk:
    """Register the desk on ``app``: its state under ``DESK``, its routes, and its background tasks."""
    desk = Desk(settings=settings, rasa=RasaClient(settings.rasa_url, settings.rasa_token))
    app[DESK] = desk
    setup_routes(app, settings.static_dir)

    async def start(app: web.Application) -> None:
        if settings.background_tasks:
            desk.tasks.append(asyncio.create_task(expire_loop(desk)))
            desk.tasks.append(asyncio.create_task(redis_listener(desk)))
            desk.tasks.append(asyncio.create_task(notice_loop(desk)))
            # the web chat (set up after the desk) tells which patrons' pages are open
            presence = app.get(WEBCHAT_PRESENCE)
            desk.tasks.append(asyncio.create_task(
                inactivity_loop(desk, presence.connected if presence is not None else None)))

    async def stop(app: web.Application) -> None:
        for task in desk.tasks:
            task.cancel()
        for task in desk.tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        await desk.rasa.close()

    async def shutdown(app: web.Application) -> None:
        desk.hub.publish({"kind": "shutdown"})  # open event streams end before the server waits for them

    app.on_startup.append(start)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(stop)
    return desk
