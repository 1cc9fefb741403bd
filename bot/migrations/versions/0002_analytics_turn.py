"""Analytics turns written by the event consumer (bot.analytics): statistics and the review queue stop
reading Rasa's tracker store.

Revision ID: 0002_analytics_turn
Revises: 0001_baseline
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_analytics_turn"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_turn",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.String(length=128), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("masked", sa.Boolean(), nullable=False),
        sa.Column("payload", sa.Boolean(), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("entities", sa.JSON(), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("missed", sa.Boolean(), nullable=False),
        sa.Column("human", sa.Boolean(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sender_id", "ts", name="uq_analytics_turn"),
    )
    op.create_index("ix_analytics_turn_at", "analytics_turn", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_analytics_turn_at", table_name="analytics_turn")
    op.drop_table("analytics_turn")
