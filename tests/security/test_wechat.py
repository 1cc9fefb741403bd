"""WeChat calls: stale, replayed, downgraded or colliding ones are refused (against the `make run` stack in
安全模式, and the plaintext-mode replay rule on the channel itself)."""
from __future__ import annotations

import time

import pytest

from tests.security import wechat_client
from tests.security.conftest import new_id
from tools.wechat_send import build_message_xml, signed_query


def _openid() -> str:
    return "o" + new_id("wx").replace("-", "_")


@pytest.mark.e2e
def test_stale_or_future_timestamps_are_refused(run_stack):
    for skew in (-301, 301, -3600):
        status, _ = wechat_client.post(run_stack, _openid(), "你好", timestamp=int(time.time()) + skew)
        assert status == 403, skew
    status, text = wechat_client.post(run_stack, _openid(), "停车怎么收费", timestamp=int(time.time()) - 200)
    assert status == 200 and "停车" in text


@pytest.mark.e2e
def test_plaintext_calls_are_refused_when_an_aes_key_is_set(run_stack):
    status, body = wechat_client.post(run_stack, _openid(), "你好", encrypt=False)
    assert status == 403 and "encrypted" in body


@pytest.mark.e2e
def test_same_msgid_from_two_patrons_gets_two_answers(run_stack):
    msg_id = "8" + str(int(time.time() * 1000))[-17:]
    status_a, a = wechat_client.post(run_stack, _openid(), "停车怎么收费", msg_id=msg_id)
    status_b, b = wechat_client.post(run_stack, _openid(), "IMAX周六多少钱", msg_id=msg_id)
    assert status_a == status_b == 200
    assert "停车" in a and "元" in b and "停车" not in b


async def test_plaintext_mode_nonce_cannot_carry_another_body():
    """In plaintext mode the signature covers token+timestamp+nonce, not the body: a signed URL seen once
    must not carry a different message (another patron's OpenID) later."""
    from tests.test_wechat_channel import environment, text_xml

    async with environment() as env:
        query = signed_query("test-token-123")
        body = text_xml("你好", openid="o-patron")
        status, _ = await env.post(body, query)
        assert status == 200
        status, _ = await env.post(body, query)   # WeChat's retry: the same call again
        assert status == 200
        status, _ = await env.post(text_xml("改成我的电话13800000000", openid="o-victim"), query)
        assert status == 403
        assert env.bot.texts == ["你好"]
