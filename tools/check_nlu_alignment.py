"""Check that every annotated entity in data/nlu/*.yml starts and ends on a jieba token boundary.

Rasa drops entity annotations that split a token, so a misaligned span silently teaches nothing.
Usage: python tools/check_nlu_alignment.py [files...]
"""
from __future__ import annotations

import glob
import re
import sys
from pathlib import Path

import jieba
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENTITY = re.compile(r"\[([^\]]+)\](\((\w+)(?::[^)]+)?\)|\{[^}]*\})")


def strip_annotations(example: str) -> tuple[str, list[tuple[int, int, str, str]]]:
    """Return plain text and (start, end, entity, value) spans."""
    text, spans, pos = "", [], 0
    for m in ENTITY.finditer(example):
        text += example[pos:m.start()]
        start = len(text)
        text += m.group(1)
        name = m.group(3) or re.search(r'"entity":\s*"(\w+)"', m.group(2)).group(1)
        spans.append((start, len(text), name, m.group(1)))
        pos = m.end()
    text += example[pos:]
    return text, spans


def main(files: list[str]) -> int:
    for d in sorted(glob.glob(str(ROOT / "data/jieba/*"))):
        jieba.load_userdict(d)
    bad = total = 0
    for f in files or sorted(glob.glob(str(ROOT / "data/nlu/*.yml"))):
        doc = yaml.safe_load(Path(f).read_text(encoding="utf-8")) or {}
        for item in doc.get("nlu", []):
            for line in str(item.get("examples", "")).splitlines():
                line = line.strip()
                if not line.startswith("- "):
                    continue
                text, spans = strip_annotations(line[2:])
                bounds = {0}
                for tok, s, e in jieba.tokenize(text):
                    bounds.update((s, e))
                for s, e, name, val in spans:
                    total += 1
                    if s not in bounds or e not in bounds:
                        bad += 1
                        toks = " / ".join(jieba.lcut(text))
                        print(f"{Path(f).name}: [{val}]({name}) misaligned in: {toks}")
    print(f"{total} entities checked, {bad} misaligned")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
