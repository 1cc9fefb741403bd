"""A Redis connection for shared counters (rate limits, WeChat nonces), or None when Redis is unreachable or
``XINGHE_RATELIMIT_STORE=memory``; callers then keep their state in process memory."""
from __future__ import annotations

import os


def shared_redis():
    if os.environ.get("XINGHE_RATELIMIT_STORE", "auto") == "memory":
        return None
    try:
        import redis

        client = redis.Redis(host=os.environ.get("REDIS_HOST", "127.0.0.1"),
                             port=int(os.environ.get("REDIS_PORT", "6379")),
                             db=int(os.environ.get("REDIS_DB", "0")), socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        return client
    except Exception:
        return None
