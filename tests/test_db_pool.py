"""SQLite files get a connection pool (bot/db.py): sessions reuse connections, with the PRAGMAs still set."""
from sqlalchemy import text
from sqlalchemy.pool import NullPool, QueuePool

from bot.db import make_engine


def test_a_sqlite_file_reuses_its_connections_with_wal_and_foreign_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("XINGHE_SQLITE_POOL", raising=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert isinstance(engine.pool, QueuePool)
    seen = set()
    for _ in range(3):
        with engine.connect() as c:
            seen.add(id(c.connection.dbapi_connection))
            assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert len(seen) == 1


def test_the_pool_can_be_switched_off_and_memory_databases_keep_sqlalchemys_pool(tmp_path, monkeypatch):
    monkeypatch.setenv("XINGHE_SQLITE_POOL", "0")
    assert isinstance(make_engine(f"sqlite:///{tmp_path / 'y.db'}").pool, NullPool)
    monkeypatch.delenv("XINGHE_SQLITE_POOL")
    for url in ("sqlite://", "sqlite:///:memory:"):
        engine = make_engine(url)
        assert not isinstance(engine.pool, QueuePool)  # a pool of separate in-memory databases would lose data
        with engine.connect() as c:
            c.execute(text("CREATE TABLE t (x INTEGER)"))
            c.execute(text("INSERT INTO t VALUES (1)"))
            c.commit()
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM t")).scalar() == 1
