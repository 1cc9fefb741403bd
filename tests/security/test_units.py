"""Unit tests of the pieces the attack suite relies on: session ids, frame rewriting, limits, configuration."""
from __future__ import annotations

import json

import pytest


def test_session_ids_are_signed_and_bound():
    from bot.channels.webchat_ids import issue, valid

    key, other_key = b"k" * 32, b"o" * 32
    a = issue(key, "cookie:browser-a")
    assert a == issue(key, "cookie:browser-a") != issue(key, "cookie:browser-b")
    assert valid(key, a) and not valid(other_key, a)
    assert not valid(key, a[:-1] + ("0" if a[-1] != "0" else "1"))
    for forged in ("oAbCdEfGhIjKlMnOpQrStUvWxYz1", "web-x", None, 5, a + "x"):
        assert not valid(key, forged)
    assert issue(key) != issue(key)   # without a binding: random


def test_frames_naming_another_session_are_rewritten_or_dropped():
    from bot.services.socketio_frames import rewrite_packet, rewrite_payload

    mine = "web-mine"
    assert json.loads(rewrite_packet('42["session_request",{"session_id":"victim"}]', mine)[2:]) == \
        ["session_request", {"session_id": mine}]
    assert json.loads(rewrite_packet('42["session_request",null]', mine)[2:]) == ["session_request", {"session_id": mine}]
    assert rewrite_packet('42["user_uttered",{"message":"hi","session_id":"victim"}]', mine) is None
    out = rewrite_packet('42/chat,7["user_uttered",{"message":"hi"}]', mine)
    assert out.startswith("42/chat,7[") and json.loads(out[len("42/chat,7"):])[1]["session_id"] == mine
    for dropped in ('451-["user_uttered",{"_placeholder":true,"num":0}]', '42{"not":"a list"}', "42[", "42/ns"):
        assert rewrite_packet(dropped, mine) is None
    for kept in ("1", "3", "40", "41"):
        assert rewrite_packet(kept, mine) == kept
    for not_from_clients in ("0", "2", "5", "6", "6\n"):   # python-engineio would hang the request on these
        assert rewrite_packet(not_from_clients, mine) is None
    assert rewrite_packet("2probe", mine, websocket=True) == "2probe" and rewrite_packet("5", mine, websocket=True) == "5"
    assert rewrite_payload('40\x1e42["user_uttered",{"message":"x","session_id":"v"}]', mine) == "40"
    assert rewrite_payload('42["user_uttered",{"message":"x","session_id":"v"}]\x1e6', mine) is None


def test_memory_windows_count_and_forget():
    from bot.services.ratelimit import Limit, MemoryWindows

    now = [0.0]
    windows = MemoryWindows(clock=lambda: now[0])
    limit = Limit(3, 60)
    assert [windows.hit("k", limit)[0] for _ in range(4)] == [True, True, True, False]
    assert windows.hit("other", limit)[0]
    now[0] = 61
    assert windows.hit("k", limit)[0]


def test_limits_come_from_the_environment(monkeypatch):
    from bot.services.ratelimit import DEFAULT_LIMITS, Limit, limit_for

    monkeypatch.setenv("XINGHE_LIMIT_EMERGENCY_SENDER", "1/30")
    assert limit_for("emergency_sender") == Limit(1, 30)
    monkeypatch.setenv("XINGHE_LIMIT_EMERGENCY_SENDER", "nonsense")
    assert limit_for("emergency_sender") == DEFAULT_LIMITS["emergency_sender"]


def test_trackers_expire_and_the_action_endpoint_sends_the_secret(monkeypatch):
    from bot import runtime_config

    monkeypatch.setenv("TRACKER_STORE", "rasa-redis")
    monkeypatch.delenv("TRACKER_EXPIRY_S", raising=False)
    data = runtime_config.endpoints()
    assert data["tracker_store"]["record_exp"] == 30 * 24 * 3600
    assert data["action_endpoint"]["headers"] == {"X-Xinghe-Action-Token": "${XINGHE_ACTION_TOKEN}"}
    monkeypatch.setenv("TRACKER_EXPIRY_S", "3600")
    assert runtime_config.endpoints()["tracker_store"]["record_exp"] == 3600
    # the default (bounded) store: an idle patron's hot state expires after the same time
    monkeypatch.setenv("TRACKER_STORE", "redis")
    assert runtime_config.endpoints()["tracker_store"]["hot_ttl_days"] == 3600 / 86400


def test_wechat_secrets_are_not_written_to_the_credentials(monkeypatch):
    from bot import runtime_config

    monkeypatch.setenv("WECHAT_TOKEN", "tok-secret")
    monkeypatch.setenv("WECHAT_SECRET", "app-secret")
    text = json.dumps(runtime_config.credentials())
    assert "tok-secret" not in text and "app-secret" not in text


@pytest.mark.parametrize("stamp,ok", [("0", False), ("", False), ("abc", False), (None, False), ("1²96132", False)])
def test_timestamps_outside_the_window_are_stale(stamp, ok):
    from bot.channels.wechat_replay import timestamp_fresh

    assert timestamp_fresh(stamp) is ok


def test_nonce_may_repeat_only_with_the_same_body():
    import time

    from bot.channels.wechat_replay import ReplayGuard

    guard = ReplayGuard()
    now = str(int(time.time()))
    assert guard.accept(now, "n1", b"body")
    assert guard.accept(now, "n1", b"body")         # WeChat's retry
    assert not guard.accept(now, "n1", b"other")
    assert guard.accept(now, "n2", b"other")


def test_desk_logs_mask_openids_phones_and_orders():
    import logging

    from bot.privacy import MaskingFilter

    record = logging.LogRecord("bot.services.desk", logging.INFO, __file__, 1, "to %s: %s", (
        "oAbCdEfGhIjKlMnOpQrStUvWxYz1", "13812345678 XH202611230001"), None)
    MaskingFilter().filter(record)
    text = record.getMessage()
    assert "oAbCdEfGhIjKlMnOpQrStUvWxYz1" not in text and "13812345678" not in text and "XH202611230001" not in text
