"""The knowledge editor pages (bot/services/editor/), in-process with the aiohttp test client on a SQLite
store imported from knowledge/, and a stub of Rasa's ``/model/parse`` for the answer previews.

Forms are submitted the way a browser submits them: every input of the page's form, with a few changed."""
from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from typing import Any, Dict, List, Optional, Tuple

import pytest

PASSWORDS = {"ed": "editor-pass-123", "ed2": "editor-two-pass", "boss": "supervisor-pass", "agent1": "agent-one-pass"}
ROLES = {"ed": "editor", "ed2": "editor", "boss": "supervisor", "agent1": "agent"}
RASA_TOKEN = "parse-token-0123456789abcdef0123"


# --------------------------------------------------------------------------- fixtures and helpers
def make_users(db_url: str) -> None:
    from bot.db import session_scope
    from bot.models import User
    from bot.services import users

    with session_scope(db_url) as s:
        for name, role in ROLES.items():
            if s.get(User, name) is None:
                users.create_user(s, name, role, PASSWORDS[name], rounds=4)


def editor_settings(db_url: str, rasa_url: str = "http://127.0.0.1:9", **overrides):
    from bot.redis_conn import RedisSettings
    from bot.services.app import Settings

    values = dict(db_url=db_url, secret_key=b"e" * 32, secure_cookies=False, background_tasks=False,
                  rasa_url=rasa_url, rasa_token=RASA_TOKEN, redis=RedisSettings(port=9), tracker_store="memory")
    values.update(overrides)
    return Settings(**values)


def fake_parse(text: str) -> Dict[str, Any]:
    """What the trained model answers for the questions these tests ask."""
    if "停车" in text:
        return {"text": text, "intent": {"name": "ask_parking", "confidence": 0.97}, "entities": []}
    if "票价" in text:
        return {"text": text, "intent": {"name": "ask_ticket_price", "confidence": 0.95},
                "entities": [{"entity": "hall_type", "value": "IMAX", "start": 0, "end": 4}]}
    for title in ("星际归途", "熊猫总动员"):
        if title in text:
            return {"text": text, "intent": {"name": "ask_film_info", "confidence": 0.93},
                    "entities": [{"entity": "film", "value": title, "start": 0, "end": len(title)}]}
    if "电影" in text:
        return {"text": text, "intent": {"name": "ask_showtimes", "confidence": 0.9}, "entities": []}
    return {"text": text, "intent": {"name": "nlu_fallback", "confidence": 0.3}, "entities": []}


def rasa_authorised(request) -> bool:
    """What Rasa checks, as the app must call it: a JWT signed with the token, never the token in the URL."""
    import jwt

    bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
    try:
        claims = jwt.decode(bearer, RASA_TOKEN, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return False
    return "token" not in request.query and claims.get("user", {}).get("role") == "admin"


@pytest.fixture()
async def rasa_stub():
    """A stand-in for ``rasa run --enable-api --auth-token T --jwt-secret T``: only ``POST /model/parse``."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    seen: List[Dict[str, Any]] = []

    async def parse(request: web.Request) -> web.Response:
        if not rasa_authorised(request):
            return web.json_response({"message": "unauthorized"}, status=401)
        body = await request.json()
        seen.append(body)
        return web.json_response(fake_parse(body["text"]))

    app = web.Application()
    app.router.add_post("/model/parse", parse)
    server = TestServer(app)
    await server.start_server()
    server.seen = seen  # type: ignore[attr-defined]
    yield server
    await server.close()


@pytest.fixture()
async def client(kb_url, rasa_stub):
    """The desk app (with the editor) on the store that the actions read too (``kb_url`` sets
    KNOWLEDGE_DB_URL), Rasa answered by the stub."""
    from aiohttp.test_utils import TestClient, TestServer

    from bot.services.app import create_app

    make_users(kb_url)
    app = create_app(editor_settings(kb_url, str(rasa_stub.make_url("")).rstrip("/")))
    async with TestClient(TestServer(app)) as c:
        c.db_url = kb_url
        yield c


async def login(c, user: str) -> None:
    r = await c.get("/desk/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text()).group(1)
    r = await c.post("/desk/login", data={"username": user, "password": PASSWORDS[user], "csrf_token": token},
                     allow_redirects=False)
    assert r.status == 302, await r.text()


class FormParser(HTMLParser):
    """The successful controls of the forms of a page, as a browser would submit them (no buttons)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: List[Dict[str, Any]] = []
        self._textarea: Optional[str] = None
        self._select: Optional[str] = None
        self._first_option: Optional[str] = None
        self._option: Optional[str] = None
        self._text: List[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}})
        elif not self.forms:
            return
        elif tag == "input" and a.get("name") and a.get("type", "text") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self._textarea, self._text = a["name"], []
        elif tag == "select" and a.get("name"):
            self._select, self._first_option = a["name"], None
        elif tag == "option" and self._select:
            value = a.get("value", "")
            if self._first_option is None:
                self._first_option = value
                self.forms[-1]["fields"][self._select] = value
            if "selected" in a:
                self.forms[-1]["fields"][self._select] = value

    def handle_data(self, data):
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            self.forms[-1]["fields"][self._textarea] = text[1:] if text.startswith("\n") else text
            self._textarea = None
        elif tag == "select":
            self._select = None


