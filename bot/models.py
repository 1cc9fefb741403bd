"""All SQLAlchemy models: knowledge store, tickets, handoff queue, users and audit log.

Sessions are passed in by callers (see ``bot.db``); nothing here opens connections.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


# --------------------------------------------------------------------------- knowledge store
class KnowledgeVersion(Base):
    """One published state of the whole knowledge store; ``files`` keeps the source text of each file."""

    __tablename__ = "kb_version"
    id = Column(Integer, primary_key=True)
    created_at = Column(DateTime, default=utcnow, nullable=False)
    author = Column(String(64), nullable=False, default="system")
    comment = Column(String(255), nullable=False, default="")
    checksum = Column(String(64), nullable=False, index=True)
    files = Column(JSON, nullable=False)  # {"films.yml": "...text...", ...}


class KnowledgeEffect(Base):
    """When a version takes effect and which files it changed. A version without a row (published before
    scheduling existed) took effect when it was created and counts as changing every file."""

    __tablename__ = "kb_version_effect"
    version_id = Column(Integer, ForeignKey("kb_version.id"), primary_key=True)
    effective_at = Column(DateTime, nullable=False, index=True)  # UTC
    changed = Column(JSON, nullable=False, default=list)  # file names
    cancelled_at = Column(DateTime, nullable=True)  # a scheduled version withdrawn before it took effect
    cancelled_by = Column(String(64), nullable=True)


# --------------------------------------------------------------------------- tickets
class TicketCounter(Base):
    """Per-day sequence for ticket numbers; incremented under the database's row lock."""

    __tablename__ = "ticket_counter"
    day = Column(String(8), primary_key=True)
    last = Column(Integer, nullable=False, default=0)


class Ticket(Base):
    __tablename__ = "ticket"
    id = Column(Integer, primary_key=True)
    number = Column(String(20), nullable=False, unique=True)
    type = Column(String(20), nullable=False, index=True)
    category = Column(String(20), nullable=True)
    priority = Column(Integer, nullable=False, default=3)  # 1 = emergency (highest)
    status = Column(String(16), nullable=False, default="open", index=True)
    followup_status = Column(String(16), nullable=True)  # scheduled / done
    followup_at = Column(DateTime, nullable=True)
    channel = Column(String(32), nullable=False, default="")
    sender_id = Column(String(128), nullable=False, default="", index=True)
    contact_name = Column(String(64), nullable=True)
    contact_phone = Column(String(20), nullable=True)
    facts = Column(JSON, nullable=False, default=dict)
    transcript = Column(JSON, nullable=False, default=list)
    created_at = Column(DateTime, default=utcnow, nullable=False)
    updated_at = Column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)
    reply_due = Column(DateTime, nullable=False)
    assignee = Column(String(64), nullable=True)
    resolution = Column(Text, nullable=True)
    client_ref = Column(String(64), nullable=True, unique=True)  # idempotency key for queued writes
    # A ticket stored from the durable queue owes the patron its number (bot.tickets.notice): due → sending
    # → sent (told in the channel) or desk (the channel could not carry it; the desk tells them)
    number_notice = Column(String(8), nullable=True, index=True)
    number_notice_at = Column(DateTime, nullable=True)
    history = relationship("TicketEvent", lazy="selectin", order_by="TicketEvent.id")


class TicketEvent(Base):
    """Append-only history of a ticket."""

    __tablename__ = "ticket_event"
    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("ticket.id"), nullable=False, index=True)
    at = Column(DateTime, default=utcnow, nullable=False)
    actor = Column(String(64), nullable=False)
    action = Column(String(32), nullable=False)
    detail = Column(JSON, nullable=False, default=dict)


# --------------------------------------------------------------------------- handoff
class Conversation(Base):
    """Handoff state of one patron conversation: bot → waiting → agent → bot."""

    __tablename__ = "conversation"
    sender_id = Column(String(128), primary_key=True)
    channel = Column(String(32), nullable=False, default="")
    state = Column(String(16), nullable=False, default="bot", index=True)
    priority = Column(Integer, nullable=False, default=3)
    queued_at = Column(DateTime, nullable=True)
    agent = Column(String(64), nullable=True)
    ticket_number = Column(String(20), nullable=True)
    last_patron_message_at = Column(DateTime, nullable=True)
    updated_at = Column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)


class AgentPresence(Base):
    __tablename__ = "agent_presence"
    username = Column(String(64), primary_key=True)
    last_seen = Column(DateTime, nullable=False, default=utcnow)
    online = Column(Boolean, nullable=False, default=False)


# --------------------------------------------------------------------------- users and audit
class User(Base):
    __tablename__ = "app_user"
    username = Column(String(64), primary_key=True)
    password_hash = Column(String(128), nullable=False)
    role = Column(String(16), nullable=False)  # agent / supervisor / editor
    failed_logins = Column(Integer, nullable=False, default=0)
    locked_until = Column(DateTime, nullable=True)
    # a one-time password (first-run admin, ``make user``): the owner sets their own at the first login
    must_change_password = Column(Boolean, nullable=False, default=False, server_default=false())


class AuditLog(Base):
    __tablename__ = "audit_log"
    id = Column(Integer, primary_key=True)
    at = Column(DateTime, default=utcnow, nullable=False)
    actor = Column(String(64), nullable=False)
    entity = Column(String(64), nullable=False)
    entity_id = Column(String(128), nullable=False, default="")
    action = Column(String(32), nullable=False)
    before = Column(JSON, nullable=True)
    after = Column(JSON, nullable=True)


