"""Rasa's SQL tracker store with the bounded working view (for `TRACKER_STORE=sql`, e.g. on PostgreSQL).

Rasa's SQLTrackerStore already appends, but every turn it counts and loads the whole current session and
Rasa then replays and ships all of it. Here the events stay in Rasa's ``events`` table (so transcripts,
``rasa export`` and the desk's statistics read them as before) and a small ``conversation_views`` table
holds, per patron, the id of the first event of the working view and the prefix standing for what came
before (see :mod:`bot.conversations.compaction`). ``retrieve`` is one primary-key read plus an index range
scan on (sender_id, id); ``save`` inserts only the turn's new events. The SQL database is the archive: no
events move. Patrons without a view row (written by Rasa's own store) are read as Rasa reads them.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Dict, List, Optional, Sequence, Text, Tuple

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

from bot.conversations import archive, compaction
from bot.conversations.view_settings import SYNC_ATTR, BoundedViewSettings, sync_of

log = logging.getLogger(__name__)

_views_metadata = sa.MetaData()
VIEWS = sa.Table(
    "conversation_views", _views_metadata,
    sa.Column("sender_id", sa.String(255), primary_key=True),
    sa.Column("offset_id", sa.Integer, nullable=False),     # events.id where the working view starts
    sa.Column("prefix", sa.Text, nullable=False),           # JSON events standing for the turns before it
)


class CompactSQLTrackerStore(BoundedViewSettings, SQLTrackerStore):
    def __init__(self, domain: Optional[Domain] = None, dialect: Text = "sqlite", host: Optional[Text] = None,
                 port: Optional[int] = None, db: Text = "rasa.db", username: Optional[Text] = None,
                 password: Optional[Text] = None, event_broker: Optional[EventBroker] = None,
                 login_db: Optional[Text] = None, query: Optional[Dict] = None, max_turns: int = 10,
                 keep_turns: int = 5, carry_over_slots: Optional[Sequence[Text]] = None,
                 session_idle_minutes: Optional[float] = None, **kwargs: Any) -> None:
        self._init_view_settings(max_turns, keep_turns, carry_over_slots, session_idle_minutes)
        super().__init__(domain, dialect, host, port, db, username, password, event_broker, login_db, query,
                         **kwargs)
        self.domain = self._domain          # through the setter: SESSION_IDLE_MINUTES
        self._resilient_engine()
        self.table = archive.events_table()
        _views_metadata.create_all(self.engine)
        archive.events_table()              # attaches the (sender_id, id) index
        archive._INDEX.create(self.engine, checkfirst=True)  # type: ignore[union-attr]

    def _resilient_engine(self) -> None:
        """Rasa's engine, plus a liveness check of pooled connections (after a database outage the first turn
        would otherwise fail on a dead connection) and a connect timeout (the store is called on the event
        loop: an unreachable server must not hold every conversation of the instance for minutes)."""
        from rasa.core.tracker_store import create_engine_kwargs
        from sqlalchemy.orm import sessionmaker

        url = self.engine.url
        if url.get_backend_name() != "postgresql":
            return
        kwargs = create_engine_kwargs(url)
        kwargs["connect_args"] = {**kwargs.get("connect_args", {}), "connect_timeout": 5}
        self.engine.dispose()
        self.engine = sa.create_engine(url, pool_pre_ping=True, **kwargs)
        self.sessionmaker = sessionmaker(bind=self.engine)

    # -- reading ------------------------------------------------------------------------------------
    def _read(self, sender_id: Text) -> Optional[Tuple[List[Dict[str, Any]], List[int], List[Dict[str, Any]]]]:
        t = self.table
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(VIEWS.c.offset_id, VIEWS.c.prefix)
                               .where(VIEWS.c.sender_id == sender_id)).first()
            if row is not None:
                rows = conn.execute(sa.select(t.c.id, t.c.data).where(t.c.sender_id == sender_id,
                                                                      t.c.id >= row.offset_id)
                                    .order_by(t.c.id)).all()
                return json.loads(row.prefix), [r.id for r in rows], [json.loads(r.data) for r in rows]
        with self.session_scope() as session:        # a conversation Rasa's own SQL store wrote
            rows = self._event_query(session, sender_id, fetch_events_from_all_sessions=False).all()
            if not rows:
                return None
            return [], [r.id for r in rows], [json.loads(r.data) for r in rows]

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        read = self._read(sender_id)
        if read is None:
            return None
        prefix, ids, tail = read
        view, own_from = prefix + tail, len(prefix)
        expired = compaction.expired_view(view, self.domain.slots, sender_id, self.idle_seconds(),
                                          self.carried_slots(), time.time())
        if expired is not None:
            view, own_from, ids = expired, len(expired), []
        tracker = DialogueStateTracker.from_dict(sender_id, view, self.domain.slots)
        setattr(tracker, SYNC_ATTR, (len(tracker.events), tuple(ids), own_from))
        return tracker

    # -- writing ------------------------------------------------------------------------------------
    async def save(self, tracker: DialogueStateTracker) -> None:
        events = list(tracker.events)
        synced, ids, own_from, replaced = sync_of(tracker, len(events), ())
        new = events[synced:]
        view_from, prefix, moved = compaction.plan_view(events, synced, own_from, replaced, self.domain.slots,
                                                        tracker.sender_id, self.max_turns, self.keep_turns)
        t = self.table
        new_ids: List[int] = []
        rows = [archive._row(tracker.sender_id, event.as_dict()) for event in new]
        with self.engine.begin() as conn:
            if rows and self.engine.dialect.name == "postgresql":
                # one round trip for the turn's events; the sequence numbers them in VALUES order
                new_ids = sorted(conn.execute(t.insert().values(rows).returning(t.c.id)).scalars())
            else:
                for row in rows:
                    new_ids.append(conn.execute(t.insert().values(**row)).inserted_primary_key[0])
            all_ids = list(ids) + new_ids           # ids of events[own_from:]
            if moved and view_from < len(events):
                offset_id = all_ids[view_from - own_from]
                conn.execute(VIEWS.delete().where(VIEWS.c.sender_id == tracker.sender_id))
                conn.execute(VIEWS.insert().values(sender_id=tracker.sender_id, offset_id=offset_id,
                                                   prefix=json.dumps(prefix or [], ensure_ascii=False)))
        if moved and view_from < len(events):
            all_ids, own_from = all_ids[view_from - own_from:], view_from
        setattr(tracker, SYNC_ATTR, (len(events), tuple(all_ids), own_from))
        if self.event_broker is not None:
            await self._stream_new_events(self.event_broker, new, tracker.sender_id)

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Streaming happens in save (only the new events; no second read of the tracker)."""
