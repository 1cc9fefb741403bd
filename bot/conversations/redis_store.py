"""A Redis tracker store whose per-turn cost does not grow with the conversation or the patron's history.

Rasa's RedisTrackerStore keeps one JSON value per patron with every session they ever had, and on every
message reads, deserialises, merges and rewrites all of it. Here each patron has

* ``{prefix}:conv:{sender}:events`` — a list of the events not yet archived, appended to (RPUSH) with only
  the new events of a turn;
* ``{prefix}:conv:{sender}:meta`` — a hash: ``archived`` (events already moved to SQL), ``offset``
  (absolute index where the working view starts), ``prefix`` (JSON events standing for what came before
  the working view, see :mod:`bot.conversations.compaction`) and ``last`` (time of the last event).

``retrieve`` reads the prefix and the events from ``offset`` on — the current session's recent turns —
in one atomic script; the tracker Rasa works on (and sends to the action server) is therefore bounded.
When the view passes ``max_turns`` turns it is cut back to ``keep_turns`` (``offset`` moves on and the
prefix is rewritten); a new session moves ``offset`` to its start. Events before ``offset`` are moved
to SQL by :mod:`bot.conversations.archiver`; ``retrieve_full_tracker`` (the desk's transcript) reads the
archive and the hot list together, so nothing is lost.

A patron whose session has expired (``session_expiration_time`` of the domain, or ``SESSION_IDLE_MINUTES``)
is handed to Rasa as a session carrying only ``carry_over_slots`` (default: phone, contact_name), so
Rasa's ``action_session_start`` starts the new session with just those.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Text, Tuple

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SerializedTrackerAsText, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

from bot.conversations import compaction
from bot.conversations.archive import tracker_db_url
from bot.conversations.view_settings import SYNC_ATTR, BoundedViewSettings, sync_of
from bot.redis_conn import settings

log = logging.getLogger(__name__)

# meta + the working view, atomically (the archiver trims the list from the left).
_RETRIEVE = """
local m = redis.call('HMGET', KEYS[1], 'archived', 'offset', 'prefix')
local archived = tonumber(m[1] or '0')
local offset = tonumber(m[2] or '0')
local llen = redis.call('LLEN', KEYS[2])
if (not m[2]) and llen == 0 then return false end
local start = offset - archived
if start < 0 then start = 0 end
return {m[3] or '[]', archived + llen, offset, redis.call('LRANGE', KEYS[2], start, -1)}
"""

# append the new events; optionally move the view (offset, prefix); note the patron as active (KEYS[3]) and,
# when events now lie before the view, for the archiver (KEYS[4]). ARGV: expected absolute count (-1: any),
# offset relative to the first new event ('keep': unchanged), prefix JSON ('': unchanged), time of the last
# event, sender id, the new events... Returns {absolute count, conflict}.
_APPEND = """
local archived = tonumber(redis.call('HGET', KEYS[1], 'archived') or '0')
local before = archived + redis.call('LLEN', KEYS[2])
local conflict = 0
if tonumber(ARGV[1]) >= 0 and tonumber(ARGV[1]) ~= before then conflict = 1 end
for i = 6, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local after = before + #ARGV - 5
if ARGV[2] ~= 'keep' then
  local offset = before + tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'offset', tostring(offset))
  if offset > archived then redis.call('SADD', KEYS[4], ARGV[5]) end
elseif not redis.call('HGET', KEYS[1], 'offset') then
  redis.call('HSET', KEYS[1], 'offset', '0')
