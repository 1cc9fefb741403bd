"""「不对，我说的是周三」「不好意思搞错了，我是银卡」「不是巨幕，是IMAX」: the patron corrects what they said.

A correction is no complaint and no emergency (「打错了」「说错了」 name neither a fight nor a fault): it asks the
last question again with the new value. :func:`corrected` returns the words that carry the new value, or
None when the message is no correction.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Optional

_FILLER = r"(?:(?:[哦噢喔嗯啊呃额诶哎唉呀]+|等等|等一下|等下|稍等)[，,、。.!！\s~～]*)?"
_SORRY = r"(?:不好意思|抱歉|sorry|对不起|哎呀|哎)?[，,、。\s]*"
_WRONG = r"(?:我)?(?:搞错了?|弄错了?|说错了?|打错了?|写错了?|记错了?|看错了?|讲错了?|输错了?|错了|说反了|搞混了?|弄混了?)"
# the opening that says what came before was wrong
# 「人数写错了，是二十八个」「手机号打错了」: what was wrong named before it
_WHAT = r"(?:人数|手机号?|电话|号码|日期|时间|场次|座位号?|影厅|厅号|姓名|名字|订单号?|数字)?"
HEAD = re.compile(r"^" + _FILLER + r"(?:" + _SORRY + _WHAT + _WRONG + r"|(?:不对(?!劲)[，,、\s]*)+|不是不是|不是的|不是这样|更正一下|更正)"
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
# a mistake owned in so many words (not a bare 「不对」, which may open a complaint): what follows is the new value
ADMITTED = re.compile(r"(搞错|弄错|说错|打错|写错|记错|看错|讲错|输错)了?")


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
        raw = m.group("rest")
        while HEAD.match(raw) and HEAD.match(raw).group("rest") != raw:  # 「不对，我搞错了，…」: both openings
            raw = HEAD.match(raw).group("rest")
        rest = _lead_off(raw)
        if rest and len(rest) > REST_MAX and ADMITTED.search(t[:len(t) - len(raw)]):
            # 「不对，我搞错了，他其实17岁了，那雾都疑案能看吧」: an admitted mistake, then the new value and its question
            return rest
        return rest if rest and len(rest) <= REST_MAX else None
    if MEANT.search(t):
        rest = _lead_off(t)
        if SAID_ONLY.search(t) and len(rest) > 8:
            return None  # 「我买的是学生票，能退吗」: what they bought, then a new question
        return rest or None
    return None


TRAILING_WRONG = re.compile(r"[，,。\s]*(?:我|是我)?" + _WRONG + r"[。!！~～]*$")


def _lead_off(rest: str) -> str:
    # 「是5号厅，我记错了」: the new value, without the admission after it
    return LEAD.sub("", TRAILING_WRONG.sub("", (rest or "").strip())).strip(" ，,。.!！~～")


def entities_in(entities: Iterable[Dict[str, Any]], words: str) -> List[Dict[str, Any]]:
    """The entities the new words name (「不是学生，是老人」 keeps 老人, not 学生)."""
    kept = []
    for e in entities or []:
        said = str(e.get("text") or "") or str(e.get("value") or "")
        if said and said in words or str(e.get("value") or "") in words:
            kept.append(e)
    return kept


# what a refusal looks like after 「不是的，…」: 「不是的，不用了」 is a no, not a new value
REFUSAL = re.compile(r"^(?:我)?(?:不|没|别|算了|不用|不要|不需要|取消)")
VALUE_WORDS = re.compile(r"[\d一二两三四五六七八九十百]|厅|周|星期|今天|明天|后天|今晚|明晚|上午|下午|晚上|中午|早上|点|场|排|座|"
                         r"IMAX|杜比|巨幕|VIP|4DX|学生|老人|儿童|卡|先生|女士|小姐", re.I)


def new_value(text: str) -> Optional[str]:
    """The new value when ``text`` corrects one with a value (「不对不对，是5号厅」「人数写错了，是二十八个」),
    None for a plain no (「不是的，不用了」) or no correction at all."""
    rest = corrected(text)
    if not rest or REFUSAL.match(rest) or not VALUE_WORDS.search(rest):
        return None
    return rest
