"""Rasa's pika event broker with a durable spool, so analytics never slow a reply nor lose an event.

Rasa 3.6's ``PikaEventBroker`` (rasa/core/brokers/pika.py) behaves like this when RabbitMQ is unreachable:

- at start-up ``connect()`` tries ``connection_attempts`` (20) times ``retry_delay_in_seconds`` (5 s) apart
  and then raises, so the Rasa server does not come up for 100 s and then fails to start at all;
- later, a failed publish puts the event in an in-memory deque, replayed when the robust connection is back:
  the events of an outage are lost if the process stops before RabbitMQ returns (a crash, a restart, the
  supervisor's kill).

Here ``publish`` (called by the tracker store inside a patron's turn) only appends the event to a local
SQLite file (WAL; ``bench/event_broker.py`` measures its cost per event) and wakes a background task; that
task connects (retrying for ever, with back-off, never blocking start-up), publishes the spooled events in
order with publisher confirms, and deletes them only once RabbitMQ has confirmed them. An outage, a crash
or a restart in the meantime leaves the events in the spool for the next run; a delivery repeated after a
crash between confirm and delete is harmless (the consumer's writes are idempotent,
``bot.analytics.ingest``). Exchange, queue and message format are Rasa's, so any Rasa event consumer reads
them.

endpoints.yml::

    event_broker:
      type: bot.analytics.broker.SpoolingPikaEventBroker
      url: 127.0.0.1
      port: 5672
      username: guest
      password: ${RABBITMQ_PASSWORD}
      exchange_name: xinghe-events
      queues: [xinghe_events]

The spool is ``$XINGHE_VAR_DIR/event-spool-$XINGHE_INSTANCE.db`` (``spool:`` overrides it): one file per
Rasa process, locked while it runs.
"""
from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple

import aio_pika
from rasa.core.brokers.pika import PikaEventBroker

log = logging.getLogger(__name__)

BATCH = 500               # events per round of publishing
PUBLISH_TIMEOUT_S = 10.0  # a confirm not back by then: the connection is taken as dead
CONNECT_TIMEOUT_S = 5.0
MAX_RETRY_S = 30.0
CLOSE_FLUSH_S = 3.0       # at shutdown, how long to try sending what is spooled (the rest waits in the file)


def default_spool_path() -> Path:
    var = Path(os.environ.get("XINGHE_VAR_DIR") or Path(__file__).resolve().parents[2] / "var")
    # a cluster instance's name (r1, r2 …), else the server's own (rasa-5005, set by bot.services.rasa_server)
    instance = os.environ.get("XINGHE_INSTANCE") or os.environ.get("XINGHE_SPOOL_NAME") or f"pid{os.getpid()}"
    return var / f"event-spool-{instance}.db"


