"""What the patron asked in this turn (their words and the values in play), and small formatting helpers."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Text
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")
ENTITY_KEYS = ("film", "date", "time", "hall_type", "ticket_type", "facility", "phone", "order_id",
               "party_size", "lost_item", "hall", "seat")
HALL = re.compile(r"([1-9]\d?|[一二三四五六七八九十])号厅")
SEAT = re.compile(r"\d{1,2}\s*排\s*\d{1,2}\s*[号座]?")
DAY_WORDS = re.compile(r"(下下个?|下个?|这个?|本)?(周|星期|礼拜)[一二三四五六日天1-7末]|大后天|[今明后]天|今晚|明晚|"
                       r"\d{1,2}月\d{1,2}[日号]?|(?<![\d号排座])\d{1,2}[日号](?![厅线口楼门座排])")
QUOTED_TITLE = re.compile(r"[《<]([^《》<>]{1,30})[》>]")
QUESTION = re.compile(r"[?？]|吗|呢$|(?<![好十])几(?![十百千万])|多少|多久|多长|怎么|哪|什么|能不能|可不可以|可以.*[吗么]|是否|有没有|行不行|啥|咋|"
                      r"会不会|能否|[^不]行不|好不好|要不要|([\u4e00-\u9fff])不\1|"  # 管不管 是不是 对不对
                      r"(能|可以|会|要|有|收费|免费|算).{0,8}不[?？。!！~～\s]*$|"  # 「能再打个8折不」「收费不」
                      r"总(行|可以|能).{0,4}吧|(也|都)(不行|不可以|不能|不让)吧|"  # 「那改签总行了吧」「螺蛳粉也不行吧」
                      r"(对吧|是吧|没错吧|对不|是不|对的吧|是的吧|没记错吧)[?？。!！~～\s]*$|"  # 「学生票周三是8折对吧」
                      r"(?<![那这怎什好谢行对是了就吧])[么嘛麼](?=[\s，,。.!！?？~～我你]|$|[^\u4e00-\u9fff\w])")  # 「还能退么😤」
STRONG_QUESTION = re.compile(r"(?<![好十])几(?![十百千万])|多少|多久|多长|怎么|哪|什么|能不能|可不可以|是否|有没有|要不要|行不行|可以.{0,6}[吗么]|啥|咋|"
                             r"会不会|能否|能.{1,8}[吗么]|([\u4e00-\u9fff])不\1|(能|可以).{1,8}不[?？。!！~～\s]*$")
NOT_A_QUESTION = re.compile(r"随便|都行|都可以|无所谓|不知道|不记得|(?<!怕)(?<!会)忘了|不清楚|哪个都")


def is_question(text: Text) -> bool:
    """Whether the words ask something (「几点下班」「能放宣传片吗」), not just give a value."""
    return bool(QUESTION.search(text or "")) and not NOT_A_QUESTION.search(text or "")


def now() -> dt.datetime:
    """Current wall-clock time in the cinema's time zone (naive)."""
    return dt.datetime.now(TZ).replace(tzinfo=None)


# words that open or join a sentence, never a film's title (the entity extractor sometimes tags them)
NOT_A_TITLE = re.compile(r"要是|另外|如果|假如|还有|然后|就是|那个|这个|那么|所以|但是|不过|而且|或者|其实|刚才|现在|"
                         r"请问|麻烦|我想|我要|你们|我们|他们|那|这|它")


def entity_values(text: Text, entities: Iterable[Dict[str, Any]]) -> Dict[str, str]:
    """First value of each entity; hall and seat are read from the words."""
    values: Dict[str, str] = {}
    for e in entities or []:
        if e.get("entity") in ENTITY_KEYS and e.get("value") not in (None, ""):
            if e["entity"] == "film" and NOT_A_TITLE.fullmatch(str(e["value"]).strip()):
                continue  # 「要是看3D版本」「另外还有补偿吗」: a word of the sentence the extractor took for a title
            values.setdefault(e["entity"], str(e["value"]))
    if "date" not in values:  # 「周3呢」「礼拜五呢」: a day in words the entity extractor missed
        m = DAY_WORDS.search(text or "")
        if m:
            values["date"] = m.group(0)
    for key, pattern in (("hall", HALL), ("seat", SEAT)):
        m = pattern.search(text or "")
        if m and key not in values:
            values[key] = m.group(0)
    title = QUOTED_TITLE.search(text or "")
    if title and ("film" not in values or values["film"].strip("《》 ") in title.group(1)):
        values["film"] = title.group(1).strip()  # a title in 《》 is a film, known or not, whole (《消失的她2》)
    return values


@dataclass
class Ask:
    """What the patron asked about in this turn: their (folded) words and the values in play."""

    text: str
    values: Dict[str, str] = field(default_factory=dict)  # said now, or carried over from earlier turns

    def get(self, key: str) -> Optional[str]:
        return self.values.get(key)


def join_lines(lines: List[Text]) -> Text:
    return "\n".join(lines)


def money(value: Any) -> Text:
    value = round(float(value), 2)
    if value.is_integer():
        return str(int(value))
    return f"{value:.1f}" if round(value, 1) == value else f"{value:.2f}"  # 80.75 stays 80.75, not 80.8


def date_label(day: dt.date, today: dt.date) -> Text:
    from bot.answers.resolvers import weekday_name

    names = {0: "今天", 1: "明天", 2: "后天"}
    delta = (day - today).days
    prefix = names.get(delta, "")
    return f"{prefix}（{day.month}月{day.day}日{weekday_name(day)}）" if prefix else f"{day.month}月{day.day}日{weekday_name(day)}"


def resolve_day(ask: Ask, today: dt.date) -> dt.date:
    from bot.answers.resolvers import resolve_date

    for source in (ask.get("date"), ask.text):
        if source:
            day = resolve_date(source, today)
            if day:
                return day
    return today
