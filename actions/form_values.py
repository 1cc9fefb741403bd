"""Values a patron gives in passing, read from one sentence: 「需要开发票，联系人陈经理，电话13912345678」 fills
the invoice, the contact and the phone at once, whatever the form asked for."""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, Optional

from bot.answers.resolvers import (normalize_order_id, normalize_phone, parse_number, parse_party_size, resolve_date,
                                   resolve_time_window)
from bot.kb.store import Knowledge

TITLE = r"(?:先生|女士|小姐|经理|老师|阿姨|姐|哥|总|师傅)"
NAME = re.compile(rf"联系人(?:是|叫|为)?[:：\s]*([\u4e00-\u9fff]{{1,3}}?{TITLE}?)(?=[，,。\s]|电话|手机|$)|"
                  rf"我(?:姓|叫)([\u4e00-\u9fff]{{1,3}}?{TITLE}?)(?=[，,。\s]|电话|手机|$)|"
                  rf"(?<![\u4e00-\u9fff])姓([\u4e00-\u9fff]{TITLE}?)|([\u4e00-\u9fff]{TITLE})(?=[，,。\s]|电话|手机|$)")
INVOICE_NO = re.compile(r"不(?:要|用|需要|必|开)(?:开)?(?:发票|票)|发票不(?:要|用|需要)|无需发票|免开|不开票")
INVOICE_YES = re.compile(r"(?:要|需要|开|需)(?:开|个|张)?(?:发票|专票|普票)|发票(?:要|需要)|开票")
PARTY = re.compile(r"[\d零一二两三四五六七八九十百]+\s*(?:几|多|来)?\s*(?:个)?(?:人|位|名)")
SHOWING = re.compile(r"\d+号厅|[一二三四五六七八九]号厅|[上下中]午|晚上|早上|今晚|昨晚|\d{1,2}[点:：]\d{0,2}|场")
CHANNEL = re.compile(r"小程序|前台|猫眼|淘票票|美团|抖音|大众点评|APP|app|公众号")


def contact_name(text: str) -> Optional[str]:
    m = NAME.search(text or "")
    if not m:
        return None
    name = next(g for g in m.groups() if g)
    return name if len(name) <= 6 else None


def invoice(text: str) -> Optional[str]:
    if INVOICE_NO.search(text or ""):
        return "不需要"
    if INVOICE_YES.search(text or ""):
        return "需要"
    return None


# 「三十几个人」「20多个人」: about that many, enough to register (the callback confirms the count)
ABOUT_SIZE = re.compile(r"((?:[一二三四五六七八九]?十|\d+0))\s*(?:几|多|来)\s*(?:个)?(?:人|位|名)")


def about_size(text: str) -> Optional[str]:
    about = ABOUT_SIZE.search(text or "")
    base = parse_number(about.group(1)) if about else None
    return f"{base}多人" if base and base >= 10 else None


# 「三十个人，不对，是三十五个」: what follows a correction in the same message is the value meant
SAID_AGAIN = re.compile(r"(不对|不是|说错了?|打错了?|搞错了?|哦不|应该是|改成|改为)[，,\s]*(?P<rest>.+)$")


def party_size(text: str) -> Optional[str]:
    again = SAID_AGAIN.search(text or "")
    if again and again.start() > 0 and parse_party_size(again.group("rest")):
        text = again.group("rest") if PARTY.search(again.group("rest")) else again.group("rest") + "人"
    if not PARTY.search(text or ""):
        return None
    about = about_size(text)  # before the exact reading, which takes 「三十几个人」 for 3
    if about:
        return about
    n = parse_party_size(text)
    return f"{n}人" if n else None


def booking_time(text: str, today) -> Optional[str]:
    if resolve_date(text or "", today) is None:
        return None
    window = resolve_time_window(text)
    return text.strip()[:60] if window or len(text) <= 30 else None


def showing(text: str) -> Optional[str]:
    return text.strip()[:200] if SHOWING.search(text or "") else None


# what was lost, with its colour or kind when said (「一把蓝色的折叠伞」 → 蓝色的折叠伞)
LOST = re.compile(r"(?:[红橙黄绿青蓝紫黑白灰粉棕金银卡其米]色的?|[红黄绿蓝紫黑白灰粉]的)?(?:折叠|长柄|无线|蓝牙|儿童|小|大)?"
                  r"(?:雨伞|伞|手机|钱包|背包|双肩包|挎包|包包|包|钥匙|眼镜|墨镜|耳机|充电宝|外套|羽绒服|衣服|围巾|帽子|身份证|"
                  r"证件|银行卡|会员卡|手表|平板|iPad|ipad|水杯|保温杯|杯子|玩具|手套|相机|项链|戒指|手链|手串|笔记本电脑|电脑|书包)")


