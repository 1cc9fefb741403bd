"""Slips that are valid knowledge but probably not meant: warnings an editor confirms before publishing.

Only what a change brings is questioned (a value the change did not touch is not warned about again):
an hourly parking fee above the daily cap, a dated showtime already past, a base price far from what it
was or outside any cinema's range.
"""
from __future__ import annotations

import datetime as dt
from typing import Dict, List, Optional, Tuple

from bot.kb import loader, schema

PRICE_RANGE = (10, 500)  # yuan: outside this no ticket of this cinema has ever been priced
PRICE_FACTOR = 2.0       # a new price more than twice or less than half the old one


def _parse(files: Dict[str, bytes]) -> Optional[loader.Parsed]:
    try:
        return loader.validate(files, cross_check=False)
    except loader.KnowledgeError:
        return None


def _parking(old: Optional[loader.Parsed], new: loader.Parsed) -> List[str]:
    p = new.docs["parking.yml"]
    before = old.docs["parking.yml"] if old else None
    if before is not None and (before.fee_per_hour, before.daily_cap) == (p.fee_per_hour, p.daily_cap):
        return []
    if p.fee_per_hour > p.daily_cap:
        return [f"停车每小时收费 {p.fee_per_hour:g} 元高于每日封顶 {p.daily_cap:g} 元：顾客停不到一小时就到封顶了，"
                f"是否把两项填反了？"]
    return []


def _showtimes(old: Optional[loader.Parsed], new: loader.Parsed, now: dt.datetime) -> List[str]:
    known = {(r.day, r.start, r.film, r.hall, r.version) for _, r in old.showtimes} if old else set()
    out = []
    for line, r in new.showtimes:
        if (r.day, r.start, r.film, r.hall, r.version) in known or r.day in ("daily", *schema.WEEKDAYS):
            continue
        starts = dt.datetime.combine(dt.date.fromisoformat(r.day), dt.time(*map(int, r.start.split(":"))))
        if starts < now:
            out.append(f"排片第{line}行：{r.day} {r.start}《{r.film}》的场次已经过去了。")
    return out


def _prices(old: Optional[loader.Parsed], new: loader.Parsed) -> List[str]:
    before: Dict[Tuple[str, str], float] = {}
    if old:
        for r in old.docs["prices.yml"].base:
            before[(r.key, "weekday")], before[(r.key, "weekend")] = r.weekday, r.weekend
    out = []
    for r in new.docs["prices.yml"].base:
        for field, label in (("weekday", "平日价"), ("weekend", "周末价")):
            value = getattr(r, field)
            was = before.get((r.key, field))
            if was == value:
                continue
            if not PRICE_RANGE[0] <= value <= PRICE_RANGE[1]:
                out.append(f"「{r.label}」{label} {value:g} 元不在通常的 {PRICE_RANGE[0]}–{PRICE_RANGE[1]} 元之间。")
            elif was and (value > was * PRICE_FACTOR or value < was / PRICE_FACTOR):
                out.append(f"「{r.label}」{label}从 {was:g} 元改为 {value:g} 元，变化超过一倍，请核对是否多打或少打了一位。")
    return out


def warnings(old: Dict[str, bytes], new: Dict[str, bytes], now: dt.datetime) -> List[str]:
    """What to ask the editor about before ``new`` replaces ``old`` (``now``: local time of the cinema)."""
    after = _parse(new)
    if after is None:
        return []  # invalid files get their problems instead
    before = _parse(old) if old else None
    return [*_parking(before, after), *_prices(before, after), *_showtimes(before, after, now)]
