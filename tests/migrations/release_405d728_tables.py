"""The desk's session table as release 405d728 defined it (bot/services/auth.py at that commit); the rest of
that release's schema is ``release_405d728_models.py``, a verbatim copy of its bot/models.py."""
from sqlalchemy import Column, DateTime, MetaData, String, Table

metadata = MetaData()
desk_session = Table(
    "desk_session",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("username", String(64), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
)