class Spool:
    """Events not yet confirmed by RabbitMQ, in publishing order, in a SQLite file only this process uses."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.path.with_suffix(".lock"), "w")
        try:  # two processes draining one spool would publish every event twice and race on deletes
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RuntimeError(f"event spool {self.path} is in use by another process: give each Rasa "
                               f"process its own XINGHE_INSTANCE (or XINGHE_SPOOL_NAME)") from None
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # patrons' messages: owner only
        os.close(fd)
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash; one fsync per checkpoint
        self.db.execute("CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")

    def add(self, body: str) -> None:
        self.db.execute("INSERT INTO spool (body) VALUES (?)", (body,))

    def peek(self, limit: int) -> List[Tuple[int, str]]:
        return self.db.execute("SELECT id, body FROM spool ORDER BY id LIMIT ?", (limit,)).fetchall()

    def remove_through(self, last_id: int) -> None:
        self.db.execute("DELETE FROM spool WHERE id <= ?", (last_id,))

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM spool").fetchone()[0])

    def close(self) -> None:
        self.db.close()
        self._lock.close()


class SpoolingPikaEventBroker(PikaEventBroker):
    """``PikaEventBroker`` whose ``publish`` writes to a local spool and returns; see the module docstring."""

    def __init__(self, host: Text, username: Text, password: Text, port: int = 5672,
                 queues: Any = None, spool: Optional[Text] = None, **kwargs: Any) -> None:
        kwargs.pop("should_keep_unpublished_messages", None)  # the spool is what keeps them
        super().__init__(host, username, password, port=port, queues=queues, **kwargs)
        self.spool = Spool(Path(spool) if spool else default_spool_path())
        self._wake = asyncio.Event()
        self._task: Optional[asyncio.Task] = None
        self._closing = False
        self._connected_since: Optional[float] = None
        self.published = 0
        self.failures = 0

    @classmethod
    async def from_endpoint_config(cls, broker_config, event_loop=None) -> Optional["SpoolingPikaEventBroker"]:
        """Create the broker and start publishing in the background: Rasa starts whether RabbitMQ is up or not."""
        if broker_config is None:
            return None
        broker = cls(broker_config.url, **broker_config.kwargs, event_loop=event_loop)
        broker.start()
        return broker

    def start(self) -> None:
        backlog = len(self.spool)
        if backlog:
            log.info("event broker: %d events spooled by an earlier run will be published", backlog)
        self._task = self._loop.create_task(self._run())

    # -- Rasa's side ------------------------------------------------------------------------------
    def publish(self, event: Dict[Text, Any], headers: Optional[Dict[Text, Text]] = None) -> None:
        """Spool the event (a few tens of µs) and let the background task send it."""
        self.spool.add(json.dumps(event))
        self._wake.set()

    def is_ready(self) -> bool:
        """True while connected to RabbitMQ (events are accepted, spooled, either way)."""
        return self._connected_since is not None

    def status(self) -> Dict[str, Any]:
        return {"connected": self.is_ready(), "spooled": len(self.spool), "published": self.published,
                "failures": self.failures}

    async def close(self) -> None:
        """Send what can be sent within ``CLOSE_FLUSH_S``; the rest stays spooled for the next start."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_FLUSH_S)
            except (asyncio.TimeoutError, Exception):
                self._task.cancel()
        await self._disconnect()
        left = len(self.spool)
        if left:
            log.warning("event broker: %d events stay spooled in %s for the next start", left, self.spool.path)
        self.spool.close()

    # -- the background task ----------------------------------------------------------------------
    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                if self._exchange is None:
                    await self._disconnect()  # what is left of a lost connection
                    await self._open()
                    delay = 0.5
                batch = self.spool.peek(BATCH)
                if not batch:
                    if self._closing:
                        return
                    self._wake.clear()
                    if not len(self.spool):
                        try:
                            await asyncio.wait_for(self._wake.wait(), 5.0)
                        except asyncio.TimeoutError:
                            pass
                    continue
                await self._send(batch)
                self.spool.remove_through(batch[-1][0])
                self.published += len(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # RabbitMQ down, restarting, refusing: keep the spool, try again later
                self.failures += 1
                if self._connected_since is not None or self.failures == 1:
                    log.warning("event broker: RabbitMQ unavailable (%s: %s); events are spooled (%d) and "
                                "sent when it is back", type(exc).__name__, exc, len(self.spool))
                await self._disconnect()
                if self._closing:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_S)

    async def _open(self) -> None:
        url = self._configure_url()
        self._connection = await asyncio.wait_for(aio_pika.connect(
            url=url, host=self.host, port=self.port, login=self.username, password=self.password,
            timeout=CONNECT_TIMEOUT_S), CONNECT_TIMEOUT_S + 1)
        self._connection.close_callbacks.add(self._lost)
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._set_up_exchange(channel)  # Rasa's: fanout exchange, durable queues bound
        self._connected_since = time.monotonic()
        log.info("event broker: connected to RabbitMQ at %s:%s (%d events spooled)", self.host, self.port,
                 len(self.spool))

    async def _send(self, batch: List[Tuple[int, str]]) -> None:
        """Publish in order on one channel and wait for every confirm (RabbitMQ has then written them)."""
        env = self.rasa_environment
        confirms = await asyncio.wait_for(asyncio.gather(*(
            self._exchange.publish(aio_pika.Message(body.encode("utf-8"), app_id=env,
                                                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT), "")
            for _id, body in batch)), PUBLISH_TIMEOUT_S)
        for confirm in confirms:
            if confirm is not None and type(confirm).__name__ != "Ack":
                raise RuntimeError(f"RabbitMQ did not take an event ({type(confirm).__name__})")

    def _lost(self, *_: Any) -> None:
        """The connection closed (RabbitMQ stopped, the network dropped): reconnect without waiting for the
        next event to find out."""
        if self._connected_since is not None and not self._closing:
            log.warning("event broker: lost the connection to RabbitMQ; events are spooled meanwhile")
        self._exchange, self._connected_since = None, None
        self._wake.set()

    async def _disconnect(self) -> None:
        connection, self._connection, self._exchange, self._connected_since = self._connection, None, None, None
        if connection is not None:
            try:
                await asyncio.wait_for(connection.close(), 2.0)
            except Exception:  # already gone
                pass
