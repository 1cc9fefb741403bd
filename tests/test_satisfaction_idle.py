"""The rating asked after inactivity: which conversations are due (the selection rule on the analytics turns,
SQLite), and which web chat pages count as connected. The browser test is tests/test_inactivity_browser.py."""
from __future__ import annotations

import datetime as dt

import pytest

NOW = dt.datetime(2026, 12, 2, 6, 0, 0)  # naive UTC
IDLE = dt.timedelta(minutes=10)


@pytest.fixture()
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'idle.db'}"


def _turn(s, sender: str, minutes_ago: float, *, channel: str = "socketio", intent: str = "ask_parking",
          payload: bool = False, done: bool = True, human: bool = False) -> None:
    from bot.models import AnalyticsTurn

    at = NOW - dt.timedelta(minutes=minutes_ago)
    s.add(AnalyticsTurn(sender_id=sender, ts=at.replace(tzinfo=dt.timezone.utc).timestamp(), at=at, channel=channel,
                        text="/greet" if payload else "停车怎么收费", masked=False, payload=payload, intent=intent,
                        entities=[], answered=True, missed=False, human=human, done=done))


def _due(db, now=NOW, **kw):
    from bot.db import session_scope
    from bot.tickets import satisfaction

    with session_scope(db) as s:
        return {c.sender_id: c for c in satisfaction.idle_conversations(s, IDLE, now, **kw)}


def test_who_is_asked_after_inactivity(db):
    from bot.db import session_scope
    from bot.models import Conversation, SatisfactionRating
    from bot.tickets import store as tickets

    with session_scope(db) as s:
        _turn(s, "quiet", 14, payload=True, intent="greet")       # opened the chat,
        _turn(s, "quiet", 12)                                      # asked, was answered, went quiet
        _turn(s, "wechat", 11, channel="wechat")
        _turn(s, "recent", 12)
        _turn(s, "recent", 4)                                      # still talking
        _turn(s, "gone", 125)                                      # quiet for two hours: over, unasked
        _turn(s, "greeted", 15, payload=True, intent="greet")      # only the opening greeting
        _turn(s, "hello", 15, intent="greet")                      # or a 「你好」
        _turn(s, "pending", 11, done=False)                        # the answer is not out yet
        _turn(s, "handoff", 11, human=True)                        # asked for a human
        _turn(s, "rest", 11, channel="rest")                       # a channel that cannot be written to
        for sender, state in (("with-agent", "agent"), ("queued", "waiting"), ("back", "bot")):
            _turn(s, sender, 11)
            s.add(Conversation(sender_id=sender, channel="socketio", state=state))
        _turn(s, "asked", 30)
        _turn(s, "asked", 12)
        s.add(SatisfactionRating(sender_id="asked", channel="socketio", trigger="goodbye",
                                 requested_at=NOW - dt.timedelta(minutes=20)))  # asked in this conversation
        _turn(s, "returned", 200)
        _turn(s, "returned", 12)                                   # came back after three hours: a new one
        s.add(SatisfactionRating(sender_id="returned", channel="socketio", trigger="inactivity",
                                 requested_at=NOW - dt.timedelta(minutes=180), score=4))
        for sender, status in (("emergency", "open"), ("emergency-claimed", "claimed"), ("emergency-over", "resolved")):
            _turn(s, sender, 11)
            t = tickets.create_ticket(s, type="emergency", channel="socketio", sender_id=sender,
                                      facts={"message": "有人晕倒了"}, priority=1,
                                      sla={"emergency": 5, "complaint": 120, "default": 240}, now=NOW)
            if status != "open":
                tickets.transition(s, t, actor="boss", status="claimed", assignee="boss")
            if status == "resolved":
                tickets.transition(s, t, actor="boss", status="resolved", resolution="已送医")

    due = _due(db)
    assert sorted(due) == ["back", "emergency-over", "quiet", "returned", "wechat"]
    assert due["quiet"].channel == "socketio" and due["wechat"].channel == "wechat"
    assert due["quiet"].started_at == NOW - dt.timedelta(minutes=14)  # the conversation begins with the greeting
    assert due["returned"].started_at == NOW - dt.timedelta(minutes=12)
    assert sorted(_due(db, channels=("socketio",))) == ["back", "emergency-over", "quiet", "returned"]

    # asked once: never again in that conversation, however long it stays quiet
    from bot.tickets import satisfaction

    with session_scope(db) as s:
        row = satisfaction.request(s, "quiet", "socketio", "inactivity", now=NOW)
        assert row is not None and row.trigger == "inactivity"
    assert "quiet" not in _due(db) and "quiet" not in _due(db, NOW + dt.timedelta(minutes=40))
    # a request that could not be delivered is withdrawn: the conversation is due again
    with session_scope(db) as s:
        satisfaction.withdraw(s, row.id)
    assert "quiet" in _due(db)


def test_idle_minutes_come_from_the_knowledge_store(tmp_path):
    from types import SimpleNamespace

    from bot.db import session_factory, session_scope
    from bot.kb import loader
    from bot.kb.store import KnowledgeStore
    from bot.services.desk.inactivity import idle_after
    from tests.conftest import ROOT

    url = f"sqlite:///{tmp_path / 'kb.db'}"
    with session_scope(url) as s:
        loader.publish(s, loader.read_dir(ROOT / "knowledge"), author="test")
    wording = KnowledgeStore(session_factory(url)).get().section("complaints")["satisfaction"]
    assert wording["idle_minutes"] == 10
    assert idle_after(SimpleNamespace(settings=SimpleNamespace(satisfaction_idle_s=None)), wording) == IDLE
    assert idle_after(SimpleNamespace(settings=SimpleNamespace(satisfaction_idle_s=3.0)), wording).total_seconds() == 3


def test_web_chat_presence():
    from bot.services.webchat_presence import POLL_GRACE_S, SocketPresence

    clock = [100.0]
    p = SocketPresence(clock=lambda: clock[0])
    assert not p.connected("web-a")
    p.opened("web-a")
    p.opened("web-a")  # a reload opens the new socket before the old one closes
    p.closed("web-a")
    assert p.connected("web-a")
    p.closed("web-a")
    assert not p.connected("web-a")
    p.polled("web-a")  # long-polling first, then the upgrade to a WebSocket, then the page closes
    p.opened("web-a")
    p.closed("web-a")
    assert not p.connected("web-a")
    p.polled("web-b")
    clock[0] += POLL_GRACE_S - 1
    assert p.connected("web-b")
    clock[0] += 2
    assert not p.connected("web-b")
