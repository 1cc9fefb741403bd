"""Alembic migrations of the project's tables: a database of the previous release (405d728, before
migrations) with data is upgraded in place and keeps every row; a new database built by the migrations is
exactly the models. On SQLite and on PostgreSQL (127.0.0.1:5432, on every machine here and in CI)."""
from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.orm

from bot import migrate
from bot.db import make_engine
from tests.migrations import release_405d728_models as old
from tests.migrations import release_405d728_tables as old_tables

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
OLD_TABLES = sorted(list(old.Base.metadata.tables) + list(old_tables.metadata.tables))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'xinghe.db'}"
        return
    name = f"xinghe_mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", future=True)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"no PostgreSQL on 127.0.0.1:5432 (it runs on every machine, CI's included): {exc}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_the_release_schema_copy_is_that_release():
    """The fixture is the deployed release's own models file (checked when the clone has that commit)."""
    shown = subprocess.run(["git", "show", "405d728:bot/models.py"], cwd=ROOT, capture_output=True, text=True)
    if shown.returncode != 0:
        pytest.skip("commit 405d728 is not in this clone (shallow)")
    assert (ROOT / "tests/migrations/release_405d728_models.py").read_text(encoding="utf-8") == shown.stdout


def _fill_release_database(engine: sa.engine.Engine) -> None:
    """The release's schema, created the way that release did (create_all), with data in every table."""
    old.Base.metadata.create_all(engine)
    old_tables.metadata.create_all(engine)
    t0 = dt.datetime(2026, 11, 20, 2, 30)
    with sa.orm.Session(engine, future=True) as s:
        versions = [old.KnowledgeVersion(created_at=t0 + dt.timedelta(days=i), author=f"editor{i}",
                                         comment=f"第 {i} 版：退票规则", checksum=f"{i:064d}",
                                         files={"films.yml": f"films: [版本{i}]\n", "refund.yml": "退票: 开场前"})
                    for i in range(1, 4)]
        s.add_all(versions)
        s.flush()
        s.add(old.KnowledgeSection(name="refund", data={"退票": "开场前 2 小时"}, version_id=versions[-1].id))
        s.add(old.HallType(code="imax", name="IMAX厅", aliases=["巨幕"], description="", price_key="imax",
                           parking_hours=3))
        s.flush()
        s.add(old.Hall(number=1, name="1号厅", type_code="imax", seats=300, wheelchair_seats=2, notes=""))
        film = old.Film(title="星河", genre="科幻", runtime_min=120, advisory="PG", hall_formats=["imax"],
                        synopsis="……", director="李导", cast=["张三"], release_date=dt.date(2026, 11, 1))
        s.add(film)
        s.flush()
        s.add(old.FilmAlias(film_id=film.id, alias="星河电影"))
        s.add(old.ShowtimeRule(day="daily", start="19:30", film_id=film.id, hall_number=1, version="IMAX"))
        s.add(old.TicketCounter(day="20261120", last=40))
        for i in range(40):
            t = old.Ticket(number=f"T20261120{i + 1:04d}", type=["complaint", "refund", "lost_item"][i % 3],
                           category="播放质量" if i % 3 == 0 else None, priority=1 + i % 3,
                           status=["open", "in_progress", "resolved"][i % 3], channel="wechat",
                           sender_id=f"patron-{i}", contact_name="王五", contact_phone=f"1381234{i:04d}",
                           facts={"hall": "1号厅", "summary": f"第{i}件"},
                           transcript=[{"who": "patron", "text": "声音太小"}], created_at=t0, updated_at=t0,
                           reply_due=t0 + dt.timedelta(hours=24), assignee="agent1" if i % 2 else None,
                           resolution="已退款" if i % 3 == 2 else None, client_ref=f"ref-{i}")
            s.add(t)
            s.flush()
            s.add(old.TicketEvent(ticket_id=t.id, at=t0, actor="bot", action="created", detail={"via": "wechat"}))
            s.add(old.TicketEvent(ticket_id=t.id, at=t0 + dt.timedelta(minutes=5), actor="agent1",
                                  action="note", detail={"text": "已联系"}))
        s.add(old.Conversation(sender_id="patron-1", channel="wechat", state="waiting", priority=1, queued_at=t0,
                               updated_at=t0))
        s.add(old.AgentPresence(username="agent1", last_seen=t0, online=True))
        for name, role in (("agent1", "agent"), ("boss", "supervisor"), ("editor1", "editor")):
            s.add(old.User(username=name, password_hash="$2b$12$" + name * 5, role=role, failed_logins=1,
                           locked_until=None))
        for i in range(25):
            s.add(old.AuditLog(at=t0, actor="editor1", entity="films", entity_id=str(i), action="update",
                               before={"title": "旧"}, after={"title": f"新{i}"}))
        item = old.ReviewItem(key="k" * 64, text="能带宠物吗", entities=[], sender_id="patron-2", channel="wechat",
                              first_seen=t0, last_seen=t0, count=2, status="new")
        s.add(item)
        s.flush()
        s.add(old.ReviewSighting(item_id=item.id, sender_id="patron-2", ts=1.5))
        s.commit()
    with engine.begin() as conn:
        conn.execute(old_tables.desk_session.insert(), [{"token_hash": "h" * 64, "username": "agent1",
                                                         "csrf": "c" * 64, "created_at": t0, "last_seen": t0}])


