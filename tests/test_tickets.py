"""Tickets: numbering (incl. concurrency on SQLite and PostgreSQL), SLA, transitions, masking,
the durable write queue and the human-handoff state."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import sessionmaker

from bot.db import make_engine
from bot.models import AgentPresence, Base, Conversation, Ticket, TicketCounter, TicketEvent
from bot.tickets import handoff
from bot.tickets.durable import Receipt, TicketWriter
from bot.tickets.store import (
    compute_reply_due,
    create_ticket,
    default_priority,
    get_by_number,
    list_tickets,
    masked,
    transition,
    validate_phone,
)

SH = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc
SLA = {
    "complaint": 1440,
    "complaint_onsite": 10,
    "handoff": 1440,
    "lost_item": 1440,
    "order_problem": 1440,
    "refund": 1440,
    "feedback": 4320,
    "emergency": 5,
    "group_booking": "working_day",
}
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def local(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=SH)


def naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def ticket_kwargs(**over):
    base = dict(
        type="complaint",
        channel="wechat",
        sender_id="u1",
        facts={"hall": "3号厅", "summary": "声音太小"},
        phone="13812345678",
        name="张三",
        category="播放质量",
        sla=SLA,
    )
    base.update(over)
    return base


@pytest.fixture
def factory(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'tickets.db'}")
    Base.metadata.create_all(engine)
    yield sessionmaker(bind=engine, future=True, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def session(factory):
    s = factory()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def pg_factory():
    """A throwaway schema on the local PostgreSQL; skipped only if the server is unreachable."""
    import psycopg2

    try:
        psycopg2.connect(PG_URL, connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc}")
    schema = f"tickets_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, future=True)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(
        PG_URL, future=True, pool_size=25, max_overflow=5, connect_args={"options": f"-csearch_path={schema}"}
    )
    try:
        Base.metadata.create_all(engine)
        yield sessionmaker(bind=engine, future=True, expire_on_commit=False)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --------------------------------------------------------------------------- numbering
def test_number_format_and_per_day_sequence(session):
    day1 = local(2025, 3, 14, 10)
    numbers = [create_ticket(session, **ticket_kwargs(now=day1)).number for _ in range(3)]
    assert numbers == ["T20250314-0001", "T20250314-0002", "T20250314-0003"]
    # 00:30 in Shanghai is still the previous day in UTC: the number uses the Shanghai date.
    just_after_midnight = local(2025, 3, 15, 0, 30)
    t = create_ticket(session, **ticket_kwargs(now=just_after_midnight))
    assert t.number == "T20250315-0001"
    assert t.created_at == naive_utc(just_after_midnight) == dt.datetime(2025, 3, 14, 16, 30)
    # naive "now" means UTC
    t2 = create_ticket(session, **ticket_kwargs(now=dt.datetime(2025, 3, 14, 16, 31)))
    assert t2.number == "T20250315-0002"
    session.commit()
    counters = dict(session.execute(select(TicketCounter.day, TicketCounter.last)).all())
    assert counters == {"20250314": 3, "20250315": 2}
    assert get_by_number(session, "T20250314-0002").id == numbers.index("T20250314-0002") + 1
    assert get_by_number(session, "t20250314-0002") is not None
    assert get_by_number(session, "T20250314-0099") is None


def test_numbering_rolls_back_with_the_transaction(factory):
    s = factory()
    create_ticket(s, **ticket_kwargs(now=local(2025, 3, 14)))
    s.rollback()
    t = create_ticket(s, **ticket_kwargs(now=local(2025, 3, 14)))
    s.commit()
    assert t.number == "T20250314-0001"
    s.close()


def _create_concurrently(factory, n: int = 20) -> list[str]:
    now = local(2025, 6, 1, 12)
    barrier = threading.Barrier(n)
    numbers: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        s = factory()
        try:
            barrier.wait(timeout=30)
            t = create_ticket(s, **ticket_kwargs(sender_id=f"u{i}", now=now))
            s.commit()
            with lock:
                numbers.append(t.number)
        except BaseException as exc:  # pragma: no cover - reported below
            s.rollback()
            with lock:
                errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    return numbers


def _assert_consecutive(numbers: list[str], n: int = 20) -> None:
    assert len(numbers) == n
    assert len(set(numbers)) == n
    assert sorted(numbers) == [f"T20250601-{i:04d}" for i in range(1, n + 1)]


def test_concurrent_numbering_sqlite(factory):
    numbers = _create_concurrently(factory)
    _assert_consecutive(numbers)
    with factory() as s:
        assert s.execute(select(func.count()).select_from(Ticket)).scalar_one() == 20
        assert s.execute(select(TicketCounter.last).where(TicketCounter.day == "20250601")).scalar_one() == 20


def test_concurrent_numbering_postgresql(pg_factory):
    numbers = _create_concurrently(pg_factory)
    _assert_consecutive(numbers)
    with pg_factory() as s:
        assert s.execute(select(func.count()).select_from(Ticket)).scalar_one() == 20
        assert s.execute(select(func.count()).select_from(TicketEvent)).scalar_one() == 20
    # and a second wave on the existing counter row (row-lock path, no insert race)
    more = _create_concurrently(pg_factory, 20)
    assert sorted(more) == [f"T20250601-{i:04d}" for i in range(21, 41)]


def test_idempotent_client_ref(session):
    a = create_ticket(session, **ticket_kwargs(client_ref="ref-1", now=local(2025, 3, 14)))
    b = create_ticket(session, **ticket_kwargs(client_ref="ref-1", now=local(2025, 3, 14), facts={"other": 1}))
    session.commit()
    assert a.id == b.id and b.facts["hall"] == "3号厅"
    assert session.execute(select(func.count()).select_from(Ticket)).scalar_one() == 1
    assert session.execute(select(TicketCounter.last)).scalar_one() == 1


# --------------------------------------------------------------------------- SLA, priority, phone
def test_reply_due_per_type(session):
    now = local(2025, 3, 12, 15)  # Wednesday
    cases = {
        ("complaint", False): dt.timedelta(minutes=1440),
        ("complaint", True): dt.timedelta(minutes=10),
        ("emergency", False): dt.timedelta(minutes=5),
        ("feedback", False): dt.timedelta(minutes=4320),
        ("lost_item", False): dt.timedelta(minutes=1440),
    }
    for (type_, onsite), delta in cases.items():
        t = create_ticket(session, **ticket_kwargs(type=type_, onsite=onsite, now=now))
        assert t.reply_due == naive_utc(now) + delta, type_
        assert t.status == "open"
    # onsite only matters for complaints
    assert compute_reply_due("lost_item", sla=SLA, onsite=True, now=now) == naive_utc(now) + dt.timedelta(days=1)
    # unknown types fall back to the handoff SLA
    assert compute_reply_due("mystery", sla=SLA, now=now) == naive_utc(now) + dt.timedelta(minutes=1440)


def test_reply_due_working_day_over_weekend(session):
    friday = local(2025, 3, 14, 15)
    t = create_ticket(session, **ticket_kwargs(type="group_booking", category=None, now=friday))
    assert t.reply_due == naive_utc(local(2025, 3, 17, 15))  # Monday, same time
    saturday = local(2025, 3, 15, 11)
    assert compute_reply_due("group_booking", sla=SLA, now=saturday) == naive_utc(local(2025, 3, 17, 11))
    sunday_late = local(2025, 3, 16, 23, 30)  # 15:30 UTC Sunday
    assert compute_reply_due("group_booking", sla=SLA, now=sunday_late) == naive_utc(local(2025, 3, 17, 23, 30))
    wednesday = local(2025, 3, 12, 9)
    assert compute_reply_due("group_booking", sla=SLA, now=wednesday) == naive_utc(local(2025, 3, 13, 9))
    # a Friday evening in Shanghai is still Friday morning in UTC; working days use Shanghai
    friday_night = local(2025, 3, 14, 23, 0)
    assert compute_reply_due("group_booking", sla=SLA, now=friday_night) == naive_utc(local(2025, 3, 17, 23, 0))


def test_default_priorities(session):
    now = local(2025, 3, 14)
    assert create_ticket(session, **ticket_kwargs(type="emergency", now=now)).priority == 1
    assert create_ticket(session, **ticket_kwargs(type="complaint", onsite=True, now=now)).priority == 2
    assert create_ticket(session, **ticket_kwargs(type="complaint", now=now)).priority == 3
    assert create_ticket(session, **ticket_kwargs(type="lost_item", now=now)).priority == 4
    assert create_ticket(session, **ticket_kwargs(type="feedback", priority=2, now=now)).priority == 2
    assert [default_priority(t) for t in ("refund", "handoff", "group_booking")] == [4, 4, 4]


def test_phone_validation(session):
    assert validate_phone("138 1234 5678") == "13812345678"
    assert validate_phone("+86-138-1234-5678") == "13812345678"
    assert validate_phone("１３８１２３４５６７８") == "13812345678"
    assert validate_phone(None) is None and validate_phone("  ") is None
    for bad in ("12345678901", "1381234567", "138123456789", "010-12345678", "13812345678 13912345678"):
        with pytest.raises(ValueError):
            validate_phone(bad)
    with pytest.raises(ValueError):
        create_ticket(session, **ticket_kwargs(phone="110"))
    t = create_ticket(session, **ticket_kwargs(phone="+86 139 0000 1111", name=None, now=local(2025, 3, 14)))
    assert t.contact_phone == "13900001111" and t.contact_name is None
    assert session.execute(select(func.count()).select_from(Ticket)).scalar_one() == 1


# --------------------------------------------------------------------------- transitions and history
def test_transitions_and_history(session):
    t = create_ticket(session, **ticket_kwargs(now=local(2025, 3, 14)))
    session.commit()
    assert [e.action for e in t.history] == ["created"]

    transition(session, t, actor="alice", status="claimed")
    assert t.status == "claimed" and t.assignee == "alice"
    transition(session, t, actor="alice", status="open", note="wrong desk")
    assert t.status == "open" and t.assignee is None
    transition(session, t, actor="bob", status="claimed", category="服务态度")
    transition(session, t, actor="bob", status="resolved", resolution="refunded")
    transition(session, t, actor="bob", status="open")  # reopen
    transition(session, t, actor="bob", status="resolved", resolution="refunded twice")
    transition(session, t, actor="sup", status="closed")
    session.commit()

    for bad in ("open", "claimed", "resolved", "closed", "bogus"):
        with pytest.raises(ValueError):
            transition(session, t, actor="x", status=bad)

    session.expire(t, ["history"])
    actions = [e.action for e in t.history]
    assert actions == ["created", "claimed", "unclaimed", "claimed", "resolved", "reopened", "resolved", "closed"]
    claimed, unclaimed, reclaimed = t.history[1], t.history[2], t.history[3]
    assert claimed.detail["before"] == {"status": "open", "assignee": None}
    assert claimed.detail["after"] == {"status": "claimed", "assignee": "alice"}
    assert unclaimed.detail["after"] == {"status": "open", "assignee": None} and unclaimed.detail["note"] == "wrong desk"
    assert reclaimed.detail["after"]["category"] == "服务态度" and reclaimed.actor == "bob"
    assert t.history[-1].detail == {"before": {"status": "resolved"}, "after": {"status": "closed"}}
    assert t.resolution == "refunded twice" and t.status == "closed"


def test_invalid_moves_and_direct_resolve(session):
    t = create_ticket(session, **ticket_kwargs(now=local(2025, 3, 14)))
    with pytest.raises(ValueError):
        transition(session, t, actor="a", status="closed")  # open → closed is not allowed
    transition(session, t, actor="a", status="resolved", resolution="answered by bot")
    with pytest.raises(ValueError):
        transition(session, t, actor="a", status="claimed")
    assert [e.action for e in t.history] == ["created", "resolved"]


def test_followup_and_notes(session):
    t = create_ticket(session, **ticket_kwargs(now=local(2025, 3, 14)))
    when = local(2025, 3, 16, 14)
    transition(session, t, actor="alice", followup_at=when)
    assert t.followup_status == "scheduled" and t.followup_at == naive_utc(when)
    transition(session, t, actor="alice", note="called, no answer")
    transition(session, t, actor="alice", followup_done=True)
    assert t.followup_status == "done"
    assert transition(session, t, actor="alice") is t  # nothing to record
    assert [e.action for e in t.history] == ["created", "followup_scheduled", "note", "followup_done"]
    assert t.history[1].detail["after"] == {"followup_at": "2025-03-16T06:00:00", "followup_status": "scheduled"}
    assert t.history[2].detail == {"before": {}, "after": {}, "note": "called, no answer"}


def test_concurrent_claim_loses(factory):
    with factory() as s:
        number = create_ticket(s, **ticket_kwargs(now=local(2025, 3, 14))).number
        s.commit()
    s1, s2 = factory(), factory()
    t1, t2 = get_by_number(s1, number), get_by_number(s2, number)
    transition(s1, t1, actor="alice", status="claimed")
    s1.commit()
    with pytest.raises(ValueError, match="concurrently"):
        transition(s2, t2, actor="bob", status="claimed")  # t2 still says "open"
    assert t2.status == "claimed" and t2.assignee == "alice"
    s2.rollback()
    s1.close()
    s2.close()


def test_list_tickets(session):
    now = local(2025, 3, 14, 10)
    emergency = create_ticket(session, **ticket_kwargs(type="emergency", now=now))
    onsite = create_ticket(session, **ticket_kwargs(onsite=True, now=now))
    plain = create_ticket(session, **ticket_kwargs(now=now))
    lost = create_ticket(session, **ticket_kwargs(type="lost_item", now=now))
    transition(session, plain, actor="a", status="resolved")
    session.commit()
    assert [t.number for t in list_tickets(session)] == [emergency.number, onsite.number, plain.number, lost.number]
    assert list_tickets(session, type="complaint", status="open") == [onsite]
    assert list_tickets(session, priority=4) == [lost]
    later = now + dt.timedelta(minutes=30)  # emergency (5 min) and on-site (10 min) are overdue
    assert list_tickets(session, overdue=True, now=later) == [emergency, onsite]
    next_week = now + dt.timedelta(days=7)  # resolved tickets are never overdue
    assert list_tickets(session, overdue=True, now=next_week) == [emergency, onsite, lost]
    assert len(list_tickets(session, limit=2)) == 2


# --------------------------------------------------------------------------- masking
def test_masked(session):
    t = create_ticket(
        session,
        **ticket_kwargs(
            facts={"summary": "请回电 13912345678", "nested": ["备用 +86 137 0000 2222"]},
            transcript=[{"from": "patron", "text": "我的电话13812345678"}],
            now=local(2025, 3, 14),
        ),
    )
    m = masked(t)
    assert m["contact_phone"] == "138****5678"
    assert m["contact_name"] == "张*"
    assert m["facts"]["summary"] == "请回电 139****5678"
    assert "13812345678" not in json.dumps(m, ensure_ascii=False)
    assert "13912345678" not in json.dumps(m, ensure_ascii=False)
    assert "0000 2222" not in json.dumps(m, ensure_ascii=False) and "2222" in m["facts"]["nested"][0]
    bare = create_ticket(session, **ticket_kwargs(phone=None, name=None, now=local(2025, 3, 14)))
    assert masked(bare)["contact_phone"] is None and masked(bare)["contact_name"] is None
    assert m["transcript_messages"] == 1 and "transcript" not in m
    assert m["number"] == t.number and m["reply_due"] == t.reply_due.isoformat()
    assert t.facts["summary"] == "请回电 13912345678"  # the ticket itself is untouched


# --------------------------------------------------------------------------- durable queue
def _unreachable_sqlite(tmp_path: Path) -> sessionmaker:
    # plain create_engine: bot.db.make_engine would create the missing directory
    engine = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}", future=True)
    return sessionmaker(bind=engine, future=True)


def test_durable_queue_when_database_down(tmp_path, factory):
    queue_dir = tmp_path / "queue"
    down = TicketWriter(_unreachable_sqlite(tmp_path), queue_dir)
    submitted_at = local(2025, 3, 14, 22, 15)
    receipt = down.submit(**ticket_kwargs(onsite=True, transcript=[{"text": "没声音"}], now=submitted_at))
    assert isinstance(receipt, Receipt)
    assert receipt.queued is True and receipt.number is None and receipt.client_ref
    assert receipt.reply_due == naive_utc(submitted_at) + dt.timedelta(minutes=10)
    files = down.pending()
    assert len(files) == 1 and receipt.client_ref in files[0].name
    payload = json.loads(files[0].read_text(encoding="utf-8"))
    assert payload["kwargs"]["facts"] == {"hall": "3号厅", "summary": "声音太小"}
    assert not list(queue_dir.glob(".*.tmp"))

    # invalid requests are rejected up front, never queued
    with pytest.raises(ValueError):
        down.submit(**ticket_kwargs(phone="12345"))
    assert len(down.pending()) == 1
    assert down.flush() == 0 and len(down.pending()) == 1  # still down: the file stays

    up = TicketWriter(factory, queue_dir)  # e.g. after a restart, database back
    keep = files[0].read_bytes()
    assert up.flush() == 1
    assert up.pending() == []
    with factory() as s:
        tickets = s.execute(select(Ticket)).scalars().all()
        assert len(tickets) == 1
        t = tickets[0]
        assert t.client_ref == receipt.client_ref
        assert t.facts == {"hall": "3号厅", "summary": "声音太小"}
        assert t.contact_phone == "13812345678" and t.contact_name == "张三"
        assert t.transcript == [{"text": "没声音"}] and t.priority == 2
        assert t.created_at == naive_utc(submitted_at)  # original time, not replay time
        assert t.reply_due == receipt.reply_due
        assert t.number == "T20250314-0001"

    assert up.flush() == 0  # flushing twice is harmless
    # a crash after commit but before the delete leaves the file behind: replay is idempotent
    files[0].write_bytes(keep)
    assert up.flush() == 1 and up.pending() == []
    with factory() as s:
        assert s.execute(select(func.count()).select_from(Ticket)).scalar_one() == 1
        assert s.execute(select(TicketCounter.last)).scalar_one() == 1


def test_durable_queue_postgres_closed_port_and_order(tmp_path, factory):
    engine = create_engine("postgresql://postgres@127.0.0.1:1/test", future=True, connect_args={"connect_timeout": 3})
    down = TicketWriter(sessionmaker(bind=engine, future=True), tmp_path / "q")
    refs = [down.submit(**ticket_kwargs(sender_id=f"p{i}", now=local(2025, 3, 14))).client_ref for i in range(3)]
    assert [p.name.split("-", 1)[1][: -len(".json")] for p in down.pending()] == refs

    flushed: list[tuple[str, str]] = []
    up = TicketWriter(factory, tmp_path / "q", on_flushed=lambda ref, t: flushed.append((ref, t.number)))
    assert up.flush() == 3
    assert flushed == [(ref, f"T20250314-{i:04d}") for i, ref in enumerate(refs, start=1)]
    with factory() as s:
        assert [t.sender_id for t in list_tickets(s)] == ["p0", "p1", "p2"]


def test_submit_commits_directly_when_database_up(tmp_path, factory):
    writer = TicketWriter(factory, tmp_path / "q")
    r = writer.submit(**ticket_kwargs(now=local(2025, 3, 14)))
    assert r.queued is False and r.number == "T20250314-0001"
    assert writer.pending() == []
    again = writer.submit(**ticket_kwargs(now=local(2025, 3, 14), client_ref=r.client_ref))
    assert again.number == r.number


def test_background_flusher_and_dead_letter(tmp_path, factory):
    queue_dir = tmp_path / "q"
    TicketWriter(_unreachable_sqlite(tmp_path), queue_dir).submit(**ticket_kwargs(now=local(2025, 3, 14)))
    (queue_dir / "00000000000000000001-broken.json").write_text("{not json", encoding="utf-8")
    writer = TicketWriter(factory, queue_dir)
    writer.start_background_flusher(interval=0.05)
    try:
        deadline = time.monotonic() + 10
        while writer.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        writer.stop_background_flusher()
    assert writer.pending() == []
    assert [p.name for p in (queue_dir / "failed").iterdir()] == ["00000000000000000001-broken.json"]
    with factory() as s:
        assert s.execute(select(func.count()).select_from(Ticket)).scalar_one() == 1


# --------------------------------------------------------------------------- the number owed after an outage
def test_a_replayed_ticket_owes_its_number_once(tmp_path, factory):
    from bot.tickets import notice

    queue_dir = tmp_path / "q"
    direct = TicketWriter(factory, queue_dir).submit(**ticket_kwargs(sender_id="told", now=local(2025, 3, 14)))
    queued = TicketWriter(_unreachable_sqlite(tmp_path), queue_dir).submit(**ticket_kwargs(now=local(2025, 3, 14)))
    keep = TicketWriter(factory, queue_dir).pending()[0].read_bytes()
    up = TicketWriter(factory, queue_dir)
    assert up.flush() == 1
    with factory() as s:
        owed = notice.owed(s)
        assert [(o.number, o.ref, o.sender_id, o.channel) for o in owed] == [
            ("T20250314-0002", queued.client_ref[:8], "u1", "wechat")]   # the directly stored one owes nothing
        assert get_by_number(s, direct.number).number_notice is None
        assert notice.claim(s, owed[0].ticket_id)
        s.commit()
        assert notice.owed(s) == []                       # claimed: not offered to another notifier
        notice.settle(s, owed[0].ticket_id, notice.SENT, note="已告知")
        s.commit()
    # the file replayed again (a crash between commit and delete): the debt is not revived
    (queue_dir / "00000000000000000001-x.json").write_bytes(keep)
    assert up.flush() == 1
    with factory() as s:
        t = get_by_number(s, "T20250314-0002")
        assert t.number_notice == notice.SENT and notice.owed(s) == []
        assert t.history[-1].action == "note" and t.history[-1].detail["note"] == "已告知"
        assert s.execute(select(func.count()).select_from(Ticket)).scalar_one() == 2


def test_concurrent_flushers_store_and_owe_each_ticket_once_postgresql(tmp_path, pg_factory):
    """Two instances replaying the same queued requests at once (copies of the files in two queue
    directories, the worst case: no shared flush lock) store each ticket once and owe its number once."""
    import shutil
    import threading

    from bot.tickets import notice

    first = tmp_path / "a"
    down = TicketWriter(_unreachable_sqlite(tmp_path), first)
    refs = [down.submit(**ticket_kwargs(sender_id=f"p{i}", now=local(2025, 3, 14))).client_ref for i in range(8)]
    shutil.copytree(first, tmp_path / "b")
    writers = [TicketWriter(pg_factory, tmp_path / d) for d in ("a", "b", "a")]   # two on a: the flock
    start = threading.Barrier(len(writers))
    done = []

    def run(w):
        start.wait()
        done.append(w.flush())

    threads = [threading.Thread(target=run, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(done) == [0, 8, 8]     # each directory flushed completely, once (a's second flusher: nothing)
    assert not list((tmp_path / "a").glob("*.json")) and not list((tmp_path / "b").glob("*.json"))
    with pg_factory() as s:
        rows = s.execute(select(Ticket.client_ref, Ticket.number_notice)).all()
        assert sorted(r.client_ref for r in rows) == sorted(refs)
        assert {r.number_notice for r in rows} == {notice.DUE}
        assert len(notice.owed(s)) == 8


def test_only_one_notifier_claims_a_debt_postgresql(tmp_path, pg_factory):
    import threading

    from bot.tickets import notice

    TicketWriter(_unreachable_sqlite(tmp_path), tmp_path / "q").submit(**ticket_kwargs(now=local(2025, 3, 14)))
    assert TicketWriter(pg_factory, tmp_path / "q").flush() == 1
    with pg_factory() as s:
        (owed,) = notice.owed(s)
    start = threading.Barrier(6)
    wins = []

    def claim():
        with pg_factory() as s:
            start.wait()
            won = notice.claim(s, owed.ticket_id)
            s.commit()
            wins.append(won)

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(wins) == [False] * 5 + [True]
    with pg_factory() as s:
        later = dt.datetime.utcnow() + dt.timedelta(seconds=notice.LEASE_S + 1)
        assert notice.owed(s) == [] and len(notice.owed(s, now=later)) == 1   # an abandoned claim comes back
        notice.release(s, owed.ticket_id)                                      # Rasa did not answer: retry
        s.commit()
        assert notice.claim(s, owed.ticket_id)
        notice.settle(s, owed.ticket_id, notice.DESK, note="请联系顾客告知工单号")
        s.commit()
        assert notice.owed(s, now=later) == [] and not notice.claim(s, owed.ticket_id)


# --------------------------------------------------------------------------- handoff
def test_handoff_queue_position_claim_release(session):
    t0 = local(2025, 3, 14, 10)
    handoff.request_human(session, "a", "wechat", 3, "T20250314-0001", t0)
    handoff.request_human(session, "b", "wechat", 3, None, t0 + dt.timedelta(minutes=1))
    handoff.request_human(session, "c", "web", 1, "T20250314-0003", t0 + dt.timedelta(minutes=2))
    handoff.request_human(session, "d", "web", 2, None, t0 + dt.timedelta(minutes=3))
    session.commit()
    assert [c.sender_id for c in handoff.queue(session)] == ["c", "d", "a", "b"]
    assert [handoff.position(session, s) for s in "cdab"] == [1, 2, 3, 4]
    assert handoff.position(session, "nobody") is None

    # asking again keeps the place; a higher priority moves up
    again = handoff.request_human(session, "b", "wechat", 2, "T20250314-0009", t0 + dt.timedelta(minutes=5))
    assert again.queued_at == naive_utc(t0 + dt.timedelta(minutes=1)) and again.priority == 2
    assert again.ticket_number == "T20250314-0009"
    assert [c.sender_id for c in handoff.queue(session)] == ["c", "b", "d", "a"]

    conv = handoff.claim(session, "c", "alice")
    assert conv.state == "agent" and conv.agent == "alice" and conv.queued_at is None
    assert handoff.claim(session, "c", "alice").agent == "alice"  # idempotent for the same agent
    with pytest.raises(ValueError):
        handoff.claim(session, "c", "bob")
    with pytest.raises(ValueError):
        handoff.claim(session, "zzz", "bob")
    assert handoff.position(session, "c") is None and handoff.position(session, "b") == 1
    # a patron already with an agent stays there when asking again
    assert handoff.request_human(session, "c", "web", 1, None, t0 + dt.timedelta(minutes=6)).state == "agent"

    with pytest.raises(ValueError):
        handoff.release(session, "c", agent="bob")
    conv = handoff.release(session, "c", agent="alice")
    assert conv.state == "bot" and conv.agent is None
    assert handoff.release(session, "nobody") is None
    session.commit()
    assert session.get(Conversation, "c").state == "bot"


def test_handoff_concurrent_claim(factory):
    with factory() as s:
        handoff.request_human(s, "a", "wechat", 3, None, local(2025, 3, 14))
        s.commit()
    s1, s2 = factory(), factory()
    handoff.claim(s1, "a", "alice")
    s1.commit()
    with pytest.raises(ValueError):
        handoff.claim(s2, "a", "bob")
    s2.rollback()
    s1.close()
    s2.close()


def test_handoff_expiry(session):
    t0 = local(2025, 3, 14, 10)
    handoff.request_human(session, "old", "wechat", 3, None, t0)
    handoff.request_human(session, "new", "wechat", 3, None, t0 + dt.timedelta(minutes=9))
    handoff.request_human(session, "taken", "wechat", 1, None, t0)
    handoff.claim(session, "taken", "alice")
    expired = handoff.expire_waiting(session, 600, t0 + dt.timedelta(minutes=10))
    assert expired == ["old"]
    assert session.get(Conversation, "old").state == "bot"
    assert handoff.get_conversation(session, "taken").state == "agent"
    assert [c.sender_id for c in handoff.queue(session)] == ["new"]
    assert handoff.expire_waiting(session, 600, t0 + dt.timedelta(minutes=10)) == []


def test_agent_presence(session):
    now = local(2025, 3, 14, 10)
    handoff.heartbeat(session, "alice", now=now)
    handoff.heartbeat(session, "bob", now=now - dt.timedelta(seconds=30))
    handoff.heartbeat(session, "carol", now=now - dt.timedelta(minutes=5))  # stale
    handoff.heartbeat(session, "dave", online=False, now=now)
    session.commit()
    assert handoff.agents_online(session, now) == ["alice", "bob"]
    assert handoff.agents_online(session, now, stale_after_s=10) == ["alice"]
    handoff.heartbeat(session, "alice", online=False, now=now)
    handoff.heartbeat(session, "carol", now=now)
    assert handoff.agents_online(session, now) == ["bob", "carol"]
    assert session.execute(select(func.count()).select_from(AgentPresence)).scalar_one() == 4


def test_in_service_hours():
    assert handoff.in_service_hours(local(2025, 3, 14, 9, 0))
    assert handoff.in_service_hours(local(2025, 3, 14, 23, 59))
    assert not handoff.in_service_hours(local(2025, 3, 14, 8, 59))
    assert not handoff.in_service_hours(local(2025, 3, 15, 0, 0))
    assert handoff.in_service_hours(dt.datetime(2025, 3, 14, 1, 0))  # naive = UTC = 09:00 Shanghai
    assert not handoff.in_service_hours(dt.datetime(2025, 3, 14, 0, 59))
    assert handoff.in_service_hours(local(2025, 3, 14, 23), start="22:00", end="02:00")
    assert handoff.in_service_hours(local(2025, 3, 14, 1), start="22:00", end="02:00")
    assert not handoff.in_service_hours(local(2025, 3, 14, 12), start="22:00", end="02:00")
