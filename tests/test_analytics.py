"""The analytics the event consumer writes (bot.analytics.ingest) and the desk statistics and review queue
read (bot.analytics.read), on SQLite, from events shaped as Rasa's event broker publishes them."""
from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from bot.analytics import ingest, read
from bot.db import session_scope
from bot.models import AnalyticsTurn

T0 = dt.datetime(2026, 11, 19, 2, 0, tzinfo=dt.timezone.utc).timestamp()


def ev(sender: str, kind: str, ts: float, **kw):
    return {"sender_id": sender, "event": kind, "timestamp": ts, **kw}


def user(sender: str, ts: float, text: str, intent: str = "ask_parking", **kw):
    return ev(sender, "user", ts, text=text, input_channel=kw.pop("channel", "wechat"),
              parse_data={"text": text, "intent": {"name": intent, "confidence": 0.4}, "entities": kw.pop("entities", [])},
              **kw)


def missed_turn(sender: str, ts: float, text: str):
    return [user(sender, ts, text, "nlu_fallback"), ev(sender, "action", ts + 0.1, name="action_route"),
            ev(sender, "bot", ts + 0.2, text="抱歉，我没太明白～", metadata={"utter_action": "utter_rephrase"}),
            ev(sender, "action", ts + 0.3, name="action_listen")]


def day_bucket(ts: float) -> str:
    from bot.tickets._common import to_local

    return to_local(dt.datetime.fromtimestamp(ts, dt.timezone.utc)).date().isoformat()


@pytest.fixture()
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'a.db'}"


def test_statistics_from_the_turns(url):
    events = [
        user("p1", T0, "空调太冷"),
        user("bot-only", T0, "停车怎么收费"),
        ev("bot-only", "slot", T0 + 0.1, name="topic_context", value={"topic": "parking"}),
        user("asked", T0, "转人工", "request_human"), ev("asked", "action", T0 + 0.1, name="action_request_human"),
        ev("asked", "pause", T0 + 0.2),
        user("lost", T0, "能帮我订外卖吗", "nlu_fallback"), user("lost", T0 + 5, "能帮我订外卖吗 ", "nlu_fallback"),
        user("lost", T0 + 9, "我的手机13812345678", "nlu_fallback"),
        user("lost", T0 + 12, "/restart", "nlu_fallback"),
        user("old", T0 - 10 * 86400, "上个月的问题"),
    ]
    since = dt.datetime(2026, 11, 14, 16, 0).replace(tzinfo=dt.timezone.utc).timestamp()
    labels = [f"2026-11-{d}" for d in range(15, 21)]
    with session_scope(url) as s:
        ingest.apply(s, events)
    with session_scope(url) as s:
        bot = read.conversation_stats(s, since, labels, day_bucket, {"p1"})
        assert read.latest_turn_at(s) == dt.datetime(2026, 11, 19, 2, 0, 12)
    assert bot["totals"] == {"conversations": 4, "bot_only": 2, "bot_only_share": 0.5}  # p1 has a ticket
    assert bot["conversations"] == [0, 0, 0, 0, 4, 0] and bot["bot_only"] == [0, 0, 0, 0, 2, 0]
    assert bot["top_fallbacks"][0]["text"] == "能帮我订外卖吗" and bot["top_fallbacks"][0]["count"] == 2
    assert "/restart" not in json.dumps(bot) and len(bot["top_fallbacks"]) == 2
    assert "13812345678" not in json.dumps(bot, ensure_ascii=False)  # masked before it was stored


def test_redelivered_events_change_nothing(url):
    """The consumer acknowledges after the commit: a crash in between re-delivers the batch."""
    events = missed_turn("p", T0, "嗯嗯那个就是") + missed_turn("p", T0 + 10, "你们有啥") + [
        user("q", T0, "停车"), ev("q", "slot", T0 + 1, name="topic_context", value={"topic": "parking"})]
    with session_scope(url) as s:
        first = ingest.apply(s, events)
    with session_scope(url) as s:
        again = ingest.apply(s, events + events[:3])

    def state():
        with session_scope(url) as s:
            return [(t.sender_id, t.ts, t.text, t.missed, t.answered, t.done)
                    for t in s.query(AnalyticsTurn).order_by(AnalyticsTurn.sender_id, AnalyticsTurn.ts)]
    assert first.turns == 3 and again.turns == 0
    assert state() == [("p", T0, "嗯嗯那个就是", True, False, True), ("p", T0 + 10, "你们有啥", True, False, True),
                       ("q", T0, "停车", False, True, False)]


def test_events_are_attributed_to_their_own_turn_across_batches(url):
    """The consumer writes in batches: a turn's events may come in a later one (a spool replayed late); the
    patron's next turn, already written, does not take them."""
    with session_scope(url) as s:
        ingest.apply(s, [user("p", T0, "你们有啥", "nlu_fallback"), user("p", T0 + 60, "停车多少钱")])
    with session_scope(url) as s:  # the first turn's reply, published late (a spool replayed)
        ingest.apply(s, [ev("p", "bot", T0 + 0.5, metadata={"utter_action": "utter_clarify"})])
        ingest.apply(s, [ev("p", "slot", T0 + 60.5, name="topic_context", value={"topic": "parking"})])
    with session_scope(url) as s:
        assert [(t.missed, t.answered) for t in s.query(AnalyticsTurn).order_by(AnalyticsTurn.ts)] == \
            [(True, False), (False, True)]


