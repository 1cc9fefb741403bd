"""The agent desk in a real browser (Debian's Chromium driven by Playwright) against the real stack: a patron
on socket.io asks for a human, the agent logs in, sees the patron appear in the live queue, claims, replies
(typed and a canned de-escalation line), sees the patron's answer arrive, hands back, and the bot answers the
next question. Also the tickets view and the statistics charts. Screenshots: test-artifacts/desk-*.png."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.test_desk import (PASSWORDS, Agent, DeskServer, EventStream, Patron, conversation, desk_settings,
                             online_agents, round_the_clock, ticket, wait_until)  # noqa: F401 (round_the_clock is a fixture)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("XINGHE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
WAIT_MS = 30_000


@pytest.fixture(scope="session")
def desk_chromium(chromium) -> str:
    return chromium


@pytest.fixture(scope="module")
def secure_desk(stack, round_the_clock):
    """The desk with its production cookie settings (Secure, __Host- prefix): Chromium keeps such cookies
    for http://127.0.0.1, a potentially trustworthy origin."""
    server = DeskServer(desk_settings(stack, secure_cookies=True)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def desk_browser(desk_chromium):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=desk_chromium, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _page(browser, base: str):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.on("response", lambda resp: problems.append(f"HTTP {resp.status}: {resp.url}") if resp.status >= 400 else None)
    page.on("request", lambda req: problems.append(f"outside request: {req.url}")
            if not req.url.startswith((base, "data:", "blob:")) else None)
    page.set_default_timeout(WAIT_MS)
    return context, page, problems


def _login(page, base: str, username: str, screenshot: bool = False) -> None:
    page.goto(f"{base}/desk/")
    assert "/desk/login" in page.url  # nothing without login
    if screenshot:
        page.screenshot(path=str(ARTIFACTS / "desk-login.png"))
    page.fill("#username", username)
    page.fill("#password", PASSWORDS[username])
    page.click("#login-btn")
    page.wait_for_url(re.compile(re.escape(base) + r"/(desk|editor)/.*"))  # editors land on the editor


def test_agent_serves_a_patron_in_the_browser(stack, secure_desk, desk_browser):
    from playwright.sync_api import expect

    base = secure_desk.base
    patron, second = Patron(stack.rasa), Patron(stack.rasa)
    colleague = Agent(base, "agent2")
    context, page, problems = _page(desk_browser, base)
    stream = None
    try:
        # the patron talks to the bot, then asks for a human while a colleague is online: queued
        assert "每小时" in patron.ask("停车怎么收费", "每小时", timeout=90)
        stream = EventStream(colleague)
        wait_until(lambda: "agent2" in online_agents(stack.db_url), what="agent2 online")
        waiting = patron.ask("转人工", "人工客服", timeout=90)
        assert re.search(r"马上为您接通|前面还有[1-9]\d*位", waiting), patron.texts()

        # the agent logs in (secure session cookie), is online while the page is open, sees the patron queued
        _login(page, base, "agent1", screenshot=True)
        cookies = {c["name"]: c for c in context.cookies()}
        assert "__Host-xh_desk" in cookies and cookies["__Host-xh_desk"]["secure"] and cookies["__Host-xh_desk"]["httpOnly"]
        expect(page.locator("#conn-status")).to_have_text("在线")
        wait_until(lambda: "agent1" in online_agents(stack.db_url), what="agent1 online")
        expect(page.locator("#agents-online")).to_contain_text("agent1")
        item = page.locator(f'.queue-item[data-sender="{patron.session_id}"]')
        expect(item).to_be_visible()
        expect(item).to_contain_text("网页聊天")
        expect(item).to_contain_text("转人工")
        page.click("#sound-btn")  # alerts ring from now on (a user gesture is needed for audio)
        expect(page.locator("#sound-btn")).to_contain_text("已开启")

        # another patron asking now appears without a reload, with the alert sound
        page.evaluate("() => { window.__notReloaded = true; }")
        rung = page.evaluate("() => window.__desk.alertsSounded")
        second.ask("转人工", "人工客服", timeout=90)
        expect(page.locator(f'.queue-item[data-sender="{second.session_id}"]')).to_be_visible()
        assert page.evaluate("() => window.__notReloaded === true")
        assert page.evaluate("() => window.__desk.alertsSounded") > rung
        page.screenshot(path=str(ARTIFACTS / "desk-queue.png"))

        # claim: the transcript, the collected facts, the channel and the linked ticket
        item.locator("button.claim").click()
        expect(page.locator("#conv-title")).to_have_text(patron.session_id)
        expect(page.locator("#conv-channel")).to_have_text("网页聊天")
        transcript = page.locator("#transcript")
        expect(transcript.locator(".msg.patron").first).to_contain_text("停车怎么收费")
        expect(transcript.locator(".msg.patron").last).to_contain_text("转人工")
        expect(transcript.locator(".msg.bot").first).to_contain_text("每小时")
        expect(page.locator("#window-box")).to_contain_text("实时送达")
        number = conversation(stack.db_url, patron.session_id).ticket_number
        expect(page.locator("#ticket-box")).to_contain_text(number)
        expect(page.locator(f'#mine-list li[data-sender="{patron.session_id}"]')).to_be_visible()
        expect(page.locator(f'.queue-item[data-sender="{patron.session_id}"]')).to_have_count(0)
        assert ticket(stack.db_url, number).status == "claimed"

        # reply: the patron receives it in the chat
        start = len(patron.messages)
        page.fill("#reply-text", "您好，我是客服小李，请问有什么可以帮您？")
        page.click("#send-btn")
        patron.wait_for("我是客服小李", start, timeout=30)
        expect(transcript.locator(".msg.agent").last).to_contain_text("我是客服小李")
        expect(page.locator("#reply-text")).to_have_value("")

        # the patron's new message shows up live; a canned de-escalation line goes back
        patron.say("我买的票退款一直没到账，太气人了")
        expect(transcript.locator(".msg.patron").last).to_contain_text("退款一直没到账")
        page.select_option("#canned", label="非常理解您的感受，给您带来不便非常抱歉。")
        expect(page.locator("#reply-text")).to_have_value("非常理解您的感受，给您带来不便非常抱歉。")
        start = len(patron.messages)
        page.click("#send-btn")
        patron.wait_for("非常理解您的感受", start, timeout=30)
        expect(transcript.locator(".msg.agent").last).to_contain_text("非常理解您的感受")
        page.screenshot(path=str(ARTIFACTS / "desk-conversation.png"))

        # hand back: the patron is told, and the bot answers the next question with the context kept
        start = len(patron.messages)
        page.click("#handback-btn")
        patron.wait_for("接下来由我（小星）继续为您服务", start, timeout=30)
        expect(page.locator("#conv-empty")).to_contain_text("已交还机器人")
        assert conversation(stack.db_url, patron.session_id).state == "bot"
        assert "每小时" in patron.ask("停车怎么收费", "每小时", timeout=90)

        # the hand-back resolved the handoff ticket; in the tickets view: filter, open, history, close
        assert ticket(stack.db_url, number).status == "resolved"
        page.goto(f"{base}/desk/tickets?type=handoff&status=resolved")
        row = page.locator(f'#tickets-table tr[data-number="{number}"]')
        expect(row).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "desk-tickets.png"))
        row.locator("a").click()
        expect(page.locator("#history")).to_contain_text("认领")
        expect(page.locator("#history")).to_contain_text("办结")
        page.click("#close-submit")
        expect(page.locator("#flash")).to_have_text("工单已关闭。")
        page.screenshot(path=str(ARTIFACTS / "desk-ticket.png"), full_page=True)
        assert ticket(stack.db_url, number).status == "closed"
        assert not problems, problems
        # the colleague serves the second patron and hands back (leaves the queue as it was)
        assert colleague.post(colleague.conv(second.session_id, "claim")).ok
        assert colleague.post(colleague.conv(second.session_id, "handback")).ok
    finally:
        context.close()
        if stream is not None:
            stream.close()
        patron.close()
        second.close()
    # the page is closed: the agent goes offline
    wait_until(lambda: not {"agent1", "agent2"} & set(online_agents(stack.db_url)), what="agents offline")


