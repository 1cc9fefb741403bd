#!/usr/bin/env python
"""20-sender REST throughput of two tracker stores, measured in alternating rounds on the same machine.

    .venv/bin/python bench/store_throughput.py                       # redis (bounded) vs rasa-redis
    .venv/bin/python bench/store_throughput.py --stores redis,memory --rounds 6 --messages 150

bench/latency.py measures one stack per run; on a shared machine the load drifts between runs by more than
the difference between two stores. This starts both stacks (tests.stack.start_stack, newest model, the
tracker store `make run` would configure for each name; own Redis prefix / PostgreSQL database), warms both
up, then runs ``--rounds`` rounds of ``--messages`` messages from ``--concurrency`` senders (the mix of
bench/latency.py), alternating the stores and their order, and prints each round's msg/s and p95 and the
medians. Only one stack is loaded at a time. Both stacks are stopped at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUR_CONVERSATIONS, finish, loadavg, percentile, run_guarded, run_load, setup_env, wait_for_model  # noqa: E402,E501
import growth  # noqa: E402


async def load(url: str, args, tag: str) -> dict:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60),
                                     connector=aiohttp.TCPConnector(limit=args.concurrency + 2)) as session:
        async def send(sender: str, text: str) -> str:
            async with session.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}) as r:
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}")
                return "ok" if await r.json() else "empty"
        result = await run_load(send, OUR_CONVERSATIONS, args.concurrency, args.messages, 300, tag)
    return {"rate": len(result.latencies) / result.wall if result.wall else 0.0,
            "p95": percentile(result.latencies, 95) * 1000, "errors": len(result.errors),
            "empty": result.count("empty")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", default="redis,rasa-redis", help="two of: redis, rasa-redis, sql, rasa-sql, memory")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=120, help="messages per round and store (default 120)")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--model")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    setup_env()
    workdir = Path(tempfile.mkdtemp(prefix="xinghe-storetp-"))
    procs: List[subprocess.Popen] = []
    rounds: Dict[str, List[dict]] = {s: [] for s in stores}
    print(f"bench/store_throughput.py: {', '.join(stores)}; {args.rounds} rounds x {args.messages} messages, "
          f"{args.concurrency} senders; load average {loadavg()} on {os.cpu_count()} CPUs", flush=True)

    def body() -> None:
        from tests.stack import start_stack

        growth.ensure_pg_database()
        model = args.model or wait_for_model()
        urls = {}
        for i, kind in enumerate(stores):
            # two stores of one family must not share keys or tables
            growth.BENCH_PREFIX = f"xinghetp{i}"
            stack = start_stack(model, workdir / kind, tracker_store=growth.store_config(kind))
            procs.extend(stack.procs)
            urls[kind] = stack.rasa
            print(f"{kind}: ready", flush=True)
        for kind, url in urls.items():
            asyncio.run(load(url, argparse.Namespace(concurrency=args.concurrency, messages=30), f"tp-{kind}-warm"))
        for r in range(args.rounds):
            order = stores if r % 2 == 0 else list(reversed(stores))
            for kind in order:
                res = asyncio.run(load(urls[kind], args, f"tp-{kind}-{r}"))
                rounds[kind].append(res)
                print(f"  round {r + 1} {kind}: {res['rate']:.1f} msg/s, p95 {res['p95']:.0f} ms"
                      + (f", {res['errors']} errors" if res["errors"] else ""), flush=True)

    def cleanup() -> None:
        for i, kind in enumerate(stores):
            growth.BENCH_PREFIX = f"xinghetp{i}"
            growth.cleanup(kind)

    status = run_guarded(body, procs, cleanup)
    if all(rounds.values()):
        print()
        for kind, rs in rounds.items():
            rates = [x["rate"] for x in rs]
            listed = ", ".join(f"{v:.1f}" for v in rates)
            print(f"{kind:12} median {percentile(rates, 50):.1f} msg/s (rounds: {listed}), median p95 "
                  f"{percentile([x['p95'] for x in rs], 50):.0f} ms")
        a, b = stores[0], stores[1]
        ratios = [x["rate"] / y["rate"] for x, y in zip(rounds[a], rounds[b]) if y["rate"]]
        listed = ", ".join(f"{q:.2f}" for q in ratios)
        print(f"{a}/{b} per round: {listed}; median {percentile(ratios, 50):.2f}")
        print(f"load average at the end: {loadavg()}")
    return finish(workdir, status)


if __name__ == "__main__":
    sys.exit(main())
