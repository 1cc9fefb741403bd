"""Business rules computed from the knowledge store: ticket prices, refund fees, parking, points.

Pure functions over a ``Knowledge`` snapshot, so they are unit-tested without a bot.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from bot.kb.store import WEEKDAY_CODES, HallTypeInfo, Knowledge


# --------------------------------------------------------------------------- prices
@dataclass(frozen=True)
class PriceQuote:
    hall_label: str
    day_label: str  # the price's day range as the store defines it, e.g. 周一至周四
    base: int
    price: float
    rule_text: Optional[str]  # the discount applied, as the store words it
    free: bool = False


_DAY_NAMES = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]


def _span_label(codes: List[str]) -> str:
    """[mon, tue, wed, thu] → 周一至周四 (a contiguous run), else the days joined."""
    idx = sorted(WEEKDAY_CODES.index(c) for c in codes)
    if idx and idx == list(range(idx[0], idx[-1] + 1)) and len(idx) > 1:
        return f"{_DAY_NAMES[idx[0]]}至{_DAY_NAMES[idx[-1]]}"
    return "、".join(_DAY_NAMES[i] for i in idx)


def price_day_labels(k: Knowledge) -> tuple:
    """The weekday-price and weekend-price day ranges as the store defines them."""
    weekend = k.section("prices")["weekend_days"]
    weekdays = [c for c in WEEKDAY_CODES if c not in weekend]
    return _span_label(weekdays), f"{_span_label(weekend)}及节假日"


def is_weekend_price(k: Knowledge, day: dt.date) -> bool:
    prices = k.section("prices")
    return WEEKDAY_CODES[day.weekday()] in prices["weekend_days"] or day.isoformat() in prices["holidays"]


def price_row(k: Knowledge, hall_type: HallTypeInfo, version: str = "2D") -> Dict[str, Any]:
    rows = {r["key"]: r for r in k.section("prices")["base"]}
    return rows.get(f"{hall_type.price_key}_{version.lower()}") or rows.get(hall_type.price_key) \
        or rows[f"{hall_type.price_key}_2d"]


def find_ticket_type(k: Knowledge, text: Optional[str]) -> Optional[Dict[str, Any]]:
    if not text:
        return None
    low = text.lower()
    best = None
    for t in k.section("prices")["ticket_types"]:
        for alias in (t["name"], *t["aliases"]):
            if alias.lower() in low and (best is None or len(alias) > best[0]):
                best = (len(alias), t)
    return best[1] if best else None


def find_ticket_types(k: Knowledge, text: Optional[str]) -> List[Dict[str, Any]]:
    """Every ticket type the words name (「我是学生也是会员」 → student, member)."""
    low = (text or "").lower()
    return [t for t in k.section("prices")["ticket_types"]
            if any(alias.lower() in low for alias in (t["name"], *t["aliases"]))]


def quote(k: Knowledge, hall_type: HallTypeInfo, day: dt.date, version: str = "2D",
          ticket_type: Optional[Dict[str, Any]] = None, start: Optional[dt.time] = None) -> PriceQuote:
    """Price of one ticket; discounts do not stack, the best applicable one wins (as the store says)."""
    prices = k.section("prices")
    row = price_row(k, hall_type, version)
    weekend = is_weekend_price(k, day)
    base = row["weekend"] if weekend else row["weekday"]
    holiday = day.isoformat() in prices["holidays"]
    options: List[tuple] = []
    early = prices["early_show"]
    if start is not None and start < dt.time(*map(int, early["before"].split(":"))) \
            and hall_type.code not in early["exclude_hall_types"]:
        options.append((base - early["amount"], early["text"], False))
    if ticket_type:
        days = ticket_type.get("weekdays_only") or []
        applies = (not days or WEEKDAY_CODES[day.weekday()] in days) and not (ticket_type.get("exclude_holidays") and holiday)
        if applies:
            if row["key"] in ticket_type.get("free_price_keys", []):
                options.append((0, ticket_type["text"], True))
            options.append((round(base * ticket_type["rate"], 1), ticket_type["text"], False))
    price, text, free = min(options, key=lambda o: o[0]) if options else (base, None, False)
    if price >= base:
        price, text, free = base, None, False
    weekday_label, weekend_label = price_day_labels(k)
    return PriceQuote(row["label"], weekend_label if weekend else weekday_label, base,
                      int(price) if float(price).is_integer() else price, text, free)


# --------------------------------------------------------------------------- refund
@dataclass(frozen=True)
class RefundVerdict:
    refundable: bool
    changeable: bool
    fee: float
    text: str


def refund_verdict(k: Knowledge, minutes_before: float, price: Optional[float] = None) -> RefundVerdict:
    """What the refund rules say for a ticket ``minutes_before`` the show starts (negative: started)."""
    for w in k.section("refund")["windows"]:
        if minutes_before >= w["min_minutes_before"]:
            fee = 0.0
            if w["refundable"] and w["fee_rate"] and price is not None:
                fee = max(w["min_fee"], math.ceil(price * w["fee_rate"] * 10) / 10)
            return RefundVerdict(w["refundable"], w["changeable"], fee, w["text"])
    last = k.section("refund")["windows"][-1]
    return RefundVerdict(False, False, 0.0, last["text"])


# --------------------------------------------------------------------------- parking
def level_by_text(k: Knowledge, text: Optional[str]) -> Optional[Dict[str, Any]]:
    if not text:
        return None
    best = None
    for lv in k.section("membership")["levels"]:
        for alias in (lv["name"], *lv["aliases"]):
            if alias in text and (best is None or len(alias) > best[0]):
                best = (len(alias), lv)
    return best[1] if best else None


def free_parking_hours(k: Knowledge, hall_type: Optional[HallTypeInfo] = None,
                       level: Optional[Dict[str, Any]] = None) -> int:
    free = k.section("parking")["free_hours"]
    hours = [free["default"]]
    if hall_type is not None:
        hours.append(free["hall_types"].get(hall_type.code, free["default"]))
    if level is not None:
        hours.append(free["member_levels"].get(level["code"], free["default"]))
    return max(hours)


def parking_fee(k: Knowledge, hours_parked: float, free_hours: int) -> float:
    p = k.section("parking")
    billable = max(0, math.ceil(hours_parked - free_hours))
    return min(billable * p["fee_per_hour"], p["daily_cap"])


# --------------------------------------------------------------------------- points
def exchange_options(k: Knowledge, points: Optional[int]) -> List[Dict[str, Any]]:
    items = sorted(k.section("membership")["exchange"], key=lambda e: e["points"])
    return items if points is None else [e for e in items if e["points"] <= points]
