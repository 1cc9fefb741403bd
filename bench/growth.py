#!/usr/bin/env python
"""Per-message latency as a conversation grows, and for a patron with a long history, per tracker store.

    .venv/bin/python bench/growth.py                              # every store: redis, sql (PostgreSQL), memory
    .venv/bin/python bench/growth.py --stores redis --samples 5   # one store, quicker
    .venv/bin/python bench/growth.py --url http://127.0.0.1:5005 --token "$RASA_TOKEN" --stores redis
                                                                  # a running server (e.g. `make run`)

For each store it starts the real stack (tests.stack.start_stack: action server + Rasa server with that
tracker store, newest models/xinghe-*.tar.gz), then, one message at a time (messages cycling through
停车怎么收费 / 谢谢 / IMAX周六多少钱 / 那周二呢 / 有母婴室吗):

  * positions 1-10: per sample a fresh patron sends 10 messages; p50/p95 per position;
  * positions 100, 300, 1000: per sample a patron whose current session already holds P-1 messages
    (seeded in one ``PUT /conversations/{id}/tracker/events`` from a recorded real conversation, recent
    timestamps) sends ``--window`` messages (positions P .. P+window-1);
  * history: per sample ``--history-per-sample`` patrons with ``--history-events`` events of earlier
    sessions (days old, so the session has expired) send their first message; p50/p95 of that reply;
  * a position's p50/p95 count only the message sent at position 5 (有母婴室吗: positions 100, 300 and
    1000 send it, and so does the history patron), so like is compared with like; the other messages of
    the window are in the JSON (``other_messages``);
  * the messages of one sample are interleaved (fresh message k, then message k of each seeded patron),
    so that on a shared machine every position sees the same load;
  * sizes per patron: Redis ``MEMORY USAGE`` of the patron's keys, PostgreSQL bytes of the patron's rows.

With the bounded store (``redis``) the archiver runs every 5 s instead of 30 s, and each seeded patron is
measured once the archiver has moved their seeded history out (see ``settle``).

Every server it starts is stopped at the end; its Redis keys (own key prefix) and rows are deleted.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ROOT, finish, fmt_ms, loadavg, percentile, require_loopback, run_guarded, setup_env, wait_for_model,
)

CYCLE = ["停车怎么收费", "谢谢", "IMAX周六多少钱", "那周二呢", "有母婴室吗"]
SAME = CYCLE[4]   # position 5's message; positions 100, 300, 1000 (all ≡ 5 mod 5) and history replies send it too
POSITIONS = (100, 300, 1000)
BENCH_PREFIX = "xinghegrowth"          # Redis key prefix of the bench (alphanumeric, Rasa's rule)
PG_DB = "xinghe_growth_bench"          # PostgreSQL database of the bench's tracker store
ARCHIVE_INTERVAL = 5.0                 # s; the default is 30 — shorter so seeded patrons settle quickly
PG_ADMIN_URL = os.environ.get("GROWTH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


# -- tracker store configurations ---------------------------------------------------------------------

def store_config(kind: str) -> Optional[Dict[str, Any]]:
    """The endpoints.yml ``tracker_store`` section `make run` would write for TRACKER_STORE=kind, with the
    bench's own Redis key prefix / PostgreSQL database so no real conversation is touched."""
    from bot import runtime_config

    if kind == "memory":
        return None
    env = {"TRACKER_STORE": kind, "TRACKER_DB_URL": f"postgresql://postgres@127.0.0.1:5432/{PG_DB}",
           "TRACKER_KEY_PREFIX": BENCH_PREFIX}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        cfg = runtime_config.endpoints().get("tracker_store")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if not cfg:
        raise SystemExit(f"runtime_config gives no tracker store for {kind!r}")
    cfg = dict(cfg)
    if str(cfg.get("type", "")).lower() == "redis" or str(cfg.get("type", "")).endswith("RedisTrackerStore"):
        cfg["key_prefix"] = BENCH_PREFIX
    if str(cfg.get("type", "")).endswith("CompactRedisTrackerStore"):
        cfg["archive_url"] = pg_url()      # finished sessions go to the bench's PostgreSQL database
        cfg["archive_interval"] = ARCHIVE_INTERVAL
    if cfg.get("dialect") and cfg.get("dialect") != "postgresql":
        raise SystemExit(f"the SQL tracker store is not on PostgreSQL: {cfg}")
    return cfg


def ensure_pg_database() -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    with engine.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": PG_DB}).first():
            conn.execute(text(f'CREATE DATABASE "{PG_DB}"'))
    engine.dispose()


