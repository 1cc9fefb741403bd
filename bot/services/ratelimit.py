"""Sliding-window counters for rate limits: Redis when reachable (shared by every process and instance),
else in process memory.

``Limiter.hit(kind, key)`` counts one event and says whether it is still within the limit of ``kind``.
Limits come from ``DEFAULT_LIMITS`` and the environment (``XINGHE_LIMIT_<KIND>=count/seconds``,
e.g. ``XINGHE_LIMIT_MESSAGE_SENDER=30/60``).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Callable, Deque, Dict, Optional, Tuple

from bot.redis_conn import shared_redis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: float


#: What one patron (sender) or one client address may do in a window.
DEFAULT_LIMITS: Dict[str, Limit] = {
    "message_sender": Limit(30, 60),     # a person types far fewer than 30 messages a minute
    "message_ip": Limit(120, 60),        # several patrons behind one NAT
    "ticket_sender": Limit(8, 3600),      # a complaint counts twice (opening and facts)
    "handoff_sender": Limit(3, 600),
    "emergency_sender": Limit(2, 600),
    "login_ip": Limit(20, 600),          # failed desk logins per client address
}


def limit_for(kind: str) -> Limit:
    raw = os.environ.get(f"XINGHE_LIMIT_{kind.upper()}", "").strip()
    if raw:
        try:
            count, seconds = raw.split("/", 1)
            return Limit(int(count), float(seconds))
        except ValueError:
            log.warning("ignoring XINGHE_LIMIT_%s=%r (want count/seconds)", kind.upper(), raw)
    return DEFAULT_LIMITS[kind]


class MemoryWindows:
    """Per-key timestamps of recent events, in this process only."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._events: Dict[str, Deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def hit(self, key: str, limit: Limit) -> Tuple[bool, int]:
        now = self._clock()
        with self._lock:
            if len(self._events) > self._max_keys:  # bounded memory under a flood of new keys
                self._events.clear()
            q = self._events[key]
            while q and now - q[0] >= limit.seconds:
                q.popleft()
            if len(q) >= limit.count:
                return False, len(q)
            q.append(now)
            return True, len(q)


class RedisWindows:
    """The same windows in Redis sorted sets, so limits hold across processes and instances."""

    _SCRIPT = """
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
    local n = redis.call('ZCARD', KEYS[1])
    if n >= tonumber(ARGV[3]) then return {0, n} end
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
    redis.call('PEXPIRE', KEYS[1], math.ceil(ARGV[2] * 1000))
    return {1, n + 1}
    """

    def __init__(self, client, prefix: Optional[str] = None) -> None:
        self._client = client
        self._script = client.register_script(self._SCRIPT)
        self._prefix = prefix or os.environ.get("XINGHE_RATELIMIT_PREFIX", "xinghe:rl")

    def hit(self, key: str, limit: Limit) -> Tuple[bool, int]:
        now = time.time()
        member = f"{now:.6f}:{os.getpid()}:{threading.get_ident()}:{time.perf_counter_ns()}"
        ok, n = self._script(keys=[f"{self._prefix}:{key}"], args=[now, limit.seconds, limit.count, member])
        return bool(ok), int(n)


class Limiter:
    """Counts events per (kind, key); falls back to memory if Redis fails mid-way (limits still apply)."""

    def __init__(self, backend=None) -> None:
        self._memory = MemoryWindows()
        self._backend = backend

    @classmethod
    def from_env(cls) -> "Limiter":
        client = shared_redis()
        return cls(RedisWindows(client) if client is not None else None)

    def hit(self, kind: str, key: Optional[str]) -> bool:
        """Count one event of ``kind`` for ``key``; False when the limit is exceeded (the event is not counted)."""
        if not key:
            return True
        limit = limit_for(kind)
        full_key = f"{kind}:{key}"
        if self._backend is not None:
            try:
                return self._backend.hit(full_key, limit)[0]
            except Exception as exc:  # Redis went away: keep limiting in this process
                log.warning("rate limits: Redis unavailable (%s); counting in memory", type(exc).__name__)
                self._backend = None
        return self._memory.hit(full_key, limit)[0]


_default: Optional[Limiter] = None
_default_lock = threading.Lock()


def default_limiter() -> Limiter:
    global _default
    with _default_lock:
        if _default is None:
            _default = Limiter.from_env()
        return _default
