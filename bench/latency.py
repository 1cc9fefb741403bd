#!/usr/bin/env python
"""REST latency, throughput, memory and training time of 星河客服, side by side with a stock Rasa bot.

    .venv/bin/python bench/latency.py                         # everything (ours + stock, both trained): ~15 min
    .venv/bin/python bench/latency.py --messages 60 --skip-train   # quick look
    .venv/bin/python bench/latency.py --url http://127.0.0.1:5005 --skip-stock --skip-train
    .venv/bin/python bench/latency.py --skip-train --rounds 6    # + 6 interleaved 20-sender rounds, ours vs stock

What it does:
  1. starts our stack (tests.stack.start_stack: action server + Rasa server, throwaway SQLite knowledge
     store, in-memory tracker store or --tracker-store) with the newest models/xinghe-*.tar.gz — or uses --url;
  2. sends a mix of patron messages (prices, showtimes, parking, refund rules, follow-ups, greetings)
     to POST /webhooks/rest/webhook: (a) one sender at a time, (b) --concurrency senders at once;
     (c) reads the Rasa server's VmRSS from /proc afterwards;
  3. (d) times `rasa train --force` of our project into a temporary --out dir (--skip-train skips it);
  4. (e) does the same for a stock `rasa init --no-prompt` moodbot (its training inside `rasa init`
     is timed; served with `rasa run --enable-api`) with its own English messages (--skip-stock skips it);
  5. prints a table of both and the ratios ours/stock;
  6. with --rounds N (N > 1), keeps both servers up and runs N more --concurrency phases alternating between
     them (who goes first alternates), printing each round's throughput, p95 and the CPU the servers' processes
     spent per message (Rasa, and our action server), then the median ratio and its range: single runs drift
     with the machine's load more than the bots differ.

Every loop is bounded by --messages and --time-budget; all traffic goes to 127.0.0.1; every server this
script started is stopped at the end, also on Ctrl-C. A few warm-up messages per server are not counted.
Figures depend on what else runs on the machine: the load average is printed with the results.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    OUR_CONVERSATIONS, ROOT, STOCK_CONVERSATIONS, children, finish, fmt_ms, free_port, loadavg, pid_listening_on,
    require_loopback, rss_kb, run_guarded, run_load, setup_env, stop_process, summarize, wait_for_model,
)

BIN = Path(sys.executable).parent
REQUEST_TIMEOUT = 60.0


# -- measuring one server -----------------------------------------------------------------------------

async def _measure_rest(url: str, conversations, messages: int, concurrency: int, time_budget: float,
                        tag: str, show_replies: bool = False) -> Dict[str, dict]:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=max(concurrency, 1) + 2)
    replies: Dict[str, str] = {}
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        async def send(sender: str, text: str) -> str:
            async with session.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}) as r:
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}: {(await r.text())[:120]}")
                body = await r.json()
            if show_replies and text not in replies:
                replies[text] = " / ".join(str(m.get("text", "")).replace("\n", " ")[:60] for m in body)
            return "ok" if any(m.get("text") or m.get("custom") or m.get("buttons") for m in body) else "empty"

        # Warm-up (not counted): the first predictions build TensorFlow graphs and fill caches.
        await run_load(send, conversations, 1, 6, 120, f"bench-{tag}-warmup")
        out = {}
        for label, senders in (("seq", 1), ("conc", concurrency)):
            result = await run_load(send, conversations, senders, messages, time_budget, f"bench-{tag}-{label}")
            out[label] = dict(summarize(result.latencies, result.wall), errors=len(result.errors),
                              empty=result.count("empty"), first_error=(result.errors[:1] or [""])[0])
        for text, reply in replies.items():
            print(f"  {tag} reply check: {text} -> {reply}")
        return out


def _print_phase(name: str, label: str, s: dict) -> None:
    line = (f"{name} {label}: p50 {fmt_ms(s['p50'])}  p95 {fmt_ms(s['p95'])}  p99 {fmt_ms(s['p99'])}  "
            f"{s['rate']:.1f} msg/s  ({s['n']} answered in {s['wall']:.1f} s")
    if s["empty"]:
        line += f", {s['empty']} empty"
    if s["errors"]:
        line += f", {s['errors']} failed: {s['first_error']}"
    print(line + ")", flush=True)


def _rss_line(name: str, pid: Optional[int]) -> Dict[str, int]:
    if not pid:
        print(f"{name} rasa server RSS: unknown (no process found)")
        return {}
    mem = rss_kb(pid)
    kids = sum(rss_kb(k).get("VmRSS", 0) for k in children(pid))
    extra = f" (+{kids / 1024:.0f} MB in child processes)" if kids else ""
    print(f"{name} rasa server RSS: {mem.get('VmRSS', 0) / 1024:.0f} MB, peak {mem.get('VmHWM', 0) / 1024:.0f} MB "
          f"(pid {pid}){extra}", flush=True)
    return mem


def _wait_ready(url: str, proc: Optional[subprocess.Popen], limit: float, log: Optional[Path] = None) -> float:
    import requests

    start = time.monotonic()
    while time.monotonic() - start < limit:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{tail}")
        try:
            if requests.get(f"{url}/status", timeout=2).ok:
                return time.monotonic() - start
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError(f"{url} not ready within {limit:.0f} s")


def _describe(url: str, token: Optional[str]) -> str:
    import requests

    try:
        r = requests.get(f"{url}/status", params={"token": token} if token else None, timeout=10)
    except requests.RequestException as e:
        raise RuntimeError(f"{url} does not answer: {e}")
    if r.status_code in (401, 403):
        return "/status needs --token; model unknown"
    if not r.ok:
        return f"/status answered HTTP {r.status_code}"
    return "model " + Path(str(r.json().get("model_file", "?"))).name


def _timed_run(cmd: List[str], cwd: Path, env: Dict[str, str], log: Path, limit: float,
               procs: List[subprocess.Popen]) -> Dict[str, float]:
    """Runs a command to completion (bounded by ``limit``), sampling its peak RSS; wall time in s."""
    with open(log, "w") as out:
        start = time.monotonic()
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        procs.append(p)
        peak = 0
        while p.poll() is None:
            if time.monotonic() - start > limit:
                stop_process(p)
                raise RuntimeError(f"{' '.join(cmd[:3])} took longer than {limit:.0f} s (log: {log})")
            peak = max(peak, rss_kb(p.pid).get("VmHWM", 0))
            time.sleep(1)
        wall = time.monotonic() - start
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({p.returncode}):\n" + log.read_text(errors="replace")[-2000:])
    return {"wall": wall, "peak_mb": peak / 1024}


def _prepare_db(workdir: Path) -> str:
    """A throwaway knowledge store with knowledge/ published (the pipeline's custom component reads it)."""
    from bot.db import session_scope
    from bot.kb import loader

    url = f"sqlite:///{workdir / 'train-knowledge.db'}"
    with session_scope(url) as session:
        loader.publish(session, loader.read_dir(ROOT / "knowledge"), author="bench")
    return url


# -- the three parts ----------------------------------------------------------------------------------

def bench_ours(args, workdir: Path, procs: List[subprocess.Popen]) -> dict:
    res: dict = {}
    if args.url:
        url = args.url.rstrip("/")
        require_loopback(url)
        print(f"ours: using the running server at {url} ({_describe(url, args.token)})", flush=True)
        port = urlparse(url).port or 80
        pid = None
    else:
        from tests.stack import start_stack

        model = args.model or wait_for_model()
        print(f"ours: starting the stack with {Path(model).name} (about a minute) ...", flush=True)
        t0 = time.monotonic()
        tracker_store = None
        if args.tracker_store != "memory":
            import growth

            growth.ensure_pg_database()
            tracker_store = growth.store_config(args.tracker_store)
            print(f"ours: tracker store {tracker_store['type']}", flush=True)
        stack = start_stack(model, workdir / "stack", tracker_store=tracker_store,
                            extra_env={"TRACKER_DB_URL": f"sqlite:///{workdir / 'tracker.db'}"})
        procs.extend(stack.procs)
        res["startup"] = time.monotonic() - t0
        print(f"ours: stack ready in {res['startup']:.0f} s", flush=True)
        url = stack.rasa
        pid = stack.procs[1].pid
        port = stack.rasa_port
    res.update(asyncio.run(_measure_rest(url, OUR_CONVERSATIONS, args.messages, args.concurrency,
                                         args.time_budget, "ours", args.show_replies)))
    _print_phase("rest", "1 sender", res["seq"])
    _print_phase("rest", f"{args.concurrency} senders", res["conc"])
    res["rss"] = _rss_line("ours", pid or pid_listening_on(port))
    res["url"] = url
    res["pids"] = {"rasa": pid or pid_listening_on(port)}
    if not args.url:
        res["pids"]["actions"] = stack.procs[0].pid
        if args.rounds > 1 and not args.skip_stock:
            res["stop"] = stack.procs  # measured again in the interleaved rounds, stopped after them
        else:
            for p in stack.procs:
                stop_process(p)
    return res


def train_ours(workdir: Path, procs: List[subprocess.Popen]) -> dict:
    out = workdir / "train-ours"
    out.mkdir(parents=True)
    env = dict(os.environ, KNOWLEDGE_DB_URL=_prepare_db(workdir), RASA_CACHE_DIRECTORY=str(out / "cache"))
    print("ours: rasa train --force (a few minutes) ...", flush=True)
    res = _timed_run([str(BIN / "rasa"), "train", "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
                      "--out", str(out / "models"), "--force"], ROOT, env, out / "train.log", 3600, procs)
    print(f"ours: rasa train {res['wall']:.0f} s, peak RSS {res['peak_mb']:.0f} MB", flush=True)
    return res


def bench_stock(args, workdir: Path, procs: List[subprocess.Popen]) -> dict:
    res: dict = {}
    project = workdir / "stock"
    project.mkdir()
    env = dict(os.environ, RASA_CACHE_DIRECTORY=str(workdir / "stock-cache"))
    print("stock: rasa init --no-prompt (trains the moodbot) ...", flush=True)
    res["train"] = _timed_run([str(BIN / "rasa"), "init", "--no-prompt", "--init-dir", str(project)], workdir, env,
                              workdir / "stock-init.log", 3600, procs)
    print(f"stock: rasa init incl. training {res['train']['wall']:.0f} s, peak RSS {res['train']['peak_mb']:.0f} MB",
          flush=True)
    port = free_port()
    log = workdir / "stock-rasa.log"
    t0 = time.monotonic()
    with open(log, "w") as out:
        server = subprocess.Popen([str(BIN / "rasa"), "run", "--enable-api", "-i", "127.0.0.1", "--port", str(port),
                                   "--model", str(project / "models")], cwd=project, env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    procs.append(server)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, server, 240, log)
    res["startup"] = time.monotonic() - t0
    print(f"stock: server ready in {res['startup']:.0f} s", flush=True)
    res.update(asyncio.run(_measure_rest(url, STOCK_CONVERSATIONS, args.messages, args.concurrency,
                                         args.time_budget, "stock", args.show_replies)))
    _print_phase("stock rest", "1 sender", res["seq"])
    _print_phase("stock rest", f"{args.concurrency} senders", res["conc"])
    res["rss"] = _rss_line("stock", server.pid)
    res["url"] = url
    res["pids"] = {"rasa": server.pid}
    if args.rounds > 1:
        res["stop"] = [server]
    else:
        stop_process(server)
    return res


# -- interleaved rounds -------------------------------------------------------------------------------

def cpu_seconds(pid: Optional[int]) -> float:
    """User + system CPU time of a process so far (s), from /proc; NaN if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, TypeError):
        return float("nan")


async def _one_round(url: str, conversations, messages: int, concurrency: int, time_budget: float, tag: str,
                     pids: Dict[str, Optional[int]]) -> dict:
    """One --concurrency phase against a warm server, with the CPU its processes spent per answered message."""
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
                                     connector=aiohttp.TCPConnector(limit=concurrency + 2)) as session:
        async def send(sender: str, text: str) -> str:
            async with session.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}) as r:
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}: {(await r.text())[:120]}")
                await r.json()
            return "ok"

        before = {k: cpu_seconds(p) for k, p in pids.items()}
        result = await run_load(send, conversations, concurrency, messages, time_budget, tag)
        after = {k: cpu_seconds(p) for k, p in pids.items()}
    out = dict(summarize(result.latencies, result.wall), errors=len(result.errors))
    n = max(out["n"], 1)
    out["cpu_ms"] = {k: (after[k] - before[k]) * 1000 / n for k in pids}
    return out


def interleaved_rounds(args, ours: dict, stock: dict) -> List[dict]:
    """--rounds alternating --concurrency phases, ours and stock (who goes first alternates), so both see the
    same load on a shared machine; returns one row per round."""
    rows = []
    for i in range(args.rounds):
        order = [("ours", ours, OUR_CONVERSATIONS), ("stock", stock, STOCK_CONVERSATIONS)]
        if i % 2:
            order.reverse()
        row: dict = {"load": loadavg()}
        for name, res, conversations in order:
            row[name] = asyncio.run(_one_round(res["url"], conversations, args.messages, args.concurrency,
                                               args.time_budget, f"bench-{name}-round{i}", res["pids"]))
        row["ratio"] = row["ours"]["rate"] / row["stock"]["rate"] if row["stock"]["rate"] else float("nan")
        cpu = lambda r: " + ".join(f"{k} {v:.1f}" for k, v in r["cpu_ms"].items())  # noqa: E731
        print(f"round {i + 1}/{args.rounds} (load {row['load']}): ours {row['ours']['rate']:.1f} msg/s, "
              f"p95 {fmt_ms(row['ours']['p95'])}, CPU ms/msg {cpu(row['ours'])}; stock {row['stock']['rate']:.1f} "
              f"msg/s, p95 {fmt_ms(row['stock']['p95'])}, CPU ms/msg {cpu(row['stock'])}; ratio {row['ratio']:.2f}"
              + (f"; errors {row['ours']['errors']}/{row['stock']['errors']}"
                 if row["ours"]["errors"] or row["stock"]["errors"] else ""), flush=True)
        rows.append(row)
    return rows


def rounds_summary(rows: List[dict]) -> Dict[str, float]:
    """Median and range of the per-round throughput ratio ours/stock, and the medians of both rates."""
    from _common import percentile

    ratios = [r["ratio"] for r in rows]
    return {"median": percentile(ratios, 50), "low": min(ratios), "high": max(ratios),
            "ours": percentile([r["ours"]["rate"] for r in rows], 50),
            "stock": percentile([r["stock"]["rate"] for r in rows], 50)}


# -- report -------------------------------------------------------------------------------------------

def _table(ours: dict, stock: dict, concurrency: int) -> None:
    def get(d: dict, *path):
        for key in path:
            if not isinstance(d, dict) or key not in d:
                return None
            d = d[key]
        return d

    rows = [("startup until /status answers (s)", ("startup",), "{:.0f}")]
    for label, phase in (("1 sender", "seq"), (f"{concurrency} senders", "conc")):
        for stat in ("p50", "p95", "p99"):
            rows.append((f"rest {label} {stat} (ms)", (phase, stat), "{:.0f}"))
        rows.append((f"rest {label} throughput (msg/s)", (phase, "rate"), "{:.1f}"))
    rows += [("rasa server RSS after the runs (MB)", ("rss_mb",), "{:.0f}"),
             ("rasa server peak RSS (MB)", ("hwm_mb",), "{:.0f}"),
             ("training wall time (s)", ("train", "wall"), "{:.0f}"),
             ("training peak RSS (MB)", ("train", "peak_mb"), "{:.0f}")]
    for d in (ours, stock):
        if d.get("rss"):
            d["rss_mb"] = d["rss"].get("VmRSS", 0) / 1024
            d["hwm_mb"] = d["rss"].get("VmHWM", 0) / 1024
    print()
    print(f"{'':38} {'ours':>10} {'stock':>10} {'ours/stock':>11}")
    for name, path, fmt in rows:
        a, b = get(ours, *path), get(stock, *path)
        ratio = f"{a / b:.2f}x" if a is not None and b not in (None, 0) else "-"
        print(f"{name:38} {fmt.format(a) if a is not None else '-':>10} "
              f"{fmt.format(b) if b is not None else '-':>10} {ratio:>11}")
    print()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="measure a running Rasa server (127.0.0.1 only) instead of starting ours")
    parser.add_argument("--token", help="auth token of the server at --url (to read the model name from /status)")
    parser.add_argument("--model", help="model to serve (default: the newest models/xinghe-*.tar.gz)")
    parser.add_argument("--messages", type=int, default=200, help="messages per measured phase (default 200)")
    parser.add_argument("--concurrency", type=int, default=20, help="concurrent senders in phase (b) (default 20)")
    parser.add_argument("--time-budget", type=float, default=300, help="max seconds per measured phase (default 300)")
    parser.add_argument("--tracker-store", default="memory", choices=("memory", "redis", "rasa-redis", "sql", "rasa-sql"),
                        help="tracker store of our stack: memory (default), redis (what `make run` uses), "
                             "rasa-redis (Rasa's own Redis store), sql (PostgreSQL)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="after both servers were measured, N more --concurrency phases alternating between "
                             "them (both kept running): per-round ratio, its median and range (default 1: none)")
    parser.add_argument("--skip-stock", action="store_true", help="don't set up and measure the stock rasa init bot")
    parser.add_argument("--skip-train", action="store_true", help="don't time `rasa train` of our project")
    parser.add_argument("--show-replies", action="store_true", help="print the first reply to each distinct message")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, models)")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.concurrency < 1 or args.rounds < 1:
        parser.error("--messages, --concurrency and --rounds must be at least 1")

    setup_env()
    workdir = Path(tempfile.mkdtemp(prefix="xinghe-bench-"))
    procs: List[subprocess.Popen] = []
    ours: dict = {}
    stock: dict = {}
    print(f"bench/latency.py: {args.messages} messages per phase, {args.concurrency} concurrent senders; "
          f"load average {loadavg()} on {os.cpu_count()} CPUs; work dir {workdir}", flush=True)
    def body() -> None:
        ours.update(bench_ours(args, workdir, procs))
        if not args.skip_train:
            ours["train"] = train_ours(workdir, procs)
        if not args.skip_stock:
            stock.update(bench_stock(args, workdir, procs))
        if args.rounds > 1 and ours.get("stop") and stock.get("stop"):
            rows = interleaved_rounds(args, ours, stock)
            summary = rounds_summary(rows)
            ours["rounds"] = summary
            print(f"interleaved rounds: ours/stock throughput median {summary['median']:.2f}x "
                  f"(range {summary['low']:.2f}-{summary['high']:.2f}), ours {summary['ours']:.1f} vs stock "
                  f"{summary['stock']:.1f} msg/s (medians)", flush=True)
        for p in ours.pop("stop", []) + stock.pop("stop", []):
            stop_process(p)

    def cleanup() -> None:
        if args.tracker_store != "memory":
            import growth

            growth.cleanup(args.tracker_store)

    status = run_guarded(body, procs, cleanup)
    if ours or stock:
        _table(ours, stock, args.concurrency)
        print(f"load average at the end: {loadavg()} (other work on the machine skews every figure)")
        print("notes: ours answers many turns through the action server and the SQLite knowledge store; the "
              "stock moodbot has no custom actions; both use the in-memory tracker store.")
    return finish(workdir, status, args.keep)

if __name__ == "__main__":
    sys.exit(main())
