"""Start the real stack for end-to-end tests: action server and Rasa server (REST, socket.io,
WeChat, HTTP API) on free loopback ports, with a throwaway knowledge store."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: Signs web chat session ids for the stack's Rasa (the project's web chat channel) and this process's relay.
WEBCHAT_KEY = "test-webchat-key-0123456789abcdef0123"


def webchat_session_id() -> str:
    """A session id the stack's web chat channel accepts, as the relay issues them to browsers."""
    from bot.channels import webchat_ids

    return webchat_ids.issue(WEBCHAT_KEY.encode("utf-8"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    workdir: Path
    db_url: str
    token: str
    rasa_port: int
    actions_port: int
    env: Dict[str, str]
    procs: List[subprocess.Popen] = field(default_factory=list)
    wechat: Dict[str, str] = field(default_factory=dict)
    events: Dict[str, object] = field(default_factory=dict)  # the event pipeline (tests/conftest.py)

    @property
    def rasa(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def say(self, sender: str, text: str, timeout: float = 30) -> List[dict]:
        r = requests.post(f"{self.rasa}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=timeout)
        r.raise_for_status()
        return r.json()

    def text(self, sender: str, message: str) -> str:
        return "\n".join(m.get("text", "") for m in self.say(sender, message))

    def parse(self, text: str) -> dict:
        r = requests.post(f"{self.rasa}/model/parse", params={"token": self.token}, json={"text": text}, timeout=30)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


def start_stack(model: str, workdir: Path, wechat_api_base: Optional[str] = None, extra_env: Optional[Dict[str, str]] = None,
                tracker_store: Optional[Dict[str, object]] = None,
                event_broker: Optional[Dict[str, object]] = None) -> Stack:
    """``tracker_store`` and ``event_broker`` are those endpoints.yml sections (default: Rasa's in-memory
    store, no broker)."""
    from bot.db import session_scope
    from bot.kb import loader

    workdir.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{workdir / 'xinghe.db'}"
    with session_scope(db_url) as session:
        loader.publish(session, loader.read_dir(ROOT / "knowledge"), author="test")
    rasa_port, actions_port = free_port(), free_port()
    token = "test-token-0123456789"  # also the JWT secret the desk signs with (HS256)
    wechat = {"token": "wechat-test-token", "appid": "wx0123456789abcdef", "secret": "test-secret",
              "aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
              "api_base": wechat_api_base or "http://127.0.0.1:9", "reply_timeout": 4.0}
    endpoints: Dict[str, object] = {"action_endpoint": {"url": f"http://127.0.0.1:{actions_port}/webhook"}}
    if tracker_store:
        endpoints["tracker_store"] = tracker_store
    if event_broker:
        endpoints["event_broker"] = event_broker
    (workdir / "endpoints.yml").write_text(yaml.safe_dump(endpoints), encoding="utf-8")
    (workdir / "credentials.yml").write_text(yaml.safe_dump(
        {"rest": None,
         # the production web chat channel (server-issued session ids, agents' names on their messages)
         "bot.channels.webchat.WebChatInput": {"user_message_evt": "user_uttered", "bot_message_evt": "bot_uttered",
                                               "session_persistence": True},
         # plaintext mode: with an aes_key the channel refuses plaintext calls (tests/security checks that)
         "bot.channels.wechat.WeChatInput": {k: v for k, v in wechat.items() if k != "aes_key"}}),
        encoding="utf-8")
    os.environ["XINGHE_WEBCHAT_KEY"] = WEBCHAT_KEY  # the relays the tests start in this process
    env = dict(os.environ, KNOWLEDGE_DB_URL=db_url, RASA_TELEMETRY_ENABLED="false", PYTHONPATH=str(ROOT),
               XINGHE_VAR_DIR=str(workdir), XINGHE_WEBCHAT_KEY=WEBCHAT_KEY, XINGHE_SPOOL_NAME=f"rasa-{rasa_port}",
               **(extra_env or {}))
    stack = Stack(workdir, db_url, token, rasa_port, actions_port, env, wechat=wechat)
    log_a = open(workdir / "actions.log", "w")
    log_r = open(workdir / "rasa.log", "w")
    stack.procs.append(subprocess.Popen([str(BIN / "rasa"), "run", "actions", "--actions", "actions", "--port",
                                         str(actions_port)], cwd=ROOT, env=env, stdout=log_a, stderr=subprocess.STDOUT))
    # Rasa as `make run` starts it: the message gate in front of NLU (refusals, satisfaction answers); the
    # message rate limits are lifted (the suite sends faster than a person types, all from 127.0.0.1).
    rasa_env = dict(env, RASA_TOKEN=token, XINGHE_LIMIT_MESSAGE_SENDER="100000/60", XINGHE_LIMIT_MESSAGE_IP="100000/60")
    stack.procs.append(subprocess.Popen([sys.executable, "-m", "bot.services.rasa_server", "--model", model,
                                         "--port", str(rasa_port), "--credentials", str(workdir / "credentials.yml"),
                                         "--endpoints", str(workdir / "endpoints.yml")],
                                        cwd=ROOT, env=rasa_env, stdout=log_r, stderr=subprocess.STDOUT))
    deadline = time.time() + 240
    while time.time() < deadline:
        if any(p.poll() is not None for p in stack.procs):
            stack.stop()
            raise RuntimeError("a server exited:\n" + (workdir / "rasa.log").read_text()[-3000:]
                               + (workdir / "actions.log").read_text()[-3000:])
        try:
            ok = requests.get(f"{stack.rasa}/status", params={"token": token}, timeout=2).ok and \
                requests.get(f"http://127.0.0.1:{actions_port}/health", timeout=2).ok
            if ok:
                return stack
        except requests.RequestException:
            pass
        time.sleep(1)
    stack.stop()
    raise RuntimeError("the stack did not start within 240 s:\n" + (workdir / "rasa.log").read_text()[-3000:])
