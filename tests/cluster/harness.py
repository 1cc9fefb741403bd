"""The cluster layout of ``make run-cluster`` started for tests and benchmarks: supervisord running N Rasa
servers, M action servers, the web app and nginx (``bot.deploy.layout``), on a PostgreSQL database and a Redis
key prefix of its own, free loopback ports (from ``XINGHE_TEST_PORTS`` when set), and TCP proxies in front of PostgreSQL that a test can cut."""
from __future__ import annotations

import json
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORDS = {"agent1": "agent-one-pass", "boss": "supervisor-pass"}
ROLES = {"agent1": "agent", "boss": "supervisor"}
PG = os.environ.get("XINGHE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


#: ``XINGHE_TEST_PORTS=7300-7399``: take ports from this range only (a helper's or CI job's own), so runs
#: on a shared machine never race each other for a port; unset, the kernel picks free ephemeral ones.
PORT_RANGE_ENV = "XINGHE_TEST_PORTS"
_next_in_range: Dict[str, int] = {}
_range_lock = threading.Lock()


def _port_range() -> Optional[range]:
    spec = os.environ.get(PORT_RANGE_ENV, "").strip()
    if not spec:
        return None
    low, high = (int(x) for x in spec.split("-", 1))
    return range(low, high + 1)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    ports = _port_range()
    if ports is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    with _range_lock:   # round the range, never handing out the same port twice in this process
        start = _next_in_range.get("next", ports.start)
        for i in range(len(ports)):
            port = ports.start + (start - ports.start + i) % len(ports)
            if _bindable(port):
                _next_in_range["next"] = port + 1 if port + 1 in ports else ports.start
                return port
    raise RuntimeError(f"no free port in {PORT_RANGE_ENV}={os.environ[PORT_RANGE_ENV]}")


class TcpProxy:
    """127.0.0.1:<port> → target, in threads. ``cut()`` closes every open connection and refuses new ones
    (they are accepted and closed at once, as a dead network path looks to a client that gets RSTs);
    ``restore()`` lets them through again."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.blocked = False
        self._conns: List[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True, name=f"proxy-{self.port}").start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.blocked:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while not self.blocked:
                ready, _, _ = select.select([a, b], [], [], 0.5)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            pass
        finally:
            _close(a)
            _close(b)
            with self._lock:
                self._conns = [c for c in self._conns if c not in (a, b)]

    def cut(self) -> None:
        self.blocked = True
        with self._lock:
            for c in self._conns:
                _close(c)
            self._conns = []

    def restore(self) -> None:
        self.blocked = False

    def close(self) -> None:
        self._stop = True
        self.cut()
        _close(self.listener)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


@dataclass
class Cluster:
    work: Path
    layout: Any
    env: Dict[str, str]
    db_url: str                     # direct (for the test's own checks)
    prefix: str
    token: str
    kb_proxy: TcpProxy
    tracker_proxy: TcpProxy
    wechat: Dict[str, str]
    procs: List[subprocess.Popen] = field(default_factory=list)

    # -- addresses -------------------------------------------------------------------------------
    @property
    def lb(self) -> str:
        return self.layout.rasa_url

    @property
    def public(self) -> str:
        return f"http://127.0.0.1:{self.layout.port('public')}"

    def rasa(self, i: int) -> str:
        """Instance ``i`` (1-based) directly."""
        return f"http://127.0.0.1:{self.layout.rasa_ports()[i - 1]}"

    # -- talking -----------------------------------------------------------------------------------
    def say(self, base: str, sender: str, text: str, timeout: float = 60) -> List[dict]:
        r = requests.post(f"{base}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                          timeout=timeout)
        r.raise_for_status()
        return r.json()

    def text(self, base: str, sender: str, text: str) -> str:
        return "\n".join(m.get("text", "") for m in self.say(base, sender, text))

    def tracker(self, sender: str, base: Optional[str] = None) -> dict:
        r = requests.get(f"{base or self.lb}/conversations/{sender}/tracker", params={"token": self.token},
                         timeout=30)
        r.raise_for_status()
        return r.json()

    # -- processes -----------------------------------------------------------------------------------
    def rpc(self):
        from bot.deploy.health import supervisor

        return supervisor(str(self.work / "supervisor.sock"))

    def info(self, name: str) -> dict:
        return self.rpc().getProcessInfo(name)

    def kill9(self, name: str) -> int:
        pid = self.info(name)["pid"]
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_healthy(self, timeout: float = 400) -> None:
        from bot.deploy.health import check

        deadline = time.time() + timeout
        pending = self.layout.to_json()["services"]
        while time.time() < deadline:
            pending = [s for s in pending if check(s["health"]) is not None]
            if not pending:
                return
            if self.procs and self.procs[0].poll() is not None:
                raise RuntimeError("supervisord exited:\n" + self.log("supervisord")[-3000:])
            time.sleep(1)
        raise RuntimeError(f"not healthy within {timeout} s: {[s['name'] for s in pending]}\n"
                           + "".join(self.log(s["name"])[-2000:] for s in pending))

    def log(self, name: str) -> str:
        path = self.work / "log" / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        self.kb_proxy.close()
        self.tracker_proxy.close()
        _drop(self)


def _drop(c: Cluster) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    try:
        from bot import redis_conn

        r = redis_conn.client()
        for key in r.scan_iter(f"{c.prefix}:*", count=1000):
            r.delete(key)
    except Exception:
        pass
    if os.environ.get("XINGHE_KEEP_CLUSTER_DB"):
        return
    name = make_url(c.db_url).database
    engine = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT", future=True)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                         {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    except Exception:
        pass
    finally:
        engine.dispose()


def make_users(db_url: str) -> None:
    from bot.db import session_scope
    from bot.models import User
    from bot.services import users

    with session_scope(db_url) as s:
        for name, role in ROLES.items():
            if s.get(User, name) is None:
                users.create_user(s, name, role, PASSWORDS[name], rounds=4)


def publish_knowledge(db_url: str, round_the_clock: bool = True) -> None:
    """The shipped knowledge; human service 00:00–24:00 so handoffs queue at any hour of the test."""
    from bot.db import session_scope
    from bot.kb import loader

    files = loader.read_dir(ROOT / "knowledge")
    if round_the_clock:
        cinema = files["cinema.yml"].decode("utf-8")
        changed = re.sub(r'(human_service:\s*\n\s*start:\s*)"[0-9:]+"(\s*\n\s*end:\s*)"[0-9:]+"',
                         r'\g<1>"00:00"\g<2>"24:00"', cinema)
        files["cinema.yml"] = changed.encode("utf-8")
    with session_scope(db_url) as s:
        loader.publish(s, files, author="test-cluster")


def start_cluster(model: str, work: Path, rasa: int = 2, actions: int = 2,
                  extra_env: Optional[Dict[str, str]] = None, ready_timeout: float = 600) -> Cluster:
    from bot.deploy.database import ensure_database
    from bot.deploy.layout import Layout

    work.mkdir(parents=True, exist_ok=True)
    prefix = "t" + secrets.token_hex(4)
    db = f"xinghe_{prefix}"
    db_url = f"{PG}/{db}"
    ensure_database(db_url)
    publish_knowledge(db_url)
    make_users(db_url)
    pg_port = int(PG.rsplit(":", 1)[1])
    kb_proxy, tracker_proxy = TcpProxy(pg_port), TcpProxy(pg_port)
    stub_port = free_port()
    wechat = {"token": "wechat-cluster-token", "appid": "wxc1u5te7000000001", "secret": "cluster-secret",
              "api_base": f"http://127.0.0.1:{stub_port}", "stub_log": str(work / "wechat_stub.jsonl")}
    ports = {"rasa0": free_port(), "actions0": free_port(), "app": free_port(), "public": free_port(),
             "rasa": free_port(), "actions": free_port()}
    # instance ports are consecutive from rasa0 / actions0: make sure the next ones are free too
    ports["rasa0"] = _free_run(rasa)
    ports["actions0"] = _free_run(actions)
    layout = Layout(work, model, rasa=rasa, actions=actions, nginx=True, ports=ports)
    token = "cluster-token-" + secrets.token_hex(8)
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": str(ROOT), "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2",
        "XINGHE_VAR_DIR": str(work), "TMPDIR": str(ROOT / "var" / "tmp"),
        "KNOWLEDGE_DB_URL": f"postgresql://postgres@127.0.0.1:{kb_proxy.port}/{db}",
        "TRACKER_DB_URL": f"postgresql://postgres@127.0.0.1:{tracker_proxy.port}/{db}",
        "TRACKER_STORE": "sql", "LOCK_STORE": "redis", "SOCKETIO_MANAGER": "redis",
        "TRACKER_KEY_PREFIX": prefix, "TICKET_LOCK_LIFETIME": "30",
        "RASA_TOKEN": token, "XINGHE_ACTION_TOKEN": secrets.token_urlsafe(32),
        "XINGHE_WEBCHAT_KEY": secrets.token_urlsafe(32), "DESK_SECRET_KEY": secrets.token_urlsafe(32),
        "DESK_INSECURE_COOKIES": "1", "WECHAT_TOKEN": wechat["token"], "WECHAT_APPID": wechat["appid"],
        "WECHAT_SECRET": wechat["secret"], "WECHAT_API_BASE": wechat["api_base"],
        "ACTION_ENDPOINT_URL": layout.action_url, "RASA_URL": layout.rasa_url,
        "RASA_HOST": "127.0.0.1", "ACTIONS_HOST": "127.0.0.1", "DESK_HOST": "127.0.0.1",
        # the event broker and its consumer run too, on a queue and exchange of this cluster's own
        "RABBITMQ_PASSWORD": os.environ.get("RABBITMQ_PASSWORD", "guest"),
        "EVENT_QUEUE": f"{prefix}_events", "EVENT_EXCHANGE": f"{prefix}_exchange",
        # the kill -9 test's patrons talk non-stop: the per-sender flood limit is lifted as in tests/stack.py
        "XINGHE_LIMIT_MESSAGE_SENDER": "100000/60", "XINGHE_LIMIT_MESSAGE_IP": "100000/60",
    })
    env.update(extra_env or {})
    subprocess.run([str(BIN / "python"), "-m", "bot.runtime_config", "--out", str(work)], env=env, cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)
    conf = layout.write()
    cluster = Cluster(work, layout, env, db_url, prefix, token, kb_proxy, tracker_proxy, wechat)
    stub_log = open(wechat["stub_log"], "w")
    cluster.procs.append(subprocess.Popen(["supervisord", "-c", str(conf)], env=env, cwd=ROOT,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
    cluster.procs.append(subprocess.Popen(
        [str(BIN / "python"), str(ROOT / "tests" / "wechat_stub.py"), "--port", str(stub_port),
         "--appid", wechat["appid"], "--secret", wechat["secret"], "--one-token"],
        stdout=stub_log, stderr=subprocess.STDOUT))
    try:
        cluster.wait_healthy(ready_timeout)   # each Rasa instance loads for ~1 min of one core
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _free_run(n: int) -> int:
    """The first of ``n`` consecutive free ports (inside ``XINGHE_TEST_PORTS`` when set)."""
    ports = _port_range()
    for _ in range(50):
        first = free_port()
        if ports is not None and first + n - 1 not in ports:
            continue
        if all(_bindable(p) for p in range(first, first + n)):
            if ports is not None:
                with _range_lock:
                    _next_in_range["next"] = first + n if first + n in ports else ports.start
            return first
    raise RuntimeError("no run of free ports")


# -- clients ----------------------------------------------------------------------------------------------

class Patron:
    """A web chat patron: python-socketio on Rasa's channel through nginx (``transport``: polling exercises
    the stickiness, websocket the single connection). The server issues the session id."""

    def __init__(self, base: str, transport: str = "polling", path: str = "socket.io") -> None:
        import socketio

        self.messages: List[Dict[str, Any]] = []
        self._cond = threading.Condition()
        self._confirmed = threading.Event()
        self.session_id: Optional[str] = None
        self.sio = socketio.Client(reconnection=False)

        @self.sio.on("bot_uttered")
        def on_bot(data):
            with self._cond:
                self.messages.append(data)
                self._cond.notify_all()

        @self.sio.on("session_confirm")
        def on_confirm(data):
            self.session_id = data
            self._confirmed.set()

        self.sio.connect(base, transports=[transport], socketio_path=path, wait_timeout=30)
        self.sio.emit("session_request", {})
        assert self._confirmed.wait(30), "no session_confirm from Rasa"

    @property
    def engine_sid(self) -> str:
        return self.sio.eio.sid

    def say(self, text: str) -> None:
        self.sio.emit("user_uttered", {"message": text})

    def wait_for(self, needle: str, start: int = 0, timeout: float = 60) -> str:
        deadline = time.time() + timeout
        with self._cond:
            while True:
                for m in self.messages[start:]:
                    if needle in (m.get("text") or ""):
                        return m["text"]
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"{needle!r} not received; got {[m.get('text') for m in self.messages]}")
                self._cond.wait(left)

    def ask(self, text: str, needle: str, timeout: float = 60) -> str:
        start = len(self.messages)
        self.say(text)
        return self.wait_for(needle, start, timeout)

    def close(self) -> None:
        try:
            self.sio.disconnect()
        except Exception:
            pass


class Agent:
    """A logged-in desk user over HTTP, cookies sent by hand (the desk's cookies are Secure)."""

    def __init__(self, base: str, username: str) -> None:
        self.base, self.username = base, username
        self.http = requests.Session()
        page = self.get("/desk/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = self.http.post(f"{base}/desk/login", data={"username": username, "password": PASSWORDS[username],
                                                       "csrf_token": token}, cookies=self.cookies(),
                           allow_redirects=False, timeout=30)
        assert r.status_code == 302 and "login" not in r.headers["Location"], r.headers.get("Location")
        home = self.get("/desk/tickets")
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', home.text).group(1)

    def cookies(self) -> Dict[str, str]:
        return {c.name: c.value for c in self.http.cookies}

    def get(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 30)
        return self.http.get(self.base + path, cookies=self.cookies(), **kw)

    def post(self, path: str, body: Optional[dict] = None) -> requests.Response:
        return self.http.post(self.base + path, json=body or {}, headers={"X-CSRF-Token": self.csrf},
                              cookies=self.cookies(), timeout=60)

    def conv(self, sender: str, tail: str = "") -> str:
        from urllib.parse import quote

        return f"/desk/api/conversations/{quote(sender, safe='')}" + (f"/{tail}" if tail else "")


class EventStream:
    """The desk page's server-sent events, read in a thread; an open stream keeps the agent online."""

    def __init__(self, agent: Agent) -> None:
        self._resp = agent.get("/desk/api/events", stream=True, timeout=(5, 120))
        assert self._resp.status_code == 200
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        try:
            for _ in self._resp.iter_lines():
                pass
        except Exception:
            pass

    def close(self) -> None:
        self._resp.close()


def wait_until(check, timeout: float = 30, what: str = "condition", every: float = 0.3):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def user_texts(tracker: dict) -> List[str]:
    return [e.get("text") for e in tracker.get("events", []) if e.get("event") == "user"]


def new_sender(tag: str = "c") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}"


def stub_log(cluster: Cluster) -> List[dict]:
    """What the WeChat stub recorded: customer-service messages and ``{"tokens_issued": n}`` lines."""
    out = []
    for line in Path(cluster.wechat["stub_log"]).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out