def test_statistics_page_draws_charts(stack, secure_desk, desk_browser):
    from playwright.sync_api import expect

    base = secure_desk.base
    context, page, problems = _page(desk_browser, base)
    try:
        _login(page, base, "boss")
        page.goto(f"{base}/desk/stats")
        wait_until(lambda: page.evaluate("() => !!(window.__stats && window.__stats.loaded)"), what="charts")
        data = page.evaluate("window.__stats.data")
        assert data["totals"]["tickets"] >= 1 and "handoff" in data["by_type"]
        assert data["bot"]["totals"]["conversations"] >= 1
        for chart in ("chart-types", "chart-categories", "chart-times", "chart-sla", "chart-bot"):
            assert page.evaluate(f"!!Chart.getChart(document.getElementById('{chart}'))"), chart
        expect(page.locator("#kpi-tickets")).not_to_have_text("—")
        page.select_option("#period", "week")
        wait_until(lambda: page.evaluate("() => !!(window.__stats.data && window.__stats.data.period === 'week')"),
                   what="weekly charts")
        page.screenshot(path=str(ARTIFACTS / "desk-stats.png"), full_page=True)
        assert not problems, problems
    finally:
        context.close()


def test_editor_sees_statistics_only(stack, secure_desk, desk_browser):
    from playwright.sync_api import expect

    base = secure_desk.base
    context, page, _ = _page(desk_browser, base)
    try:
        _login(page, base, "ed")
        assert page.url.endswith("/editor/")
        page.goto(f"{base}/desk/stats")
        expect(page.locator("nav")).not_to_contain_text("工作台")
        expect(page.locator("nav")).to_contain_text("知识库")
        response = page.goto(f"{base}/desk/tickets")
        assert response.status == 403
    finally:
        context.close()


