"""Tickets stored from the durable queue after an outage owe the patron their number: ``number_notice``
(due / sending / sent / desk) and when it last changed.

Revision ID: 0004_ticket_number_notice
Revises: 0003_service_schedule
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_ticket_number_notice"
down_revision = "0003_service_schedule"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number_notice", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("number_notice_at", sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_ticket_number_notice"), ["number_notice"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_number_notice"))
        batch_op.drop_column("number_notice_at")
        batch_op.drop_column("number_notice")
