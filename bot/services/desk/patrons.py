"""What the desk knows about a patron beyond the conversation (database side, functions taking a session):
the sidebar (channel, masked phone, earlier conversations and tickets, satisfaction history), internal
notes, labels, revealing a phone (audited), and the conversation list."""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional

from sqlalchemy import delete, or_, select

from bot.models import AuditLog, Conversation, ConversationLabel, ConversationNote, SatisfactionRating, Ticket, utcnow
from bot.services.auth import Identity
from bot.services.desk.core import DeskError, iso
from bot.services.desk.operations import _audit, _ticket_brief, may_read
from bot.tickets import handoff, staff
from bot.tickets import store as tickets

MAX_NOTE = 2000
MAX_LABEL = 16
MAX_LABELS = 8
LIST_VIEWS = ("waiting", "mine", "open", "recent")


def _phone_of(s, sender: str) -> Optional[Ticket]:
    return s.execute(select(Ticket).where(Ticket.sender_id == sender, Ticket.contact_phone.is_not(None))
                     .order_by(Ticket.id.desc()).limit(1)).scalar_one_or_none()


def patron_sync(s, sender: str) -> Dict[str, Any]:
    """The sidebar: the phone masked (``phone_ticket`` says where it comes from, for a reveal), the patron's
    tickets (same conversation or same phone), earlier conversations of the same phone, ratings."""
    with_phone = _phone_of(s, sender)
    phone = with_phone.contact_phone if with_phone else None
    clauses = [Ticket.sender_id == sender]
    if phone:
        clauses.append(Ticket.contact_phone == phone)
    rows = list(s.execute(select(Ticket).where(or_(*clauses)).order_by(Ticket.id.desc()).limit(20)).scalars())
    others = sorted({t.sender_id for t in rows if t.sender_id and t.sender_id != sender})
    ratings = list(s.execute(select(SatisfactionRating).where(
        SatisfactionRating.sender_id.in_([sender, *others]), SatisfactionRating.score.is_not(None))
        .order_by(SatisfactionRating.id.desc()).limit(20)).scalars())
    names = staff.display_names(s, [r.agent for r in ratings])
    return {
        "phone_masked": tickets.mask_phone(phone) if phone else None,
        "phone_ticket": with_phone.number if with_phone else None,
        "contact_name": with_phone.contact_name if with_phone else None,
        "tickets": [{**_ticket_brief(t), "same_conversation": t.sender_id == sender} for t in rows],
        "other_conversations": others[:10],
        "ratings": [{"score": r.score, "comment": r.comment, "at": iso(r.rated_at), "agent": r.agent,
                     "agent_name": names.get(r.agent or "", r.agent), "ticket": r.ticket_number,
                     "trigger": r.trigger, "followup_ticket": r.followup_ticket} for r in ratings],
        "labels": labels_sync(s, sender),
        "notes": notes_sync(s, sender),
    }


def reveal_phone_sync(s, number: str, user: Identity) -> Dict[str, Any]:
    """The full phone of a ticket, with an audit entry naming who looked."""
    ticket = tickets.get_by_number(s, number)
    if ticket is None:
        raise DeskError("unknown_ticket", 404)
    if not ticket.contact_phone:
        raise DeskError("no_phone", 404)
    conv = handoff.get_conversation(s, ticket.sender_id) if ticket.sender_id else None
    row = {"state": conv.state, "agent": conv.agent} if conv else None
    if ticket.assignee != user.username and not may_read(row, user):
        raise DeskError("not_your_conversation", 403)
    _audit(s, user.username, "ticket", number, "phone_revealed", after={"sender": ticket.sender_id})
    return {"phone": ticket.contact_phone, "ticket": number}


def reveals_sync(s, number: str) -> List[Dict[str, Any]]:
    rows = s.execute(select(AuditLog).where(AuditLog.entity == "ticket", AuditLog.entity_id == number,
                                            AuditLog.action == "phone_revealed").order_by(AuditLog.id)).scalars()
    return [{"actor": r.actor, "at": iso(r.at)} for r in rows]


