"""The agent desk: live queue, claimed conversations, replies through the patron's channel, tickets, statistics.

Everything a conversation says lives in Rasa's tracker; the desk reads it through Rasa's HTTP API and acts
through it too:

- reply: ``POST /conversations/{id}/tracker/events`` ``[slot agent_message]`` then ``POST .../execute``
  ``action_agent_message`` with ``output_channel=latest`` (Rasa sends it through the patron's channel:
  socket.io room of the session, or WeChat's customer-service message API), then ``action_listen`` so the
  next patron message is predicted as usual;
- hand back: ``handoff.release`` + ``resume`` + ``action_handback`` + ``action_listen``;
- claim: ``handoff.claim`` + ``pause`` (idempotent) + ticket → claimed;
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
"""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import logging
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple
from urllib.parse import quote

import aiohttp
from aiohttp import web
from sqlalchemy import select, update

from bot.analytics import read as analytics
from bot.channels.wechat_api import split_utf8
from bot.db import session_scope
from bot.models import AgentPresence, AuditLog, Conversation, Ticket, TicketEvent, User, utcnow
from bot.services.auth import APP_KEY as AUTH_KEY
from bot.services.auth import Identity, current_user, require_role
from bot.services.rasa_auth import auth_headers
from bot.tickets import handoff
from bot.tickets import store as tickets
from bot.tickets._common import local_to_utc_naive, to_local

log = logging.getLogger(__name__)

DESK_KEY = "xinghe.desk"
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
        return web.json_response({"error": self.code, **_jsonable(self.info)}, status=self.status)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc).isoformat() if value.tzinfo is None else value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def iso(value: Optional[dt.datetime]) -> Optional[str]:
    """Naive UTC from the database as ISO 8601 with an explicit zone (the browser shows local time)."""
    return _jsonable(value) if value is not None else None


# --------------------------------------------------------------------------- Rasa HTTP API
class RasaError(Exception):
    pass


class RasaClient:
    def __init__(self, base_url: str, token: Optional[str]) -> None:
        self.base = base_url.rstrip("/")
        self.token = token
        self._session: Optional[aiohttp.ClientSession] = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _url(self, sender: str, tail: str) -> str:
        return f"{self.base}/conversations/{quote(sender, safe='')}/{tail}"

    def _params(self, **extra: str) -> Dict[str, str]:
        return dict(extra)

    async def _call(self, method: str, url: str, params: Dict[str, str], body: Any = None) -> Any:
        try:
            async with self._http().request(method, url, params=params, json=body,
                                            headers=auth_headers(self.token)) as r:
                text = await r.text()
                if r.status >= 400:
                    raise RasaError(f"{method} {url.split('?')[0]}: HTTP {r.status} {text[:300]}")
                return json.loads(text) if text else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise RasaError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc

    async def tracker(self, sender: str) -> Dict[str, Any]:
        return await self._call("GET", self._url(sender, "tracker"), self._params(include_events="AFTER_RESTART"))

    async def append(self, sender: str, events: List[Dict[str, Any]]) -> Dict[str, Any]:
        return await self._call("POST", self._url(sender, "tracker/events"),
                                self._params(include_events="NONE"), events)

    async def execute(self, sender: str, action: str) -> Dict[str, Any]:
        return await self._call("POST", self._url(sender, "execute"),
                                self._params(output_channel="latest", include_events="NONE"), {"name": action})


# --------------------------------------------------------------------------- tracker views
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


# --------------------------------------------------------------------------- live updates
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

    @property
    def db_url(self) -> str:
        return self.settings.db_url

    async def db(self, fn, *args, **kwargs):
        """Run ``fn(session, *args)`` in a worker thread inside a transaction."""
        def run():
            with session_scope(self.db_url) as s:
                return fn(s, *args, **kwargs)
        return await asyncio.to_thread(run)


def desk_of(request: web.Request) -> Desk:
    return request.app[DESK_KEY]


# --------------------------------------------------------------------------- database views
def _ticket_brief(t: Optional[Ticket], now: Optional[dt.datetime] = None) -> Optional[Dict[str, Any]]:
    if t is None:
        return None
    now = now or utcnow()
    return {"number": t.number, "type": t.type, "category": t.category, "priority": t.priority,
            "status": t.status, "assignee": t.assignee, "reply_due": iso(t.reply_due),
            "overdue": t.status in tickets.OPEN_STATUSES and t.reply_due < now,
            "created_at": iso(t.created_at), "channel": t.channel, "sender_id": t.sender_id,
            "followup_status": t.followup_status, "followup_at": iso(t.followup_at)}


def _tickets_by_number(s, numbers: Iterable[Optional[str]]) -> Dict[str, Ticket]:
    wanted = sorted({n for n in numbers if n})
    if not wanted:
        return {}
    return {t.number: t for t in s.execute(select(Ticket).where(Ticket.number.in_(wanted))).scalars()}


