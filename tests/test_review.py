"""The editors' review queue (bot/review, bot/services/review.py): missed messages read from the analytics
turns the event consumer writes (bot.analytics), assigned to a knowledge facet (published at once,
answered by the real action code) or to an intent (exported as NLU training data Rasa reads), in-process
with the aiohttp test client on a SQLite store imported from knowledge/."""
from __future__ import annotations

import asyncio
import re
import time
from typing import Any, Dict, List, Optional

import pytest
import yaml

from tests.conftest import ROOT
from tests.test_editor import PASSWORDS, editor_settings, form_of, login, make_users

MISSED = "停太久了费用咋算"
PARAPHRASE = "停得太久了，费用咋算呢"
UNRELATED = "车停久了钱咋算"  # too far from the added phrasing: still not understood (honest limit)


# --------------------------------------------------------------------------- trackers
def user(text: str, intent: str = "nlu_fallback", ts: Optional[float] = None, channel: str = "socketio",
         entities: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    return {"event": "user", "text": text, "timestamp": ts if ts is not None else time.time(),
            "input_channel": channel, "parse_data": {"text": text, "intent": {"name": intent, "confidence": 0.3},
                                                     "entities": entities or []}}


def action(name: str) -> Dict[str, Any]:
    return {"event": "action", "name": name, "timestamp": time.time()}


def slot(name: str, value: Any) -> Dict[str, Any]:
    return {"event": "slot", "name": name, "value": value, "timestamp": time.time()}


def save_trackers_sql(path, conversations: Dict[str, List[Dict[str, Any]]]) -> str:
    """Write the conversations with Rasa's SQLTrackerStore (what ``TRACKER_STORE=rasa-sql`` runs); its URL."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import Event
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.load(str(ROOT / "domain.yml"))
    store = SQLTrackerStore(domain, dialect="sqlite", db=str(path))

    async def save():
        for sender, events in conversations.items():
            tracker = DialogueStateTracker.from_events(sender, [Event.from_parameters(e) for e in events],
                                                       domain.slots)
            await store.save(tracker)
    asyncio.run(save())
    store.engine.dispose()
    return f"sqlite:///{path}"


def save_events(db_url: str, conversations: Dict[str, List[Dict[str, Any]]]) -> None:
    """Write the conversations' events the way the event consumer does (bot.analytics.ingest: what Rasa's
    event broker publishes, ``{"sender_id": ..., **event}``)."""
    from bot.analytics import ingest
    from bot.db import session_scope

    with session_scope(db_url) as s:
        ingest.apply(s, [{"sender_id": sender, **e} for sender, events in conversations.items() for e in events])


def ask_bot(run_action, tracker_factory, text: str) -> List[str]:
    """The bot's answer (real action code, the store the editor published to) to a message the NLU
    read as nlu_fallback."""
    from actions.dialogue import ActionRoute

    texts, _, messages = run_action(ActionRoute(), tracker_factory(text, "nlu_fallback", confidence=0.3))
    return texts


# --------------------------------------------------------------------------- queue logic
def bot(response: str, text: str = "…") -> Dict[str, Any]:
    """A bot message as Rasa records a response a custom action dispatched (``metadata.utter_action``)."""
    return {"event": "bot", "text": text, "timestamp": time.time(), "metadata": {"utter_action": response}}


def test_missed_messages_are_the_turns_the_bot_could_not_answer():
    from bot.review.queue import missed_messages

    t0 = time.time()
    events = [
        user("  停太久了费用咋算", ts=t0, entities=[{"entity": "x", "start": 2, "end": 4}]), action("action_route"),
        slot("fallback_count", 1), bot("utter_rephrase"),                            # missed
        user("/ask_parking", ts=t0 + 1), action("action_route"), bot("utter_clarify"),  # a button: not patron words
        user("超出免费时间怎么收费", ts=t0 + 2), action("action_route"), slot("topic_context", {"topic": "parking"}),
        bot("utter_text"),                                                           # understood
        user("嗯嗯那个就是", intent="greet", ts=t0 + 3), action("action_route"), bot("utter_clarify"),  # missed
        user("空调一直在滴水", ts=t0 + 4), action("complaint_form"), slot("requested_slot", "facts"),  # a form's answer
        user("停车场限高", ts=t0 + 5), action("action_route"),
        slot("topic_context", {"topic": "parking"}), bot("utter_text"),              # fallback, answered by a facet
        user("你们有啥", ts=t0 + 6), action("action_route"), bot("utter_offer_human"),  # missed again
        user("still waiting", ts=t0 + 7),                                             # no reply yet: next reading
    ]
    misses = missed_messages([("p1", events)])
    assert [m.text for m in misses] == ["停太久了费用咋算", "嗯嗯那个就是", "你们有啥"]
    assert misses[0].sender_id == "p1" and misses[0].channel == "socketio" and misses[0].ts == t0
    assert misses[0].entities == [{"entity": "x", "start": 0, "end": 2, "value": "停太"}]  # onto the stripped text
    assert [m.text for m in missed_messages([("p1", events)], since_ts=t0 + 2.5)] == ["嗯嗯那个就是", "你们有啥"]


def test_recording_twice_counts_each_message_once_and_merges_spellings(kb_url):
    from bot.db import session_scope
    from bot.models import ReviewItem
    from bot.review import queue

    t0 = time.time()
    first = [queue.Miss("p1", "wechat", t0, "停太久了费用咋算"), queue.Miss("p2", "socketio", t0 + 1, "停太久了 费用咋算")]
    with session_scope(kb_url) as s:
        assert queue.record(s, first) == 2
    with session_scope(kb_url) as s:
        assert queue.record(s, first) == 0  # the tracker store read again
        assert queue.record(s, first + [queue.Miss("p3", "wechat", t0 + 2, "停太久了费用咋算")]) == 1
    with session_scope(kb_url) as s:
        items = s.query(ReviewItem).all()
        assert [(i.text, i.count, i.sender_id, i.channel, i.status) for i in items] == \
            [("停太久了费用咋算", 3, "p3", "wechat", "new")]


def test_personal_data_is_masked_and_cannot_be_assigned(kb_url):
    from bot.db import session_scope
    from bot.models import ReviewItem
    from bot.review import queue

    with session_scope(kb_url) as s:
        queue.record(s, [queue.Miss("p1", "wechat", time.time(), "13812345678 打不通电话")])
    with session_scope(kb_url) as s:
        item = s.query(ReviewItem).one()
        assert item.masked and "12345678" not in item.text and item.text.startswith("138****5678")
        with pytest.raises(queue.ReviewError) as exc:
            queue.assign_intent(s, item.id, "request_human", "ed", ["request_human"])
        assert exc.value.code == "masked"
        queue.dismiss(s, item.id, "ed")
        assert item.status == "dismissed" and item.assigned_by == "ed"


def test_facet_assignment_publishes_and_the_bot_answers_at_once(kb_url, run_action, tracker_factory):
    from bot.db import session_scope
    from bot.kb import loader
    from bot.models import AuditLog, ReviewItem
    from bot.review import queue

    assert "按停车场标准收费" not in "".join(ask_bot(run_action, tracker_factory, MISSED))
    with session_scope(kb_url) as s:
        queue.record(s, [queue.Miss("p1", "wechat", time.time(), MISSED)])
        item_id = s.query(ReviewItem).one().id
        before = loader.current_files(s)["questions.yml"].decode()
    with session_scope(kb_url) as s:
        assert queue.assign_facet(s, item_id, "parking_overtime", MISSED, "ed", expected="new") == 2
    with session_scope(kb_url) as s:
        after = loader.current_files(s)["questions.yml"].decode()
        item = s.get(ReviewItem, item_id)
        audit = s.query(AuditLog).filter_by(entity="questions").one()
        assert (item.status, item.facet_key, item.example, item.assigned_by) == ("facet", "parking_overtime", MISSED, "ed")
        assert item.assigned_at is not None
        assert audit.actor == "ed" and audit.entity_id == "parking_overtime"
        assert audit.after["examples"] == audit.before["examples"] + [MISSED]
    # one line of the file changed (the rest keeps its layout and comments), the new phrasing at its end
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert len(before.splitlines()) == len(after.splitlines()) and len(changed) == 1
    assert changed[0][1] == changed[0][0].replace("]", f', "{MISSED}"]')
    for text in (MISSED, PARAPHRASE):
        assert "超出部分按停车场标准收费" in "".join(ask_bot(run_action, tracker_factory, text)), text
    assert "按停车场标准收费" not in "".join(ask_bot(run_action, tracker_factory, UNRELATED))
    # a second decision on the same item, based on the page the editor saw before, is refused
    with session_scope(kb_url) as s:
        with pytest.raises(queue.ReviewError) as exc:
            queue.assign_intent(s, item_id, "ask_parking", "ed2", ["ask_parking"], expected="new")
        assert exc.value.code == "already_decided"


def test_facet_assignment_refusals(kb_url):
    from bot.db import session_scope
    from bot.kb import loader
    from bot.models import ReviewItem
    from bot.review import queue

    with session_scope(kb_url) as s:
        queue.record(s, [queue.Miss("p1", "wechat", time.time(), "x" * 120)])
        item_id = s.query(ReviewItem).one().id
    cases = [("parking_overtime", "x" * 120, "example_long"), ("parking_overtime", "x", "example_short"),
             ("no_such_question", "停太久了费用咋算", "bad_facet"),
             ("parking_fee", "超出免费时间怎么收费", "example_elsewhere")]  # already parking_overtime's
    for facet, example, code in cases:
        with session_scope(kb_url) as s:
            with pytest.raises(queue.ReviewError) as exc:
                queue.assign_facet(s, item_id, facet, example, "ed")
            assert exc.value.code == code
    with session_scope(kb_url) as s:
        assert loader.version_id(s) == 1 and s.get(ReviewItem, item_id).status == "new"
        # a phrasing the question already has: decided, nothing to publish
        assert queue.assign_facet(s, item_id, "parking_overtime", "超出免费时间 怎么收费", "ed") is None
        assert loader.version_id(s) == 1


def test_export_writes_training_data_rasa_reads(kb_url, tmp_path):
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    from bot.db import session_scope
    from bot.models import ReviewItem
    from bot.review import queue, training

    t0 = time.time()
    texts = {"睇IMAX可唔可以免費泊車": "ask_parking",      # as the patron wrote it (Cantonese, Traditional)
             "明天晚上还有冇星际归途": "ask_showtimes",      # entity spans annotated
             "停车怎么收费": "ask_parking",                 # already in data/nlu under ask_parking: duplicate
             "停车场在哪": "ask_cinema_info",              # in data/nlu under another intent: conflict
             "今晚 有冇  场次": "ask_showtimes"}            # spaces of a voice transcript folded to one
    entities = {"明天晚上还有冇星际归途": [{"entity": "date", "start": 0, "end": 2}, {"entity": "time", "start": 2, "end": 4},
                                          {"entity": "film", "start": 7, "end": 11}]}
    with session_scope(kb_url) as s:
        queue.record(s, [queue.Miss(f"p{i}", "wechat", t0 + i, t,
                                    [dict(e, value=t[e["start"]:e["end"]]) for e in entities.get(t, [])])
                         for i, t in enumerate(texts)])
        known = training.domain_intents()
        for item in s.query(ReviewItem):
            if texts.get(item.text, "") == "ask_cinema_info" and "停车场在哪" not in training.training_examples()[0]:
                pytest.fail("the conflict case needs 停车场在哪 in the training data")
            queue.assign_intent(s, item.id, texts[item.text], "ed", known)
        queue.record(s, [queue.Miss("p9", "wechat", t0 + 9, "随便说说")])  # not assigned: not exported
    out = tmp_path / "reviewed.yml"
    with session_scope(kb_url) as s:
        report = training.export(s, out, nlu_dir=ROOT / "data" / "nlu")
    content = out.read_text(encoding="utf-8")
    data = RasaYAMLReader().reads(content)
    got = sorted((m.get("intent"), m.get("text")) for m in data.intent_examples)
    assert got == [("ask_parking", "睇IMAX可唔可以免費泊車"), ("ask_showtimes", "今晚 有冇 场次"),
                   ("ask_showtimes", "明天晚上还有冇星际归途")]
    assert "- [明天](date)[晚上](time)还有冇[星际归途](film)" in content
    annotated = next(m for m in data.intent_examples if m.get("text") == "明天晚上还有冇星际归途")
    assert [(e["entity"], e["value"]) for e in annotated.get("entities")] == \
        [("date", "明天"), ("time", "晚上"), ("film", "星际归途")]
    assert report.duplicates == [("ask_parking", "停车怎么收费")]
    existing = training.training_examples(ROOT / "data" / "nlu")[0]["停车场在哪"]
    assert report.conflicts == [("停车场在哪", "ask_cinema_info", existing)] and existing != "ask_cinema_info"
    # exporting again gives the same file (never appends twice)
    with session_scope(kb_url) as s:
        training.export(s, out, nlu_dir=ROOT / "data" / "nlu")
    assert out.read_text(encoding="utf-8") == content


def test_export_cli(kb_url, tmp_path):
    import subprocess
    import sys

    from bot.db import session_scope
    from bot.models import ReviewItem
    from bot.review import queue, training

    with session_scope(kb_url) as s:
        queue.record(s, [queue.Miss("p1", "wechat", time.time(), "泊車幾錢一個鐘")])
        queue.assign_intent(s, s.query(ReviewItem).one().id, "ask_parking", "ed", training.domain_intents())
    out = tmp_path / "nlu" / "reviewed.yml"
    r = subprocess.run([sys.executable, "-m", "bot.review", "export", "--output", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "1 examples written" in r.stdout
    assert "- intent: ask_parking\n  examples: |\n    - 泊車幾錢一個鐘\n" in out.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- pages
@pytest.fixture()
async def client(kb_url, tmp_path):
    from aiohttp.test_utils import TestClient, TestServer

    from bot.services.app import create_app

    make_users(kb_url)
    app = create_app(editor_settings(kb_url))
    async with TestClient(TestServer(app)) as c:
        c.db_url = kb_url
        yield c


async def write_events(client, conversations) -> None:
    await asyncio.to_thread(save_events, client.db_url, conversations)


def missed_turn(text: str, **kw) -> List[Dict[str, Any]]:
    return [user(text, **kw), action("action_route"), slot("fallback_count", 1),
            bot("utter_rephrase", "抱歉，我没太明白～可以换个说法吗？"), action("action_listen")]


async def test_review_page_access(client):
    r = await client.get("/editor/review", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].startswith("/editor/login")  # the editors' login page
    r = await client.get("/editor/review/api/items")
    assert r.status == 401
    await login(client, "agent1")
    assert (await client.get("/editor/review")).status == 403
    assert (await client.post("/editor/review/1/dismiss", data={"status": "new"})).status == 403


async def test_editor_assigns_in_the_queue(client, tmp_path, run_action, tracker_factory):
    from tests.test_editor import db_state

    await write_events(client, {"patron-a": missed_turn(MISSED, channel="wechat") + missed_turn(MISSED),
                                    "patron-b": missed_turn("泊車幾錢一個鐘")})
    await login(client, "ed")
    r = await client.get("/editor/review")
    html = await r.text()
    assert r.status == 200, html
    rows = re.findall(r'<tr data-id="(\d+)".*?<div class="review-msg">(.*?)</div>.*?<td class="nowrap">(\d+)</td>', html, re.S)
    assert [(t, int(n)) for _, t, n in rows] == [(MISSED, 2), ("泊車幾錢一個鐘", 1)]
    ids = {t: i for i, t, _ in rows}

    # without the CSRF token nothing happens
    r = await client.post(f"/editor/review/{ids[MISSED]}/facet", data={"facet": "parking_overtime", "example": MISSED,
                                                                        "status": "new"})
    assert r.status == 403
    # the page's own form, as a browser submits it, with a question chosen
    fields = form_of(html, f"/editor/review/{ids[MISSED]}/facet")
    assert fields["example"] == MISSED and fields["status"] == "new"
    fields["facet"] = "parking_overtime"
    r = await client.post(f"/editor/review/{ids[MISSED]}/facet", data=fields, allow_redirects=False)
    assert r.status == 303, await r.text()
    assert r.headers["Location"].endswith(f"done=facet&item={ids[MISSED]}&published=2")
    html = await (await client.get(r.headers["Location"])).text()
    assert "发布为版本 2" in html and MISSED not in re.sub(r'<option[^>]*>.*?</option>', "", html)
    version, files, audits = db_state(client.db_url)
    assert version == 2 and audits[-1][:4] == ("ed", "questions", "parking_overtime", "update")
    for text in (MISSED, PARAPHRASE):
        answer = await asyncio.to_thread(ask_bot, run_action, tracker_factory, text)
        assert "超出部分按停车场标准收费" in "".join(answer)

    # the same form again (a second tab): refused with the reason, nothing published
    r = await client.post(f"/editor/review/{ids[MISSED]}/facet", data=fields)
    assert r.status == 409 and "已被ed处理过" in await r.text()
    assert db_state(client.db_url)[0] == 2

    fields = form_of(html, f"/editor/review/{ids['泊車幾錢一個鐘']}/intent")
    fields["intent"] = "ask_parking"
    r = await client.post(f"/editor/review/{ids['泊車幾錢一個鐘']}/intent", data=fields, allow_redirects=False)
    assert r.status == 303
    r = await client.get("/editor/review/api/items?status=intent")
    data = await r.json()
    assert [(i["text"], i["intent"], i["assigned_by"]) for i in data["items"]] == [("泊車幾錢一個鐘", "ask_parking", "ed")]
    assert data["counts"] == {"new": 0, "intent": 1, "facet": 1, "dismissed": 0}
    html = await (await client.get("/editor/review?status=facet")).text()
    assert "停车 · " in html and "parking_overtime" in html and "ed · " in html

    # the patron asks again and the bot answers: no longer a missed message; a new miss arrives
    await write_events(client, {"patron-c": [user(MISSED), action("action_route"),
                                                 slot("topic_context", {"topic": "parking"})],
                                    "patron-d": missed_turn("随便问问")})
    data = await (await client.get("/editor/review/api/items?refresh=1")).json()
    assert [i["text"] for i in data["items"]] == ["随便问问"]
    facet = await (await client.get("/editor/review/api/items?status=facet")).json()
    assert facet["items"][0]["count"] == 2 and not facet["items"][0]["seen_since_decided"]


async def test_bad_input_gets_a_clear_answer(client, tmp_path):
    await write_events(client, {"p": missed_turn("x" * 100)})
    await login(client, "ed")
    html = await (await client.get("/editor/review")).text()
    item = re.search(r'<tr data-id="(\d+)"', html).group(1)
    fields = form_of(html, f"/editor/review/{item}/facet")
    fields.update(facet="parking_overtime", example="x" * 100)
    r = await client.post(f"/editor/review/{item}/facet", data=fields)
    assert r.status == 422 and "问法最多 80 个字（现在 100 个字）" in await r.text()
    fields = form_of(html, f"/editor/review/{item}/intent")
    fields["intent"] = "nlu_fallback"
    r = await client.post(f"/editor/review/{item}/intent", data=fields, headers={"Accept": "application/json"})
    assert r.status == 422 and (await r.json())["error"] == "bad_intent"
    assert (await client.post("/editor/review/999/dismiss", data={"csrf_token": fields["csrf_token"]})).status == 404
    data = await (await client.get("/editor/review/api/items")).json()
    assert data["counts"]["new"] == 1


def test_reopened_and_dismissed_items_leave_the_export(kb_url, tmp_path):
    from bot.db import session_scope
    from bot.models import ReviewItem
    from bot.review import queue, training

    t0 = time.time()
    with session_scope(kb_url) as s:
        queue.record(s, [queue.Miss("p1", "wechat", t0, "泊車幾錢一個鐘"), queue.Miss("p2", "wechat", t0 + 1, "啊啊啊啊")])
        a, b = (s.query(ReviewItem).filter_by(text=t).one().id for t in ("泊車幾錢一個鐘", "啊啊啊啊"))
        queue.assign_intent(s, a, "ask_parking", "ed", training.domain_intents())
        queue.dismiss(s, b, "ed", expected="new")
    out = tmp_path / "reviewed.yml"
    with session_scope(kb_url) as s:
        assert [w for w in training.export(s, out, nlu_dir=ROOT / "data" / "nlu").written] == [("ask_parking", "泊車幾錢一個鐘")]
        queue.reopen(s, a, "ed2", expected="intent")
        item = s.get(ReviewItem, a)
        assert (item.status, item.intent, item.assigned_by) == ("new", None, "ed2")
        assert queue.counts(s) == {"new": 1, "intent": 0, "facet": 0, "dismissed": 1}
    with session_scope(kb_url) as s:
        assert training.export(s, out, nlu_dir=ROOT / "data" / "nlu").written == []
    assert yaml.safe_load(out.read_text(encoding="utf-8")) == {"version": "3.1", "nlu": []}
