"""The conversation's context: current topic and facet, the values in play, emergency mode.

Every answer reads it and returns an updated copy; the actions keep it in one slot (``dialogue_context``),
so follow-ups like 「那周二呢」「它多长时间」「在哪换」「那天VIP厅多少钱」 are answered against what earlier
turns established, until the patron changes it.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional

# Values that describe *what* the patron is talking about carry across topics; the others (ticket type,
# time of day, points, minutes) only within the topic they were said in.
CROSS_TOPIC = ("film", "date")
WITHIN_TOPIC = ("hall_type", "time", "ticket_type", "facility", "points", "hall", "compared", "minutes", "hours",
                "category", "missing_film", "level", "spend")
# …except into topics whose answer depends on it: 「VIP厅什么样」→「周末多少钱」 is the VIP hall's price
CARRY_INTO = {"ticket_price": ("hall_type", "compared"), "showtimes": ("hall_type",), "hall_types": ("hall_type",)}
ALWAYS_KEPT = ("ticket", "interrupted")  # the on-site alert ticket; the form an emergency interrupted
EMERGENCY_TURNS = 4  # turns after an emergency that are read as part of it unless clearly something else
REFERS = {  # words that point back to the last value of that kind, whatever the topic
    "film": re.compile(r"它|这部|那部|这片|该片|这个(电影|片子|片)|那个(电影|片子|片)|这电影|那电影"),
    "date": re.compile(r"那天|当天|同一天|那一天|这天"),
    "hall_type": re.compile(r"那个厅|这个厅|该厅|那厅|这种厅|那种厅|同一个厅|这个影厅|那个影厅"),
}
ELLIPSIS = re.compile(r"^(?:[哦噢嗯啊额呃诶哎]+[，,、\s]*)?(那|那么|那如果|如果|还有|再问下?|也|另外)|呢[?？。!！]*$|"
                      r"^[^，,。]{1,6}呢[，,]|也是这样|也一样|也可以|也扣|也收|也打折|也能|"
                      r"也(是|有|行|要|算|适用)[吗么嘛]?[?？]*$|一样[吗么嘛][?？]*$|有吗[?？]*$|"
                      r"(也|都)(不行|不可以|不能|没有|不给|不让)[吗么嘛啊吧]?[?？]*$|总(行|可以|能).{0,4}吧|"
                      r"^[^，,。]{1,4}呢.{0,6}$|(也|都)(有没有|有吗|有不)[?？]*$|"
                      r"(也|都)是?(这样|一样|如此|这么)[的吗么嘛]*[?？]*$|^[^，,。]{1,6}有?(几个|多少个)[?？]*$|"
                      r"^(那)?(里面|里边|那里|那边|这里|那儿)(都)?(有|有什么|有啥|提供什么|能干嘛)|"  # 「里面都有什么」
                      r"^(对了|还有|哦|噢)?[，,\s]*我是.{1,5}[的呢]?$|"
                      r"^(那|那个|它|这个)?(在|是在)?(哪个位置|什么位置|哪个地方|什么地方|哪个方向)[呢啊呀]?[?？]*$|"  # 「在哪个位置」
                      r"^(那|那个厅|这个厅|它)?(有|能坐|可以坐|坐得下)?(多少|几)个?(座位|座|位子|人)[呢啊]?[?？]*$")  # 「对了我是金卡」「我是学生」  # 「IMAX都系咁」「1号厅有几个」  # 「黑钻呢多了啥」「我是普卡都有没有」  # 「改签都不行？」


@dataclass
class DialogueContext:
    topic: Optional[str] = None
    facet: Optional[str] = None
    values: Dict[str, str] = field(default_factory=dict)
    emergency_turns: int = 0
    emergency_ticket: Optional[str] = None
    previous: Optional[str] = None  # the topic before this one (「周四早上11点那场呢」 back to the price)

    @classmethod
    def from_slot(cls, value: Any) -> "DialogueContext":
        if not isinstance(value, dict):
            return cls()
        known = {k: value[k] for k in ("topic", "facet", "values", "emergency_turns", "emergency_ticket", "previous")
                 if k in value}
        ctx = cls(**known)
        ctx.values = {k: str(v) for k, v in (ctx.values or {}).items() if v not in (None, "")}
        return ctx

    def to_slot(self) -> Dict[str, Any]:
        return asdict(self)

    @property
    def in_emergency(self) -> bool:
        return self.emergency_turns > 0

    def values_for(self, topic: str, fresh: Dict[str, str], text: str) -> Dict[str, str]:
        """This turn's values: what the patron just said, plus what carries over to ``topic``."""
        values = dict(fresh)
        same = topic == self.topic
        other_halls = bool(OTHER_HALLS.search(text or ""))
        for key, old in self.values.items():
            if key in values or (key == "hall_type" and other_halls):
                continue  # 「那还有什么厅能看」: every hall, not the one said before
            pointed = key in REFERS and REFERS[key].search(text or "")
            if same or key in CROSS_TOPIC or pointed or key in CARRY_INTO.get(topic, ()):
                values[key] = old
        return values

    def after(self, topic: Optional[str], facet: Optional[str], values: Dict[str, str]) -> "DialogueContext":
        """The context once this turn has been answered on ``topic``."""
        kept = {k: v for k, v in self.values.items() if k in CROSS_TOPIC or k in REFERS or k in ALWAYS_KEPT}
        if topic == self.topic:
            kept = dict(self.values)
        kept.update({k: v for k, v in values.items() if k in CROSS_TOPIC + WITHIN_TOPIC and v})
        for k in [k for k, v in values.items() if v == ""]:
            kept.pop(k, None)  # said to be no value to remember (a day with no schedule, several films)
        return DialogueContext(topic=topic, facet=facet, values=kept,
                               emergency_turns=max(0, self.emergency_turns - 1),
                               emergency_ticket=self.emergency_ticket if self.emergency_turns > 1 else None,
                               previous=self.previous if topic == self.topic else self.topic)


OTHER_HALLS = re.compile(r"(还有|别的|其他|其它|另外)(什么|哪些|哪个|的)?(影)?厅|哪些厅|什么厅(能|可以)?(看|放)")
ELLIPTICAL_MAX = 12  # a longer message says enough to stand on its own
# values that continue a topic when they come alone: 「有IMAX的吗」 after showtimes, 「学生呢」 after a price
FOLLOW_KEYS = {"showtimes": ("film", "date", "time", "hall_type"),
               "ticket_price": ("hall_type", "ticket_type", "date", "time"),
               "parking": ("hall_type",), "hall_types": ("hall_type",), "film_info": ("film",),
               "facilities": ("facility",)}


def is_elliptical(text: str, fresh: Optional[Dict[str, str]] = None, topic: Optional[str] = None) -> bool:
    """「那周二呢」「IMAX厅也是这样吗」「学生呢」「有IMAX的吗」: a short follow-up that leans on the previous turn."""
    t = (text or "").strip()
    if len(t) > ELLIPTICAL_MAX:
        return False
    if ELLIPSIS.search(t) or len(t) <= 4:
        return True
    return bool(fresh) and topic in FOLLOW_KEYS and set(fresh) <= set(FOLLOW_KEYS[topic]) | {"hall"}
