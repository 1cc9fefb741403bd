#!/usr/bin/env python
"""The event broker when RabbitMQ is unreachable: Rasa 3.6's PikaEventBroker against the project's
SpoolingPikaEventBroker (bot/analytics/broker.py), on the real RabbitMQ through a TCP proxy taken down.

    .venv/bin/python bench/event_broker.py                 # everything except the 100-second start-up wait
    .venv/bin/python bench/event_broker.py --startup       # also: stock broker start-up with RabbitMQ down
    .venv/bin/python bench/event_broker.py --rasa          # also: REST reply latency, RabbitMQ up vs down

Parts:
1. ``publish()`` cost per event (what a patron's turn pays), RabbitMQ up and down;
2. an outage of ``--outage`` events: how many each broker delivers after RabbitMQ returns, (a) in the same
   process, (b) when the publishing process was killed (-9) during the outage and a new one started;
3. spool replay rate (events/s with publisher confirms) and the consumer's ingest rate into the turns table;
4. ``--startup``: the stock broker's start-up with RabbitMQ unreachable (Rasa does not serve meanwhile);
5. ``--rasa``: a real Rasa server with the spooling broker: reply latency with RabbitMQ up and down in
   alternating rounds, then a server without any event broker on the same messages (one sender at a time);
6. the broker's CPU in the Rasa process per event (publish plus the background publishing), RabbitMQ up.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.tcp_proxy import TcpProxy  # noqa: E402

RABBIT = ("127.0.0.1", 5672)


def event(i: int) -> dict:
    return {"sender_id": f"bench-{i % 50}", "event": "user", "timestamp": 1_700_000_000.0 + i,
            "text": f"第{i}句：IMAX周六多少钱", "input_channel": "rest",
            "parse_data": {"intent": {"name": "ask_ticket_price", "confidence": 0.9}, "entities": []}}


async def queue_count(name: str) -> int:
    import aio_pika

    conn = await aio_pika.connect(host=RABBIT[0], port=RABBIT[1], login="guest", password="guest")
    ch = await conn.channel()
    q = await ch.declare_queue(name, durable=True, passive=True)
    n = q.declaration_result.message_count
    await conn.close()
    return n


async def drop(exchange: str, queue: str) -> None:
    import aio_pika

    conn = await aio_pika.connect(host=RABBIT[0], port=RABBIT[1], login="guest", password="guest")
    ch = await conn.channel()
    await ch.queue_delete(queue)
    await ch.exchange_delete(exchange)
    await conn.close()


async def wait(predicate, timeout: float) -> float:
    start = time.monotonic()
    while not await predicate():
        if time.monotonic() - start > timeout:
            return float("nan")
        await asyncio.sleep(0.1)
    return time.monotonic() - start


def stock(proxy: TcpProxy, exchange: str, queue: str):
    import rasa.shared.core.events  # noqa: F401 - the broker uses it without importing it (Rasa has by then)
    from rasa.core.brokers.pika import PikaEventBroker

    return PikaEventBroker("127.0.0.1", "guest", "guest", port=proxy.port, queues=[queue], exchange_name=exchange,
                           connection_attempts=1, retry_delay_in_seconds=0.5)


def ours(proxy: TcpProxy, exchange: str, queue: str, spool: Path):
    from bot.analytics.broker import SpoolingPikaEventBroker

    b = SpoolingPikaEventBroker("127.0.0.1", "guest", "guest", port=proxy.port, queues=[queue],
                                exchange_name=exchange, spool=str(spool))
    b.start()
    return b


def per_call_us(broker, n: int, offset: int) -> dict:
    times = []
    for i in range(n):
        t = time.perf_counter()
        broker.publish(event(offset + i))
        times.append((time.perf_counter() - t) * 1e6)
    times.sort()
    return {"p50_us": round(times[len(times) // 2], 1), "p99_us": round(times[int(len(times) * 0.99)], 1),
            "max_us": round(times[-1], 1)}


async def outage(kind: str, n: int, restart: bool, tmp: Path) -> dict:
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"xinghe-bench-{tag}", f"xinghe_bench_{tag}"
    proxy = TcpProxy(*RABBIT)
    spool = tmp / f"spool-{tag}.db"
    try:
        if kind == "stock":
            broker = stock(proxy, exchange, queue)
            await broker.connect()
        else:
            broker = ours(proxy, exchange, queue, spool)
            await wait(lambda: asyncio.sleep(0, broker.is_ready()), 15)
        proxy.down()
        await asyncio.sleep(1.0)  # the connection is gone
        cost = per_call_us(broker, n, 0)
        await asyncio.sleep(2.0)  # background publishes fail
        held = len(broker._unpublished_events) if kind == "stock" else len(broker.spool)
        if restart:  # the publishing process ends while RabbitMQ is down; a new one starts
            if kind == "stock":  # what the process held in memory ends with it
                for task in list(broker._background_tasks):
                    task.cancel()
                try:  # closing a robust connection that is down can wait for ever
                    await asyncio.wait_for(broker.close(), 5)
                except asyncio.TimeoutError:
                    pass
                broker = stock(proxy, exchange, queue)
                proxy.up()
                await broker.connect()
            else:
                await broker.close()
                proxy.up()
                broker = ours(proxy, exchange, queue, spool)
        else:
            proxy.up()
        waited = await wait(lambda: _count_is(queue, n), 60)
        delivered = await queue_count(queue)
        return {"broker": kind, "restart": restart, "events": n, "held_during_outage": held,
                "delivered": delivered, "lost": n - delivered,
                "delivered_s_after_up": None if waited != waited else round(waited, 2), "publish_while_down": cost}
    finally:
        try:
            await asyncio.wait_for(broker.close(), 5)
        except Exception:  # noqa: BLE001
            pass
        proxy.close()
        await drop(exchange, queue)


CHILD = r"""
import asyncio, logging, os, signal, sys
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[1] + "/bench")
logging.basicConfig(level=logging.CRITICAL)
import event_broker as b
from tests.tcp_proxy import TcpProxy