def form_of(html: str, action_part: str) -> Dict[str, str]:
    parser = FormParser()
    parser.feed(html)
    for form in parser.forms:
        if action_part in form["action"]:
            return dict(form["fields"])
    raise AssertionError(f"no form posting to {action_part}")


async def open_form(c, url: str) -> Tuple[str, Dict[str, str]]:
    r = await c.get(url)
    assert r.status == 200, (url, r.status)
    html = await r.text()
    return html, form_of(html, url.split("?")[0].rsplit("/", 1)[-1])


async def submit(c, url: str, fields: Dict[str, str], op: str, **kw):
    return await c.post(url, data={**fields, "op": op}, allow_redirects=False, **kw)


async def preview_then_publish(c, url: str, changes: Dict[str, str]):
    """Load the form, change fields, preview (checked), publish with the previewed draft."""
    _, fields = await open_form(c, url)
    fields.update(changes)
    r = await submit(c, url, fields, "preview")
    html = await r.text()
    assert r.status == 200, html
    published = form_of(html, url.rsplit("/", 1)[-1])
    assert "preview_digest" in published, html
    return await submit(c, url, published, "publish"), html


def upload(fields: Dict[str, str], csv_bytes: bytes):
    """A multipart form with the CSV file, as the showtimes page's file input sends it."""
    import aiohttp

    data = aiohttp.FormData()
    for k, v in fields.items():
        data.add_field(k, v)
    data.add_field("csv_file", csv_bytes, filename="showtimes.csv", content_type="text/csv")
    return data


def second_browser(client):
    """Another browser (its own cookies) on the same server."""
    import aiohttp

    return aiohttp.ClientSession(base_url=str(client.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True))


def db_state(url: str):
    from bot.db import session_scope
    from bot.kb import loader
    from bot.models import AuditLog
    from bot.services.editor.wording import knowledge_entities

    with session_scope(url) as s:
        audits = [(a.actor, a.entity, a.entity_id, a.action, a.before, a.after)
                  for a in s.query(AuditLog).order_by(AuditLog.id) if a.entity in knowledge_entities()]
        return loader.version_id(s), loader.current_files(s), audits


def problems_of(html: str) -> List[str]:
    return [re.sub(r"<[^>]+>", "", p) for p in re.findall(r'<li class="problem">(.*?)</li>', html, re.S)]


