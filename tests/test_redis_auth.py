"""Redis with a password (``requirepass``) and over TLS: every part that uses Redis connects with what
``REDIS_URL`` / ``REDIS_PASSWORD`` / ``REDIS_TLS_CA`` say (bot.redis_conn). Each test starts its own
redis-server (installed on every machine here) on a free loopback port, with nothing saved to disk."""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from bot import redis_conn
from tests.cluster.harness import free_port

PASSWORD = "s3cret/with:odd@chars"


def _start(args, port: int, tmp: Path) -> subprocess.Popen:
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is needed (it is installed on every machine of this project)")
    proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp), *args], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.time() + 10
    import socket

    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        if proc.poll() is not None:
            pytest.fail(f"redis-server exited ({proc.returncode}) with {args}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("redis-server did not start")


@pytest.fixture()
def locked_redis(tmp_path):
    """A Redis that wants ``PASSWORD``; yields its port."""
    port = free_port()
    proc = _start(["--port", str(port), "--requirepass", PASSWORD], port, tmp_path)
    yield port
    proc.terminate()
    proc.wait(10)


@pytest.fixture()
def tls_redis(tmp_path):
    """A Redis on TLS only (its certificate signed by a CA of the test's own) that wants ``PASSWORD``;
    yields (port, CA file)."""
    def ssl(*args):
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=xinghe-test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out",
        "server.csr")
    (tmp_path / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
        "-extfile", "ext.cnf", "-out", "server.crt")
    port = free_port()
    proc = _start(["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(tmp_path / "server.crt"),
                   "--tls-key-file", str(tmp_path / "server.key"), "--tls-ca-cert-file", str(tmp_path / "ca.crt"),
                   "--tls-auth-clients", "no", "--requirepass", PASSWORD], port, tmp_path)
    yield port, str(tmp_path / "ca.crt")
    proc.terminate()
    proc.wait(10)


def _only(monkeypatch, **env):
    for name in ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD", "REDIS_USERNAME",
                 "REDIS_TLS", "REDIS_TLS_CA", "REDIS_TLS_CERT", "REDIS_TLS_KEY", "XINGHE_RATELIMIT_STORE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_settings_from_the_url_and_the_password_variable():
    s = redis_conn.settings({"REDIS_URL": "rediss://bot:p%40ss@redis.internal:6380/3"})
    assert (s.host, s.port, s.db, s.username, s.password, s.tls) == ("redis.internal", 6380, 3, "bot", "p@ss", True)
    assert s.url() == "rediss://bot:p%40ss@redis.internal:6380/3" and "p@ss" not in s.safe_url()
    # REDIS_PASSWORD wins over the URL's, and a URL is not needed for it
    assert redis_conn.settings({"REDIS_URL": "redis://:old@h/1", "REDIS_PASSWORD": "new"}).password == "new"
    s = redis_conn.settings({"REDIS_HOST": "10.0.0.5", "REDIS_PORT": "7000", "REDIS_PASSWORD": "pw"})
    assert (s.host, s.port, s.db, s.password, s.tls) == ("10.0.0.5", 7000, 0, "pw", False)
    assert redis_conn.settings({}) == redis_conn.RedisSettings()
    with pytest.raises(ValueError):
        redis_conn.settings({"REDIS_URL": "http://h:6379"})