async def main():
    kind, port, exchange, queue, spool, n = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7])
    proxy = TcpProxy.__new__(TcpProxy); proxy.port = port
    if kind == "stock":
        broker = b.stock(proxy, exchange, queue); await broker.connect()
    else:
        from pathlib import Path
        broker = b.ours(proxy, exchange, queue, Path(spool))
        while not broker.is_ready():
            await asyncio.sleep(0.05)
    print("connected", flush=True)
    sys.stdin.readline()               # the parent has taken RabbitMQ away
    await asyncio.sleep(1.0)
    for i in range(n):
        broker.publish(b.event(i))
    await asyncio.sleep(2.0)
    print("published", flush=True)
    await asyncio.sleep(3600)          # killed (-9) by the parent

asyncio.run(main())
"""


def _read_until(child, word: str) -> None:
    for line in child.stdout:
        if line.strip() == word:
            return
    raise RuntimeError(f"the publisher ended before {word!r}")


async def outage_killed(kind: str, n: int, tmp: Path) -> dict:
    """The publishing process is killed (-9) during the outage; a new one starts, then RabbitMQ returns."""
    import subprocess

    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"xinghe-bench-{tag}", f"xinghe_bench_{tag}"
    proxy = TcpProxy(*RABBIT)
    spool = tmp / f"spool-{tag}.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), kind, str(proxy.port), exchange, queue,
                              str(spool), str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             stderr=subprocess.DEVNULL)
    broker = None
    try:
        _read_until(child, "connected")
        proxy.down()
        child.stdin.write("go\n")
        child.stdin.flush()
        _read_until(child, "published")  # (Rasa's broker logs each failed event on stdout before)
        child.kill()
        child.wait()
        proxy.up()
        if kind == "stock":
            broker = stock(proxy, exchange, queue)
            await broker.connect()
        else:
            broker = ours(proxy, exchange, queue, spool)
        waited = await wait(lambda: _count_is(queue, n), 30)
        delivered = await queue_count(queue)
        return {"broker": kind, "publisher killed -9 during the outage": True, "events": n, "delivered": delivered,
                "lost": n - delivered, "delivered_s_after_up": None if waited != waited else round(waited, 2)}
    finally:
        if child.poll() is None:
            child.kill()
        if broker is not None:
            try:
                await asyncio.wait_for(broker.close(), 5)
            except Exception:  # noqa: BLE001
                pass
        proxy.close()
        await drop(exchange, queue)


async def _count_is(queue: str, n: int) -> bool:
    try:
        return await queue_count(queue) >= n
    except Exception:  # noqa: BLE001 - not declared yet
        return False


async def rates(n: int, tmp: Path) -> dict:
    """Spool replay with confirms, and the consumer's ingest into SQLite."""
    from bot.analytics.consumer import Consumer, Settings
    from bot.db import session_scope
    from bot.models import AnalyticsTurn

    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"xinghe-bench-{tag}", f"xinghe_bench_{tag}"
    proxy = TcpProxy(*RABBIT)
    proxy.down()
    broker = ours(proxy, exchange, queue, tmp / f"spool-{tag}.db")
    for i in range(n):
        broker.publish(event(i))
    url = f"sqlite:///{tmp / f'turns-{tag}.db'}"
    try:
        start = time.monotonic()
        proxy.up()
        replay = await wait(lambda: asyncio.sleep(0, len(broker.spool) == 0), 300)
        consumer = Consumer(Settings(queue=queue, exchange=exchange, db_url=url))
        start = time.monotonic()
        task = asyncio.create_task(consumer.run())

        async def all_in() -> bool:
            with session_scope(url) as s:
                return s.query(AnalyticsTurn).count() >= n
        ingest = await wait(all_in, 300)
        consumer.stopping.set()
        await asyncio.wait_for(task, 10)
        return {"events": n, "replay_s": round(replay, 2), "replay_events_per_s": round(n / replay),
                "ingest_s": round(ingest, 2), "ingest_events_per_s": round(n / ingest)}
    finally:
        await broker.close()
        proxy.close()
        await drop(exchange, queue)


