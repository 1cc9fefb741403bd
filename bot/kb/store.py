"""Read side of the knowledge store: a snapshot of the knowledge in effect, rebuilt when that changes.

Every answer asks ``KnowledgeStore.get()``, which costs one tiny query (the id of the version in effect),
so an editor's publish, or a scheduled change reaching its moment, shows up in the very next reply without
a restart.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import sessionmaker

from bot.db import session_factory
from bot.kb import loader, timeline

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

    def film_by_name(self, name: Optional[str]) -> Optional[FilmInfo]:
        """The film a name the patron used stands for: exact, or a title/alias covering most of it
        (「星际归途吧」 yes; 「星际穿越」 is another film, not 星际归途 by its alias 星际)."""
        key = (name or "").strip().strip("《》「」\"' ").lower()
        if not key:
            return None
        if key in self._film_names:
            return self._film_names[key]
        hits = [(len(n), f) for n, f in self._film_names.items() if n in key and len(n) >= 0.75 * len(key)]
        return max(hits, key=lambda h: h[0])[1] if hits else None

    def film_misspelt(self, text: Optional[str]) -> Optional[FilmInfo]:
        """A film whose full title (4+ characters) the text spells with one character wrong (「星际归图」
        「雾都疑按」: homophone typos), when no title is spelt right in it."""
        t = (text or "").lower()
        if not t or any(f.title.lower() in t for f in self.films):
            return None
        for film in self.films:
            title = film.title.lower()
            n = len(title)
            if n < 4:
                continue
            for i in range(0, len(t) - n + 1):
                window = t[i:i + n]
                wrong = sum(a != b for a, b in zip(window, title))
                if wrong == 1 and (window[0] == title[0] or window[-1] == title[-1]):
                    return film
        return None

    def film_named(self, text: Optional[str]) -> Optional[FilmInfo]:
        """A film whose title or alias is exactly ``text`` (「星际穿越」 is not 星际归途 by its alias 星际)."""
        return self._film_names.get((text or "").strip().strip("《》「」\"' ").lower())

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


def knowledge_from_files(files: Dict[str, bytes], version: int, checked: bool = True) -> Knowledge:
    """The snapshot of a file set (``checked``: validated when published, so only parsed here)."""
    parsed = loader.validate(files, cross_check=not checked)
    sections = {name.rsplit(".", 1)[0]: json.loads(doc.json(by_alias=True))
                for name, doc in parsed.docs.items() if name != "films.yml"}
    films = [FilmInfo(i, f.title, tuple(f.aliases), f.genre, f.runtime_min, f.advisory, tuple(f.formats), f.synopsis,
                      f.director, tuple(f.cast), f.language, f.release_date)
             for i, f in enumerate(parsed.docs["films.yml"].films, start=1)]
    halls_doc = parsed.docs["halls.yml"]
    types = [HallTypeInfo(t.code, t.name, tuple(t.aliases), t.description, t.price_key) for t in halls_doc.hall_types]
    names = {t.code: t.name for t in types}
    halls = sorted((HallInfo(h.number, h.name, h.type, names[h.type], h.seats, h.wheelchair_seats, h.notes)
                    for h in halls_doc.halls), key=lambda h: h.number)
    film_ids = {f.title: f.id for f in films}
    rules = [(r.day, r.start, film_ids[r.film], r.hall, r.version) for _, r in parsed.showtimes]
    return Knowledge(version, sections, films, halls, types, rules)


class KnowledgeStore:
    """Caches the snapshot in effect per process and rebuilds it when another version takes effect: one
    published now, or a scheduled one whose moment has come (``bot.kb.timeline``), with nobody clicking."""

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
            current = timeline.current_version_id(session)
            if self._stale_since:
                log.info("knowledge store reachable again")
                self._stale_since = 0.0
            cached = self._cached
            if cached is not None and cached.version == current:
                return cached
            with self._lock:
                if self._cached is not None and self._cached.version == current:
                    return self._cached
                if not current:
                    raise LookupError("the knowledge store is empty: run `kb import` first")
                files = {k: v.encode("utf-8") for k, v in timeline.files_at(session).items()}
                try:
                    self._cached = knowledge_from_files(files, current)
                except Exception:
                    if self._cached is None:
                        raise
                    # publishing validates every moment it creates, so this is a bug: keep answering
                    log.exception("knowledge version %s does not load; still answering from version %s",
                                  current, self._cached.version)
                return self._cached


_default: Optional[KnowledgeStore] = None


def default_store() -> KnowledgeStore:
    """The process-wide store on ``KNOWLEDGE_DB_URL``."""
    global _default
    if _default is None:
        _default = KnowledgeStore()
    return _default