def test_missed_messages_for_the_review_queue(url):
    from bot.review import queue

    now = T0 + 3600
    events = (missed_turn("p1", T0, "嗯嗯那个就是")
              # answered in the same turn: not missed
              + [user("p1", T0 + 10, "你们有啥", "nlu_fallback"),
                 ev("p1", "bot", T0 + 10.1, metadata={"utter_action": "utter_clarify"}),
                 ev("p1", "slot", T0 + 10.2, name="topic_context", value={"topic": "parking"})]
              # a button payload, and a phone number
              + missed_turn("p2", T0 + 20, "/greet") + missed_turn("p2", T0 + 30, "我的手机13812345678 怎么办")
              # still being answered (no action_listen yet, 5 s old): left for the next reading
              + [user("p3", now - 5, "那个呢", "nlu_fallback"),
                 ev("p3", "bot", now - 4.9, metadata={"utter_action": "utter_rephrase"})])
    with session_scope(url) as s:
        ingest.apply(s, events)
    with session_scope(url) as s:
        misses = read.missed_messages(s, T0 - 1, now=now)
        assert [(m.sender_id, m.text, m.masked) for m in misses] == [
            ("p1", "嗯嗯那个就是", False), ("p2", "我的手机138****5678 怎么办", True)]
        assert queue.record(s, misses) == 2
        assert queue.record(s, read.missed_messages(s, T0 - 1, now=now)) == 0  # read again: counted once
        masked = s.query(queue.ReviewItem).filter_by(sender_id="p2").one()
        assert masked.masked and "13812345678" not in masked.text
        assert [m.text for m in read.missed_messages(s, T0 - 1, now=now + 120)][-1] == "那个呢"  # settled


def test_entity_spans_survive_leading_spaces(url):
    text = "  周六IMAX多少钱"
    ents = [{"entity": "hall_type", "start": 4, "end": 8, "value": "IMAX"}]
    with session_scope(url) as s:
        ingest.apply(s, [user("p", T0, text, entities=ents)])
        turn = s.query(AnalyticsTurn).one()
        assert turn.text == "周六IMAX多少钱" and turn.entities == [{"entity": "hall_type", "start": 2, "end": 6,
                                                                 "value": "IMAX"}]


def test_shuffled_batches_give_the_same_counts(url):
    """Ordering inside one patron's events is kept by the queue; across patrons anything goes."""
    events = []
    for i in range(30):
        events += missed_turn(f"p{i}", T0 + i, f"第{i}句听不懂") if i % 3 == 0 else \
            [user(f"p{i}", T0 + i, "停车"), ev(f"p{i}", "slot", T0 + i + 0.1, name="topic_context", value={})]
    per_sender = {}
    for e in events:
        per_sender.setdefault(e["sender_id"], []).append(e)
    rng = random.Random(7)
    mixed = []
    queues = list(per_sender.values())
    while any(queues):
        q = rng.choice([q for q in queues if q])
        mixed.append(q.pop(0))
    with session_scope(url) as s:
        for i in range(0, len(mixed), 7):
            ingest.apply(s, mixed[i:i + 7])
    with session_scope(url) as s:
        assert len(read.missed_messages(s, 0, now=T0 + 9999)) == 10
        assert s.query(AnalyticsTurn).filter_by(answered=True).count() == 20


def test_backfill_reads_a_tracker_store_through_rasa(url, tmp_path, monkeypatch):
    """After the upgrade the conversations already in the tracker store (here Rasa's SQLTrackerStore) are
    read into the turns once; reading again adds nothing."""
    import time

    import yaml

    from bot.analytics.__main__ import main
    from tests.test_review import action, bot, save_trackers_sql, slot, user as tracker_user

    now = time.time()
    tracker_url = save_trackers_sql(tmp_path / "tracker.db", {
        "old-a": [tracker_user("停车怎么收费", "ask_parking", ts=now - 3600), action("action_route"),
                  slot("topic_context", {"topic": "parking"}), action("action_listen")],
        "old-b": [tracker_user("嗯嗯那个就是", ts=now - 60), action("action_route"), bot("utter_rephrase"),
                  action("action_listen")]})
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(yaml.safe_dump({"tracker_store": {"type": "SQL", "dialect": "sqlite",
                                                           "db": tracker_url.split("///", 1)[1]}}))
    monkeypatch.setenv("KNOWLEDGE_DB_URL", url)
    assert main(["backfill", "--endpoints", str(endpoints)]) == 0
    assert main(["backfill", "--endpoints", str(endpoints)]) == 0
    with session_scope(url) as s:
        assert sorted((t.sender_id, t.text, t.answered, t.missed, t.done) for t in s.query(AnalyticsTurn)) == [
            ("old-a", "停车怎么收费", True, False, True), ("old-b", "嗯嗯那个就是", False, True, True)]
        assert [m.text for m in read.missed_messages(s, now - 7200)] == ["嗯嗯那个就是"]
