"""Editor publishing beyond "now": scheduled changes, warnings to confirm, undoing one file, what each editor
changed in a conflict, per-hall-type inputs; the editors' login page, the front page and the first account."""
from __future__ import annotations

import datetime as dt
import re

from tests.test_editor import (client, db_state, form_of, login, open_form, rasa_stub, submit,  # noqa: F401
                               preview_then_publish, second_browser)

PARKING = "/editor/documents/parking"


def _local(delta: dt.timedelta) -> str:
    from bot.services.editor.common import local_now

    return (local_now() + delta).strftime("%Y-%m-%dT%H:%M")


async def _previewed(c, url, changes):
    _, fields = await open_form(c, url)
    fields.update(changes)
    r = await submit(c, url, fields, "preview")
    html = await r.text()
    assert r.status == 200, html
    return html, form_of(html, url.rsplit("/", 1)[-1])


async def test_a_scheduled_change_waits_for_its_moment(client, monkeypatch, run_action, tracker_factory):
    import asyncio

    from actions import topics
    from bot.kb import loader, timeline
    from bot.models import utcnow

    await login(client, "ed")
    html, fields = await _previewed(client, PARKING, {"fee_per_hour": "8"})
    assert 'id="when-later"' in html and 'id="publish-comment"' in html
    # a moment in the past is refused with a reason, nothing is written
    r = await submit(client, PARKING, dict(fields, publish_when="later", publish_at=_local(-dt.timedelta(hours=1))),
                     "publish")
    assert r.status == 200 and "定时生效的时间必须晚于现在" in await r.text()
    assert db_state(client.db_url)[0] == 1
    r = await submit(client, PARKING, dict(fields, publish_when="later", publish_at=_local(dt.timedelta(days=2)),
                                           publish_comment="周五起停车费调整"), "publish")
    assert r.status == 303 and "published=2" in r.headers["Location"] and "at=" in r.headers["Location"]
    html = await (await client.get(r.headers["Location"])).text()
    assert 'id="flash-scheduled"' in html and 'id="pending-note"' in html and 'id="f-fee_per_hour"' in html
    assert re.search(r'id="f-fee_per_hour"[^>]*value="5"', html)  # the form shows what is in effect now
    versions = await (await client.get("/editor/versions")).text()
    assert re.search(r'data-version="2" class="pending".*?周五起停车费调整', versions, re.S)
    assert 'data-version="1" class="current"' in versions
    texts, _, _ = await asyncio.to_thread(run_action, topics.ActionParking(), tracker_factory("停车怎么收费", "ask_parking"))
    assert "每小时5元" in texts[0]

    # two days later: the bot answers with the new fee, nobody clicked anything
    later = utcnow() + dt.timedelta(days=2, minutes=1)
    monkeypatch.setattr(timeline, "utcnow", lambda: later)
    texts, _, _ = await asyncio.to_thread(run_action, topics.ActionParking(), tracker_factory("停车怎么收费", "ask_parking"))
    assert "每小时8元" in texts[0]
    with __import__("bot.db", fromlist=["session_scope"]).session_scope(client.db_url) as s:
        assert timeline.current_version_id(s) == 2 and b"fee_per_hour: 8" in loader.current_files(s)["parking.yml"]


