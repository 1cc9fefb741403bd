"""Screenshots of every page people use, at a phone size (390×844) and a desktop size (1366×900), for a
person to look at: the web chat (greeting, a showtimes answer, a handoff with the queue notice, an agent's
message, the rating prompt), the agent desk (login, queue and conversation list, a live conversation, the
tickets list, a ticket), the statistics page, the editor pages and the password change.

    .venv/bin/python tools/screenshots.py [--model models/xinghe-….tar.gz] [--out /work/shots] [--only phone]

It starts what the browser tests start (``tests/stack.py``: the action server and the Rasa server with the
real model on a throwaway SQLite store, the event pipeline to the local RabbitMQ and its consumer; the web app
in-process with its production cookie settings) and drives Debian's Chromium with Playwright. Files:
``<out>/<name>-phone.png`` and ``<out>/<name>-desktop.png``. Everything runs on 127.0.0.1 and stops at the end.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_desk import PASSWORDS  # noqa: E402  (the accounts tests/test_desk.make_users creates)

SIZES: Dict[str, Dict[str, Any]] = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1366, "height": 900}},
}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
WAIT_MS = 60_000
PASSWORD_USER = "shots-li"
PASSWORDS_IN_TURN = ["shots-old-pass-1", "shots-new-pass-2"]  # the password flow switches between them


@dataclass
class Shooter:
    out: Path
    size: str
    taken: List[Path]

    def __call__(self, page, name: str, *, full_page: bool = False) -> None:
        path = self.out / f"{name}-{self.size}.png"
        page.wait_for_timeout(400)  # let transitions and fonts settle
        page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        print(f"  {path}", flush=True)


def newest_model() -> str:
    models = sorted((ROOT / "models").glob("xinghe-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise SystemExit("no model in models/: run scripts/prepare.sh or pass --model")
    return str(models[-1])


@contextmanager
def running_stack(model: str, workdir: Path) -> Iterator[Any]:
    """The real servers (as the e2e tests start them), the accounts, human service round the clock, the desk."""
    from tests.conftest import event_pipeline
    from tests.stack import start_stack
    from tests.test_desk import DeskServer, desk_settings, publish_round_the_clock

    events = event_pipeline(workdir)
    stack = start_stack(model, workdir, extra_env={"RABBITMQ_PASSWORD": os.environ.get("RABBITMQ_PASSWORD", "guest")},
                        event_broker=events["endpoint"])
    stack.procs.append(events["start_consumer"](stack.env))
    desk = None
    try:
        publish_round_the_clock(stack.db_url)
        _add_password_user(stack.db_url)
        desk = DeskServer(desk_settings(stack, secure_cookies=True)).start()
        yield stack, desk
    finally:
        if desk is not None:
            desk.stop()
        stack.stop()
        events["cleanup"]()


def _add_password_user(db_url: str) -> None:
    from bot.db import session_scope
    from bot.models import User
    from bot.services import users

    with session_scope(db_url) as s:
        if s.get(User, PASSWORD_USER) is None:
            users.create_user(s, PASSWORD_USER, "agent", PASSWORDS_IN_TURN[0], rounds=4)


def _context(browser, size: str, base: str):
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **SIZES[size])
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: List[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
            if r.status >= 400 and "favicon" not in r.url else None)
    return context, page, problems


def _login(page, base: str, username: str, password: str = "", area: str = "desk") -> None:
    page.goto(f"{base}/{area}/login")
    page.fill("#username", username)
    page.fill("#password", password or PASSWORDS[username])
    page.click("#login-btn")
    page.wait_for_url(re.compile(re.escape(base) + r"/(desk|editor)/.*"))


def _send(chat, text: str) -> None:
    box = chat.get_by_role("textbox", name="输入您的问题")
    box.fill(text)
    box.press("Enter")


def _session_id(chat) -> str:
    import json

    return json.loads(chat.evaluate("() => window.localStorage.getItem('chat_session')"))["session_id"]


def _wait(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def service_flow(browser, base: str, db_url: str, shot: Shooter) -> str:
    """Web chat and desk together: greeting, showtimes, handoff, the agent's claim and reply, close, rating.
    Returns the handoff ticket's number."""
    from playwright.sync_api import expect

    from tests.test_desk import conversation, online_agents

    agent_ctx, desk, desk_problems = _context(browser, shot.size, base)
    patron_ctx, chat, chat_problems = _context(browser, shot.size, base)
    try:
        desk.goto(f"{base}/desk/")
        shot(desk, "desk-login")
        _login(desk, base, "agent1")
        expect(desk.locator("#conn-status")).to_have_text("在线")
        if desk.locator("#my-name").inner_text().strip() != "小李":
            desk.once("dialog", lambda d: d.accept("小李"))
            desk.click("#name-btn")
            expect(desk.locator("#my-name")).to_have_text("小李")
        _wait(lambda: "agent1" in online_agents(db_url), "agent1 online")

        chat.goto(f"{base}/chat")
        log = chat.locator(".rw-messages-container")
        expect(log).to_contain_text("欢迎来到")
        expect(chat.get_by_role("textbox", name="输入您的问题")).to_be_enabled()
        shot(chat, "chat-greeting")
        sid = _session_id(chat)

        _send(chat, "今天有哪些场次")
        expect(log).to_contain_text("场次")
        chat.wait_for_timeout(2500)  # the widget types the answer out
        shot(chat, "chat-showtimes")

        _send(chat, "转人工")
        expect(log).to_contain_text("人工客服")
        chat.wait_for_timeout(1500)
        shot(chat, "chat-handoff")

        item = desk.locator(f'.queue-item[data-sender="{sid}"]')
        expect(item).to_be_visible()
        desk.click('#list-tabs button[data-view="waiting"]')
        shot(desk, "desk-queue")
        item.locator("button.claim").click()
        expect(desk.locator("#conv-title")).to_have_text(sid)
        expect(log).to_contain_text("人工客服 小李 为您服务")
        desk.fill("#reply-text", "您好，我是客服小李，请问遇到了什么问题？")
        desk.click("#send-btn")
        expect(log).to_contain_text("请问遇到了什么问题")
        _send(chat, "我买的票退款一直没到账")
        expect(desk.locator("#transcript .msg.patron").last).to_contain_text("退款一直没到账")
        desk.check("#mode-note")
        desk.fill("#reply-text", "顾客说退款没到账，需查支付流水")
        desk.click("#send-btn")
        expect(desk.locator("#transcript .msg.note")).to_contain_text("需查支付流水")
        desk.check('input[name="mode"][value="reply"]')
        desk.fill("#label-input", "退款")
        desk.press("#label-input", "Enter")
        expect(desk.locator("#label-chips")).to_contain_text("退款")
        chat.wait_for_timeout(1200)
        shot(chat, "chat-agent")
        desk.click('#list-tabs button[data-view="open"]')
        expect(desk.locator(f'#conv-list li[data-sender="{sid}"]')).to_contain_text("退款一直没到账")
        shot(desk, "desk-conversation")
        shot(desk, "desk-conversation-full", full_page=True)

        number = conversation(db_url, sid).ticket_number
        desk.locator("summary", has_text="结束会话并办结工单").click()
        desk.fill("#close-resolution", "已核实退款，3个工作日内原路退回")
        desk.click("#close-btn")
        expect(desk.locator("#conv-empty")).to_contain_text("会话已结束")
        expect(log).to_contain_text("请为本次服务打分")
        expect(chat.get_by_role("button", name="快捷回复：5分 非常满意")).to_be_visible()
        chat.wait_for_timeout(1200)
        shot(chat, "chat-rating")
        chat.get_by_role("button", name="快捷回复：4分 满意").click()
        expect(log).to_contain_text("感谢您的评价")

        desk.goto(f"{base}/desk/tickets")
        shot(desk, "desk-tickets", full_page=True)
        desk.goto(f"{base}/desk/tickets/{number}")
        expect(desk.locator("#history")).to_contain_text("认领")
        shot(desk, "desk-ticket", full_page=True)
        for where, problems in (("desk", desk_problems), ("chat", chat_problems)):
            if problems:
                print(f"  {where} problems: {problems}", flush=True)
        return number
    finally:
        patron_ctx.close()
        agent_ctx.close()


