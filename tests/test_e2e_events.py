"""Conversation events through the real servers: Rasa's event broker (bot.analytics.broker) to RabbitMQ, the
consumer into the analytics turns the desk statistics and the review queue read. RabbitMQ unreachable
(the proxy in front of it down): patrons are still answered, the events wait in the Rasa server's spool and
all arrive once it is back."""
from __future__ import annotations

import sqlite3
import time

import pytest
import requests

from bot.analytics import read
from bot.review import queue
from bot.db import session_scope
from bot.models import AnalyticsTurn

pytestmark = pytest.mark.e2e
NONSENSE = ["asdkjh qwe zzv", "量子纠缠怎么解释", "嗯嗯那个就是", "停太久了费用咋算"]


def _turns(stack, prefix: str):
    with session_scope(stack.db_url) as s:
        return [(t.sender_id, t.text, t.done, t.missed) for t in
                s.query(AnalyticsTurn).filter(AnalyticsTurn.sender_id.like(f"{prefix}%")).order_by(AnalyticsTurn.ts)]


def _wait(predicate, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.2)
    return time.monotonic() - start


def _spooled(stack) -> int:
    path = stack.workdir / f"event-spool-rasa-{stack.rasa_port}.db"
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM spool").fetchone()[0]
    finally:
        con.close()


def test_turns_reach_the_statistics_and_survive_a_rabbitmq_outage(stack):
    proxy = stack.events["proxy"]
    assert stack.text("ev-a", "停车怎么收费")
    for i, t in enumerate(NONSENSE):  # out of scope, small talk, perhaps not understood
        assert stack.text(f"ev-m{i}", t)
    _wait(lambda: [d for *_, d, _m in _turns(stack, "ev-a")] == [True]
          and len([x for x in _turns(stack, "ev-m") if x[2]]) == len(NONSENSE), 30)

    proxy.down()
    try:
        spooled_before = _spooled(stack)
        slow = []
        for sender, text in (("ev-b", "IMAX周六多少钱"), ("ev-b", "那周二呢"), ("ev-c", "退票有什么规定")):
            start = time.perf_counter()
            assert stack.text(sender, text), text  # answered while RabbitMQ is unreachable
            slow.append(time.perf_counter() - start)
        time.sleep(1)
        assert _turns(stack, "ev-b") == [] and _spooled(stack) > spooled_before
    finally:
        proxy.up()
    waited = _wait(lambda: len(_turns(stack, "ev-b")) == 2 and len(_turns(stack, "ev-c")) == 1, 60)
    assert _spooled(stack) == 0
    print(f"replies while RabbitMQ was down: {', '.join(f'{x * 1000:.0f} ms' for x in slow)}; events "
          f"delivered {waited:.1f} s after it came back")

    assert [t for _, t, *_ in _turns(stack, "ev-b")] == ["IMAX周六多少钱", "那周二呢"]
    # the turns are what Rasa's own tracker says: the same messages, intents and misses the review queue
    # found when it read the tracker store (bot.review.queue.missed_messages)
    senders = ["ev-a", "ev-b", "ev-c"] + [f"ev-m{i}" for i in range(len(NONSENSE))]
    trackers = [(x, requests.get(f"{stack.rasa}/conversations/{x}/tracker", params={"token": stack.token},
                                 timeout=30).json()["events"]) for x in senders]
    expected = [(x, e["text"], e["parse_data"]["intent"]["name"]) for x, events in trackers for e in events
                if e["event"] == "user"]
    with session_scope(stack.db_url) as s:
        got = [(t.sender_id, t.text, t.intent) for t in s.query(AnalyticsTurn).filter(
            AnalyticsTurn.sender_id.in_(senders)).order_by(AnalyticsTurn.sender_id, AnalyticsTurn.ts)]
        missed = sorted((m.sender_id, m.text) for m in read.missed_messages(s, time.time() - 600)
                        if m.sender_id in senders)
    assert got == sorted(expected, key=lambda x: x[0]) and len(got) == 4 + len(NONSENSE)
    assert missed == sorted((m.sender_id, m.text) for m in queue.missed_messages(trackers))