def pg_url() -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_DB


# -- talking to Rasa ----------------------------------------------------------------------------------

class Client:
    def __init__(self, url: str, token: Optional[str]) -> None:
        import requests

        self.url, self.token = url.rstrip("/"), token
        self.http = requests.Session()

    def _params(self, **extra: str) -> Dict[str, str]:
        return dict(extra, **({"token": self.token} if self.token else {}))

    def say(self, sender: str, text: str) -> Tuple[float, List[dict]]:
        t0 = time.perf_counter()
        r = self.http.post(f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=120)
        elapsed = time.perf_counter() - t0
        r.raise_for_status()
        return elapsed, r.json()

    def events(self, sender: str) -> List[dict]:
        r = self.http.get(f"{self.url}/conversations/{sender}/tracker", params=self._params(include_events="ALL"),
                          timeout=120)
        r.raise_for_status()
        return r.json().get("events") or []

    def replace(self, sender: str, events: List[dict]) -> None:
        r = self.http.put(f"{self.url}/conversations/{sender}/tracker/events", params=self._params(include_events="NONE"),
                          data=json.dumps(events), headers={"Content-Type": "application/json"}, timeout=300)
        r.raise_for_status()


# -- seeded histories ---------------------------------------------------------------------------------

class Template:
    """A recorded real conversation (one fresh patron, the message cycle twice), cut into user turns."""

    def __init__(self, events: List[dict]) -> None:
        first_user = next(i for i, e in enumerate(events) if e.get("event") == "user")
        self.header = [e for e in events[:first_user] if e.get("event") != "slot" or
                       e.get("name") != "session_started_metadata"]
        self.turns: List[List[dict]] = []
        for e in events[first_user:]:
            if e.get("event") == "user":
                self.turns.append([])
            self.turns[-1].append(e)
        self.events_per_message = sum(len(t) for t in self.turns) / len(self.turns)

    def session(self, messages: int) -> List[dict]:
        out = [dict(e) for e in self.header]
        for i in range(messages):
            out.extend(dict(e) for e in self.turns[i % len(self.turns)])
        return out


def stamp(events: List[dict], start: float, end: float) -> List[dict]:
    step = (end - start) / max(len(events), 1)
    for i, e in enumerate(events):
        e["timestamp"] = start + i * step
    return events


def current_session(template: Template, messages: int) -> List[dict]:
    """``messages`` earlier messages of the current session, ending a few seconds ago."""
    now = time.time()
    return stamp(template.session(messages), now - 30 - messages * 0.5, now - 5)


def old_sessions(template: Template, total_events: int, per_session: int = 50) -> List[dict]:
    """Earlier sessions (one a day, the last ended two days ago) with about ``total_events`` events."""
    sessions: List[List[dict]] = []
    while sum(len(s) for s in sessions) < total_events:
        sessions.append(template.session(per_session))
    out: List[dict] = []
    day = 86400.0
    for k, s in enumerate(sessions):
        start = time.time() - (len(sessions) - k + 1) * day
        out.extend(stamp(s, start, start + 1800))
    return out


# -- sizes --------------------------------------------------------------------------------------------

def redis_bytes(sender: str) -> Optional[int]:
    try:
        from bot import redis_conn

        r = redis_conn.client()
        total = 0
        for key in r.scan_iter(match=f"{BENCH_PREFIX}*", count=1000):
            if sender.encode() in key:
                total += r.memory_usage(key, samples=0) or 0
        return total
    except Exception:  # noqa: BLE001 - a size is optional information
        return None


def pg_bytes(sender: str) -> Optional[int]:
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(pg_url(), future=True)
        total = 0
        with engine.connect() as conn:
            tables = [r[0] for r in conn.execute(text(
                "SELECT table_name FROM information_schema.columns WHERE column_name = 'sender_id' "
                "AND table_schema = 'public'"))]
            for t in tables:
                total += conn.execute(text(f'SELECT coalesce(sum(pg_column_size(x.*)), 0) FROM "{t}" x '
                                           "WHERE sender_id = :s"), {"s": sender}).scalar() or 0
        engine.dispose()
        return int(total)
    except Exception:  # noqa: BLE001
        return None