async def cpu_per_event(kind: str, n: int, tmp: Path) -> dict:
    """CPU time of the Rasa process spent on the broker per event: ``publish`` and the background
    publishing with confirms (which shares the event loop with the patrons' turns)."""
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"xinghe-bench-{tag}", f"xinghe_bench_{tag}"
    proxy = TcpProxy(*RABBIT)
    if kind == "stock":
        broker = stock(proxy, exchange, queue)
        await broker.connect()
    else:
        broker = ours(proxy, exchange, queue, tmp / f"spool-{tag}.db")
        await wait(lambda: asyncio.sleep(0, broker.is_ready()), 15)
    try:
        cpu, wall = time.process_time(), time.monotonic()
        for i in range(n):
            broker.publish(event(i))
            if i % 10 == 9:
                await asyncio.sleep(0)  # turns come a few events at a time
        if kind == "stock":
            await wait(lambda: asyncio.sleep(0, not broker._background_tasks), 120)
        else:
            await wait(lambda: asyncio.sleep(0, len(broker.spool) == 0), 120)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        return {"broker": kind, "events": n, "cpu_us_per_event": round(cpu / n * 1e6), "wall_s": round(wall, 2),
                "in_rabbitmq": await queue_count(queue)}
    finally:
        await asyncio.wait_for(broker.close(), 10)
        proxy.close()
        await drop(exchange, queue)


async def stock_startup() -> dict:
    """Rasa's own factory with the stock defaults (20 attempts, 5 s apart) and RabbitMQ unreachable."""
    from rasa.core.brokers.broker import EventBroker
    from rasa.utils.endpoints import EndpointConfig

    proxy = TcpProxy(*RABBIT)
    proxy.down()
    start = time.monotonic()
    try:
        await EventBroker.create(EndpointConfig(url="127.0.0.1", type="pika", username="guest", password="guest",
                                                port=proxy.port, queues=["xinghe_bench_startup"]))
        outcome = "connected"
    except Exception as exc:  # noqa: BLE001
        outcome = f"{type(exc).__name__}: {exc}"
    proxy.close()
    return {"stock_startup_s": round(time.monotonic() - start, 1), "outcome": outcome}


