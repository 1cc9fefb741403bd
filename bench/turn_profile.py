#!/usr/bin/env python
"""Where one turn's time goes as the tracker grows: tracker load, NLU, policy prediction, the action-server
call (payload, request, parsing of the answer), tracker save — at 10, 100 and 1,000 events.

    .venv/bin/python bench/turn_profile.py                       # Redis store as `make run` configures it
    .venv/bin/python bench/turn_profile.py --store memory --events 10,100,1000,5000

Loads the newest model in this process (rasa.core.agent) with the tracker store `make run` would configure
(own Redis key prefix / PostgreSQL database), starts the action server on a free loopback port, seeds
trackers of N events of the current session (a recorded real conversation repeated, recent timestamps),
then handles ``--samples`` messages per size and times each part by wrapping Rasa's own methods.
The parts are medians in ms per message; "other" is the rest of Agent.handle_message.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, free_port, percentile, setup_env, stop_all, wait_for_model  # noqa: E402
import growth  # noqa: E402

BIN = Path(sys.executable).parent
PARTS = ("load", "nlu", "policy", "action payload", "action request", "action parse", "save")


class Timer:
    def __init__(self) -> None:
        self.current: Dict[str, float] = collections.defaultdict(float)

    def wrap_async(self, owner: Any, name: str, part: str) -> None:
        original = getattr(owner, name)

        async def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return await original(*a, **kw)
            finally:
                self.current[part] += time.perf_counter() - t0
        setattr(owner, name, timed)

    def wrap_sync(self, owner: Any, name: str, part: str) -> None:
        original = getattr(owner, name)

        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                self.current[part] += time.perf_counter() - t0
        setattr(owner, name, timed)


def start_actions(workdir: Path) -> subprocess.Popen:
    import requests
    from bot.db import session_scope
    from bot.kb import loader

    db_url = f"sqlite:///{workdir / 'xinghe.db'}"
    with session_scope(db_url) as session:
        loader.publish(session, loader.read_dir(ROOT / "knowledge"), author="bench")
    os.environ["KNOWLEDGE_DB_URL"] = db_url
    os.environ["XINGHE_VAR_DIR"] = str(workdir)
    port = free_port()
    log = open(workdir / "actions.log", "w")
    p = subprocess.Popen([str(BIN / "rasa"), "run", "actions", "--actions", "actions", "--port", str(port)],
                         cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok:
                p.url = f"http://127.0.0.1:{port}/webhook"  # type: ignore[attr-defined]
                return p
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError("action server did not start")


async def profile(args, action_url: str) -> Dict[int, Dict[str, float]]:
    from rasa.core.actions.action import RemoteAction
    from rasa.core.agent import load_agent
    from rasa.core.utils import AvailableEndpoints
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    cfg = growth.store_config(args.store)
    endpoints = AvailableEndpoints(action=EndpointConfig(url=action_url),
                                   tracker_store=EndpointConfig.from_dict(cfg) if cfg else None)
    agent = await load_agent(model_path=args.model or wait_for_model(), endpoints=endpoints)
    store = agent.tracker_store
    timer = Timer()
    timer.wrap_async(store, "retrieve", "load")
    timer.wrap_async(store, "save", "save")
    proc = agent.processor
    timer.wrap_async(proc, "parse_message", "nlu")
    timer.wrap_sync(proc, "_predict_next_with_tracker", "policy")
    timer.wrap_sync(RemoteAction, "_action_call_format", "action payload")
    timer.wrap_async(EndpointConfig, "request", "action request")
    original_run = RemoteAction.run

    async def run(self, *a, **kw):
        before = timer.current["action payload"] + timer.current["action request"]
        t0 = time.perf_counter()
        try:
            return await original_run(self, *a, **kw)
        finally:
            spent = time.perf_counter() - t0
            inner = timer.current["action payload"] + timer.current["action request"] - before
            timer.current["action parse"] += spent - inner
    RemoteAction.run = run

    async def say(sender: str, text: str) -> Dict[str, float]:
        timer.current.clear()
        t0 = time.perf_counter()
        await agent.handle_text(text, sender_id=sender)
        parts = dict(timer.current)
        parts["total"] = time.perf_counter() - t0
        parts["other"] = parts["total"] - sum(parts.get(p, 0.0) for p in PARTS)
        return parts

    run_id = os.urandom(3).hex()
    tmpl = f"profile-{run_id}-template"
    for text in growth.CYCLE * 2:
        await say(tmpl, text)
    full = await store.retrieve_full_tracker(tmpl)
    template = growth.Template([e.as_dict() for e in full.events])
    results: Dict[int, Dict[str, float]] = {}
    for n in args.events:
        messages = max(1, round(n / template.events_per_message))
        rows: Dict[str, List[float]] = collections.defaultdict(list)
        for s in range(args.samples):
            sender = f"profile-{run_id}-{n}-{s}"
            events = growth.current_session(template, messages)
            await store.save(DialogueStateTracker.from_dict(sender, events, agent.domain.slots))
            parts = await say(sender, "IMAX周六多少钱")
            for k, v in parts.items():
                rows[k].append(v)
        results[n] = {k: percentile(v, 50) * 1000 for k, v in rows.items()}
        print(f"  {n} events ({messages} messages): " + ", ".join(
            f"{k} {results[n].get(k, 0):.1f}" for k in PARTS + ("other", "total")), flush=True)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="redis", choices=("redis", "rasa-redis", "sql", "rasa-sql", "memory"))
    parser.add_argument("--events", default="10,100,1000", help="tracker sizes (default 10,100,1000)")
    parser.add_argument("--samples", type=int, default=5, help="messages per size (default 5)")
    parser.add_argument("--model")
    args = parser.parse_args(argv)
    args.events = [int(x) for x in args.events.split(",") if x]
    setup_env()
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    workdir = Path(tempfile.mkdtemp(prefix="xinghe-profile-"))
    procs: List[subprocess.Popen] = []
    try:
        if args.store != "memory":
            growth.ensure_pg_database()
        actions = start_actions(workdir)
        procs.append(actions)
        results = asyncio.run(profile(args, actions.url))  # type: ignore[attr-defined]
    finally:
        stop_all(procs)
        growth.cleanup(args.store)
    print()
    print(f"median ms per message, store {args.store}:")
    print(f"{'events':>7} " + " ".join(f"{p:>14}" for p in PARTS + ("other", "total")))
    for n, r in results.items():
        print(f"{n:>7} " + " ".join(f"{r.get(p, 0):>14.1f}" for p in PARTS + ("other", "total")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