def settle(kind: str, sender: str, limit: float = 90) -> None:
    """Waits until the archiver has moved what lies before the patron's working view (the bounded store
    only): a seeded history arrives at once, a real one a turn at a time, and the measurement should see
    the steady state, not the one-off move of thousands of events on the same CPU."""
    if kind != "redis":
        return
    from bot import redis_conn

    r = redis_conn.client()
    key = f"{BENCH_PREFIX}:conv:{sender}:meta"
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        archived, offset = r.hmget(key, "archived", "offset")
        if offset is not None and int(archived or 0) >= int(offset):
            return
        time.sleep(0.5)
    print(f"  {kind}: {sender} not archived after {limit:.0f} s", flush=True)


def sizes(kind: str, sender: str) -> Dict[str, Optional[int]]:
    return {"redis": redis_bytes(sender) if "redis" in kind else None,
            "postgresql": pg_bytes(sender) if kind != "memory" else None}


def cleanup(kind: str) -> None:
    if kind in ("redis", "rasa-redis"):
        try:
            from bot import redis_conn

            r = redis_conn.client()
            keys = list(r.scan_iter(match=f"{BENCH_PREFIX}*", count=1000))
            for i in range(0, len(keys), 500):
                r.delete(*keys[i:i + 500])
        except Exception:  # noqa: BLE001
            pass
    # PostgreSQL: the bench database is dropped (it holds nothing else).
    if kind != "memory":
        try:
            from sqlalchemy import create_engine, text

            engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)'))
            engine.dispose()
        except Exception:  # noqa: BLE001
            pass


# -- the measurement ----------------------------------------------------------------------------------

def stats(values: List[float]) -> Dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 50) * 1000, "p95": percentile(values, 95) * 1000}


