"""Human handoff: per-conversation state (bot → waiting → agent → bot), queue and agent presence.

Functions take the caller's ``Session`` and never commit. State changes are conditional UPDATEs,
so two agents claiming the same conversation cannot both win. Naive datetimes are UTC.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from bot.models import AgentPresence, Conversation
from bot.tickets._common import to_local, update_or_insert, utc_naive

__all__ = [
    "request_human",
    "queue",
    "position",
    "claim",
    "release",
    "expire_waiting",
    "agents_online",
    "heartbeat",
    "in_service_hours",
    "get_conversation",
]

_T = Conversation.__table__


def get_conversation(session: Session, sender_id: str) -> Conversation | None:
    """The conversation row, freshly loaded (never a stale identity-map copy)."""
    return session.execute(
        select(Conversation).where(Conversation.sender_id == sender_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()


def request_human(
    session: Session,
    sender_id: str,
    channel: str,
    priority: int,
    ticket_number: str | None,
    now: dt.datetime | None = None,
) -> Conversation:
    """Put the conversation in the waiting queue (state "waiting", ``queued_at`` = now).

    Asking again while waiting keeps the place in the queue (the priority can only rise and a
    newer ticket number replaces the old one); a conversation already with an agent stays there.
    """
    now_utc = utc_naive(now)
    # Lock (or create) the row first so concurrent requests for the same sender serialise.
    update_or_insert(
        session,
        Conversation,
        {"sender_id": sender_id},
        {"channel": channel} if channel else {"sender_id": sender_id},
        {"channel": channel or "", "state": "bot", "priority": priority, "updated_at": now_utc},
    )
    conv = get_conversation(session, sender_id)
    assert conv is not None
    if ticket_number:
        conv.ticket_number = ticket_number
    if conv.state == "waiting":
        conv.priority = min(conv.priority, priority)
    elif conv.state != "agent":
        conv.state = "waiting"
        conv.priority = priority
        conv.queued_at = now_utc
        conv.agent = None
    conv.updated_at = now_utc
    session.flush()
    return conv


def queue(session: Session) -> list[Conversation]:
    """Waiting conversations: highest priority (1) first, then longest waiting."""
    return list(
        session.execute(
            select(Conversation)
            .where(Conversation.state == "waiting")
            .order_by(Conversation.priority, Conversation.queued_at, Conversation.sender_id)
            .execution_options(populate_existing=True)
        ).scalars()
    )


def position(session: Session, sender_id: str) -> int | None:
    """1-based place in the waiting queue (1 = next to be served), or ``None`` if not waiting.

    The number of patrons ahead is ``position - 1``.
    """
    conv = get_conversation(session, sender_id)
    if conv is None or conv.state != "waiting":
        return None
    p, q = conv.priority, conv.queued_at
    ahead = session.execute(
        select(func.count())
        .select_from(Conversation)
        .where(
            Conversation.state == "waiting",
            or_(
                Conversation.priority < p,
                and_(Conversation.priority == p, Conversation.queued_at < q),
                and_(Conversation.priority == p, Conversation.queued_at == q, Conversation.sender_id < sender_id),
            ),
        )
    ).scalar_one()
    return int(ahead) + 1


def claim(session: Session, sender_id: str, agent: str, now: dt.datetime | None = None) -> Conversation:
    """Give the conversation to ``agent`` (state "agent"); allowed from "waiting" or "bot".

    Claiming again by the same agent is a no-op; a conversation held by another agent, or an
    unknown one, raises ``ValueError``.
    """
    now_utc = utc_naive(now)
    result = session.execute(
        update(_T)
        .where(_T.c.sender_id == sender_id, _T.c.state.in_(("waiting", "bot")))
        .values(state="agent", agent=agent, queued_at=None, updated_at=now_utc)
    )
    conv = get_conversation(session, sender_id)
    if conv is None:
        raise ValueError(f"unknown conversation {sender_id!r}")
    if result.rowcount != 1 and conv.agent != agent:
        raise ValueError(f"conversation {sender_id!r} is already with agent {conv.agent!r}")
    return conv


def release(
    session: Session, sender_id: str, agent: str | None = None, now: dt.datetime | None = None
) -> Conversation | None:
    """Hand the conversation back to the bot (state "bot"); ``None`` if it does not exist.

    With ``agent`` given, only that agent's conversation is released (else ``ValueError``).
    """
    query = update(_T).where(_T.c.sender_id == sender_id)
    if agent is not None:
        query = query.where(or_(_T.c.agent == agent, _T.c.state != "agent"))
    result = session.execute(query.values(state="bot", agent=None, queued_at=None, updated_at=utc_naive(now)))
    conv = get_conversation(session, sender_id)
    if conv is not None and result.rowcount != 1:
        raise ValueError(f"conversation {sender_id!r} is held by agent {conv.agent!r}")
    return conv


def expire_waiting(session: Session, timeout_s: float, now: dt.datetime | None = None) -> list[str]:
    """Return to the bot every conversation waiting longer than ``timeout_s``; their sender ids."""
    now_utc = utc_naive(now)
    cutoff = now_utc - dt.timedelta(seconds=timeout_s)
    candidates = session.execute(
        select(_T.c.sender_id)
        .where(_T.c.state == "waiting", _T.c.queued_at <= cutoff)
        .order_by(_T.c.priority, _T.c.queued_at)
    ).scalars().all()
    expired = []
    for sender_id in candidates:
        result = session.execute(
            update(_T)
            .where(_T.c.sender_id == sender_id, _T.c.state == "waiting", _T.c.queued_at <= cutoff)
            .values(state="bot", queued_at=None, updated_at=now_utc)
        )
        if result.rowcount == 1:  # not claimed meanwhile
            expired.append(sender_id)
    return expired


def heartbeat(session: Session, username: str, online: bool = True, now: dt.datetime | None = None) -> None:
    """Record that an agent's desk is alive (and whether the agent is taking conversations)."""
    values = {"last_seen": utc_naive(now), "online": online}
    update_or_insert(session, AgentPresence, {"username": username}, values, values)


def agents_online(session: Session, now: dt.datetime | None = None, stale_after_s: float = 60) -> list[str]:
    """Usernames marked online whose last heartbeat is at most ``stale_after_s`` seconds old."""
    cutoff = utc_naive(now) - dt.timedelta(seconds=stale_after_s)
    return list(
        session.execute(
            select(AgentPresence.username)
            .where(AgentPresence.online.is_(True), AgentPresence.last_seen >= cutoff)
            .order_by(AgentPresence.username)
        ).scalars()
    )


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.strip().split(":")
    value = int(hours) * 60 + int(minutes)
    if not 0 <= value <= 24 * 60:
        raise ValueError(f"invalid time {hhmm!r}")
    return value


def in_service_hours(now: dt.datetime | None = None, start: str = "09:00", end: str = "24:00") -> bool:
    """Whether ``now`` falls in ``[start, end)`` Asia/Shanghai time ("24:00" = midnight;
    an ``end`` before ``start`` spans midnight)."""
    local = to_local(now)
    t = local.hour * 60 + local.minute
    lo, hi = _minutes(start), _minutes(end)
    if lo <= hi:
        return lo <= t < hi
    return t >= lo or t < hi
