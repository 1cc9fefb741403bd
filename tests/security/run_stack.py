"""Start and stop the stack exactly as `make run` does (scripts/run.sh), on free loopback ports with a
throwaway var directory and database: used by tests/security and bench/fuzz.py."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import requests

from tests.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx0123456789abcdef"


@dataclass
class RunStack:
    """What a test needs to know about the running `make run` stack."""
    var: Path
    db_url: str
    env: Dict[str, str]
    rasa_port: int
    actions_port: int
    desk_port: int
    proc: subprocess.Popen
    log: Path
    stub: Optional[subprocess.Popen] = None

    @property
    def rasa(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def actions(self) -> str:
        return f"http://127.0.0.1:{self.actions_port}"

    @property
    def desk(self) -> str:
        return f"http://127.0.0.1:{self.desk_port}"

    @property
    def token(self) -> str:
        return self.env["RASA_TOKEN"]

    def rest(self, sender: str, text: str, timeout: float = 30) -> List[dict]:
        r = requests.post(f"{self.rasa}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                          timeout=timeout)
        r.raise_for_status()
        return r.json()

    def tracker(self, sender: str) -> dict:
        r = requests.get(f"{self.rasa}/conversations/{sender}/tracker", params={"token": self.token}, timeout=30)
        r.raise_for_status()
        return r.json()

    def descendants(self) -> List[int]:
        """Process ids of everything run.sh started, however deep (supervisord gives each service a process
        group of its own, so the tree is walked by parent id)."""
        parents = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    stat = (d / "stat").read_text()
                    parents[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    pass
        out, frontier = [], [self.proc.pid]
        while frontier:
            pid = frontier.pop()
            out.append(pid)
            frontier += [child for child, parent in parents.items() if parent == pid]
        return out


def start(var: Path, extra_env: Optional[Dict[str, str]] = None, timeout: float = 420) -> RunStack:
    """scripts/run.sh with WeChat in 安全模式 (and the WeChat API stub), waiting until it says it is up."""
    stub_port = free_port()
    stub = subprocess.Popen([sys.executable, str(ROOT / "tests" / "wechat_stub.py"), "--port", str(stub_port),
                             "--appid", APPID, "--secret", "test-secret"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rasa_port, actions_port, desk_port = free_port(), free_port(), free_port()
    env = dict(os.environ)
    for key in ("RASA_HOST", "ACTIONS_HOST", "DESK_HOST", "XINGHE_RASA_CORS", "XINGHE_REST_PUBLIC"):
        env.pop(key, None)  # the defaults are what is tested
    env.update(
        XINGHE_VAR_DIR=str(var), KNOWLEDGE_DB_URL=f"sqlite:///{var / 'xinghe.db'}",
        RASA_PORT=str(rasa_port), ACTIONS_PORT=str(actions_port), DESK_PORT=str(desk_port),
        RASA_TOKEN=secrets.token_urlsafe(24), DESK_INSECURE_COOKIES="1", DESK_SECRET_KEY=secrets.token_urlsafe(32),
        WECHAT_TOKEN="wechat-sec-token", WECHAT_APPID=APPID, WECHAT_SECRET="test-secret", WECHAT_AES_KEY=AES_KEY,
        WECHAT_API_BASE=f"http://127.0.0.1:{stub_port}", XINGHE_ACTION_TOKEN=secrets.token_urlsafe(24),
        XINGHE_RATELIMIT_PREFIX=f"xinghe:test-rl:{uuid.uuid4().hex[:8]}",  # counters of this run only
        **(extra_env or {}),
    )
    log = var / "run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    stack = RunStack(var, env["KNOWLEDGE_DB_URL"], env, rasa_port, actions_port, desk_port, proc, log, stub)
    deadline = time.time() + timeout
    try:
        while "==> 星河客服 is up" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("make run did not come up:\n" + log.read_text(errors="replace")[-4000:])
            time.sleep(1)
        requests.get(f"{stack.desk}/desk/login", timeout=30).raise_for_status()
    except BaseException:
        stop(stack)
        raise
    return stack


def stop(stack: RunStack) -> None:
    """What Ctrl-C does; killed if it does not end within 30 s."""
    try:
        os.killpg(stack.proc.pid, signal.SIGINT)
        stack.proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(stack.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if stack.stub is not None:
        stack.stub.terminate()
        stack.stub.wait(10)
