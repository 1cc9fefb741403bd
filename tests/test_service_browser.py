"""The service experience end to end in real browsers (Debian's Chromium driven by Playwright) against the
real stack: a patron in the web chat on a phone-sized screen, an agent at the desk on a desktop-sized one.

The patron asks for a human and is told 「马上为您接通」; the agent (display name 小李) claims and the patron
sees 「人工客服 小李 为您服务」 and the agent's messages marked with the name, an avatar and times. The agent
finds the conversation in the conversation list, writes an internal note (never sent), finds a canned reply
by typing its shortcut, labels the conversation, and ends it with a resolution: the patron is told the
outcome (回访) and asked for a rating, answers with a quick reply, and the rating shows in the sidebar and the
statistics. Screenshots: test-artifacts/service-*.png."""
from __future__ import annotations

import json
import re

import pytest

from tests.test_desk import conversation, online_agents, ticket, wait_until  # noqa: F401
from tests.test_desk_browser import ARTIFACTS, _login, _page, desk_browser, desk_chromium, secure_desk  # noqa: F401
from tests.test_desk import round_the_clock  # noqa: F401 (a fixture)

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 320, "height": 568}


def _patron_page(browser, base: str):
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True,
                                  device_scale_factor=2, timezone_id="Asia/Shanghai")
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.set_default_timeout(30_000)
    return context, page, problems


def _session_id(page) -> str:
    raw = page.evaluate("() => window.localStorage.getItem('chat_session')")
    return json.loads(raw)["session_id"]


def _send(page, text: str) -> None:
    box = page.get_by_role("textbox", name="输入您的问题")
    box.fill(text)
    box.press("Enter")


def _rating(db_url: str, sender: str):
    from bot.db import session_scope
    from bot.models import SatisfactionRating

    with session_scope(db_url) as s:
        row = s.query(SatisfactionRating).filter_by(sender_id=sender).order_by(SatisfactionRating.id.desc()).first()
        if row is not None:
            s.expunge(row)
        return row


def _queue_length(db_url: str) -> int:
    from bot.db import session_scope
    from bot.tickets import handoff

    with session_scope(db_url) as s:
        return len(handoff.queue(s))