def test_wechat_quota_is_shown_and_enforced_in_the_browser(stack, secure_desk, desk_browser):
    import datetime as dt
    import uuid

    from playwright.sync_api import expect

    from tests.test_desk import _stub_messages, _wechat

    base = secure_desk.base
    openid = f"o-desk-ui-{uuid.uuid4().hex[:8]}"
    context, page, problems = _page(desk_browser, base)
    try:
        _login(page, base, "agent1")
        expect(page.locator("#conn-status")).to_have_text("在线")
        wait_until(lambda: "agent1" in online_agents(stack.db_url), what="agent1 online")
        _wechat(stack, openid, "转人工")
        item = page.locator(f'.queue-item[data-sender="{openid}"]')
        expect(item).to_contain_text("微信公众号")
        item.locator("button.claim").click()
        expect(page.locator("#window-open")).to_contain_text("微信 48 小时客服窗口")
        expect(page.locator("#quota-left")).to_have_text("可发条数：5 / 5")
        for i in range(4):
            page.fill("#reply-text", f"第{i + 1}条回复")
            page.click("#send-btn")
            expect(page.locator("#quota-left")).to_have_text(f"可发条数：{4 - i} / 5")
        page.fill("#reply-text", "第5条回复")
        page.click("#send-btn")
        expect(page.locator("#window-closed")).to_contain_text("额度")
        expect(page.locator("#send-btn")).to_be_disabled()
        wait_until(lambda: len([t for t in _stub_messages(stack, openid) if "条回复" in t]) == 5, what="5 sent")
        # sending anyway (Ctrl+Enter) is refused by the server, which says why and offers a follow-up instead
        page.fill("#reply-text", "第6条回复")
        page.press("#reply-text", "Control+Enter")
        expect(page.locator("#send-error")).to_contain_text("微信客服消息额度")
        page.click("#offer-followup")
        tomorrow = (dt.datetime.now(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(days=1)).strftime("%Y-%m-%dT10:00")
        page.fill("#followup-at", tomorrow)
        page.fill("#followup-note", "电话告知处理结果")
        page.click("#followup-btn")
        expect(page.locator("#action-msg")).to_have_text("回访已安排")
        page.screenshot(path=str(ARTIFACTS / "desk-wechat.png"))
        assert "第6条回复" not in _stub_messages(stack, openid)
        number = conversation(stack.db_url, openid).ticket_number
        assert ticket(stack.db_url, number).followup_status == "scheduled"
        page.click("#handback-btn")
        expect(page.locator("#conv-empty")).to_contain_text("已交还机器人")
        refused = [p for p in problems if p.startswith("HTTP 409") and p.endswith(f"/{openid}/messages")]
        assert len(refused) == 1 and len(problems) == 1, problems  # only the refused sixth message
    finally:
        context.close()
