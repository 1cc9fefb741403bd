"""Shared helpers for the tickets package: time zones and a race-safe "update or insert".

Convention (same as ``bot.models.utcnow``): datetimes stored in the database are naive UTC.
Functions here accept aware datetimes (any zone) or naive ones, which are taken to be UTC.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def utc_naive(value: dt.datetime | None = None) -> dt.datetime:
    """``value`` (aware, or naive UTC) as naive UTC; the current time when ``None``."""
    if value is None:
        return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    if value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def to_local(value: dt.datetime | None = None) -> dt.datetime:
    """``value`` (aware, or naive UTC) as an aware Asia/Shanghai datetime."""
    return utc_naive(value).replace(tzinfo=dt.timezone.utc).astimezone(LOCAL_TZ)


def due_label(due: dt.datetime, today: dt.date | None = None) -> str:
    """A reply deadline as the patron reads it: 「今天18:30」「明天10:00」「11月25日 10:00」 (cinema time)."""
    local = to_local(due)
    today = today or to_local().date()
    day = {0: "今天", 1: "明天"}.get((local.date() - today).days, f"{local.month}月{local.day}日 ")
    return f"{day}{local:%H:%M}"


def local_to_utc_naive(value: dt.datetime) -> dt.datetime:
    """An Asia/Shanghai wall-clock datetime (naive or aware) as naive UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    return utc_naive(value)


def update_or_insert(
    session: Session,
    model: Any,
    key: Mapping[str, Any],
    update_values: Mapping[str, Any],
    insert_values: Mapping[str, Any],
    *,
    attempts: int = 5,
) -> bool:
    """Run ``UPDATE model SET update_values WHERE key``; if no row matched, insert ``key + insert_values``.

    The UPDATE comes first so the row (PostgreSQL) or the database (SQLite) is write-locked for the
    rest of the transaction, and so pysqlite has opened its transaction before the SAVEPOINT. A
    concurrent insert of the same key is caught as ``IntegrityError`` and the UPDATE retried.
    Returns True when this call inserted the row.
    """
    table = model.__table__
    where = [table.c[name] == value for name, value in key.items()]
    for _ in range(attempts):
        result = session.execute(update(table).where(*where).values(**dict(update_values)))
        if result.rowcount:
            return False
        try:
            with session.begin_nested():
                session.execute(table.insert().values(**{**dict(key), **dict(insert_values)}))
            return True
        except IntegrityError:
            continue  # another transaction inserted it first; its row is visible now
    raise RuntimeError(f"could not update or insert {table.name} {dict(key)!r}")
