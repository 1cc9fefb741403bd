"""Baseline: the schema of release 405d728 (the last release before migrations).

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-01

A database of that release has these tables already (created by ``Base.metadata.create_all``; the desk"s
``desk_session`` only once the desk ran), so each table and its indexes are created only when missing:
upgrading such a database keeps every row and only adds what it lacks.
"""
from typing import List, Tuple

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def _create(name: str, indexes: List[Tuple[str, List[str], bool]], *columns) -> None:
    if sa.inspect(op.get_bind()).has_table(name):
        return
    op.create_table(name, *columns)
    for index, cols, unique in indexes:
        op.create_index(index, name, cols, unique=unique)


def upgrade() -> None:
    _create("agent_presence", [],
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("username")
    )
    _create("app_user", [],
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("username")
    )
    _create("audit_log", [],
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id")
    )
    _create("conversation", [("ix_conversation_state", ["state"], False)],
        sa.Column("sender_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=True),
        sa.Column("agent", sa.String(length=64), nullable=True),
        sa.Column("ticket_number", sa.String(length=20), nullable=True),
        sa.Column("last_patron_message_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sender_id")
    )
    _create("desk_session", [("ix_desk_session_username", ["username"], False)],
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash")
    )
    _create("kb_film", [],
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("genre", sa.String(length=64), nullable=False),
        sa.Column("runtime_min", sa.Integer(), nullable=False),
        sa.Column("advisory", sa.String(length=64), nullable=False),
        sa.Column("hall_formats", sa.JSON(), nullable=False),
        sa.Column("synopsis", sa.Text(), nullable=False),
        sa.Column("director", sa.String(length=64), nullable=False),
        sa.Column("cast", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=32), nullable=False),
        sa.Column("release_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("title")
    )
    _create("kb_hall_type", [],
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price_key", sa.String(length=32), nullable=False),
        sa.Column("parking_hours", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("code")
    )
    _create("kb_version", [("ix_kb_version_checksum", ["checksum"], False)],
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("comment", sa.String(length=255), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    _create("review_item", [("ix_review_item_last_seen", ["last_seen"], False), ("ix_review_item_status", ["status"], False)],
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("masked", sa.Boolean(), nullable=False),
        sa.Column("entities", sa.JSON(), nullable=False),
        sa.Column("sender_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("facet_key", sa.String(length=64), nullable=True),
        sa.Column("example", sa.Text(), nullable=True),
        sa.Column("assigned_by", sa.String(length=64), nullable=True),
        sa.Column("assigned_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key")
    )
    _create("ticket", [("ix_ticket_sender_id", ["sender_id"], False), ("ix_ticket_status", ["status"], False), ("ix_ticket_type", ["type"], False)],
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("followup_status", sa.String(length=16), nullable=True),
        sa.Column("followup_at", sa.DateTime(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("sender_id", sa.String(length=128), nullable=False),
        sa.Column("contact_name", sa.String(length=64), nullable=True),
        sa.Column("contact_phone", sa.String(length=20), nullable=True),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("transcript", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("reply_due", sa.DateTime(), nullable=False),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("client_ref", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_ref"),
        sa.UniqueConstraint("number")
    )
    _create("ticket_counter", [],
        sa.Column("day", sa.String(length=8), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day")
    )
    _create("kb_film_alias", [],
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("film_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["film_id"], ["kb_film.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alias")
    )
    _create("kb_hall", [],
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("type_code", sa.String(length=32), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("wheelchair_seats", sa.Integer(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["type_code"], ["kb_hall_type.code"], ),
        sa.PrimaryKeyConstraint("number"),
        sa.UniqueConstraint("name")
    )
    _create("kb_section", [],
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["kb_version.id"], ),
        sa.PrimaryKeyConstraint("name")
    )
    _create("review_sighting", [("ix_review_sighting_item_id", ["item_id"], False)],
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.String(length=128), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["review_item.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sender_id", "ts", name="uq_review_sighting")
    )
    _create("ticket_event", [("ix_ticket_event_ticket_id", ["ticket_id"], False)],
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], ),
        sa.PrimaryKeyConstraint("id")
    )
    _create("kb_showtime", [("ix_kb_showtime_day", ["day"], False)],
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("start", sa.String(length=5), nullable=False),
        sa.Column("film_id", sa.Integer(), nullable=False),
        sa.Column("hall_number", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["film_id"], ["kb_film.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["hall_number"], ["kb_hall.number"], ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day", "start", "hall_number", name="uq_showtime_slot")
    )


def downgrade() -> None:
    for name in ["kb_showtime", "ticket_event", "review_sighting", "kb_section", "kb_hall", "kb_film_alias", "ticket_counter", "ticket", "review_item", "kb_version", "kb_hall_type", "kb_film", "desk_session", "conversation", "audit_log", "app_user", "agent_presence"]:
        op.drop_table(name)
