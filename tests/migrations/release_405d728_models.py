"""All SQLAlchemy models: knowledge store, tickets, handoff queue, users and audit log.

Sessions are passed in by callers (see ``bot.db``); nothing here opens connections.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
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


class KnowledgeSection(Base):
    """A validated policy document (prices, refund, parking, ...) as structured JSON."""

    __tablename__ = "kb_section"
    name = Column(String(64), primary_key=True)
    data = Column(JSON, nullable=False)
    version_id = Column(Integer, ForeignKey("kb_version.id"), nullable=False)


class HallType(Base):
    __tablename__ = "kb_hall_type"
    code = Column(String(32), primary_key=True)
    name = Column(String(64), nullable=False)
    aliases = Column(JSON, nullable=False, default=list)
    description = Column(Text, nullable=False, default="")
    price_key = Column(String(32), nullable=False)
    parking_hours = Column(Integer, nullable=True)


class Hall(Base):
    __tablename__ = "kb_hall"
    number = Column(Integer, primary_key=True)
    name = Column(String(32), nullable=False, unique=True)
    type_code = Column(String(32), ForeignKey("kb_hall_type.code"), nullable=False)
    seats = Column(Integer, nullable=False)
    wheelchair_seats = Column(Integer, nullable=False, default=0)
    notes = Column(Text, nullable=False, default="")
    hall_type = relationship("HallType", lazy="joined")


class Film(Base):
    __tablename__ = "kb_film"
    id = Column(Integer, primary_key=True)
    title = Column(String(128), nullable=False, unique=True)
    genre = Column(String(64), nullable=False)
    runtime_min = Column(Integer, nullable=False)
    advisory = Column(String(64), nullable=False)
    hall_formats = Column(JSON, nullable=False, default=list)
    synopsis = Column(Text, nullable=False)
    director = Column(String(64), nullable=False)
    cast = Column(JSON, nullable=False, default=list)
    language = Column(String(32), nullable=False, default="国语")
    release_date = Column(Date, nullable=False)
    aliases = relationship("FilmAlias", lazy="selectin", cascade="all, delete-orphan")


class FilmAlias(Base):
    __tablename__ = "kb_film_alias"
    id = Column(Integer, primary_key=True)
    film_id = Column(Integer, ForeignKey("kb_film.id", ondelete="CASCADE"), nullable=False)
    alias = Column(String(128), nullable=False, unique=True)


class ShowtimeRule(Base):
    """A showtime on a day pattern: ``daily``, a weekday (``mon``..``sun``) or an ISO date."""

    __tablename__ = "kb_showtime"
    id = Column(Integer, primary_key=True)
    day = Column(String(10), nullable=False, index=True)
    start = Column(String(5), nullable=False)
    film_id = Column(Integer, ForeignKey("kb_film.id", ondelete="CASCADE"), nullable=False)
    hall_number = Column(Integer, ForeignKey("kb_hall.number"), nullable=False)
    version = Column(String(8), nullable=False, default="2D")
    film = relationship("Film", lazy="joined")
    hall = relationship("Hall", lazy="joined")
    __table_args__ = (UniqueConstraint("day", "start", "hall_number", name="uq_showtime_slot"),)


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
