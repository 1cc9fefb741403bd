"""Database side of the desk (functions taking a session, run in a worker thread): the queue snapshot,
claim / take-over / release / transfer, ticket actions and views, presence and timeouts."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Dict, Iterable, List, Optional, Tuple

from sqlalchemy import select, update

from bot.models import AgentPresence, AuditLog, Conversation, Ticket, TicketEvent, User, utcnow
from bot.services.auth import Identity
from bot.services.desk.core import STAFF_ROLES, DeskError, iso, jsonable
from bot.tickets import handoff
from bot.tickets import store as tickets
from bot.tickets._common import local_to_utc_naive

log = logging.getLogger(__name__)


def _ticket_brief(t: Optional[Ticket], now: Optional[dt.datetime] = None) -> Optional[Dict[str, Any]]:
    if t is None:
        return None
    now = now or utcnow()
    return {"number": t.number, "type": t.type, "category": t.category, "priority": t.priority,
            "status": t.status, "assignee": t.assignee, "reply_due": iso(t.reply_due),
            "overdue": t.status in tickets.OPEN_STATUSES and t.reply_due < now,
            "created_at": iso(t.created_at), "channel": t.channel, "sender_id": t.sender_id,
            "followup_status": t.followup_status, "followup_at": iso(t.followup_at),
            "number_notice": t.number_notice}   # after an outage: due / sending / sent / desk (tell the patron)


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
                   before=jsonable(before), after=jsonable(after)))


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


HANDBACK_RESOLUTION = "人工服务结束，已交还机器人"


def release_sync(s, sender: str, user: Identity, action: str, resolve: Optional[Dict[str, Any]] = None
                 ) -> Dict[str, Any]:
    conv = hold_check(s, sender, user)
    holder = conv.agent
    number = conv.ticket_number
    ticket = tickets.get_by_number(s, number) if number else None
    if resolve is not None:
        if ticket is not None and ticket.status in tickets.OPEN_STATUSES:
            tickets.transition(s, ticket, actor=user.username, status="resolved",
                               resolution=resolve.get("resolution") or None, category=resolve.get("category") or None)
    elif ticket is not None and ticket.type == "handoff" and ticket.status in tickets.OPEN_STATUSES:
        # The handoff itself is over; a complaint behind it keeps its own ticket open.
        tickets.transition(s, ticket, actor=user.username, status="resolved", resolution=HANDBACK_RESOLUTION)
    try:
        handoff.release(s, sender, agent=holder)
    except ValueError:
        raise DeskError("claimed_by_other")
    _audit(s, user.username, "conversation", sender, action, after={"ticket": number, "agent": holder})
    return {"sender_id": sender, "ticket": number, "agent": holder}


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
        brief["contact_phone"] = tickets.mask_phone(ticket.contact_phone)  # the full number only on reveal
        brief["has_phone"] = bool(ticket.contact_phone)
        brief["resolution"] = ticket.resolution
    return row, brief


def related_tickets_sync(s, sender: str, shown: Optional[str]) -> List[Dict[str, Any]]:
    """The conversation's other tickets of the last two days (its complaint, lost item, ...), newest first,
    so the handoff is seen with what it is about."""
    since = utcnow() - dt.timedelta(days=2)
    rows = s.execute(select(Ticket).where(Ticket.sender_id == sender, Ticket.created_at >= since)
                     .order_by(Ticket.id.desc()).limit(10)).scalars()
    now = utcnow()
    return [{**_ticket_brief(t, now), "summary": _summary(t)} for t in rows if t.number != shown]


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
        elif do == "priority":
            try:
                priority = int(fields.get("priority") or 0)
            except (TypeError, ValueError):
                priority = 0
            if priority not in (1, 2, 3, 4):
                raise DeskError("bad_priority", 400)
            tickets.transition(s, ticket, actor=user.username, priority=priority, note=note)
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


def _typed_messages(transcript: Optional[List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    """A ticket's conversation excerpt without the payloads no patron typed (``/greet`` of a new web chat)."""
    return [m for m in transcript or [] if not (m.get("who") == "patron" and str(m.get("text") or "").startswith("/"))]


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
    return {**brief, "facts": ticket.facts or {}, "transcript": _typed_messages(ticket.transcript) if readable else [],
            "transcript_hidden": not readable,
            "contact_name": ticket.contact_name, "contact_phone": tickets.mask_phone(ticket.contact_phone),
            "has_phone": bool(ticket.contact_phone),  # the full number only through reveal (audited)
            "resolution": ticket.resolution, "updated_at": iso(ticket.updated_at),
            "conversation": {"state": conv.state, "agent": conv.agent} if conv else None,
            "history": [{"at": iso(e.at), "actor": e.actor, "action": e.action, "detail": e.detail or {}}
                        for e in events]}


PER_PAGE = 50


def search_tickets_sync(s, filters: Dict[str, Any], page: int = 1, per_page: int = PER_PAGE) -> Dict[str, Any]:
    """The tickets page: the filters plus ``q`` (a ticket number or its start, a phone or its last digits,
    a conversation id), one page of rows by priority and reply deadline, and the page facts."""
    from sqlalchemy import func, or_

    from bot.services.common.web import page_window

    query = select(Ticket)
    if filters.get("type"):
        query = query.where(Ticket.type == filters["type"])
    if filters.get("status"):
        query = query.where(Ticket.status == filters["status"])
    if filters.get("priority"):
        query = query.where(Ticket.priority == int(filters["priority"]))
    if filters.get("overdue"):
        query = query.where(Ticket.status.in_(tickets.OPEN_STATUSES), Ticket.reply_due < utcnow())
    q = "".join(str(filters.get("q") or "").split())[:64]
    if q:
        digits = "".join(ch for ch in q if ch.isdigit())
        clauses = [Ticket.number.like(q.upper().replace("%", "").replace("_", "") + "%"), Ticket.sender_id == q]
        if len(digits) >= 4 and digits == q:
            clauses.append(Ticket.contact_phone.like("%" + digits))
        query = query.where(or_(*clauses))
    total = s.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    window = page_window(total, page, per_page)
    rows = s.execute(query.order_by(Ticket.priority, Ticket.reply_due, Ticket.id)
                     .offset(window["offset"]).limit(per_page)).scalars()
    now = utcnow()
    return {"rows": [_ticket_brief(t, now) for t in rows], "page": window}


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


def may_read(row: Optional[Dict[str, Any]], user: Identity) -> bool:
    """Agents read a transcript and its slots only while the conversation waits in the queue or they hold
    it; supervisors read every conversation."""
    if user.role == "supervisor":
        return True
    return row is not None and (row["state"] == "waiting" or (row["state"] == "agent" and row["agent"] == user.username))
