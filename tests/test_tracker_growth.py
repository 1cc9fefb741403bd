"""The bounded tracker store (bot.conversations): per-turn work independent of history, finished sessions in
the SQL archive and still on the desk, forms surviving the move, returning patrons carrying chosen slots.

Unit tests run against the Redis on 127.0.0.1:6379 (own key prefix, deleted afterwards) and a SQLite
archive; the end-to-end tests start the real servers with the store `make run` configures."""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT


def _redis():
    redis = pytest.importorskip("redis")
    client = redis.Redis(socket_connect_timeout=0.5, decode_responses=True)
    try:
        client.ping()
    except Exception:
        pytest.fail("no Redis on 127.0.0.1:6379 (it runs on every machine, CI's included)")
    return client


def _delete_prefix(client, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture()
def store(tmp_path):
    from rasa.shared.core.domain import Domain

    from bot.conversations.redis_store import CompactRedisTrackerStore

    client = _redis()
    prefix = f"growthtest{uuid.uuid4().hex[:8]}"
    s = CompactRedisTrackerStore(Domain.load(str(ROOT / "domain.yml")), host="127.0.0.1", key_prefix=prefix,
                                 archive_url=f"sqlite:///{tmp_path / 'tracker.db'}", max_turns=8, keep_turns=4,
                                 start_archiver=False)
    yield s
    _delete_prefix(client, prefix)


def _start_session(tracker, ts: float, slots=None) -> None:
    from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet

    tracker.update(ActionExecuted("action_session_start", timestamp=ts))
    tracker.update(SessionStarted(timestamp=ts))
    for k, v in (slots or {}).items():
        tracker.update(SlotSet(k, v, timestamp=ts))
    tracker.update(ActionExecuted("action_listen", timestamp=ts))


def _turn(tracker, text: str, ts: float, intent: str = "ask_parking", slots=None, loop=None) -> None:
    """One patron message and the bot's answer, as Rasa logs them."""
    from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SlotSet, UserUttered

    tracker.update(UserUttered(text, {"name": intent, "confidence": 1.0}, timestamp=ts))
    tracker.update(ActionExecuted("action_answer_topic", timestamp=ts))
    tracker.update(BotUttered(f"答：{text}", timestamp=ts))
    if loop is not None:
        tracker.update(ActiveLoop(loop or None, timestamp=ts))
    for k, v in (slots or {}).items():
        tracker.update(SlotSet(k, v, timestamp=ts))
    tracker.update(ActionExecuted("action_listen", timestamp=ts))


def _users(tracker):
    from rasa.shared.core.events import UserUttered

    return [e.text for e in tracker.events if isinstance(e, UserUttered)]


async def _open(store, sender: str, ts: float):
    """A new patron's tracker, its session started at ``ts`` (as Rasa's processor does)."""
    tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
    _start_session(tracker, ts)
    return tracker


async def _chat(store, sender: str, texts, start: float, **kw):
    for i, text in enumerate(texts):
        tracker = await store.retrieve(sender)
        _turn(tracker, text, start + i, **kw)
        await store.save(tracker)


async def test_turns_are_appended_and_the_working_view_stays_bounded(store):
    sender = "patron-long"
    now = time.time() - 600
    tracker = await _open(store, sender, now)
    await store.save(tracker)
    texts = [f"第{i}条" for i in range(60)]
    tracker = await store.retrieve(sender)
    _turn(tracker, texts[0], now + 1, slots={"film": "星际归途", "phone": "13812345678"})
    await store.save(tracker)
    await _chat(store, sender, texts[1:], now + 2)

    view = await store.retrieve(sender)
    assert store.keep_turns <= len(_users(view)) <= store.max_turns
    assert _users(view) == texts[-len(_users(view)):]
    assert view.get_slot("film") == "星际归途" and view.get_slot("phone") == "13812345678"
    # every event is in Redis exactly once: the list only grows by the new events of each turn
    full = await store.retrieve_full_tracker(sender)
    assert _users(full) == texts
    assert store.red.llen(store.key(sender, "events")) == len(full.events)


async def test_old_session_moves_to_the_archive_and_stays_in_the_transcript(store):
    from bot.conversations.archiver import Archiver
    from bot.services.desk import transcript

    sender = "patron-returning"
    day = 86400.0
    old = time.time() - 3 * day
    tracker = await _open(store, sender, old)
    for i in range(5):
        _turn(tracker, f"旧会话{i}", old + i)
    await store.save(tracker)
    tracker = await store.retrieve(sender)
    _start_session(tracker, time.time() - 5)
    _turn(tracker, "新会话", time.time() - 4)
    await store.save(tracker)

    moved = Archiver(store).run_once()
    assert moved > 0
    hot = [json.loads(e) for e in store.red.lrange(store.key(sender, "events"), 0, -1)]
    assert [e["text"] for e in hot if e["event"] == "user"] == ["新会话"]
    assert [e["text"] for e in store.archive.events(sender) if e["event"] == "user"] == [f"旧会话{i}" for i in range(5)]
    full = await store.retrieve_full_tracker(sender)
    lines = [x["text"] for x in transcript(e.as_dict() for e in full.events) if x["who"] == "patron"]
    assert lines == [f"旧会话{i}" for i in range(5)] + ["新会话"]
    # Rasa works on the current session only
    assert _users(await store.retrieve(sender)) == ["新会话"]


async def test_a_form_in_progress_survives_the_cut_and_the_move(store):
    from bot.conversations.archiver import Archiver

    sender = "patron-form"
    now = time.time() - 600
    tracker = await _open(store, sender, now)
    await store.save(tracker)
    await _chat(store, sender, [f"闲聊{i}" for i in range(12)], now + 1)
    tracker = await store.retrieve(sender)
    _turn(tracker, "我要投诉空调太冷", now + 20, intent="complain", loop="complaint_form",
          slots={"requested_slot": "complaint_when", "complaint_detail": "空调太冷"})
    await store.save(tracker)
    # the form runs longer than the view keeps turns, so the cut has to fall inside it
    await _chat(store, sender, [f"补充{i}" for i in range(store.max_turns + 2)], now + 30,
                slots={"requested_slot": "complaint_wish"})
    archiver = Archiver(store, idle_minutes=0)       # also folds the (idle) patron into the meta hash
    assert archiver.run_once() > 0
    assert store.red.llen(store.key(sender, "events")) == 0
    assert store.red.ttl(store.key(sender, "meta")) > 0      # all of it in SQL: the meta hash may expire

    view = await store.retrieve(sender)
    assert view.active_loop_name == "complaint_form"
    assert view.get_slot("requested_slot") == "complaint_wish"
    assert view.get_slot("complaint_detail") == "空调太冷"
    assert _users(view)[-1] == f"补充{store.max_turns + 1}"
    # and the next answer continues from there, appended after the archived history
    _turn(view, "希望调高温度", now + 60, slots={"complaint_wish": "希望调高温度"})
    await store.save(view)
    assert store.red.ttl(store.key(sender, "meta")) == -1     # active again: kept
    again = await store.retrieve(sender)
    assert again.active_loop_name == "complaint_form" and again.get_slot("complaint_wish") == "希望调高温度"
    full = await store.retrieve_full_tracker(sender)
    assert _users(full)[-1] == "希望调高温度" and "我要投诉空调太冷" in _users(full)


async def test_an_expired_session_carries_only_the_chosen_slots(store):
    sender = "patron-expired"
    old = time.time() - 2 * 86400
    tracker = await _open(store, sender, old)
    _turn(tracker, "IMAX周六多少钱", old + 1, slots={"hall_type": "IMAX", "phone": "13812345678",
                                                   "contact_name": "李女士", "topic_context": {"topic": "price"}})
    await store.save(tracker)
    view = await store.retrieve(sender)
    slots = {k: v for k, v in view.current_slot_values().items() if v is not None}
    assert slots.get("phone") == "13812345678" and slots.get("contact_name") == "李女士"
    assert "hall_type" not in slots and "topic_context" not in slots
    # Rasa still sees the last message, so it knows the session has expired and starts a new one
    assert _users(view) == ["IMAX周六多少钱"]


def test_save_of_a_replaced_conversation_keeps_the_old_events(store):
    import asyncio

    from rasa.shared.core.trackers import DialogueStateTracker

    sender = "patron-replaced"

    async def go():
        tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
        _start_session(tracker, time.time() - 100)
        _turn(tracker, "原来的", time.time() - 99)
        await store.save(tracker)
        fresh = DialogueStateTracker(sender, store.domain.slots)
        _start_session(fresh, time.time() - 10)
        _turn(fresh, "替换的", time.time() - 9)
        await store.save(fresh)
        return await store.retrieve(sender), await store.retrieve_full_tracker(sender)
    view, full = asyncio.run(go())
    assert _users(view) == ["替换的"] and _users(full) == ["原来的", "替换的"]


# --------------------------------------------------------------------------- end to end
IDLE_MINUTES = 0.2          # 12 s: long enough for a turn on a busy 2-core machine, short enough to wait for


@pytest.fixture(scope="module")
def growth_stack(tmp_path_factory):
    import os

    from bot import runtime_config
    from tests.stack import start_stack

    model = os.environ.get("XINGHE_MODEL")
    if not model:
        pytest.fail("XINGHE_MODEL is not set: run the suite through `make test`")
    client = _redis()
    workdir = tmp_path_factory.mktemp("growth-stack")
    prefix = f"growthe2e{uuid.uuid4().hex[:8]}"
    saved = {k: os.environ.get(k) for k in ("TRACKER_STORE", "TRACKER_KEY_PREFIX")}
    os.environ.update(TRACKER_STORE="redis", TRACKER_KEY_PREFIX=prefix)
    try:
        cfg = dict(runtime_config.endpoints()["tracker_store"])   # what `make run` writes
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    assert cfg["type"] == "bot.conversations.redis_store.CompactRedisTrackerStore"
    archive = f"sqlite:///{workdir / 'tracker.db'}"
    cfg.update(max_turns=4, keep_turns=2, archive_interval=1)
    s = start_stack(model, workdir, tracker_store=cfg,
                    extra_env={"TRACKER_DB_URL": archive, "SESSION_IDLE_MINUTES": str(IDLE_MINUTES)})
    s.env["archive"] = archive
    s.env["prefix"] = prefix
    yield s
    s.stop()
    _delete_prefix(client, prefix)


def _full_tracker(stack, sender: str) -> dict:
    r = requests.get(f"{stack.rasa}/conversations/{sender}/tracker",
                     params={"token": stack.token, "include_events": "AFTER_RESTART"}, timeout=30)
    r.raise_for_status()
    return r.json()


@pytest.mark.e2e
def test_e2e_returning_patron_old_transcript_on_desk_and_fresh_session(growth_stack):
    from bot.conversations.archive import Archive
    from bot.services.desk import transcript

    stack, sender = growth_stack, f"e2e-return-{uuid.uuid4().hex[:6]}"
    assert "85元" in stack.text(sender, "IMAX周六多少钱")
    r = requests.post(f"{stack.rasa}/conversations/{sender}/tracker/events", params={"token": stack.token},
                      json=[{"event": "slot", "name": "phone", "value": "13812345678"}], timeout=30)
    r.raise_for_status()
    assert "每小时5元" in stack.text(sender, "停车怎么收费")
    time.sleep(IDLE_MINUTES * 60 + 3)       # the session expires; the archiver (every 1 s) moves it out

    client = _redis()
    key = f"{stack.env['prefix']}:conv:{sender}:events"
    deadline = time.time() + 20
    while client.llen(key) and time.time() < deadline:
        time.sleep(0.5)
    assert client.llen(key) == 0
    archived = [e.get("text") for e in Archive(stack.env["archive"]).events(sender) if e.get("event") == "user"]
    assert archived == ["IMAX周六多少钱", "停车怎么收费"]
    lines = [x["text"] for x in transcript(_full_tracker(stack, sender)["events"]) if x["who"] == "patron"]
    assert lines == ["IMAX周六多少钱", "停车怎么收费"]   # what the desk shows, read through Rasa's API

    # back after the idle time: a fresh session that knows the phone, not the old price question
    assert "每小时5元" in stack.text(sender, "停车怎么收费")
    tracker = _full_tracker(stack, sender)
    assert tracker["slots"].get("phone") == "13812345678"
    assert tracker["slots"].get("hall_type") in (None, "")
    starts = [i for i, e in enumerate(tracker["events"]) if e.get("event") == "session_started"]
    assert len(starts) == 2
    lines = [x["text"] for x in transcript(tracker["events"]) if x["who"] == "patron"]
    assert lines == ["IMAX周六多少钱", "停车怎么收费", "停车怎么收费"]


@pytest.mark.e2e
def test_e2e_form_in_progress_survives_cut_and_archiving(growth_stack):
    from bot.db import session_scope
    from bot.models import Ticket

    stack, sender = growth_stack, f"e2e-form-{uuid.uuid4().hex[:6]}"
    for text in ["停车怎么收费", "谢谢", "有母婴室吗", "IMAX周六多少钱", "那周二呢"]:
        assert stack.text(sender, text)
    first = stack.text(sender, "空调太冷了，根本没人管，什么服务啊")
    assert "抱歉" in first or "理解" in first
    answers = []
    for text in ["7号厅今晚7点那场", "希望调高温度，给个说法", "13812345678"]:
        time.sleep(1.5)                     # the archiver moves the cut-off turns while the form runs
        answers.append(stack.text(sender, text))
    assert "工单号T" in answers[-1], answers
    number = answers[-1].split("工单号")[1][:14]
    with session_scope(stack.db_url) as session:
        ticket = session.query(Ticket).filter_by(number=number).one()
        assert ticket.type == "complaint" and ticket.contact_phone == "13812345678" and ticket.sender_id == sender
    client = _redis()
    meta = client.hgetall(f"{stack.env['prefix']}:conv:{sender}:meta")
    assert int(meta["archived"]) > 0        # earlier turns left the hot store during the form


# --------------------------------------------------------------------------- the SQL variant
@pytest.fixture(params=["sqlite", "postgresql"])
def sql_store(request, tmp_path):
    from rasa.shared.core.domain import Domain

    from bot.conversations.sql_store import CompactSQLTrackerStore

    domain = Domain.load(str(ROOT / "domain.yml"))
    if request.param == "sqlite":
        yield CompactSQLTrackerStore(domain, dialect="sqlite", db=str(tmp_path / "tracker.db"), max_turns=8,
                                     keep_turns=4)
        return
    sa = pytest.importorskip("sqlalchemy")
    name = f"xinghe_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine("postgresql://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"no PostgreSQL on 127.0.0.1:5432 (it runs on every machine, CI's included): {exc}")
    s = CompactSQLTrackerStore(domain, dialect="postgresql", host="127.0.0.1", port=5432, username="postgres",
                               db=name, max_turns=8, keep_turns=4)
    yield s
    s.engine.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


async def test_sql_store_keeps_every_event_and_loads_a_bounded_view(sql_store):
    store, sender = sql_store, "patron-sql"
    now = time.time() - 600
    tracker = await _open(store, sender, now)
    await store.save(tracker)
    tracker = await store.retrieve(sender)
    _turn(tracker, "第0条", now + 1, slots={"film": "星际归途"})
    await store.save(tracker)
    texts = ["第0条"] + [f"第{i}条" for i in range(1, 40)]
    await _chat(store, sender, texts[1:], now + 2)
    tracker = await store.retrieve(sender)
    _turn(tracker, "我要投诉", now + 50, intent="complain", loop="complaint_form",
          slots={"requested_slot": "complaint_when"})
    await store.save(tracker)
    await _chat(store, sender, [f"补充{i}" for i in range(store.max_turns + 2)], now + 60)

    view = await store.retrieve(sender)
    assert len(_users(view)) <= store.max_turns + 1
    assert view.get_slot("film") == "星际归途" and view.active_loop_name == "complaint_form"
    full = await store.retrieve_full_tracker(sender)
    assert _users(full) == texts + ["我要投诉"] + [f"补充{i}" for i in range(store.max_turns + 2)]


async def test_sql_store_expired_session_carries_only_the_chosen_slots(sql_store):
    store, sender = sql_store, "patron-sql-expired"
    old = time.time() - 2 * 86400
    tracker = await _open(store, sender, old)
    _turn(tracker, "IMAX周六多少钱", old + 1, slots={"hall_type": "IMAX", "phone": "13812345678"})
    await store.save(tracker)
    view = await store.retrieve(sender)
    slots = {k: v for k, v in view.current_slot_values().items() if v is not None}
    assert slots.get("phone") == "13812345678" and "hall_type" not in slots
    assert _users(view) == ["IMAX周六多少钱"]
    _start_session(view, time.time(), slots={"phone": "13812345678"})
    _turn(view, "停车怎么收费", time.time())
    await store.save(view)
    again = await store.retrieve(sender)
    assert _users(again) == ["停车怎么收费"] and again.get_slot("phone") == "13812345678"
    assert _users(await store.retrieve_full_tracker(sender)) == ["IMAX周六多少钱", "停车怎么收费"]


async def test_a_replaced_conversation_of_thousands_of_events_is_stored_whole(store):
    """PUT .../tracker/events with a long history: more events than one Lua call may unpack at once."""
    from rasa.shared.core.trackers import DialogueStateTracker

    sender = "patron-huge"
    tracker = DialogueStateTracker(sender, store.domain.slots)
    start = time.time() - 3600
    _start_session(tracker, start)
    for i in range(1800):                      # 1,800 turns = 9,004 events
        _turn(tracker, f"第{i}条", start + i)
    await store.save(tracker)
    assert store.red.llen(store.key(sender, "events")) == len(tracker.events)
    view = await store.retrieve(sender)
    assert len(_users(view)) <= store.max_turns and _users(view)[-1] == "第1799条"