def stats_and_editor(browser, base: str, shot: Shooter) -> None:
    """The supervisor's statistics page and the editor's pages."""
    context, page, problems = _context(browser, shot.size, base)
    try:
        _login(page, base, "boss")
        page.goto(f"{base}/desk/stats")
        _wait(lambda: page.evaluate("() => !!(window.__stats && window.__stats.loaded)"), "charts")
        shot(page, "stats", full_page=True)
        if problems:
            print(f"  stats problems: {problems}", flush=True)
    finally:
        context.close()

    context, page, problems = _context(browser, shot.size, base)
    try:
        page.goto(f"{base}/editor/login")
        shot(page, "editor-login")
        _login(page, base, "ed", area="editor")
        for name, path in (("editor-index", "/editor/"), ("editor-films", "/editor/records/films"),
                           ("editor-showtimes", "/editor/showtimes"), ("editor-parking", "/editor/documents/parking"),
                           ("editor-prices", "/editor/documents/prices"), ("editor-review", "/editor/review"),
                           ("editor-audit", "/editor/audit"), ("editor-versions", "/editor/versions")):
            response = page.goto(f"{base}{path}")
            if response is not None and response.status >= 400:
                print(f"  {path}: HTTP {response.status}", flush=True)
            shot(page, name, full_page=True)
            if name == "editor-films":
                form = page.locator("a[href^='/editor/records/films/']").first.get_attribute("href")
                page.goto(f"{base}{form}")
                shot(page, "editor-film-form", full_page=True)
        page.goto(f"{base}/editor/password?next=/editor/")
        shot(page, "password-editor", full_page=True)
        if problems:
            print(f"  editor problems: {problems}", flush=True)
    finally:
        context.close()


