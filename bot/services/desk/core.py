"""The desk's state and vocabulary: the ``Desk`` object kept in the application (``DESK``), refused
operations (``DeskError``), the hub that wakes open event streams, role and channel constants."""
from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

log = logging.getLogger(__name__)

from aiohttp import web

from bot.db import session_scope
from bot.services.auth import require_role
from bot.services.common.rasa import RasaError
from bot.services.common.rasa import RasaClient
from bot.services.common.web import iso, jsonable  # noqa: F401 (iso: for the desk modules)

DESK_ACTIONS = frozenset({"action_agent_message", "action_handback", "action_handoff_timeout"})
HIDDEN_SLOTS = frozenset({"agent_message", "requested_slot", "session_started_metadata"})
WECHAT_CHANNEL = "wechat"
WECHAT_WINDOW_S = 48 * 3600
WECHAT_QUOTA = 5  # messages per patron message, within the window
STAFF_ROLES = ("agent", "supervisor")
STATS_ROLES = ("supervisor", "editor")
BOT_ACTORS = frozenset({"bot", "system", "desk"})
MAX_MESSAGE_CHARS = 2000


class DeskError(Exception):
    """A refused desk operation: ``code`` is shown to the agent (mapped to text in the template)."""

    def __init__(self, code: str, status: int = 409, **info: Any) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.info = info

    def response(self) -> web.Response:
        return web.json_response({"error": self.code, **jsonable(self.info)}, status=self.status)


class Hub:
    """Open event streams of this process, per user; wakes them on changes and broadcasts alerts."""

    def __init__(self) -> None:
        self.streams: Dict[str, Set[asyncio.Queue]] = collections.defaultdict(set)

    def add(self, username: str) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=100)
        self.streams[username].add(q)
        return q

    def remove(self, username: str, q: asyncio.Queue) -> int:
        self.streams[username].discard(q)
        left = len(self.streams[username])
        if not left:
            self.streams.pop(username, None)
        return left

    def publish(self, message: Dict[str, Any]) -> None:
        for queues in list(self.streams.values()):
            for q in list(queues):
                try:
                    q.put_nowait(message)
                except asyncio.QueueFull:
                    pass

    def wake(self) -> None:
        self.publish({"kind": "wake"})


@dataclass
class Desk:
    settings: Any
    rasa: RasaClient
    hub: Hub = field(default_factory=Hub)
    locks: Dict[str, asyncio.Lock] = field(default_factory=lambda: collections.defaultdict(asyncio.Lock))
    tasks: List[asyncio.Task] = field(default_factory=list)
    knowledge: Any = None
    stats_cache: Dict[Any, Tuple[float, Dict[str, Any]]] = field(default_factory=dict)
    forms: Optional[Dict[str, List[str]]] = None  # form → required slots, from Rasa's domain

    async def form_slots(self) -> Dict[str, List[str]]:
        if self.forms is None:
            try:
                domain = await self.rasa.domain()
                self.forms = {name: list((spec or {}).get("required_slots") or [])
                              for name, spec in (domain.get("forms") or {}).items()}
            except RasaError:
                return {}
        return self.forms

    @property
    def db_url(self) -> str:
        return self.settings.db_url

    async def db(self, fn, *args, **kwargs):
        """Run ``fn(session, *args)`` in a worker thread inside a transaction."""
        def run():
            with session_scope(self.db_url) as s:
                return fn(s, *args, **kwargs)
        return await asyncio.to_thread(run)


DESK = web.AppKey("xinghe.desk", Desk)
DESK_KEY = DESK  # the name other modules (review) import


def desk_of(request: web.Request) -> Desk:
    return request.app[DESK]


def api(*roles: str):
    """JSON API handler: role check plus DeskError/RasaError → JSON answers."""
    def decorate(handler):
        @require_role(*roles)
        async def wrapper(request: web.Request):
            try:
                return await handler(request)
            except DeskError as exc:
                return exc.response()
            except RasaError as exc:
                log.error("desk: Rasa call failed: %s", exc)
                return web.json_response({"error": "rasa_unavailable"}, status=502)
        wrapper.__name__ = handler.__name__
        return wrapper
    return decorate


async def json_body(request: web.Request) -> Dict[str, Any]:
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise DeskError("bad_json", 400)
        if not isinstance(body, dict):
            raise DeskError("bad_json", 400)
        return body
    return {k: str(v) for k, v in (await request.post()).items()}
