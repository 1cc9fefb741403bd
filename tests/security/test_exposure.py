"""What an attacker on this machine (or the network) can reach of the `make run` stack."""
from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest
import requests

from tests.security.conftest import new_id

pytestmark = pytest.mark.e2e


def _listen_addresses(port: int) -> set:
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    return {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


def test_every_service_listens_on_loopback_only(run_stack):
    for port in (run_stack.rasa_port, run_stack.actions_port, run_stack.desk_port):
        addresses = _listen_addresses(port)
        assert addresses, f"nothing listens on {port}"
        assert addresses <= {"127.0.0.1", "[::1]"}, (port, addresses)


def test_action_server_refuses_callers_without_the_secret(run_stack):
    assert requests.get(f"{run_stack.actions}/health", timeout=10).status_code == 200
    assert requests.get(f"{run_stack.actions}/actions", timeout=10).status_code == 401
    forged = {"next_action": "action_emergency", "sender_id": new_id("victim"), "version": "3.6.21",
              "tracker": {"sender_id": "victim", "slots": {}, "latest_message": {"text": "着火了"}, "events": [],
                          "paused": False, "followup_action": None, "active_loop": {},
                          "latest_action_name": "action_listen"}, "domain": {}}
    r = requests.post(f"{run_stack.actions}/webhook", json=forged, timeout=10)
    assert r.status_code == 401
    r = requests.post(f"{run_stack.actions}/webhook", json=forged, timeout=10,
                      headers={"X-Xinghe-Action-Token": "guessed"})
    assert r.status_code == 401


def test_a_slot_cannot_name_another_patrons_ticket(run_stack):
    """Even an authenticated caller (Rasa) cannot make action_submit_complaint amend a ticket of another
    patron by putting its number into topic_context."""
    from bot.db import session_scope
    from bot.models import Ticket
    from bot.tickets import store

    victim = new_id("victim")
    with session_scope(run_stack.db_url) as s:
        ticket = store.create_ticket(s, type="complaint", channel="rest", sender_id=victim, facts={"detail": "屏幕太暗"},
                                     phone="13900001111", category="放映质量", sla={"complaint": 120})
        number = ticket.number
    attacker = new_id("attacker")
    call = {"next_action": "action_submit_complaint", "sender_id": attacker, "version": "3.6.21", "domain": {},
            "tracker": {"sender_id": attacker, "latest_message": {"text": "13812345678"}, "events": [],
                        "slots": {"topic_context": {"topic": "complaint", "values": {"ticket": number}},
                                  "phone": "13812345678", "complaint_detail": "改电话"},
                        "paused": False, "followup_action": None, "active_loop": {},
                        "latest_action_name": "action_listen"}}
    r = requests.post(f"{run_stack.actions}/webhook", json=call, timeout=30,
                      headers={"X-Xinghe-Action-Token": run_stack.env["XINGHE_ACTION_TOKEN"]})
    assert r.status_code == 200, r.text
    with session_scope(run_stack.db_url) as s:
        assert s.query(Ticket).filter_by(number=number).one().contact_phone == "13900001111"


def test_rasa_token_is_on_no_command_line(run_stack):
    token = run_stack.token
    cmdlines = []
    for pid in run_stack.descendants():
        try:
            cmdlines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            pass
    assert any("rasa_server" in c for c in cmdlines), cmdlines
    leaking = [c for c in cmdlines if token in c or run_stack.env["XINGHE_ACTION_TOKEN"] in c]
    assert not leaking


def test_generated_files_are_private(run_stack):
    for name in ("credentials.yml", "endpoints.yml", "xinghe.db"):
        mode = stat.S_IMODE((run_stack.var / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    written = (run_stack.var / "credentials.yml").read_text() + (run_stack.var / "endpoints.yml").read_text()
    for secret in ("WECHAT_SECRET", "WECHAT_AES_KEY", "XINGHE_ACTION_TOKEN"):
        assert run_stack.env[secret] not in written


def test_rasa_sends_no_wildcard_cors(run_stack):
    r = requests.get(f"{run_stack.rasa}/socket.io/?EIO=4&transport=polling", headers={"Origin": "http://evil.example"},
                     timeout=10)
    assert r.headers.get("Access-Control-Allow-Origin") not in ("*", "http://evil.example")
    r = requests.options(f"{run_stack.rasa}/webhooks/rest/webhook", timeout=10,
                         headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert r.headers.get("Access-Control-Allow-Origin") not in ("*", "http://evil.example")


def test_rest_cannot_pose_as_another_channel(run_stack):
    openid = "o" + new_id("wx").replace("-", "_")
    r = requests.post(f"{run_stack.rasa}/webhooks/rest/webhook", timeout=30,
                      json={"sender": openid, "message": "你好", "input_channel": "wechat"})
    assert r.status_code == 200
    assert run_stack.tracker(openid)["latest_input_channel"] == "rest"
    r = requests.post(f"{run_stack.rasa}/webhooks/rest/webhook", timeout=30, json=["not", "an", "object"])
    assert r.status_code == 400


def test_the_web_app_runs_a_current_aiohttp(run_stack):
    """The public-facing app (desk, web chat, editor) is not on Rasa's aiohttp 3.9.5 (README, Security)."""
    server = requests.get(f"{run_stack.desk}/desk/login", timeout=30).headers.get("Server", "")
    match = re.search(r"aiohttp/(\d+)\.(\d+)\.(\d+)", server)
    assert match, server
    assert tuple(int(x) for x in match.groups()) >= (3, 14, 5), server