def queue_snapshot(s, username: str, role: str) -> Dict[str, Any]:
    """What the desk page shows on the left: waiting queue, alerts, the agent's conversations, who is online."""
    now = utcnow()
    waiting = handoff.queue(s)
    held = list(s.execute(select(Conversation).where(Conversation.state == "agent")
                          .order_by(Conversation.updated_at)).scalars())
    alert_rows = list(s.execute(
        select(Ticket).where(Ticket.status == "open", Ticket.priority <= 2,
                             Ticket.created_at >= now - dt.timedelta(hours=24))
        .order_by(Ticket.priority, Ticket.created_at)).scalars())
    by_number = _tickets_by_number(s, [c.ticket_number for c in waiting + held])

    def conv(c: Conversation) -> Dict[str, Any]:
        t = by_number.get(c.ticket_number or "")
        return {"sender_id": c.sender_id, "channel": c.channel, "priority": c.priority, "state": c.state,
                "agent": c.agent, "queued_at": iso(c.queued_at), "updated_at": iso(c.updated_at),
                "emergency": c.priority == 1 or (t is not None and t.type == "emergency"),
                "ticket": _ticket_brief(t, now)}

    mine = [conv(c) for c in held if c.agent == username]
    others = [conv(c) for c in held if c.agent != username] if role == "supervisor" else []
    return {
        "me": {"username": username, "role": role},
        "waiting": [conv(c) for c in waiting],
        "mine": mine,
        "others": others,
        "alerts": [{**_ticket_brief(t, now), "emergency": t.type == "emergency" or t.priority == 1,
                    "summary": _summary(t)} for t in alert_rows],
        "agents_online": handoff.agents_online(s),
    }


def _summary(t: Ticket) -> str:
    facts = t.facts or {}
    for key in ("message", "text", "reason", "description"):
        if facts.get(key):
            return tickets._mask_text(str(facts[key]))[:120]
    return ""


def _audit(s, actor: str, entity: str, entity_id: str, action: str, before: Any = None, after: Any = None) -> None:
    s.add(AuditLog(actor=actor, entity=entity, entity_id=entity_id[:128], action=action,
                   before=_jsonable(before), after=_jsonable(after)))


def claim_sync(s, sender: str, user: Identity, take_over: bool = False) -> Dict[str, Any]:
    conv = handoff.get_conversation(s, sender)
    if conv is None:
        raise DeskError("unknown_conversation", 404)
    if conv.state == "agent" and conv.agent != user.username:
        raise DeskError("claimed_by_other", agent=conv.agent)
    if conv.state == "bot" and not take_over:
        raise DeskError("not_waiting")
    try:
        conv = handoff.claim(s, sender, user.username)
    except ValueError:
        conv = handoff.get_conversation(s, sender)
        raise DeskError("claimed_by_other", agent=conv.agent if conv else None)
    ticket = tickets.get_by_number(s, conv.ticket_number) if conv.ticket_number else None
    if ticket is not None:
        try:
            if ticket.status == "open":
                tickets.transition(s, ticket, actor=user.username, status="claimed", assignee=user.username)
            elif ticket.status == "claimed" and ticket.assignee != user.username:
                tickets.transition(s, ticket, actor=user.username, assignee=user.username)
        except ValueError as exc:
            log.info("claim %s: ticket %s not moved: %s", sender, ticket.number, exc)
    _audit(s, user.username, "conversation", sender, "claimed", after={"ticket": conv.ticket_number})
    return {"sender_id": sender, "ticket": conv.ticket_number}


def take_over_sync(s, number: str, user: Identity) -> Dict[str, Any]:
    """Claim the conversation behind a ticket (e.g. an emergency the bot answered) even if not queued."""
    ticket = tickets.get_by_number(s, number)
    if ticket is None or not ticket.sender_id:
        raise DeskError("unknown_ticket", 404)
    conv = handoff.get_conversation(s, ticket.sender_id)
    if conv is None or conv.state == "bot":
        handoff.request_human(s, ticket.sender_id, ticket.channel, ticket.priority, ticket.number)
    elif conv.ticket_number != ticket.number and conv.state != "agent":
        conv.ticket_number = ticket.number
    return claim_sync(s, ticket.sender_id, user, take_over=True)


def hold_check(s, sender: str, user: Identity, *, allow_supervisor: bool = True) -> Conversation:
    conv = handoff.get_conversation(s, sender)
    if conv is None:
        raise DeskError("unknown_conversation", 404)
    if conv.state != "agent":
        raise DeskError("not_claimed")
    if conv.agent != user.username and not (allow_supervisor and user.role == "supervisor"):
        raise DeskError("claimed_by_other", agent=conv.agent)
    return conv


def release_sync(s, sender: str, user: Identity, action: str, resolve: Optional[Dict[str, Any]] = None
                 ) -> Dict[str, Any]:
    conv = hold_check(s, sender, user)
    holder = conv.agent
    number = conv.ticket_number
    if resolve is not None:
        ticket = tickets.get_by_number(s, number) if number else None
        if ticket is not None and ticket.status in tickets.OPEN_STATUSES:
            tickets.transition(s, ticket, actor=user.username, status="resolved",
                               resolution=resolve.get("resolution") or None, category=resolve.get("category") or None)
    try:
        handoff.release(s, sender, agent=holder)
    except ValueError:
        raise DeskError("claimed_by_other")
    _audit(s, user.username, "conversation", sender, action, after={"ticket": number, "agent": holder})
    return {"sender_id": sender, "ticket": number}


