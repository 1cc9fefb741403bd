"""The agent desk: logins, CSRF, roles and lockout (aiohttp test client on SQLite); the WeChat window,
statistics and ticket views as functions; and, against the real stack, presence, the queue pushed over
server-sent events, claim/transfer/close, WeChat's customer-service quota and the queue timeout."""
from __future__ import annotations

import datetime as dt
import io
import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
import requests

from tests.servers import BackgroundServer
from tests.conftest import ROOT

PASSWORDS = {"agent1": "agent-one-pass", "agent2": "agent-two-pass", "boss": "supervisor-pass",
             "ed": "editor-pass-123"}
ROLES = {"agent1": "agent", "agent2": "agent", "boss": "supervisor", "ed": "editor"}


def make_users(db_url: str) -> None:
    from bot.db import session_scope
    from bot.models import User
    from bot.services import users

    with session_scope(db_url) as s:
        for name, role in ROLES.items():
            if s.get(User, name) is None:
                users.create_user(s, name, role, PASSWORDS[name], rounds=4)


def settings_for(db_url: str, **overrides):
    from bot.redis_conn import RedisSettings
    from bot.services.app import Settings

    values = dict(db_url=db_url, secret_key=b"s" * 32, secure_cookies=False, background_tasks=False,
                  rasa_url="http://127.0.0.1:9", redis=RedisSettings(port=9), tracker_store="memory")
    values.update(overrides)
    return Settings(**values)


# =========================================================================== auth (no stack)
@pytest.fixture()
def desk_db(tmp_path) -> str:
    from bot.db import session_scope
    from bot.kb import loader

    url = f"sqlite:///{tmp_path / 'desk.db'}"
    with session_scope(url) as s:
        loader.publish(s, loader.read_dir(ROOT / "knowledge"), author="test")
    make_users(url)
    return url


@pytest.fixture()
async def client(desk_db):
    from aiohttp.test_utils import TestClient, TestServer

    from bot.services.app import create_app

    async with TestClient(TestServer(create_app(settings_for(desk_db)))) as c:
        yield c


