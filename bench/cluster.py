"""Throughput and latency of the cluster layout with 1, 2 and 3 Rasa instances behind nginx.

    .venv/bin/python bench/cluster.py                                  # 1,2,3 instances × 20,50,100 patrons
    .venv/bin/python bench/cluster.py --instances 1,2 --patrons 20,50 --messages 2

Starts the layout of ``make run-cluster`` once with the largest instance count (tests/cluster/harness.py:
supervisord, nginx, 2 action servers, the web app, PostgreSQL and Redis of its own) and, for each count,
rewrites nginx's Rasa upstream to the first N instances and reloads nginx, so every row runs on the same
processes and warm caches (instances left out idle and cost memory, not CPU). Per row: REST patrons
through nginx (p50/p95/p99, msg/s, errors) and WeChat patrons through the public webhook (signed XML;
answers at or over 5 s and ``success`` answers, which go out through the customer-service API, count as
missed deadlines). Then the RSS of every Rasa instance. The machine's cores are shared by every process (and
by other work on it): per-core figures divide by the cores the whole machine has.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    OUR_CONVERSATIONS, ROOT, fmt_ms, loadavg, percentile, rss_kb, run_load, setup_env, wait_for_model,
)

DEADLINE = 5.0
TIMEOUT = 30.0


async def rest_load(base: str, patrons: int, messages: int, tag: str) -> Dict[str, float]:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=patrons + 4)) as s:
        async def send(sender: str, text: str) -> str:
            async with s.post(f"{base}/webhooks/rest/webhook", json={"sender": sender, "message": text}) as r:
                body = await r.json(content_type=None)
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}")
            return "ok" if body else "empty"

        result = await run_load(send, OUR_CONVERSATIONS, patrons, messages, 300, tag)
    return _stats(result) | {"empty": result.count("empty")}


async def wechat_load(base: str, token: str, patrons: int, messages: int, tag: str) -> Dict[str, float]:
    import aiohttp

    from tools.wechat_send import build_message_xml, reply_content, signed_query

    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=patrons + 4)) as s:
        async def send(openid: str, text: str) -> str:
            body = build_message_xml("o" + openid, text).encode("utf-8")
            async with s.post(f"{base}/webhooks/wechat/webhook", params=signed_query(token), data=body,
                              headers={"Content-Type": "text/xml; charset=utf-8"}) as r:
                answer = await r.text()
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}")
            return "passive" if reply_content(answer) is not None else "success"

        result = await run_load(send, OUR_CONVERSATIONS, patrons, messages, 300, tag)
    late = sum(1 for t in result.latencies if t >= DEADLINE)
    return _stats(result) | {"missed": late + result.count("success"), "success": result.count("success")}


def _stats(result) -> Dict[str, float]:
    lat = result.latencies
    return {"n": len(lat), "rate": len(lat) / result.wall if result.wall else 0.0,
            "p50": percentile(lat, 50) * 1000, "p95": percentile(lat, 95) * 1000, "p99": percentile(lat, 99) * 1000,
            "errors": len(result.errors), "first_error": (result.errors[:1] or [""])[0]}


def use_instances(cluster, n: int) -> None:
    """nginx balances over the first ``n`` Rasa instances (config rewritten, nginx reloaded by HUP)."""
    from bot.deploy.layout import Layout

    full = cluster.layout
    partial = Layout(full.var, full.model, rasa=n, actions=full.actions, nginx=True, ports=full.ports)
    (full.var / "nginx" / "nginx.conf").write_text(partial.nginx_conf(), encoding="utf-8")
    cluster.rpc().signalProcess("nginx", "HUP")
    time.sleep(2)   # old workers finish, new ones take over


def socket_delivery(cluster, samples: int) -> Dict[str, List[float]]:
    """ms from an agent message executed on an instance (the desk's Rasa calls) to its arrival at a web chat
    socket, for the instance holding the socket and for another one, interleaved."""
    import requests

    from tests.cluster.harness import Patron

    out: Dict[str, List[float]] = {"same": [], "other": []}
    patron = Patron(cluster.lb, transport="polling")
    try:
        holder = int(patron.engine_sid.split("-", 1)[0][1:])
        other = 1 if holder != 1 else 2
        patron.ask("你好", "", timeout=60)
        params = {"token": cluster.token}
        for k in range(samples):
            for label, i in (("same", holder), ("other", other)):
                base, sender = cluster.rasa(i), patron.session_id
                requests.post(f"{base}/conversations/{sender}/tracker/events", params=params, timeout=30,
                              json=[{"event": "slot", "name": "agent_message", "value": f"{label}-{k}"}])
                start = len(patron.messages)
                t0 = time.perf_counter()
                requests.post(f"{base}/conversations/{sender}/execute", timeout=30,
                              params={**params, "output_channel": "latest", "include_events": "NONE"},
                              json={"name": "action_agent_message"}).raise_for_status()
                patron.wait_for(f"{label}-{k}", start, timeout=30)
                out[label].append((time.perf_counter() - t0) * 1000)
    finally:
        patron.close()
    return out


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", default="1,2,3")
    parser.add_argument("--patrons", default="20,50,100")
    parser.add_argument("--messages", type=int, default=3, help="messages per patron in each run")
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)
    setup_env()
    from tests.cluster.harness import new_sender, start_cluster

    counts = [int(x) for x in args.instances.split(",")]
    patron_counts = [int(x) for x in args.patrons.split(",")]
    model = args.model or wait_for_model()
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-", dir=ROOT / "var" / "tmp"))
    print(f"==> starting {max(counts)} Rasa instances, 2 action servers, nginx (load {loadavg()})", flush=True)
    t0 = time.time()
    cluster = start_cluster(model, work, rasa=max(counts), actions=2, ready_timeout=1200)
    print(f"==> up in {time.time() - t0:.0f} s", flush=True)
    rows = []
    try:
        for i in range(1, max(counts) + 1):   # every instance warm (first turns load lazily)
            for _ in range(3):
                cluster.say(cluster.rasa(i), new_sender("warm"), "IMAX周六多少钱")
        for n in counts:
            use_instances(cluster, n)
            for p in patron_counts:
                msgs = p * args.messages
                rest = asyncio.run(rest_load(cluster.lb, p, msgs, f"b-r{n}-{p}"))
                wechat = asyncio.run(wechat_load(cluster.public, cluster.wechat["token"], p, msgs, f"b-w{n}-{p}"))
                rows.append((n, p, rest, wechat, loadavg()))
                print(f"   {n} inst {p:>3} patrons: REST {rest['rate']:.1f} msg/s p95 {fmt_ms(rest['p95'])}; "
                      f"WeChat {wechat['rate']:.1f} msg/s missed {wechat['missed']} (load {rows[-1][4]})", flush=True)
        use_instances(cluster, max(counts))
        delivery = socket_delivery(cluster, 20) if max(counts) > 1 else {}
        rss = {}
        for i in range(1, max(counts) + 1):
            pid = cluster.info(f"rasa-{i}")["pid"]
            rss[f"rasa-{i}"] = rss_kb(pid)
        for name in ("actions-1", "actions-2", "app", "nginx"):
            rss[name] = rss_kb(cluster.info(name)["pid"])
    finally:
        cluster.stop()

    print(f"\n## Cluster bench ({cores} cores, all processes on them; load average at the end of each row)\n")
    print("| Rasa inst. | patrons | REST msg/s | p50 | p95 | p99 | err | WeChat msg/s | p50 | p95 | p99 | missed 5 s | err | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, p, r, w, load in rows:
        print(f"| {n} | {p} | {r['rate']:.1f} | {fmt_ms(r['p50'])} | {fmt_ms(r['p95'])} | {fmt_ms(r['p99'])} | "
              f"{r['errors']} | {w['rate']:.1f} | {fmt_ms(w['p50'])} | {fmt_ms(w['p95'])} | {fmt_ms(w['p99'])} | "
              f"{w['missed']}/{w['n']} | {w['errors']} | {load} |")
    print(f"\nper core (÷{cores}): " + ", ".join(
        f"{n} inst/{p}: {r['rate'] / cores:.1f}" for n, p, r, _, _ in rows))
    print("\nRSS (MB): " + ", ".join(f"{k} {v.get('VmRSS', 0) / 1024:.0f} (peak {v.get('VmHWM', 0) / 1024:.0f})"
                                   for k, v in rss.items()))
    for label, ms in delivery.items():
        print(f"agent message → web chat socket, execute on the {'instance holding the socket' if label == 'same' else 'other instance'}: "
              f"p50 {percentile(ms, 50):.0f} ms, p95 {percentile(ms, 95):.0f} ms (n={len(ms)})")
        errors = [r["first_error"] for _, _, r, w, _ in rows if r["first_error"]] + \
        [w["first_error"] for _, _, r, w, _ in rows if w["first_error"]]
    if errors:
        print("first errors:", errors[:3])
    return 0


if __name__ == "__main__":
    sys.exit(main())
