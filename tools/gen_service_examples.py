#!/usr/bin/env python
"""Generate data/nlu/service_long.yml: long service messages that carry their details (showing, film, phone,
order id) the way patrons write them, so a complaint or a lost-item report with a date and a phone in it is
not read as a bare value (inform) or a showtimes question. Written from the seeds' complaint and
lost-and-found guidance and the demo sheet; none of it from an evaluation set.

    .venv/bin/python tools/gen_service_examples.py   # rewrites data/nlu/service_long.yml (deterministic)
"""
from __future__ import annotations

import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "data" / "nlu" / "service_long.yml"
rng = random.Random(20261201)

WHEN = ["[昨晚](date)[8点](time)那场", "[今天](date)[下午](time)那场", "[昨天](date)[晚上](time)", "[周六](date)[晚上](time)那场",
        "[今晚](date)[7点半](time)的场", "[前天](date)[下午](time)", "[周日](date)[上午](time)那场", "[昨晚](date)", "刚才那场",
        "[今天](date)[中午](time)", "[上周五](date)[晚上](time)"]
FILMS = ["[星际归途](film)", "[深海回声](film)", "[破晓行动](film)", "[熊猫总动员](film)", "[雾都疑案](film)", "[笑料百出](film)",
         "[钢铁洪流](film)", "[追光少年](film)"]
HALLS = ["1号厅", "2号厅", "3号厅", "4号厅", "5号厅", "6号厅", "7号厅", "8号厅", "[IMAX](hall_type)厅", "[杜比](hall_type)厅",
         "[4DX](hall_type)厅", "[VIP厅](hall_type)"]
PHONES = ["13900002222", "13812345670", "15098765432", "18611112233", "13700001111", "15912340056", "17722223333"]
NAMES = ["我姓王", "我叫李明", "姓陈", "我是张女士", "我姓刘", "我叫赵磊"]

COMPLAINT_OPEN = ["投诉：", "我要投诉，", "想反映一下，", "跟你们反映个事，", "", "你好，我要投诉一下，", "说个事，", "我要投诉，", "反映个问题，"]
COMPLAINT_WHAT = [
    "前排有人全程外放打电话，工作人员也不管", "后排一直有人踢我椅背，说了也不听", "旁边的人一直大声聊天",
    "有人把脚架在我椅背上", "有个小孩在过道跑来跑去，家长也不管", "后面的人一直用手机亮屏，晃得看不了",
    "座位上全是爆米花渣，扶手黏糊糊的", "厅里空调太冷了，冻得不行", "厅里闷得很，空调好像没开", "音响声音太大，耳朵受不了",
    "画面一直很暗，像蒙了一层灰", "放到一半黑屏了好几分钟", "字幕和声音对不上", "3D眼镜是坏的，看着重影",
    "检票员态度很差，说话很冲", "卖品部的服务员爱答不理的", "厕所很脏，地上全是水", "开场晚了二十分钟也没人解释",
    "座椅是坏的，一直往后倒", "前面有人一直站起来挡着", "有人在厅里抽烟，味道很大", "隔壁厅的声音都传过来了",
]
COMPLAINT_WISH = ["我希望你们给个说法", "希望能退票", "要求赔偿", "希望你们处理一下", "给我个解释", "能不能补偿一下", "", ""]


def complaint() -> str:
    parts = [rng.choice(COMPLAINT_OPEN) + rng.choice(WHEN) + rng.choice(["", rng.choice(HALLS)]) +
             rng.choice(["", "《" + rng.choice(FILMS) + "》"]), rng.choice(COMPLAINT_WHAT)]
    wish = rng.choice(COMPLAINT_WISH)
    if wish:
        parts.append(wish)
    if rng.random() < 0.5:
        parts.append(rng.choice(NAMES) + "，手机[" + rng.choice(PHONES) + "](phone)")
    return "，".join(p for p in parts if p)


ITEMS = ["[手机](lost_item)", "[钱包](lost_item)", "[雨伞](lost_item)", "[双肩包](lost_item)", "[外套](lost_item)", "[眼镜](lost_item)",
         "[耳机](lost_item)", "[充电宝](lost_item)", "[围巾](lost_item)", "[身份证](lost_item)", "[车钥匙](lost_item)", "[帽子](lost_item)"]
