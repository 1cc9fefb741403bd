#!/usr/bin/env python
"""WeChat channel latency of 星河客服: how often a patron's reply would miss WeChat's 5-second deadline.

    .venv/bin/python bench/wechat_latency.py                 # 200 messages per phase
    .venv/bin/python bench/wechat_latency.py --messages 60   # quick look

Starts a stand-in WeChat API (tests/wechat_stub.py) and our stack (tests.stack.start_stack, newest
models/xinghe-*.tar.gz, WeChat channel pointed at the stand-in), then posts signed plaintext text messages
(signature query + XML body, as WeChat does) to /webhooks/wechat/webhook: first one patron at a time, then
--concurrency patrons at once (distinct OpenIDs). For each phase it prints p50/p95 from request to the
passive XML reply and the share of messages that miss the deadline: answered after >= 5 s, or answered
with "success" (the channel gave up waiting after reply_timeout, 4 s, and delivers the answer later
through the customer-service API — the stand-in records those deliveries). Bounded by --messages and
--time-budget; 127.0.0.1 only; every server stopped at the end, also on Ctrl-C.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    OUR_CONVERSATIONS, ROOT, children, fmt_ms, free_port, loadavg, percentile, rss_kb, run_load, setup_env,
    stop_all, stop_process, wait_for_model,
)

DEADLINE = 5.0          # WeChat drops the HTTP request (and retries) after 5 s
REQUEST_TIMEOUT = 20.0  # our client waits longer, to see how late a late answer is
# tests.stack.start_stack configures the channel with these; checked against stack.wechat after start.
STACK_APPID, STACK_SECRET = "wx0123456789abcdef", "test-secret"


def start_stub(port: int, appid: str, secret: str, log: Path) -> subprocess.Popen:
    out = open(log, "a")
    p = subprocess.Popen([sys.executable, str(ROOT / "tests" / "wechat_stub.py"), "--port", str(port),
                          "--appid", appid, "--secret", secret], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"the WeChat stub exited:\n{log.read_text(errors='replace')[-1000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return p
        except OSError:
            time.sleep(0.3)
    stop_process(p)
    raise RuntimeError("the WeChat stub did not start within 30 s")


async def measure(stack, messages: int, concurrency: int, time_budget: float) -> Dict[str, dict]:
    import aiohttp

    from tools.wechat_send import build_message_xml, reply_content, signed_query

    token = stack.wechat["token"]
    url = f"{stack.rasa}/webhooks/wechat/webhook"
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=concurrency + 2)
    openids: Dict[str, set] = {}
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        def sender_for(phase: str):
            async def send(openid: str, text: str) -> str:
                openids.setdefault(phase, set()).add(openid)
                body = build_message_xml(openid, text).encode("utf-8")
                async with session.post(url, params=signed_query(token), data=body,
                                        headers={"Content-Type": "text/xml; charset=utf-8"}) as r:
                    answer = await r.text()
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}: {answer[:120]}")
                if answer.strip() in ("", "success"):
                    return "success"
                return "passive" if reply_content(answer) is not None else "other"
            return send

        await run_load(sender_for("warmup"), OUR_CONVERSATIONS, 1, 6, 120, "o-bench-warmup")
        out = {}
        for phase, patrons in (("seq", 1), ("conc", concurrency)):
            result = await run_load(sender_for(phase), OUR_CONVERSATIONS, patrons, messages, time_budget,
                                    f"o-bench-{phase}")
            passive = result.kinds.get("passive", [])
            late = [t for t in result.latencies if t >= DEADLINE]
            success = result.count("success")
            missed = sum(1 for kind, ts in result.kinds.items() for t in ts if kind == "success" or t >= DEADLINE)
            out[phase] = {
                "n": len(result.latencies), "wall": result.wall, "rate": len(result.latencies) / result.wall,
                "p50": percentile(passive, 50) * 1000, "p95": percentile(passive, 95) * 1000,
                "all_p50": percentile(result.latencies, 50) * 1000,
                "all_p95": percentile(result.latencies, 95) * 1000,
                "max": max(result.latencies, default=float("nan")) * 1000,
                "passive": len(passive), "success": success, "late": len(late), "missed": missed,
                "other": result.count("other"), "errors": len(result.errors),
                "first_error": (result.errors[:1] or [""])[0], "openids": openids.get(phase, set()),
            }
        return out


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def report(label: str, s: dict) -> None:
    n = s["n"]
    print(f"wechat {label}: p50 {fmt_ms(s['p50'])}  p95 {fmt_ms(s['p95'])} to the XML reply "
          f"({s['passive']} passive replies); all answers p50 {fmt_ms(s['all_p50'])}  p95 {fmt_ms(s['all_p95'])}  "
          f"max {fmt_ms(s['max'])}  {s['rate']:.1f} msg/s", flush=True)
    line = (f"wechat {label}: missed the 5 s deadline {s['missed']}/{n} ({_pct(s['missed'], n)}): "
            f"answered after >= 5 s {s['late']} ({_pct(s['late'], n)}), "
            f"deferred with \"success\" {s['success']} ({_pct(s['success'], n)})")
    if s["other"]:
        line += f"; {s['other']} answers neither XML nor success"
    if s["errors"]:
        line += f"; {s['errors']} failed: {s['first_error']}"
    print(line, flush=True)


def deliveries(stub_log: Path, openids: set, expected: int, wait: float = 30.0) -> int:
    """Customer-service API messages the stand-in received for ``openids`` (waits up to ``wait`` s for
    ``expected`` of them)."""
    deadline = time.monotonic() + wait
    while True:
        count = 0
        for line in stub_log.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("touser") in openids:
                count += 1
        if count >= expected or time.monotonic() >= deadline:
            return count
        time.sleep(1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model to serve (default: the newest models/xinghe-*.tar.gz)")
    parser.add_argument("--messages", type=int, default=200, help="messages per phase (default 200)")
    parser.add_argument("--concurrency", type=int, default=20, help="concurrent patrons (default 20)")
    parser.add_argument("--time-budget", type=float, default=300, help="max seconds per phase (default 300)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.concurrency < 1:
        parser.error("--messages and --concurrency must be at least 1")

    setup_env()
    from tests.stack import start_stack

    workdir = Path(tempfile.mkdtemp(prefix="xinghe-bench-wechat-"))
    procs: List[subprocess.Popen] = []
    status = 0
    print(f"bench/wechat_latency.py: {args.messages} messages per phase, {args.concurrency} concurrent patrons; "
          f"load average {loadavg()} on {os.cpu_count()} CPUs; work dir {workdir}", flush=True)
    try:
        model = args.model or wait_for_model()
        stub_port = free_port()
        stub_log = workdir / "wechat_stub.jsonl"
        stub = start_stub(stub_port, STACK_APPID, STACK_SECRET, stub_log)
        procs.append(stub)
        print(f"starting the stack with {Path(model).name} (about a minute) ...", flush=True)
        stack = start_stack(model, workdir / "stack", wechat_api_base=f"http://127.0.0.1:{stub_port}")
        procs.extend(stack.procs)
        if (stack.wechat.get("appid"), stack.wechat.get("secret")) != (STACK_APPID, STACK_SECRET):
            stop_process(stub)  # the stack uses other credentials now: restart the stand-in with them
            stub = start_stub(stub_port, stack.wechat["appid"], stack.wechat["secret"], stub_log)
            procs.append(stub)
        results = asyncio.run(measure(stack, args.messages, args.concurrency, args.time_budget))
        report("1 patron", results["seq"])
        report(f"{args.concurrency} patrons", results["conc"])
        deferred = sum(r["success"] for r in results.values())
        ids = set().union(*(r["openids"] for r in results.values()))
        got = deliveries(stub_log, ids, deferred, wait=30 if deferred else 2)
        print(f"customer-service API: {got} message(s) delivered to the stand-in for the measured patrons "
              f"({deferred} deferred answers; a passive reply over 2048 bytes also sends its rest this way)")
        mem = rss_kb(stack.procs[1].pid)
        kids = sum(rss_kb(k).get("VmRSS", 0) for k in children(stack.procs[1].pid))
        print(f"rasa server RSS after the runs: {mem.get('VmRSS', 0) / 1024:.0f} MB, "
              f"peak {mem.get('VmHWM', 0) / 1024:.0f} MB" + (f" (+{kids / 1024:.0f} MB children)" if kids else ""))
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers", file=sys.stderr)
        status = 130
    except Exception as e:  # noqa: BLE001
        print(f"\nbenchmark failed: {e}", file=sys.stderr)
        status = 1
    finally:
        stop_all(procs)
    print(f"load average at the end: {loadavg()} (other work on the machine skews every figure)")
    if args.keep or status:
        print(f"logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
