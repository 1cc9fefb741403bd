"""Shared fixtures: a SQLite knowledge store imported from knowledge/, trackers, rendered replies."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def kb_url(tmp_path, monkeypatch) -> str:
    """A fresh store with the shipped knowledge, used by the actions through KNOWLEDGE_DB_URL."""
    from bot.db import session_scope
    from bot.kb import loader, store
    import actions.tickets as action_tickets

    url = f"sqlite:///{tmp_path / 'kb.db'}"
    monkeypatch.setenv("KNOWLEDGE_DB_URL", url)
    with session_scope(url) as session:
        loader.publish(session, loader.read_dir(ROOT / "knowledge"), author="test")
    monkeypatch.setattr(store, "_default", None)
    monkeypatch.setattr(action_tickets, "_writer", None)
    monkeypatch.setenv("XINGHE_VAR_DIR", str(tmp_path))
    yield url
    if action_tickets._writer is not None:
        action_tickets._writer.stop_background_flusher()


@pytest.fixture(scope="session")
def domain() -> Dict[str, Any]:
    return yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))


def make_tracker(text: str, intent: str, entities: Optional[List[Dict[str, Any]]] = None,
                 slots: Optional[Dict[str, Any]] = None, sender: str = "patron-1", confidence: float = 0.99,
                 active_loop: Optional[str] = None, events: Optional[List[Dict[str, Any]]] = None,
                 filled: Optional[List[str]] = None):
    from rasa_sdk import Tracker

    ents = []
    for e in entities or []:
        start = text.find(e["value"])
        ents.append({"entity": e["entity"], "value": e["value"], "start": start, "end": start + len(e["value"])})
    latest = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": ents,
              "intent_ranking": [{"name": intent, "confidence": confidence}]}
    evs = list(events or []) + [{"event": "user", "text": text, "parse_data": latest, "timestamp": 0,
                                 "input_channel": "rest"}]
    # slots filled from this message by Rasa's slot mappings (what form validation looks at)
    evs += [{"event": "slot", "name": name, "value": (slots or {}).get(name)} for name in filled or []]
    return Tracker(sender, dict(slots or {}), latest, evs, False, None,
                   {"name": active_loop} if active_loop else {}, "action_listen")


def render(domain: Dict[str, Any], message: Dict[str, Any]) -> str:
    """The text a patron sees for a dispatched message (template filled like Rasa does)."""
    from bot.answers.replies import render as fill

    return fill(message)


@pytest.fixture()
def tracker_factory():
    return make_tracker


@pytest.fixture()
def run_action(domain):
    """Run an action and return (rendered texts, events)."""
    import asyncio

    from rasa_sdk.executor import CollectingDispatcher

    def run(action, tracker):
        dispatcher = CollectingDispatcher()
        events = asyncio.run(action.run(dispatcher, tracker, domain))
        return [render(domain, m) for m in dispatcher.messages], events, dispatcher.messages
    return run


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The real servers, started once per test session with the model `make test` trained."""
    import subprocess
    import sys

    from tests.stack import free_port, start_stack

    model = os.environ.get("XINGHE_MODEL")
    if not model:
        pytest.fail("XINGHE_MODEL is not set: run the suite through `make test`")
    workdir = tmp_path_factory.mktemp("stack")
    stub_port = free_port()
    stub_log = open(workdir / "wechat_stub.jsonl", "w")
    stub = subprocess.Popen([sys.executable, str(ROOT / "tests" / "wechat_stub.py"), "--port", str(stub_port),
                             "--appid", "wx0123456789abcdef", "--secret", "test-secret"],
                            stdout=stub_log, stderr=subprocess.DEVNULL)
    events = event_pipeline(workdir)
    s = start_stack(model, workdir, wechat_api_base=f"http://127.0.0.1:{stub_port}",
                    extra_env={"RABBITMQ_PASSWORD": "guest"}, event_broker=events["endpoint"])
    s.procs.append(stub)
    s.wechat["stub_log"] = str(workdir / "wechat_stub.jsonl")
    s.events = events
    s.procs.append(events["start_consumer"](s.env))
    yield s
    s.stop()
    events["cleanup"]()


def event_pipeline(workdir: Path) -> Dict[str, Any]:
    """Rasa's event broker (bot.analytics.broker) through a TCP proxy to the real RabbitMQ, which a test can
    take down, on an exchange and queue of this session's own; the consumer writes the stack's database."""
    import asyncio
    import subprocess
    import sys
    import uuid

    from tests.tcp_proxy import TcpProxy

    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"xinghe-test-{tag}", f"xinghe_test_{tag}"
    proxy = TcpProxy("127.0.0.1", 5672)
    endpoint = {"type": "bot.analytics.broker.SpoolingPikaEventBroker", "url": "127.0.0.1", "port": proxy.port,
                "username": "guest", "password": "${RABBITMQ_PASSWORD}", "exchange_name": exchange,
                "queues": [queue]}

    def start_consumer(env: Dict[str, str]):
        log = open(workdir / "consumer.log", "w")
        return subprocess.Popen([sys.executable, "-m", "bot.analytics.consumer"], cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT,
                                env=dict(env, EVENT_QUEUE=queue, EVENT_EXCHANGE=exchange, RABBITMQ_PORT="5672"))

    def cleanup() -> None:
        import aio_pika

        proxy.close()

        async def drop():
            conn = await aio_pika.connect(host="127.0.0.1", port=5672, login="guest", password="guest")
            ch = await conn.channel()
            await ch.queue_delete(queue)
            await ch.exchange_delete(exchange)
            await conn.close()
        try:
            asyncio.run(drop())
        except Exception:  # noqa: BLE001 - RabbitMQ gone at the end of the session: nothing to drop
            pass
    return {"endpoint": endpoint, "proxy": proxy, "queue": queue, "exchange": exchange,
            "start_consumer": start_consumer, "cleanup": cleanup}


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium for the browser tests; fail (not skip) at once when it or Playwright is missing."""
    path = os.environ.get("XINGHE_CHROMIUM", "/usr/bin/chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("the Python package `playwright` is not installed: run scripts/setup.sh (make setup)")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"no Chromium at {path}: install Debian's package (`apt-get install -y chromium`, or run "
                    "scripts/setup.sh as root); never `playwright install`")
    return path
