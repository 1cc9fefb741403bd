"""One-time passwords (first-run admin, ``make user``): until its owner sets their own on the password page,
a session opens nothing of the desk or the editor (pages redirect, APIs answer 403); the change needs the
present password, is audited and signs the account out elsewhere. The login pages give the exact commands.
The aiohttp test client on SQLite, and once in Chromium."""
from __future__ import annotations

import re

import pytest

from tests.test_desk import PASSWORDS, _login, client, desk_db, settings_for  # noqa: F401 (fixtures)

ONE_TIME = "tmp-pass-0123"
NEW = "my-own-password-1"


def _add_one_time_user(db_url: str, name: str = "xiaoli", role: str = "agent") -> None:
    from bot.db import session_scope
    from bot.services import users

    with session_scope(db_url) as s:
        users.create_user(s, name, role, ONE_TIME, rounds=4, one_time=True)


def _audits(db_url: str, action: str):
    from bot.db import session_scope
    from bot.models import AuditLog

    with session_scope(db_url) as s:
        return [(a.actor, a.entity_id, a.after) for a in s.query(AuditLog).filter_by(action=action)]


def _form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


async def test_login_pages_give_the_account_commands(client):
    for path in ("/desk/login", "/editor/login"):
        html = await (await client.get(path)).text()
        assert "make user NAME=" in html and "make run" in html and "admin" in html, path
        assert "首次登录" in html and "新密码" in html