KNOWLEDGE_COPIES = ("kb_film", "kb_film_alias", "kb_hall", "kb_hall_type", "kb_showtime", "kb_section")


def _rows(engine: sa.engine.Engine, skip=()) -> dict:
    """Every row of every table of the release (but ``skip``), in primary-key order, in the release's columns
    (later revisions may add columns; what the release stored must be unchanged)."""
    md = sa.MetaData()
    release = {**old.Base.metadata.tables, **old_tables.metadata.tables}
    out = {}
    with engine.connect() as conn:
        for name in OLD_TABLES:
            if name in skip:
                continue
            table = sa.Table(name, md, autoload_with=conn)
            cols = [c.name for c in release[name].columns]
            order = [table.c[c.name] for c in table.primary_key.columns]
            out[name] = [tuple(r) for r in conn.execute(sa.select(*[table.c[c] for c in cols]).order_by(*order))]
            out[name + ":columns"] = cols
    return out


def _schema_diff(engine: sa.engine.Engine) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, migrate.target_metadata())


def test_upgrade_of_the_release_database_keeps_every_row(db_url):
    engine = make_engine(db_url)
    _fill_release_database(engine)
    before = _rows(engine)
    assert len(before["ticket"]) == 40 and len(before["app_user"]) == 3 and len(before["audit_log"]) == 25
    assert len(before["kb_version"]) == 3 and len(before["ticket_event"]) == 80

    assert migrate.upgrade_engine(engine) == migrate.head()

    # the knowledge copy tables are derived from each version's files (kept in kb_version): 0003 drops them
    kept = {k: v for k, v in before.items() if k.split(":")[0] not in KNOWLEDGE_COPIES}
    assert _rows(engine, skip=KNOWLEDGE_COPIES) == kept  # every ticket, user, audit row, knowledge version …
    with engine.connect() as conn:
        assert not any(sa.inspect(conn).has_table(t) for t in KNOWLEDGE_COPIES)
    assert _schema_diff(engine) == []  # and the schema is now exactly the models'
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM analytics_turn")).scalar() == 0
        # 0005: every account the release had keeps its password (nothing to change at the next login)
        assert conn.execute(sa.text("SELECT count(*) FROM app_user WHERE must_change_password")).scalar() == 0
        # 0004: no ticket of the release owes its number (they were all told at the time)
        assert conn.execute(sa.text("SELECT count(*) FROM ticket WHERE number_notice IS NOT NULL")).scalar() == 0
    assert migrate.upgrade_engine(engine) == migrate.head()  # a second run changes nothing
    assert _rows(engine, skip=KNOWLEDGE_COPIES) == kept
    engine.dispose()


def test_release_database_without_desk_sessions_is_completed(db_url):
    """A deployment whose desk never ran has no desk_session table: the baseline adds it, keeps the rest."""
    engine = make_engine(db_url)
    old.Base.metadata.create_all(engine)
    with sa.orm.Session(engine, future=True) as s:
        s.add(old.User(username="boss", password_hash="x", role="supervisor", failed_logins=0))
        s.commit()
    migrate.upgrade_engine(engine)
    assert _schema_diff(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT username FROM app_user")).scalars().all() == ["boss"]
    engine.dispose()


def test_new_database_from_migrations_is_the_models(db_url):
    engine = make_engine(db_url)
    assert migrate.upgrade_engine(engine) == migrate.head()
    assert _schema_diff(engine) == []
    engine.dispose()


def test_cli_upgrade_reports_the_revisions(tmp_path):
    import sys

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    first = subprocess.run([sys.executable, "-m", "bot.migrate", "--url", url, "upgrade"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert f"(none) -> {migrate.head()}" in first.stdout
    again = subprocess.run([sys.executable, "-m", "bot.migrate", "--url", url, "upgrade"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert "up to date" in again.stdout