def transfer_sync(s, sender: str, user: Identity, target: str) -> Dict[str, Any]:
    conv = hold_check(s, sender, user)
    target_user = s.get(User, target)
    if target_user is None or target_user.role not in STAFF_ROLES:
        raise DeskError("unknown_agent", 400)
    if target == conv.agent:
        raise DeskError("same_agent", 400)
    table = Conversation.__table__
    result = s.execute(update(table).where(table.c.sender_id == sender, table.c.state == "agent",
                                           table.c.agent == conv.agent)
                       .values(agent=target, updated_at=utcnow()))
    if result.rowcount != 1:
        raise DeskError("claimed_by_other")
    ticket = tickets.get_by_number(s, conv.ticket_number) if conv.ticket_number else None
    if ticket is not None and ticket.status in tickets.OPEN_STATUSES:
        if ticket.status == "open":
            tickets.transition(s, ticket, actor=user.username, status="claimed", assignee=target)
        else:
            tickets.transition(s, ticket, actor=user.username, assignee=target)
    _audit(s, user.username, "conversation", sender, "transferred", before={"agent": conv.agent},
           after={"agent": target})
    return {"sender_id": sender, "agent": target}


def conversation_row(s, sender: str) -> Tuple[Optional[Dict[str, Any]], Optional[Dict[str, Any]]]:
    conv = handoff.get_conversation(s, sender)
    ticket = None
    if conv is not None and conv.ticket_number:
        ticket = tickets.get_by_number(s, conv.ticket_number)
    if ticket is None:
        ticket = s.execute(select(Ticket).where(Ticket.sender_id == sender)
                           .order_by(Ticket.created_at.desc()).limit(1)).scalar_one_or_none()
    row = None
    if conv is not None:
        row = {"state": conv.state, "agent": conv.agent, "priority": conv.priority, "channel": conv.channel,
               "queued_at": iso(conv.queued_at), "ticket_number": conv.ticket_number}
    brief = _ticket_brief(ticket)
    if brief is not None:
        brief["facts"] = ticket.facts or {}
        brief["contact_name"] = ticket.contact_name
        brief["contact_phone"] = ticket.contact_phone
        brief["resolution"] = ticket.resolution
    return row, brief


def ticket_action_sync(s, number: str, user: Identity, do: str, fields: Dict[str, Any]) -> Dict[str, Any]:
    """Ticket changes from the desk: resolve, close, reopen, claim, unclaim, followup, followup_done, note."""
    ticket = tickets.get_by_number(s, number)
    if ticket is None:
        raise DeskError("unknown_ticket", 404)
    note = (fields.get("note") or "").strip()[:2000] or None
    try:
        if do == "resolve":
            resolution = (fields.get("resolution") or "").strip()
            if not resolution:
                raise DeskError("resolution_required", 400)
            tickets.transition(s, ticket, actor=user.username, status="resolved", resolution=resolution[:4000],
                               category=(fields.get("category") or "").strip()[:20] or None, note=note)
        elif do == "close":
            tickets.transition(s, ticket, actor=user.username, status="closed", note=note)
        elif do == "reopen":
            tickets.transition(s, ticket, actor=user.username, status="open", note=note)
        elif do == "claim":
            tickets.transition(s, ticket, actor=user.username, status="claimed", assignee=user.username, note=note)
        elif do == "unclaim":
            tickets.transition(s, ticket, actor=user.username, status="open", note=note)
        elif do == "followup":
            at = parse_local_datetime(fields.get("followup_at") or fields.get("at"))
            if at is None:
                raise DeskError("followup_time_required", 400)
            if at <= utcnow():
                raise DeskError("followup_time_past", 400)
            tickets.transition(s, ticket, actor=user.username, followup_at=at, note=note)
        elif do == "followup_done":
            tickets.transition(s, ticket, actor=user.username, followup_done=True, note=note)
        elif do == "note":
            if not note:
                raise DeskError("note_required", 400)
            tickets.transition(s, ticket, actor=user.username, note=note)
        else:
            raise DeskError("unknown_action", 400)
    except ValueError as exc:
        raise DeskError("ticket_transition_refused", detail=str(exc))
    _audit(s, user.username, "ticket", number, do, after={k: v for k, v in fields.items() if k != "csrf_token"})
    return ticket_detail(s, ticket, user)