async def test_one_time_password_opens_only_the_password_page(client, desk_db):
    _add_one_time_user(desk_db)
    r = await _login(client, "xiaoli", ONE_TIME)
    assert r.status == 302 and r.headers["Location"] == "/desk/"
    r = await client.get("/desk/", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/desk/password?next=/desk/"
    r = await client.get("/desk/api/queue", allow_redirects=False)
    assert r.status == 403 and (await r.json())["error"] == "password_change_required"
    r = await client.get("/editor/", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].startswith("/editor/password")

    page = await (await client.get("/desk/password?next=/desk/tickets")).text()
    assert "首次登录：请设置新密码" in page and "xiaoli" in page
    token = _form_token(page)
    form = {"csrf_token": token, "next": "/desk/tickets", "current_password": ONE_TIME,
            "new_password": NEW, "new_password_again": NEW}
    # what is refused, each said in Chinese, the account still limited
    for changes, said in (({"current_password": "wrong-password"}, "当前密码不正确"),
                          ({"new_password_again": NEW + "x"}, "两次输入的新密码不一致"),
                          ({"new_password": "short", "new_password_again": "short"}, "至少 10 个字符"),
                          ({"new_password": ONE_TIME, "new_password_again": ONE_TIME}, "不能与当前密码相同")):
        r = await client.post("/desk/password", data={**form, **changes}, allow_redirects=False)
        assert r.status == 400 and said in await r.text(), changes
    assert (await client.get("/desk/api/queue", allow_redirects=False)).status == 403
    r = await client.post("/desk/password", data={k: v for k, v in form.items() if k != "csrf_token"},
                          allow_redirects=False)
    assert r.status == 403  # CSRF as everywhere

    r = await client.post("/desk/password", data=form, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/desk/tickets"
    assert (await client.get("/desk/tickets", allow_redirects=False)).status == 200  # the same session goes on
    assert (await client.get("/desk/api/queue", allow_redirects=False)).status == 200
    [(actor, entity_id, after)] = _audits(desk_db, "password_changed")
    assert actor == entity_id == "xiaoli" and after["one_time_replaced"] is True

    # the one-time password is gone; the new one logs in without the detour
    client.session.cookie_jar.clear()
    r = await _login(client, "xiaoli", ONE_TIME)
    assert "error=invalid" in r.headers["Location"]
    await _login(client, "xiaoli", NEW)
    assert (await client.get("/desk/", allow_redirects=False)).status == 200


async def test_change_signs_out_the_other_sessions(desk_db):
    from aiohttp.test_utils import TestClient, TestServer

    from bot.services.app import create_app

    _add_one_time_user(desk_db, "boss2", "supervisor")
    app = create_app(settings_for(desk_db))
    async with TestClient(TestServer(app)) as first, TestClient(TestServer(create_app(settings_for(desk_db)))) as other:
        await _login(first, "boss2", ONE_TIME)
        await _login(other, "boss2", ONE_TIME)
        token = _form_token(await (await first.get("/desk/password")).text())
        r = await first.post("/desk/password", data={"csrf_token": token, "next": "", "current_password": ONE_TIME,
                                                     "new_password": NEW, "new_password_again": NEW},
                             allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/desk/"
        r = await other.get("/desk/", allow_redirects=False)
        assert r.status == 302 and r.headers["Location"].startswith("/desk/login")
    [(_, _, after)] = _audits(desk_db, "password_changed")
    assert after["sessions_revoked"] == 1


async def test_any_user_changes_their_own_password_from_the_top_bar(client, desk_db):
    """The voluntary change: linked from the desk's and the editor's top bar, the present password asked,
    the same rules as the forced change, CSRF, a confirmation and the way back; nobody else's account."""
    assert (await client.get("/desk/password", allow_redirects=False)).headers["Location"].startswith("/desk/login")
    await _login(client, "agent1")
    page = await (await client.get("/desk/tickets")).text()
    assert 'id="password-link" href="/desk/password?next=/desk/tickets"' in page
    page = await (await client.get("/desk/password?next=/desk/tickets")).text()
    assert "修改密码" in page and "首次登录" not in page and 'href="/desk/tickets" id="password-back"' in page
    token = _form_token(page)
    form = {"csrf_token": token, "next": "/desk/tickets", "current_password": PASSWORDS["agent1"],
            "new_password": NEW, "new_password_again": NEW}
    for changes, said in (({"current_password": ""}, "当前密码不正确"),
                          ({"current_password": PASSWORDS["agent2"]}, "当前密码不正确"),
                          ({"new_password_again": NEW + "x"}, "两次输入的新密码不一致"),
                          ({"new_password": "short", "new_password_again": "short"}, "至少 10 个字符"),
                          ({"new_password": PASSWORDS["agent1"], "new_password_again": PASSWORDS["agent1"]},
                           "不能与当前密码相同")):
        r = await client.post("/desk/password", data={**form, **changes}, allow_redirects=False)
        assert r.status == 400 and said in await r.text(), changes
    r = await client.post("/desk/password", data={**form, "csrf_token": "forged"}, allow_redirects=False)
    assert r.status == 403
    assert _audits(desk_db, "password_changed") == []
    # an agent has no editor: its password page is the desk's; a next page of another site is not followed
    r = await client.get("/editor/password?next=/desk/", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/desk/password?next=/desk/"
    page = await (await client.get("/desk/password?next=//evil.example/")).text()
    assert 'name="next" value="/desk/"' in page

    r = await client.post("/desk/password", data=form, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/desk/password?done=1&next=/desk/tickets"
    page = await (await client.get(r.headers["Location"])).text()
    assert "密码已修改" in page and 'href="/desk/tickets" id="password-back"' in page and "current_password" not in page
    assert (await client.get("/desk/tickets", allow_redirects=False)).status == 200  # this session goes on
    [(actor, entity_id, after)] = _audits(desk_db, "password_changed")
    assert actor == entity_id == "agent1" and after["one_time_replaced"] is False
    client.session.cookie_jar.clear()
    assert "error=invalid" in (await _login(client, "agent1")).headers["Location"]  # the old one is gone
    assert (await _login(client, "agent1", NEW)).headers["Location"] == "/desk/"

    # an editor, from the editor's top bar
    client.session.cookie_jar.clear()
    await _login(client, "ed")
    page = await (await client.get("/editor/")).text()
    assert 'id="password-link" href="/editor/password?next=/editor/"' in page
    page = await (await client.get("/editor/password?next=/editor/")).text()
    r = await client.post("/editor/password", data={
        "csrf_token": _form_token(page), "next": "/editor/", "current_password": PASSWORDS["ed"],
        "new_password": NEW, "new_password_again": NEW}, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].startswith("/editor/password?done=1")
    assert [a[0] for a in _audits(desk_db, "password_changed")] == ["agent1", "ed"]


def test_generated_and_first_run_passwords_are_one_time(tmp_path, capsys):
    from bot.db import session_scope
    from bot.models import User
    from bot.services import users

    url = f"sqlite:///{tmp_path / 'u.db'}"
    assert users.main(["--db", url, "ensure-first-admin"]) == 0
    assert "首次登录时须设置自己的新密码" in capsys.readouterr().out
    assert users.main(["--db", url, "create", "li", "--role", "agent", "--generate"]) == 0
    with session_scope(url) as s:
        assert s.get(User, "admin").must_change_password and s.get(User, "li").must_change_password
        users.create_user(s, "typed", "agent", "a-typed-password", rounds=4)
        assert not s.get(User, "typed").must_change_password  # chosen by its owner at the prompt


@pytest.mark.e2e
def test_first_login_sets_a_new_password_in_the_browser(desk_db, chromium):
    """The first-run admin in Chromium: the login hint, the one-time password, the forced page, the desk."""
    from playwright.sync_api import expect, sync_playwright

    from bot.db import session_scope
    from bot.services import users
    from tests.test_desk import DeskServer
    from tests.test_desk_browser import ARTIFACTS, CHROMIUM_ARGS

    with session_scope(desk_db) as s:
        for name in PASSWORDS:
            users.delete_user(s, name)
    with session_scope(desk_db) as s:
        one_time = users.ensure_first_admin(s, rounds=4)
    server = DeskServer(settings_for(desk_db)).start()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
            page.set_default_timeout(30_000)
            page.goto(f"{server.base}/desk/")
            expect(page.locator("#login-hint")).to_contain_text("make user NAME=")
            page.fill("#username", "admin")
            page.fill("#password", one_time)
            page.click("#login-btn")
            page.wait_for_url(re.compile(r".*/desk/password\?next=.*"))
            expect(page.locator("#password-notice")).to_contain_text("一次性密码")
            page.screenshot(path=str(ARTIFACTS / "account-first-login-phone.png"))
            page.goto(f"{server.base}/desk/stats")  # nothing else opens
            assert "/desk/password" in page.url
            page.fill("#current_password", one_time)
            page.fill("#new_password", NEW)
            page.fill("#new_password_again", NEW + "?")
            page.click("#password-btn")
            expect(page.locator("#password-error")).to_have_text("两次输入的新密码不一致。")
            page.fill("#current_password", one_time)
            page.fill("#new_password", NEW)
            page.fill("#new_password_again", NEW)
            page.click("#password-btn")
            page.wait_for_url(re.compile(r".*/desk/stats$"))
            expect(page.locator("#me")).to_contain_text("admin")
            # later, of their own accord: 「修改密码」 in the top bar, then back where they were
            page.click("#password-link")
            page.wait_for_url(re.compile(r".*/desk/password\?next=/desk/stats$"))
            expect(page.locator("h1")).to_have_text("修改密码")
            page.fill("#current_password", NEW)
            page.fill("#new_password", NEW + "-2")
            page.fill("#new_password_again", NEW + "-2")
            page.click("#password-btn")
            expect(page.locator("#password-done")).to_contain_text("密码已修改")
            page.screenshot(path=str(ARTIFACTS / "account-changed-phone.png"))
            page.click("#password-back")
            page.wait_for_url(re.compile(r".*/desk/stats$"))
            browser.close()
    finally:
        server.stop()
    assert [a[0] for a in _audits(desk_db, "password_changed")] == ["admin", "admin"]
