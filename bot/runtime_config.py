"""Write the run-time endpoints and credentials files from the committed ones plus the environment.

Secrets (WeChat) and machine facts (is Redis reachable?) never go into the repository's YAML.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

from bot import redis_conn
from bot.db import ROOT


def redis_reachable() -> bool:
    try:
        return bool(redis_conn.client(socket_connect_timeout=1).ping())
    except Exception:
        return False


#: Seconds a conversation is kept in the Redis tracker store after its last event (30 days).
DEFAULT_TRACKER_EXPIRY_S = 30 * 24 * 3600


def tracker_expiry_s() -> Optional[int]:
    """``TRACKER_EXPIRY_S`` (default 30 days); ``0`` keeps conversations for ever."""
    value = int(os.environ.get("TRACKER_EXPIRY_S", str(DEFAULT_TRACKER_EXPIRY_S)))
    return value if value > 0 else None


def endpoints() -> Dict[str, Any]:
    data = yaml.safe_load((ROOT / "endpoints.yml").read_text(encoding="utf-8")) or {}
    if os.environ.get("ACTION_ENDPOINT_URL"):
        data["action_endpoint"] = {"url": os.environ["ACTION_ENDPOINT_URL"]}
    # Rasa resolves ${...} from its environment when it reads the file, so the secret is never written down.
    data.setdefault("action_endpoint", {})["headers"] = {"X-Xinghe-Action-Token": "${XINGHE_ACTION_TOKEN}"}
    store = os.environ.get("TRACKER_STORE", "auto")
    prefix = os.environ.get("TRACKER_KEY_PREFIX", "xinghe")
    if store == "redis" or (store == "auto" and redis_reachable()):
        # Bounded per-turn work and per-patron size; finished sessions go to TRACKER_DB_URL. Redis's address,
        # password and TLS and the database's password are read by the store from the environment
        # (bot.redis_conn), so no password lands in this file.
        data["tracker_store"] = {"type": "bot.conversations.redis_store.CompactRedisTrackerStore",
                                 "key_prefix": prefix}
        expiry = tracker_expiry_s()
        if expiry:  # an idle patron's hot state expires after TRACKER_EXPIRY_S (their events stay archived)
            data["tracker_store"]["hot_ttl_days"] = expiry / 86400
    elif store == "rasa-redis":
        # Rasa's own Redis store (one JSON value per patron, rewritten every turn): for comparisons.
        data["tracker_store"] = {**rasa_redis_settings(), "type": "redis", "key_prefix": prefix,
                                 "record_exp": tracker_expiry_s()}
    elif store in ("sql", "rasa-sql"):
        # sql: Rasa's events table with the bounded working view; rasa-sql: Rasa's own SQL store.
        data["tracker_store"] = sql_tracker_store(os.environ.get("TRACKER_DB_URL")
                                                  or f"sqlite:///{ROOT / 'var' / 'tracker.db'}")
        if store == "sql":
            data["tracker_store"]["type"] = "bot.conversations.sql_store.CompactSQLTrackerStore"
    broker = event_broker()
    if broker:
        data["event_broker"] = broker
    lock = lock_store(prefix)
    if lock:
        data["lock_store"] = lock
    return data


def event_broker() -> Optional[Dict[str, Any]]:
    """Rasa's pika broker with the project's spool (bot.analytics.broker) unless ``EVENT_BROKER=none``. On
    whether RabbitMQ is reachable now or not: the spool keeps the events until it is. The password stays in
    the environment (``RABBITMQ_PASSWORD``; Rasa expands it when it reads the file)."""
    if os.environ.get("EVENT_BROKER", "pika") == "none":
        return None
    from bot.analytics.consumer import DEFAULT_EXCHANGE, DEFAULT_QUEUE

    return {"type": "bot.analytics.broker.SpoolingPikaEventBroker",
            "url": os.environ.get("RABBITMQ_HOST", "127.0.0.1"), "port": int(os.environ.get("RABBITMQ_PORT", "5672")),
            "username": os.environ.get("RABBITMQ_USER", "guest"), "password": "${RABBITMQ_PASSWORD}",
            "exchange_name": os.environ.get("EVENT_EXCHANGE", DEFAULT_EXCHANGE),
            "queues": [os.environ.get("EVENT_QUEUE", DEFAULT_QUEUE)]}



def rasa_redis_settings() -> Dict[str, Any]:
    """Address and TLS of Redis for Rasa's own Redis stores; the password as ``${REDIS_PASSWORD}``, which
    Rasa expands from its environment when it reads the file (so it needs REDIS_PASSWORD, not a password
    inside REDIS_URL)."""
    s = redis_conn.settings()
    out: Dict[str, Any] = {"url": s.host, "port": s.port, "db": s.db}
    if s.username:
        out["username"] = s.username
    if s.password:
        if not os.environ.get("REDIS_PASSWORD"):
            raise SystemExit("TRACKER_STORE=rasa-redis: give Redis's password in REDIS_PASSWORD (Rasa's own store "
                             "reads it from the environment), not inside REDIS_URL")
        out["password"] = "${REDIS_PASSWORD}"
    if s.tls:
        out.update(use_ssl=True, **{k: v for k, v in (("ssl_ca_certs", s.ca_file), ("ssl_certfile", s.cert_file),
                                                      ("ssl_keyfile", s.key_file)) if v})
    return out


def lock_store(prefix: str) -> Optional[Dict[str, Any]]:
    """``LOCK_STORE=redis`` (``make run-cluster``): Rasa's RedisLockStore, so two instances never process
    messages of one conversation at the same time and they are handled in arrival order. One instance keeps
    Rasa's in-memory lock store (the default). The lock's lifetime is ``TICKET_LOCK_LIFETIME`` (Rasa reads
    it from the environment; scripts/run-cluster.sh explains the value). The store is Rasa's RedisLockStore
    connected to the Redis of ``bot.redis_conn`` (REDIS_URL, REDIS_PASSWORD, TLS), read from the environment
    by ``bot.conversations.locks`` so the password is never written here."""
    kind = os.environ.get("LOCK_STORE", "memory").strip().lower()
    if kind == "memory":
        return None
    if kind != "redis":
        raise SystemExit("LOCK_STORE must be memory or redis")
    if not prefix.isalnum():  # Rasa ignores a prefix with other characters and would share keys silently
        raise SystemExit("TRACKER_KEY_PREFIX must be letters and digits only (it is the lock store's key_prefix)")
    return {"type": "bot.conversations.locks.EnvRedisLockStore", "key_prefix": prefix}


def sql_tracker_store(url: str) -> Dict[str, Any]:
    """Rasa's SQLTrackerStore settings for a SQLAlchemy URL (the password stays in the environment: Rasa
    expands ``${TRACKER_DB_PASSWORD}`` when it reads the file)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return {"type": "SQL", "dialect": "sqlite", "db": u.database}
    cfg: Dict[str, Any] = {"type": "SQL", "dialect": u.drivername, "url": u.host or "127.0.0.1",
                           "port": u.port or 5432, "db": u.database}
    if u.username:
        cfg["username"] = u.username
    if u.password:
        cfg["password"] = "${TRACKER_DB_PASSWORD}"
    return cfg


def credentials() -> Dict[str, Any]:
    data = yaml.safe_load((ROOT / "credentials.yml").read_text(encoding="utf-8")) or {}
    if os.environ.get("WECHAT_TOKEN"):
        # No secret in the file: the channel reads WECHAT_TOKEN/APPID/SECRET/AES_KEY from the environment.
        data["bot.channels.wechat.WeChatInput"] = {
            "api_base": os.environ.get("WECHAT_API_BASE", "https://api.weixin.qq.com"),
        }
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "var"))
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    _write_private(out / "endpoints.yml", yaml.safe_dump(endpoints(), allow_unicode=True))
    _write_private(out / "credentials.yml", yaml.safe_dump(credentials(), allow_unicode=True))
    print(out)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read, never readable by others even for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode otherwise
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
