"""The event consumer: Rasa's conversation events from RabbitMQ into the analytics turns.

    python -m bot.analytics.consumer          (make run starts it; one or more per deployment)

Reads the durable queue the Rasa servers publish to (``EVENT_QUEUE``, default ``xinghe_events``, bound to
the fanout exchange ``EVENT_EXCHANGE``, default ``xinghe-events``), applies the events in batches
(``bot.analytics.ingest``) to the project's database (``KNOWLEDGE_DB_URL``) and acknowledges a batch only
after its transaction committed. The database unreachable: the batch is retried with back-off and stays
unacknowledged in RabbitMQ meanwhile; RabbitMQ unreachable: reconnects with back-off. Either way nothing is lost and no patron waits for any of it.

RabbitMQ: ``RABBITMQ_HOST`` (127.0.0.1), ``RABBITMQ_PORT`` (5672), ``RABBITMQ_USER`` (guest) and
``RABBITMQ_PASSWORD`` (guest) from the environment.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import aio_pika
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.analytics import ingest
from bot.db import database_url, session_scope

log = logging.getLogger("bot.analytics.consumer")

#: The exchange the Rasa servers publish to (endpoints.yml ``exchange_name``): not Rasa's default
#: ``rasa-exchange``, which other bots on the same RabbitMQ may use; fanout, so more consumers can bind.
DEFAULT_EXCHANGE = "xinghe-events"
DEFAULT_QUEUE = "xinghe_events"
BATCH = 200
LINGER_S = 0.2     # a batch waits at most this long for more events
MAX_RETRY_S = 30.0


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 5672
    user: str = "guest"
    password: str = "guest"
    queue: str = DEFAULT_QUEUE
    exchange: str = DEFAULT_EXCHANGE
    db_url: Optional[str] = None

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        return cls(host=env.get("RABBITMQ_HOST", "127.0.0.1"), port=int(env.get("RABBITMQ_PORT", "5672")),
                   user=env.get("RABBITMQ_USER", "guest"), password=env.get("RABBITMQ_PASSWORD", "guest"),
                   queue=env.get("EVENT_QUEUE", DEFAULT_QUEUE), exchange=env.get("EVENT_EXCHANGE", DEFAULT_EXCHANGE),
                   db_url=database_url())


def decode(body: bytes) -> Optional[Dict[str, Any]]:
    try:
        event = json.loads(body)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def write(db_url: str, events: List[Dict[str, Any]]) -> ingest.Applied:
    """Apply one batch in one transaction; an event the ingest cannot take is skipped (logged), not retried
    for ever. Connection errors propagate: the caller retries the batch."""
    try:
        with session_scope(db_url) as s:
            return ingest.apply(s, events)
    except (OperationalError, DBAPIError) as exc:
        if getattr(exc, "connection_invalidated", False) or isinstance(exc, OperationalError):
            raise
        bad = exc
    except Exception as exc:  # noqa: BLE001 - a malformed event; find it
        bad = exc
    log.error("analytics: a batch failed (%s); applying its %d events one by one", bad, len(events))
    total = ingest.Applied()
    for event in events:
        try:
            with session_scope(db_url) as s:
                one = ingest.apply(s, [event])
            total.turns += one.turns
            total.flags += one.flags
        except (OperationalError,):
            raise
        except Exception as exc:  # noqa: BLE001
            total.ignored += 1
            log.error("analytics: skipped an event of %s (%s): %s", str(event.get("sender_id"))[:8],
                      event.get("event"), exc)
    return total


class Consumer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db_url = settings.db_url or database_url()
        self.stopping = asyncio.Event()
        self.applied = 0
        self.batches = 0

    async def run(self) -> None:
        delay = 0.5
        while not self.stopping.is_set():
            connection = None
            try:
                connection = await aio_pika.connect(host=self.settings.host, port=self.settings.port,
                                                    login=self.settings.user, password=self.settings.password,
                                                    timeout=5)
                channel = await connection.channel()
                await channel.set_qos(prefetch_count=BATCH * 2)
                exchange = await channel.declare_exchange(self.settings.exchange, aio_pika.ExchangeType.FANOUT)
                queue = await channel.declare_queue(self.settings.queue, durable=True)
                await queue.bind(exchange, "")
                log.info("analytics: consuming %s on %s:%s into %s", self.settings.queue, self.settings.host,
                         self.settings.port, self.db_url.split("@")[-1])
                await self._consume(channel, queue)
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - RabbitMQ down or restarting
                log.warning("analytics: RabbitMQ unavailable (%s: %s); retrying in %.1f s", type(exc).__name__,
                            exc, delay)
            finally:
                if connection is not None:
                    try:
                        await asyncio.wait_for(connection.close(), 2)
                    except Exception:  # noqa: BLE001
                        pass
            if not self.stopping.is_set():
                try:
                    await asyncio.wait_for(self.stopping.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                delay = min(delay * 2, MAX_RETRY_S)

    async def _consume(self, channel, queue) -> None:
        inbox: asyncio.Queue = asyncio.Queue()
        closed = asyncio.Event()
        channel.close_callbacks.add(lambda *_: closed.set())
        tag = await queue.consume(inbox.put_nowait)
        try:
            while not self.stopping.is_set() and not closed.is_set():
                batch = await self._collect(inbox, closed)
                if batch:
                    await self._apply(batch)
            if closed.is_set():
                raise ConnectionError("channel closed")
        finally:
            if not closed.is_set():
                try:
                    await queue.cancel(tag)
                except Exception:  # noqa: BLE001
                    pass

    async def _collect(self, inbox: asyncio.Queue, closed: asyncio.Event) -> list:
        batch = []
        try:
            batch.append(await asyncio.wait_for(inbox.get(), 1.0))
        except asyncio.TimeoutError:
            return batch
        deadline = time.monotonic() + LINGER_S
        while len(batch) < BATCH and not closed.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(inbox.get(), left))
            except asyncio.TimeoutError:
                break
        return batch

    async def _apply(self, batch: list) -> None:
        """Write the batch (retrying while the database is unreachable), then acknowledge it."""
        events = [e for e in (decode(m.body) for m in batch) if e is not None]
        if len(events) < len(batch):
            log.error("analytics: %d messages were not JSON events; dropped", len(batch) - len(events))
        delay = 0.5
        while True:
            try:
                applied = await asyncio.to_thread(write, self.db_url, events)
                break
            except Exception as exc:  # noqa: BLE001 - the database is down: hold the batch, unacknowledged
                log.warning("analytics: database unavailable (%s); %d events held, retrying in %.1f s",
                            type(exc).__name__, len(events), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_S)
        await batch[-1].ack(multiple=True)
        self.applied += len(events)
        self.batches += 1
        log.debug("analytics: %d events (%d new turns)", len(events), applied.turns)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.analytics.consumer", description=__doc__.split("\n")[0])
    parser.add_argument("--queue", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s")
    settings = Settings.from_env()
    if args.queue:
        settings.queue = args.queue
    from bot.db import get_engine

    get_engine(settings.db_url)  # the schema (bot.migrate) before the first batch

    async def run() -> None:
        consumer = Consumer(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, consumer.stopping.set)
        await consumer.run()
        log.info("analytics: stopped after %d events", consumer.applied)
    asyncio.run(run())


if __name__ == "__main__":
    main()