def test_every_part_logs_in_with_the_password(locked_redis, monkeypatch):
    from rasa.core.lock_store import LockStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    from bot import runtime_config
    from bot.channels import socket_cluster
    from bot.channels.wechat_shared import RetryLedger, SharedChoices
    from bot.conversations.redis_store import CompactRedisTrackerStore
    from bot.db import ROOT

    port = locked_redis
    _only(monkeypatch, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    assert redis_conn.shared_redis() is None          # refused without the password: callers use memory
    monkeypatch.setenv("REDIS_PASSWORD", PASSWORD)
    assert redis_conn.shared_redis().ping()
    monkeypatch.setenv("REDIS_URL", f"redis://:{PASSWORD.replace('/', '%2F').replace(':', '%3A').replace('@', '%40')}"
                                    f"@127.0.0.1:{port}/2")
    monkeypatch.delenv("REDIS_PASSWORD")
    assert redis_conn.shared_redis().ping()           # the password inside the URL works as well

    # the lock store Rasa builds from the generated endpoints
    monkeypatch.setenv("LOCK_STORE", "redis")
    monkeypatch.setenv("TRACKER_STORE", "redis")
    monkeypatch.setenv("TRACKER_KEY_PREFIX", "authtest")
    monkeypatch.setenv("XINGHE_INSTANCE", "r1")
    endpoints = runtime_config.endpoints()
    assert PASSWORD not in str(endpoints)
    locks = LockStore.create(EndpointConfig(**endpoints["lock_store"]))
    lock = locks.create_lock("c1")
    locks.save_lock(lock)
    assert locks.get_lock("c1") is not None and locks.red.connection_pool.connection_kwargs["db"] == 2

    # the tracker store (prefix authtest), as configured in the same file
    cfg = dict(endpoints["tracker_store"])
    cfg.pop("type")
    domain = Domain.load(str(ROOT / "domain.yml"))
    store = CompactRedisTrackerStore(domain, start_archiver=False, archive_url="", **cfg)
    tracker = DialogueStateTracker.from_events("c1", [UserUttered("停车怎么收费")])

    async def trackers():
        await store.save(tracker)
        back = await store.retrieve("c1")
        assert back is not None and back.latest_message.text == "停车怎么收费"
    asyncio.run(trackers())
    assert redis_conn.client().keys("authtest:conv:c1:*")

    # the WeChat state shared between instances
    ledger = RetryLedger.from_env()
    assert ledger._redis is not None and ledger.claim("msg:o1:1") and not RetryLedger.from_env().claim("msg:o1:1")
    choices = SharedChoices.from_env()
    assert choices.put("o1", ["/a", "/b"]) and SharedChoices.from_env().get("o1") == ["/a", "/b"]

    # socket.io's manager: a message published by one instance reaches the other's listener
    async def rooms():
        a = socket_cluster.JsonRedisManager(channel="authtest:socketio", **socket_cluster.redis_options())
        b = socket_cluster.JsonRedisManager(channel="authtest:socketio", **socket_cluster.redis_options())
        for m in (a, b):
            m._redis_connect()
        listener = b._listen()
        got = asyncio.ensure_future(listener.__anext__())
        for _ in range(100):     # until b has subscribed
            await a._publish({"method": "emit", "event": "bot_uttered", "room": "web-x", "data": {"text": "您好"}})
            done, _ = await asyncio.wait({got}, timeout=0.05)
            if done:
                break
        assert got.done() and got.result()["data"] == {"text": "您好"}
        await listener.aclose()
        # and the desk's notification listener (redis.asyncio, on the web app's settings) logs in the same way
        from bot.services.app import Settings

        client = Settings.from_env(secret_key=b"k" * 32).redis.async_client(socket_connect_timeout=1)
        assert await client.ping()
        await client.close()
    asyncio.run(rooms())


def test_tls_with_the_servers_ca(tls_redis, monkeypatch):
    from rasa.core.lock_store import LockStore
    from rasa.utils.endpoints import EndpointConfig

    from bot import runtime_config
    from bot.channels import socket_cluster

    port, ca = tls_redis
    _only(monkeypatch, REDIS_URL=f"redis://127.0.0.1:{port}/0", REDIS_PASSWORD=PASSWORD)
    assert redis_conn.shared_redis() is None          # plain TCP to a TLS port: no answer
    monkeypatch.setenv("REDIS_URL", f"rediss://127.0.0.1:{port}/0")
    assert redis_conn.shared_redis() is None          # TLS, but the test CA is not one the system trusts
    monkeypatch.setenv("REDIS_TLS_CA", ca)
    assert redis_conn.shared_redis().ping()
    monkeypatch.setenv("LOCK_STORE", "redis")
    monkeypatch.setenv("TRACKER_STORE", "memory")
    monkeypatch.setenv("TRACKER_KEY_PREFIX", "tlstest")
    locks = LockStore.create(EndpointConfig(**runtime_config.endpoints()["lock_store"]))
    locks.save_lock(locks.create_lock("c1"))
    assert locks.get_lock("c1") is not None

    async def manager():
        m = socket_cluster.JsonRedisManager(channel="tlstest:socketio", **socket_cluster.redis_options())
        m._redis_connect()
        assert await m.redis.ping()
        assert await m._publish({"method": "emit", "room": "r"}) == 0   # delivered to Redis (no listener)
    asyncio.run(manager())
