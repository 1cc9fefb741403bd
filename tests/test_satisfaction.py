"""Satisfaction ratings and what the desk shows (SQLite, no servers): parsing a rating, one prompt per
ending, a low rating opening a follow-up ticket, comments, the gate in front of NLU, statistics, display
names, the topic's slots and agent names in the transcript."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
from types import SimpleNamespace

import pytest

from tests.conftest import ROOT


@pytest.fixture()
def db(tmp_path, monkeypatch):
    from bot.db import session_scope
    from bot.kb import loader, store

    url = f"sqlite:///{tmp_path / 'sat.db'}"
    monkeypatch.setenv("KNOWLEDGE_DB_URL", url)
    monkeypatch.setattr(store, "_default", None)
    with session_scope(url) as s:
        loader.publish(s, loader.read_dir(ROOT / "knowledge"), author="test")
    return url


def _wording(url):
    from bot.db import session_factory
    from bot.kb.store import KnowledgeStore

    c = KnowledgeStore(session_factory(url)).get().section("complaints")
    return c["satisfaction"], c["sla_minutes"]


def test_parse_score():
    from bot.tickets.satisfaction import buttons, parse_score

    assert parse_score('/satisfaction{"score":4}') == (4, "")
    assert parse_score("5") == (5, "") and parse_score("5分") == (5, "")
    assert parse_score("2 排队太久了") == (2, "排队太久了")
    assert parse_score("5号厅在哪") is None and parse_score("6") is None and parse_score("我要退票") is None
    b = buttons(["a", "b", "c", "d", "e"])
    assert [parse_score(x["payload"])[0] for x in b] == [1, 2, 3, 4, 5]


def test_rating_flow_and_low_rating_follow_up(db):
    from bot.db import session_scope
    from bot.models import SatisfactionRating
    from bot.tickets import satisfaction, store

    wording, sla = _wording(db)
    with session_scope(db) as s:
        assert satisfaction.answer(s, "p1", "5", wording, sla) is None  # nothing asked: the bot answers
        assert satisfaction.request(s, "p1", "socketio", "agent_closed", agent="agent1", ticket_number="T1")
        assert satisfaction.request(s, "p1", "socketio", "goodbye") is None  # asked once per ending
        assert satisfaction.answer(s, "p1", "停车怎么收费", wording, sla) is None  # a question goes to the bot
        reply = satisfaction.answer(s, "p1", "1", wording, sla)
        row = s.query(SatisfactionRating).one()
        assert row.score == 1 and row.agent == "agent1" and row.ticket_number == "T1" and row.followup_ticket
        assert row.followup_ticket in reply
        ticket = store.get_by_number(s, row.followup_ticket)
        assert ticket.type == "feedback" and ticket.priority == 2 and ticket.followup_status == "scheduled"
        assert satisfaction.answer(s, "p1", "客服态度不好，等了很久", wording, sla) == wording["comment_thanks"]
        assert row.comment == "客服态度不好，等了很久" and store.get_by_number(s, row.followup_ticket).facts["comment"]
        assert satisfaction.answer(s, "p1", "好的", wording, sla) is None  # the comment is taken once


def test_high_rating_then_skip_and_question_after(db):
    from bot.db import session_scope
    from bot.tickets import satisfaction

    wording, sla = _wording(db)
    with session_scope(db) as s:
        satisfaction.request(s, "p2", "wechat", "goodbye")
        assert satisfaction.answer(s, "p2", "5", wording, sla) == wording["thanks"]
        assert satisfaction.answer(s, "p2", "跳过", wording, sla) == wording["skipped"]
        satisfaction.request(s, "p3", "wechat", "goodbye", now=dt.datetime.utcnow() - dt.timedelta(minutes=1))
        assert satisfaction.answer(s, "p3", "4", wording, sla) == wording["thanks"]
        assert satisfaction.answer(s, "p3", "几点关门？", wording, sla) is None  # a question, not a comment


def test_gate_takes_the_rating_before_nlu_and_asks_after_goodbye(db):
    from bot.db import session_scope
    from bot.models import SatisfactionRating
    from bot.services import satisfaction_gate

    class Channel:
        def __init__(self):
            self.sent = []

        async def send_response(self, recipient_id, message):
            self.sent.append(message)

        async def send_text_with_buttons(self, recipient_id, text, buttons, **kw):
            self.sent.append({"text": text, "buttons": buttons})

    channel = Channel()
    message = SimpleNamespace(text="再见", sender_id="p9", output_channel=channel, input_channel="socketio")
    seen = satisfaction_gate.watch(channel)
    asyncio.run(channel.send_response("p9", {"text": "再见！", "utter_action": "utter_goodbye"}))
    assert seen()
    asyncio.run(satisfaction_gate.ask_after_goodbye(message))
    prompt = channel.sent[-1]
    assert "打分" in prompt["text"] and len(prompt["buttons"]) == 5
    answer = SimpleNamespace(text=prompt["buttons"][3]["payload"], sender_id="p9", output_channel=channel,
                             input_channel="socketio")
    assert "感谢您的评价" in asyncio.run(satisfaction_gate.intercept(answer))
    with session_scope(db) as s:
        row = s.query(SatisfactionRating).one()
        assert (row.score, row.trigger) == (4, "goodbye")
    other = SimpleNamespace(text="你好", sender_id="p10", output_channel=Channel(), input_channel="socketio")
    assert asyncio.run(satisfaction_gate.intercept(other)) is None


def test_satisfaction_statistics_per_day_and_agent(db):
    from bot.db import session_scope
    from bot.services.desk.stats import _buckets, satisfaction_stats
    from bot.tickets import satisfaction, staff
    from bot.tickets._common import to_local

    wording, sla = _wording(db)
    now = dt.datetime.utcnow()
    with session_scope(db) as s:
        staff.set_display_name(s, "agent1", "小李")
        for i, (sender, agent, score) in enumerate([("a", "agent1", 5), ("b", "agent1", 3), ("c", None, 4)]):
            satisfaction.request(s, sender, "socketio", "handback" if agent else "goodbye", agent=agent, now=now)
            satisfaction.answer(s, sender, str(score), wording, sla, now=now)
        satisfaction.request(s, "d", "socketio", "goodbye", now=now)  # asked, never answered
        labels = _buckets(to_local(now - dt.timedelta(days=1)).date(), to_local(now).date(), "day")
        data = satisfaction_stats(s, now - dt.timedelta(days=1), "day", labels)
    assert data["totals"] == {"asked": 4, "rated": 3, "average": 4.0, "low": 0}
    assert data["average"][-1] == 4.0 and [data["distribution"][k][-1] for k in "12345"] == [0, 0, 1, 1, 1]
    agent = [a for a in data["by_agent"] if a["agent"] == "agent1"][0]
    assert (agent["name"], agent["count"], agent["average"]) == ("小李", 2, 4.0)


def test_topic_slots_and_agent_names_in_the_transcript():
    from bot.services.desk.tracker_views import topic_slots, transcript

    forms = {"complaint_form": ["complaint_detail", "complaint_when", "complaint_wish", "phone"]}
    tracker = {"slots": {"film": "星际穿越", "complaint_detail": "空调太冷", "phone": "13812345678",
                         "anger_count": 2, "topic_context": {"x": 1}},
               "events": [{"event": "active_loop", "name": "complaint_form"}, {"event": "active_loop", "name": None}]}
    assert topic_slots(tracker, forms) == [("complaint_detail", "空调太冷"), ("phone", "13812345678"),
                                           ("film", "星际穿越")]
    assert topic_slots({"slots": {"film": "星际穿越", "anger_count": 1}, "events": []}, forms) == [("film", "星际穿越")]
    items = transcript([
        {"event": "user", "text": "/greet", "timestamp": 1},
        {"event": "action", "name": "action_agent_message", "timestamp": 2},
        {"event": "bot", "text": "人工客服 小李 为您服务", "timestamp": 2,
         "metadata": {"metadata": {"agent": {"name": "小李"}}}},
    ])
    assert [(i["who"], i.get("agent_name")) for i in items] == [("agent", "小李")]  # the payload is hidden


def test_display_names(db):
    from bot.db import session_scope
    from bot.tickets import staff

    with session_scope(db) as s:
        assert staff.display_name(s, "agent1") == "agent1"
        assert staff.set_display_name(s, "agent1", "  小李  ") == "小李"
        assert staff.display_names(s, ["agent1", "agent2"]) == {"agent1": "小李", "agent2": "agent2"}
        with pytest.raises(ValueError):
            staff.set_display_name(s, "agent1", "   ")


# ---- the desk's new API on SQLite (Rasa unreachable: lists still answer, without last messages)
@pytest.fixture()
async def desk_client(tmp_path):
    from aiohttp.test_utils import TestClient, TestServer

    from bot.db import session_scope
    from bot.kb import loader
    from bot.services.app import create_app
    from bot.tickets import handoff, store
    from tests.test_desk import make_users, settings_for

    url = f"sqlite:///{tmp_path / 'desk.db'}"
    with session_scope(url) as s:
        loader.publish(s, loader.read_dir(ROOT / "knowledge"), author="test")
        sla = {"handoff": 1440, "complaint": 1440}
        t = store.create_ticket(s, type="handoff", channel="socketio", sender_id="web-waiting", facts={"reason": "x"},
                                phone="13812345678", sla=sla)
        handoff.request_human(s, "web-waiting", "socketio", 3, t.number)
        store.create_ticket(s, type="complaint", channel="socketio", sender_id="web-held", facts={"detail": "冷"}, sla=sla)
        handoff.request_human(s, "web-held", "socketio", 3, None)
        handoff.claim(s, "web-held", "agent2")
        number = t.number
    make_users(url)
    async with TestClient(TestServer(create_app(settings_for(url)))) as c:
        c.number = number
        yield c


async def _agent(c, user="agent1"):
    from tests.test_desk import _csrf, _login

    await _login(c, user)
    return {"X-CSRF-Token": await _csrf(c)}


async def test_notes_labels_reveal_and_lists(desk_client):
    c = desk_client
    h = await _agent(c)
    r = await c.get("/desk/api/conversations/web-waiting/patron")
    body = await r.json()
    assert r.status == 200 and body["phone_masked"] == "138****5678" and "13812345678" not in json.dumps(body)
    r = await c.post(f"/desk/api/tickets/{c.number}/reveal-phone", json={}, headers=h)
    assert (await r.json())["phone"] == "13812345678"
    from bot.db import session_scope
    from bot.models import AuditLog
    with session_scope(str(c.server.app["xinghe.settings"].db_url)) as s:
        assert s.query(AuditLog).filter_by(action="phone_revealed", actor="agent1").count() == 1
    r = await c.post("/desk/api/conversations/web-waiting/notes", json={"text": "先查订单"}, headers=h)
    assert r.status == 200 and (await r.json())["author"] == "agent1"
    assert (await c.post("/desk/api/conversations/web-waiting/notes", json={"text": " "}, headers=h)).status == 400
    r = await c.post("/desk/api/conversations/web-waiting/labels", json={"add": ["退款", "退款", "回头客"]}, headers=h)
    assert (await r.json())["labels"] == ["退款", "回头客"]
    r = await c.post("/desk/api/conversations/web-waiting/labels", json={"remove": ["退款"]}, headers=h)
    assert (await r.json())["labels"] == ["回头客"]
    notes = (await (await c.get("/desk/api/conversations/web-waiting/patron")).json())["notes"]
    assert [n["text"] for n in notes] == ["先查订单"]
    # another agent's conversation: neither its sidebar, nor notes, nor the phone of its tickets
    assert (await c.get("/desk/api/conversations/web-held/patron")).status == 403
    assert (await c.post("/desk/api/conversations/web-held/notes", json={"text": "x"}, headers=h)).status == 403
    lists = {}
    for view in ("waiting", "mine", "open", "recent"):
        r = await c.get(f"/desk/api/conversation-list?view={view}")
        lists[view] = [x["sender_id"] for x in (await r.json())["conversations"]]
    assert lists["waiting"] == ["web-waiting"] and lists["mine"] == [] and "web-held" not in lists["open"]
    assert (await c.get("/desk/api/conversation-list?view=nope")).status == 400
    # the name patrons see
    r = await c.post("/desk/api/profile", json={"display_name": "小李"}, headers=h)
    assert (await r.json())["display_name"] == "小李"
    assert (await (await c.get("/desk/api/profile")).json())["display_name"] == "小李"


async def test_ticket_search_pagination_priority_and_error_pages(desk_client):
    c = desk_client
    h = await _agent(c, "boss")
    r = await c.get("/desk/tickets?q=5678")
    html = await r.text()
    assert c.number in html and "共 1 条" in html
    assert "共 2 条" in await (await c.get("/desk/tickets?q=T")).text()
    assert "没有符合条件的工单" in await (await c.get("/desk/tickets?q=T19990101")).text()
    r = await c.post(f"/desk/api/tickets/{c.number}/priority", json={"priority": 1}, headers=h)
    assert r.status == 200 and (await r.json())["priority"] == 1
    assert (await c.post(f"/desk/api/tickets/{c.number}/priority", json={"priority": 9}, headers=h)).status == 400
    page = await (await c.get(f"/desk/tickets/{c.number}")).text()
    assert "138****5678" in page and "13812345678" not in page
    r = await c.get("/desk/no-such-page", headers={"Accept": "text/html"})
    assert r.status == 404 and "页面不存在" in await r.text() and 'href="/desk/"' in await r.text()
    r = await c.get("/desk/tickets/T19990101-0001", headers={"Accept": "text/html"})
    assert r.status == 404 and "返回坐席工作台" in await r.text()
    r = await c.get("/desk/api/tickets/T19990101-0001")
    assert r.status == 404 and (await r.json())["error"] == "unknown_ticket"  # the API keeps JSON


@pytest.mark.e2e
def test_goodbye_asks_for_a_rating_and_the_answer_never_reaches_nlu(stack):
    """Through the real Rasa server (REST channel): the prompt after the bot's goodbye, the rating taken
    before NLU, and a question after it answered by the bot as usual."""
    import uuid

    from bot.db import session_scope
    from bot.models import SatisfactionRating

    sender = f"rate-{uuid.uuid4().hex[:10]}"
    assert "每小时" in stack.text(sender, "停车怎么收费")
    replies = stack.say(sender, "再见")
    prompt = [m for m in replies if "打分" in (m.get("text") or "")]
    assert prompt and len(prompt[0]["buttons"]) == 5, replies
    assert "感谢您的评价" in stack.text(sender, prompt[0]["buttons"][4]["payload"])
    with session_scope(stack.db_url) as s:
        row = s.query(SatisfactionRating).filter_by(sender_id=sender).one()
        assert (row.score, row.trigger, row.channel) == (5, "goodbye", "rest")
    assert "每小时" in stack.text(sender, "停车怎么收费")  # a question, not a comment: the bot answers
    assert "打分" not in stack.text(sender, "再见")  # asked once per ending
