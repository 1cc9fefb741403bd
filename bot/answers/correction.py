"""「不对，我说的是周三」「不好意思搞错了，我是银卡」「不是巨幕，是IMAX」: the patron corrects what they said.

A correction is no complaint and no emergency (「打错了」「说错了」 name neither a fight nor a fault): it asks the
last question again with the new value. :func:`corrected` returns the words that carry the new value, or
None when the message is no correction.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Optional

_FILLER = r"(?:[哦噢喔嗯啊呃额诶哎唉呀]+[，,、。.!！\s~～]*)?"
_SORRY = r"(?:不好意思|抱歉|sorry|对不起|哎呀|哎)?[，,、。\s]*"
_WRONG = r"(?:我)?(?:搞错了?|弄错了?|说错了?|打错了?|写错了?|记错了?|看错了?|讲错了?|输错了?|错了|说反了|搞混了?|弄混了?)"
# the opening that says what came before was wrong
HEAD = re.compile(r"^" + _FILLER + r"(?:" + _SORRY + _WRONG + r"|不对(?!劲)|不是不是|不是的|不是这样|更正一下|更正)"
                  r"[，,、。.!！\s~～]*(?P<rest>.*)$", re.I)
# 「不是学生，是老人」「不是巨幕是IMAX」: the old value, then the new one
NOT_BUT = re.compile(r"^" + _FILLER + r"(?:我)?不是(?:说)?(?P<old>[^，,。]{1,10}?)[，,、\s]*(?:而|我)?(?:是|要|问的是|说的是)(?P<rest>.+)$")
# 「我说的是周三」「我问的是杜比」「其实是金卡」「应该是两个人」: the new value, said as the one meant
MEANT = re.compile(r"^(?:我)?(?:说的是|问的是|是说|意思是|想问的是|要问的是|指的是)|^(?:应该|其实|本来)是|"
                   r"^" + _FILLER + _SORRY + r"(?:我)?(?:看|买|订|选|要)的是")  # 「哦我买的是杜比厅」「不好意思，我看的是普通厅」
SAID_ONLY = re.compile(r"(看|买|订|选|要)的是")
LEAD = re.compile(r"^" + _FILLER + _SORRY + r"(?:我)?(?:说的是|问的是|是说|意思是|想问的是|要问的是|指的是|应该是|其实是|本来是|"
                  r"看的是|买的是|订的是|选的是|要的是|是)\s*")


REST_MAX = 16  # the new value, not a whole new story (「不对啊，怎么扣了两次钱…」 is a complaint)


def corrected(text: str) -> Optional[str]:
    """The words with the new value when ``text`` corrects an earlier one, else None."""
    t = (text or "").strip()
    if not t or len(t) > 40:
        return None
    m = NOT_BUT.match(t)
    if m:
        return _lead_off(m.group("rest"))
    m = HEAD.match(t)
    if m:
        rest = _lead_off(m.group("rest"))
        return rest if rest and len(rest) <= REST_MAX else None
    if MEANT.search(t):
        rest = _lead_off(t)
        if SAID_ONLY.search(t) and len(rest) > 8:
            return None  # 「我买的是学生票，能退吗」: what they bought, then a new question
        return rest or None
    return None


def _lead_off(rest: str) -> str:
    return LEAD.sub("", (rest or "").strip()).strip(" ，,。.!！~～")


def entities_in(entities: Iterable[Dict[str, Any]], words: str) -> List[Dict[str, Any]]:
    """The entities the new words name (「不是学生，是老人」 keeps 老人, not 学生)."""
    kept = []
    for e in entities or []:
        said = str(e.get("text") or "") or str(e.get("value") or "")
        if said and said in words or str(e.get("value") or "") in words:
            kept.append(e)
    return kept