def rasa_latency(messages: int, rounds: int = 6) -> dict:
    """A real Rasa server (newest model) with the spooling broker: REST reply latency, RabbitMQ up vs down."""
    import requests

    sys.path.insert(0, str(ROOT / "bench"))
    from _common import wait_for_model

    from tests.stack import start_stack

    model = wait_for_model()
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"xinghe-bench-{tag}", f"xinghe_bench_{tag}"
    proxy = TcpProxy(*RABBIT)
    work = Path(tempfile.mkdtemp(prefix="xinghe-bench-events-"))
    stack = start_stack(model, work, extra_env={"RABBITMQ_PASSWORD": "guest"},
                        event_broker={"type": "bot.analytics.broker.SpoolingPikaEventBroker", "url": "127.0.0.1",
                                      "port": proxy.port, "username": "guest", "password": "${RABBITMQ_PASSWORD}",
                                      "exchange_name": exchange, "queues": [queue]})
    texts = ["IMAX周六多少钱", "那周二呢", "停车怎么收费", "退票有什么规定", "今天都有什么电影"]
    out = {}
    try:
        for i in range(5):
            stack.say(f"warm-{i}", texts[i])
        # alternating rounds: on a shared machine the load drifts more between minutes than between phases
        lat: dict = {"up": [], "down": []}
        for r in range(rounds):
            for phase in (("up", "down") if r % 2 == 0 else ("down", "up")):
                (proxy.down if phase == "down" else proxy.up)()
                for i in range(messages):
                    t = time.perf_counter()
                    assert stack.say(f"{phase}-{r}-{i // 5}", texts[i % 5])
                    lat[phase].append((time.perf_counter() - t) * 1000)
        proxy.up()
        for phase, values in lat.items():
            values.sort()
            out[phase] = {"n": len(values), "p50_ms": round(statistics.median(values)),
                          "p95_ms": round(values[int(len(values) * 0.95)]), "max_ms": round(values[-1])}
        time.sleep(3)
        r = requests.get(f"{stack.rasa}/status", params={"token": stack.token}, timeout=10)
        out["rasa_status"] = r.status_code
        out["queued_in_rabbitmq"] = asyncio.run(queue_count(queue))
    finally:
        stack.stop()
        proxy.close()
        asyncio.run(drop(exchange, queue))
    # the same messages on a server without any event broker
    stack = start_stack(model, Path(tempfile.mkdtemp(prefix="xinghe-bench-nobroker-")))
    try:
        for i in range(5):
            stack.say(f"warm-{i}", texts[i])
        lat = []
        for i in range(messages * rounds):
            t = time.perf_counter()
            assert stack.say(f"none-{i // 5}", texts[i % 5])
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        out["no broker"] = {"n": len(lat), "p50_ms": round(statistics.median(lat)), "p95_ms": round(lat[int(len(lat) * 0.95)]),
                            "max_ms": round(lat[-1])}
    finally:
        stack.stop()
    return out


async def main_async(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="xinghe-bench-broker-"))
    print("== publish() cost and an outage of", args.outage, "events")
    for kind in ("stock", "ours"):
        print(await outage(kind, args.outage, False, tmp))
        print(await outage_killed(kind, args.outage, tmp))
    print("== rates")
    print(await rates(args.replay, tmp))
    print("== broker CPU in the Rasa process")
    for kind in ("stock", "ours"):
        print(await cpu_per_event(kind, args.replay, tmp))
    if args.startup:
        print("== stock PikaEventBroker start-up, RabbitMQ unreachable")
        print(await stock_startup())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outage", type=int, default=1000)
    parser.add_argument("--replay", type=int, default=10000)
    parser.add_argument("--startup", action="store_true")
    parser.add_argument("--rasa", action="store_true")
    parser.add_argument("--messages", type=int, default=10, help="per round and phase (--rasa)")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main_async(args))
    if args.rasa:
        print("== Rasa REST reply latency with the spooling broker")
        print(rasa_latency(args.messages, args.rounds))


if __name__ == "__main__":
    main()
