"""Moves events out of the hot Redis store into the SQL archive, off the patrons' path.

Two kinds of work, every ``interval`` seconds (a daemon thread of the Rasa server, or ``--once`` from cron):

* patrons in ``{prefix}:conv-pending`` have events before their working view (a finished session, or
  turns cut off a long one): those events are copied to SQL, then trimmed from the Redis list;
* patrons idle for longer than the session expiry have their whole view folded into the meta hash (the
  state as a session-start prefix plus their last turn, which Rasa needs to see that the session expired),
  so everything in their list moves to SQL and Redis keeps a few kB per patron — for ``hot_ttl_days``
  (30): a patron back after that starts without carried-over slots; their history stays in SQL.

Copy first, trim second: a crash in between leaves the events in both places (shown twice on the desk),
never in neither. A per-patron Redis lock keeps two archivers (two Rasa servers) off the same patron.

    python -m bot.conversations.archiver --once          # one pass with the settings of var/endpoints.yml
"""
from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, List, Optional

from rasa.shared.core.events import deserialise_events

from bot.conversations import compaction

if TYPE_CHECKING:
    from bot.conversations.redis_store import CompactRedisTrackerStore

log = logging.getLogger(__name__)

# events before the view: {archived, list items}; nothing if there are none
_TAKE = """
local archived = tonumber(redis.call('HGET', KEYS[1], 'archived') or '0')
local offset = tonumber(redis.call('HGET', KEYS[1], 'offset') or '0')
local n = offset - archived
if n <= 0 then return {archived, {}} end
return {archived, redis.call('LRANGE', KEYS[2], 0, n - 1)}
"""

# trim what was copied, if nobody else did meanwhile; a patron with nothing left in the list keeps only the
# meta hash, for ARGV[3] seconds (their history is all in SQL). ARGV: archived when taken, count, ttl
_TRIM = """
local archived = tonumber(redis.call('HGET', KEYS[1], 'archived') or '0')
if archived ~= tonumber(ARGV[1]) then return 0 end
redis.call('LTRIM', KEYS[2], tonumber(ARGV[2]), -1)
redis.call('HINCRBY', KEYS[1], 'archived', tonumber(ARGV[2]))
if redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[2])
  if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) end
end
return 1
"""

# fold an idle patron's view into the prefix, unless they wrote meanwhile. ARGV: absolute count, prefix JSON
_FOLD = """
local archived = tonumber(redis.call('HGET', KEYS[1], 'archived') or '0')
if archived + redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'prefix', ARGV[2], 'offset', ARGV[1])
return 1
"""


class Archiver:
    def __init__(self, store: "CompactRedisTrackerStore", interval: float = 30.0,
                 idle_minutes: Optional[float] = None, batch: int = 200, hot_ttl_days: float = 30.0) -> None:
        self.store = store
        self.hot_ttl = int(hot_ttl_days * 86400)
        self.interval = interval
        self.idle_minutes = idle_minutes
        self.batch = batch
        red = store.red
        self._take = red.register_script(_TAKE)
        self._trim = red.register_script(_TRIM)
        self._fold = red.register_script(_FOLD)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- the loop -----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="tracker-archiver", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - Redis or SQL down: try again next round
                log.warning("archiver: %s: %s", type(exc).__name__, exc)

    def run_once(self) -> int:
        """One pass: fold idle patrons, then archive pending ones. Returns the number of events moved."""
        self.fold_idle()
        moved = 0
        while True:
            senders = self.store.red.spop(self.store.pending_key, self.batch) or []
            if not senders:
                return moved
            for sender in senders:
                try:
                    moved += self.archive_sender(sender)
                except Exception:
                    self.store.red.sadd(self.store.pending_key, sender)   # again next round
                    raise

    # -- one patron ---------------------------------------------------------------------------------
    def _locked(self, sender: str) -> bool:
        return bool(self.store.red.set(self.store.key(sender, "archiving"), "1", nx=True, ex=300))

    def _unlock(self, sender: str) -> None:
        self.store.red.delete(self.store.key(sender, "archiving"))

    def archive_sender(self, sender: str) -> int:
        """Copies the events before the patron's working view to SQL and trims them from Redis."""
        archive = self.store.archive
        if archive is None or not self._locked(sender):
            return 0
        try:
            keys = [self.store.key(sender, "meta"), self.store.key(sender, "events")]
            archived, items = self._take(keys=keys)
            if not items:
                return 0
            archive.append(sender, [json.loads(i) for i in items])
            if not self._trim(keys=keys, args=[archived, len(items), self.hot_ttl]):
                log.warning("archiver: %s changed while archiving; its events may be archived twice", sender[:8])
            return len(items)
        finally:
            self._unlock(sender)

    def idle_cutoff(self) -> Optional[float]:
        if self.idle_minutes is not None:
            return time.time() - self.idle_minutes * 60
        idle = self.store.idle_seconds()
        return time.time() - idle if idle is not None else None

    def fold_idle(self) -> int:
        """Folds patrons idle past the cut-off so that their whole list can be archived."""
        cutoff = self.idle_cutoff()
        if cutoff is None:
            return 0
        folded = 0
        for sender in self.store.red.zrangebyscore(self.store.active_key, "-inf", cutoff, start=0, num=self.batch):
            if self.fold(sender):
                folded += 1
            self.store.red.zrem(self.store.active_key, sender)
        return folded

    def fold(self, sender: str) -> bool:
        read = self.store._read(sender)
        if read is None:
            return False
        prefix, absolute, offset, tail = read
        if not tail:
            return False
        view = prefix + tail
        last_user = next((i for i in range(len(view) - 1, -1, -1) if view[i].get("event") == "user"), None)
        if last_user is None:
            state: List[dict] = [e.as_dict() for e in compaction.state_prefix(
                deserialise_events(view), self.store.domain.slots, sender)]
        else:
            state = [e.as_dict() for e in compaction.state_prefix(
                deserialise_events(view[:last_user]), self.store.domain.slots, sender)] + view[last_user:]
        keys = [self.store.key(sender, "meta"), self.store.key(sender, "events")]
        if not self._fold(keys=keys, args=[absolute, json.dumps(state, ensure_ascii=False)]):
            return False           # the patron wrote meanwhile: still active
        self.store.red.sadd(self.store.pending_key, sender)
        return True


def main(argv=None) -> int:
    import os

    import yaml
    from rasa.shared.core.domain import Domain

    from bot.db import ROOT
    from bot.conversations.redis_store import CompactRedisTrackerStore

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", default=str(ROOT / "var" / "endpoints.yml"))
    parser.add_argument("--domain", default=str(ROOT / "domain.yml"))
    parser.add_argument("--once", action="store_true", help="one pass, then exit (default: loop)")
    args = parser.parse_args(argv)
    cfg = dict((yaml.safe_load(open(args.endpoints, encoding="utf-8")) or {}).get("tracker_store") or {})
    if not str(cfg.pop("type", "")).endswith("CompactRedisTrackerStore"):
        raise SystemExit(f"{args.endpoints}: the tracker store is not CompactRedisTrackerStore; nothing to archive")
    store = CompactRedisTrackerStore(Domain.load(args.domain), host=cfg.pop("url", None),
                                     start_archiver=False, **cfg)
    archiver = Archiver(store, interval=float(cfg.get("archive_interval", 30.0)),
                        idle_minutes=cfg.get("archive_idle_minutes"), hot_ttl_days=float(cfg.get("hot_ttl_days", 30)))
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    if args.once:
        print(f"moved {archiver.run_once()} events to {store.archive_url}")
        return 0
    archiver._loop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
