"""The web chat's socket.io server when several Rasa instances serve it.

A patron's socket lives in one Rasa process, but the message meant for it may be produced by any: the desk's
HTTP call (an agent's reply, the handoff timeout, a hand-back) reaches whichever instance nginx picked, and
that instance runs ``action_agent_message`` and emits to the session's room. Two things make that work:

- ``SOCKETIO_MANAGER=redis``: python-socketio's Redis pub/sub manager; an emit is published on the channel
  ``{TRACKER_KEY_PREFIX}:socketio`` and every instance delivers it to the sockets it holds in that room. The
  messages are JSON, not python-socketio's default pickle, so a write to Redis can never run code in Rasa.
- ``XINGHE_INSTANCE`` (e.g. ``r1``): engine.io session ids start with ``r1-``. A long-polling client sends its
  id with every request, and the nginx config (``bot.deploy.nginx``) routes ``?sid=r1-…`` to instance 1, so
  a poll never lands on a process that does not know its session (a WebSocket stays on its connection anyway).
"""
from __future__ import annotations

import json
import logging
import os
import re
from typing import Any, Dict, Optional

import engineio
import socketio
from redis.exceptions import RedisError

from bot import redis_conn

log = logging.getLogger(__name__)

MANAGER_ENV = "SOCKETIO_MANAGER"
INSTANCE_ENV = "XINGHE_INSTANCE"
_INSTANCE_RE = re.compile(r"^r[0-9]{1,3}$")


def instance_tag() -> Optional[str]:
    """This process's instance tag (``r1``, ``r2``…), or None for a single instance."""
    tag = os.environ.get(INSTANCE_ENV, "").strip()
    if not tag:
        return None
    if not _INSTANCE_RE.fullmatch(tag):
        raise RuntimeError(f"{INSTANCE_ENV} must look like r1, r2… (it prefixes engine.io session ids)")
    return tag


class TaggedEngineIO(engineio.AsyncServer):
    """engine.io server whose session ids name the instance that holds them."""

    tag: Optional[str] = None

    def generate_id(self) -> str:
        sid = super().generate_id()
        return f"{self.tag}-{sid}" if self.tag else sid


class JsonRedisManager(socketio.AsyncRedisManager):
    """python-socketio's Redis manager with JSON instead of pickle on the wire."""

    async def _publish(self, data: Any) -> Any:
        # the base class pickles; the payload of an emit is JSON already (Rasa's bot messages)
        retry = True
        while True:
            try:
                if not retry:
                    self._redis_connect()
                return await self.redis.publish(self.channel, json.dumps(data, ensure_ascii=False))
            except RedisError:
                if not retry:
                    log.error("socket.io: cannot publish to Redis; message for room %s dropped",
                              str(data.get("room"))[:12])
                    return None
                retry = False

    async def _listen(self):  # yields dicts, so the base class never unpickles anything
        async for raw in super()._listen():
            try:
                message = json.loads(raw)
            except (TypeError, ValueError):
                log.warning("socket.io: ignored a non-JSON message on %s", self.channel)
                continue
            if isinstance(message, dict):
                yield message


class ClusterSocketServer(socketio.AsyncServer):
    def _engineio_server_class(self):
        return TaggedEngineIO


def redis_options() -> Dict[str, Any]:
    """The manager's Redis (``bot.redis_conn``: REDIS_URL, REDIS_PASSWORD, TLS) as a URL and the TLS files."""
    s = redis_conn.settings()
    files = {k: v for k, v in (("ssl_ca_certs", s.ca_file), ("ssl_certfile", s.cert_file),
                               ("ssl_keyfile", s.key_file)) if v and s.tls}
    return {"url": s.url(), "redis_options": files}


def server(**kwargs: Any) -> socketio.AsyncServer:
    """The socket.io server for the web chat channel: stock for one instance, clustered when configured."""
    tag = instance_tag()
    manager = os.environ.get(MANAGER_ENV, "memory").strip().lower()
    if manager not in ("memory", "redis"):
        raise RuntimeError(f"{MANAGER_ENV} must be memory or redis")
    if manager == "redis":
        channel = os.environ.get("TRACKER_KEY_PREFIX", "xinghe") + ":socketio"
        kwargs["client_manager"] = JsonRedisManager(channel=channel, **redis_options())
        log.info("socket.io: rooms shared through Redis channel %s on %s (instance %s)", channel,
                 redis_conn.settings().safe_url(), tag or "-")
    sio = ClusterSocketServer(**kwargs)
    sio.eio.tag = tag
    return sio
