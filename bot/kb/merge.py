"""Three-way merge of one knowledge file's text, line by line (as ``git merge`` does, without conflict markers).

Used to undo one version's change of a file on top of later changes (``base`` = the file after that
version, ``ours`` = the file now, ``theirs`` = the file before it) and to carry an immediate change into a
scheduled version that was prepared before it.
"""
from __future__ import annotations

import difflib
from typing import List, Optional, Tuple

Hunk = Tuple[int, int, List[str]]  # base lines [start, end) replaced by these lines


def _hunks(base: List[str], other: List[str]) -> List[Hunk]:
    sm = difflib.SequenceMatcher(None, base, other, autojunk=False)
    out: List[Hunk] = []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:  # line for line: neighbouring fields stay separate changes
            out += [(i1 + k, i1 + k + 1, other[j1 + k:j1 + k + 1]) for k in range(i2 - i1)]
        else:
            out.append((i1, i2, other[j1:j2]))
    return out


def _clash(a: Hunk, b: Hunk) -> bool:
    """Both sides touch the same base lines (or insert at the same place): no order of the two is right."""
    (s1, e1, r1), (s2, e2, r2) = a, b
    if (s1, e1, r1) == (s2, e2, r2):
        return False  # the same change on both sides
    if s1 == s2:
        return True
    if s1 < e2 and s2 < e1:
        return True
    return (s1 == e1 and s2 < s1 < e2) or (s2 == e2 and s1 < s2 < e1)


def merge3(base: str, ours: str, theirs: str) -> Optional[str]:
    """``ours`` with the change from ``base`` to ``theirs`` applied; ``None`` when both changed the same lines."""
    if ours == theirs or base == theirs:
        return ours
    if base == ours:
        return theirs
    b = base.splitlines(keepends=True)
    mine = _hunks(b, ours.splitlines(keepends=True))
    other = _hunks(b, theirs.splitlines(keepends=True))
    if any(_clash(x, y) for x in mine for y in other):
        return None
    out: List[str] = []
    pos = 0
    for start, end, lines in sorted({(s, e, tuple(r)) for s, e, r in mine + other}):
        out += b[pos:start]
        out += list(lines)
        pos = end
    out += b[pos:]
    return "".join(out)