def lost_item(text: str) -> Optional[str]:
    m = LOST.search(text or "")
    return m.group(0) if m else None


SEAT_ANY = re.compile(r"\d{1,2}\s*排\s*\d{1,2}\s*[号座]?|[A-Za-z]\s*排\s*\d{0,2}\s*[号座]?|第?\d{1,2}排")


def prefill(k: Knowledge, today, slots, text: str, skip=()) -> Dict[str, str]:
    """What one sentence already says for these slots (for a form's opening message, or said in passing)."""
    found = {}
    for slot, read in extractors(k, today).items():
        if slot in slots and slot not in skip:
            value = read(text or "")
            if value:
                found[slot] = value
    return found


COUNTER = "前台"


def refunded_elsewhere(k: Knowledge, channel: Optional[str]) -> bool:
    """Whether a ticket bought there is refunded by the platform or at the counter, not through a ticket."""
    channel = channel or ""
    return COUNTER in channel or any(p in channel for p in k.section("refund")["third_party"]["platforms"])


# 「…，要求退停车费，电话…」: what the patron wants, said in passing with the complaint
WISH_SAID = re.compile(r"(要求|希望|诉求是?|想要|请你们|麻烦你们|必须)(?P<wish>[^，,。.;；!！?？]{2,30})")


def wish_said(text: str) -> Optional[str]:
    m = WISH_SAID.search(text or "")
    return m.group(0).strip() if m else None


SEAT_FORGOTTEN = re.compile(r"(座位|座号|位置|位子|几排).{0,4}(忘了|忘记了?|不记得|记不清|记不得|不清楚)|"
                            r"(忘了|不记得|记不清)(座位|座号|坐哪)")
# 「能不能调高点」「可以给我退款吗」 answering "what would you like us to do": a request is the wish
WISH_REQUEST = re.compile(r"^(那|就)?[\u4e00-\u9fff]{0,5}?(能不能|能否|可不可以|可以|麻烦|请|帮我|给我|赶紧|快点)")
INFO_ASKED = re.compile(r"多久|什么时候|啥时候|几点|几楼|在哪|哪里|多少|怎么(办理|弄|算)|是什么|有没有")


# 「影厅你们推荐」「影厅无所谓」: no preference, said inside a sentence
ANY_HALL = re.compile(r"(影厅|厅|哪个厅|什么厅)(的话)?[，,\s]*(你们|您)?(推荐|安排|定|看着办|决定|无所谓|都行|都可以|随便|没要求|不挑)")


def seat(text: str) -> Optional[str]:
    m = SEAT_ANY.search(text or "")
    if m:
        return m.group(0)
    return "不记得" if SEAT_FORGOTTEN.search(text or "") else None


def wish_requested(text: str) -> bool:
    """Whether a reply to the wish question is a request (the wish), not a side question."""
    return bool(WISH_REQUEST.search((text or "").strip())) and not INFO_ASKED.search(text or "")


def extractors(k: Knowledge, today) -> Dict[str, Callable[[str], Optional[str]]]:
    """Slot → function reading that slot's value from a sentence (None when the sentence has none)."""
    return {
        "phone": normalize_phone,
        "order_id": normalize_order_id,
        "contact_name": contact_name,
        "invoice": invoice,
        "party_size": party_size,
        "booking_time": lambda t: booking_time(t, today),
        "film": lambda t: (k.find_film(t).title if k.find_film(t) else None),
        "hall_pref": lambda t: (k.find_hall_type(t).name if k.find_hall_type(t) else
                                ("都可以" if ANY_HALL.search(t or "") else None)),
        "lost_item": lost_item,
        "seat": seat,
        "purchase_channel": lambda t: (CHANNEL.search(t).group(0) if CHANNEL.search(t) else None),
        "complaint_when": showing,
        "complaint_wish": wish_said,
        "lost_where": showing,
        "refund_show": lambda t: refund_show(k, t, today),
    }


def refund_show(k: Knowledge, text: str, today) -> Optional[str]:
    """The show a refund is for, when the sentence names its film or day (「是后天晚上的场」)."""
    if k.film_by_name(text) or k.find_film(text) or resolve_date(text or "", today):
        return text.strip()[:100] if len(text) <= 40 else None
    return None


def order_problem_named(k: Knowledge, text: str) -> Optional[Dict[str, Any]]:
    """The store's order problem whose name or alias the words contain (「取票码扫不出来」 → 取票码/电子票无法核销)."""
    return next((p for p in k.section("orders")["problems"]
                 if any(a in (text or "") for a in [p["name"], *p["aliases"]])), None)
