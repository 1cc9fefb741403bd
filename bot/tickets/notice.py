"""The ticket number a patron is owed after an outage.

When the database is down a new ticket waits in the durable queue (``bot.tickets.durable``) and the patron is
told a reference (登记号), not a number. The flush that stores it marks the ticket ``due`` in the same
transaction (so no flush, crash or second flusher can lose or double the debt); a notifier (the desk's
``bot.services.desk.notices``) then claims it, tells the patron in their channel and records the outcome:

    due ──claim──▶ sending ──▶ sent   (told in the web chat / WeChat)
                          └──▶ desk   (the channel could not carry it: the desk tells them)
                          └──▶ due    (Rasa did not answer: tried again on a later pass)

A claim is one conditional UPDATE, so of several notifiers (app processes, or passes overlapping) exactly
one sends. A claim older than ``LEASE_S`` counts as abandoned (its process died mid-way) and may be taken
again: only a process dying between sending and recording can make a patron hear the number twice.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import List, Optional

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bot.models import Ticket
from bot.tickets._common import utc_naive

DUE, SENDING, SENT, DESK = "due", "sending", "sent", "desk"
LEASE_S = 120


@dataclass(frozen=True)
class Owed:
    ticket_id: int
    number: str
    ref: str            # the reference the patron was given (first 8 of client_ref)
    sender_id: str
    channel: str
    reply_due: dt.datetime


def mark_owed(ticket: Ticket, now: Optional[dt.datetime] = None) -> None:
    """The patron was told only a reference for ``ticket``: owe them the number (unless already settled)."""
    if ticket.number_notice is None:
        ticket.number_notice = DUE
        ticket.number_notice_at = utc_naive(now)


def _claimable(now: dt.datetime):
    stale = now - dt.timedelta(seconds=LEASE_S)
    return or_(Ticket.number_notice == DUE,
               (Ticket.number_notice == SENDING) & (Ticket.number_notice_at < stale))


def owed(session: Session, limit: int = 50, now: Optional[dt.datetime] = None) -> List[Owed]:
    """Tickets whose number is owed and not being told by a live notifier, oldest first."""
    now = utc_naive(now)
    rows = session.execute(select(Ticket).where(_claimable(now)).order_by(Ticket.id).limit(limit)).scalars()
    return [Owed(t.id, t.number, (t.client_ref or "")[:8], t.sender_id or "", t.channel or "", t.reply_due)
            for t in rows]


def claim(session: Session, ticket_id: int, now: Optional[dt.datetime] = None) -> bool:
    """Take the debt of ``ticket_id`` for this notifier; False when another one has it (or it is settled).
    Commit right after, so other notifiers see the claim."""
    now = utc_naive(now)
    result = session.execute(update(Ticket).where(Ticket.id == ticket_id, _claimable(now))
                             .values(number_notice=SENDING, number_notice_at=now)
                             .execution_options(synchronize_session=False))
    return result.rowcount == 1


def settle(session: Session, ticket_id: int, outcome: str, *, note: str, actor: str = "bot",
           now: Optional[dt.datetime] = None) -> None:
    """Record ``outcome`` (``sent`` or ``desk``) of a claimed debt, with ``note`` in the ticket's history."""
    from bot.tickets.store import transition

    if outcome not in (SENT, DESK):
        raise ValueError(f"unknown outcome {outcome!r}")
    now = utc_naive(now)
    ticket = session.get(Ticket, ticket_id)
    ticket.number_notice = outcome
    ticket.number_notice_at = now
    transition(session, ticket, actor=actor, note=note, now=now)


def release(session: Session, ticket_id: int) -> None:
    """Give a claimed debt back (the channel did not answer now); the next pass tries again."""
    session.execute(update(Ticket).where(Ticket.id == ticket_id, Ticket.number_notice == SENDING)
                    .values(number_notice=DUE).execution_options(synchronize_session=False))
