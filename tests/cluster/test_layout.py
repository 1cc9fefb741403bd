"""The supervised layouts and what the instances share, without starting Rasa (fast; Redis for the shared
WeChat state)."""
from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess

import pytest


def test_make_run_layout_supervises_each_service(tmp_path):
    from bot.deploy.layout import Layout

    layout = Layout(tmp_path, "models/m.tar.gz")
    conf = layout.supervisord_conf()
    for name in ("actions-1", "rasa-1", "app", "healthwatch"):
        block = conf.split(f"[program:{name}]", 1)[1].split("[program:", 1)[0]
        assert "autorestart=true" in block and f"{name}.log" in block
    assert "nginx" not in conf and "XINGHE_INSTANCE" not in conf   # one instance: nothing shared
    assert layout.rasa_url == "http://127.0.0.1:5005" and layout.action_url == "http://127.0.0.1:5055/webhook"
    env_lines = [line for line in conf.splitlines() if line.startswith("environment=")]
    assert env_lines and not any("TOKEN" in line or "KEY" in line for line in env_lines)   # secrets inherited


def test_cluster_layout_and_nginx_config(tmp_path):
    from bot.deploy.layout import Layout

    layout = Layout(tmp_path, "models/m.tar.gz", rasa=3, actions=2, nginx=True)
    conf = layout.supervisord_conf()
    assert [f"rasa-{i}" in conf for i in (1, 2, 3)] == [True] * 3 and 'XINGHE_INSTANCE="r3"' in conf
    nginx = layout.nginx_conf()
    assert '"~^r2-" rasa_r2;' in nginx and "upstream rasa_r3 { server 127.0.0.1:5007; }" in nginx
    assert layout.rasa_url == "http://127.0.0.1:5000" and layout.action_url == "http://127.0.0.1:5050/webhook"
    if shutil.which("nginx") or shutil.which("/usr/sbin/nginx"):
        layout.write()
        r = subprocess.run(["nginx", "-t", "-c", str(tmp_path / "nginx" / "nginx.conf"), "-p",
                            str(tmp_path / "nginx")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_lock_store_in_redis_with_the_key_prefix(monkeypatch):
    from bot import runtime_config

    monkeypatch.setenv("LOCK_STORE", "redis")
    monkeypatch.setenv("TRACKER_STORE", "memory")
    monkeypatch.setenv("TRACKER_KEY_PREFIX", "shop7")
    # Rasa's RedisLockStore, connected to the Redis of bot.redis_conn (no password in the file)
    assert runtime_config.endpoints()["lock_store"] == {"type": "bot.conversations.locks.EnvRedisLockStore",
                                                        "key_prefix": "shop7"}
    from rasa.core.lock_store import LockStore, RedisLockStore
    from rasa.utils.endpoints import EndpointConfig

    store = LockStore.create(EndpointConfig(**runtime_config.endpoints()["lock_store"]))
    assert isinstance(store, RedisLockStore) and store.key_prefix == "shop7:lock:"
    monkeypatch.setenv("TRACKER_KEY_PREFIX", "shop-7")   # Rasa would silently drop it
    with pytest.raises(SystemExit):
        runtime_config.endpoints()
    monkeypatch.setenv("LOCK_STORE", "memory")
    assert "lock_store" not in runtime_config.endpoints()


def _redis():
    from bot.redis_conn import shared_redis

    client = shared_redis()
    if client is None:
        pytest.fail("Redis (127.0.0.1:6379) is needed: it runs on every machine of this project")
    return client


@pytest.fixture()
def shared(monkeypatch):
    prefix = "u" + secrets.token_hex(4)
    monkeypatch.setenv("TRACKER_KEY_PREFIX", prefix)
    monkeypatch.setenv("WECHAT_SHARED_STATE", "redis")
    client = _redis()
    yield client
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_retry_ledger_claims_once_and_decides_once_across_instances(shared):
    from bot.channels.wechat_shared import RetryLedger

    a, b = RetryLedger.from_env(), RetryLedger.from_env()   # two instances
    assert a.claim("msg:o1:42") and not b.claim("msg:o1:42") and not a.claim("msg:o1:42")
    assert b.outcome("msg:o1:42") is None
    assert a.decide("msg:o1:42", "passive", "停车每小时5元") == ("passive", "停车每小时5元")
    assert b.decide("msg:o1:42", "api") == ("passive", "停车每小时5元")   # the first decision holds
    assert b.claim("msg:o1:43")   # another message is another claim


def test_memory_when_not_one_of_several_instances(monkeypatch):
    from bot.channels.wechat_shared import RetryLedger, SharedToken

    monkeypatch.delenv("WECHAT_SHARED_STATE", raising=False)
    monkeypatch.delenv("XINGHE_INSTANCE", raising=False)
    assert RetryLedger.from_env()._redis is None and SharedToken.from_env("wx1") is None
    monkeypatch.setenv("XINGHE_INSTANCE", "r1")
    assert RetryLedger.from_env()._redis is not None


def test_a_digit_answered_on_another_instance_picks_the_same_choice(shared):
    """Two WeChat channels (two Rasa instances) behind one account: the numbered choices shown by the first
    are what a digit sent to the second means; a newer answer without choices clears them for both."""
    from tests.test_wechat_channel import FakeBot, reply_fields, serve, signed_query, text_xml
    from bot.channels.wechat import WeChatInput

    buttons = [{"title": "星际归途", "payload": '/inform{"film": "星际归途"}'},
               {"title": "深海回声", "payload": '/inform{"film": "深海回声"}'}]

    def replies(text):
        return [{"text": "您想看哪部？", "buttons": buttons}] if text == "排片" else [{"text": "好的"}]

    async def scenario():
        import aiohttp

        bots = [FakeBot(), FakeBot()]
        for b in bots:
            b.replies = replies
        channels = [WeChatInput(token="tok", reply_timeout=2.0) for _ in bots]
        async with serve(channels[0], bots[0]) as one, serve(channels[1], bots[1]) as two:
            async with aiohttp.ClientSession() as http:
                async def send(url, text, openid="oShared1"):
                    async with http.post(url, params=signed_query("tok"), data=text_xml(text, openid=openid)) as r:
                        body = await r.text()
                        assert r.status == 200, body
                        return reply_fields(body)["Content"]

                assert "2. 深海回声" in await send(one, "排片")
                await send(two, "2")
                assert bots[1].texts[-1] == '/inform{"film": "深海回声"}'
                await send(one, "1")     # the answer to 「2」 had no choices: a plain 1 now, on either instance
                assert bots[0].texts[-1] == "1"
                await send(two, "排片")
                assert [k for k in shared.scan_iter("*:wechat:choices:oShared1")]   # kept in Redis
                await send(one, "1", openid="oOther")   # someone else's digit is theirs
                assert bots[0].texts[-1] == "1"
                await send(one, "1")
                assert bots[0].texts[-1] == '/inform{"film": "星际归途"}'

    asyncio.run(scenario())


def test_choices_stay_in_the_process_without_redis(monkeypatch):
    from bot.channels.wechat import WeChatInput

    monkeypatch.delenv("WECHAT_SHARED_STATE", raising=False)
    monkeypatch.delenv("XINGHE_INSTANCE", raising=False)
    channel = WeChatInput(token="tok")
    assert channel._choices._shared is None
    channel._choices.remember("o1", ["/a", "/b"])
    assert channel._choices.resolve("o1", "2") == "/b" and channel._choices.resolve("o1", "3") is None
    monkeypatch.setenv("WECHAT_SHARED_STATE", "redis")
    monkeypatch.setenv("REDIS_PORT", "9")          # nothing listens there: memory, not an error
    assert WeChatInput(token="tok")._choices._shared is None


def test_instances_fetch_one_access_token_and_share_it(shared):
    from bot.channels.wechat_api import WeChatApiClient
    from bot.channels.wechat_shared import SharedToken
    from tests.wechat_stub import WeChatStub

    async def scenario():
        stub = await WeChatStub(appid="wx-shared", secret="s", one_token=True).start()
        clients = [WeChatApiClient("wx-shared", "s", stub.base_url, token_store=SharedToken.from_env("wx-shared"))
                   for _ in range(3)]
        try:
            # all at once, as three instances each with a reply to deliver
            await asyncio.gather(*(c.send_text(f"o{i}", f"消息{i}") for i, c in enumerate(clients)))
            assert stub.tokens_issued == 1 and len(stub.messages) == 3
            # WeChat refuses the token (say it was revoked): one refresh, used by all
            stub.expire_all_tokens()
            await asyncio.gather(*(c.send_text(f"o{i}", "再次") for i, c in enumerate(clients)))
            assert stub.tokens_issued == 2 and len(stub.messages) == 6
        finally:
            for c in clients:
                await c.close()
            await stub.stop()

    asyncio.run(scenario())


def test_watcher_kills_a_service_that_stops_answering(tmp_path):
    """A process that runs but answers nothing (SIGSTOP stands for a deadlock) is killed by the health
    watcher and restarted by supervisord; a crash is restarted by supervisord alone."""
    import json
    import os
    import signal
    import sys
    import time

    from bot.deploy.health import check, supervisor
    from tests.cluster.harness import free_port, wait_until

    port = free_port()
    sock = tmp_path / "s.sock"
    (tmp_path / "layout.json").write_text(json.dumps({"socket": str(sock), "services": [
        {"name": "web", "kind": "app", "health": f"http://127.0.0.1:{port}/"}]}))
    (tmp_path / "supervisord.conf").write_text(f"""
[unix_http_server]
file={sock}
[supervisord]
nodaemon=true
logfile={tmp_path / 'supervisord.log'}
pidfile={tmp_path / 'supervisord.pid'}
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:web]
command={sys.executable} -m http.server {port} --bind 127.0.0.1 --directory {tmp_path}
autorestart=true
startsecs=1
stdout_logfile={tmp_path / 'web.log'}
redirect_stderr=true
[program:healthwatch]
command={sys.executable} -m bot.deploy.health --watch --layout {tmp_path / 'layout.json'} --every 0.5 --failures 3 --timeout 1
directory={os.getcwd()}
autorestart=true
stdout_logfile={tmp_path / 'watch.log'}
redirect_stderr=true
""")
    sup = subprocess.Popen(["supervisord", "-c", str(tmp_path / "supervisord.conf")], stdout=subprocess.DEVNULL,
                           stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=os.getcwd()))
    try:
        wait_until(lambda: check(f"http://127.0.0.1:{port}/") is None, timeout=30, what="web up")
        rpc = supervisor(str(sock))
        first = rpc.getProcessInfo("web")["pid"]
        wait_until(lambda: "web is up" in (tmp_path / "watch.log").read_text(), timeout=30, what="watcher sees it")
        os.kill(first, signal.SIGSTOP)
        wait_until(lambda: rpc.getProcessInfo("web")["pid"] not in (0, first), timeout=60, what="watcher restart")
        wait_until(lambda: check(f"http://127.0.0.1:{port}/") is None, timeout=30, what="web answering again")
        assert "killing it for supervisord to restart" in (tmp_path / "watch.log").read_text()
        second = rpc.getProcessInfo("web")["pid"]
        os.kill(second, signal.SIGKILL)   # a crash: supervisord alone
        wait_until(lambda: rpc.getProcessInfo("web")["pid"] not in (0, second), timeout=30, what="restart")
        assert "exited: web (terminated by SIGKILL; not expected)" in (tmp_path / "supervisord.log").read_text()
    finally:
        sup.terminate()
        sup.wait(30)
