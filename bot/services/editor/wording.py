"""Chinese names of the knowledge's kinds, files and fields as the editor pages show them."""
from __future__ import annotations

from typing import Dict, List, Tuple

from bot.kb import editing

SHOWTIMES = "showtimes.csv"
SHOWTIME_COLUMNS = {"day": "日期", "start": "开场时间", "film": "影片", "hall": "厅号", "version": "版本"}

KIND_LABELS: Dict[str, str] = {
    "films": "影片",
    "halls": "影厅",
    "hall_types": "影厅类型",
    "prices": "票价",
    "ticket_types": "优惠票种",
    "refund_windows": "退改签时段",
    "levels": "会员等级",
    "exchange": "积分兑换",
    "facilities": "设施与服务（常见问题）",
    "viewing_rules": "观影须知（常见问题）",
    "order_problems": "订单问题（常见问题）",
    "complaint_categories": "投诉分类与处理话术",
    "questions": "各主题的具体问题（问法与回答模板）",
    "lexicon": "口语、缩写与错别字词表",
}
DOC_LABELS: Dict[str, str] = {
    "cinema.yml": "影城基本信息",
    "parking.yml": "停车规则",
    "refund.yml": "退改签通用规则",
    "services.yml": "团体票、包场与VIP预约",
    "lost_found.yml": "失物招领",
    "complaints.yml": "投诉安抚话术与转人工话术",
    "prices.yml": "票价通用规则（周末、节假日、早场）",
    "membership.yml": "会员通用规则（开卡、积分、生日）",
}
# index page: sections of the knowledge, each a list of (kind "records"/"document"/"showtimes", target)
SECTIONS: List[Tuple[str, List[Tuple[str, str]]]] = [
    ("影片与排片", [("records", "films"), ("showtimes", SHOWTIMES), ("records", "halls"), ("records", "hall_types")]),
    ("票价", [("records", "prices"), ("records", "ticket_types"), ("document", "prices.yml")]),
    ("退改签", [("records", "refund_windows"), ("document", "refund.yml")]),
    ("停车", [("document", "parking.yml")]),
    ("会员", [("records", "levels"), ("records", "exchange"), ("document", "membership.yml")]),
    ("设施与常见问题", [("records", "facilities"), ("records", "viewing_rules"), ("records", "order_problems"),
                 ("document", "services.yml"), ("document", "lost_found.yml")]),
    ("投诉与安抚话术", [("document", "complaints.yml"), ("records", "complaint_categories")]),
    ("影城信息", [("document", "cinema.yml")]),
    ("机器人理解", [("records", "questions"), ("records", "lexicon")]),
]
FIELD_LABELS: Dict[str, str] = {
    "address": "地址", "advance_days": "需提前天数", "advisory": "观影建议（分级提示）", "aliases": "别名",
    "amount": "优惠金额（元）", "anger": "愤怒识别", "answer": "回答", "apology_after": "处理后的致歉语",
    "arrival": "退款到账时间", "ask_facts": "询问事情经过的话术", "before": "此时间前开场", "beyond": "超出部分",
    "birthday": "生日福利", "callback": "回电说明", "callback_working_days": "回电时限（工作日）", "cast": "主演",
    "change_min_minutes_before": "改签需提前（分钟）", "changeable": "可改签", "chargers": "充电桩",
    "cinema_fault": "影城原因的处理", "claim": "认领方式", "code": "代码", "daily_cap": "每日封顶（元）",
    "default": "默认免费时长（小时）", "description": "介绍", "digits": "位数", "directions": "交通指引",
    "director": "导演", "discount": "折扣（如 0.9 即9折，留空为无）", "duty_manager": "值班经理",
    "early_show": "早场优惠", "earn": "积分规则", "emergency": "紧急情况", "empathy": "安抚话术（每行一句）",
    "end": "结束", "escalation": "转人工话术", "example": "示例", "exclude_hall_types": "不适用的影厅类型",
    "exclude_holidays": "法定节假日除外", "expiry": "积分有效期", "fee_per_hour": "每小时收费（元）",
    "fee_rate": "手续费比例（0–1）", "first_reply": "紧急情况首句回复", "first_show": "首场时间",
    "forbidden_phrases": "禁用说法", "formats": "放映格式（影厅类型，普通厅写 standard:2D / standard:3D）",
    "free_hours": "免费停车时长", "free_price_keys": "免费的票价项", "genre": "类型", "group": "团体票",
    "hall_types": "影厅类型", "handback": "人工结束、交回机器人", "handling": "处理话术", "height_limit": "限高",
    "holidays": "法定节假日（按周末价）", "hotline": "客服热线", "hotline_hours": "热线服务时间", "hours": "营业时间",
    "human_offline": "人工不在线时", "human_online": "转接人工时", "human_service": "人工客服时间",
    "item": "兑换物品", "keep": "保管说明", "keep_days": "保管天数", "key": "标识", "keywords": "关键词",
    "kinds": "票种", "label": "名称", "language": "语言", "last_show_start": "末场开场时间",
    "location": "位置", "member_levels": "会员等级", "min_fee": "最低手续费（元）",
    "min_minutes_before": "距开场至少（分钟）", "min_people": "最少人数", "name": "名称",
    "no_stacking": "优惠不叠加说明", "notes": "备注", "number": "厅号", "online_bot_hours": "在线机器人服务时间",
    "onsite": "需要现场处理", "opening_hours": "营业时间", "own_channels": "本影城渠道购票",
    "perks": "权益（每行一项）", "platforms": "第三方平台", "points": "积分",
    "points_multiplier": "积分倍数", "prefix": "前缀", "price_key": "票价项", "private_screening": "包场",
    "query": "积分查询", "rate": "折扣率（0–1）", "refundable": "可退票", "register": "登记信息",
    "registration": "登记说明", "release_date": "上映日期", "remedy": "补偿方案", "runtime_min": "片长（分钟）",
    "seats": "座位数", "signup": "开卡", "sla_minutes": "回复期限（分钟）", "special_screenings": "特殊场次",
    "special_tickets": "特殊票", "staff": "工作人员拾到物品", "start": "开始", "synopsis": "剧情简介",
    "text": "说明文字（机器人原样回答）", "third_party": "第三方平台购票", "threats": "投诉威胁关键词",
    "threshold": "升级门槛（积分）", "timeout": "排队超时", "timezone": "时区", "title": "片名", "type": "影厅类型",
    "upgrade": "升级规则", "vip_booking": "VIP厅预约", "weekday": "平日价（元）", "weekdays_only": "仅限星期",
    "weekend": "周末价（元）", "topic": "主题", "examples": "问法示例（每行一条）", "to": "标准说法",
    "variants": "写法（每行一条）", "kind": "类别", "weekend_days": "按周末价的星期", "wheelchair_seats": "轮椅席位", "where": "兑换地点",
    # audit rows of showtime uploads and rollbacks
    "complaint": "投诉", "complaint_onsite": "现场投诉", "handoff": "转人工",
    "lost_item": "失物", "order_problem": "订单问题", "refund": "退改签", "feedback": "意见建议",
    "added": "新增的场次", "removed": "删除的场次", "version": "版本", "restored_version": "恢复的版本",
}
SUMMARY_FIELDS: Dict[str, List[str]] = {
    "films": ["aliases", "genre", "runtime_min", "advisory"],
    "halls": ["name", "type", "seats"],
    "hall_types": ["name", "aliases", "price_key"],
    "prices": ["label", "weekday", "weekend"],
    "ticket_types": ["name", "rate", "text"],
    "refund_windows": ["refundable", "changeable", "fee_rate", "text"],
    "levels": ["name", "threshold", "discount"],
    "exchange": ["item"],
    "facilities": ["name", "answer"],
    "viewing_rules": ["name", "answer"],
    "order_problems": ["name", "answer"],
    "complaint_categories": ["handling", "remedy"],
    "questions": ["topic", "examples", "answer"],
    "lexicon": ["variants", "kind"],
}
SAMPLE_QUESTIONS: Dict[str, str] = {
    "films": "星际归途讲的是什么", "halls": "1号厅有多少座位", "hall_types": "IMAX厅有什么特别的",
    "prices": "IMAX票价多少", "ticket_types": "学生票怎么买", "refund_windows": "开场前一小时还能退票吗",
    "levels": "金卡会员有什么优惠", "exchange": "积分能换什么", "facilities": "有WiFi吗",
    "viewing_rules": "可以带外食进去吗", "order_problems": "付款了没出票怎么办",
    "complaint_categories": "", "questions": "超出免费时间怎么收费", "lexicon": "睇IMAX幾多錢",
    "cinema.yml": "影城地址在哪", "parking.yml": "停车怎么收费",
    "refund.yml": "电影票能退吗", "services.yml": "团体票怎么订", "lost_found.yml": "东西落在影厅了怎么办",
    "complaints.yml": "", "prices.yml": "周末票价多少", "membership.yml": "会员怎么办理",
    SHOWTIMES: "今天有什么电影",
}
# what the preview cannot show: wording used by the complaint and hand-off flows, not by knowledge answers
PREVIEW_HINTS: Dict[str, str] = {
    "complaints.yml": "安抚话术、转人工话术用在投诉和转人工的对话流程里，不是知识问答，这里无法预览机器人的回答；"
                      "发布前请仔细核对“本次修改”。禁用说法会在校验时检查。",
    "complaint_categories": "投诉分类的处理话术和补偿方案用在投诉流程里，这里无法预览机器人的回答；发布前请仔细核对“本次修改”。",
}
KEYED_HINTS = {"sla_minutes": "分钟数；或 working_day（下一个工作日内）"}
LONG_TEXT_KEYS = frozenset({"synopsis", "answer", "text", "description", "handling", "remedy", "registration",
                            "first_reply", "human_online", "human_offline", "timeout", "handback"})
LINE_LIST_KEYS = frozenset({"empathy", "perks", "notes"})
ACTION_LABELS = {"update": "修改", "create": "新增", "delete": "删除", "replace": "替换排片", "rollback": "回滚",
                 "revert": "撤销单个文件的修改", "cancel": "取消定时发布"}
ROLE_LABELS = {"agent": "坐席", "supervisor": "主管", "editor": "编辑"}



def knowledge_entities() -> List[str]:
    """Audit-log entities of knowledge edits."""
    return [*editing.RECORDS, *editing.DOCUMENTS, SHOWTIMES, "knowledge"]


def entity_label(entity: str) -> str:
    if entity in KIND_LABELS:
        return KIND_LABELS[entity]
    if entity in DOC_LABELS:
        return DOC_LABELS[entity]
    if entity == SHOWTIMES:
        return "排片"
    if entity == "knowledge":
        return "整个知识库"
    return entity


def field_label(name: str) -> str:
    key = name.rsplit(".", 1)[-1]
    return FIELD_LABELS.get(key, key)
