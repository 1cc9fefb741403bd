"""Generate NLU assets from the knowledge store: the jieba user dictionary and lookup tables.

Run before training (``make run``/``make test`` do): ``python -m bot.nlu.assets``.
Titles, aliases and hall names become single jieba tokens so entity spans align with tokens;
compounds such as 学生票 are split (frequency 0 deletes jieba's own entry) so 学生 can be tagged.
"""
from __future__ import annotations

import re

import argparse
from pathlib import Path
from typing import Iterable, List

from bot.kb.store import Knowledge, default_store

ROOT = Path(__file__).resolve().parents[2]
DICT_DIR = ROOT / "data" / "jieba"
LOOKUP_FILE = ROOT / "data" / "nlu" / "lookups.yml"

# Words jieba merges that patrons use across an entity boundary (found with tools/check_nlu_alignment.py).
SPLIT = ["今天下午", "今天上午", "今天晚上", "明天下午", "明天上午", "明天晚上", "坐轮椅", "人想", "巨幕版",
         "imax3D", "IMAX3D", "昨天晚上", "今天天气",
         "包忘", "副耳机", "一个包", "点才",
         "昨天上午", "昨天下午", "昨天中午", "昨天早上", "今天中午", "昨天夜里", "共享充电宝"]


def _variants(word: str) -> List[str]:
    out = {word, word.lower(), word.upper()}
    return sorted(w for w in out if w.strip())


def user_dictionary(k: Knowledge) -> List[str]:
    words: dict[str, str] = {}

    def add(items: Iterable[str], tag: str) -> None:
        for item in items:
            for v in _variants(item):
                if " " not in v:
                    words.setdefault(v, f"{v} 3000 {tag}")

    for f in k.films:
        add([f.title, *f.aliases], "nz")
    for t in k.hall_types:
        add([t.name, *t.aliases], "nz")
        add([a + "厅" for a in t.aliases if not a.endswith("厅") and not a.isdigit()], "nz")
    add([h.name for h in k.halls], "nz")
    for t in k.section("prices")["ticket_types"]:
        add([a for a in t["aliases"] if len(a) > 1 and not a.endswith("票")], "n")
        for a in [t["name"], *t["aliases"]]:
            if not a.endswith("票"):
                words[a + "票"] = f"{a}票 0"
    # aliases only: names such as 免费WiFi or VIP休息区 would swallow a hall_type or facility span
    add([a for f in k.section("facilities")["facilities"] for a in f["aliases"] if len(a) <= 4 and "哪" not in a], "n")
    add([lv["name"] for lv in k.section("membership")["levels"]], "n")
    add(["会员日"], "n")
    for w in SPLIT:
        words[w] = f"{w} 0"
    return sorted(words.values())


# The facility lookup lists what names a facility (母婴室, WiFi, 寄存处), not every word that finds its answer
# (爆米花, 密码, 没电): those are no facility entity, and a lookup hit teaches DIET to tag them as one.
FACILITY_NAME = re.compile(r"(室|区|处|间|柜|台|部|梯|席位|厕所|茅房|WC|充电宝|眼镜|眼睛|寄存|存包)$|wi-?fi|无线网", re.I)


def lookups_yaml(k: Knowledge) -> str:
    tables = {
        "film": sorted({n for f in k.films for n in (f.title, *f.aliases)}),
        "hall_type": sorted({a for t in k.hall_types for a in (t.name, *t.aliases)}),
        "hall": [h.name for h in k.halls],
        "facility": sorted({a for f in k.section("facilities")["facilities"] for a in (f["name"], *f["aliases"])
                            if FACILITY_NAME.search(a)}),
    }
    lines = ['version: "3.1"', "# Generated from the knowledge store by bot/nlu/assets.py; do not edit.", "nlu:"]
    for name, values in tables.items():
        lines += [f"- lookup: {name}", "  examples: |"] + [f"    - {v}" for v in values]
    return "\n".join(lines) + "\n"


def write_assets(k: Knowledge | None = None) -> None:
    k = k or default_store().get()
    DICT_DIR.mkdir(parents=True, exist_ok=True)
    (DICT_DIR / "userdict.txt").write_text("\n".join(user_dictionary(k)) + "\n", encoding="utf-8")
    LOOKUP_FILE.write_text(lookups_yaml(k), encoding="utf-8")


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    write_assets()
    print(f"wrote {DICT_DIR / 'userdict.txt'} and {LOOKUP_FILE}")


if __name__ == "__main__":
    main()