def notes_sync(s, sender: str) -> List[Dict[str, Any]]:
    rows = s.execute(select(ConversationNote).where(ConversationNote.sender_id == sender)
                     .order_by(ConversationNote.id)).scalars()
    return [{"id": n.id, "author": n.author, "at": iso(n.at), "text": n.text} for n in rows]


def add_note_sync(s, sender: str, user: Identity, text: str) -> Dict[str, Any]:
    text = (text or "").strip()
    if not text:
        raise DeskError("note_required", 400)
    if len(text) > MAX_NOTE:
        raise DeskError("message_too_long", 400, limit=MAX_NOTE)
    if handoff.get_conversation(s, sender) is None and not s.execute(
            select(Ticket.id).where(Ticket.sender_id == sender).limit(1)).first():
        raise DeskError("unknown_conversation", 404)
    note = ConversationNote(sender_id=sender, author=user.username, text=text, at=utcnow())
    s.add(note)
    s.flush()
    _audit(s, user.username, "conversation", sender, "note", after={"chars": len(text)})
    return {"id": note.id, "author": note.author, "at": iso(note.at), "text": note.text}


def labels_sync(s, sender: str) -> List[str]:
    return [x for (x,) in s.execute(select(ConversationLabel.label).where(ConversationLabel.sender_id == sender)
                                    .order_by(ConversationLabel.at, ConversationLabel.label))]


def set_labels_sync(s, sender: str, user: Identity, add: List[str], remove: List[str]) -> List[str]:
    current = set(labels_sync(s, sender))
    for label in remove:
        s.execute(delete(ConversationLabel).where(ConversationLabel.sender_id == sender,
                                                  ConversationLabel.label == label))
        current.discard(label)
    for raw in add:
        label = " ".join(str(raw).split())[:MAX_LABEL]
        if not label or label in current:
            continue
        if len(current) >= MAX_LABELS:
            raise DeskError("too_many_labels", 400, limit=MAX_LABELS)
        s.add(ConversationLabel(sender_id=sender, label=label, added_by=user.username, at=utcnow()))
        current.add(label)
    s.flush()
    _audit(s, user.username, "conversation", sender, "labels", after={"add": add, "remove": remove})
    return labels_sync(s, sender)


def conversation_list_sync(s, username: str, role: str, view: str, limit: int = 50) -> List[Dict[str, Any]]:
    """Conversations of one list: ``waiting``, ``mine``, ``open`` (waiting or with an agent; all of them for
    supervisors, else the queue and the agent's own) or ``recent`` (touched in the last 24 hours)."""
    if view not in LIST_VIEWS:
        raise DeskError("bad_view", 400)
    q = select(Conversation)
    if view == "waiting":
        q = q.where(Conversation.state == "waiting")
    elif view == "mine":
        q = q.where(Conversation.state == "agent", Conversation.agent == username)
    elif view == "open":
        q = q.where(Conversation.state.in_(("waiting", "agent")))
        if role != "supervisor":
            q = q.where(or_(Conversation.state == "waiting", Conversation.agent == username))
    else:
        q = q.where(Conversation.updated_at >= utcnow() - dt.timedelta(hours=24))
        if role != "supervisor":  # an agent reads only what waits or what they hold
            q = q.where(or_(Conversation.state == "waiting", Conversation.agent == username))
    rows = list(s.execute(q.order_by(Conversation.updated_at.desc()).limit(limit)).scalars())
    labels: Dict[str, List[str]] = {}
    if rows:
        for sender, label in s.execute(select(ConversationLabel.sender_id, ConversationLabel.label)
                                       .where(ConversationLabel.sender_id.in_([c.sender_id for c in rows]))):
            labels.setdefault(sender, []).append(label)
    return [{"sender_id": c.sender_id, "channel": c.channel, "state": c.state, "agent": c.agent,
             "priority": c.priority, "queued_at": iso(c.queued_at), "updated_at": iso(c.updated_at),
             "ticket_number": c.ticket_number, "labels": labels.get(c.sender_id, [])} for c in rows]
