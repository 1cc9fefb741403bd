"""The knowledge editor in a real browser (Debian's Chromium driven by Playwright; never `playwright install`):
an editor logs in, changes the parking fee to 6, previews the bot's answer, publishes, and sees the new version.
The app runs on a free port with production cookie settings; Rasa's ``/model/parse`` is a stub on another port.
Screenshots: test-artifacts/editor-*.png."""
from __future__ import annotations

import os
from typing import List

import pytest

from tests.servers import BackgroundServer
from tests.conftest import ROOT
from tests.test_editor import PASSWORDS, db_state, editor_settings, fake_parse, make_users, rasa_authorised

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("XINGHE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
WAIT_MS = 30_000


class Servers(BackgroundServer):
    """The desk app (with the editor) and a Rasa parse stub, served in their own thread and event loop."""

    def __init__(self, db_url: str) -> None:
        from tests.stack import free_port

        super().__init__("editor-server")
        self.db_url = db_url
        self.port, self.rasa_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.parsed: List[str] = []

    def _rasa_app(self):
        from aiohttp import web

        async def parse(request: web.Request) -> web.Response:
            if not rasa_authorised(request):
                return web.json_response({"message": "unauthorized"}, status=401)
            text = (await request.json())["text"]
            self.parsed.append(text)
            return web.json_response(fake_parse(text))

        app = web.Application()
        app.router.add_post("/model/parse", parse)
        return app

    def build(self):
        from bot.services.app import create_app

        settings = editor_settings(self.db_url, f"http://127.0.0.1:{self.rasa_port}", secure_cookies=True)
        return [(self._rasa_app(), self.rasa_port), (create_app(settings), self.port)]


def watched_page(browser, base: str, problems: List[str], only: str = ""):
    """A new context and page whose script errors, HTTP errors (of URLs containing ``only``) and requests
    leaving ``base`` are appended to ``problems``."""
    context = browser.new_context(viewport={"width": 1360, "height": 1000}, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and only in page.url else None)
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
            if r.status >= 400 and only in r.url else None)
    page.on("request", lambda r: problems.append(f"outside request: {r.url}")
            if not r.url.startswith((base, "data:", "blob:")) else None)
    return context, page


@pytest.fixture()
def servers(kb_url):
    make_users(kb_url)
    s = Servers(kb_url).start()
    yield s
    s.stop()


def test_editor_changes_the_parking_fee_in_the_browser(servers, chromium):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = servers.base
    problems: List[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            context, page = watched_page(browser, base, problems, only="/editor")

            # nothing without a login; an editor logs in on the editors' login page, back where they wanted to go
            _login_as_editor(page, base, "/editor/")

            expect(page.locator("#current-version")).to_contain_text("版本 1")
            page.click("text=停车规则")
            page.wait_for_url(f"{base}/editor/documents/parking")

            # change the fee and preview: the draft's answer, the change, and nothing published yet
            fee = page.locator("#f-fee_per_hour")
            expect(fee).to_have_value("5")
            fee.fill("6")
            expect(page.locator("#preview-question")).to_have_value("停车怎么收费")
            page.click("#preview-btn")
            after = page.locator("#preview-after")
            expect(after).to_contain_text("每小时6元")
            expect(page.locator("#preview-result")).to_contain_text("ask_parking")
            expect(page.locator("#changes")).to_contain_text("fee_per_hour")
            expect(page.locator("#changes td.after")).to_have_text("6")
            expect(page.locator("#publish-btn")).to_be_enabled()
            assert servers.parsed == ["停车怎么收费"]
            assert db_state(servers.db_url)[0] == 1
            page.screenshot(path=str(ARTIFACTS / "editor-preview.png"), full_page=True)

            # publish: the page says which version is live, and the bot's store has it
            page.click("#publish-btn")
            expect(page.locator("#flash-published")).to_contain_text("已发布为版本 2")
            expect(page.locator("#f-fee_per_hour")).to_have_value("6")
            page.screenshot(path=str(ARTIFACTS / "editor-published.png"))
            version, files, audits = db_state(servers.db_url)
            assert version == 2 and b"fee_per_hour: 6" in files["parking.yml"]
            assert audits[-1][:6] == ("ed", "parking.yml", "fee_per_hour", "update", {"fee_per_hour": 5},
                                      {"fee_per_hour": 6})

            # the versions page shows the new version as current; the audit page shows who changed what
            page.click("text=版本与回滚")
            current = page.locator('#versions tr[data-version="2"]')
            expect(current).to_contain_text("当前")
            expect(current).to_contain_text("ed")
            expect(page.locator('#versions tr[data-version="1"] .rollback-link')).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "editor-versions.png"))
            page.click("text=修改记录")
            row = page.locator('#audit tr[data-entity="parking.yml"]').first
            expect(row).to_contain_text("ed")
            expect(row.locator("td.before").first).to_have_text("5")
            expect(row.locator("td.after").first).to_have_text("6")
            page.screenshot(path=str(ARTIFACTS / "editor-audit.png"))
            context.close()
        finally:
            browser.close()
    assert not problems, problems