def test_patron_sees_the_agent_and_rates_the_service(stack, secure_desk, desk_browser):
    from playwright.sync_api import expect

    base = secure_desk.base
    agent_ctx, desk, desk_problems = _page(desk_browser, base)
    patron_ctx, chat, chat_problems = _patron_page(desk_browser, base)
    try:
        # the agent logs in and sets the name patrons see
        _login(desk, base, "agent1")
        expect(desk.locator("#conn-status")).to_have_text("在线")
        desk.once("dialog", lambda d: d.accept("小李"))
        desk.click("#name-btn")
        expect(desk.locator("#my-name")).to_have_text("小李")
        wait_until(lambda: "agent1" in online_agents(stack.db_url), what="agent1 online")

        # the patron: connecting first (the input waits), then the welcome, then a human
        chat.goto(f"{base}/chat")
        log = chat.locator(".rw-messages-container")
        expect(log).to_contain_text("欢迎来到")
        expect(chat.locator(".xh-page-status")).to_have_text("")
        expect(chat.get_by_role("textbox", name="输入您的问题")).to_be_enabled()
        sid = _session_id(chat)

        # today's showtimes, one line per film (at most eight), fit the phone's screen whole: nothing folded
        responses = chat.locator(".rw-response")
        before = responses.count()
        _send(chat, "今天有哪些场次")
        listing = responses.nth(before)  # the bot's answer (this one, whatever comes later)
        expect(listing).to_contain_text("场次")
        chat.wait_for_timeout(1000)
        assert listing.bounding_box()["height"] < log.bounding_box()["height"]
        expect(listing.locator(".xh-more")).to_have_count(0)
        # on a smaller phone a long answer (the price list) folds to the whole lines that fit, 「展开全文」/「收起」
        chat.set_viewport_size(SMALL_PHONE)
        _send(chat, "票价多少")
        prices = chat.locator(".rw-response", has_text="票价（每张）").last
        more = prices.locator(".xh-more")
        expect(more).to_have_text("展开全文")
        folded = prices.locator(".rw-message-text")
        expect(listing.locator(".xh-more")).to_have_count(0)  # the listing that fitted stays whole
        shown = folded.evaluate("el => [el.clientHeight, el.scrollHeight, parseFloat(getComputedStyle(el).lineHeight)]")
        assert shown[0] < shown[1] and shown[0] % shown[2] == 0, shown  # whole lines, never half of one
        assert folded.bounding_box()["height"] <= log.bounding_box()["height"] - 150
        chat.screenshot(path=str(ARTIFACTS / "service-phone-long-answer.png"))
        more.click()
        expect(more).to_have_text("收起")
        assert folded.evaluate("el => el.scrollHeight <= el.clientHeight + 1")  # all of it shows now
        more.click()
        expect(more).to_have_text("展开全文")
        chat.set_viewport_size(PHONE)

        nobody_ahead = _queue_length(stack.db_url) == 0
        _send(chat, "转人工")
        expect(log).to_contain_text("人工客服")
        if nobody_ahead:
            expect(log).to_contain_text("马上为您接通")
        expect(log).not_to_contain_text("前面还有0位")
        expect(chat.locator(".rw-message-date").first).to_have_text(re.compile(r"\d{2}:\d{2}"))

        # the agent claims: the patron is told who serves them, the message marked with the name and avatar
        item = desk.locator(f'.queue-item[data-sender="{sid}"]')
        expect(item).to_be_visible()
        item.locator("button.claim").click()
        expect(desk.locator("#conv-title")).to_have_text(sid)
        expect(log).to_contain_text("人工客服 小李 为您服务")
        agent_msg = chat.locator('.rw-response.xh-agent[data-agent="人工客服 小李"]')
        expect(agent_msg.first).to_be_visible()
        expect(chat.locator('.rw-message.xh-agent-message[data-agent-initial="李"]').first).to_be_visible()
        desk.fill("#reply-text", "您好，请问遇到了什么问题？")
        desk.click("#send-btn")
        expect(agent_msg.last).to_contain_text("请问遇到了什么问题")
        expect(desk.locator("#transcript .msg.agent").last).to_contain_text("坐席 小李")
        _send(chat, "我买的票退款一直没到账")
        expect(desk.locator("#transcript .msg.patron").last).to_contain_text("退款一直没到账")
        chat.screenshot(path=str(ARTIFACTS / "service-phone-agent.png"))

        # the conversation list: all open conversations, with the last message
        desk.click('#list-tabs button[data-view="open"]')
        row = desk.locator(f'#conv-list li[data-sender="{sid}"]')
        expect(row).to_contain_text("退款一直没到账")
        expect(row).to_contain_text("人工服务中")

        # an internal note: in the transcript for agents, never sent to the patron
        desk.check("#mode-note")
        desk.fill("#reply-text", "顾客说退款没到账，需查支付流水")
        desk.click("#send-btn")
        expect(desk.locator("#transcript .msg.note")).to_contain_text("需查支付流水")
        expect(desk.locator("#transcript .msg.note")).to_contain_text("内部备注")
        desk.check('input[name="mode"][value="reply"]')

        # a canned reply found by typing its shortcut
        desk.fill("#reply-text", "")
        desk.locator("#reply-text").press_sequentially("/道歉")
        suggestion = desk.locator("#canned-suggest li").first
        expect(suggestion).to_contain_text("再次向您致歉")
        desk.locator("#reply-text").press("Enter")
        expect(desk.locator("#reply-text")).to_have_value("再次向您致歉，也感谢您的反馈，帮助我们改进。")
        desk.click("#send-btn")
        expect(agent_msg.last).to_contain_text("再次向您致歉")

        # a label on the conversation
        desk.fill("#label-input", "退款")
        desk.press("#label-input", "Enter")
        expect(desk.locator("#label-chips")).to_contain_text("退款")
        desk.screenshot(path=str(ARTIFACTS / "service-desk-conversation.png"))
        expect(log).not_to_contain_text("需查支付流水")

        # the agent ends the conversation with a resolution: the patron hears the outcome and is asked to rate
        number = conversation(stack.db_url, sid).ticket_number
        desk.locator("summary", has_text="结束会话并办结工单").click()
        desk.fill("#close-resolution", "已核实退款，3个工作日内原路退回")
        desk.click("#close-btn")
        expect(desk.locator("#conv-empty")).to_contain_text("会话已结束")
        expect(log).to_contain_text(f"工单号{number}）已处理：已核实退款")
        expect(log).to_contain_text("请为本次服务打分")
        four = chat.get_by_role("button", name="快捷回复：4分 满意")
        expect(four).to_be_visible()
        chat.screenshot(path=str(ARTIFACTS / "service-phone-rating.png"))
        four.click()
        expect(log).to_contain_text("感谢您的评价")
        rating = wait_until(lambda: (r := _rating(stack.db_url, sid)) is not None and r.score is not None and r,
                            what="rating stored")
        assert (rating.score, rating.agent, rating.ticket_number, rating.trigger) == (4, "agent1", number, "agent_closed")
        resolved = ticket(stack.db_url, number)
        assert resolved.status == "resolved" and resolved.followup_status == "done"  # told in the channel
        _send(chat, "服务不错")  # the optional comment
        expect(log).to_contain_text("已收到您的意见")
        assert _rating(stack.db_url, sid).comment == "服务不错"
        chat.screenshot(path=str(ARTIFACTS / "service-phone-rated.png"))
        assert not [p for p in chat_problems if "favicon" not in p], chat_problems
        assert not desk_problems, desk_problems
    finally:
        patron_ctx.close()
        agent_ctx.close()