end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'prefix', ARGV[3]) end
redis.call('HSET', KEYS[1], 'last', ARGV[4])
redis.call('PERSIST', KEYS[1])
if not redis.call('HGET', KEYS[1], 'archived') then redis.call('HSET', KEYS[1], 'archived', '0') end
redis.call('ZADD', KEYS[3], tonumber(ARGV[4]), ARGV[5])
return {after, conflict}
"""


class CompactRedisTrackerStore(BoundedViewSettings, TrackerStore, SerializedTrackerAsText):
    """Bounded working view per patron in Redis, append-only writes, finished sessions archived to SQL."""

    def __init__(self, domain: Optional[Domain] = None, host: Optional[Text] = None, port: Optional[int] = None,
                 db: Optional[int] = None, username: Optional[Text] = None, password: Optional[Text] = None,
                 event_broker: Optional[EventBroker] = None, key_prefix: Optional[Text] = "xinghe",
                 archive_url: Optional[Text] = None, max_turns: int = 10, keep_turns: int = 5,
                 carry_over_slots: Optional[Sequence[Text]] = None, session_idle_minutes: Optional[float] = None,
                 archive_interval: float = 30.0, archive_idle_minutes: Optional[float] = None,
                 hot_ttl_days: float = 30.0, start_archiver: bool = True, **kwargs: Any) -> None:
        import redis

        # where Redis is and the credentials come from the environment (bot.redis_conn: REDIS_URL,
        # REDIS_PASSWORD, TLS), so endpoints.yml carries no password; explicit arguments win (tests, tools)
        conn = settings().client_kwargs()
        conn.update({k: v for k, v in (("host", host), ("port", port), ("db", db), ("username", username),
                                       ("password", password)) if v is not None})
        self.red = redis.StrictRedis(decode_responses=True, **conn)
        self.key_prefix = key_prefix or "xinghe"
        self._init_view_settings(max_turns, keep_turns, carry_over_slots, session_idle_minutes)
        self._retrieve_script = self.red.register_script(_RETRIEVE)
        self._append_script = self.red.register_script(_APPEND)
        self.archive_url = archive_url or tracker_db_url()
        self._archive = None
        super().__init__(domain, event_broker, **kwargs)
        self.domain = self._domain          # through the setter: SESSION_IDLE_MINUTES
        self.archiver = None
        if start_archiver and self.archive_url:
            from bot.conversations.archiver import Archiver

            self.archiver = Archiver(self, interval=archive_interval, idle_minutes=archive_idle_minutes,
                                     hot_ttl_days=hot_ttl_days)
            self.archiver.start()

    # -- keys and configuration ---------------------------------------------------------------------
    def key(self, sender_id: Text, part: Text) -> Text:
        return f"{self.key_prefix}:conv:{sender_id}:{part}"

    @property
    def pending_key(self) -> Text:
        return f"{self.key_prefix}:conv-pending"     # patrons with events to archive

    @property
    def active_key(self) -> Text:
        return f"{self.key_prefix}:conv-active"      # patrons by time of their last event

    @property
    def archive(self):
        if self._archive is None and self.archive_url:
            from bot.conversations.archive import Archive

            self._archive = Archive(self.archive_url)
        return self._archive

    # -- reading ------------------------------------------------------------------------------------
    def _read(self, sender_id: Text) -> Optional[Tuple[List[Dict[str, Any]], int, int, List[Dict[str, Any]]]]:
        raw = self._retrieve_script(keys=[self.key(sender_id, "meta"), self.key(sender_id, "events")])
        if not raw:
            return None
        prefix_json, absolute, offset, tail = raw
        return json.loads(prefix_json), int(absolute), int(offset), [json.loads(e) for e in tail]

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The working view of the current session (an expired one as the carried-over slots only)."""
        read = self._read(sender_id)
        if read is None:
            return None
        prefix, absolute, _offset, tail = read
        view = prefix + tail
        own_from = len(prefix)
        expired = compaction.expired_view(view, self.domain.slots, sender_id, self.idle_seconds(),
                                          self.carried_slots(), time.time())
        if expired is not None:
            view, own_from = expired, len(expired)
        tracker = DialogueStateTracker.from_dict(sender_id, view, self.domain.slots)
        setattr(tracker, SYNC_ATTR, (len(tracker.events), absolute, own_from))
        return tracker

    async def retrieve_full_tracker(self, conversation_id: Text) -> Optional[DialogueStateTracker]:
        """Every event of the patron: archived sessions (SQL) and the hot list, in order."""
        archived: List[Dict[str, Any]] = []
        if self.archive is not None:
            archived = self.archive.events(conversation_id)
        hot = [json.loads(e) for e in self.red.lrange(self.key(conversation_id, "events"), 0, -1)]
        if not archived and not hot:
            return await self.retrieve(conversation_id)
        return DialogueStateTracker.from_dict(conversation_id, archived + hot, self.domain.slots)

    async def keys(self) -> Iterable[Text]:
        head, tail = f"{self.key_prefix}:conv:", ":meta"
        return [k[len(head):-len(tail)] for k in self.red.scan_iter(match=f"{head}*{tail}", count=1000)]

    async def exists(self, conversation_id: Text) -> bool:
        return bool(self.red.exists(self.key(conversation_id, "meta"), self.key(conversation_id, "events")))

    # -- writing ------------------------------------------------------------------------------------
    async def save(self, tracker: DialogueStateTracker) -> None:
        events = list(tracker.events)
        # a replaced conversation's earlier events stay in the list, for the archive
        synced, expected, own_from, replaced = sync_of(tracker, len(events), -1)
        new = events[synced:]
        view_from, prefix, moved = compaction.plan_view(events, synced, own_from, replaced, self.domain.slots,
                                                        tracker.sender_id, self.max_turns, self.keep_turns)
        # offset is sent relative to the first new event (the script knows the absolute count).
        offset_arg = str(view_from - synced) if moved else "keep"
        now = events[-1].timestamp if events else time.time()
        args = [expected, offset_arg, json.dumps(prefix, ensure_ascii=False) if prefix is not None else "", now,
                tracker.sender_id]
        args += [json.dumps(e.as_dict(), ensure_ascii=False) for e in new]
        keys = [self.key(tracker.sender_id, "meta"), self.key(tracker.sender_id, "events"), self.active_key,
                self.pending_key]
        absolute, conflict = self._append_script(keys=keys, args=args)
        if conflict:
            log.warning("tracker store: conversation %s changed under this server; appended %d events",
                        tracker.sender_id[:8], len(new))
        setattr(tracker, SYNC_ATTR, (len(events), int(absolute), view_from))
        if self.event_broker is not None:
            await self._stream_new_events(self.event_broker, new, tracker.sender_id)

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Streaming happens in save (only the new events; no second read of the tracker)."""
