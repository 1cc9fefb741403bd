"""Where Redis is and how to log in, from the environment, for every part of the project that uses it (the
lock store, the tracker store, socket.io's manager, the WeChat shared state, rate limits, desk notifications).

``REDIS_URL`` (``redis://[[user]:password@]host[:port][/db]``; ``rediss://`` for TLS) when set, else
``REDIS_HOST``/``REDIS_PORT``/``REDIS_DB``. ``REDIS_PASSWORD`` (and ``REDIS_USERNAME`` for a Redis 6 ACL
user) give the credentials without putting them in a URL, and win over the URL's. With TLS the server's
certificate is checked against ``REDIS_TLS_CA`` (a CA file) or the system's CAs; ``REDIS_TLS_CERT`` and
``REDIS_TLS_KEY`` add a client certificate for servers that ask for one.

``shared_redis()`` is the connection for shared counters (rate limits, WeChat nonces), or None when Redis is
unreachable or ``XINGHE_RATELIMIT_STORE=memory``; callers then keep their state in process memory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional
from urllib.parse import quote, unquote, urlsplit


@dataclass(frozen=True)
class RedisSettings:
    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    username: Optional[str] = None
    password: Optional[str] = None
    tls: bool = False
    ca_file: Optional[str] = None
    cert_file: Optional[str] = None
    key_file: Optional[str] = None

    def client_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments of ``redis.Redis`` (sync or asyncio)."""
        kw: Dict[str, Any] = {"host": self.host, "port": self.port, "db": self.db, "username": self.username,
                              "password": self.password}
        if self.tls:
            kw.update(ssl=True, ssl_ca_certs=self.ca_file, ssl_certfile=self.cert_file, ssl_keyfile=self.key_file)
        return kw

    def client(self, **extra: Any):
        """A ``redis.Redis`` on these settings (``extra``: timeouts, ``decode_responses``…)."""
        import redis

        return redis.Redis(**{**self.client_kwargs(), **extra})

    def async_client(self, **extra: Any):
        """The same for ``redis.asyncio``."""
        import redis.asyncio as aioredis

        return aioredis.Redis(**{**self.client_kwargs(), **extra})

    def url(self) -> str:
        """A redis:// or rediss:// URL with the credentials (for clients configured by URL: socket.io's
        manager); keep it out of logs — ``safe_url`` is the one to show."""
        auth = ""
        if self.password is not None or self.username:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password or '', safe='')}@"
        return f"{'rediss' if self.tls else 'redis'}://{auth}{self.host}:{self.port}/{self.db}"

    def safe_url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}/{self.db}" + (
            " (with password)" if self.password else "")


def settings(env: Optional[Mapping[str, str]] = None) -> RedisSettings:
    """The Redis settings of this process's environment (``env`` for tests)."""
    env = os.environ if env is None else env
    url = (env.get("REDIS_URL") or "").strip()
    values: Dict[str, Any] = {"host": env.get("REDIS_HOST", "127.0.0.1"), "port": int(env.get("REDIS_PORT", "6379")),
                              "db": int(env.get("REDIS_DB", "0"))}
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError("REDIS_URL must start with redis:// or rediss:// (TLS)")
        values.update(host=parts.hostname or "127.0.0.1", port=parts.port or 6379, tls=parts.scheme == "rediss")
        path = parts.path.strip("/")
        if path:
            values["db"] = int(path)
        if parts.username:
            values["username"] = unquote(parts.username)
        if parts.password is not None:
            values["password"] = unquote(parts.password)
    elif env.get("REDIS_TLS", "").strip().lower() in ("1", "true", "yes"):
        values["tls"] = True
    if env.get("REDIS_USERNAME"):
        values["username"] = env["REDIS_USERNAME"]
    if env.get("REDIS_PASSWORD"):
        values["password"] = env["REDIS_PASSWORD"]
    for key, name in (("ca_file", "REDIS_TLS_CA"), ("cert_file", "REDIS_TLS_CERT"), ("key_file", "REDIS_TLS_KEY")):
        if env.get(name):
            values[key] = env[name]
    return RedisSettings(**values)


def client(**extra: Any):
    """A ``redis.Redis`` for this environment's Redis (``extra``: timeouts, ``decode_responses``…)."""
    return settings().client(**extra)


def async_client(**extra: Any):
    """The same as ``client`` for ``redis.asyncio``."""
    return settings().async_client(**extra)


def shared_redis():
    if os.environ.get("XINGHE_RATELIMIT_STORE", "auto") == "memory":
        return None
    try:
        c = client(socket_connect_timeout=1, socket_timeout=1)
        c.ping()
        return c
    except Exception:
        return None