# --------------------------------------------------------------------------- access
async def test_no_login_redirects_or_401(client):
    for path in ["/editor/", "/editor/records/films", "/editor/records/films/星际归途", "/editor/documents/parking",
                 "/editor/showtimes", "/editor/audit", "/editor/versions", "/editor/versions/1",
                 "/editor/static/editor.js"]:
        r = await client.get(path, allow_redirects=False)
        assert r.status == 302 and r.headers["Location"].startswith("/editor/login?next="), (path, r.status)
    r = await client.get("/editor/audit", headers={"Accept": "application/json"}, allow_redirects=False)
    assert r.status == 401
    for path in ["/editor/documents/parking", "/editor/records/films/星际归途", "/editor/showtimes",
                 "/editor/versions/1/rollback", "/editor/new/films"]:
        r = await client.post(path, data={"fee_per_hour": "0", "op": "publish"}, allow_redirects=False)
        assert r.status in (302, 401), (path, r.status)
    assert db_state(client.db_url)[0] == 1


async def test_agent_role_gets_403(client):
    await login(client, "agent1")
    token = re.search(r'name="csrf-token" content="([^"]+)"', await (await client.get("/desk/tickets")).text()).group(1)
    for path in ["/editor/", "/editor/records/films", "/editor/documents/parking", "/editor/showtimes",
                 "/editor/audit", "/editor/versions", "/editor/versions/1"]:
        assert (await client.get(path, allow_redirects=False)).status == 403, path
    for path in ["/editor/documents/parking", "/editor/versions/1/rollback", "/editor/showtimes"]:
        r = await client.post(path, data={"csrf_token": token, "fee_per_hour": "0", "op": "publish"},
                              allow_redirects=False)
        assert r.status == 403, path
    assert db_state(client.db_url)[0] == 1


async def test_supervisor_may_edit_too(client):
    await login(client, "boss")
    html, _ = await open_form(client, "/editor/documents/parking")
    assert "停车规则" in html and 'data-role="supervisor"' in html


async def test_csrf_token_is_required(client):
    await login(client, "ed")
    _, fields = await open_form(client, "/editor/documents/parking")
    fields["fee_per_hour"] = "6"
    without = {k: v for k, v in fields.items() if k != "csrf_token"}
    r = await submit(client, "/editor/documents/parking", without, "preview")
    assert r.status == 403 and (await r.json())["error"] == "csrf"
    r = await submit(client, "/editor/documents/parking", dict(fields, csrf_token="forged"), "publish")
    assert r.status == 403
    r = await submit(client, "/editor/documents/parking", fields, "preview", headers={"Origin": "http://evil.example"})
    assert r.status == 403
    r = await client.post("/editor/versions/1/rollback", data={"base_version": "1"}, allow_redirects=False)
    assert r.status == 403
    r = await client.post("/editor/showtimes", data=upload({"op": "preview"}, b"day,start,film,hall,version\n"),
                          allow_redirects=False)
    assert r.status == 403
    assert db_state(client.db_url)[0] == 1
    r = await submit(client, "/editor/documents/parking", fields, "preview")  # with the token: accepted
    assert r.status == 200


