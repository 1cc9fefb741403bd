"""Accounts created with a one-time password (first-run admin, ``make user``) must set their own at the
first login: ``app_user.must_change_password``. Existing accounts keep working as they are (false).

Revision ID: 0005_one_time_password
Revises: 0004_ticket_number_notice
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_one_time_password"
down_revision = "0004_ticket_number_notice"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("must_change_password")
