"""Read side of the knowledge store: a snapshot of the published version, reloaded when it changes.

Every answer asks ``KnowledgeStore.get()``, which costs one tiny query (the latest version id), so an
editor's publish shows up in the very next reply without a restart.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import func, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import sessionmaker

from bot.db import session_factory
from bot.models import Film, Hall, HallType, KnowledgeSection, KnowledgeVersion, ShowtimeRule

log = logging.getLogger(__name__)

WEEKDAY_CODES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@dataclass(frozen=True)
class FilmInfo:
    id: int
    title: str
    aliases: Tuple[str, ...]
    genre: str
    runtime_min: int
    advisory: str
    formats: Tuple[str, ...]
    synopsis: str
    director: str
    cast: Tuple[str, ...]
    language: str
    release_date: dt.date


@dataclass(frozen=True)
class HallInfo:
    number: int
    name: str
    type_code: str
    type_name: str
    seats: int
    wheelchair_seats: int
    notes: str


@dataclass(frozen=True)
class HallTypeInfo:
    code: str
    name: str
    aliases: Tuple[str, ...]
    description: str
    price_key: str


@dataclass(frozen=True)
class Showing:
    date: dt.date
    start: dt.time
    film: FilmInfo
    hall: HallInfo
    version: str

    @property
    def starts_at(self) -> dt.datetime:
        return dt.datetime.combine(self.date, self.start)


@dataclass
class Knowledge:
    """Everything the bot knows, as plain objects (safe to share between requests)."""

    version: int
    sections: Dict[str, Any]
    films: List[FilmInfo]
    halls: List[HallInfo]
    hall_types: List[HallTypeInfo]
    showtime_rules: List[Tuple[str, str, int, int, str]]  # day, start, film_id, hall_number, version
    _film_names: Dict[str, FilmInfo] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in self.films:
            for name in (f.title, *f.aliases):
                self._film_names[name.lower()] = f

    # ---- lookups
    def section(self, name: str) -> Dict[str, Any]:
        return self.sections[name]

    def film_names(self) -> Dict[str, FilmInfo]:
        """Every title and alias (lower-cased) to its film."""
        return self._film_names

    def find_film(self, text: Optional[str]) -> Optional[FilmInfo]:
        """A film by exact title/alias, else the longest title/alias contained in the text."""
        if not text:
            return None
        key = text.strip().strip("《》「」\"' ").lower()
        if key in self._film_names:
            return self._film_names[key]
        hits = [(len(n), f) for n, f in self._film_names.items() if n in key]
        return max(hits, key=lambda h: h[0])[1] if hits else None

    def hall_type(self, code: str) -> Optional[HallTypeInfo]:
        return next((t for t in self.hall_types if t.code == code), None)

    def find_hall_type(self, text: Optional[str]) -> Optional[HallTypeInfo]:
        """Hall type named by the patron (IMAX, 杜比厅, 巨幕...), by its longest matching alias."""
        if not text:
            return None
        low = text.lower()
        best: Optional[Tuple[int, HallTypeInfo]] = None
        for t in self.hall_types:
            for alias in (t.name, *t.aliases):
                if alias.lower() in low and (best is None or len(alias) > best[0]):
                    best = (len(alias), t)
        return best[1] if best else None

    def find_hall(self, text: Optional[str]) -> Optional[HallInfo]:
        if not text:
            return None
        return next((h for h in self.halls if h.name in text), None)

    def showings(self, day: dt.date) -> List[Showing]:
        """Concrete showtimes of a day from the rules (dated rules override nothing; all apply)."""
        films = {f.id: f for f in self.films}
        halls = {h.number: h for h in self.halls}
        code = WEEKDAY_CODES[day.weekday()]
        out = []
        for d, start, film_id, hall_no, version in self.showtime_rules:
            if d in ("daily", code, day.isoformat()):
                hh, mm = start.split(":")
                out.append(Showing(day, dt.time(int(hh), int(mm)), films[film_id], halls[hall_no], version))
        return sorted(out, key=lambda s: (s.start, s.hall.number))


class KnowledgeStore:
    """Caches the published snapshot per process and reloads it when a new version is published."""

    def __init__(self, factory: Optional[sessionmaker] = None):
        self._factory = factory or session_factory()
        self._lock = threading.Lock()
        self._cached: Optional[Knowledge] = None
        self._stale_since = 0.0

    def get(self) -> Knowledge:
        try:
            return self._get()
        except (OperationalError, InterfaceError, PoolTimeoutError) as exc:
            # The database is unreachable: answer from the version already loaded (nothing can be published
            # while it is down, so it is still the current one) rather than not at all.
            cached = self._cached
            if cached is None:
                raise
            if not self._stale_since:
                log.warning("knowledge store unreachable (%s); answering from version %d", type(exc).__name__,
                            cached.version)
                self._stale_since = time.monotonic()
            return cached

    def _get(self) -> Knowledge:
        with self._factory() as session:
            latest = session.execute(select(func.max(KnowledgeVersion.id))).scalar() or 0
            if self._stale_since:
                log.info("knowledge store reachable again")
                self._stale_since = 0.0
            cached = self._cached
            if cached is not None and cached.version == latest:
                return cached
            with self._lock:
                self._cached = self._load(session, latest)
                return self._cached

    @staticmethod
    def _load(session, version: int) -> Knowledge:
        if not version:
            raise LookupError("the knowledge store is empty: run `kb import` first")
        sections = {s.name: s.data for s in session.execute(select(KnowledgeSection)).scalars()}
        films = [
            FilmInfo(f.id, f.title, tuple(a.alias for a in f.aliases), f.genre, f.runtime_min, f.advisory,
                     tuple(f.hall_formats), f.synopsis, f.director, tuple(f.cast), f.language, f.release_date)
            for f in session.execute(select(Film).order_by(Film.id)).scalars()
        ]
        types = [HallTypeInfo(t.code, t.name, tuple(t.aliases), t.description, t.price_key)
                 for t in session.execute(select(HallType)).scalars()]
        names = {t.code: t.name for t in types}
        halls = [HallInfo(h.number, h.name, h.type_code, names[h.type_code], h.seats, h.wheelchair_seats, h.notes)
                 for h in session.execute(select(Hall).order_by(Hall.number)).scalars()]
        rules = [(r.day, r.start, r.film_id, r.hall_number, r.version)
                 for r in session.execute(select(ShowtimeRule)).scalars()]
        return Knowledge(version, sections, films, halls, types, rules)


_default: Optional[KnowledgeStore] = None


def default_store() -> KnowledgeStore:
    """The process-wide store on ``KNOWLEDGE_DB_URL``."""
    global _default
    if _default is None:
        _default = KnowledgeStore()
    return _default