# --------------------------------------------------------------------------- editing records
async def test_editor_edits_film_aliases_and_publishes(client, rasa_stub, run_action, tracker_factory):
    from actions import topics

    await login(client, "ed")
    r = await client.get("/editor/records/films")
    assert r.status == 200 and "星际归途" in await r.text()
    url = "/editor/records/films/%E6%98%9F%E9%99%85%E5%BD%92%E9%80%94"  # 星际归途
    html, fields = await open_form(client, url)
    assert fields["aliases"] == "星际" and fields["_mode.aliases"] == "list"
    assert fields["preview_question"] == "星际归途讲的是什么"
    assert 'name="runtime_min" value="148" min="30" max="400"' in html
    fields["aliases"] = "星际, 归途"
    fields["synopsis"] = "深空勘探队返航途中与地球失联，必须在燃料耗尽前找到归途。"
    r = await submit(client, url, fields, "preview")
    html = await r.text()
    assert r.status == 200, html
    assert rasa_stub.seen[-1] == {"text": "星际归途讲的是什么"}
    assert "ask_film_info" in html and "film=星际归途" in html
    after = re.search(r'<div id="preview-after">(.*?)</div></div>', html, re.S).group(1)
    assert "深空勘探队返航途中与地球失联" in after
    assert '<td class="before">[&#34;星际&#34;]</td><td class="after">[&#34;星际&#34;, &#34;归途&#34;]</td>' in html
    assert db_state(client.db_url)[0] == 1  # a preview publishes nothing

    previewed = form_of(html, url.rsplit("/", 1)[-1])
    r = await submit(client, url, previewed, "publish")
    assert r.status == 303 and r.headers["Location"].endswith("?published=2")
    html = await (await client.get(r.headers["Location"])).text()
    assert "已发布为版本 2" in html

    version, files, audits = db_state(client.db_url)
    assert version == 2
    text = files["films.yml"].decode()
    assert "aliases: [星际, 归途]" in text and text.startswith("# 在映影片")
    assert "release_date: 2026-11-06" in text  # dates stay dates, comments and layout stay
    actor, entity, entity_id, action, before, after = audits[-1]
    assert (actor, entity, entity_id, action) == ("ed", "films", "星际归途", "update")
    assert before["aliases"] == ["星际"] and after["aliases"] == ["星际", "归途"]
    assert before["runtime_min"] == after["runtime_min"] == 148

    # the bot follows at once: the actions read the published store on each answer
    texts, _, _ = await asyncio.to_thread(run_action, topics.ActionFilmInfo(), tracker_factory("归途讲什么", "ask_film_info",
                                                                      [{"entity": "film", "value": "归途"}]))
    assert "深空勘探队返航途中与地球失联" in texts[0]

    # the audit page shows who changed what, with before/after
    html = await (await client.get("/editor/audit")).text()
    row = re.search(r'<tr data-id="\d+" data-entity="films" data-entity-id="星际归途">(.*?)</tr>\s*</tbody>\s*</table>\s*<details',
                    html, re.S)
    assert row and "ed" in html and "修改" in row.group(1)
    assert '<td class="before">[&#34;星际&#34;]</td><td class="after">[&#34;星际&#34;, &#34;归途&#34;]</td>' in html


async def test_stale_etag_gives_409_and_changes_nothing(client):
    await login(client, "ed")
    url = "/editor/records/facilities/wifi"
    _, mine = await open_form(client, url)

    other = second_browser(client)  # a second editor in another browser
    try:
        await login(other, "ed2")
        r, _ = await preview_then_publish(other, url, {"answer": "免费WiFi：Xinghe-Guest，密码在前台"})
        assert r.status == 303
    finally:
        await other.close()
    version, files, audits = db_state(client.db_url)
    assert version == 2

    mine["answer"] = "免费WiFi：Xinghe-Free"
    for op in ("preview", "publish"):
        r = await submit(client, url, mine, op)
        html = await r.text()
        assert r.status == 409, html
        assert "其他人已经修改并发布了这条记录" in html and "没有发布" in html and "ed2" in html
        assert "免费WiFi：Xinghe-Free" in html  # what I typed, to redo it
    assert db_state(client.db_url)[:2] == (version, files)
    assert "Xinghe-Guest" in files["facilities.yml"].decode()


async def test_preview_then_someone_else_publishes_the_same_record(client):
    """Previewed before the other editor's publish, published after: still a conflict."""
    await login(client, "ed")
    url = "/editor/documents/parking"
    _, fields = await open_form(client, url)
    fields["fee_per_hour"] = "7"
    r = await submit(client, url, fields, "preview")
    previewed = form_of(await r.text(), "parking")

    other = second_browser(client)
    try:
        await login(other, "ed2")
        r, _ = await preview_then_publish(other, url, {"daily_cap": "45"})
        assert r.status == 303
    finally:
        await other.close()
    r = await submit(client, url, previewed, "publish")
    assert r.status == 409
    version, files, _ = db_state(client.db_url)
    assert version == 2 and b"fee_per_hour: 5" in files["parking.yml"] and b"daily_cap: 45" in files["parking.yml"]


