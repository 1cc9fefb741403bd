"""The event broker on the real RabbitMQ (127.0.0.1:5672, on every machine here and in CI) through a TCP proxy
the test takes down: Rasa's events published by ``SpoolingPikaEventBroker`` reach the analytics turns
through the real consumer; with RabbitMQ unreachable ``publish`` still returns at once, the events wait in
the spool, survive a restart of the publishing process, and are all delivered once RabbitMQ is back."""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from bot.analytics.consumer import Consumer, Settings
from bot.db import session_scope
from bot.models import AnalyticsTurn
from tests.tcp_proxy import TcpProxy

RABBIT = ("127.0.0.1", 5672)


def _rabbit_up() -> bool:
    import socket

    try:
        socket.create_connection(RABBIT, timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture()
def names():
    if not _rabbit_up():
        pytest.fail("no RabbitMQ on 127.0.0.1:5672 (it runs on every machine, CI's included)")
    tag = uuid.uuid4().hex[:8]
    yield f"xinghe-test-{tag}", f"xinghe_test_{tag}"
    import aio_pika

    async def cleanup():
        conn = await aio_pika.connect(host=RABBIT[0], port=RABBIT[1], login="guest", password="guest")
        ch = await conn.channel()
        await ch.queue_delete(f"xinghe_test_{tag}")
        await ch.exchange_delete(f"xinghe-test-{tag}")
        await conn.close()
    asyncio.run(cleanup())


def turn_events(sender: str, ts: float, text: str):
    return [{"sender_id": sender, "event": "user", "timestamp": ts, "text": text, "input_channel": "rest",
             "parse_data": {"intent": {"name": "nlu_fallback", "confidence": 0.2}, "entities": []}},
            {"sender_id": sender, "event": "bot", "timestamp": ts + 0.1, "text": "抱歉，我没太明白～",
             "metadata": {"utter_action": "utter_rephrase"}},
            {"sender_id": sender, "event": "action", "timestamp": ts + 0.2, "name": "action_listen"}]


def turns(url: str) -> int:
    with session_scope(url) as s:
        return s.query(AnalyticsTurn).filter_by(done=True).count()


async def wait_for(predicate, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - start


def make_broker(proxy: TcpProxy, names, spool):
    from bot.analytics.broker import SpoolingPikaEventBroker

    broker = SpoolingPikaEventBroker("127.0.0.1", "guest", "guest", port=proxy.port, queues=[names[1]],
                                     exchange_name=names[0], spool=str(spool))
    broker.start()
    return broker


async def test_events_reach_the_turns_and_survive_an_outage_and_a_restart(names, tmp_path):
    url = f"sqlite:///{tmp_path / 'xinghe.db'}"
    proxy = TcpProxy(*RABBIT)
    consumer = Consumer(Settings(port=RABBIT[1], queue=names[1], exchange=names[0], db_url=url))
    consuming = asyncio.create_task(consumer.run())
    spool = tmp_path / "spool.db"
    broker = make_broker(proxy, names, spool)
    t0 = time.time()
    try:
        await wait_for(broker.is_ready, 15)
        for i in range(5):
            for e in turn_events(f"p{i}", t0 + i, f"第{i}句"):
                broker.publish(e)
        await wait_for(lambda: turns(url) == 5, 20)

        proxy.down()  # RabbitMQ unreachable for the Rasa side
        await wait_for(lambda: not broker.is_ready(), 15)
        start = time.perf_counter()
        for i in range(5, 105):
            for e in turn_events(f"p{i}", t0 + i, f"第{i}句"):
                broker.publish(e)
        per_event_ms = (time.perf_counter() - start) * 1000 / 300  # reported, not asserted (bench/event_broker.py)
        await asyncio.sleep(1.5)
        assert len(broker.spool) == 300 and turns(url) == 5

        # the Rasa process stops (supervisor restart) while RabbitMQ is still down: nothing is lost
        await broker.close()
        broker = make_broker(proxy, names, spool)
        assert len(broker.spool) == 300
        for e in turn_events("late", t0 + 200, "恢复前最后一句"):
            broker.publish(e)

        proxy.up()
        waited = await wait_for(lambda: turns(url) == 106, 60)
        assert len(broker.spool) == 0 and broker.published == 303
        print(f"replayed 303 events {waited:.1f} s after RabbitMQ was back; publish while down "
              f"{per_event_ms * 1000:.0f} µs/event")
    finally:
        await broker.close()
        consumer.stopping.set()
        await asyncio.wait_for(consuming, 10)
        proxy.close()


async def test_consumer_holds_events_while_the_database_is_down(names, tmp_path):
    """Events published while the consumer cannot write stay in RabbitMQ and arrive once it can."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'xinghe.db'}"
    from bot.db import get_engine

    engine = get_engine(url)
    proxy = TcpProxy(*RABBIT)
    broker = make_broker(proxy, names, tmp_path / "spool.db")
    consumer = Consumer(Settings(port=RABBIT[1], queue=names[1], exchange=names[0], db_url=url))
    consuming = asyncio.create_task(consumer.run())
    try:
        await wait_for(broker.is_ready, 15)
        with engine.connect() as conn:  # hold SQLite's write lock: every write of the consumer fails
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
            t0 = time.time()
            for i in range(20):
                for e in turn_events(f"q{i}", t0 + i, f"问题{i}"):
                    broker.publish(e)
            await wait_for(lambda: len(broker.spool) == 0, 20)  # RabbitMQ has them
            await asyncio.sleep(1)
            conn.exec_driver_sql("ROLLBACK")
        await wait_for(lambda: turns(url) == 20, 90)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM analytics_turn")).scalar() == 20
    finally:
        await broker.close()
        consumer.stopping.set()
        await asyncio.wait_for(consuming, 10)
        proxy.close()


PUBLISHER = r"""
import asyncio, os, signal, sys
sys.path.insert(0, sys.argv[1])
from bot.analytics.broker import SpoolingPikaEventBroker
from tests.test_event_broker import turn_events

async def main():
    broker = SpoolingPikaEventBroker("127.0.0.1", "guest", "guest", port=int(sys.argv[2]), queues=[sys.argv[4]],
                                     exchange_name=sys.argv[3], spool=sys.argv[5])
    broker.start()
    for i in range(50):
        for e in turn_events(f"k{i}", 1000.0 + i, f"句子{i}"):
            broker.publish(e)
    print("published", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close(), no flush: a crash

asyncio.run(main())
"""


async def test_events_of_a_killed_publisher_are_sent_by_the_next_one(names, tmp_path):
    """kill -9 of the Rasa process while RabbitMQ is unreachable: the spool on disk has every event."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    url = f"sqlite:///{tmp_path / 'xinghe.db'}"
    proxy = TcpProxy(*RABBIT)
    proxy.down()
    spool = tmp_path / "spool.db"
    done = subprocess.run([sys.executable, "-c", PUBLISHER, str(ROOT), str(proxy.port), names[0], names[1],
                           str(spool)], capture_output=True, text=True, timeout=60)
    assert done.returncode == -9 and "published" in done.stdout, done.stderr
    consumer = Consumer(Settings(port=RABBIT[1], queue=names[1], exchange=names[0], db_url=url))
    consuming = asyncio.create_task(consumer.run())
    proxy.up()
    broker = make_broker(proxy, names, spool)
    try:
        assert len(broker.spool) == 150
        await wait_for(lambda: turns(url) == 50, 30)
        assert len(broker.spool) == 0
    finally:
        await broker.close()
        consumer.stopping.set()
        await asyncio.wait_for(consuming, 10)
        proxy.close()
