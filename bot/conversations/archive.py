"""Finished conversation sessions in SQL (PostgreSQL in production, SQLite by default).

The table is Rasa's own ``events`` table of its SQLTrackerStore (same columns, same id sequence), so the
desk's statistics, ``rasa export`` and a later switch to Rasa's SQL store all read the archived history.
An index on (sender_id, id) makes reading one patron's history an index range scan.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, Iterable, List, Optional

import sqlalchemy as sa

log = logging.getLogger(__name__)


_INDEX: Optional[sa.Index] = None


def tracker_db_url() -> str:
    """TRACKER_DB_URL, else the SQLite file the desk reads by default."""
    from bot.db import ROOT

    return os.environ.get("TRACKER_DB_URL") or f"sqlite:///{ROOT / 'var' / 'tracker.db'}"


def events_table() -> sa.Table:
    """Rasa's ``events`` table, with the (sender_id, id) index attached once."""
    global _INDEX
    from rasa.core.tracker_store import SQLTrackerStore

    table = SQLTrackerStore.SQLEvent.__table__
    if _INDEX is None:
        _INDEX = sa.Index("ix_events_sender_id_id", table.c.sender_id, table.c.id)
    return table


class Archive:
    """Appends and reads archived events of patrons (``sender_id``), in the order they happened."""

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: Dict[str, Any] = {"future": True, "pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine = sa.create_engine(url, **kwargs)
        self.table = events_table()
        self.table.metadata.create_all(self.engine, tables=[self.table])
        _INDEX.create(self.engine, checkfirst=True)   # also on a table Rasa's SQL store created

    def append(self, sender_id: str, events: Iterable[Dict[str, Any]]) -> int:
        rows = [_row(sender_id, e) for e in events]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(self.table.insert(), rows)
        return len(rows)

    def events(self, sender_id: str) -> List[Dict[str, Any]]:
        t = self.table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.data).where(t.c.sender_id == sender_id).order_by(t.c.id)).scalars()
            return [json.loads(d) for d in rows]

    def count(self, sender_id: str) -> int:
        t = self.table
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).where(t.c.sender_id == sender_id)).scalar() or 0

    def dispose(self) -> None:
        self.engine.dispose()


def _row(sender_id: str, event: Dict[str, Any]) -> Dict[str, Any]:
    intent: Optional[str] = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
    return {"sender_id": sender_id, "type_name": event.get("event"), "timestamp": event.get("timestamp"),
            "intent_name": intent, "action_name": event.get("name"),
            "data": json.dumps(event, ensure_ascii=False)}
