"""The desk of the `make run` stack: login races and throttling, one answer for every failed login,
agents reading only their conversations, and the Rasa token kept out of URLs."""
from __future__ import annotations

import re
import subprocess
import sys
import threading

import pytest
import requests

from tests.conftest import ROOT
from tests.security.conftest import new_id

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def accounts(run_stack):
    names = {"agent": new_id("agent"), "other": new_id("agent"), "supervisor": new_id("sup"),
             "victim": new_id("agent")}
    for key, name in names.items():
        role = "supervisor" if key == "supervisor" else "agent"
        subprocess.run([sys.executable, "-m", "bot.services.users", "create", name, "--role", role,
                        "--password-stdin"], input=PASSWORD + "\n", text=True, check=True, cwd=ROOT,
                       env=run_stack.env, capture_output=True)
    return names


def _attempt(stack, username: str, password: str) -> str:
    """Where one login attempt (by a fresh browser) is redirected."""
    http = requests.Session()
    page = http.get(f"{stack.desk}/desk/login", timeout=30).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = http.post(f"{stack.desk}/desk/login", data={"username": username, "password": password, "csrf_token": csrf,
                                                   "next": "/desk/"}, allow_redirects=False, timeout=60)
    return r.headers.get("Location", "")


def _session(stack, username: str) -> requests.Session:
    http = requests.Session()
    page = http.get(f"{stack.desk}/desk/login", timeout=30).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = http.post(f"{stack.desk}/desk/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf,
                                                   "next": "/desk/"}, allow_redirects=False, timeout=60)
    assert r.headers.get("Location") == "/desk/", r.headers.get("Location")
    return http


def test_parallel_wrong_guesses_lock_the_account(run_stack, accounts):
    from bot.db import session_scope
    from bot.models import User

    victim = accounts["victim"]
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(_attempt(run_stack, victim, "wrong-guess-123")))
               for _ in range(15)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(answers) == 15
    with session_scope(run_stack.db_url) as s:
        assert s.get(User, victim).locked_until is not None
    assert _attempt(run_stack, victim, PASSWORD) == "/desk/login?error=invalid"   # locked: right password refused


def test_unknown_locked_and_wrong_get_the_same_answer(run_stack, accounts):
    unknown = _attempt(run_stack, new_id("nobody"), "whatever-pass")
    locked = _attempt(run_stack, accounts["victim"], PASSWORD)
    wrong = _attempt(run_stack, accounts["agent"], "wrong-guess-123")
    assert unknown == locked == wrong == "/desk/login?error=invalid"


def test_agents_read_only_conversations_queued_to_or_held_by_them(run_stack, accounts):
    from bot.db import session_scope
    from bot.tickets import handoff, store

    with_bot, held = new_id("patron"), new_id("patron")
    run_stack.rest(with_bot, "你好")
    run_stack.rest(held, "你好")
    numbers = {}
    with session_scope(run_stack.db_url) as s:
        for sender in (with_bot, held):
            numbers[sender] = store.create_ticket(
                s, type="lost_item", channel="rest", sender_id=sender, facts={"item": "伞"}, phone="13900002222",
                sla={"lost_item": 1440}, transcript=[{"who": "patron", "text": "我的伞丢在7号厅"}]).number
        handoff.request_human(s, held, "rest", 3, None)
        handoff.claim(s, held, accounts["other"])
    agent = _session(run_stack, accounts["agent"])
    other = _session(run_stack, accounts["other"])
    boss = _session(run_stack, accounts["supervisor"])
    url = f"{run_stack.desk}/desk/api/conversations/"
    assert agent.get(url + with_bot, timeout=30).status_code == 403
    assert agent.get(url + held, timeout=30).status_code == 403
    r = other.get(url + held, timeout=30)
    assert r.status_code == 200 and r.json()["transcript"][0]["text"] == "你好"   # read from Rasa with the JWT
    assert boss.get(url + with_bot, timeout=30).status_code == 200
    # the ticket page shows its conversation excerpt on the same terms
    tickets = f"{run_stack.desk}/desk/api/tickets/"
    assert agent.get(tickets + numbers[with_bot], timeout=30).json()["transcript"] == []
    assert other.get(tickets + numbers[held], timeout=30).json()["transcript"][0]["text"] == "我的伞丢在7号厅"
    assert boss.get(tickets + numbers[with_bot], timeout=30).json()["transcript"][0]["text"] == "我的伞丢在7号厅"


def test_login_attempts_from_one_address_are_throttled(run_stack, accounts):
    answers = [_attempt(run_stack, new_id("nobody"), "whatever-pass") for _ in range(45)]  # the test stack: 40/10 min
    assert answers[-1] == "/desk/login?error=throttled"
    page = requests.get(f"{run_stack.desk}/desk/login?error=throttled", timeout=30).text
    assert "频繁" in page


async def test_the_desk_sends_no_token_in_rasa_urls():
    """The desk's Rasa client authenticates with a short-lived JWT header; the token is in no URL."""
    import jwt
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from bot.services.desk import RasaClient

    seen = []

    async def tracker(request: web.Request) -> web.Response:
        seen.append((str(request.rel_url), request.headers.get("Authorization", "")))
        return web.json_response({"events": []})

    app = web.Application()
    app.router.add_get("/conversations/{sender}/tracker", tracker)
    server = TestServer(app)
    await server.start_server()
    try:
        client = RasaClient(str(server.make_url("/")), "the-rasa-token-0123456789")
        await client.tracker("someone")
        await client.close()
    finally:
        await server.close()
    url, auth = seen[0]
    assert "the-rasa-token" not in url and "token=" not in url
    claims = jwt.decode(auth.removeprefix("Bearer "), "the-rasa-token-0123456789", algorithms=["HS256"])
    assert claims["user"]["role"] == "admin" and claims["exp"] > claims["iat"]
