"""Which knowledge is in effect when: versions with effective times, computed per file.

Every version keeps its whole file set, when it takes effect (now, or a scheduled moment such as "the new
price from Friday 00:00") and which files it changed. The knowledge in effect at a moment is, for each file,
its text in the latest version (by effective time, then id) that changed it and was in effect then. So a
scheduled version needs nobody and no process to "switch it on": from its moment on, every reader computes
it as current; and an unrelated change published meanwhile is not undone when it takes effect.

The *current version* is the one that took effect last; its id is what the bot's caches key on.
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from bot.kb import schema
from bot.models import KnowledgeEffect, KnowledgeVersion, utcnow


@dataclass(frozen=True)
class Entry:
    """One version on the timeline (its files are loaded only when needed)."""

    id: int
    created_at: dt.datetime
    effective_at: dt.datetime
    changed: Optional[Tuple[str, ...]]  # None: every file (versions from before scheduling)
    cancelled: bool
    author: str
    comment: str

    @property
    def key(self) -> Tuple[dt.datetime, int]:
        return self.effective_at, self.id

    def touches(self, name: str) -> bool:
        return self.changed is None or name in self.changed

    def pending(self, now: dt.datetime) -> bool:
        return not self.cancelled and self.effective_at > now


def _effective_at():
    return func.coalesce(KnowledgeEffect.effective_at, KnowledgeVersion.created_at)


def entries(session: Session) -> List[Entry]:
    """Every version, in the order they take effect."""
    rows = session.execute(
        select(KnowledgeVersion.id, KnowledgeVersion.created_at, KnowledgeEffect.effective_at, KnowledgeEffect.changed,
               KnowledgeEffect.cancelled_at, KnowledgeVersion.author, KnowledgeVersion.comment)
        .outerjoin(KnowledgeEffect, KnowledgeEffect.version_id == KnowledgeVersion.id)).all()
    out = [Entry(r[0], r[1], r[2] or r[1], tuple(r[3]) if r[3] is not None else None, r[4] is not None, r[5], r[6])
           for r in rows]
    return sorted(out, key=lambda e: e.key)


def entry(session: Session, version_id: int) -> Optional[Entry]:
    return next((e for e in entries(session) if e.id == version_id), None)


@functools.lru_cache(maxsize=1)
def _current_version_query():
    # Built once: the Rasa server runs this query for every message (KnowledgeVocabulary), and building the
    # statement and its cache key each time cost more than running it (0.77 vs 0.28 ms per check).
    eff = _effective_at()
    return (select(KnowledgeVersion.id)
            .outerjoin(KnowledgeEffect, KnowledgeEffect.version_id == KnowledgeVersion.id)
            .where(KnowledgeEffect.cancelled_at.is_(None), eff <= bindparam("at"))
            .order_by(eff.desc(), KnowledgeVersion.id.desc()).limit(1))


def current_version_id(session: Session, at: Optional[dt.datetime] = None) -> int:
    """The version that took effect last by ``at`` (now by default); 0 when none did. One small query."""
    row = session.execute(_current_version_query(), {"at": at or utcnow()}).first()
    return row[0] if row else 0


def _fold(session: Session, chosen: List[Entry]) -> Dict[str, str]:
    """Each file's text from the last of ``chosen`` (in effect order) that changed it."""
    files: Dict[str, str] = {}
    loaded: Dict[int, Dict[str, str]] = {}
    for e in reversed(chosen):
        wanted = [n for n in schema.ALL_FILES if n not in files and e.touches(n)]
        if not wanted:
            continue
        if e.id not in loaded:
            loaded[e.id] = session.get(KnowledgeVersion, e.id).files
        for name in wanted:
            if name in loaded[e.id]:
                files[name] = loaded[e.id][name]
        if len(files) == len(schema.ALL_FILES):
            break
    return files


def files_at(session: Session, at: Optional[dt.datetime] = None) -> Dict[str, str]:
    """The knowledge files in effect at ``at`` (now by default)."""
    at = at or utcnow()
    return _fold(session, [e for e in entries(session) if not e.cancelled and e.effective_at <= at])


def files_before(session: Session, version: Entry) -> Dict[str, str]:
    """The files as they were just before ``version`` took effect (what it changed them from)."""
    return _fold(session, [e for e in entries(session) if not e.cancelled and e.key < version.key])


def files_through(session: Session, version: Entry) -> Dict[str, str]:
    """The files as they were once ``version`` took effect (before anything after it)."""
    return _fold(session, [e for e in entries(session) if not e.cancelled and e.key <= version.key])


def pending(session: Session, after: Optional[dt.datetime] = None) -> List[Entry]:
    """Scheduled versions not yet in effect (or taking effect after ``after``), in effect order."""
    after = after or utcnow()
    return [e for e in entries(session) if not e.cancelled and e.effective_at > after]
