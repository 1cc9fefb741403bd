"""Fold what patrons type into the plain Simplified Chinese the bot was trained on, keeping a map back
to the original characters.

Steps, in order: NFKC (full-width ＩＭＡＸ/１３８ → IMAX/138), Traditional → Simplified with OpenCC,
upper-case Latin letters (imax/Imax → IMAX, as the training data writes them), drop emoji and spaces
between Chinese characters, collapse runs of one repeated character or punctuation mark (never digits: phone numbers), then the editable lexicon of
``knowledge/lexicon.yml`` (Cantonese colloquialisms 幾多→多少, chat abbreviations tp→退票, common typos
推票→退票). Every output character remembers the span of the patron's text it came from, so entity
spans found on the folded text can be mapped back to what the patron actually wrote.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, List, Optional, Sequence, Tuple

CJK = re.compile(r"[\u3400-\u9fff]")
LATIN = re.compile(r"[A-Z]")
RUN_MIN = 3  # 「好好好好」→「好」; 「谢谢」「看看」 stay


@dataclass(frozen=True)
class Folded:
    """The folded text and, for each of its characters, the [start, end) span in the original."""

    original: str
    text: str
    spans: Tuple[Tuple[int, int], ...]

    def original_span(self, start: int, end: int) -> Tuple[int, int]:
        """The span of the original text behind folded characters [start, end)."""
        if not self.spans or start >= end:
            return start, end
        start = min(max(start, 0), len(self.spans) - 1)
        end = min(max(end, start + 1), len(self.spans))
        return self.spans[start][0], self.spans[end - 1][1]


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def _is_emoji(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat == "So" or cat == "Cs" or ch in "\u200d\ufe0f\ufe0e"


class Lexicon:
    """Phrase replacements matched longest first; Latin abbreviations only as whole words."""

    def __init__(self, pairs: Iterable[Tuple[str, str]] = ()) -> None:
        cleaned = [(_simple(src), dst) for src, dst in pairs if src and dst and src != dst]
        self.pairs = sorted(cleaned, key=lambda p: -len(p[0]))
        parts = []
        for src, _ in self.pairs:
            if LATIN.fullmatch(src[0]) and LATIN.fullmatch(src[-1]):
                parts.append(rf"(?<![A-Z]){re.escape(src)}(?![A-Z])")
            else:
                parts.append(re.escape(src))
        self.pattern = re.compile("|".join(parts)) if parts else None
        self.table = dict(self.pairs)

    def __bool__(self) -> bool:
        return bool(self.pairs)


def lexicon_from_section(section: Optional[dict]) -> Lexicon:
    """The lexicon of the published ``lexicon.yml`` (empty without one)."""
    entries = (section or {}).get("entries") or []
    return Lexicon((variant, e["to"]) for e in entries for variant in e["variants"])


def _simple(text: str) -> str:
    """NFKC + Simplified + upper-case Latin, for lexicon keys (so an editor may write them either way)."""
    return _t2s().convert(unicodedata.normalize("NFKC", text)).upper()


def fold(text: str, lexicon: Optional[Lexicon] = None) -> Folded:
    chars: List[str] = []
    spans: List[Tuple[int, int]] = []
    # 1. NFKC per character, so each output character knows its source.
    for i, ch in enumerate(text):
        for out in unicodedata.normalize("NFKC", ch):
            chars.append(out)
            spans.append((i, i + 1))
    # 2. Traditional → Simplified: whole string when the length is kept (phrase-aware), else per character.
    joined = "".join(chars)
    converted = _t2s().convert(joined)
    if len(converted) != len(joined):
        converted = "".join(c if len(c) == 1 else ch for ch, c in ((ch, _t2s().convert(ch)) for ch in joined))
    chars = [c.upper() if len(c.upper()) == 1 else c for c in converted]
    # 3. Drop emoji and spaces next to Chinese characters; collapse runs.
    kept_c: List[str] = []
    kept_s: List[Tuple[int, int]] = []
    for idx, ch in enumerate(chars):
        if _is_emoji(ch):
            # an emoji the lexicon names (🆘 → SOS) says something; the rest are decoration
            word = lexicon.table.get(ch) if lexicon else None
            if word:
                kept_c.extend(word)
                kept_s.extend([spans[idx]] * len(word))
            continue
        if ch.isspace():
            prev = kept_c[-1] if kept_c else ""
            nxt = chars[idx + 1] if idx + 1 < len(chars) else ""
            if not prev or not nxt or CJK.match(prev) or CJK.match(nxt) or prev.isspace():
                continue
        kept_c.append(ch)
        kept_s.append(spans[idx])
    chars, spans = _collapse_runs(kept_c, kept_s)
    # 4. Lexicon: colloquialisms, abbreviations, typos.
    if lexicon and lexicon.pattern is not None:
        chars, spans = _apply_lexicon("".join(chars), spans, lexicon)
    return Folded(text, "".join(chars), tuple(spans))


def _collapse_runs(chars: Sequence[str], spans: Sequence[Tuple[int, int]]):
    out_c: List[str] = []
    out_s: List[Tuple[int, int]] = []
    i = 0
    while i < len(chars):
        j = i
        while j + 1 < len(chars) and chars[j + 1] == chars[i]:
            j += 1
        if j - i + 1 >= RUN_MIN and not chars[i].isdigit():
            out_c.append(chars[i])
            out_s.append((spans[i][0], spans[j][1]))
        else:
            out_c.extend(chars[i:j + 1])
            out_s.extend(spans[i:j + 1])
        i = j + 1
    return out_c, out_s


def _apply_lexicon(text: str, spans: Sequence[Tuple[int, int]], lexicon: Lexicon):
    out_c: List[str] = []
    out_s: List[Tuple[int, int]] = []
    pos = 0
    for m in lexicon.pattern.finditer(text):
        out_c.extend(text[pos:m.start()])
        out_s.extend(spans[pos:m.start()])
        replacement = lexicon.table[m.group(0)]
        span = (spans[m.start()][0], spans[m.end() - 1][1])
        out_c.extend(replacement)
        out_s.extend([span] * len(replacement))
        pos = m.end()
    out_c.extend(text[pos:])
    out_s.extend(spans[pos:])
    return out_c, out_s
