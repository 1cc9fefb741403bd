"""Film titles and aliases from the published knowledge store, shared by the NLU components.

KnowledgeVocabulary, first in the pipeline, checks the store's version on every message (one tiny
query) so a title an editor publishes is known to the very next message; the later components reuse
that check (``refresh=False``) and fall back to a one-second check when used on their own. Without a store (e.g. the pipeline benchmarked on other
data) everything here is empty and the components do nothing.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional, Pattern, Tuple

from bot.text.normalise import Lexicon, lexicon_from_section

logger = logging.getLogger(__name__)
REFRESH_SECONDS = 1.0


@dataclass
class Names:
    version: int = -1
    films: List[Tuple[str, str]] = field(default_factory=list)  # (lower-cased, surface), longest first
    order_id: Optional[Pattern[str]] = None
    lexicon: Lexicon = field(default_factory=Lexicon)
    emergency_cues: Tuple[str, ...] = ()
    rule_words: Tuple[str, ...] = ()

    def film_spans(self, text: str) -> List[Tuple[int, int]]:
        """Non-overlapping spans of known titles/aliases in ``text`` (longest names win)."""
        low = text.lower()
        spans: List[Tuple[int, int]] = []
        for name, _ in self.films:
            start = low.find(name)
            while start != -1:
                span = (start, start + len(name))
                if not any(s < span[1] and span[0] < e for s, e in spans):
                    spans.append(span)
                start = low.find(name, start + 1)
        return sorted(spans)


_lock = threading.Lock()
_names = Names()
_checked = 0.0
_warned = False


def current(refresh: bool = False) -> Names:
    global _names, _checked, _warned
    now = time.monotonic()
    if not refresh and now - _checked < REFRESH_SECONDS:
        return _names
    with _lock:
        _checked = now
        try:
            from bot.kb.store import default_store

            k = default_store().get()
        except Exception as exc:
            if not _warned:
                logger.warning("knowledge store unavailable; film names from the store are off: %s", exc)
                _warned = True
            return _names
        if k.version != _names.version:
            names = {n.lower(): n for f in k.films for n in (f.title, *f.aliases)}
            fmt = k.section("orders")["order_id"]
            prefix = "".join(f"[{c.upper()}{c.lower()}]" for c in fmt["prefix"])
            _names = Names(k.version, sorted(names.items(), key=lambda item: -len(item[0])),
                           re.compile(rf"(?<![A-Za-z0-9]){prefix}\d{{{fmt['digits']}}}(?!\d)"),
                           lexicon_from_section(k.sections.get("lexicon")),
                           tuple(k.section("complaints")["emergency"].get("cues") or ()),
                           tuple(k.section("complaints")["emergency"].get("rule_words") or ()))
            _teach_jieba(_names)
    return _names


def _teach_jieba(names: Names) -> None:
    """New titles become single jieba tokens in this process (the tokenizer uses jieba's global dictionary)."""
    try:
        import jieba

        for _, surface in names.films:
            jieba.add_word(surface, freq=3000)
    except Exception:  # pragma: no cover - jieba is part of this pipeline
        logger.exception("could not add film names to jieba")
