"""Ticket storage: numbering, SLA deadlines, status transitions, history and log-safe views.

All functions take a caller's ``Session`` and never commit; the caller owns the transaction.
Datetimes in the database are naive UTC (see ``bot.models.utcnow``); ``now`` arguments may be
aware (any zone) or naive UTC. Ticket numbers and working days use Asia/Shanghai.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import unicodedata
from typing import Any, Mapping

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.models import Ticket, TicketCounter, TicketEvent
from bot.tickets._common import local_to_utc_naive, to_local, update_or_insert, utc_naive

log = logging.getLogger(__name__)

__all__ = [
    "STATUSES",
    "TRANSITIONS",
    "OPEN_STATUSES",
    "create_ticket",
    "prepare_ticket",
    "compute_reply_due",
    "default_priority",
    "validate_phone",
    "transition",
    "list_tickets",
    "get_by_number",
    "get_by_client_ref",
    "masked",
    "mask_phone",
]

STATUSES = ("open", "claimed", "resolved", "closed")
OPEN_STATUSES = ("open", "claimed")
#: Allowed status moves (current → allowed next statuses).
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"claimed", "resolved"}),
    "claimed": frozenset({"resolved", "open"}),  # → open = unclaim
    "resolved": frozenset({"closed", "open"}),  # → open = reopen
    "closed": frozenset(),
}
_STATUS_ACTIONS = {
    ("open", "claimed"): "claimed",
    ("claimed", "open"): "unclaimed",
    ("resolved", "open"): "reopened",
    ("open", "resolved"): "resolved",
    ("claimed", "resolved"): "resolved",
    ("resolved", "closed"): "closed",
}
FOLLOWUP_STATUSES = ("scheduled", "done")
DEFAULT_SLA_MINUTES = 1440
_WORKING_DAYS_RE = re.compile(r"^\s*(\d+)?\s*working_days?\s*$")

# --------------------------------------------------------------------------- phone helpers
from bot.answers.resolvers import normalize_phone as _normalize_phone  # noqa: E402  the canonical phone parser

try:  # the project's log-masking helpers (phones and order ids)
    from bot.privacy import mask_phone as _privacy_mask_phone
    from bot.privacy import mask_text as _privacy_mask_text
except ImportError:  # pragma: no cover - fallback when bot.privacy is absent
    _privacy_mask_phone = None
    _privacy_mask_text = None

_ANY_PHONE_RE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def validate_phone(phone: str | None) -> str | None:
    """Normalise a mainland mobile number to 11 digits; ``None``/blank stays ``None``.

    Raises ``ValueError`` unless the text is exactly one mobile number (separators and a
    ``+86``/``0086``/``86`` prefix allowed).
    """
    if phone is None or not str(phone).strip():
        return None
    normalized = _normalize_phone(str(phone))
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", str(phone)))
    if not normalized or digits not in (normalized, "86" + normalized, "0086" + normalized):
        raise ValueError("invalid mainland mobile number")
    return normalized


def mask_phone(phone: str | None) -> str | None:
    """``13812345678`` → ``138****5678`` (``bot.privacy.mask_phone`` when available)."""
    if not phone:
        return phone
    if _privacy_mask_phone is not None:
        return _privacy_mask_phone(phone)
    if len(phone) >= 7:
        return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
    return "*" * len(phone)


def _mask_text(value: Any) -> Any:
    """Mask mobile numbers (and, with ``bot.privacy``, order ids) inside strings of a JSON-like value."""
    if isinstance(value, str):
        if _privacy_mask_text is not None:
            return _privacy_mask_text(value)
        return _ANY_PHONE_RE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", value)
    if isinstance(value, dict):
        return {k: _mask_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_text(v) for v in value]
    return value


def _mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*" * max(len(name) - 1, 1)


# --------------------------------------------------------------------------- SLA and priority
def default_priority(type: str, onsite: bool = False) -> int:
    """Emergency 1, on-site complaint 2, complaint 3, everything else 4."""
    if type == "emergency":
        return 1
    if type == "complaint":
        return 2 if onsite else 3
    return 4


def add_working_days(now: dt.datetime, days: int) -> dt.datetime:
    """Same Asia/Shanghai wall-clock time ``days`` working days (Mon–Fri) later, as naive UTC.

    Public holidays are not considered.
    """
    local = to_local(now)
    day = local.date()
    remaining = days
    while remaining > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            remaining -= 1
    return local_to_utc_naive(dt.datetime.combine(day, local.time().replace(tzinfo=None)))


def compute_reply_due(
    type: str, *, sla: Mapping[str, Any], onsite: bool = False, now: dt.datetime | None = None
) -> dt.datetime:
    """Reply deadline (naive UTC) from an SLA mapping such as ``complaints.yml``'s ``sla_minutes``.

    Values are minutes, or ``"working_day"`` / ``"N working_days"``. An on-site complaint uses
    ``complaint_onsite``; an unknown type falls back to ``handoff``, then to one day.
    """
    now_utc = utc_naive(now)
    key = "complaint_onsite" if type == "complaint" and onsite and "complaint_onsite" in sla else type
    if key in sla:
        value = sla[key]
    else:
        log.warning("no SLA for ticket type %r; using the handoff SLA", type)
        value = sla.get("handoff", DEFAULT_SLA_MINUTES)
    if isinstance(value, str):
        m = _WORKING_DAYS_RE.match(value)
        if m:
            return add_working_days(now_utc, int(m.group(1) or 1))
        try:
            value = int(value)
        except ValueError:
            raise ValueError(f"invalid SLA value for {key!r}: {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"invalid SLA value for {key!r}: {value!r}")
    return now_utc + dt.timedelta(minutes=value)


# --------------------------------------------------------------------------- creation
def prepare_ticket(
    *,
    type: str,
    channel: str,
    sender_id: str,
    facts: dict,
    phone: str | None = None,
    name: str | None = None,
    category: str | None = None,
    onsite: bool = False,
    transcript: list | None = None,
    priority: int | None = None,
    now: dt.datetime | None = None,
    client_ref: str | None = None,
    sla: Mapping[str, Any],
) -> dict[str, Any]:
    """Validate a creation request without touching the database; returns Ticket column values.

    Raises ``ValueError`` for bad input (so a request is never queued that could not be stored).
    """
    if not type or not isinstance(type, str) or len(type) > 20:
        raise ValueError("ticket type must be a non-empty string of at most 20 characters")
    if category is not None and len(category) > 20:
        raise ValueError("category must be at most 20 characters")
    if not isinstance(facts, dict):
        raise ValueError("facts must be a dict")
    transcript = list(transcript or [])
    try:
        json.dumps(facts, ensure_ascii=False)
        json.dumps(transcript, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"facts and transcript must be JSON-serialisable: {exc}") from None
    if priority is None:
        priority = default_priority(type, onsite)
    if isinstance(priority, bool) or not isinstance(priority, int) or priority < 1:
        raise ValueError("priority must be a positive integer (1 = highest)")
    if client_ref is not None and (not client_ref or len(client_ref) > 64):
        raise ValueError("client_ref must be 1-64 characters")
    now_utc = utc_naive(now)
    return {
        "type": type,
        "category": category,
        "priority": priority,
        "status": "open",
        "channel": channel or "",
        "sender_id": sender_id or "",
        "contact_name": (name or "").strip()[:64] or None,
        "contact_phone": validate_phone(phone),
        "facts": dict(facts),
        "transcript": transcript,
        "created_at": now_utc,
        "reply_due": compute_reply_due(type, sla=sla, onsite=onsite, now=now_utc),
        "client_ref": client_ref,
    }


def _next_number(session: Session, now_utc: dt.datetime) -> str:
    """Take the next ``TYYYYMMDD-NNNN`` number for the Asia/Shanghai day of ``now_utc``.

    ``UPDATE ... SET last = last + 1`` holds the counter row (PostgreSQL) or the database write
    lock (SQLite) until the caller's transaction ends, so numbers are unique and gap-free.
    """
    day = to_local(now_utc).strftime("%Y%m%d")
    update_or_insert(
        session, TicketCounter, {"day": day}, {"last": TicketCounter.__table__.c.last + 1}, {"last": 1}
    )
    seq = session.execute(select(TicketCounter.__table__.c.last).where(TicketCounter.__table__.c.day == day)).scalar_one()
    return f"T{day}-{seq:04d}"


def _release_number(session: Session, number: str) -> None:
    """Give back a number taken in this transaction (its counter row is still locked by us)."""
    day = number[1:9]
    table = TicketCounter.__table__
    session.execute(update(table).where(table.c.day == day).values(last=table.c.last - 1))


def get_by_client_ref(session: Session, client_ref: str) -> Ticket | None:
    """The ticket created with this idempotency key, if any."""
    return session.execute(select(Ticket).where(Ticket.client_ref == client_ref)).scalar_one_or_none()


def create_ticket(
    session: Session,
    *,
    type: str,
    channel: str,
    sender_id: str,
    facts: dict,
    phone: str | None = None,
    name: str | None = None,
    category: str | None = None,
    onsite: bool = False,
    transcript: list | None = None,
    priority: int | None = None,
    now: dt.datetime | None = None,
    client_ref: str | None = None,
    sla: Mapping[str, Any],
    actor: str = "bot",
) -> Ticket:
    """Create an open ticket with its number, SLA deadline and a "created" event (flushed, not committed).

    With ``client_ref`` the call is idempotent: an existing ticket with that key is returned as is.
    Raises ``ValueError`` for invalid input (e.g. a phone that is not a mainland mobile number).
    """
    values = prepare_ticket(
        type=type, channel=channel, sender_id=sender_id, facts=facts, phone=phone, name=name,
        category=category, onsite=onsite, transcript=transcript, priority=priority, now=now,
        client_ref=client_ref, sla=sla,
    )
    if client_ref is not None:
        existing = get_by_client_ref(session, client_ref)
        if existing is not None:
            return existing
    number = _next_number(session, values["created_at"])
    ticket = Ticket(number=number, updated_at=utc_naive(), **values)
    try:
        with session.begin_nested():
            session.add(ticket)
            session.flush()
            session.add(
                TicketEvent(
                    ticket_id=ticket.id,
                    at=values["created_at"],
                    actor=actor,
                    action="created",
                    detail={"after": _snapshot(ticket)},
                )
            )
            session.flush()
    except IntegrityError:
        if client_ref is None:
            raise
        existing = get_by_client_ref(session, client_ref)  # created concurrently with the same key
        if existing is None:
            raise
        _release_number(session, number)
        return existing
    session.expire(ticket, ["history"])
    return ticket


# --------------------------------------------------------------------------- transitions
_TRACKED = ("status", "assignee", "resolution", "category", "followup_status", "followup_at", "priority")


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.datetime, dt.date)) else value


def _snapshot(ticket: Ticket, fields: tuple[str, ...] = _TRACKED) -> dict[str, Any]:
    return {f: _jsonable(getattr(ticket, f)) for f in fields}


def transition(
    session: Session,
    ticket: Ticket,
    *,
    actor: str,
    status: str | None = None,
    assignee: str | None = None,
    resolution: str | None = None,
    category: str | None = None,
    followup_at: dt.datetime | None = None,
    followup_done: bool = False,
    note: str | None = None,
    now: dt.datetime | None = None,
    priority: int | None = None,
) -> Ticket:
    """Change a ticket and append one TicketEvent with ``before``/``after`` of the changed fields.

    Status moves: open→claimed→resolved→closed, open→resolved, claimed→open (unclaim) and
    resolved→open (reopen); anything else raises ``ValueError``. Claiming without an assignee
    assigns ``actor``; unclaiming clears the assignee. ``followup_at`` schedules a 回访
    (followup_status "scheduled"), ``followup_done`` marks it "done". The status change is a
    conditional UPDATE, so a concurrent change (e.g. two agents claiming) raises ``ValueError``.
    """
    now_utc = utc_naive(now)
    current = ticket.status
    changes: dict[str, Any] = {}
    action = "updated"
    if status is not None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        if status == current:
            raise ValueError(f"ticket {ticket.number} is already {status!r}")
        if status not in TRANSITIONS[current]:
            raise ValueError(f"cannot move ticket {ticket.number} from {current!r} to {status!r}")
        changes["status"] = status
        action = _STATUS_ACTIONS[(current, status)]
        if status == "claimed" and assignee is None:
            assignee = actor
        if status == "open" and current == "claimed":
            changes["assignee"] = None
    if assignee is not None and assignee != ticket.assignee:
        changes["assignee"] = assignee
        if action == "updated":
            action = "assigned"
    if resolution is not None and resolution != ticket.resolution:
        changes["resolution"] = resolution
    if category is not None and category != ticket.category:
        changes["category"] = category
    if followup_at is not None:
        due = utc_naive(followup_at)
        if due != ticket.followup_at or ticket.followup_status != "scheduled":
            changes["followup_at"] = due
            changes["followup_status"] = "scheduled"
            if action == "updated":
                action = "followup_scheduled"
    if priority is not None and priority != ticket.priority:
        if priority not in (1, 2, 3, 4):
            raise ValueError(f"unknown priority {priority!r}")
        changes["priority"] = priority
        if action == "updated":
            action = "reprioritised"
    if followup_done:
        if ticket.followup_status != "done":
            changes["followup_status"] = "done"
            if action == "updated":
                action = "followup_done"
    if not changes and not note:
        return ticket
    if not changes:
        action = "note"

    before = {k: _jsonable(getattr(ticket, k)) for k in changes}
    if changes:
        table = Ticket.__table__
        result = session.execute(
            update(table)
            .where(table.c.id == ticket.id, table.c.status == current)
            .values(**changes, updated_at=now_utc)
        )
        if result.rowcount != 1:
            session.refresh(ticket)
            raise ValueError(f"ticket {ticket.number} was changed concurrently (now {ticket.status!r})")
    detail: dict[str, Any] = {"before": before, "after": {k: _jsonable(v) for k, v in changes.items()}}
    if note:
        detail["note"] = note
    session.add(TicketEvent(ticket_id=ticket.id, at=now_utc, actor=actor, action=action, detail=detail))
    session.flush()
    session.refresh(ticket)
    return ticket


# --------------------------------------------------------------------------- queries
def get_by_number(session: Session, number: str) -> Ticket | None:
    """The ticket with this number (``TYYYYMMDD-NNNN``), if any."""
    return session.execute(select(Ticket).where(Ticket.number == number.strip().upper())).scalar_one_or_none()


def list_tickets(
    session: Session,
    *,
    type: str | None = None,
    status: str | None = None,
    priority: int | None = None,
    overdue: bool = False,
    now: dt.datetime | None = None,
    limit: int = 200,
) -> list[Ticket]:
    """Tickets by priority (1 first), then reply deadline, then id.

    ``overdue`` keeps open/claimed tickets whose ``reply_due`` has passed at ``now``.
    """
    query = select(Ticket)
    if type is not None:
        query = query.where(Ticket.type == type)
    if status is not None:
        query = query.where(Ticket.status == status)
    if priority is not None:
        query = query.where(Ticket.priority == priority)
    if overdue:
        query = query.where(Ticket.status.in_(OPEN_STATUSES), Ticket.reply_due < utc_naive(now))
    query = query.order_by(Ticket.priority, Ticket.reply_due, Ticket.id).limit(limit)
    return list(session.execute(query).scalars())


def latest_open_for_sender(session: Session, sender_id: str, since: dt.datetime,
                           types: tuple[str, ...] = ()) -> Ticket | None:
    """The newest open ticket this patron opened after ``since`` (UTC), e.g. to correct its phone number."""
    query = select(Ticket).where(Ticket.sender_id == sender_id, Ticket.status.in_(OPEN_STATUSES),
                                 Ticket.created_at >= utc_naive(since))
    if types:
        query = query.where(Ticket.type.in_(types))
    return session.execute(query.order_by(Ticket.id.desc()).limit(1)).scalar_one_or_none()


# --------------------------------------------------------------------------- logging view
def masked(ticket: Ticket) -> dict[str, Any]:
    """A log-safe dict: phone as ``138****5678``, name reduced to its first character,
    phone numbers inside facts masked, transcript replaced by its length."""
    return {
        "number": ticket.number,
        "type": ticket.type,
        "category": ticket.category,
        "priority": ticket.priority,
        "status": ticket.status,
        "channel": ticket.channel,
        "sender_id": ticket.sender_id,
        "contact_name": _mask_name(ticket.contact_name),
        "contact_phone": mask_phone(ticket.contact_phone),
        "facts": _mask_text(ticket.facts or {}),
        "transcript_messages": len(ticket.transcript or []),
        "created_at": _jsonable(ticket.created_at),
        "reply_due": _jsonable(ticket.reply_due),
        "assignee": ticket.assignee,
        "followup_status": ticket.followup_status,
        "followup_at": _jsonable(ticket.followup_at),
        "client_ref": ticket.client_ref,
    }


def add_facts(session: Session, ticket: Ticket, *, actor: str, facts: Mapping[str, Any],
              phone: str | None = None, name: str | None = None) -> Ticket:
    """Merge facts collected later (e.g. after an on-site alert) into a ticket, with a history event."""
    before = {"facts": dict(ticket.facts or {}), "contact_phone": ticket.contact_phone}
    merged = dict(ticket.facts or {})
    merged.update({k: v for k, v in facts.items() if v not in (None, "")})
    ticket.facts = merged
    if phone:
        ticket.contact_phone = validate_phone(phone)
    if name:
        ticket.contact_name = name
    ticket.updated_at = utc_naive()
    session.add(TicketEvent(ticket_id=ticket.id, at=utc_naive(), actor=actor, action="facts_added",
                            detail={"before": _mask_text(before), "after": _mask_text({"facts": merged})}))
    session.flush()
    return ticket
