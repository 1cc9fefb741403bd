"""Which web chat sessions have a browser connected through this application's socket.io relay
(``bot.services.webchat``) right now: the desk sends an unprompted message (the rating asked after
inactivity) only to a patron whose page is still open, since Rasa drops an emit to an empty room.

Every browser reaches Rasa through the relay (the cluster's nginx sends ``/webchat/socket.io/`` to the one web
app), so what the relay sees is the whole picture; a page embedding the widget with ``data-rasa`` (straight to
a public Rasa) is never seen, and such a patron is not asked."""
from __future__ import annotations

import collections
import time
from typing import Callable, Dict

from aiohttp import web

#: A long-polling client is back within engine.io's ping interval (25 s) plus a reply's travel.
POLL_GRACE_S = 40.0


class SocketPresence:
    """Open WebSockets per session id and the last long-poll of each; in-process, no I/O."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._open: Dict[str, int] = collections.Counter()
        self._polled: Dict[str, float] = {}
        self._pruned = clock()

    def opened(self, session_id: str) -> None:
        self._open[session_id] += 1
        self._polled.pop(session_id, None)  # engine.io upgraded from polling: the socket says it all now

    def closed(self, session_id: str) -> None:
        self._open[session_id] -= 1
        if self._open[session_id] <= 0:
            del self._open[session_id]
        self._polled.pop(session_id, None)  # a poll answered before the upgrade says nothing of the page

    def polled(self, session_id: str) -> None:
        now = self._clock()
        self._polled[session_id] = now
        if now - self._pruned > POLL_GRACE_S:  # forget pages closed long ago, so the map stays small
            self._polled = {k: t for k, t in self._polled.items() if now - t <= POLL_GRACE_S}
            self._pruned = now

    def connected(self, session_id: str) -> bool:
        if self._open.get(session_id, 0) > 0:
            return True
        at = self._polled.get(session_id)
        return at is not None and self._clock() - at <= POLL_GRACE_S


WEBCHAT_PRESENCE = web.AppKey("xinghe.webchat_presence", SocketPresence)