async def test_edits_of_different_records_both_land(client):
    """Optimistic locking is per record: another record published meanwhile is kept, not overwritten."""
    await login(client, "ed")
    url = "/editor/records/prices/imax"
    _, fields = await open_form(client, url)
    other = second_browser(client)
    try:
        await login(other, "ed2")
        r, _ = await preview_then_publish(other, "/editor/records/prices/dolby", {"weekday": "76"})
        assert r.status == 303
    finally:
        await other.close()
    fields["weekday"] = "72"
    r = await submit(client, url, fields, "preview")
    html = await r.text()
    assert "页面载入于版本 1（当前为版本 2）" in html
    r = await submit(client, url, form_of(html, "imax"), "publish")
    assert r.status == 303
    version, files, audits = db_state(client.db_url)
    text = files["prices.yml"].decode()
    assert version == 3
    assert "{key: imax, label: IMAX激光厅, weekday: 72, weekend: 85}" in text
    assert "{key: dolby, label: 杜比影院, weekday: 76, weekend: 90}" in text
    assert [(a[0], a[2]) for a in audits] == [("ed2", "dolby"), ("ed", "imax")]


async def test_negative_price_shows_the_line_and_publishes_nothing(client):
    await login(client, "ed")
    url = "/editor/records/prices/imax"
    _, fields = await open_form(client, url)
    fields["weekday"] = "-1"
    for op in ("preview", "publish"):
        r = await submit(client, url, fields, op)
        html = await r.text()
        assert r.status == 422, html
        assert problems_of(html) == ["prices.yml:8: base.3.weekday: ensure this value is greater than or equal to 0"]
        assert 'class="field invalid"' in html and "第8行：ensure this value is greater than or equal to 0" in html
        assert 'name="weekday" value="-1"' in html  # the form keeps what was typed
        assert "publish-btn" not in html
    _, fields = await open_form(client, "/editor/documents/parking")
    fields["fee_per_hour"] = "-1"
    r = await submit(client, "/editor/documents/parking", fields, "preview")
    assert r.status == 422
    assert problems_of(await r.text())[0].startswith("parking.yml:3: fee_per_hour: ensure this value is greater")
    version, _, audits = db_state(client.db_url)
    assert version == 1 and audits == []


async def test_form_errors_and_cross_file_problems(client):
    await login(client, "ed")
    # YAML boxes are checked before anything else
    url = "/editor/documents/complaints"
    _, fields = await open_form(client, url)
    assert fields["escalation.human_online"].startswith("我已为您转接人工客服")
    assert fields["sla_minutes.complaint"] == "1440" and fields["sla_minutes.emergency"] == "5"  # one input per type
    fields["sla_minutes.complaint"] = "明天"
    r = await submit(client, url, fields, "preview")
    html = await r.text()
    assert r.status == 422 and re.search(r'class="field invalid[^"]*">\s*<label for="f-sla_minutes-complaint"', html)
    # de-escalation wording must not use a forbidden phrase (a cross-file check of the validator)
    _, fields = await open_form(client, url)
    fields["empathy"] = fields["empathy"] + "\n规定如此，请您理解。"
    r = await submit(client, url, fields, "preview")
    html = await r.text()
    assert r.status == 422 and "forbidden phrase 「规定如此」" in html
    # a film title that is already taken
    _, fields = await open_form(client, "/editor/records/films/%E6%B7%B1%E6%B5%B7%E5%9B%9E%E5%A3%B0")  # 深海回声
    fields["title"] = "星际归途"
    r = await submit(client, "/editor/records/films/%E6%B7%B1%E6%B5%B7%E5%9B%9E%E5%A3%B0", fields, "preview")
    assert r.status == 422 and "不能改成重复的" in await r.text()
    assert db_state(client.db_url)[0] == 1