async def _login(c, user: str, password: Optional[str] = None):
    r = await c.get("/desk/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text()).group(1)
    return await c.post("/desk/login", data={"username": user, "password": password or PASSWORDS[user],
                                             "csrf_token": token, "next": "/desk/"}, allow_redirects=False)


async def _csrf(c) -> str:
    r = await c.get("/desk/tickets")
    assert r.status == 200
    return re.search(r'name="csrf-token" content="([^"]+)"', await r.text()).group(1)


PROTECTED_GETS = ["/desk/", "/desk/tickets", "/desk/tickets/T20260101-0001", "/desk/stats", "/desk/api/queue",
                  "/desk/api/events", "/desk/api/staff", "/desk/api/canned", "/desk/api/stats", "/desk/api/tickets",
                  "/desk/api/conversations/abc", "/desk/static/desk.js", "/desk/static/vendor/chart.umd.min.js"]
PROTECTED_POSTS = ["/desk/logout", "/desk/api/conversations/abc/claim", "/desk/api/conversations/abc/messages",
                   "/desk/api/conversations/abc/handback", "/desk/api/conversations/abc/close",
                   "/desk/api/conversations/abc/transfer", "/desk/api/tickets/T1/resolve", "/desk/tickets/T1"]


async def test_nothing_of_the_desk_without_login(client):
    for path in PROTECTED_GETS:
        r = await client.get(path, allow_redirects=False)
        if "/api/" in path:
            assert r.status == 401, path
            assert (await r.json())["error"] == "login_required"
        else:
            assert r.status == 302 and r.headers["Location"].startswith("/desk/login"), (path, r.status)
    for path in PROTECTED_POSTS:
        r = await client.post(path, json={}, allow_redirects=False)
        assert r.status in (302, 401), (path, r.status)
    r = await client.get("/desk/login")
    assert r.status == 200 and "坐席登录" in await r.text()
    assert "no-store" in r.headers["Cache-Control"] and r.headers["X-Frame-Options"] == "DENY"


async def test_login_sets_httponly_cookie_and_pages_open(client):
    r = await _login(client, "agent1")
    assert r.status == 302 and r.headers["Location"] == "/desk/"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    r = await client.get("/desk/")
    html = await r.text()
    assert r.status == 200 and "排队等待人工" in html and 'data-username="agent1"' in html
    assert "非常理解您的感受，给您带来不便非常抱歉。" in html  # canned replies from complaints.yml
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert (await client.get("/desk/static/desk.js")).status == 200
    r = await client.get("/desk/api/queue")
    assert r.status == 200 and (await r.json())["me"] == {"username": "agent1", "role": "agent"}


async def test_secure_cookie_by_default(desk_db):
    from aiohttp.test_utils import TestClient, TestServer

    from bot.services.app import create_app

    async with TestClient(TestServer(create_app(settings_for(desk_db, secure_cookies=True)))) as c:
        r = await c.get("/desk/login")
        pre = r.headers["Set-Cookie"]
        assert pre.startswith("__Host-xh_prelogin=") and "Secure" in pre and "HttpOnly" in pre
        nonce = pre.split(";")[0].split("=", 1)[1]
        token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text()).group(1)
        c.session.cookie_jar.clear()  # a client over plain http would not send it back; do it by hand
        r = await c.post("/desk/login", data={"username": "agent1", "password": PASSWORDS["agent1"],
                                              "csrf_token": token}, headers={"Cookie": f"__Host-xh_prelogin={nonce}"},
                         allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/desk/"
        session = [v for v in r.headers.getall("Set-Cookie") if v.startswith("__Host-xh_desk=")][0]
        assert "Secure" in session and "HttpOnly" in session and "Path=/" in session


async def test_csrf_is_required_for_every_change(client):
    await _login(client, "agent1")
    token = await _csrf(client)
    url = "/desk/api/conversations/nobody/claim"
    r = await client.post(url, json={})
    assert r.status == 403 and (await r.json())["error"] == "csrf"
    r = await client.post(url, json={}, headers={"X-CSRF-Token": "wrong" + token})
    assert r.status == 403
    r = await client.post(url, json={}, headers={"X-CSRF-Token": token, "Origin": "http://evil.example"})
    assert r.status == 403
    r = await client.post(url, json={}, headers={"X-CSRF-Token": token})
    assert r.status == 404 and (await r.json())["error"] == "unknown_conversation"  # passed the CSRF check
    # a form without the field, and the logout form with it
    r = await client.post("/desk/tickets/T1", data={"do": "note", "note": "x"}, allow_redirects=False)
    assert r.status == 403
    r = await client.post("/desk/logout", data={"csrf_token": token}, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/desk/login"
    assert (await client.get("/desk/api/queue")).status == 401  # the session is gone


async def test_token_of_another_session_is_rejected(desk_db):
    from aiohttp.test_utils import TestClient, TestServer

    from bot.services.app import create_app

    app = create_app(settings_for(desk_db))
    async with TestClient(TestServer(app)) as a:
        await _login(a, "agent1")
        token_a = await _csrf(a)
        async with TestClient(TestServer(create_app(settings_for(desk_db)))) as b:
            await _login(b, "agent2")
            r = await b.post("/desk/api/conversations/x/claim", json={}, headers={"X-CSRF-Token": token_a})
            assert r.status == 403


async def test_login_form_needs_its_csrf_token(client):
    r = await client.post("/desk/login", data={"username": "agent1", "password": PASSWORDS["agent1"]},
                          allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/desk/login?error=csrf"
    assert (await client.get("/desk/api/queue")).status == 401


async def test_wrong_role_is_rejected(client):
    await _login(client, "ed")
    r = await client.get("/desk/", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/desk/stats"
    assert (await client.get("/desk/stats")).status == 200
    token = re.search(r'name="csrf-token" content="([^"]+)"', await (await client.get("/desk/stats")).text()).group(1)
    for method, path in [("GET", "/desk/api/queue"), ("GET", "/desk/api/events"), ("GET", "/desk/tickets"),
                         ("POST", "/desk/api/conversations/x/claim"), ("POST", "/desk/api/conversations/x/messages"),
                         ("POST", "/desk/api/tickets/T1/resolve"), ("POST", "/desk/tickets/T1")]:
        r = await client.request(method, path, json={} if method == "POST" else None,
                                 headers={"X-CSRF-Token": token, "Accept": "application/json"})
        assert r.status == 403, (method, path, r.status)
    assert (await client.get("/desk/api/stats")).status == 200
    await client.post("/desk/logout", data={"csrf_token": token})
    await _login(client, "agent1")
    assert (await client.get("/desk/api/stats")).status == 403
    assert (await client.get("/desk/stats")).status == 403


async def test_lockout_after_five_failures(client, desk_db):
    from bot.db import session_scope
    from bot.models import AuditLog, User

    for i in range(4):
        r = await _login(client, "agent2", "wrong-password")
        assert r.headers["Location"] == "/desk/login?error=invalid"
    r = await _login(client, "agent2", "wrong-password")  # locks, with the same answer as any failure
    assert r.headers["Location"] == "/desk/login?error=invalid"
    r = await _login(client, "agent2")  # the right password is refused while locked
    assert r.headers["Location"] == "/desk/login?error=invalid"
    r = await client.get("/desk/login?error=invalid")
    assert "锁定" in await r.text()
    with session_scope(desk_db) as s:
        user = s.get(User, "agent2")
        assert user.locked_until > dt.datetime.utcnow() + dt.timedelta(minutes=14)
        user.locked_until = dt.datetime.utcnow() - dt.timedelta(seconds=1)  # 15 minutes later
        actions = [a.action for a in s.query(AuditLog).filter_by(entity="login", entity_id="agent2")]
        assert "locked" in actions and "refused_locked" in actions
    r = await _login(client, "agent2")
    assert r.headers["Location"] == "/desk/"
    # unknown users fail the same way
    client.session.cookie_jar.clear()
    assert (await _login(client, "nobody", "whatever-pass")).headers["Location"] == "/desk/login?error=invalid"


async def test_open_redirect_is_not_possible(client):
    r = await client.get("/desk/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text()).group(1)
    r = await client.post("/desk/login", data={"username": "agent1", "password": PASSWORDS["agent1"],
                                               "csrf_token": token, "next": "//evil.example/x"},
                          allow_redirects=False)
    assert r.headers["Location"] == "/desk/"


def test_users_command(tmp_path, monkeypatch, capsys):
    from bot.db import session_scope
    from bot.models import User
    from bot.services import auth, users

    url = f"sqlite:///{tmp_path / 'u.db'}"
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert users.main(["--db", url, "create", "li", "--role", "supervisor", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert users.main(["--db", url, "create", "wang", "--role", "agent", "--password-stdin"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("another-password\n"))
    assert users.main(["--db", url, "create", "li", "--role", "agent", "--password-stdin"]) == 2  # exists
    assert users.main(["--db", url, "list"]) == 0
    assert "li\tsupervisor" in capsys.readouterr().out
    with session_scope(url) as s:
        h = s.get(User, "li").password_hash
        assert h.startswith("$2b$") and auth.verify_password("a-long-password", h)
        assert not auth.verify_password("a-long-passwore", h)
        auth.metadata.create_all(s.get_bind())
        s.execute(auth.desk_session.insert().values(token_hash="x" * 64, username="li", csrf="c",
                                                    created_at=dt.datetime.utcnow(), last_seen=dt.datetime.utcnow()))
    monkeypatch.setattr("sys.stdin", io.StringIO("a-new-password-1\n"))
    assert users.main(["--db", url, "set-password", "li", "--password-stdin"]) == 0
    with session_scope(url) as s:
        assert auth.verify_password("a-new-password-1", s.get(User, "li").password_hash)
        assert s.execute(auth.desk_session.select()).first() is None  # signed out everywhere
    with pytest.raises(auth.PasswordError):
        auth.hash_password("x" * 73)


# =========================================================================== pure functions
def _ev(kind: str, ts: float, **kw) -> Dict[str, Any]:
    return {"event": kind, "timestamp": ts, **kw}


def test_wechat_window_and_quota():
    from bot.services.desk import DeskError, check_can_send, wechat_window

    now = 1_800_000_000.0
    events = [_ev("user", now - 3600, text="转人工"), _ev("action", now - 3600, name="action_request_human"),
              _ev("bot", now - 3600, text="我已为您转接人工客服")]  # passive reply: not counted
    w = wechat_window(events, now)
    assert w["open"] and w["remaining"] == 5 and w["sent"] == 0 and w["seconds_left"] == 47 * 3600
    for i in range(5):
        events += [_ev("action", now, name="action_agent_message"), _ev("bot", now, text=f"reply {i}")]
    w = wechat_window(events, now)
    assert not w["open"] and w["reason"] == "wechat_quota_exhausted" and w["remaining"] == 0
    with pytest.raises(DeskError) as err:
        check_can_send("wechat", events, "one more")
    assert err.value.code == "wechat_quota_exhausted" and err.value.info["followup"]
    # the patron writes again: a new quota
    events.append(_ev("user", now + 10, text="还在吗"))
    assert wechat_window(events, now + 20)["remaining"] == 5
    # a 5000-byte text is three customer-service messages
    events += [_ev("action", now + 30, name="action_agent_message"), _ev("bot", now + 30, text="长" * 1700)]
    assert wechat_window(events, now + 40)["sent"] == 3
    with pytest.raises(DeskError):
        check_can_send("wechat", events, "长" * 1400)  # needs 3, 2 left
    # 48 hours after the patron's last message the window is closed, whatever the quota
    w = wechat_window(events, now + 10 + 48 * 3600)
    assert not w["open"] and w["reason"] == "wechat_window_closed"
    # a subscription event ("/greet") does not open the 48-hour window
    w = wechat_window([_ev("user", now, text="/greet")], now)
    assert not w["open"] and w["reason"] == "wechat_no_patron_message"
    # other channels have no such limit
    assert check_can_send("socketio", [], "hi")["open"]


def test_transcript_marks_agent_messages_and_pauses():
    from bot.services.desk import transcript, visible_slots

    items = transcript([_ev("user", 1, text="转人工", parse_data={"intent": {"name": "request_human"}}),
                        _ev("action", 2, name="action_request_human"), _ev("bot", 2, text="请稍候"),
                        _ev("pause", 2), _ev("pause", 3), _ev("slot", 3, name="agent_message", value="您好"),
                        _ev("action", 3, name="action_agent_message"), _ev("bot", 3, text="您好"),
                        _ev("resume", 4), _ev("action", 4, name="action_handback"), _ev("bot", 4, text="我回来了")])
    assert [(i["who"], i.get("text") or i.get("code")) for i in items] == [
        ("patron", "转人工"), ("bot", "请稍候"), ("system", "paused"), ("agent", "您好"), ("system", "resumed"),
        ("bot", "我回来了")]
    assert [i["index"] for i in items] == list(range(6))
    assert visible_slots({"slots": {"agent_message": "x", "phone": "13812345678", "film": None, "anger_count": 0,
                                    "needs_human": False, "party_size": 12}}) == {"party_size": 12, "phone": "13812345678"}


def test_ticket_page_hides_payloads_and_names_history_values(tmp_path):
    """A ticket's excerpt leaves out /greet (no patron typed it); its history says 已完成, not ``done``."""
    from bot.db import session_scope
    from bot.services.app import create_app
    from bot.services.auth import Identity
    from bot.services.common.web import TEMPLATES
    from bot.services.desk.operations import ticket_detail
    from bot.tickets import store

    url = f"sqlite:///{tmp_path / 't.db'}"
    with session_scope(url) as s:
        t = store.create_ticket(s, type="handoff", channel="socketio", sender_id="web-1", facts={},
                                transcript=[{"who": "patron", "text": "/greet"}, {"who": "bot", "text": "您好"},
                                            {"who": "patron", "text": "转人工"}],
                                sla={"default": 240})
        store.transition(s, t, actor="boss", followup_at=store.add_working_days(dt.datetime.utcnow(), 1))
        store.transition(s, t, actor="boss", followup_done=True)
        detail = ticket_detail(s, t)
    assert [m["text"] for m in detail["transcript"]] == ["您好", "转人工"]
    env = create_app(settings_for(url))[TEMPLATES]
    html = env.get_template("desk/ticket.html").render(
        t={**detail, "phone_masked": "", "reveals": []}, categories=[], fmt=lambda v, *a: v or "", error=None,
        done=None, revealed=None, followup=None, user=Identity("boss", "supervisor", "", "", False), csrf="",
        path="/desk/tickets/x")
    assert "回访状态：已完成" in html and "回访状态：待回访" in html and "done" not in html.split("处理记录")[1]


def test_ticket_statistics(tmp_path):
    from bot.db import session_scope
    from bot.services.desk import ticket_stats
    from bot.tickets import store

    url = f"sqlite:///{tmp_path / 's.db'}"
    sla = {"complaint": 60, "handoff": 30, "emergency": 5}
    now = dt.datetime(2026, 11, 20, 6, 0)  # 14:00 in Shanghai
    with session_scope(url) as s:
        a = store.create_ticket(s, type="complaint", channel="wechat", sender_id="p1", facts={}, category="环境卫生",
                                sla=sla, now=now - dt.timedelta(days=2))
        b = store.create_ticket(s, type="handoff", channel="socketio", sender_id="p2", facts={}, sla=sla,
                                now=now - dt.timedelta(days=1))
        c = store.create_ticket(s, type="emergency", channel="socketio", sender_id="p3", facts={}, sla=sla,
                                now=now - dt.timedelta(hours=1))
        store.transition(s, a, actor="agent1", status="claimed", now=now - dt.timedelta(days=2) + dt.timedelta(minutes=10))
        store.transition(s, a, actor="agent1", status="resolved", resolution="ok",
                         now=now - dt.timedelta(days=2) + dt.timedelta(minutes=50))
        store.transition(s, b, actor="agent2", status="claimed", now=now - dt.timedelta(days=1) + dt.timedelta(minutes=45))
        data = ticket_stats(s, now - dt.timedelta(days=6), "day", now)
    assert data["labels"][-1] == "2026-11-20" and len(data["labels"]) == 7
    assert data["totals"]["tickets"] == 3
    assert data["by_type"]["complaint"][data["labels"].index("2026-11-18")] == 1
    assert data["complaints_by_category"]["环境卫生"] == [0, 0, 0, 0, 1, 0, 0]
    assert data["totals"]["first_response_median_min"] == 27.5  # 10 and 45 minutes
    assert data["totals"]["resolution_median_min"] == 50.0
    # b answered after its 30-minute SLA, c (5 minutes) never answered: two breaches; a was in time
    assert data["totals"]["sla_breaches"] == 2 and sorted(data["totals"]["breached"]) == sorted([b.number, c.number])


# =========================================================================== against the real stack
class DeskServer(BackgroundServer):
    """The desk app served in-process on a free port."""

    def __init__(self, settings) -> None:
        from tests.stack import free_port

        super().__init__("desk-server")
        self.settings = settings
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def build(self):
        from bot.services.app import create_app

        self.app = create_app(self.settings)
        return [(self.app, self.port)]


class Patron:
    """A patron in the web chat: python-socketio client on Rasa's socket.io channel."""

    def __init__(self, rasa_url: str, session_id: Optional[str] = None) -> None:
        import socketio

        from tests.stack import webchat_session_id

        self.session_id = session_id or webchat_session_id()
        self.messages: List[Dict[str, Any]] = []
        self._cond = threading.Condition()
        self._confirmed = threading.Event()
        self.sio = socketio.Client(reconnection=False)

        @self.sio.on("bot_uttered")
        def on_bot(data):
            with self._cond:
                self.messages.append(data)
                self._cond.notify_all()

        @self.sio.on("session_confirm")
        def on_confirm(data):
            self._confirmed.set()

        self.sio.connect(rasa_url, transports=["websocket"], socketio_path="socket.io", wait_timeout=30)
        self.sio.emit("session_request", {"session_id": self.session_id})
        assert self._confirmed.wait(30), "no session_confirm from Rasa"

    def texts(self) -> List[str]:
        with self._cond:
            return [m.get("text") or "" for m in self.messages]

    def say(self, text: str) -> None:
        self.sio.emit("user_uttered", {"message": text, "session_id": self.session_id})

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
    """A logged-in desk user over HTTP (requests), with the page's CSRF token. Cookies are sent by hand so
    that the desk's Secure cookies work over plain http on 127.0.0.1 too (as a browser does there)."""

    def __init__(self, base: str, username: str) -> None:
        self.base, self.username = base, username
        self.http = requests.Session()
        page = self.get("/desk/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = self.http.post(f"{base}/desk/login", data={"username": username, "password": PASSWORDS[username],
                                                       "csrf_token": token}, cookies=self.cookies(),
                           allow_redirects=False, timeout=30)
        assert r.status_code == 302 and r.headers["Location"].startswith("/desk/") \
            and "login" not in r.headers["Location"], r.headers.get("Location")
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
    """The desk page's server-sent event stream, read in a thread (keeps the agent online while open)."""

    def __init__(self, agent: Agent) -> None:
        self.events: List[tuple] = []
        self._cond = threading.Condition()
        self._resp = agent.get("/desk/api/events", stream=True, timeout=(5, 120))
        assert self._resp.status_code == 200 and self._resp.headers["Content-Type"].startswith("text/event-stream")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        kind, data = None, []
        try:
            for raw in self._resp.iter_lines(decode_unicode=True):
                if raw is None:
                    continue
                if raw == "":
                    if kind and data:
                        with self._cond:
                            self.events.append((kind, json.loads("\n".join(data))))
                            self._cond.notify_all()
                    kind, data = None, []
                elif raw.startswith("event:"):
                    kind = raw[6:].strip()
                elif raw.startswith("data:"):
                    data.append(raw[5:].strip())
        except Exception:
            pass

    def wait(self, predicate: Callable[[str, Any], bool], timeout: float = 30) -> Any:
        deadline = time.time() + timeout
        with self._cond:
            while True:
                for kind, data in self.events:
                    if predicate(kind, data):
                        return data
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"no matching event; got {[k for k, _ in self.events]}")
                self._cond.wait(left)

    def close(self) -> None:
        self._resp.close()


def wait_until(check: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def online_agents(db_url: str) -> List[str]:
    from bot.db import session_scope
    from bot.tickets import handoff

    with session_scope(db_url) as s:
        return handoff.agents_online(s)


def conversation(db_url: str, sender: str):
    from bot.db import session_scope
    from bot.tickets import handoff

    with session_scope(db_url) as s:
        return handoff.get_conversation(s, sender)


def ticket(db_url: str, number: str):
    from bot.db import session_scope
    from bot.tickets import store

    with session_scope(db_url) as s:
        t = store.get_by_number(s, number)
        if t is not None:
            s.expunge(t)
        return t


def publish_round_the_clock(db_url: str) -> None:
    """Human service 00:00–24:00 so the queue works at any hour (and the desk's users)."""
    from bot.db import session_scope
    from bot.kb import loader

    files = loader.read_dir(ROOT / "knowledge")
    cinema = files["cinema.yml"].decode("utf-8")
    changed = re.sub(r'(human_service:\s*\n\s*start:\s*)"[0-9:]+"(\s*\n\s*end:\s*)"[0-9:]+"',
                     r'\g<1>"00:00"\g<2>"24:00"', cinema)
    assert 'start: "00:00"' in changed, "cinema.yml has no human_service start/end to change"
    files["cinema.yml"] = changed.encode("utf-8")
    with session_scope(db_url) as s:
        loader.publish(s, files, author="test-desk", comment="human service round the clock")
    make_users(db_url)


def restore_knowledge(db_url: str) -> None:
    from bot.db import session_scope
    from bot.kb import loader

    with session_scope(db_url) as s:
        loader.publish(s, loader.read_dir(ROOT / "knowledge"), author="test-desk", force=True)


@pytest.fixture(scope="module")
def round_the_clock(stack):
    publish_round_the_clock(stack.db_url)
    yield
    restore_knowledge(stack.db_url)


def desk_settings(stack, **overrides):
    from bot.services.app import Settings

    values = dict(db_url=stack.db_url, rasa_url=stack.rasa, rasa_token=stack.token, secret_key=b"d" * 32,
                  secure_cookies=False, poll_s=0.5, heartbeat_s=5, ping_s=1, expire_every_s=1, handoff_timeout_s=3600,
                  tracker_store="memory")
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def desk(stack, round_the_clock):
    server = DeskServer(desk_settings(stack)).start()
    yield server
    server.stop()


def _queued(patron: Patron) -> str:
    """Ask for a human and return the text of the waiting reply."""
    return patron.ask("转人工", "人工客服", timeout=90)


@pytest.mark.e2e
def test_presence_decides_queue_or_message(stack, desk):
    agent = Agent(desk.base, "agent1")
    assert "agent1" not in online_agents(stack.db_url)
    stream = EventStream(agent)
    patron = Patron(stack.rasa)
    try:
        wait_until(lambda: "agent1" in online_agents(stack.db_url), what="agent1 online")
        first = stream.wait(lambda k, d: k == "queue")
        assert first["me"]["username"] == "agent1" and "agent1" in first["agents_online"]
        assert re.search(r"马上为您接通|前面还有[1-9]\d*位", _queued(patron))
        # pushed to the open page without reload
        snap = stream.wait(lambda k, d: k == "queue" and any(c["sender_id"] == patron.session_id for c in d["waiting"]))
        item = next(c for c in snap["waiting"] if c["sender_id"] == patron.session_id)
        assert item["channel"] == "socketio" and item["ticket"]["type"] == "handoff"
        assert conversation(stack.db_url, patron.session_id).state == "waiting"
    finally:
        stream.close()
    # the page closed: the agent goes offline and the bot takes a message instead of queueing
    wait_until(lambda: "agent1" not in online_agents(stack.db_url), what="agent1 offline")
    other = Patron(stack.rasa)
    try:
        reply = other.ask("转人工", "工单号", timeout=90)
        assert "不在线" in reply
        assert conversation(stack.db_url, other.session_id) is None
        # served after all (claiming needs no open page), so the queue is left as it was
        assert agent.post(agent.conv(patron.session_id, "claim")).ok
        assert agent.post(agent.conv(patron.session_id, "handback")).ok
    finally:
        other.close()
        patron.close()


@pytest.mark.e2e
def test_claim_transfer_close_and_followup(stack, desk):
    a1, a2, boss = Agent(desk.base, "agent1"), Agent(desk.base, "agent2"), Agent(desk.base, "boss")
    s1, s2 = EventStream(a1), EventStream(a2)
    patron = Patron(stack.rasa)
    try:
        wait_until(lambda: {"agent1", "agent2"} <= set(online_agents(stack.db_url)), what="agents online")
        patron.ask("空调太冷了", "", timeout=90)
        _queued(patron)
        sender = patron.session_id
        s1.wait(lambda k, d: k == "queue" and any(c["sender_id"] == sender for c in d["waiting"]))
        number = conversation(stack.db_url, sender).ticket_number
        # claim: the whole transcript, channel and ticket; the ticket is claimed by the agent
        r = a1.post(a1.conv(sender, "claim"))
        assert r.status_code == 200, r.text
        view = r.json()
        assert view["channel"] == "socketio" and view["ticket"]["number"] == number
        assert [m["text"] for m in view["transcript"] if m["who"] == "patron"] == ["空调太冷了", "转人工"]
        assert view["window"] == {"limited": False, "open": True, "reason": None, "live": True}
        assert ticket(stack.db_url, number).status == "claimed" and ticket(stack.db_url, number).assignee == "agent1"
        # a second agent cannot take it; the other page sees it gone from the queue
        r = a2.post(a2.conv(sender, "claim"))
        assert r.status_code == 409 and r.json() == {"error": "claimed_by_other", "agent": "agent1"}
        s2.wait(lambda k, d: k == "queue" and not any(c["sender_id"] == sender for c in d["waiting"]))
        # reply: the patron gets it over socket.io; the agent's stream shows it and the patron's answer
        start = len(patron.messages)
        assert a1.post(a1.conv(sender, "messages"), {"text": "您好，我是客服，马上帮您处理空调。"}).status_code == 200
        patron.wait_for("马上帮您处理空调", start)
        patron.say("好的谢谢，7号厅")
        got = s1.wait(lambda k, d: k == "messages" and any(m["who"] == "patron" and m["text"] == "好的谢谢，7号厅"
                                                             for m in d["items"]))
        assert got["sender_id"] == sender
        # transfer to agent2, who now holds it; agent1 may no longer write
        r = a1.post(a1.conv(sender, "transfer"), {"to": "agent2"})
        assert r.status_code == 200, r.text
        s2.wait(lambda k, d: k == "queue" and any(c["sender_id"] == sender for c in d["mine"]))
        assert a1.post(a1.conv(sender, "messages"), {"text": "x"}).json()["error"] == "claimed_by_other"
        assert ticket(stack.db_url, number).assignee == "agent2"
        # schedule a follow-up (回访) and close with a resolution and category
        at = (dt.datetime.now(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
        r = a2.post(f"/desk/api/tickets/{number}/followup", {"followup_at": at, "note": "回访确认温度"})
        assert r.status_code == 200 and r.json()["followup_status"] == "scheduled"
        assert a2.post(a2.conv(sender, "close"), {}).json()["error"] == "resolution_required"
        start = len(patron.messages)
        r = a2.post(a2.conv(sender, "close"), {"resolution": "已调高7号厅温度", "category": "环境卫生"})
        assert r.status_code == 200 and r.json()["announced"], r.text
        patron.wait_for("人工客服已结束本次服务", start)
        t = ticket(stack.db_url, number)
        assert t.status == "resolved" and t.category == "环境卫生" and t.resolution == "已调高7号厅温度"
        assert conversation(stack.db_url, sender).state == "bot"
        # the ticket's history shows every step; the tickets view filters
        detail = boss.get(f"/desk/api/tickets/{number}").json()
        assert [h["action"] for h in detail["history"]][:1] == ["created"]
        assert {"claimed", "assigned", "followup_scheduled", "resolved"} <= {h["action"] for h in detail["history"]}
        listed = boss.get("/desk/api/tickets", params={"type": "handoff", "status": "resolved"}).json()["tickets"]
        assert number in [x["number"] for x in listed]
        assert all(x["type"] == "handoff" and x["status"] == "resolved" for x in listed)
        page = boss.get(f"/desk/tickets/{number}").text
        assert "已调高7号厅温度" in page and "安排回访" in page
        # the bot answers again
        assert "每小时5元" in patron.ask("停车怎么收费", "每小时", timeout=90)
    finally:
        s1.close()
        s2.close()
        patron.close()


def _wechat(stack, openid: str, text: str) -> str:
    from tools.wechat_send import build_message_xml, reply_content, signed_query

    r = requests.post(f"{stack.rasa}/webhooks/wechat/webhook", params=signed_query(stack.wechat["token"]),
                      data=build_message_xml(openid, text).encode("utf-8"), timeout=30)
    assert r.status_code == 200
    return reply_content(r.text) or ""


def _stub_messages(stack, openid: str) -> List[str]:
    lines = Path(stack.wechat["stub_log"]).read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("touser") == openid:
            out.append((m.get("text") or {}).get("content") or m.get("content") or "")
    return out


@pytest.mark.e2e
def test_wechat_replies_respect_the_quota(stack, desk):
    agent = Agent(desk.base, "agent1")
    stream = EventStream(agent)
    openid = f"o-desk-{uuid.uuid4().hex[:10]}"
    try:
        wait_until(lambda: "agent1" in online_agents(stack.db_url), what="agent1 online")
        reply = _wechat(stack, openid, "转人工")
        wait_until(lambda: (conversation(stack.db_url, openid) or None) and
                   conversation(stack.db_url, openid).state == "waiting", timeout=30, what="queued")
        view = agent.post(agent.conv(openid, "claim")).json()
        assert view["channel"] == "wechat"
        assert view["window"]["limited"] and view["window"]["remaining"] == 5 and view["window"]["open"], view["window"]
        for i in range(5):
            r = agent.post(agent.conv(openid, "messages"), {"text": f"客服回复第{i + 1}条"})
            assert r.status_code == 200, r.text
            assert r.json()["window"]["remaining"] == 4 - i
        # each carries the agent's name: WeChat shows text only
        wait_until(lambda: len([t for t in _stub_messages(stack, openid) if re.match(r"【人工客服 [^】]+】客服回复", t)]) == 5,
                   what="five customer-service messages at the WeChat API")
        r = agent.post(agent.conv(openid, "messages"), {"text": "第六条"})
        assert r.status_code == 409
        body = r.json()
        assert body["error"] == "wechat_quota_exhausted" and body["followup"] and body["window"]["remaining"] == 0
        assert "第六条" not in _stub_messages(stack, openid)
        # the patron writes again: a fresh quota
        _wechat(stack, openid, "好的，我等你们消息")
        r = agent.post(agent.conv(openid, "messages"), {"text": "收到，我们尽快处理"})
        assert r.status_code == 200 and r.json()["window"]["remaining"] == 4
        # hand back: the bot's notice also goes out through the API
        assert agent.post(agent.conv(openid, "handback")).status_code == 200
        wait_until(lambda: any("人工客服已结束" in t for t in _stub_messages(stack, openid)), what="handback notice")
        assert reply  # the first passive reply (waiting notice)
        # then the rating as numbered choices; the patron answers with a digit
        prompt = wait_until(lambda: [t for t in _stub_messages(stack, openid) if "请为本次服务打分" in t],
                            what="rating prompt")[-1]
        assert "4分 满意" in prompt and "5分 非常满意" in prompt
        assert "感谢您的评价" in _wechat(stack, openid, "4")
        from bot.db import session_scope
        from bot.models import SatisfactionRating
        with session_scope(stack.db_url) as s:
            row = s.query(SatisfactionRating).filter_by(sender_id=openid).one()
            assert (row.score, row.trigger, row.agent) == (4, "handback", "agent1")
    finally:
        stream.close()


@pytest.mark.e2e
def test_unclaimed_conversation_times_out_to_the_bot(stack, desk):
    from bot.db import session_scope
    from bot.models import Conversation

    agent = Agent(desk.base, "agent2")
    stream = EventStream(agent)
    patron = Patron(stack.rasa)
    try:
        wait_until(lambda: "agent2" in online_agents(stack.db_url), what="agent2 online")
        _queued(patron)
        start = len(patron.messages)
        with session_scope(stack.db_url) as s:  # waiting for two hours already (timeout is one hour)
            s.get(Conversation, patron.session_id).queued_at = dt.datetime.utcnow() - dt.timedelta(hours=2)
        text = patron.wait_for("人工客服暂时都在忙", start, timeout=30)
        assert "工单号T" in text
        assert conversation(stack.db_url, patron.session_id).state == "bot"
        stream.wait(lambda k, d: k == "queue" and not any(c["sender_id"] == patron.session_id for c in d["waiting"]))
        assert "每小时5元" in patron.ask("停车怎么收费", "每小时", timeout=90)
    finally:
        stream.close()
        patron.close()


def test_conversation_of_an_agent_gone_offline_returns_to_the_bot(tmp_path):
    from bot.db import session_scope
    from bot.models import Conversation
    from bot.services.desk import expire_sync
    from bot.tickets import handoff

    url = f"sqlite:///{tmp_path / 'e.db'}"
    old = dt.datetime.utcnow() - dt.timedelta(minutes=10)
    with session_scope(url) as s:
        for sender, agent in (("p-ghost", "ghost"), ("p-here", "here"), ("p-left", "left")):
            s.add(Conversation(sender_id=sender, channel="socketio", state="agent", agent=agent, updated_at=old))
        s.add(Conversation(sender_id="p-wait", channel="socketio", state="waiting", queued_at=old, updated_at=old))
        handoff.heartbeat(s, "here", online=True)
        handoff.heartbeat(s, "left", online=False, now=old)
    with session_scope(url) as s:
        out = sorted(expire_sync(s, 300))
    assert out == [("p-ghost", "agent_offline"), ("p-left", "agent_offline"), ("p-wait", "timeout")]
    with session_scope(url) as s:
        assert s.get(Conversation, "p-here").state == "agent"
        assert s.get(Conversation, "p-ghost").state == "bot" and s.get(Conversation, "p-ghost").agent is None


@pytest.mark.e2e
def test_emergency_is_flagged_and_can_be_taken_over(stack, desk):
    agent = Agent(desk.base, "boss")
    stream = EventStream(agent)
    patron = Patron(stack.rasa)
    try:
        wait_until(lambda: "boss" in online_agents(stack.db_url), what="boss online")
        patron.ask("影厅里有人晕倒了", "120", timeout=90)
        snap = stream.wait(lambda k, d: k == "queue" and any(a["sender_id"] == patron.session_id for a in d["alerts"]))
        alert = next(a for a in snap["alerts"] if a["sender_id"] == patron.session_id)
        assert alert["emergency"] and alert["type"] == "emergency" and alert["priority"] == 1
        assert "晕倒" in alert["summary"]
        try:  # the action server also rings at once through Redis, when there is one
            import redis

            redis.Redis(socket_connect_timeout=0.5).ping()
        except Exception:
            pass
        else:
            pushed = stream.wait(lambda k, d: k == "alert" and d.get("sender_id") == patron.session_id, timeout=10)
            assert pushed["kind"] == "emergency" and pushed["ticket"] == alert["number"]
        view = agent.post(f"/desk/api/tickets/{alert['number']}/take-over").json()
        assert view["sender_id"] == patron.session_id and view["paused"]
        assert view["conversation"]["state"] == "agent" and view["ticket"]["status"] == "claimed"
        start = len(patron.messages)
        assert agent.post(agent.conv(patron.session_id, "messages"), {"text": "值班经理已赶往影厅，请保持冷静"}).ok
        patron.wait_for("值班经理已赶往影厅", start, timeout=30)
        assert agent.post(agent.conv(patron.session_id, "handback")).ok
        assert conversation(stack.db_url, patron.session_id).state == "bot"
    finally:
        stream.close()
        patron.close()