def password_flow(browser, base: str, shot: Shooter) -> None:
    """The voluntary change from the desk's top bar: the page, a refusal, the confirmation."""
    from playwright.sync_api import expect

    context, page, _ = _context(browser, shot.size, base)
    try:
        old, new = PASSWORDS_IN_TURN
        _login(page, base, PASSWORD_USER, old)
        page.goto(f"{base}/desk/tickets")
        page.click("#password-link")
        page.wait_for_url(re.compile(r".*/desk/password\?next=.*"))
        shot(page, "password", full_page=True)
        page.fill("#current_password", old)
        page.fill("#new_password", new)
        page.fill("#new_password_again", new + "x")
        page.click("#password-btn")
        expect(page.locator("#password-error")).to_be_visible()
        shot(page, "password-error", full_page=True)
        page.fill("#current_password", old)
        page.fill("#new_password", new)
        page.fill("#new_password_again", new)
        page.click("#password-btn")
        expect(page.locator("#password-done")).to_be_visible()
        shot(page, "password-done", full_page=True)
        PASSWORDS_IN_TURN.reverse()  # the next size changes it back
    finally:
        context.close()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="the trained model (default: the newest in models/)")
    parser.add_argument("--out", default="/work/shots", help="where the PNG files go")
    parser.add_argument("--only", choices=sorted(SIZES), action="append", help="one size only (repeatable)")
    parser.add_argument("--chromium", default=os.environ.get("XINGHE_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    taken: List[Path] = []
    with tempfile.TemporaryDirectory(prefix="xinghe-shots-") as tmp, \
            running_stack(args.model or newest_model(), Path(tmp)) as (stack, desk), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            for size in args.only or list(SIZES):
                print(f"{size}:", flush=True)
                shot = Shooter(out, size, taken)
                service_flow(browser, desk.base, stack.db_url, shot)
                stats_and_editor(browser, desk.base, shot)
                password_flow(browser, desk.base, shot)
        finally:
            browser.close()
    print(f"{len(taken)} screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