async def test_publish_needs_the_previewed_content(client):
    await login(client, "ed")
    url = "/editor/documents/parking"
    _, fields = await open_form(client, url)
    fields["fee_per_hour"] = "6"
    r = await submit(client, url, fields, "publish")  # never previewed
    html = await r.text()
    assert r.status == 200 and "请核对下面新的预览" in html and "publish-btn" in html
    previewed = form_of(html, "parking")
    previewed["fee_per_hour"] = "8"  # changed after the preview
    r = await submit(client, url, previewed, "publish")
    assert r.status == 200 and "请核对下面新的预览" in await r.text()
    assert db_state(client.db_url)[0] == 1
    _, fields = await open_form(client, url)
    r = await submit(client, url, fields, "preview")  # nothing changed: nothing to publish
    html = await r.text()
    assert "没有需要发布的修改" in html and "publish-btn" not in html


async def test_document_fields_keep_the_rest_of_the_file(client):
    await login(client, "ed")
    url = "/editor/documents/cinema"
    r, html = await preview_then_publish(client, url, {"first_show": "09:50", "human_service.start": "08:30"})
    assert r.status == 303, html
    version, files, audits = db_state(client.db_url)
    text = files["cinema.yml"].decode()
    assert 'first_show: "09:50"' in text and 'start: "08:30"' in text and 'end: "24:00"' in text
    assert text.startswith("# 影城基本信息")
    assert audits[-1][1:4] == ("cinema.yml", "first_show,human_service", "update")
    assert audits[-1][4] == {"first_show": "10:00", "human_service": {"start": "09:00", "end": "24:00"}}


async def test_new_record_and_delete(client):
    await login(client, "ed")
    html, fields = await open_form(client, "/editor/new/facilities")
    fields.update({"key": "umbrella", "name": "雨伞借用", "aliases": "雨伞, 借伞",
                   "answer": "下雨天可凭电影票在5楼前台免费借用雨伞，请于3天内归还。"})
    fields["preview_question"] = ""
    r = await submit(client, "/editor/new/facilities", fields, "preview")
    html = await r.text()
    assert r.status == 200, html
    r = await submit(client, "/editor/new/facilities", form_of(html, "facilities"), "publish")
    assert r.status == 303 and r.headers["Location"] == "/editor/records/facilities/umbrella?published=2"
    version, files, audits = db_state(client.db_url)
    assert "下雨天可凭电影票在5楼前台免费借用雨伞" in files["facilities.yml"].decode()
    assert audits[-1][1:4] == ("facilities", "umbrella", "create") and audits[-1][4] is None
    # an id that exists already
    _, fields = await open_form(client, "/editor/new/facilities")
    fields.update({"key": "wifi", "name": "无线网络", "aliases": "WiFi", "answer": "有免费WiFi。"})
    r = await submit(client, "/editor/new/facilities", fields, "preview")
    assert r.status == 422 and "已经有标识为「wifi」的记录" in await r.text()

    # a film that still has showtimes cannot be deleted: the validator says where it is used
    url = "/editor/records/films/%E7%86%8A%E7%8C%AB%E6%80%BB%E5%8A%A8%E5%91%98"  # 熊猫总动员
    _, fields = await open_form(client, url)
    r = await submit(client, url, fields, "delete")
    assert r.status == 422 and "showtimes.csv 第4行 影片：「熊猫总动员」不在影片列表里" in await r.text()

    _, fields = await open_form(client, "/editor/records/facilities/umbrella")
    r = await submit(client, "/editor/records/facilities/umbrella", fields, "delete")
    assert r.status == 303 and "deleted=umbrella" in r.headers["Location"]
    version, files, audits = db_state(client.db_url)
    assert version == 3 and "雨伞" not in files["facilities.yml"].decode()
    assert audits[-1][1:4] == ("facilities", "umbrella", "delete") and audits[-1][4]["name"] == "雨伞借用"