def parse_local_datetime(value: Optional[str]) -> Optional[dt.datetime]:
    """``2026-11-24T10:00`` (Asia/Shanghai wall clock, as from ``<input type=datetime-local>``) → naive UTC;
    a value with an explicit offset is converted from it."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return local_to_utc_naive(parsed)


def ticket_detail(s, ticket: Ticket, user: Optional[Identity] = None) -> Dict[str, Any]:
    """A ticket for the desk; the conversation excerpt only for ``user``s who may read that conversation
    (see ``may_read``) or hold the ticket."""
    s.refresh(ticket)
    brief = _ticket_brief(ticket)
    events = list(s.execute(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                            .order_by(TicketEvent.id)).scalars())
    conv = handoff.get_conversation(s, ticket.sender_id) if ticket.sender_id else None
    row = {"state": conv.state, "agent": conv.agent} if conv else None
    readable = user is None or ticket.assignee == user.username or may_read(row, user)
    return {**brief, "facts": ticket.facts or {}, "transcript": (ticket.transcript or []) if readable else [],
            "transcript_hidden": not readable,
            "contact_name": ticket.contact_name, "contact_phone": ticket.contact_phone,
            "resolution": ticket.resolution, "updated_at": iso(ticket.updated_at),
            "conversation": {"state": conv.state, "agent": conv.agent} if conv else None,
            "history": [{"at": iso(e.at), "actor": e.actor, "action": e.action, "detail": e.detail or {}}
                        for e in events]}


def list_tickets_sync(s, filters: Dict[str, Any]) -> List[Dict[str, Any]]:
    priority = filters.get("priority")
    rows = tickets.list_tickets(s, type=filters.get("type") or None, status=filters.get("status") or None,
                                priority=int(priority) if priority else None,
                                overdue=bool(filters.get("overdue")), limit=500)
    now = utcnow()
    return [_ticket_brief(t, now) for t in rows]


def expire_sync(s, timeout_s: float) -> List[Tuple[str, str]]:
    """Conversations the bot takes back: (sender, reason) for queue timeouts and for agents gone offline."""
    out = [(sender, "timeout") for sender in handoff.expire_waiting(s, timeout_s)]
    cutoff = utcnow() - dt.timedelta(seconds=timeout_s)
    held = list(s.execute(select(Conversation).where(Conversation.state == "agent")).scalars())
    if held:
        seen = {p.username: p for p in s.execute(
            select(AgentPresence).where(AgentPresence.username.in_({c.agent for c in held if c.agent}))).scalars()}
        table = Conversation.__table__
        for c in held:
            p = seen.get(c.agent or "")
            if p is not None and p.last_seen >= cutoff:
                continue  # online, or gone less than the timeout ago
            if c.updated_at and c.updated_at >= cutoff:
                continue  # claimed or transferred recently
            result = s.execute(update(table).where(table.c.sender_id == c.sender_id, table.c.state == "agent",
                                                   table.c.agent == c.agent)
                               .values(state="bot", agent=None, queued_at=None, updated_at=utcnow()))
            if result.rowcount == 1:
                _audit(s, "desk", "conversation", c.sender_id, "agent_offline_released", after={"agent": c.agent})
                out.append((c.sender_id, "agent_offline"))
    return out


def set_presence_sync(s, username: str, online: bool) -> None:
    handoff.heartbeat(s, username, online=online)


def staff_sync(s) -> List[Dict[str, Any]]:
    online = set(handoff.agents_online(s))
    users = s.execute(select(User).where(User.role.in_(STAFF_ROLES)).order_by(User.username)).scalars()
    return [{"username": u.username, "role": u.role, "online": u.username in online} for u in users]


# --------------------------------------------------------------------------- Rasa-side operations
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


async def _expire_loop(desk: Desk) -> None:
    while True:
        await asyncio.sleep(desk.settings.expire_every_s)
        try:
            await expire_once(desk)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("desk: handoff timeout pass failed")


async def _redis_listener(desk: Desk) -> None:
    """Forward ``xinghe:desk`` notifications (queue, alert, emergency) to the open pages at once."""
    try:
        import redis.asyncio as aioredis
    except ImportError:  # pragma: no cover
        return
    while True:
        client = None
        try:
            client = aioredis.Redis(host=desk.settings.redis_host, port=desk.settings.redis_port,
                                    socket_connect_timeout=1)
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


# --------------------------------------------------------------------------- HTTP: pages
def render(request: web.Request, name: str, **context: Any) -> web.Response:
    env = request.app["xinghe.templates"]
    identity = request.get("xinghe.user")
    html = env.get_template(name).render(user=identity, csrf=identity.csrf if identity else "",
                                         path=request.path, **context)
    return web.Response(text=html, content_type="text/html", charset="utf-8")


async def login_page(request: web.Request) -> web.StreamResponse:
    auth = request.app[AUTH_KEY]
    if await auth.identify(request) is not None:
        raise web.HTTPFound("/desk/")
    response = web.Response(content_type="text/html", charset="utf-8")
    token = auth.prelogin_token(request, response)
    response.text = request.app["xinghe.templates"].get_template("desk/login.html").render(
        csrf=token, error=request.query.get("error"), next=_safe_next(request.query.get("next")))
    return response


def _safe_next(value: Optional[str]) -> str:
    if value and value.startswith(("/desk", "/editor")) and not value.startswith("//") and "\\" not in value:
        return value
    return "/desk/"


async def login_submit(request: web.Request) -> web.StreamResponse:
    auth = request.app[AUTH_KEY]
    form = await request.post()
    target = _safe_next(form.get("next"))
    if not auth.check_prelogin(request, form.get("csrf_token")):
        raise web.HTTPFound("/desk/login?error=csrf")
    result = await auth.authenticate(request, str(form.get("username") or ""), str(form.get("password") or ""))
    if not result.ok:
        raise web.HTTPFound(f"/desk/login?error={result.reason}")
    if result.user and result.user.role == "editor" and target == "/desk/":
        target = "/editor/"
    response = web.HTTPFound(target)
    auth.start_session(response, result)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    desk = desk_of(request)
    if identity.role in STAFF_ROLES:
        await desk.db(set_presence_sync, identity.username, False)
    response = web.HTTPFound("/desk/login")
    await request.app[AUTH_KEY].logout(identity, response)
    raise response


@require_role("agent", "supervisor", "editor")
async def home(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    if identity.role == "editor":
        raise web.HTTPFound("/desk/stats")
    desk = desk_of(request)
    canned = canned_replies(desk)
    categories = complaint_categories(desk)
    return render(request, "desk/workspace.html", canned=canned, categories=categories,
                  handoff_timeout_s=desk.settings.handoff_timeout_s)


def _knowledge(desk: Desk):
    if desk.knowledge is None:
        from bot.db import session_factory
        from bot.kb.store import KnowledgeStore

        desk.knowledge = KnowledgeStore(session_factory(desk.db_url))
    try:
        return desk.knowledge.get()
    except LookupError as exc:
        log.warning("desk: %s", exc)
    except Exception:
        log.exception("desk: knowledge store unavailable")
    return None


def canned_replies(desk: Desk) -> List[Dict[str, Any]]:
    """De-escalation scripts from knowledge/complaints.yml, grouped for the reply box."""
    k = _knowledge(desk)
    if k is None:
        return []
    c = k.section("complaints")
    groups: List[Dict[str, Any]] = [
        {"group": "empathy", "label": None, "items": list(c.get("empathy") or [])},
        {"group": "ask_facts", "label": None, "items": [c["ask_facts"]] if c.get("ask_facts") else []},
        {"group": "apology_after", "label": None, "items": [c["apology_after"]] if c.get("apology_after") else []},
    ]
    for cat in c.get("categories") or []:
        items = [x for x in (cat.get("handling"), cat.get("remedy")) if x]
        if items:
            groups.append({"group": "category", "label": cat.get("code"), "items": items})
    return [g for g in groups if g["items"]]


def complaint_categories(desk: Desk) -> List[str]:
    k = _knowledge(desk)
    if k is None:
        return []
    return [c.get("code") for c in k.section("complaints").get("categories") or [] if c.get("code")]


@require_role("agent", "supervisor")
async def tickets_page(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    filters = {k: request.query.get(k, "") for k in ("type", "status", "priority", "overdue")}
    if filters["priority"] and not filters["priority"].isdigit():
        filters["priority"] = ""
    rows = await desk.db(list_tickets_sync, filters)
    types = await desk.db(lambda s: sorted({t for (t,) in s.execute(select(Ticket.type).distinct())}))
    return render(request, "desk/tickets.html", rows=rows, filters=filters, types=types,
                  statuses=tickets.STATUSES, fmt=fmt_local)


@require_role("agent", "supervisor")
async def ticket_page(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    number = request.match_info["number"]
    user = current_user(request)

    def load(s):
        t = tickets.get_by_number(s, number)
        return ticket_detail(s, t, user) if t else None
    detail = await desk.db(load)
    if detail is None:
        raise web.HTTPNotFound(text="no such ticket")
    return render(request, "desk/ticket.html", t=detail, categories=complaint_categories(desk), fmt=fmt_local,
                  error=request.query.get("error"), done=request.query.get("done"))


async def ticket_form(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    if identity.role not in STAFF_ROLES:
        raise web.HTTPForbidden()
    desk = desk_of(request)
    number = request.match_info["number"]
    form = await request.post()
    do = str(form.get("do") or "")
    base = f"/desk/tickets/{quote(number)}"
    try:
        await desk.db(ticket_action_sync, number, identity, do, {k: str(v) for k, v in form.items()})
    except DeskError as exc:
        raise web.HTTPFound(f"{base}?error={exc.code}")
    desk.hub.wake()
    raise web.HTTPFound(f"{base}?done={do}")


@require_role(*STATS_ROLES)
async def stats_page(request: web.Request) -> web.StreamResponse:
    return render(request, "desk/stats.html")


def fmt_local(value: Optional[str], with_date: bool = True) -> str:
    """An ISO timestamp as Asia/Shanghai wall-clock time for the server-rendered pages."""
    if not value:
        return ""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    local = to_local(parsed)
    return local.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


# --------------------------------------------------------------------------- HTTP: API
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


async def _json_body(request: web.Request) -> Dict[str, Any]:
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise DeskError("bad_json", 400)
        if not isinstance(body, dict):
            raise DeskError("bad_json", 400)
        return body
    return {k: str(v) for k, v in (await request.post()).items()}


@api(*STAFF_ROLES)
async def api_queue(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    snap = await desk_of(request).db(queue_snapshot, identity.username, identity.role)
    return web.json_response(snap)


@api(*STAFF_ROLES)
async def api_staff(request: web.Request) -> web.StreamResponse:
    return web.json_response({"staff": await desk_of(request).db(staff_sync)})


@api(*STAFF_ROLES)
async def api_canned(request: web.Request) -> web.StreamResponse:
    return web.json_response({"canned": canned_replies(desk_of(request)),
                              "categories": complaint_categories(desk_of(request))})


def may_read(row: Optional[Dict[str, Any]], user: Identity) -> bool:
    """Agents read a transcript and its slots only while the conversation waits in the queue or they hold
    it; supervisors read every conversation."""
    if user.role == "supervisor":
        return True
    return row is not None and (row["state"] == "waiting" or (row["state"] == "agent" and row["agent"] == user.username))


async def conversation_view(desk: Desk, sender: str, user: Identity) -> Dict[str, Any]:
    row, ticket = await desk.db(conversation_row, sender)
    if row is None and ticket is None:
        raise DeskError("unknown_conversation", 404)
    if not may_read(row, user):
        raise DeskError("not_your_conversation", 403)
    tracker = await desk.rasa.tracker(sender)
    events = tracker.get("events") or []
    channel = tracker.get("latest_input_channel") or (row or {}).get("channel") or (ticket or {}).get("channel")
    return {"sender_id": sender, "channel": channel, "conversation": row, "ticket": ticket,
            "transcript": transcript(events), "slots": visible_slots(tracker),
            "paused": bool(tracker.get("paused")), "window": channel_window(channel, events)}


@api(*STAFF_ROLES)
async def api_conversation(request: web.Request) -> web.StreamResponse:
    return web.json_response(await conversation_view(desk_of(request), request.match_info["sender"],
                                                     current_user(request)))


@api(*STAFF_ROLES)
async def api_claim(request: web.Request) -> web.StreamResponse:
    identity, desk, sender = current_user(request), desk_of(request), request.match_info["sender"]
    async with desk.locks[sender]:
        await desk.db(claim_sync, sender, identity)
        await desk.rasa.append(sender, [{"event": "pause"}])
    desk.hub.wake()
    return web.json_response(await conversation_view(desk, sender, identity))


@api(*STAFF_ROLES)
async def api_take_over(request: web.Request) -> web.StreamResponse:
    identity, desk, number = current_user(request), desk_of(request), request.match_info["number"]
    claimed = await desk.db(take_over_sync, number, identity)
    sender = claimed["sender_id"]
    async with desk.locks[sender]:
        await desk.rasa.append(sender, [{"event": "pause"}])
    desk.hub.wake()
    return web.json_response(await conversation_view(desk, sender, identity))


@api(*STAFF_ROLES)
async def api_send(request: web.Request) -> web.StreamResponse:
    identity, desk, sender = current_user(request), desk_of(request), request.match_info["sender"]
    body = await _json_body(request)
    text = str(body.get("text") or "").strip()
    if not text:
        raise DeskError("empty_message", 400)
    if len(text) > MAX_MESSAGE_CHARS:
        raise DeskError("message_too_long", 400, limit=MAX_MESSAGE_CHARS)
    async with desk.locks[sender]:
        await desk.db(lambda s: hold_check(s, sender, identity, allow_supervisor=False))
        tracker = await desk.rasa.tracker(sender)
        channel = tracker.get("latest_input_channel")
        events = tracker.get("events") or []
        check_can_send(channel, events, text)
        try:
            result = await deliver_desk_action(desk, sender, "action_agent_message",
                                               pre=[{"event": "slot", "name": "agent_message", "value": text}])
        except RasaError as exc:  # e.g. WeChat refused the customer-service message (45015, 45047)
            log.error("desk: message to %s not delivered: %s", sender[:12], exc)
            raise DeskError("delivery_failed", 502, channel=channel, followup=True)
        tracker = await desk.rasa.tracker(sender)
    await desk.db(lambda s: _audit(s, identity.username, "conversation", sender, "agent_message",
                                   after={"chars": len(text), "channel": channel}))
    events = tracker.get("events") or []
    return web.json_response({"ok": True, "channel": channel, "window": channel_window(channel, events),
                              "live": channel in ("socketio", WECHAT_CHANNEL),
                              "collected": [m.get("text") for m in (result.get("messages") or [])]})


@api(*STAFF_ROLES)
async def api_handback(request: web.Request) -> web.StreamResponse:
    return await _release(request, close=False)


@api(*STAFF_ROLES)
async def api_close(request: web.Request) -> web.StreamResponse:
    return await _release(request, close=True)


async def _release(request: web.Request, close: bool) -> web.StreamResponse:
    identity, desk, sender = current_user(request), desk_of(request), request.match_info["sender"]
    body = await _json_body(request)
    resolve = None
    if close or body.get("resolution"):
        resolution = str(body.get("resolution") or "").strip()
        if close and not resolution:
            raise DeskError("resolution_required", 400)
        resolve = {"resolution": resolution[:4000], "category": str(body.get("category") or "")[:20]}
    async with desk.locks[sender]:
        result = await desk.db(release_sync, sender, identity, "closed" if close else "handed_back", resolve)
        said = await return_to_bot(desk, sender, "action_handback", reset_slots=close)
    desk.hub.wake()
    return web.json_response({"ok": True, "announced": said, **result})


@api(*STAFF_ROLES)
async def api_transfer(request: web.Request) -> web.StreamResponse:
    identity, desk, sender = current_user(request), desk_of(request), request.match_info["sender"]
    body = await _json_body(request)
    target = str(body.get("to") or "").strip()
    async with desk.locks[sender]:
        result = await desk.db(transfer_sync, sender, identity, target)
    desk.hub.wake()
    return web.json_response({"ok": True, **result})


@api(*STAFF_ROLES)
async def api_tickets(request: web.Request) -> web.StreamResponse:
    filters = {k: request.query.get(k, "") for k in ("type", "status", "priority", "overdue")}
    if filters["priority"] and not filters["priority"].isdigit():
        raise DeskError("bad_priority", 400)
    if filters["overdue"] in ("0", "false"):
        filters["overdue"] = ""
    return web.json_response({"tickets": await desk_of(request).db(list_tickets_sync, filters)})


@api(*STAFF_ROLES)
async def api_ticket(request: web.Request) -> web.StreamResponse:
    number = request.match_info["number"]
    user = current_user(request)

    def load(s):
        t = tickets.get_by_number(s, number)
        return ticket_detail(s, t, user) if t else None
    detail = await desk_of(request).db(load)
    if detail is None:
        raise DeskError("unknown_ticket", 404)
    return web.json_response(detail)


@api(*STAFF_ROLES)
async def api_ticket_action(request: web.Request) -> web.StreamResponse:
    identity, desk = current_user(request), desk_of(request)
    body = await _json_body(request)
    detail = await desk.db(ticket_action_sync, request.match_info["number"], identity,
                           request.match_info["do"], body)
    desk.hub.wake()
    return web.json_response(detail)


# --------------------------------------------------------------------------- HTTP: the event stream
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


# --------------------------------------------------------------------------- statistics
def _bucket(local: dt.datetime, period: str) -> str:
    if period == "week":
        monday = local.date() - dt.timedelta(days=local.weekday())
        return monday.isoformat()
    return local.date().isoformat()


def _buckets(since_local: dt.date, until_local: dt.date, period: str) -> List[str]:
    out, day = [], since_local
    if period == "week":
        day = day - dt.timedelta(days=day.weekday())
    step = dt.timedelta(days=7 if period == "week" else 1)
    while day <= until_local:
        out.append(day.isoformat())
        day += step
    return out


def _mean(values: List[float]) -> Optional[float]:
    return round(statistics.fmean(values), 1) if values else None


def _median(values: List[float]) -> Optional[float]:
    return round(statistics.median(values), 1) if values else None


def ticket_stats(s, since: dt.datetime, period: str, now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """Tickets created since ``since`` (naive UTC): per bucket by type and complaint category, first-response
    and resolution minutes (first staff action / first "resolved"), SLA breaches (no staff response by
    ``reply_due``)."""
    now = now or utcnow()
    rows = list(s.execute(select(Ticket).where(Ticket.created_at >= since)).scalars())
    ids = [t.id for t in rows]
    events: Dict[int, List[TicketEvent]] = collections.defaultdict(list)
    for i in range(0, len(ids), 500):
        for e in s.execute(select(TicketEvent).where(TicketEvent.ticket_id.in_(ids[i:i + 500]))
                           .order_by(TicketEvent.at, TicketEvent.id)).scalars():
            events[e.ticket_id].append(e)
    labels = _buckets(to_local(since).date(), to_local(now).date(), period)
    by_type: Dict[str, Dict[str, int]] = collections.defaultdict(lambda: collections.Counter())
    by_category: Dict[str, Dict[str, int]] = collections.defaultdict(lambda: collections.Counter())
    first: Dict[str, List[float]] = collections.defaultdict(list)
    resolution: Dict[str, List[float]] = collections.defaultdict(list)
    breaches: Dict[str, int] = collections.Counter()
    all_first: List[float] = []
    all_res: List[float] = []
    breached_tickets = []
    types: Set[str] = set()
    categories: Set[str] = set()
    for t in rows:
        b = _bucket(to_local(t.created_at), period)
        by_type[b][t.type] += 1
        types.add(t.type)
        if t.type == "complaint":
            cat = t.category or "-"
            by_category[b][cat] += 1
            categories.add(cat)
        staff = [e for e in events[t.id] if e.actor not in BOT_ACTORS and e.action != "created"]
        responded = staff[0].at if staff else None
        resolved = next((e.at for e in events[t.id] if e.action == "resolved"), None)
        if responded is not None:
            minutes = max(0.0, (responded - t.created_at).total_seconds() / 60)
            first[b].append(minutes)
            all_first.append(minutes)
        if resolved is not None:
            minutes = max(0.0, (resolved - t.created_at).total_seconds() / 60)
            resolution[b].append(minutes)
            all_res.append(minutes)
        if (responded or now) > t.reply_due and (responded is not None or t.status in tickets.OPEN_STATUSES):
            breaches[b] += 1
            breached_tickets.append(t.number)
    types_sorted, cats_sorted = sorted(types), sorted(categories)
    return {
        "labels": labels,
        "types": types_sorted,
        "by_type": {ty: [by_type[b][ty] for b in labels] for ty in types_sorted},
        "categories": cats_sorted,
        "complaints_by_category": {c: [by_category[b][c] for b in labels] for c in cats_sorted},
        "first_response_avg_min": [_mean(first[b]) for b in labels],
        "resolution_avg_min": [_mean(resolution[b]) for b in labels],
        "sla_breaches": [breaches[b] for b in labels],
        "tickets": [sum(by_type[b].values()) for b in labels],
        "totals": {"tickets": len(rows), "first_response_median_min": _median(all_first),
                   "resolution_median_min": _median(all_res), "sla_breaches": sum(breaches.values()),
                   "breached": breached_tickets[:50]},
    }


def _bot_stats(s, since: dt.datetime, period: str, labels: List[str]) -> Dict[str, Any]:
    """Conversations and missed messages from the analytics the event consumer writes (bot.analytics)."""
    ticket_senders = {x for (x,) in s.execute(select(Ticket.sender_id).where(Ticket.created_at >= since))}
    data = analytics.conversation_stats(
        s, since.replace(tzinfo=dt.timezone.utc).timestamp(), labels,
        lambda ts: _bucket(to_local(dt.datetime.fromtimestamp(ts, dt.timezone.utc)), period), ticket_senders)
    latest = analytics.latest_turn_at(s)
    data.update(source="events", latest_turn_at=iso(latest) if latest else None)
    return data


@api(*STATS_ROLES)
async def api_stats(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    period = request.query.get("period", "day")
    if period not in ("day", "week"):
        raise DeskError("bad_period", 400)
    try:
        days = int(request.query.get("days", "84" if period == "week" else "30"))
    except ValueError:
        raise DeskError("bad_days", 400)
    days = max(1, min(days, 366))
    now = utcnow()
    since_local = (to_local(now) - dt.timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    since = local_to_utc_naive(since_local.replace(tzinfo=None))
    cache_key = (period, days)
    cached = desk.stats_cache.get(cache_key)
    if cached and time.monotonic() - cached[0] < desk.settings.stats_cache_s:
        return web.json_response(cached[1])
    data = await desk.db(ticket_stats, since, period, now)
    data["bot"] = await desk.db(_bot_stats, since, period, data["labels"])
    data["period"] = period
    data["days"] = days
    data["generated_at"] = iso(now)
    desk.stats_cache[cache_key] = (time.monotonic(), data)
    return web.json_response(data)


# --------------------------------------------------------------------------- wiring
def setup_desk(app: web.Application, settings: Any) -> Desk:
    desk = Desk(settings=settings, rasa=RasaClient(settings.rasa_url, settings.rasa_token))
    app[DESK_KEY] = desk
    r = app.router
    r.add_get("/desk/login", login_page)
    r.add_post("/desk/login", login_submit)
    r.add_post("/desk/logout", logout)
    r.add_get("/desk", _to_desk)
    r.add_get("/desk/", home)
    r.add_get("/desk/tickets", tickets_page)
    r.add_get("/desk/tickets/{number}", ticket_page)
    r.add_post("/desk/tickets/{number}", ticket_form)
    r.add_get("/desk/stats", stats_page)
    r.add_get("/desk/api/events", api_events)
    r.add_get("/desk/api/queue", api_queue)
    r.add_get("/desk/api/staff", api_staff)
    r.add_get("/desk/api/canned", api_canned)
    r.add_get("/desk/api/stats", api_stats)
    r.add_get("/desk/api/tickets", api_tickets)
    r.add_get("/desk/api/tickets/{number}", api_ticket)
    r.add_post("/desk/api/tickets/{number}/take-over", api_take_over)
    r.add_post("/desk/api/tickets/{number}/{do}", api_ticket_action)
    r.add_get("/desk/api/conversations/{sender}", api_conversation)
    r.add_post("/desk/api/conversations/{sender}/claim", api_claim)
    r.add_post("/desk/api/conversations/{sender}/messages", api_send)
    r.add_post("/desk/api/conversations/{sender}/handback", api_handback)
    r.add_post("/desk/api/conversations/{sender}/close", api_close)
    r.add_post("/desk/api/conversations/{sender}/transfer", api_transfer)
    r.add_static("/desk/static", settings.static_dir, name="desk-static", append_version=True)

    async def start(app: web.Application) -> None:
        if settings.background_tasks:
            desk.tasks.append(asyncio.create_task(_expire_loop(desk)))
            desk.tasks.append(asyncio.create_task(_redis_listener(desk)))

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


async def _to_desk(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/desk/")
