"""Over-long messages and floods, in every channel, refused before NLU with a clear reply."""
from __future__ import annotations

import time

import pytest
import requests

from bot.services.refusals import refusal
from tests.security import wechat_client
from tests.security.conftest import new_id
from tests.security.test_webchat import Browser

pytestmark = pytest.mark.e2e

LONG = "我想问一下停车" * 30000   # 210,000 characters


def test_over_long_rest_message_is_refused_at_once(run_stack):
    started = time.monotonic()
    reply = run_stack.rest(new_id("long"), LONG, timeout=20)
    assert time.monotonic() - started < 10
    assert [m["text"] for m in reply] == [refusal("too_long", limit=500)]
    # and the server still answers normally
    assert "停车" in run_stack.rest(new_id("after"), "停车怎么收费")[0]["text"]


def test_over_long_wechat_message_is_refused(run_stack):
    status, text = wechat_client.post(run_stack, "o" + new_id("long").replace("-", "_"), "长" * 600)
    assert status == 200 and text == refusal("too_long", limit=500)


def test_over_long_web_chat_message_is_refused(run_stack):
    browser = Browser(run_stack)
    try:
        browser.start()
        browser.say("长" * 5000)
        assert browser.wait_for_text(refusal("too_long", limit=500))
    finally:
        browser.close()


def test_message_flood_from_one_sender_is_refused(run_stack):
    sender = new_id("flood")
    replies = [run_stack.rest(sender, "你好") for _ in range(10)]   # the test stack allows 8 a minute
    texts = [" ".join(m.get("text", "") for m in r) for r in replies]
    assert refusal("too_many_messages") not in texts[0]
    assert texts[-1] == refusal("too_many_messages")
    assert refusal("too_many_messages") not in run_stack.rest(new_id("other"), "你好")[0]["text"]


def test_emergencies_from_one_patron_are_limited(run_stack):
    from bot.db import session_scope
    from bot.models import Ticket

    sender = new_id("alarm")
    texts = []
    for _ in range(4):
        texts.append(" ".join(m.get("text", "") for m in run_stack.rest(sender, "着火了！影厅里有烟")))
    with session_scope(run_stack.db_url) as s:
        count = s.query(Ticket).filter_by(sender_id=sender, type="emergency").count()
    # the first report raises the alarm; the next is guidance on the same ticket (emergency mode), and past the
    # per-patron limit the patron is told help is coming instead of raising the desk's alarm again
    assert count == 1, texts
    assert "工作人员" in texts[1] and refusal("too_many_emergencies") in texts[-1]