PHONE = {"width": 390, "height": 844}


def _login_as_editor(page, base: str, start: str, shot: str = "") -> None:
    """Through the editors' own login page, back to where the editor wanted to go."""
    page.goto(f"{base}{start}")
    assert "/editor/login" in page.url
    assert "知识库编辑登录" in page.locator("h1").inner_text()
    assert "make user NAME=" in page.locator("#login-hint").inner_text()
    if shot:
        page.screenshot(path=str(ARTIFACTS / f"{shot}.png"))
        size = page.viewport_size
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(ARTIFACTS / f"{shot}-phone.png"))
        page.set_viewport_size(size)
    page.fill("#username", "ed")
    page.fill("#password", PASSWORDS["ed"])
    page.click("#login-btn")
    page.wait_for_url(f"{base}{start}")


def test_csv_errors_are_listed_at_once_with_the_bad_rows_marked(servers, chromium):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = servers.base
    problems: List[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            context, page = watched_page(browser, base, problems, only="/editor/static")
            _login_as_editor(page, base, "/editor/showtimes", shot="editor-login")
            # an Excel-style sheet: Chinese headers, 2026/12/3-style dates and 9:30 are fine; three rows are not
            csv_text = ("日期,开场时间,影片,厅号,版本\n"
                        "2099/12/3,9:30,星际归途,1,2D\n"
                        "daily,25:00,星际归途,2,2D\n"
                        "daily,11:00,不存在的电影,3,2D\n"
                        "daily,12:00,星际归途,9,2D\n")
            page.click("text=或直接编辑 CSV 文本")
            page.fill("#csv-text", csv_text)
            page.click("#preview-btn")
            items = page.locator("#problems li.problem")
            expect(items).to_have_count(3)
            texts = items.all_inner_texts()
            assert texts[0].startswith("第3行 开场时间：") and "25:00" in texts[0]
            assert texts[1].startswith("第4行 影片：") and "不存在的电影" in texts[1]
            assert texts[2].startswith("第5行 厅号：") and "没有9号厅" in texts[2]
            bad = page.locator("#upload-rows tr.bad")
            expect(bad).to_have_count(3)
            expect(page.locator('#upload-rows tr[data-line="2"]')).not_to_have_class("bad")
            expect(page.locator('#upload-rows tr[data-line="3"] td.bad-cell')).to_have_text("25:00")
            expect(page.locator('#upload-rows tr[data-line="5"] td.bad-cell')).to_have_text("9")
            expect(page.locator("#publish-btn")).to_have_count(0)
            # the bad row's cells are visibly marked: a red background, not just a class
            colour = page.locator('#upload-rows tr[data-line="3"] td').first.evaluate(
                "td => getComputedStyle(td).backgroundColor")
            assert colour not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)"), colour
            page.locator("#problems").screenshot(path=str(ARTIFACTS / "editor-csv-errors-list.png"))
            page.screenshot(path=str(ARTIFACTS / "editor-csv-errors.png"), full_page=True)
            page.set_viewport_size(PHONE)
            page.screenshot(path=str(ARTIFACTS / "editor-csv-errors-phone.png"), full_page=True)
            assert db_state(servers.db_url)[0] == 1
            context.close()
        finally:
            browser.close()
    assert not [p for p in problems if "HTTP 422" not in p], problems


