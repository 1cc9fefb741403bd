"""The first run of `make run` on an empty database, in a real browser: the supervisor account it creates, its
one-time password shown once at the end of the output (and nowhere else), and the front page's links.

This file runs before test_desk.py (file order), whose throttling test uses up the logins of this address."""
from __future__ import annotations

import re
from typing import List

from tests.test_editor_browser import ARTIFACTS, CHROMIUM_ARGS, PHONE, WAIT_MS


def test_first_run_creates_a_supervisor_whose_password_is_shown_once(run_stack, chromium):
    from playwright.sync_api import expect, sync_playwright

    out = run_stack.log.read_text(errors="replace")
    found = re.search(r"==> 首次运行：已创建主管账号 admin\n\s+一次性密码：(\S+)", out)
    assert found, out[-3000:]
    password = found.group(1)
    assert out.index("==> 星河客服 is up") < found.start()  # last, where it is seen
    assert out.count(password) == 1
    for path in run_stack.var.rglob("*"):  # not in the database, a generated file or another log
        if path.is_file() and path != run_stack.log and path.stat().st_size < 50_000_000:
            assert password.encode() not in path.read_bytes(), path

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = run_stack.desk
    problems: List[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai")
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
            page.goto(f"{base}/")
            expect(page.locator("#link-chat")).to_have_attribute("href", "/chat")
            expect(page.locator("#link-desk")).to_have_attribute("href", "/desk/")
            expect(page.locator("#link-editor")).to_have_attribute("href", "/editor/")
            expect(page.locator("#first-run-hint")).to_contain_text("make run")
            page.screenshot(path=str(ARTIFACTS / "first-run-home-phone.png"), full_page=True)
            page.set_viewport_size({"width": 1360, "height": 900})
            page.screenshot(path=str(ARTIFACTS / "first-run-home.png"))

            page.click("#link-desk")
            page.wait_for_url(re.compile(r".*/desk/login.*"))
            page.fill("#username", "admin")
            page.fill("#password", password)
            page.click("#login-btn")
            # the one-time password is replaced at the first login (tests/test_account.py covers the page)
            page.wait_for_url(re.compile(r".*/desk/password.*"))
            page.fill("#current_password", password)
            page.fill("#new_password", "first-run-new-password-42")
            page.fill("#new_password_again", "first-run-new-password-42")
            page.click("#password-btn")
            page.wait_for_url(f"{base}/desk/")
            page.screenshot(path=str(ARTIFACTS / "first-run-desk.png"))
            page.goto(f"{base}/editor/")  # a supervisor edits the knowledge too
            expect(page.locator("#me")).to_have_attribute("data-role", "supervisor")
            expect(page.locator("#current-version")).to_contain_text("版本 1")
            context.close()
        finally:
            browser.close()
    assert not problems, problems
