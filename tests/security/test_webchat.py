"""Web chat conversations belong to the browser that holds them (socket.io through the app's relay)."""
from __future__ import annotations

import threading
import time
from typing import List, Optional

import pytest
import requests
import socketio

from tests.security.conftest import new_id

pytestmark = pytest.mark.e2e


class Browser:
    """A browser's socket.io client: its own cookie jar, talking to the app's relay like the widget does."""

    def __init__(self, stack, transport: str = "polling", direct: bool = False,
                 http: Optional[requests.Session] = None) -> None:
        self.stack = stack
        self.http = http or requests.Session()
        self.sio = socketio.Client(reconnection=False, http_session=self.http)
        self.session_id: Optional[str] = None
        self.texts: List[str] = []
        self._confirmed = threading.Event()
        self.transport = transport
        self.direct = direct
        self.sio.on("session_confirm", self._on_confirm)
        self.sio.on("bot_uttered", lambda data: self.texts.append((data or {}).get("text") or ""))

    def _on_confirm(self, session_id) -> None:
        self.session_id = session_id
        self._confirmed.set()

    def start(self, session_id: Optional[str] = None) -> Optional[str]:
        if self.sio.connected:
            pass
        elif self.direct:
            self.sio.connect(self.stack.rasa, transports=[self.transport], socketio_path="socket.io", wait_timeout=20)
        else:
            self.sio.connect(self.stack.desk, transports=[self.transport], socketio_path="webchat/socket.io",
                             wait_timeout=20)
        self._confirmed.clear()
        self.sio.emit("session_request", {"session_id": session_id})
        self._confirmed.wait(15)
        return self.session_id

    def say(self, text: str, session_id: Optional[str] = None) -> None:
        self.sio.emit("user_uttered", {"message": text, "session_id": session_id or self.session_id})

    def wait_for_text(self, fragment: str, timeout: float = 30) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(fragment in t for t in self.texts):
                return True
            time.sleep(0.2)
        return False

    def close(self) -> None:
        try:
            self.sio.disconnect()
        except Exception:
            pass


@pytest.fixture()
def browsers(run_stack):
    made: List[Browser] = []

    def make(**kwargs) -> Browser:
        made.append(Browser(run_stack, **kwargs))
        return made[-1]
    yield make
    for b in made:
        b.close()


def test_session_ids_come_from_the_server_and_follow_the_browser(browsers):
    patron = browsers()
    sid = patron.start(session_id="my-own-choice")
    assert sid and sid.startswith("web-") and sid != "my-own-choice"
    patron.close()
    again = browsers(http=patron.http)  # the same browser (cookie jar) after a reload
    assert again.start(session_id=sid) == sid
    assert again.start(session_id=None) == sid


def test_another_browser_cannot_join_a_patrons_conversation(run_stack, browsers):
    patron = browsers()
    sid = patron.start()
    patron.say("停车怎么收费")
    assert patron.wait_for_text("停车")

    attacker = browsers()
    assert attacker.start(session_id=sid) != sid
    attacker.say("我要投诉", session_id=sid)       # a message naming the patron's session is dropped
    patron.say("IMAX周六多少钱")
    assert patron.wait_for_text("元")
    time.sleep(2)
    assert not any("停车" in t or "元" in t for t in attacker.texts), attacker.texts
    users = [e["text"] for e in run_stack.tracker(sid)["events"] if e["event"] == "user"]
    assert users == ["停车怎么收费", "IMAX周六多少钱"]


def test_a_wechat_openid_cannot_be_claimed_from_the_web(run_stack, browsers):
    from tests.security import wechat_client

    openid = "o" + new_id("wx").replace("-", "_")
    status, _ = wechat_client.post(run_stack, openid, "你好")
    assert status == 200
    attacker = browsers()
    attacker.start(session_id=openid)
    attacker.say("人工客服", session_id=openid)
    time.sleep(3)
    tracker = run_stack.tracker(openid)
    assert tracker["latest_input_channel"] == "wechat"
    assert [e["text"] for e in tracker["events"] if e["event"] == "user"] == ["你好"]


def test_rasa_socketio_refuses_ids_it_did_not_issue(run_stack, browsers):
    direct = browsers(direct=True)
    assert direct.start(session_id="o" + new_id("wx").replace("-", "_")) is None
