"""Tidy the entities DIET proposes before they leave the NLU pipeline.

- Values that cannot be what their type says are dropped (a phone that is not a mobile number, a
  head count without a number, a one-character date or time).
- Adjacent pieces of one expression are joined (「晚上」+「7点后」→「晚上7点后」, 「12月」+「5号」) and cut-off ends are
  completed (「下周」 before 「三」→「下周三」, 「12」 before 「点」→「12点」).
- A hall type's span stops before its 厅 (「杜比厅」 → 杜比), except VIP厅 (the contract's spelling).
- Entity types that carry no meaning for the predicted intent are dropped: a ticket type matters to a
  price question, not to an emergency; chit-chat carries no entities. Phone numbers and order ids are
  always kept, since forms rely on them whatever the intent, and so are the store's own film titles.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

NUMBER = re.compile(r"[0-9０-９零一二两三四五六七八九十百千]")
PHONE = re.compile(r"^(\+?86)?1[3-9]\d{9}$")
ALWAYS_KEEP = {"phone", "order_id"}
KNOWN = "KnowledgeEntityExtractor"  # titles the store knows are kept whatever the intent
NONE = {"film", "date", "time", "hall_type", "ticket_type", "facility", "party_size", "lost_item"}
DROP_FOR_INTENT: Dict[str, set] = {
    "greet": NONE, "goodbye": NONE, "thank": NONE, "bot_challenge": NONE, "affirm": NONE, "deny": NONE,
    "out_of_scope": NONE,
    "ask_film_info": {"ticket_type", "facility", "lost_item", "party_size"},
    "ask_hall_types": {"ticket_type", "facility", "lost_item", "party_size"},
    "ask_viewing_rules": {"ticket_type", "lost_item", "party_size"},
    "ask_facilities": {"ticket_type", "lost_item", "party_size"},
    "ask_vip_service": {"facility", "ticket_type", "lost_item"},
    "ask_member_points": {"facility", "lost_item", "ticket_type"},
    "ask_member_benefits": {"facility", "lost_item", "ticket_type"},
    "ask_cinema_info": {"ticket_type", "lost_item", "party_size", "facility"},
    "ask_parking": {"ticket_type", "lost_item", "party_size"},
    "report_emergency": {"ticket_type", "party_size", "lost_item", "facility"},
    "complain": {"facility", "lost_item", "ticket_type", "party_size"},
    "give_feedback": {"lost_item", "party_size"},
    "report_order_problem": {"facility", "lost_item"},
    "report_lost_item": {"ticket_type"},  # 「小孩的水杯落在4DX厅」: whose cup, not a ticket
}
# 「黑钻VIP会员」「VIP卡」: the member level's word, not the VIP hall
NOT_A_HALL = re.compile(r"^(会员|卡|客服|通道|专属)")
WEEKDAY_TAIL = re.compile(r"^[一二三四五六日天末]")
PARTY_TAIL = re.compile(r"^(来|多)?(个人|个|人|位|名)")  # 「十五」+「个人」: the count keeps its measure word
DATE_HEAD = re.compile(r"(这|下下|下|本|上)$")           # 「这」+「周末」
TIME_TAIL = re.compile(r"^(点半|点钟|点|时|:\d\d|：\d\d)(以后|之后|以前|之前|左右|前后|后|前)?")
TIME_WORD = re.compile(r"点|时|[:：]|午|晚|早|夜|凌晨|傍晚|黄昏|场")  # 「一半」 is no time
HALF_TAIL = re.compile(r"^(半|[0-9一二三四五六七八九十]{1,3}分|一刻|三刻)(以后|之后|以前|之前|左右|前后|后|前)?")


def _plausible(e: Dict[str, Any]) -> bool:
    value = str(e.get("value") or "")
    kind = e["entity"]
    if kind == "phone":
        return bool(PHONE.match(re.sub(r"[\s-]", "", value)))
    if kind == "order_id":
        return bool(re.match(r"^[A-Za-z]{2}\s*\d{12}$", value.strip()))
    if kind == "party_size":
        return bool(NUMBER.search(value)) or value in ("我们俩", "俩人")
    if kind in ("date", "time", "lost_item", "hall_type", "film"):
        return len(value.strip()) >= 2 or (kind in ("lost_item", "film") and len(value.strip()) == 1 and value in "伞包")
    return bool(value.strip())


def _complete(e: Dict[str, Any], text: str) -> Dict[str, Any]:
    rest = text[e["end"]:]
    tail: Optional[re.Match] = None
    if e["entity"] == "date" and re.search(r"(周|星期|礼拜)$", e["value"]):
        tail = WEEKDAY_TAIL.match(rest)
    elif e["entity"] == "time" and re.search(r"\d$|[一二两三四五六七八九十]$", e["value"]):
        tail = TIME_TAIL.match(rest)
    elif e["entity"] == "time" and e["value"].endswith("点"):
        tail = HALF_TAIL.match(rest)  # 「晚上七点」+「半」
    elif e["entity"] == "party_size" and NUMBER.search(e["value"][-1:] or ""):
        tail = PARTY_TAIL.match(rest)
    if e["entity"] == "date" and re.match(r"(周|星期|礼拜)", e["value"]):
        head = DATE_HEAD.search(text[:e["start"]])
        if head:
            e = dict(e, start=head.start())
            e["value"] = text[e["start"]:e["end"]]
    if tail:
        e = dict(e, end=e["end"] + tail.end())
        e["value"] = text[e["start"]:e["end"]]
    return e


def _merge(entities: List[Dict[str, Any]], text: str) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    for e in sorted(entities, key=lambda x: x["start"]):
        prev = out[-1] if out else None
        if prev and prev["entity"] == e["entity"] and e["entity"] in ("time", "date") and prev["end"] == e["start"]:
            out[-1] = dict(prev, end=e["end"], value=text[prev["start"]:e["end"]])
        else:
            out.append(e)
    return out


def _hall_span(e: Dict[str, Any], text: str) -> Dict[str, Any]:
    """The hall type's name without the 厅 after it (「杜比厅」 → span 杜比), as the contract spells hall types
    (IMAX、杜比、4DX、巨幕、VIP厅); VIP厅 is a name of its own. The value, which the bot reads, is kept."""
    span = text[e["start"]:e["end"]]
    if e["entity"] == "hall_type" and len(span) > 2 and span.endswith("厅") and not span.upper().startswith("VIP"):
        return dict(e, end=e["end"] - 1)
    return e


NOT_A_COUNT = re.compile(r"^[月号日点块元年:：.%折岁分]")  # 「12月」「10块」: a date or a price, not a head count
COUNT_END = re.compile(r"^(.*[0-9零一二两三四五六七八九十百千](?:来|多)?(?:个人|个|人|位|名)?)")


def _party_span(e: Dict[str, Any], text: str) -> Optional[Dict[str, Any]]:
    """A head count ends with its number or its measure word (「200人能」 → 200人); None when the number is a
    date's or a price's."""
    if e["entity"] != "party_size":
        return e
    if NOT_A_COUNT.match(text[e["end"]:]):
        return None
    m = COUNT_END.match(text[e["start"]:e["end"]])
    if m and len(m.group(1)) < e["end"] - e["start"]:
        return dict(e, end=e["start"] + len(m.group(1)), value=m.group(1))
    return e


def clean(entities: List[Dict[str, Any]], text: str, intent: Optional[str]) -> List[Dict[str, Any]]:
    entities = [x for x in (_party_span(_hall_span(e, text), text) for e in entities) if x is not None]
    drop = DROP_FOR_INTENT.get(intent or "", set())
    kept = [e for e in entities if _plausible(e) and (e["entity"] in ALWAYS_KEEP or e["entity"] not in drop
                                                   or e.get("extractor") == KNOWN and e["entity"] == "film")]
    kept = [e for e in kept if not (e["entity"] == "hall_type" and NOT_A_HALL.match(text[e["end"]:]))]
    kept = [_complete(e, text) if e["entity"] in ("date", "time", "party_size") else e for e in kept]
    # 「便宜10块」「以后」: a number or a word without a time in it is no time
    kept = [e for e in kept if e["entity"] != "time" or TIME_WORD.search(str(e.get("value") or ""))]
    return _merge(kept, text)