def test_rating_history_and_statistics(stack, secure_desk, desk_browser):
    """After the test above: the supervisor sees the rating in the statistics, per day and per agent, and
    the desk on a phone-sized screen keeps the queue first."""
    from playwright.sync_api import expect

    base = secure_desk.base
    context, page, problems = _page(desk_browser, base)
    try:
        _login(page, base, "boss")
        page.goto(f"{base}/desk/stats")
        wait_until(lambda: page.evaluate("() => !!(window.__stats && window.__stats.loaded)"), what="charts")
        data = page.evaluate("window.__stats.data")
        assert data["satisfaction"]["totals"]["rated"] >= 1
        assert data["satisfaction"]["distribution"]["4"][-1] >= 1
        for chart in ("chart-satisfaction", "chart-satisfaction-dist", "chart-bot-share"):
            assert page.evaluate(f"!!Chart.getChart(document.getElementById('{chart}'))"), chart
        expect(page.locator("#satisfaction-agents")).to_contain_text("小李")
        expect(page.locator("#kpi-satisfaction")).not_to_have_text("—")
        page.screenshot(path=str(ARTIFACTS / "service-stats.png"), full_page=True)

        # ticket search by phone digits and by number prefix, with the result count
        page.goto(f"{base}/desk/tickets?q=T")
        expect(page.locator("#ticket-total")).to_contain_text("共")
        page.goto(f"{base}/desk/nonexistent")
        expect(page.locator("#error-page")).to_contain_text("页面不存在")
        expect(page.locator("#error-back")).to_have_attribute("href", "/desk/")

        page.set_viewport_size(PHONE)
        page.goto(f"{base}/desk/")
        expect(page.locator(".queue-box")).to_be_visible()
        box = page.locator(".queue-box").bounding_box()
        assert box["y"] < PHONE["height"], box  # the queue is on the first screen
        page.screenshot(path=str(ARTIFACTS / "service-desk-phone.png"))
        assert not [p for p in problems if "/desk/nonexistent" not in p], problems
    finally:
        context.close()


def test_web_chat_says_what_to_do_when_it_cannot_connect(stack, secure_desk, desk_browser):
    """The socket never connects (the relay is unreachable): 「正在连接客服…」 with the input disabled, then
    what to do and a retry button, never 「连接已断开」."""
    from playwright.sync_api import expect

    base = secure_desk.base
    context, page, _ = _patron_page(desk_browser, base)
    try:
        page.route("**/webchat/socket.io/**", lambda route: route.abort())
        page.goto(f"{base}/chat")
        status = page.locator(".xh-page-status")
        expect(status).to_contain_text("正在连接客服")
        box = page.get_by_role("textbox", name="输入您的问题")
        expect(box).to_be_disabled()
        expect(box).to_have_attribute("placeholder", "正在连接客服，连接后即可输入")
        expect(status).to_contain_text("请检查网络", timeout=20_000)
        expect(status.get_by_role("button", name="重试")).to_be_visible()
        expect(status).not_to_contain_text("连接已断开")
        page.screenshot(path=str(ARTIFACTS / "service-phone-offline.png"))
    finally:
        context.close()


def test_new_queue_entry_raises_a_desktop_notification(stack, secure_desk, desk_browser):
    from playwright.sync_api import expect

    from tests.test_desk import Patron

    base = secure_desk.base
    context = desk_browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN",
                                       timezone_id="Asia/Shanghai", permissions=["notifications"])
    # count the notifications the page raises (headless Chromium shows none)
    context.add_init_script("""(() => {
      const Real = window.Notification; window.__shown = [];
      class Counting extends Real { constructor(title, opts) { super(title, opts); window.__shown.push([title, (opts || {}).body]); } }
      Object.defineProperty(Counting, 'permission', { get: () => Real.permission });
      Counting.requestPermission = (...a) => Real.requestPermission(...a);
      window.Notification = Counting;
    })();""")
    page = context.new_page()
    page.set_default_timeout(30_000)
    patron = Patron(stack.rasa)
    try:
        _login(page, base, "agent2")
        expect(page.locator("#conn-status")).to_have_text("在线")
        wait_until(lambda: "agent2" in online_agents(stack.db_url), what="agent2 online")
        page.click("#sound-btn")
        assert page.evaluate("() => Notification.permission") == "granted"
        patron.ask("转人工", "人工客服", timeout=90)
        expect(page.locator(f'.queue-item[data-sender="{patron.session_id}"]')).to_be_visible()
        wait_until(lambda: page.evaluate("() => window.__shown.length") >= 1, what="a notification")
        title, body = page.evaluate("() => window.__shown[0]")
        assert title == "有新的排队会话" and "网页聊天" in body
        expect(page.locator("#alert-banner")).to_be_hidden()  # not an emergency: no banner
        page.locator(f'.queue-item[data-sender="{patron.session_id}"] button.claim').click()
        expect(page.locator("#conv-title")).to_have_text(patron.session_id)
        page.click("#handback-btn")
        expect(page.locator("#conv-empty")).to_contain_text("已交还机器人")
    finally:
        context.close()
        patron.close()