def test_a_scheduled_change_takes_effect_by_itself(servers, chromium, run_action, tracker_factory):
    """The editor schedules a new parking fee a few seconds ahead; at that moment the bot answers with it and the
    version list shows it as current, with no click and no process started for it."""
    import datetime as dt
    import time

    from playwright.sync_api import expect, sync_playwright

    from actions import topics
    from bot.services.editor.common import local_now

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = servers.base
    problems: List[str] = []

    def bot_says() -> str:
        """The action server's answer, read from the store (in a thread: Playwright holds this one's loop)."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            texts, _, _ = pool.submit(run_action, topics.ActionParking(),
                                      tracker_factory("停车怎么收费", "ask_parking")).result()
        return texts[0]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            context, page = watched_page(browser, base, problems, only="/editor")
            _login_as_editor(page, base, "/editor/documents/parking")
            page.fill("#f-fee_per_hour", "7")
            # leaving with an unpublished edit: the browser asks first (dismissed: the edit stays)
            dialogs: List[str] = []
            page.once("dialog", lambda d: (dialogs.append(d.type), d.dismiss()))
            page.click("nav >> text=排片")
            page.wait_for_timeout(500)
            assert dialogs == ["beforeunload"] and page.url.endswith("/editor/documents/parking")
            expect(page.locator("#f-fee_per_hour")).to_have_value("7")
            page.click("#preview-btn")
            expect(page.locator("#preview-after")).to_contain_text("每小时7元")
            moment = local_now().replace(microsecond=0) + dt.timedelta(seconds=20)
            page.check("#when-later")
            page.fill("#publish-at", moment.strftime("%Y-%m-%dT%H:%M:%S"))
            page.fill("#publish-comment", "停车费调整为每小时7元")
            page.screenshot(path=str(ARTIFACTS / "editor-schedule.png"), full_page=True)
            page.set_viewport_size(PHONE)
            page.locator("#publish-options").screenshot(path=str(ARTIFACTS / "editor-schedule-phone.png"))
            page.set_viewport_size({"width": 1360, "height": 1000})
            page.click("#publish-btn")
            expect(page.locator("#flash-scheduled")).to_contain_text("将于")
            expect(page.locator("#f-fee_per_hour")).to_have_value("5")  # still what is in effect now
            assert "每小时5元" in bot_says()
            page.click("text=版本与回滚")
            row = page.locator('#versions tr[data-version="2"]')
            expect(row).to_contain_text("待生效")
            expect(row).to_contain_text("停车费调整为每小时7元")
            page.screenshot(path=str(ARTIFACTS / "editor-versions-pending.png"), full_page=True)
            page.set_viewport_size(PHONE)
            page.screenshot(path=str(ARTIFACTS / "editor-versions-pending-phone.png"), full_page=True)

            wait = (moment - local_now()).total_seconds() + 1
            assert wait > 0, "the scheduled moment passed before the checks above ran"
            time.sleep(wait)
            assert "每小时7元" in bot_says()  # the bot took it at its moment
            page.reload()
            expect(page.locator('#versions tr[data-version="2"]')).to_contain_text("当前")
            expect(page.locator('#versions tr[data-version="1"]')).not_to_contain_text("当前")
            page.screenshot(path=str(ARTIFACTS / "editor-versions-took-effect-phone.png"), full_page=True)
            # what the version changed, file by file, each undoable on its own
            page.set_viewport_size({"width": 1360, "height": 1000})
            page.locator('#versions tr[data-version="2"] a').first.click()
            expect(page.locator('#own-changes .file-change[data-file="parking.yml"] .revert-btn')).to_be_visible()
            expect(page.locator("#own-changes")).to_contain_text("+fee_per_hour: 7")
            page.screenshot(path=str(ARTIFACTS / "editor-version-changes.png"), full_page=True)
            context.close()
        finally:
            browser.close()
    assert not problems, problems