def measure(client: Client, kind: str, args) -> Dict[str, Any]:
    """Interleaved, so that every position sees the same machine: per sample, a fresh patron's message k,
    then message k of each seeded patron (positions P+k), and now and then a history patron's first reply."""
    run = uuid.uuid4().hex[:6]
    res: Dict[str, Any] = {"positions": {}, "sizes": {}}
    # Warm-up and the template: a real conversation of 10 messages.
    tmpl_sender = f"growth-{run}-template"
    for text in CYCLE * 2:
        client.say(tmpl_sender, text)
    template = Template(client.events(tmpl_sender))
    res["events_per_message"] = template.events_per_message

    by_pos: Dict[int, List[float]] = {p: [] for p in list(range(1, 11)) + list(args.positions)}
    mixed: Dict[int, List[float]] = {p: [] for p in args.positions}
    hist: List[float] = []
    empty = 0
    steps = max(10, args.window)
    hist_at = set(range(0, steps, max(1, steps // args.history_per_sample)))
    for s in range(args.samples):
        seeded = {}
        for pos in args.positions:
            sender = f"growth-{run}-p{pos}-{s}"
            client.replace(sender, current_session(template, pos - 1))
            seeded[pos] = sender
        histories = []
        for h in range(len(hist_at)):
            sender = f"growth-{run}-hist{s}-{h}"
            client.replace(sender, old_sessions(template, args.history_events))
            histories.append(sender)
        for sender in list(seeded.values()) + histories:
            settle(kind, sender)
        fresh = f"growth-{run}-fresh{s}"
        for k in range(steps):
            if k < 10:
                elapsed, body = client.say(fresh, CYCLE[k % len(CYCLE)])
                by_pos[k + 1].append(elapsed)
                empty += not body
            if k < args.window:
                for pos, sender in seeded.items():
                    text = CYCLE[(pos - 1 + k) % len(CYCLE)]
                    elapsed, body = client.say(sender, text)
                    # compared like with like: only the same message as at position 5
                    (by_pos[pos] if text == SAME else mixed[pos]).append(elapsed)
                    empty += not body
            if k in hist_at:
                elapsed, body = client.say(histories[sorted(hist_at).index(k)], SAME)
                hist.append(elapsed)
                empty += not body
        if s == 0:
            for pos, sender in seeded.items():
                settle(kind, sender)
                res["sizes"][f"position {pos + args.window - 1}"] = sizes(kind, sender)
            settle(kind, histories[0])
            res["sizes"][f"history {args.history_events}"] = sizes(kind, histories[0])
        print(f"  {kind}: sample {s + 1}/{args.samples}: p50 so far: pos 5 {fmt_ms(percentile(by_pos[5], 50) * 1000)}, "
              + ", ".join(f"pos {p} {fmt_ms(percentile(by_pos[p], 50) * 1000)}" for p in args.positions)
              + f", hist {fmt_ms(percentile(hist, 50) * 1000)}", flush=True)
    for p, values in by_pos.items():
        res["positions"][str(p)] = stats(values)
    res["other_messages"] = {str(p): stats(v) for p, v in mixed.items()}
    res["history"] = stats(hist)
    res["empty"] = empty
    return res


def report(results: Dict[str, Dict[str, Any]], args) -> None:
    cols = [str(p) for p in range(1, 11)] + [str(p) for p in args.positions]
    print()
    print("per-message latency p50 / p95 (ms) by position in the conversation; "
          f"'hist' = first reply with {args.history_events} events of earlier sessions")
    print(f"{'store':8} {'pos':>6} " + " ".join(f"{c:>11}" for c in cols + ["hist"]))
    for kind, res in results.items():
        cells = []
        for c in cols:
            s = res["positions"].get(c)
            cells.append(f"{s['p50']:.0f}/{s['p95']:.0f}" if s else "-")
        h = res.get("history")
        cells.append(f"{h['p50']:.0f}/{h['p95']:.0f}" if h else "-")
        print(f"{kind:8} {'':>6} " + " ".join(f"{c:>11}" for c in cells))
    print()
    for kind, res in results.items():
        p5 = res["positions"]["5"]["p50"]
        ratios = [f"pos {p}: {res['positions'][str(p)]['p50'] / p5:.2f}x" for p in args.positions]
        ratios.append(f"hist: {res['history']['p50'] / p5:.2f}x")
        print(f"{kind:8} p50 relative to position 5: " + ", ".join(ratios)
              + f"  ({res['events_per_message']:.1f} events per message, {res['empty']} empty replies)")
    print()
    for kind, res in results.items():
        for what, size in res["sizes"].items():
            parts = [f"{k} {v / 1024:.0f} kB" for k, v in size.items() if v is not None]
            if parts:
                print(f"{kind:8} size per patron at {what}: " + ", ".join(parts))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", default="redis,sql,memory",
                        help="comma-separated: redis (the store `make run` configures), rasa-redis (Rasa's own "
                             "Redis store, as before issue 14), sql (the bounded SQL store on PostgreSQL), "
                             "rasa-sql (Rasa's own SQL store on PostgreSQL), memory")
    parser.add_argument("--url", help="measure a running Rasa server (127.0.0.1 only); --stores names its store")
    parser.add_argument("--token", help="auth token of the server at --url")
    parser.add_argument("--model", help="model to serve (default: the newest models/xinghe-*.tar.gz)")
    parser.add_argument("--samples", type=int, default=5, help="patrons per position (default 5)")
    parser.add_argument("--window", type=int, default=3, help="messages per seeded patron (default 3)")
    parser.add_argument("--positions", default=",".join(map(str, POSITIONS)),
                        help="seeded positions (default 100,300,1000)")
    parser.add_argument("--history-events", type=int, default=5000, help="events of earlier sessions (5000)")
    parser.add_argument("--history-per-sample", type=int, default=2,
                        help="patrons with a history whose first reply is timed, per sample (default 2)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    args.positions = [int(p) for p in args.positions.split(",") if p]
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if any(s not in ("redis", "rasa-redis", "sql", "rasa-sql", "memory") for s in stores):
        parser.error("--stores: redis, rasa-redis, sql, rasa-sql, memory")
    if args.url and len(stores) != 1:
        parser.error("--url measures one server: name its store with --stores")

    setup_env()
    workdir = Path(tempfile.mkdtemp(prefix="xinghe-growth-"))
    procs: List[subprocess.Popen] = []
    results: Dict[str, Dict[str, Any]] = {}
    print(f"bench/growth.py: stores {', '.join(stores)}; {args.samples} patrons per position, window {args.window}; "
          f"load average {loadavg()} on {os.cpu_count()} CPUs", flush=True)
    def body() -> None:
        for kind in stores:
            if args.url:
                require_loopback(args.url)
                results[kind] = measure(Client(args.url, args.token), kind, args)
                continue
            from tests.stack import start_stack

            if kind != "memory":
                ensure_pg_database()
            cfg = store_config(kind)
            model = args.model or wait_for_model()
            print(f"{kind}: starting the stack ({cfg or 'in-memory'}) ...", flush=True)
            stack = start_stack(model, workdir / kind, tracker_store=cfg)
            procs.extend(stack.procs)
            try:
                results[kind] = measure(Client(stack.rasa, stack.token), kind, args)
            finally:
                stack.stop()
                cleanup(kind)

    status = run_guarded(body, procs)
    if results:
        report(results, args)
        print(f"load average at the end: {loadavg()}")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return finish(workdir, status, False)

if __name__ == "__main__":
    sys.exit(main())
