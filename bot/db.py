"""Database engine and sessions for the knowledge store, tickets and audit log.

One SQLAlchemy URL (env ``KNOWLEDGE_DB_URL``) serves the action server, the Rasa NLU components,
the agent desk and the CLI. SQLite file by default, PostgreSQL in production.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = f"sqlite:///{ROOT / 'var' / 'xinghe.db'}"


def database_url() -> str:
    return os.environ.get("KNOWLEDGE_DB_URL") or DEFAULT_URL


def make_engine(url: str | None = None) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so readers never block the importer."""
    url = url or database_url()
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""  # "sqlite://" is in memory (no stray file)
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _private_file(Path(path))
        # SQLAlchemy 1.4 gives a SQLite file NullPool: a new connection and three PRAGMAs for every session,
        # and the Rasa server opens one per message (the knowledge version check). A pool (2.0's default for
        # SQLite files) keeps them: 0.9 instead of 2.5 ms per check (measured). XINGHE_SQLITE_POOL=0 goes back.
        in_file = path not in ("", ":memory:") and "mode=memory" not in url
        pool = {"poolclass": QueuePool} if in_file and os.environ.get("XINGHE_SQLITE_POOL", "1") != "0" else {}
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, future=True, **pool)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    return create_engine(url, pool_pre_ping=True, future=True, connect_args=connect_args)


def _private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (it holds tickets, phones, password hashes); SQLite
    gives its -wal and -shm files the same mode."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        if path.stat().st_uid == os.getuid():
            os.chmod(path, 0o600)
    except OSError:  # a read-only location: SQLite reports the real problem on connect
        pass


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    """Process-wide engine per URL, with the schema at the newest migration (``bot.migrate``: a new database
    is created, one of an older release upgraded in place; ``make run`` upgrades before any service starts)."""
    from bot.migrate import upgrade_engine

    engine = make_engine(url)
    upgrade_engine(engine)
    return engine


def session_factory(url: str | None = None) -> sessionmaker:
    return sessionmaker(bind=get_engine(url or database_url()), future=True, expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()
