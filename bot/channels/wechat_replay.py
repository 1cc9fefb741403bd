"""Replay protection for WeChat webhook calls.

WeChat signs ``token + timestamp + nonce`` and, in plaintext mode, not the body: a signed URL seen once (in a
log, a proxy) would otherwise carry any message from anyone for ever. So a call is accepted only with a
timestamp within ``WINDOW_S`` of now and a nonce this server has not seen with a different body in that
window. WeChat's own retries repeat the call unchanged and are let through (the channel deduplicates them).
The nonces live in Redis when it is reachable, so the rule holds across Rasa instances.
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
from typing import Callable, Optional

from bot.redis_conn import shared_redis

log = logging.getLogger(__name__)

WINDOW_S = 300
_DIGITS = re.compile(r"[0-9]{1,12}")


def timestamp_fresh(timestamp: Optional[str], now: Optional[float] = None, window: int = WINDOW_S) -> bool:
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses (a 500 found by bench/fuzz.py)
    if not timestamp or not _DIGITS.fullmatch(timestamp):
        return False
    now = time.time() if now is None else now
    return abs(now - int(timestamp)) <= window


class NonceMemory:
    """``nonce → body digest`` for the last two windows (a nonce can be replayed until its timestamp is stale)."""

    def __init__(self, ttl: float = 2 * WINDOW_S, max_entries: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from bot.channels.wechat import TTLCache

        self._cache: "TTLCache[str, str]" = TTLCache(ttl, max_entries, clock)

    def claim(self, key: str, digest: str) -> bool:
        seen = self._cache.get(key)
        if seen is None:
            self._cache.put(key, digest)
            return True
        return seen == digest


class NonceRedis:
    def __init__(self, client, ttl: int = 2 * WINDOW_S) -> None:
        self._client = client
        self._ttl = ttl

    def claim(self, key: str, digest: str) -> bool:
        name = f"xinghe:wechat:nonce:{key}"
        if self._client.set(name, digest, nx=True, ex=self._ttl):
            return True
        seen = self._client.get(name)
        return seen is not None and seen.decode("ascii", "replace") == digest


class ReplayGuard:
    """``accept(timestamp, nonce, signature, body)``: fresh and not a replay with another body."""

    def __init__(self, store=None) -> None:
        self._memory = NonceMemory()
        self._store = store

    @classmethod
    def from_env(cls) -> "ReplayGuard":
        client = shared_redis()
        return cls(NonceRedis(client) if client is not None else None)

    def accept(self, timestamp: Optional[str], nonce: Optional[str], body: bytes) -> bool:
        if not timestamp_fresh(timestamp) or not nonce or len(nonce) > 64:
            return False
        key = f"{timestamp}:{nonce}"
        digest = hashlib.sha256(body).hexdigest()
        if self._store is not None:
            try:
                return self._store.claim(key, digest)
            except Exception as exc:
                log.warning("WeChat nonce store unavailable (%s); remembering nonces in memory", type(exc).__name__)
                self._store = None
        return self._memory.claim(key, digest)