# --------------------------------------------------------------------------- showtimes
async def test_csv_upload_shows_the_changes_and_publishes(client):
    await login(client, "ed")
    html, fields = await open_form(client, "/editor/showtimes")
    current = (await (await client.get("/editor/showtimes.csv")).read())
    assert current.startswith("\ufeffday,start,film,hall,version\n".encode())  # the BOM: Excel on Chinese Windows
    current = current[3:]
    new_csv = current.replace("daily,10:00,星际归途,1,2D\n".encode(), b"") + "daily,23:30,熊猫总动员,5,2D\n".encode()
    r = await client.post("/editor/showtimes", data=upload(dict(fields, op="preview"), new_csv), allow_redirects=False)
    html = await r.text()
    assert r.status == 200, html
    added = re.search(r'<table class="grid added" id="added">(.*?)</table>', html, re.S).group(1)
    removed = re.search(r'<table class="grid removed" id="removed">(.*?)</table>', html, re.S).group(1)
    assert "<td>23:30</td><td>熊猫总动员</td><td>5</td>" in added and "星际归途" not in added
    assert "<td>10:00</td><td>星际归途</td><td>1</td>" in removed
    assert 'id="added-count">1<' in html and 'id="removed-count">1<' in html
    assert "ask_showtimes" in html
    assert db_state(client.db_url)[0] == 1

    previewed = form_of(html, "/editor/showtimes")  # the uploaded CSV travels in the form
    r = await client.post("/editor/showtimes", data=dict(previewed, op="publish"), allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/editor/showtimes?published=2"
    version, files, audits = db_state(client.db_url)
    assert version == 2 and files["showtimes.csv"] == new_csv
    assert audits[-1][1:4] == ("showtimes.csv", "upload", "replace")
    assert audits[-1][4]["removed"][0]["film"] == "星际归途" and audits[-1][5]["added"][0]["start"] == "23:30"
    html = await (await client.get("/editor/audit?entity=showtimes.csv")).text()
    assert "删除的场次" in html and "daily 23:30 熊猫总动员 5 2D" in html


async def test_bad_csv_is_refused_with_lines(client):
    await login(client, "ed")
    _, fields = await open_form(client, "/editor/showtimes")
    bad = ("day,start,film,hall,version\ndaily,10:00,星际归途,1,2D\ndaily,25:00,星际归途,2,2D\n"
           "daily,11:00,不存在的电影,3,2D\n").encode("gb18030")  # as Excel saves it on Chinese Windows
    r = await client.post("/editor/showtimes", data=upload(dict(fields, op="preview"), bad))
    html = await r.text()
    assert r.status == 422
    assert "已按 GB18030" in html
    # every problem at once, in Chinese, by row and column: a bad time does not hide an unknown film
    assert problems_of(html) == ["第3行 开场时间：「25:00」应为 时:分，如 09:30",
                                 "第4行 影片：「不存在的电影」不在影片列表里（片名要与“影片”页上的完全一致）"]
    assert re.search(r'<tr data-line="3" class="bad">.*?<td class="bad-cell" data-column="start">25:00</td>.*?'
                     r'<tr class="bad-detail" data-line="3">', html, re.S)
    assert re.search(r'<tr data-line="4" class="bad">.*?<td class="bad-cell" data-column="film">不存在的电影</td>', html, re.S)
    assert '<tr data-line="2" class="">' in html
    assert "publish-btn" not in html
    assert db_state(client.db_url)[0] == 1


async def test_csv_in_spreadsheet_spelling_is_accepted(client):
    """Chinese headers, 2026/12/3, 9:30 and 周五 as Excel users type them are brought into the file's spelling."""
    await login(client, "ed")
    _, fields = await open_form(client, "/editor/showtimes")
    current = (await (await client.get("/editor/showtimes.csv")).read())[3:].decode()
    body = current.split("\n", 1)[1]
    csv_text = "日期,开场时间,影片,厅号,版本\n" + body + "2099/12/3,9:30,熊猫总动员,5,2d\n周五,23:40,星际归途,1,2D\n"
    r = await client.post("/editor/showtimes", data=upload(dict(fields, op="preview"), csv_text.encode()))
    html = await r.text()
    assert r.status == 200, problems_of(html)
    added = re.search(r'<table class="grid added" id="added">(.*?)</table>', html, re.S).group(1)
    assert "<td>2099-12-03</td><td>09:30</td><td>熊猫总动员</td>" in added and "<td>fri</td><td>23:40</td>" in added
    assert 'id="removed-count">0<' in html


# --------------------------------------------------------------------------- versions and rollback
async def test_rollback_restores_an_earlier_version(client, run_action, tracker_factory):
    from actions import topics

    await login(client, "ed")
    r, _ = await preview_then_publish(client, "/editor/documents/parking", {"fee_per_hour": "6"})
    assert r.status == 303
    texts, _, _ = await asyncio.to_thread(run_action, topics.ActionParking(), tracker_factory("停车怎么收费", "ask_parking"))
    assert "每小时6元" in texts[0]

    html = await (await client.get("/editor/versions")).text()
    assert 'data-version="2" class="current"' in html and 'href="/editor/versions/1"' in html
    html = await (await client.get("/editor/versions/1")).text()
    assert '<span class="del">-fee_per_hour: 6</span>' in html and '<span class="add">+fee_per_hour: 5</span>' in html
    fields = form_of(html, "/rollback")
    assert fields["base_version"] == "2"

    r = await client.post("/editor/versions/1/rollback", data=dict(fields, base_version="1"), allow_redirects=False)
    assert r.status == 409  # the page was older than the current version
    r = await client.post("/editor/versions/1/rollback", data=fields, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/editor/versions?rolled=3&from=1"
    version, files, audits = db_state(client.db_url)
    assert version == 3 and b"fee_per_hour: 5" in files["parking.yml"]
    assert audits[-1][:4] == ("ed", "knowledge", "1", "rollback")
    assert audits[-1][4:] == ({"version": 2}, {"version": 3, "restored_version": 1})
    texts, _, _ = await asyncio.to_thread(run_action, topics.ActionParking(), tracker_factory("停车怎么收费", "ask_parking"))
    assert "每小时5元" in texts[0]
    html = await (await client.get("/editor/versions?rolled=3&from=1")).text()
    assert "版本 1 生效时的内容已重新发布为版本 3" in html
    assert (await client.get("/editor/versions/99")).status == 404


# --------------------------------------------------------------------------- the answer preview and Rasa
async def test_preview_answers_from_the_draft(client, rasa_stub):
    await login(client, "ed")
    url = "/editor/documents/parking"
    _, fields = await open_form(client, url)
    fields["fee_per_hour"] = "6"
    r = await submit(client, url, fields, "preview")
    html = await r.text()
    assert "ask_parking" in html and "置信度 0.97" in html
    before, after = re.findall(r'<div class="bubble[^"]*"\s*>(.*?)</div>', html, re.S)
    assert "每小时5元" in before and "每小时6元" in after


async def test_preview_says_when_rasa_is_unreachable(kb_url):
    from aiohttp.test_utils import TestClient, TestServer

    from bot.services.app import create_app

    make_users(kb_url)
    async with TestClient(TestServer(create_app(editor_settings(kb_url, "http://127.0.0.1:9")))) as c:
        await login(c, "ed")
        _, fields = await open_form(c, "/editor/documents/parking")
        fields["fee_per_hour"] = "6"
        r = await submit(c, "/editor/documents/parking", fields, "preview")
        html = await r.text()
        assert r.status == 200
        assert "无法连接 Rasa 服务（http://127.0.0.1:9）" in html and "请在“意图”中手动选择" in html
        assert "publish-btn" in html  # the change itself can still be published
        fields["preview_intent"] = "ask_parking"  # choose the intent by hand
        r = await submit(c, "/editor/documents/parking", fields, "preview")
        html = await r.text()
        assert "已按您选择的意图预览" in html and "每小时6元" in html