# --------------------------------------------------------------------------- editors' review of missed messages
class ReviewItem(Base):
    """A patron message the bot did not understand, once per distinct text (``key``: folded text digest),
    until an editor assigns it to an intent (exported as training data) or to a knowledge facet
    (added as an example phrasing, answered at once), or dismisses it."""

    __tablename__ = "review_item"
    id = Column(Integer, primary_key=True)
    key = Column(String(64), nullable=False, unique=True)
    text = Column(Text, nullable=False)  # as the patron wrote it (masked when it held a phone or order id)
    masked = Column(Boolean, nullable=False, default=False)
    entities = Column(JSON, nullable=False, default=list)  # spans the NLU found in ``text``
    sender_id = Column(String(128), nullable=False, default="")  # the latest sender
    channel = Column(String(32), nullable=False, default="")
    first_seen = Column(DateTime, nullable=False, default=utcnow)
    last_seen = Column(DateTime, nullable=False, default=utcnow, index=True)
    count = Column(Integer, nullable=False, default=0)
    status = Column(String(16), nullable=False, default="new", index=True)  # new / intent / facet / dismissed
    intent = Column(String(64), nullable=True)
    facet_key = Column(String(64), nullable=True)
    example = Column(Text, nullable=True)  # the phrasing added to the facet
    assigned_by = Column(String(64), nullable=True)
    assigned_at = Column(DateTime, nullable=True)


class ReviewSighting(Base):
    """One missed patron message (sender, tracker timestamp): re-reading the tracker store counts it once."""

    __tablename__ = "review_sighting"
    id = Column(Integer, primary_key=True)
    item_id = Column(Integer, ForeignKey("review_item.id", ondelete="CASCADE"), nullable=False, index=True)
    sender_id = Column(String(128), nullable=False)
    ts = Column(Float, nullable=False)
    __table_args__ = (UniqueConstraint("sender_id", "ts", name="uq_review_sighting"),)


# --------------------------------------------------------------------------- service experience (desk)
class StaffProfile(Base):
    """How patrons see a desk user: the display name in 「人工客服 小李 为您服务」 and on every agent message."""

    __tablename__ = "staff_profile"
    username = Column(String(64), primary_key=True)
    display_name = Column(String(32), nullable=False)


class SatisfactionRating(Base):
    """One request for a 1–5 rating at the end of a conversation and, once given, the patron's answer.

    ``trigger`` says what ended the conversation (goodbye, agent_closed, handback); ``agent``
    and ``ticket_number`` are who served and which ticket it was about, copied when the request is made."""

    __tablename__ = "satisfaction_rating"
    id = Column(Integer, primary_key=True)
    sender_id = Column(String(128), nullable=False, index=True)
    channel = Column(String(32), nullable=False, default="")
    trigger = Column(String(16), nullable=False)
    agent = Column(String(64), nullable=True, index=True)
    ticket_number = Column(String(20), nullable=True)
    requested_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    score = Column(Integer, nullable=True)
    comment = Column(Text, nullable=True)
    rated_at = Column(DateTime, nullable=True)
    comment_open = Column(Boolean, nullable=False, default=False)  # the next message is taken as the comment
    followup_ticket = Column(String(20), nullable=True)  # opened for a low rating


class ConversationNote(Base):
    """An agent's internal note inside a conversation; never sent to the patron."""

    __tablename__ = "conversation_note"
    id = Column(Integer, primary_key=True)
    sender_id = Column(String(128), nullable=False, index=True)
    author = Column(String(64), nullable=False)
    at = Column(DateTime, nullable=False, default=utcnow)
    text = Column(Text, nullable=False)


class ConversationLabel(Base):
    """A label an agent put on a conversation (e.g. 退款, 回头客)."""

    __tablename__ = "conversation_label"
    sender_id = Column(String(128), primary_key=True)
    label = Column(String(32), primary_key=True)
    added_by = Column(String(64), nullable=False)
    at = Column(DateTime, nullable=False, default=utcnow)

# --------------------------------------------------------------------------- analytics (written by the event consumer)
class AnalyticsTurn(Base):
    """One patron message and what its turn did, reduced from Rasa's events on the broker
    (``bot.analytics.ingest``); the desk statistics and the review queue read these, never the tracker store.
    Re-delivered events change nothing: the turn is unique per (sender, tracker timestamp) and the flags
    only ever turn on."""

    __tablename__ = "analytics_turn"
    id = Column(Integer, primary_key=True)
    sender_id = Column(String(128), nullable=False)
    ts = Column(Float, nullable=False)  # the user event's tracker timestamp (epoch seconds)
    at = Column(DateTime, nullable=False, index=True)  # the same, naive UTC, for range queries
    channel = Column(String(32), nullable=False, default="")
    text = Column(Text, nullable=False, default="")  # masked when it held a phone or order id
    masked = Column(Boolean, nullable=False, default=False)
    payload = Column(Boolean, nullable=False, default=False)  # a button payload ("/intent{...}"), not typed
    intent = Column(String(64), nullable=True)
    entities = Column(JSON, nullable=False, default=list)  # NLU spans inside ``text`` (none when masked)
    answered = Column(Boolean, nullable=False, default=False)  # the answering layer set topic_context
    missed = Column(Boolean, nullable=False, default=False)  # an "I did not understand" reply or fallback
    human = Column(Boolean, nullable=False, default=False)  # a handoff was asked for or the bot was paused
    done = Column(Boolean, nullable=False, default=False)  # the bot went back to listening
    __table_args__ = (UniqueConstraint("sender_id", "ts", name="uq_analytics_turn"),)
