"""The rating asked after inactivity over WeChat, end to end against the real stack: a patron's messages come
in as WeChat sends them (signed XML to ``/webhooks/wechat/webhook``); they ask something, get the passive
reply and go quiet. With a short idle setting (3 s) the desk's background task sees the quiet conversation in
the analytics turns (Rasa → RabbitMQ → consumer) and, since WeChat allows no reply without a patron message,
asks through the customer-service message API (the stand-in ``tests/wechat_stub.py`` records it) inside the
48-hour window: numbered choices. The patron answers 「2 …」 in a new signed message; the passive reply thanks
them, the rating is stored with trigger ``inactivity`` and channel ``wechat``, a low score opens a feedback
ticket with a 回访, and the patron is not asked again. A patron who only said 你好 is not asked.

Like production, this desk asks every WeChat patron of the test session who went quiet after an answer;
only this test's own patrons are checked."""
from __future__ import annotations

import time
import uuid

import pytest

from tests.test_desk import DeskServer, _stub_messages, _wechat, desk_settings, wait_until

pytestmark = pytest.mark.e2e

IDLE_S = 3.0
PROMPT = "请为本次服务打分"


@pytest.fixture(scope="module")
def wechat_idle_desk(stack):
    server = DeskServer(desk_settings(stack, satisfaction_idle_s=IDLE_S, inactivity_every_s=0.5,
                                      inactivity_channels=("wechat",))).start()
    yield server
    server.stop()


def _ratings(db_url: str, sender: str):
    from bot.db import session_scope
    from bot.models import SatisfactionRating

    with session_scope(db_url) as s:
        rows = s.query(SatisfactionRating).filter_by(sender_id=sender).order_by(SatisfactionRating.id).all()
        for row in rows:
            s.expunge(row)
        return rows


def _ticket(db_url: str, number: str):
    from bot.db import session_scope
    from bot.tickets import store

    with session_scope(db_url) as s:
        t = store.get_by_number(s, number)
        if t is not None:
            s.expunge(t)
        return t


def test_quiet_wechat_patron_is_asked_through_the_customer_service_api(stack, wechat_idle_desk):
    openid = f"o-idle-{uuid.uuid4().hex[:10]}"
    greeter = f"o-idle-hi-{uuid.uuid4().hex[:8]}"

    assert _wechat(stack, greeter, "你好")  # a greeting alone is no conversation to rate
    sent_at = time.time()
    assert "每小时" in _wechat(stack, openid, "停车怎么收费")  # the passive reply answers at once

    prompts = wait_until(lambda: [t for t in _stub_messages(stack, openid) if PROMPT in t], timeout=90,
                         what="the rating prompt at the WeChat customer-service API")
    asked_after = time.time() - sent_at
    assert asked_after >= IDLE_S, asked_after  # not before the patron went quiet that long
    [prompt] = prompts
    # WeChat has no buttons: the five scores as numbered choices
    assert "回复数字选择" in prompt and "1. 1分 非常不满意" in prompt and "5. 5分 非常满意" in prompt, prompt
    [row] = _ratings(stack.db_url, openid)
    assert (row.trigger, row.channel, row.score) == ("inactivity", "wechat", None)

    # the answer comes as the patron's next WeChat message; the thanks is its passive reply
    reply = _wechat(stack, openid, "2 找车位花了很久")
    assert "很抱歉这次没能让您满意" in reply, reply
    [row] = _ratings(stack.db_url, openid)
    assert (row.trigger, row.score, row.comment) == ("inactivity", 2, "找车位花了很久")
    followup = _ticket(stack.db_url, row.followup_ticket)
    assert followup is not None and followup.type == "feedback" and followup.channel == "wechat"
    assert followup.followup_at is not None and followup.number in reply

    # quiet again for several idle periods: asked once in this conversation; the greeter never
    time.sleep(IDLE_S * 3)
    assert len([t for t in _stub_messages(stack, openid) if PROMPT in t]) == 1
    assert len(_ratings(stack.db_url, openid)) == 1
    assert _ratings(stack.db_url, greeter) == []
    assert not [t for t in _stub_messages(stack, greeter) if PROMPT in t]
