"""Rasa's ``RedisLockStore`` on the Redis of ``bot.redis_conn`` (REDIS_URL / REDIS_PASSWORD / TLS).

Rasa's own ``type: redis`` takes host, port and password from endpoints.yml; this subclass takes them from
the environment when Rasa creates it (``type: bot.conversations.locks.EnvRedisLockStore``), so the password
never lands in the generated endpoints file and the lock store always talks to the same Redis as the other
services. Only ``key_prefix`` (and optionally ``socket_timeout``) come from the file.
"""
from __future__ import annotations

from typing import Any, Optional

from rasa.core.lock_store import DEFAULT_SOCKET_TIMEOUT_IN_SECONDS, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from bot.redis_conn import settings


class EnvRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, key_prefix: Optional[str] = None,
                 socket_timeout: float = DEFAULT_SOCKET_TIMEOUT_IN_SECONDS, **_: Any) -> None:
        cfg = dict(endpoint_config.kwargs) if endpoint_config is not None else {}
        s = settings()
        super().__init__(host=s.host, port=s.port, db=s.db, username=s.username, password=s.password,
                         use_ssl=s.tls, ssl_certfile=s.cert_file, ssl_keyfile=s.key_file, ssl_ca_certs=s.ca_file,
                         key_prefix=cfg.get("key_prefix", key_prefix),
                         socket_timeout=float(cfg.get("socket_timeout", socket_timeout)))