LOST_OPEN = ["失物登记：", "我东西落你们那了，", "丢东西了，", "你好，", "", "麻烦帮我找一下，", "登记一下失物，"]
LOST_FEATURE = ["黑色的", "蓝色的", "灰色的", "棕色皮的", "白色的", "红色的", "里面有证件的", "银色的"]
SEATS = ["C排7座", "E排5号", "第8排12号", "中间靠过道", "最后一排", "J排3座", ""]


def lost() -> str:
    item = rng.choice(ITEMS)
    first = rng.choice(LOST_OPEN) + rng.choice(LOST_FEATURE) + item
    parts = [first, rng.choice(WHEN) + rng.choice(["", rng.choice(HALLS)]) + rng.choice(["", rng.choice(FILMS)]),
             rng.choice(SEATS)]
    if rng.random() < 0.6:
        parts.append(rng.choice(["联系人", "", "我"]) + rng.choice(["刘洋", "王先生", "陈女士", "小李"]) + "，[" + rng.choice(PHONES) + "](phone)")
    tail = rng.choice(["", "可能落在座位上了", "应该是散场时忘拿了", "麻烦帮我找找"])
    parts.append(tail)
    return "，".join(p for p in parts if p)


ORDER_IDS = ["XH202611300009", "XH202611250031", "XH202612010017", "XH202611280102"]
ORDER_WHAT = ["在小程序上买票扣钱了但是票没出来", "付了钱订单显示失败", "钱扣了两次", "取票码扫不出来，检票说无效",
              "支付成功了一直没出票", "电子票核销不了", "扣款了没收到取票短信", "订单一直显示处理中"]


def order() -> str:
    lead = rng.choice(["那个就是，", "嗯，", "你好，", "", "我想问下，", "就是那个，"])
    parts = [lead + rng.choice(["我", "我刚才", "昨天我"]) + rng.choice(ORDER_WHAT)]
    if rng.random() < 0.6:
        parts.append("订单号[" + rng.choice(ORDER_IDS) + "](order_id)")
    if rng.random() < 0.4:
        parts.append("手机[" + rng.choice(PHONES) + "](phone)")
    parts.append(rng.choice(["", "怎么回事啊", "帮我看看", "都过了一个小时了", "这怎么办"]))
    return "，".join(p for p in parts if p)


GROUP_OPEN = ["嗯那个，就是，", "你好，", "", "想问下，", "我们", "那个就是，", "咨询一下，"]
GROUP_WHO = ["公司", "我们公司", "单位", "学校", "班上", "部门", "我们社团"]
GROUP_WHAT = ["想包场看电影", "想包一个厅", "想组织团建看电影", "想搞个观影活动", "想订团体票",
              "想包个厅放电影，前面放一段我们的广告", "想包场，能不能放我们的宣传片", "想集体看场电影"]
SIZES = ["[八十](party_size)个人", "[两百](party_size)人", "[30](party_size)人左右", "[五十多](party_size)个人",
         "大概[一百](party_size)人", "[25](party_size)个人"]
WHEN_LATER = ["[下周五](date)[下午](time)", "[下个月15号](date)", "[周六](date)[晚上](time)", "[下周二](date)", "[这周末](date)"]


def group() -> str:
    parts = [rng.choice(GROUP_OPEN) + rng.choice(GROUP_WHO) + rng.choice(GROUP_WHAT)]
    if rng.random() < 0.7:
        parts.append(rng.choice(SIZES))
    if rng.random() < 0.5:
        parts.append(rng.choice(WHEN_LATER))
    if rng.random() < 0.4:
        parts.append("想看" + rng.choice(FILMS))
    parts.append(rng.choice(["", "这个能弄吗", "怎么安排", "要怎么订", "有什么要求"]))
    return "，".join(p for p in parts if p)


def block(intent: str, examples) -> str:
    lines = sorted(set(examples))
    return f"- intent: {intent}\n  examples: |\n" + "".join(f"    - {e}\n" for e in lines)


def main() -> None:
    text = ("version: \"3.1\"\n# Generated by tools/gen_service_examples.py (long service messages with their details).\nnlu:\n"
            + block("complain", [complaint() for _ in range(90)])
            + block("report_lost_item", [lost() for _ in range(45)])
            + block("report_order_problem", [order() for _ in range(35)])
            + block("ask_group_booking", [group() for _ in range(40)]))
    OUT.write_text(text, encoding="utf-8")
    print(OUT, "written")


if __name__ == "__main__":
    main()