async def test_cancelling_a_scheduled_change(client):
    await login(client, "ed")
    _, fields = await _previewed(client, PARKING, {"fee_per_hour": "8"})
    r = await submit(client, PARKING, dict(fields, publish_when="later", publish_at=_local(dt.timedelta(days=1))),
                     "publish")
    assert r.status == 303
    html = await (await client.get("/editor/versions")).text()
    cancel = form_of(html, "/editor/versions/2/cancel")
    r = await client.post("/editor/versions/2/cancel", data=cancel, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/editor/versions?cancelled=2"
    html = await (await client.get("/editor/versions")).text()
    assert 'data-version="2" class="cancelled"' in html
    r = await client.post("/editor/versions/2/cancel", data=cancel, allow_redirects=False)
    assert r.status == 422  # not a scheduled version still to come any more


async def test_warnings_need_a_confirmation(client):
    await login(client, "ed")
    html, fields = await _previewed(client, PARKING, {"fee_per_hour": "50"})  # the daily cap is 40
    assert "停车每小时收费 50 元高于每日封顶 40 元" in html and 'id="confirm-warnings"' in html
    r = await submit(client, PARKING, fields, "publish")
    assert r.status == 200 and "勾选“我已核对”" in await r.text()
    assert db_state(client.db_url)[0] == 1
    r = await submit(client, PARKING, dict(fields, publish_confirm="1"), "publish")
    assert r.status == 303 and db_state(client.db_url)[0] == 2
    # a price more than twice the old one
    url = "/editor/records/prices/imax"
    html, _ = await _previewed(client, url, {"weekend": "900"})
    assert "周末价 900 元不在通常的" in html


async def test_per_hall_type_free_hours_are_number_inputs(client):
    await login(client, "ed")
    html, fields = await open_form(client, PARKING)
    assert 'id="f-free_hours-hall_types-imax"' in html and 'id="f-free_hours-member_levels-gold"' in html
    assert "free_hours.hall_types" not in fields  # no YAML box
    assert fields["free_hours.hall_types.imax"] == "4" and fields["free_hours.hall_types.standard"] == ""
    fields.update({"free_hours.hall_types.imax": "5", "free_hours.hall_types.dolby": ""})
    r = await submit(client, PARKING, fields, "preview")
    html = await r.text()
    assert r.status == 200, html
    r = await submit(client, PARKING, form_of(html, "parking"), "publish")
    assert r.status == 303
    import yaml

    doc = yaml.safe_load(db_state(client.db_url)[1]["parking.yml"])
    assert doc["free_hours"]["hall_types"] == {"imax": 5, "4dx": 4, "vip": 4}


async def test_conflict_shows_what_each_editor_changed(client):
    await login(client, "ed")
    _, mine = await open_form(client, PARKING)
    async with second_browser(client) as other:
        await login(other, "ed2")
        r, _ = await preview_then_publish(other, PARKING, {"daily_cap": "45"})
        assert r.status == 303
    mine["fee_per_hour"] = "6"
    r = await submit(client, PARKING, mine, "preview")
    html = await r.text()
    assert r.status == 409, html
    theirs = re.search(r'id="conflict-theirs">(.*?)</div>', html, re.S).group(1)
    yours = re.search(r'id="conflict-yours">(.*?)</div>', html, re.S).group(1)
    assert "daily_cap" in theirs and "fee_per_hour" not in theirs
    assert "fee_per_hour" in yours and "daily_cap" not in yours and "location" not in yours


async def test_undo_one_files_change_in_the_editor(client):
    await login(client, "ed")
    r, _ = await preview_then_publish(client, PARKING, {"fee_per_hour": "6"})
    assert r.status == 303
    r, _ = await preview_then_publish(client, "/editor/documents/lost_found", {"keep_days": "60"})
    assert r.status == 303
    html = await (await client.get("/editor/versions/2")).text()
    assert '<span class="add">+fee_per_hour: 6</span>' in html
    fields = form_of(html, "/editor/versions/2/revert")
    assert fields["file"] == "parking.yml"
    r = await client.post("/editor/versions/2/revert", data=fields, allow_redirects=False)
    assert r.status == 303 and "reverted=4" in r.headers["Location"]
    version, files, audits = db_state(client.db_url)
    assert b"fee_per_hour: 5" in files["parking.yml"] and b"keep_days: 60" in files["lost_found.yml"]
    assert audits[-1][1:4] == ("parking.yml", "2", "revert")


async def test_editors_login_page_and_front_page(client):
    r = await client.get("/editor/records/films", allow_redirects=False)
    from urllib.parse import unquote

    assert unquote(r.headers["Location"]) == "/editor/login?next=/editor/records/films"
    html = await (await client.get(r.headers["Location"])).text()
    assert "知识库编辑登录" in html and "make user NAME=" in html and "ensure" not in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    r = await client.post("/editor/login", data={"username": "ed", "password": "wrong-password-1", "csrf_token": token,
                                                  "next": "/editor/records/films"}, allow_redirects=False)
    assert r.headers["Location"] == "/editor/login?error=invalid"
    r = await client.post("/editor/login", data={"username": "ed", "password": "editor-pass-123", "csrf_token": token,
                                                  "next": "https://evil.example/"}, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/editor/"
    html = await (await client.get("/editor/")).text()
    assert 'action="/editor/logout"' in html
    home = await (await client.get("/")).text()
    assert 'href="/chat"' in home and 'href="/desk/"' in home and 'href="/editor/"' in home and "make run" in home


def test_first_admin_only_on_an_empty_database(tmp_path, capsys):
    from bot.db import session_scope
    from bot.models import User
    from bot.services import users
    from bot.services.auth import verify_password

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert users.main(["--db", url, "ensure-first-admin", "--login-url", "http://127.0.0.1:8080/desk/login"]) == 0
    out = capsys.readouterr().out
    password = re.search(r"一次性密码：(\S+)", out).group(1)
    with session_scope(url) as s:
        admin = s.get(User, "admin")
        assert admin.role == "supervisor" and verify_password(password, admin.password_hash)
    assert users.main(["--db", url, "ensure-first-admin"]) == 0  # accounts exist: nothing, and no password
    assert capsys.readouterr().out == ""
    assert users.main(["--db", url, "create", "小李", "--role", "editor", "--generate"]) == 0
    generated = re.search(r"password \(shown once\): (\S+)", capsys.readouterr().out).group(1)
    with session_scope(url) as s:
        assert verify_password(generated, s.get(User, "小李").password_hash)


async def test_showtimes_conflict_shows_what_each_editor_changed(client):
    from tests.test_editor import upload

    await login(client, "ed")
    _, mine = await open_form(client, "/editor/showtimes")
    current = (await (await client.get("/editor/showtimes.csv")).read())[3:]
    async with second_browser(client) as other:
        await login(other, "ed2")
        r = await other.get("/editor/showtimes")
        theirs_form = form_of(await r.text(), "/editor/showtimes")
        theirs_csv = current + "daily,23:30,熊猫总动员,5,2D\n".encode()
        r = await other.post("/editor/showtimes", data=upload(dict(theirs_form, op="preview"), theirs_csv))
        r = await other.post("/editor/showtimes", data=dict(form_of(await r.text(), "/editor/showtimes"), op="publish"),
                             allow_redirects=False)
        assert r.status == 303
    mine_csv = current + "daily,23:50,星际归途,1,2D\n".encode()
    r = await client.post("/editor/showtimes", data=upload(dict(mine, op="preview"), mine_csv))
    html = await r.text()
    assert r.status == 409, html
    theirs = re.search(r'id="conflict-theirs">(.*?)</div>', html, re.S).group(1)
    yours = re.search(r'id="conflict-yours">(.*?)</div>', html, re.S).group(1)
    assert "daily 23:30 熊猫总动员 5 2D" in theirs and "23:50" not in theirs
    assert "daily 23:50 星际归途 1 2D" in yours and "23:30" not in yours
