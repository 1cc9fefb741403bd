"""Schema migrations of the project's own tables (knowledge store, tickets, handoff, users, audit, review
queue, desk sessions, analytics) with Alembic; Rasa's tracker tables are Rasa's and not migrated here.

    python -m bot.migrate upgrade        # to the newest revision (make run / prepare do this)
    python -m bot.migrate current        # the database's revision
    python -m bot.migrate revision -m "what changes" [--autogenerate]

A database of the release before migrations (no ``alembic_version`` table) is upgraded like any other:
the baseline revision creates only the tables it lacks, so every row it holds is kept.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Serialises concurrent upgrades of one PostgreSQL database (several services starting at once).
PG_LOCK_KEY = 0x78696E6768  # "xingh"


def target_metadata() -> sa.MetaData:
    """Every table the project owns, for autogenerate and the schema check."""
    from bot.models import Base
    from bot.services.auth import metadata as auth_metadata  # desk sessions live beside the login code

    combined = sa.MetaData()
    for md in (Base.metadata, auth_metadata):
        for table in md.tables.values():
            table.to_metadata(combined)
    return combined


def config(url: Optional[str] = None, connection: Optional[Connection] = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config()).get_current_head()


def current(connection: Connection) -> Optional[str]:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade_engine(engine: Engine, revision: str = "head") -> Optional[str]:
    """Upgrade the database behind ``engine`` (no-op when already there); returns the revision reached."""
    from alembic import command

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
        before = current(conn)
        if revision == "head" and before == head():
            return before
        command.upgrade(config(connection=conn), revision)
        after = current(conn)
    if before != after:
        log.info("database schema upgraded: %s -> %s", before or "(none)", after)
    return after


def main(argv=None) -> int:
    from bot.db import database_url, make_engine

    parser = argparse.ArgumentParser(prog="python -m bot.migrate", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=None, help="SQLAlchemy URL (default: KNOWLEDGE_DB_URL or var/xinghe.db)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade")
    up.add_argument("revision", nargs="?", default="head")
    sub.add_parser("current")
    rev = sub.add_parser("revision")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--autogenerate", action="store_true")
    args = parser.parse_args(argv)
    url = args.url or database_url()
    engine = make_engine(url)
    try:
        if args.command == "upgrade":
            before = _current(engine)
            after = upgrade_engine(engine, args.revision)
            print(f"schema: {before or '(none)'} -> {after}" if before != after else f"schema: {after} (up to date)")
        elif args.command == "current":
            print(_current(engine) or "(none)")
        else:
            from alembic import command

            with engine.begin() as conn:
                command.revision(config(connection=conn), message=args.message, autogenerate=args.autogenerate)
    finally:
        engine.dispose()
    return 0


def _current(engine: Engine) -> Optional[str]:
    with engine.connect() as conn:
        return current(conn)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    sys.exit(main())
