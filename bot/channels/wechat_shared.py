"""What the WeChat channel must agree on across Rasa instances, in Redis (memory when Redis is unreachable).

- ``RetryLedger``: WeChat retries a message it got no answer for within 5 s, and nginx may send the retry to
  another instance. The first instance to see a message claims it and runs the bot; how the answer goes out
  (``passive``: as the HTTP reply, which a retry gets again; ``api``: through the customer-service API, a
  retry gets ``success``) is decided once, by whichever instance decides first. So a retry is never
  answered by a second bot run, and an answer is never both sent passively and through the API.
- ``SharedToken``: the access token. WeChat invalidates the previous token a few minutes after a new one is
  fetched, so instances refreshing on their own would keep invalidating each other's. One token per appid
  lives in Redis with its remaining lifetime; a refresh is done by the holder of a short Redis lock while the
  others wait for its result.

- ``SharedChoices``: the numbered choices last shown to a patron (WeChat has no buttons; a reply of 「2」
  picks the second). The patron's next message may land on another instance, which must read the same list.

Shared when this process is one of several instances (``XINGHE_INSTANCE`` set, as ``make run-cluster`` does)
or ``WECHAT_SHARED_STATE=redis``; a single instance keeps them in memory (``WECHAT_SHARED_STATE=memory``
forces that). Keys: ``{prefix}:wechat:retry:{key}:claim|outcome`` (10 minutes), ``{prefix}:wechat:token:{appid}`` and
``…:lock``, ``{prefix}:wechat:choices:{openid}`` (a JSON list of payloads, 10 minutes). The stored passive reply is the bot's own text (no patron message) and expires with the retry
window.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from typing import Callable, List, Optional, Tuple

from bot.redis_conn import shared_redis

log = logging.getLogger(__name__)

RETRY_TTL_S = 600
CHOICES_TTL_S = 600
LOCK_TTL_S = 15


def _prefix() -> str:
    return os.environ.get("TRACKER_KEY_PREFIX", "xinghe")


def _shared_client():
    """Redis when the state must be shared between instances (and Redis answers), else None."""
    mode = os.environ.get("WECHAT_SHARED_STATE", "").strip().lower()
    # a cluster instance is named r1, r2 … (bot.deploy.layout); a single server's default name (rasa-5005,
    # which the event spool uses) keeps the state in this process
    clustered = bool(re.match(r"^r[0-9]{1,3}$", os.environ.get("XINGHE_INSTANCE", "").strip()))
    if mode == "memory" or (mode != "redis" and not clustered):
        return None
    client = shared_redis()
    if client is None:
        log.error("WeChat: Redis is unreachable; retries and the access token are not shared between instances")
    return client


class _Fallback:
    """Mixin: use Redis while it answers, process memory after it failed once (logged)."""

    _redis = None

    def _client(self):
        return self._redis

    def _lost(self, exc: Exception) -> None:
        log.warning("%s: Redis unavailable (%s); using this process's memory", type(self).__name__,
                    type(exc).__name__)
        self._redis = None


class RetryLedger(_Fallback):
    def __init__(self, client=None, ttl: int = RETRY_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        from bot.channels.wechat import TTLCache

        self._redis = client
        self.ttl = ttl
        self._claims: "TTLCache[str, bool]" = TTLCache(ttl, 10_000, clock)
        self._outcomes: "TTLCache[str, Tuple[str, Optional[str]]]" = TTLCache(ttl, 10_000, clock)

    @classmethod
    def from_env(cls) -> "RetryLedger":
        return cls(_shared_client())

    def _key(self, key: str, part: str) -> str:
        return f"{_prefix()}:wechat:retry:{key}:{part}"

    def claim(self, key: str) -> bool:
        """True for the first instance (and call) to see ``key``: it runs the bot."""
        client = self._client()
        if client is not None:
            try:
                return bool(client.set(self._key(key, "claim"), "1", nx=True, ex=self.ttl))
            except Exception as exc:
                self._lost(exc)
        if self._claims.get(key):
            return False
        self._claims.put(key, True)
        return True

    def decide(self, key: str, outcome: str, text: Optional[str] = None) -> Tuple[str, Optional[str]]:
        """Record ``outcome`` (``passive`` with its reply text, or ``api``) unless one was decided already;
        returns the outcome that holds."""
        value = json.dumps({"o": outcome, "t": text}, ensure_ascii=False)
        client = self._client()
        if client is not None:
            try:
                name = self._key(key, "outcome")
                if client.set(name, value, nx=True, ex=self.ttl):
                    return outcome, text
                held = self.outcome(key)
                if held is not None:
                    return held
            except Exception as exc:
                self._lost(exc)
        held = self._outcomes.get(key)
        if held is None:
            held = (outcome, text)
            self._outcomes.put(key, held)
        return held

    def outcome(self, key: str) -> Optional[Tuple[str, Optional[str]]]:
        client = self._client()
        if client is not None:
            try:
                raw = client.get(self._key(key, "outcome"))
                if raw is None:
                    return None
                data = json.loads(raw)
                return str(data["o"]), data.get("t")
            except Exception as exc:
                self._lost(exc)
        return self._outcomes.get(key)


class SharedToken(_Fallback):
    """The access token of one appid in Redis: ``get`` → (token, seconds left) or None; ``put``; a lock."""

    def __init__(self, client, appid: str) -> None:
        self._redis = client
        self.name = f"{_prefix()}:wechat:token:{appid}"
        self._owner = uuid.uuid4().hex

    @classmethod
    def from_env(cls, appid: str) -> Optional["SharedToken"]:
        client = _shared_client()
        return cls(client, appid) if client is not None else None

    @property
    def available(self) -> bool:
        return self._redis is not None

    def get(self) -> Optional[Tuple[str, float]]:
        client = self._client()
        if client is None:
            return None
        try:
            pipe = client.pipeline()
            pipe.get(self.name)
            pipe.pttl(self.name)
            raw, pttl = pipe.execute()
        except Exception as exc:
            self._lost(exc)
            return None
        if raw is None or pttl is None or pttl <= 0:
            return None
        return raw.decode("utf-8"), pttl / 1000.0

    def put(self, token: str, valid_s: float) -> None:
        client = self._client()
        if client is None:
            return
        try:
            client.set(self.name, token, px=max(1, int(valid_s * 1000)))
        except Exception as exc:
            self._lost(exc)

    def try_lock(self) -> bool:
        client = self._client()
        if client is None:
            return True
        try:
            return bool(client.set(self.name + ":lock", self._owner, nx=True, ex=LOCK_TTL_S))
        except Exception as exc:
            self._lost(exc)
            return True

    def unlock(self) -> None:
        client = self._client()
        if client is None:
            return
        try:  # only our own lock (it may have expired and been taken by another instance)
            client.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
                        "return 0", 1, self.name + ":lock", self._owner)
        except Exception as exc:
            self._lost(exc)


class SharedChoices(_Fallback):
    """Per OpenID, the payloads of the numbered choices last shown: ``put`` (an empty list forgets them: a
    newer answer without choices means digits no longer refer to the old ones) and ``get``. ``None`` from
    ``get`` with ``available`` False means "ask your own memory" (Redis is not used or went away)."""

    def __init__(self, client, ttl: int = CHOICES_TTL_S) -> None:
        self._redis = client
        self.ttl = ttl

    @classmethod
    def from_env(cls) -> Optional["SharedChoices"]:
        client = _shared_client()
        return cls(client) if client is not None else None

    @property
    def available(self) -> bool:
        return self._redis is not None

    def _key(self, openid: str) -> str:
        return f"{_prefix()}:wechat:choices:{openid}"

    def put(self, openid: str, payloads: List[str]) -> bool:
        """True when stored in Redis (False: the caller keeps them in memory)."""
        client = self._client()
        if client is None:
            return False
        try:
            if payloads:
                client.set(self._key(openid), json.dumps(list(payloads), ensure_ascii=False), ex=self.ttl)
            else:
                client.delete(self._key(openid))
            return True
        except Exception as exc:
            self._lost(exc)
            return False

    def get(self, openid: str) -> Optional[List[str]]:
        client = self._client()
        if client is None:
            return None
        try:
            raw = client.get(self._key(openid))
        except Exception as exc:
            self._lost(exc)
            return None
        if raw is None:
            return []
        try:
            data = json.loads(raw)
        except ValueError:
            return []
        return [str(p) for p in data] if isinstance(data, list) else []
