"""The rating asked after inactivity, end to end in Chromium against the real stack: a patron on a phone asks
the bot something in the web chat and goes quiet; with a short idle setting (3 s) the desk's background task
sees the quiet conversation in the analytics turns (Rasa → RabbitMQ → consumer), asks for the 1–5 rating in
the open page, the patron answers with a quick reply, and the rating is stored with trigger ``inactivity``;
it is not asked again in that conversation. A patron who closed the page is not asked.
Screenshot: test-artifacts/inactivity-phone-rating.png."""
from __future__ import annotations

import time

import pytest

from tests.test_desk import DeskServer, desk_settings, wait_until
from tests.test_desk_browser import ARTIFACTS, desk_browser, desk_chromium  # noqa: F401 (fixtures)
from tests.test_service_browser import _patron_page, _rating, _send, _session_id

pytestmark = pytest.mark.e2e

IDLE_S = 3.0
PROMPT = "请为本次服务打分"


@pytest.fixture(scope="module")
def idle_desk(stack):
    # only web chats: this desk's relay holds the only pages it can see, so no other test's patron is asked
    server = DeskServer(desk_settings(stack, satisfaction_idle_s=IDLE_S, inactivity_every_s=0.5,
                                      inactivity_channels=("socketio",))).start()
    yield server
    server.stop()


def _requests(db_url: str, sender: str):
    from bot.db import session_scope
    from bot.models import SatisfactionRating

    with session_scope(db_url) as s:
        return [(r.trigger, r.score) for r in s.query(SatisfactionRating).filter_by(sender_id=sender)]


def test_quiet_patron_is_asked_for_a_rating_once(stack, idle_desk, desk_browser):
    from playwright.sync_api import expect

    base = idle_desk.base
    context, chat, problems = _patron_page(desk_browser, base)
    closed_ctx, closed, _ = _patron_page(desk_browser, base)
    try:
        # a patron who asks and closes the page at once: nobody to ask
        closed.goto(f"{base}/chat")
        expect(closed.locator(".rw-messages-container")).to_contain_text("欢迎来到")
        closed_sid = _session_id(closed)
        _send(closed, "停车怎么收费")
        expect(closed.locator(".rw-messages-container")).to_contain_text("每小时")
        closed_ctx.close()

        chat.goto(f"{base}/chat")
        log = chat.locator(".rw-messages-container")
        expect(log).to_contain_text("欢迎来到")
        sid = _session_id(chat)
        time.sleep(IDLE_S + 2)
        assert PROMPT not in log.inner_text()  # the welcome alone is no conversation to rate
        sent_at = time.time()
        _send(chat, "停车怎么收费")
        expect(log).to_contain_text("每小时")

        expect(log).to_contain_text(PROMPT, timeout=60_000)
        assert time.time() - sent_at >= IDLE_S  # not before the patron went quiet that long
        five = chat.get_by_role("button", name="快捷回复：5分 非常满意")
        expect(five).to_be_visible()
        chat.screenshot(path=str(ARTIFACTS / "inactivity-phone-rating.png"))
        five.click()
        expect(log).to_contain_text("感谢您的评价")
        rating = wait_until(lambda: (r := _rating(stack.db_url, sid)) is not None and r.score is not None and r,
                            what="rating stored")
        assert (rating.trigger, rating.score, rating.channel) == ("inactivity", 5, "socketio")

        # quiet again for several idle periods: never asked twice in this conversation
        time.sleep(IDLE_S * 3)
        assert log.inner_text().count(PROMPT) == 1
        assert _requests(stack.db_url, sid) == [("inactivity", 5)]
        assert _requests(stack.db_url, closed_sid) == []
        assert not [p for p in problems if "favicon" not in p], problems
    finally:
        context.close()
