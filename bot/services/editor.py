"""Knowledge editor pages of the agent-desk app (role ``editor``; supervisors too).

Every change goes the same way: the editor changes a form, **previews** it (the complete file set is
validated, the changes are listed, and the bot's answer to a sample question is computed from the draft),
then **publishes** it in one step. Nothing is stored between the two requests: the draft travels in the
form itself (plus a digest of what was previewed, so what is published is exactly what was previewed).

- Records of ``editing.RECORDS`` (films, prices, FAQs, complaint categories …) share one generic form whose
  inputs are derived from the pydantic schema (text, long text, numbers, yes/no, dates, comma-separated or
  one-per-line lists, YAML for nested values), with the schema's limits as HTML constraints.
- Top-level fields of ``editing.DOCUMENTS`` (parking fee, de-escalation wording …) use the same form.
- ``showtimes.csv`` is replaced by an uploaded CSV, previewed as added/removed rows.
- Optimistic locking: each form carries the etag of what it showed. Publishing re-applies the change to the
  files published *now*; if the record (or the document fields, or the showtimes file) changed since the
  page was loaded, the answer is 409 and nothing is written. Edits of other records published meanwhile are
  kept. The read-apply-publish step runs under a lock and passes the version it read to
  ``editing.publish_edit``, which refuses if another publish slipped in between.
- Validation problems (``loader.KnowledgeError``) come back in the form as ``file:line: reason``.
- Audit (``AuditLog`` rows of knowledge edits, newest first, with a field-level before/after diff) and
  versions (``loader.history``, a file diff against the current version, rollback to any version).

Routes are registered by ``setup_editor(app)`` (called by ``bot.services.app.create_app``).
"""
from __future__ import annotations

import asyncio
import copy
import datetime as dt
import difflib
import json
import logging
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import aiohttp
import yaml
from aiohttp import web
from pydantic import BaseModel
from pydantic.fields import SHAPE_LIST, SHAPE_SINGLETON, ModelField
from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from sqlalchemy import select

from bot.db import session_scope
from bot.kb import editing, loader, schema
from bot.models import AuditLog, KnowledgeVersion
from bot.services.auth import current_user, require_role
from bot.services.rasa_auth import auth_headers

log = logging.getLogger(__name__)

EDITOR_KEY = "xinghe.editor"
EDIT_ROLES = ("editor", "supervisor")
HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static" / "editor"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
RASA_TIMEOUT_S = 10.0
SHOWTIMES = "showtimes.csv"

# --------------------------------------------------------------------------- wording
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
LONG_TEXT_KEYS = frozenset({"synopsis", "answer", "text", "description", "handling", "remedy", "registration",
                            "first_reply", "human_online", "human_offline", "timeout", "handback"})
LINE_LIST_KEYS = frozenset({"empathy", "perks", "notes"})
ACTION_LABELS = {"update": "修改", "create": "新增", "delete": "删除", "replace": "替换排片", "rollback": "回滚"}
ROLE_LABELS = {"agent": "坐席", "supervisor": "主管", "editor": "编辑"}


# --------------------------------------------------------------------------- state
@dataclass
class Editor:
    settings: Any
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def db_url(self) -> str:
        return self.settings.db_url

    async def db(self, fn: Callable, *args: Any, locked: bool = False) -> Any:
        """``fn(session, *args)`` in a worker thread, in one transaction (under the publish lock if ``locked``)."""
        def run():
            if locked:
                with self.lock:
                    with session_scope(self.db_url) as s:
                        return fn(s, *args)
            with session_scope(self.db_url) as s:
                return fn(s, *args)
        return await asyncio.to_thread(run)


def editor_of(request: web.Request) -> Editor:
    return request.app[EDITOR_KEY]


def _snapshot(s) -> Tuple[int, Dict[str, bytes]]:
    return loader.version_id(s), loader.current_files(s)


# --------------------------------------------------------------------------- form fields from the schema
@dataclass
class FieldSpec:
    name: str                 # dotted path in the record/document, e.g. "escalation.human_online"
    key: str                  # last part
    label: str
    widget: str               # text, textarea, int, float, bool, date, list, lines, yaml
    item: str = "str"         # list items: str, int, float, date
    required: bool = True
    nullable: bool = False
    attrs: Dict[str, str] = field(default_factory=dict)
    group: str = ""           # label of the enclosing nested field ("" at the top)
    hint: str = ""

    @property
    def dom_id(self) -> str:
        return "f-" + self.name.replace(".", "-")


def _scalar(t: Any) -> Optional[str]:
    if not isinstance(t, type):
        return None
    if issubclass(t, bool):
        return "bool"
    if issubclass(t, int):
        return "int"
    if issubclass(t, float):
        return "float"
    if issubclass(t, dt.date):
        return "date"
    if issubclass(t, str):
        return "str"
    return None


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _constraints(t: Any, kind: str) -> Dict[str, str]:
    attrs: Dict[str, str] = {}
    if kind in ("int", "float"):
        for name, attr in (("ge", "min"), ("le", "max")):
            value = getattr(t, name, None)
            if value is not None:
                attrs[attr] = str(value)
        attrs["step"] = "1" if kind == "int" else "any"
    elif kind == "str":
        if getattr(t, "min_length", None):
            attrs["minlength"] = str(t.min_length)
        if getattr(t, "max_length", None):
            attrs["maxlength"] = str(t.max_length)
        regex = getattr(t, "regex", None)
        if regex is not None:
            pattern = (regex.pattern if hasattr(regex, "pattern") else str(regex)).removeprefix("^").removesuffix("$")
            if "-]" not in pattern and "[-" not in pattern:  # browsers compile it with the strict `v` flag
                attrs["pattern"] = pattern
    return attrs


def _spec(f: ModelField, prefix: str, value: Any, group: str) -> FieldSpec:
    key = f.alias
    name = f"{prefix}{key}"
    label = FIELD_LABELS.get(key, key)
    required = bool(f.required)
    nullable = bool(f.allow_none)
    kind = _scalar(f.type_)
    if f.shape == SHAPE_SINGLETON and kind is not None:
        attrs = _constraints(f.type_, kind)
        if kind == "str":
            text = "" if value is None else str(value)
            widget = "textarea" if key in LONG_TEXT_KEYS or len(text) > 40 or "\n" in text else "text"
            if required and attrs.get("minlength"):
                attrs["required"] = ""
        else:
            widget = kind
            if required and kind in ("int", "float", "date"):
                attrs["required"] = ""
        return FieldSpec(name, key, label, widget, required=required, nullable=nullable, attrs=attrs, group=group)
    if f.shape == SHAPE_LIST and kind is not None and kind != "bool":
        items = [str(v) for v in value] if isinstance(value, list) else []
        lines = key in LINE_LIST_KEYS or any("," in v or len(v) > 24 for v in items)
        hint = "每行一项" if lines else "多项用英文逗号 , 分隔"
        if kind == "date":
            hint += "（日期写 YYYY-MM-DD）"
        return FieldSpec(name, key, label, "lines" if lines else "list", item=kind, required=required,
                         nullable=nullable, group=group, hint=hint)
    return FieldSpec(name, key, label, "yaml", required=required, nullable=nullable, group=group,
                     hint="YAML 格式（键: 值，每行一项）")


def _specs_for_model(model: type, values: Dict[str, Any], exclude: Tuple[str, ...] = (), prefix: str = "",
                     group: str = "", depth: int = 0) -> List[FieldSpec]:
    specs: List[FieldSpec] = []
    for f in model.__fields__.values():
        if f.alias in exclude:
            continue
        value = (values or {}).get(f.alias)
        if f.shape == SHAPE_SINGLETON and _is_model(f.type_) and depth == 0:
            label = FIELD_LABELS.get(f.alias, f.alias)
            specs.extend(_specs_for_model(f.type_, value if isinstance(value, dict) else {},
                                          prefix=f"{prefix}{f.alias}.", group=f"{label}（{f.alias}）", depth=1))
        else:
            specs.append(_spec(f, prefix, value, group))
    return specs


def record_model(kind: str) -> type:
    name, key, _ = editing.RECORDS[kind]
    return schema.YAML_FILES[name].__fields__[key].type_


def record_specs(kind: str, record: Dict[str, Any]) -> List[FieldSpec]:
    return _specs_for_model(record_model(kind), record)


def document_fields(name: str) -> List[str]:
    """Top-level fields of a document edited on its page (record lists have their own pages)."""
    lists = {key for file, key, _ in editing.RECORDS.values() if file == name}
    return [f.alias for f in schema.YAML_FILES[name].__fields__.values() if f.alias not in lists]


def document_specs(name: str, doc: Dict[str, Any]) -> List[FieldSpec]:
    lists = tuple(key for file, key, _ in editing.RECORDS.values() if file == name)
    return _specs_for_model(schema.YAML_FILES[name], doc, exclude=lists)


# --------------------------------------------------------------------------- values <-> form text
MISSING = object()


def _get(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _has(data: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def _number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


def to_text(spec: FieldSpec, value: Any) -> str:
    """How a value is shown in its input."""
    if value is None:
        return ""
    if spec.widget == "bool":
        return "true" if value else "false"
    if spec.widget in ("int", "float"):
        return _number_text(value)
    if spec.widget == "list":
        return ", ".join(_number_text(v) for v in value) if isinstance(value, list) else str(value)
    if spec.widget == "lines":
        return "\n".join(_number_text(v) for v in value) if isinstance(value, list) else str(value)
    if spec.widget == "yaml":
        return yaml.safe_dump(value, allow_unicode=True, sort_keys=False, default_flow_style=False).strip()
    return str(value)


def _yaml_str(text: str) -> str:
    """A string that PyYAML (what the validator reads with) reads back as the same string: quoted when needed
    (``10:00`` would be the number 600, ``true`` a boolean, ``standard:3D`` is safer quoted)."""
    try:
        same = yaml.safe_load(text) == text
    except yaml.YAMLError:
        same = False
    if not same or text != text.strip() or any(c in text for c in ":#[]{},&*!|>'\"%@`"):
        return DoubleQuotedScalarString(text)
    return text


def _item(kind: str, text: str) -> Any:
    text = text.strip()
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return _number(text)
        if kind == "date":
            return dt.date.fromisoformat(text)
    except ValueError:
        return _yaml_str(text)  # the validator reports it with its line
    return _yaml_str(text)


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _yamlify(value: Any) -> Any:
    """Plain values (from the YAML text box) made safe to write: strings quoted where PyYAML needs it."""
    if isinstance(value, str):
        return _yaml_str(value)
    if isinstance(value, list):
        return [_yamlify(v) for v in value]
    if isinstance(value, dict):
        return {k: _yamlify(v) for k, v in value.items()}
    return value


def from_text(spec: FieldSpec, raw: str, mode: Optional[str] = None) -> Tuple[Any, Optional[str]]:
    """Parse an input's text; ``(MISSING, None)`` leaves the field out, a message is a form error.
    Unparseable numbers and dates are kept as text so the validator reports them with file and line."""
    raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    text = raw.strip()
    widget = mode if mode in ("list", "lines") and spec.widget in ("list", "lines") else spec.widget
    if widget in ("text", "textarea"):
        if not text and not spec.required:
            return (None if spec.nullable else MISSING), None
        return _yaml_str(text), None
    if widget in ("int", "float", "date"):
        if not text:
            return (None if spec.nullable else MISSING), None
        try:
            if widget == "int":
                return int(text), None
            if widget == "float":
                return _number(text), None
            return dt.date.fromisoformat(text), None
        except ValueError:
            return _yaml_str(text), None
    if widget == "bool":
        return text in ("true", "1", "on", "是"), None
    if widget in ("list", "lines"):
        parts = text.split("\n") if widget == "lines" else text.replace("\n", ",").split(",")
        seq = CommentedSeq([_item(spec.item, p) for p in parts if p.strip()])
        if widget == "list":
            seq.fa.set_flow_style()
        return seq, None
    # yaml
    if not text:
        return (None if spec.nullable or spec.required else MISSING), None
    try:
        return _yamlify(yaml.safe_load(text)), None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"第{mark.line + 1}行" if mark else ""
        return MISSING, f"{spec.label}（{spec.name}）{where}不是正确的 YAML：{getattr(exc, 'problem', exc)}"


def _set(data: Dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        if not isinstance(data.get(part), dict):
            data[part] = {}
        data = data[part]
    if value is MISSING:
        data.pop(parts[-1], None)
    else:
        data[parts[-1]] = value


def build_values(specs: List[FieldSpec], original: Dict[str, Any], form: Any) -> Tuple[Dict[str, Any], List[str]]:
    """The record/document after the form; fields the form did not send keep their value."""
    values = copy.deepcopy(original or {})
    errors: List[str] = []
    for spec in specs:
        raw = form.get(spec.name)
        if raw is None:
            if not _has(original, spec.name):
                continue
            raw = to_text(spec, _get(original, spec.name))
            mode = None
        else:
            mode = form.get(f"_mode.{spec.name}")
        value, error = from_text(spec, str(raw), mode)
        if error:
            errors.append(error)
            continue
        if value is MISSING and not _has(original, spec.name):
            continue
        _set(values, spec.name, value)
    return values, errors


def form_texts(specs: List[FieldSpec], values: Dict[str, Any], form: Any = None) -> Dict[str, str]:
    """Texts of the inputs: what the editor typed (when re-showing a form), else the stored values."""
    texts = {}
    for spec in specs:
        if form is not None and form.get(spec.name) is not None:
            texts[spec.name] = str(form.get(spec.name)).replace("\r\n", "\n")
        else:
            texts[spec.name] = to_text(spec, _get(values, spec.name))
    return texts


def plain(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def changes(before: Any, after: Any) -> List[Dict[str, str]]:
    """Field-level differences (top-level keys; nested dicts one level down) as JSON texts."""
    before, after = plain(before), plain(after)
    if not isinstance(before, dict) or not isinstance(after, dict):
        if before == after:
            return []
        return [{"field": "", "before": _json(before), "after": _json(after)}]
    rows = []
    for key in list(before) + [k for k in after if k not in before]:
        b, a = before.get(key), after.get(key)
        if b == a:
            continue
        if isinstance(b, dict) and isinstance(a, dict):
            for sub in list(b) + [k for k in a if k not in b]:
                if b.get(sub) != a.get(sub):
                    rows.append({"field": f"{key}.{sub}", "before": _json(b.get(sub), sub in b),
                                 "after": _json(a.get(sub), sub in a)})
        else:
            rows.append({"field": key, "before": _json(b, key in before), "after": _json(a, key in after)})
    return rows


def _json(value: Any, present: bool = True) -> str:
    if not present:
        return "（无）"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def field_label(name: str) -> str:
    key = name.rsplit(".", 1)[-1]
    return FIELD_LABELS.get(key, key)


def _field_problems(problems: List[loader.Problem], file: str, prefix: List[str],
                    specs: List[FieldSpec]) -> Dict[str, List[str]]:
    """Problems of the validator attached to the inputs they are about (``loc`` of pydantic's message)."""
    names = sorted((s.name for s in specs), key=len, reverse=True)
    out: Dict[str, List[str]] = {}
    for p in problems:
        if p.file != file:
            continue
        loc, sep, message = p.reason.partition(": ")
        if not sep:
            continue
        parts = loc.split(".")
        if parts[:len(prefix)] != prefix:
            continue
        rest = ".".join(parts[len(prefix):])
        for name in names:
            if rest == name or rest.startswith(name + "."):
                out.setdefault(name, []).append(f"第{p.line}行：{message}")
                break
    return out


# --------------------------------------------------------------------------- Rasa and the preview
@lru_cache(maxsize=1)
def intents() -> List[str]:
    """Intents the bot answers from the knowledge (for choosing one by hand when Rasa is unreachable)."""
    try:
        from bot.answers.topics import INTENT_TOPIC

        return sorted(INTENT_TOPIC)
    except Exception:  # pragma: no cover - the answers package is part of the project
        log.exception("editor: cannot list the intents")
        return []


async def rasa_parse(settings: Any, text: str) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """``/model/parse`` of the Rasa server; ``(None, message)`` when it cannot answer."""
    base = (settings.rasa_url or "").rstrip("/")
    url = f"{base}/model/parse"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=RASA_TIMEOUT_S)) as http:
            async with http.post(url, json={"text": text}, headers=auth_headers(settings.rasa_token)) as r:
                if r.status in (401, 403):
                    return None, f"Rasa 服务拒绝了请求（HTTP {r.status}），请检查 RASA_TOKEN 设置"
                if r.status >= 400:
                    return None, f"Rasa 服务返回错误（HTTP {r.status}）"
                return await r.json(content_type=None), None
    except asyncio.TimeoutError:
        return None, f"Rasa 服务（{base}）在 {RASA_TIMEOUT_S:g} 秒内没有响应"
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return None, f"无法连接 Rasa 服务（{base}）：{type(exc).__name__}"


def _answers(files: Dict[str, bytes], question: str, parse: Dict[str, Any]) -> Tuple[List[str], Optional[str]]:
    from bot.kb.preview import preview_answer

    try:
        return preview_answer(files, question, parse), None
    except loader.KnowledgeError as exc:
        return [], "草稿未通过校验：" + "；".join(str(p) for p in exc.problems[:3])
    except Exception as exc:  # a broken draft must not break the page
        log.exception("editor: preview failed")
        return [], f"预览失败：{type(exc).__name__}: {exc}"


async def preview(request: web.Request, question: str, chosen_intent: str, draft: Dict[str, bytes],
                  published: Dict[str, bytes]) -> Optional[Dict[str, Any]]:
    """The bot's answer to ``question`` now and after publishing the draft."""
    question = question.strip()[:200]
    if not question:
        return None
    settings = editor_of(request).settings
    parse, error = await rasa_parse(settings, question)
    result: Dict[str, Any] = {"question": question, "rasa_error": error, "intent": None, "confidence": None,
                              "entities": [], "source": "rasa", "before": [], "after": [], "error": None,
                              "no_topic": False}
    if chosen_intent and chosen_intent in intents():
        parse = dict(parse or {"entities": []})
        parse["intent"] = {"name": chosen_intent, "confidence": 1.0}
        result["source"] = "manual"
    if parse is None:
        return result
    result["intent"] = (parse.get("intent") or {}).get("name")
    result["confidence"] = (parse.get("intent") or {}).get("confidence")
    result["entities"] = [f"{e.get('entity')}={e.get('value')}" for e in parse.get("entities") or []]
    parse = {"intent": parse.get("intent"), "entities": parse.get("entities") or []}
    before, _ = await asyncio.to_thread(_answers, published, question, parse)
    after, err = await asyncio.to_thread(_answers, draft, question, parse)
    result.update(before=before, after=after, error=err)
    result["no_topic"] = not after and not err
    return result


# --------------------------------------------------------------------------- rendering
def fmt_time(value: Optional[dt.datetime]) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


def render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    env = request.app["xinghe.templates"]
    identity = request.get("xinghe.user")
    html = env.get_template(name).render(user=identity, csrf=identity.csrf if identity else "", path=request.path,
                                         role_labels=ROLE_LABELS, **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def _record_url(kind: str, record_id: Optional[str]) -> str:
    if record_id is None:
        return f"/editor/new/{kind}"
    return f"/editor/records/{kind}/{quote(str(record_id), safe='')}"


def _doc_url(name: str) -> str:
    return f"/editor/documents/{name.rsplit('.', 1)[0]}"


def _kind(request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in editing.RECORDS:
        raise web.HTTPNotFound(text="没有这类记录")
    return kind


def _document(request: web.Request) -> str:
    name = request.match_info["name"] + ".yml"
    if name not in editing.DOCUMENTS:
        raise web.HTTPNotFound(text="没有这个文件")
    return name


def _int(value: Any) -> Optional[int]:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _last_change(s, entity: str, entity_id: Optional[str]) -> Optional[Dict[str, str]]:
    q = select(AuditLog).where(AuditLog.entity == entity)
    if entity_id is not None:
        q = q.where(AuditLog.entity_id == str(entity_id)[:128])
    row = s.execute(q.order_by(AuditLog.id.desc()).limit(1)).scalar_one_or_none()
    return {"actor": row.actor, "at": fmt_time(row.at)} if row else None


def _version_row(s) -> Optional[Dict[str, Any]]:
    v = loader.latest_version(s)
    return {"id": v.id, "author": v.author, "at": fmt_time(v.created_at), "comment": v.comment} if v else None


def conflict_page(request: web.Request, *, what: str, reload_url: str, who: Optional[Dict[str, str]],
                  submitted: List[Dict[str, str]], reason: str = "") -> web.Response:
    return render(request, "editor/conflict.html", status=409, what=what, reload_url=reload_url, who=who,
                  submitted=submitted, reason=reason)


# --------------------------------------------------------------------------- pages: overview and lists
@require_role(*EDIT_ROLES)
async def index(request: web.Request) -> web.StreamResponse:
    ed = editor_of(request)

    def load(s):
        return _version_row(s), loader.current_files(s)
    version, files = await ed.db(load)
    counts: Dict[str, int] = {}
    if files:
        for kind in editing.RECORDS:
            try:
                counts[kind] = len(editing.list_records(files, kind))
            except Exception:
                counts[kind] = 0
        counts[SHOWTIMES] = max(0, files.get(SHOWTIMES, b"").decode("utf-8").strip().count("\n"))
    sections = []
    for title, items in SECTIONS:
        links = []
        for how, target in items:
            if how == "records":
                links.append({"href": f"/editor/records/{target}", "label": KIND_LABELS[target],
                              "count": counts.get(target), "file": editing.RECORDS[target][0]})
            elif how == "document":
                links.append({"href": _doc_url(target), "label": DOC_LABELS[target], "count": None, "file": target})
            else:
                links.append({"href": "/editor/showtimes", "label": "排片（CSV 批量上传）", "count": counts.get(SHOWTIMES),
                              "file": SHOWTIMES})
        sections.append({"title": title, "links": links})
    return render(request, "editor/index.html", version=version, sections=sections, empty=not files)


async def _published(request: web.Request) -> Tuple[int, Dict[str, bytes]]:
    version, files = await editor_of(request).db(_snapshot)
    if not files:
        raise web.HTTPServiceUnavailable(text="知识库还没有任何已发布的版本（请先运行 kb import）")
    return version, files


def _summary(value: Any) -> str:
    text = _json(plain(value)) if not isinstance(value, list) else "、".join(str(v) for v in value)
    return text if len(text) <= 60 else text[:58] + "…"


@require_role(*EDIT_ROLES)
async def records_page(request: web.Request) -> web.StreamResponse:
    kind = _kind(request)
    version, files = await _published(request)
    _, _, id_field = editing.RECORDS[kind]
    columns = SUMMARY_FIELDS.get(kind, [])
    rows = []
    for record in editing.list_records(files, kind):
        rid = record.get(id_field)
        rows.append({"id": rid, "href": _record_url(kind, rid),
                     "cells": [_summary(record.get(c)) if record.get(c) is not None else "" for c in columns]})
    return render(request, "editor/records.html", kind=kind, kind_label=KIND_LABELS[kind], id_field=id_field,
                  id_label=field_label(id_field), columns=[field_label(c) for c in columns], rows=rows,
                  file=editing.RECORDS[kind][0], version=version, new_url=_record_url(kind, None),
                  deleted=request.query.get("deleted"))


# --------------------------------------------------------------------------- the edit form (records and documents)
@dataclass
class Target:
    """What a form edits: a record of ``kind`` (``record_id`` None = a new one) or fields of document ``name``."""
    kind: Optional[str] = None
    record_id: Optional[str] = None
    name: Optional[str] = None

    @property
    def file(self) -> str:
        return editing.RECORDS[self.kind][0] if self.kind else self.name  # type: ignore[return-value]

    @property
    def url(self) -> str:
        return _record_url(self.kind, self.record_id) if self.kind else _doc_url(self.name)  # type: ignore[arg-type]

    @property
    def entity(self) -> str:
        return self.kind or self.name  # type: ignore[return-value]

    @property
    def title(self) -> str:
        if self.kind:
            label = KIND_LABELS[self.kind]
            return f"新增{label}" if self.record_id is None else f"{label}：{self.record_id}"
        return DOC_LABELS[self.name]  # type: ignore[index]

    def sample(self) -> str:
        if self.kind == "films" and self.record_id:
            return f"{self.record_id}讲的是什么"
        return SAMPLE_QUESTIONS.get(self.entity, "")

    def current(self, files: Dict[str, bytes]) -> Tuple[Dict[str, Any], str]:
        """The stored values and their etag (raises ``editing.NotFound``)."""
        if self.kind:
            if self.record_id is None:
                return {}, ""
            return editing.get_record(files, self.kind, self.record_id)
        doc, _ = editing.get_document(files, self.name)  # type: ignore[arg-type]
        shown = {k: doc[k] for k in document_fields(self.name) if k in doc}  # type: ignore[arg-type]
        return shown, editing.etag(shown)

    def specs(self, values: Dict[str, Any]) -> List[FieldSpec]:
        return record_specs(self.kind, values) if self.kind else document_specs(self.name, values)  # type: ignore[arg-type]


@dataclass
class Draft:
    """The result of applying a form to the published files."""
    files: Dict[str, bytes]
    before: Optional[Dict[str, Any]]
    after: Dict[str, Any]
    entity_id: str
    action: str
    changed: bool


def apply_form(target: Target, files: Dict[str, bytes], values: Dict[str, Any], expected_etag: str,
               delete: bool = False) -> Draft:
    """The files with the form's values applied; ``editing.Conflict`` when the stored values changed since
    ``expected_etag`` was read, ``editing.NotFound`` when the record is gone."""
    if target.kind:
        _, _, id_field = editing.RECORDS[target.kind]
        if delete:
            new, before = editing.delete_record(files, target.kind, target.record_id, expected_etag)  # type: ignore[arg-type]
            return Draft(new, before, {}, str(target.record_id), "delete", True)
        new_id = values.get(id_field)
        if target.record_id is None:
            new, _ = editing.put_record(files, target.kind, None, values, None)
            return Draft(new, None, plain(values), str(new_id), "create", True)
        if target.record_id is not None and str(new_id) != str(target.record_id) and new_id is not None:
            if any(str(r.get(id_field)) == str(new_id) for r in editing.list_records(files, target.kind)):
                raise DuplicateId(str(new_id))
        new, before = editing.put_record(files, target.kind, target.record_id, values, expected_etag)
        after = plain(values)
        return Draft(new, before, after, str(target.record_id), "update", plain(before) != after)
    shown, tag = target.current(files)
    if tag != expected_etag:
        raise editing.Conflict(target.name)
    changed: Dict[str, Any] = {}
    for k in [*shown, *(k for k in values if k not in shown)]:
        value = values.get(k)  # a field left empty that has no empty value becomes null: the validator says so
        if plain(value) == plain(shown.get(k)):
            continue
        if k not in shown and value in (None, "", []):
            continue
        changed[k] = value
    if not changed:
        return Draft(files, {}, {}, "", "update", False)
    new, before = editing.put_document_fields(files, target.name, changed, None)  # type: ignore[arg-type]
    return Draft(new, before, plain(changed), ",".join(changed)[:128], "update", True)


class DuplicateId(Exception):
    pass


def _digest(target: Target, expected_etag: str, draft: Draft) -> str:
    return editing.etag({"entity": target.entity, "id": target.record_id, "etag": expected_etag,
                         "action": draft.action, "after": draft.after})


def _locate(target: Target, files: Dict[str, bytes], values: Dict[str, Any]) -> List[str]:
    """loc prefix of the edited record in the (draft) file, for attaching problems to inputs."""
    if not target.kind:
        return []
    _, key, id_field = editing.RECORDS[target.kind]
    try:
        records = editing.list_records(files, target.kind)
    except Exception:
        return [key]
    wanted = str(values.get(id_field))
    for i, r in enumerate(records):
        if str(r.get(id_field)) == wanted:
            return [key, str(i)]
    return [key, str(len(records) - 1)]


async def _form_target(request: web.Request) -> Target:
    if "name" in request.match_info:
        return Target(name=_document(request))
    kind = _kind(request)
    rid = request.match_info.get("rid")
    return Target(kind=kind, record_id=rid)


async def form_page(request: web.Request) -> web.StreamResponse:
    target = await _form_target(request)
    version, files = await _published(request)
    try:
        values, tag = target.current(files)
    except editing.NotFound:
        raise web.HTTPNotFound(text="没有这条记录（可能已被删除）")
    specs = target.specs(values)
    return _render_form(request, target, specs=specs, texts=form_texts(specs, values), etag=tag,
                        base_version=version, current_version=version, question=target.sample(),
                        published=_int(request.query.get("published")))


def _render_form(request: web.Request, target: Target, *, specs: List[FieldSpec], texts: Dict[str, str], etag: str,
                 base_version: int, current_version: int, question: str = "", intent: str = "",
                 status: int = 200, problems: Optional[List[str]] = None, field_problems=None,
                 form_errors: Optional[List[str]] = None, diff: Optional[List[Dict[str, str]]] = None,
                 result: Optional[Dict[str, Any]] = None, digest: str = "", note: str = "",
                 published: Optional[int] = None, previewed: bool = False) -> web.Response:
    return render(request, "editor/form.html", status=status, target=target, title=target.title, specs=specs,
                  texts=texts, etag=etag, base_version=base_version, current_version=current_version,
                  question=question, intent=intent, intents=intents(), problems=problems or [],
                  field_problems=field_problems or {}, form_errors=form_errors or [], diff=diff or [],
                  result=result, digest=digest, note=note, published=published, previewed=previewed,
                  file=target.file, is_new=target.kind is not None and target.record_id is None,
                  can_delete=target.kind is not None and target.record_id is not None,
                  back_url=f"/editor/records/{target.kind}" if target.kind else "/editor/",
                  back_label=KIND_LABELS[target.kind] if target.kind else "概览", field_label=field_label,
                  preview_hint=PREVIEW_HINTS.get(target.entity, ""))


async def form_submit(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    ed = editor_of(request)
    target = await _form_target(request)
    form = await request.post()
    op = str(form.get("op") or "preview")
    expected_etag = str(form.get("etag") or "")
    base_version = _int(form.get("base_version")) or 0
    question = str(form.get("preview_question") or "")
    chosen_intent = str(form.get("preview_intent") or "")
    version, files = await _published(request)

    try:
        original, current_tag = target.current(files)
    except editing.NotFound:
        who = await ed.db(_last_change, target.entity, target.record_id)
        return conflict_page(request, what=target.title, reload_url=f"/editor/records/{target.kind}", who=who,
                             submitted=[], reason="这条记录已被其他人删除或改名。")
    specs = target.specs(original)
    if op == "delete" and target.kind and target.record_id is not None:
        values, form_errors = original, []
    else:
        values, form_errors = build_values(specs, original, form)
    texts = form_texts(specs, values, form)
    show = dict(specs=specs, texts=texts, etag=expected_etag, base_version=base_version, current_version=version,
                question=question, intent=chosen_intent)

    if target.kind and target.record_id is not None and expected_etag != current_tag:
        who = await ed.db(_last_change, target.entity, target.record_id)
        return conflict_page(request, what=target.title, reload_url=target.url, who=who,
                             submitted=changes(original, values) if op != "delete" else [])
    if form_errors:
        return _render_form(request, target, status=422, form_errors=form_errors, **show)
    try:
        draft = apply_form(target, files, values, expected_etag, delete=(op == "delete"))
    except editing.Conflict:
        who = await ed.db(_last_change, target.entity, target.record_id)
        if target.kind and target.record_id is None:  # a new record whose id exists
            _, _, id_field = editing.RECORDS[target.kind]
            return _render_form(request, target, status=422, form_errors=[
                f"已经有{field_label(id_field)}为「{values.get(id_field)}」的记录，请换一个或直接编辑那条记录。"], **show)
        return conflict_page(request, what=target.title, reload_url=target.url, who=who,
                             submitted=changes(original, values))
    except DuplicateId as exc:
        _, _, id_field = editing.RECORDS[target.kind]  # type: ignore[index]
        return _render_form(request, target, status=422, form_errors=[
            f"已经有{field_label(id_field)}为「{exc}」的记录，不能改成重复的。"], **show)

    problems: List[loader.Problem] = []
    try:
        await asyncio.to_thread(loader.validate, draft.files)
    except loader.KnowledgeError as exc:
        problems = exc.problems
    if problems:
        prefix = _locate(target, draft.files, values)
        return _render_form(request, target, status=422, problems=[str(p) for p in problems],
                            field_problems=_field_problems(problems, target.file, prefix, specs), **show)
    if not draft.changed:
        result = await preview(request, question, chosen_intent, draft.files, files)
        return _render_form(request, target, result=result, note="与当前发布的内容相同，没有需要发布的修改。", **show)

    digest = _digest(target, expected_etag, draft)
    if op in ("publish", "delete"):
        if op == "publish" and str(form.get("preview_digest") or "") != digest:
            result = await preview(request, question, chosen_intent, draft.files, files)
            return _render_form(request, target, diff=changes(draft.before, draft.after), result=result,
                                digest=digest, previewed=True,
                                note="内容在预览之后又有改动：请核对下面新的预览，再点“发布”。", **show)
        return await _publish_form(request, identity.username, target, values, expected_etag, base_version,
                                   delete=(op == "delete"))
    result = await preview(request, question, chosen_intent, draft.files, files)
    return _render_form(request, target, diff=changes(draft.before, draft.after), result=result, digest=digest,
                        previewed=True, **show)


async def _publish_form(request: web.Request, actor: str, target: Target, values: Dict[str, Any],
                        expected_etag: str, base_version: int, delete: bool) -> web.StreamResponse:
    ed = editor_of(request)

    def publish(s):
        version = loader.version_id(s)
        files = loader.current_files(s)
        draft = apply_form(target, files, values, expected_etag, delete=delete)
        new = editing.publish_edit(s, draft.files, actor=actor, entity=target.entity[:64],
                                   entity_id=draft.entity_id[:128], action=draft.action, before=draft.before,
                                   after=draft.after if not delete else None, base_version=version,
                                   comment=_comment(target, draft, base_version, version))
        return new.id if new is not None else version

    try:
        new_version = await ed.db(publish, locked=True)
    except (editing.Conflict, editing.NotFound):
        who = await ed.db(_last_change, target.entity, target.record_id)
        return conflict_page(request, what=target.title, reload_url=target.url, who=who, submitted=[])
    except loader.KnowledgeError as exc:  # valid at preview, invalid on top of a newer version
        version, files = await _published(request)
        original, _ = target.current(files)
        specs = target.specs(original)
        return _render_form(request, target, status=422, specs=specs, texts=form_texts(specs, values, await request.post()),
                            etag=expected_etag, base_version=base_version, current_version=version,
                            problems=[str(p) for p in exc.problems])
    log.info("editor: %s published %s %s as version %s", actor, target.entity, target.record_id or "", new_version)
    if delete:
        raise web.HTTPSeeOther(f"/editor/records/{target.kind}?{urlencode({'deleted': target.record_id})}")
    url = target.url
    if target.kind:
        _, _, id_field = editing.RECORDS[target.kind]
        url = _record_url(target.kind, values.get(id_field))
    raise web.HTTPSeeOther(f"{url}?published={new_version}")


def _comment(target: Target, draft: Draft, base_version: int, version: int) -> str:
    what = KIND_LABELS.get(target.kind or "", "") or DOC_LABELS.get(target.name or "", "")
    text = f"{ACTION_LABELS.get(draft.action, draft.action)}{what} {draft.entity_id}".strip()
    if base_version and base_version != version:
        text += f"（页面载入于版本 {base_version}）"
    return text[:255]


@require_role(*EDIT_ROLES)
async def record_form(request: web.Request) -> web.StreamResponse:
    if request.method == "POST":
        return await form_submit(request)
    return await form_page(request)


@require_role(*EDIT_ROLES)
async def new_record_form(request: web.Request) -> web.StreamResponse:
    if request.method == "POST":
        return await form_submit(request)
    return await form_page(request)


@require_role(*EDIT_ROLES)
async def document_form(request: web.Request) -> web.StreamResponse:
    if request.method == "POST":
        return await form_submit(request)
    return await form_page(request)


# --------------------------------------------------------------------------- showtimes
def _csv_text(raw: bytes) -> Tuple[str, Optional[str]]:
    """Uploaded bytes as text (UTF-8, or GB18030 as Excel saves it on Chinese Windows)."""
    try:
        text, note = raw.decode("utf-8"), None
    except UnicodeDecodeError:
        try:
            text, note = raw.decode("gb18030"), "文件不是 UTF-8 编码，已按 GB18030（Excel 中文默认）读取并转换为 UTF-8。"
        except UnicodeDecodeError:
            return "", "文件既不是 UTF-8 也不是 GB18030 编码的文本，请在 Excel 中“另存为 CSV UTF-8”。"
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if text and not text.endswith("\n"):
        text += "\n"
    return text, note


def _csv_rows(raw: bytes) -> List[Dict[str, str]]:
    import csv
    import io

    return [dict(r) for r in csv.DictReader(io.StringIO(raw.decode("utf-8").lstrip("\ufeff")))]


@require_role(*EDIT_ROLES)
async def showtimes_page(request: web.Request) -> web.StreamResponse:
    version, files = await _published(request)
    return render(request, "editor/showtimes.html", preview_hint="", rows=_csv_rows(files[SHOWTIMES]), version=version,
                  etag=editing.etag(files[SHOWTIMES].decode("utf-8")), base_version=version, question=SAMPLE_QUESTIONS[SHOWTIMES],
                  intent="", intents=intents(), change=None, problems=[], result=None, csv_text="", digest="",
                  note="", published=_int(request.query.get("published")), previewed=False)


@require_role(*EDIT_ROLES)
async def showtimes_csv(request: web.Request) -> web.StreamResponse:
    version, files = await _published(request)
    return web.Response(body=files[SHOWTIMES], content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f"attachment; filename=\"showtimes-v{version}.csv\""})


@require_role(*EDIT_ROLES)
async def showtimes_submit(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    ed = editor_of(request)
    form = await request.post()
    op = str(form.get("op") or "preview")
    expected_etag = str(form.get("etag") or "")
    base_version = _int(form.get("base_version")) or 0
    question = str(form.get("preview_question") or "")
    chosen_intent = str(form.get("preview_intent") or "")
    version, files = await _published(request)
    current = files[SHOWTIMES].decode("utf-8")

    upload = form.get("csv_file")
    raw: Optional[bytes] = None
    if upload is not None and hasattr(upload, "file") and getattr(upload, "filename", ""):
        raw = upload.file.read()
    if not raw and str(form.get("csv_text") or "").strip():
        raw = str(form.get("csv_text")).encode("utf-8")
    show = dict(preview_hint="", rows=_csv_rows(files[SHOWTIMES]), version=version, etag=expected_etag, base_version=base_version,
                question=question, intent=chosen_intent, intents=intents(), change=None, problems=[], result=None,
                csv_text="", digest="", note="", published=None, previewed=False)
    if not raw:
        show["note"] = "请选择要上传的 CSV 文件（或把 CSV 内容粘贴到文本框）。"
        return render(request, "editor/showtimes.html", status=422, **show)
    text, note = _csv_text(raw)
    show.update(csv_text=text, note=note or "")
    if not text:
        return render(request, "editor/showtimes.html", status=422, **show)
    if editing.etag(current) != expected_etag:
        who = await ed.db(_last_change, SHOWTIMES, None)
        return conflict_page(request, what="排片（showtimes.csv）", reload_url="/editor/showtimes", who=who,
                             submitted=[], reason="排片在您打开页面之后已被其他人发布过新的版本。")
    draft = dict(files)
    draft[SHOWTIMES] = text.encode("utf-8")
    try:
        change = editing.showtime_changes(files, draft[SHOWTIMES])
    except Exception as exc:
        change = None
        show["problems"] = [f"{SHOWTIMES}:1: 无法读取 CSV：{exc}"]
    try:
        await asyncio.to_thread(loader.validate, draft)
    except loader.KnowledgeError as exc:
        show["problems"] = [str(p) for p in exc.problems]
    show["change"] = change
    if show["problems"]:
        return render(request, "editor/showtimes.html", status=422, **show)
    if not change.added and not change.removed:  # type: ignore[union-attr]
        show["note"] = (show["note"] + " " if show["note"] else "") + "上传的排片与当前发布的完全相同，没有需要发布的修改。"
        return render(request, "editor/showtimes.html", **show)
    digest = editing.etag({"etag": expected_etag, "csv": text})
    show.update(digest=digest, previewed=True)
    if op == "publish" and str(form.get("preview_digest") or "") == digest:
        def publish(s):
            now = loader.version_id(s)
            latest = loader.current_files(s)
            if editing.etag(latest[SHOWTIMES].decode("utf-8")) != expected_etag:
                raise editing.Conflict(SHOWTIMES)
            new_files = dict(latest)
            new_files[SHOWTIMES] = text.encode("utf-8")
            delta = editing.showtime_changes(latest, new_files[SHOWTIMES])
            new = editing.publish_edit(s, new_files, actor=identity.username, entity=SHOWTIMES, entity_id="upload",
                                       action="replace", before={"removed": delta.removed},
                                       after={"added": delta.added}, base_version=now,
                                       comment=f"排片：新增{len(delta.added)}场，删除{len(delta.removed)}场")
            return new.id if new is not None else now
        try:
            new_version = await ed.db(publish, locked=True)
        except editing.Conflict:
            who = await ed.db(_last_change, SHOWTIMES, None)
            return conflict_page(request, what="排片（showtimes.csv）", reload_url="/editor/showtimes", who=who,
                                 submitted=[], reason="排片在您预览之后已被其他人发布过新的版本。")
        except loader.KnowledgeError as exc:
            show["problems"] = [str(p) for p in exc.problems]
            return render(request, "editor/showtimes.html", status=422, **show)
        raise web.HTTPSeeOther(f"/editor/showtimes?published={new_version}")
    if op == "publish":
        show["note"] = "内容在预览之后又有改动：请核对下面新的预览，再点“发布”。"
    show["result"] = await preview(request, question, chosen_intent, draft, files)
    return render(request, "editor/showtimes.html", **show)


# --------------------------------------------------------------------------- audit
def knowledge_entities() -> List[str]:
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


@require_role(*EDIT_ROLES)
async def audit_page(request: web.Request) -> web.StreamResponse:
    ed = editor_of(request)
    entity = request.query.get("entity", "")
    entities = knowledge_entities()
    wanted = [entity] if entity in entities else entities
    before_id = _int(request.query.get("before"))
    limit = 50

    def load(s):
        q = select(AuditLog).where(AuditLog.entity.in_(wanted))
        if before_id:
            q = q.where(AuditLog.id < before_id)
        rows = list(s.execute(q.order_by(AuditLog.id.desc()).limit(limit + 1)).scalars())
        out = []
        for r in rows[:limit]:
            out.append({"id": r.id, "at": fmt_time(r.at), "actor": r.actor, "entity": r.entity,
                        "entity_label": entity_label(r.entity), "entity_id": r.entity_id,
                        "action": ACTION_LABELS.get(r.action, r.action), "diff": _audit_diff(r),
                        "before": json.dumps(r.before, ensure_ascii=False, indent=2) if r.before is not None else "",
                        "after": json.dumps(r.after, ensure_ascii=False, indent=2) if r.after is not None else ""})
        return out, len(rows) > limit
    rows, more = await ed.db(load)
    older = f"/editor/audit?{urlencode({'entity': entity, 'before': rows[-1]['id']})}" if more and rows else ""
    return render(request, "editor/audit.html", rows=rows, entity=entity,
                  entities=[(e, entity_label(e)) for e in entities], older=older, field_label=field_label)


def _row_text(row: Dict[str, Any]) -> str:
    return " ".join(str(v) for v in row.values())


def _audit_diff(row: AuditLog) -> List[Dict[str, str]]:
    if row.entity == SHOWTIMES:
        removed = (row.before or {}).get("removed") or []
        added = (row.after or {}).get("added") or []
        rows = []
        if removed:
            rows.append({"field": "removed", "before": "\n".join(_row_text(r) for r in removed), "after": ""})
        if added:
            rows.append({"field": "added", "before": "", "after": "\n".join(_row_text(r) for r in added)})
        return rows
    return changes(row.before, row.after) if (row.before is not None or row.after is not None) else []


# --------------------------------------------------------------------------- versions and rollback
@require_role(*EDIT_ROLES)
async def versions_page(request: web.Request) -> web.StreamResponse:
    ed = editor_of(request)
    limit = min(max(_int(request.query.get("limit")) or 50, 1), 1000)

    def load(s):
        current = loader.version_id(s)
        return current, [{"id": v.id, "at": fmt_time(v.created_at), "author": v.author, "comment": v.comment,
                          "checksum": v.checksum[:10]} for v in loader.history(s, limit)]
    current, rows = await ed.db(load)
    more = f"/editor/versions?limit={limit * 2}" if len(rows) == limit else ""
    return render(request, "editor/versions.html", rows=rows, current=current, more=more,
                  rolled=_int(request.query.get("rolled")), restored=_int(request.query.get("from")))


def _file_diffs(old: Dict[str, str], new: Dict[str, str], old_label: str, new_label: str) -> List[Dict[str, Any]]:
    out = []
    for name in schema.ALL_FILES:
        a, b = (old.get(name) or ""), (new.get(name) or "")
        if a == b:
            continue
        lines = list(difflib.unified_diff(a.splitlines(), b.splitlines(), f"{old_label}/{name}", f"{new_label}/{name}",
                                          lineterm="", n=2))
        out.append({"name": name, "lines": [{"text": ln, "cls": "add" if ln.startswith("+") and not ln.startswith("+++")
                                             else "del" if ln.startswith("-") and not ln.startswith("---")
                                             else "hunk" if ln.startswith("@@") else ""} for ln in lines]})
    return out


@require_role(*EDIT_ROLES)
async def version_page(request: web.Request) -> web.StreamResponse:
    ed = editor_of(request)
    vid = _int(request.match_info["vid"])

    def load(s):
        v = s.get(KnowledgeVersion, vid) if vid else None
        if v is None:
            return None
        current = loader.latest_version(s)
        return ({"id": v.id, "at": fmt_time(v.created_at), "author": v.author, "comment": v.comment},
                current.id, _file_diffs(current.files, v.files, f"当前版本{current.id}", f"版本{v.id}"))
    found = await ed.db(load)
    if found is None:
        raise web.HTTPNotFound(text="没有这个版本")
    version, current, diffs = found
    return render(request, "editor/version.html", v=version, current=current, diffs=diffs, problems=[])


@require_role(*EDIT_ROLES)
async def rollback_submit(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    ed = editor_of(request)
    vid = _int(request.match_info["vid"])
    form = await request.post()
    base_version = _int(form.get("base_version"))

    def run(s):
        current = loader.version_id(s)
        if base_version is not None and base_version != current:
            raise editing.Conflict(f"{base_version} → {current}")
        if vid is None or s.get(KnowledgeVersion, vid) is None:
            raise editing.NotFound(str(vid))
        new = loader.rollback(s, vid, author=identity.username)
        s.add(AuditLog(actor=identity.username, entity="knowledge", entity_id=str(vid), action="rollback",
                       before={"version": current}, after={"version": new.id, "restored_version": vid}))
        s.flush()
        return new.id

    try:
        new_id = await ed.db(run, locked=True)
    except editing.NotFound:
        raise web.HTTPNotFound(text="没有这个版本")
    except editing.Conflict:
        return conflict_page(request, what=f"回滚到版本 {vid}", reload_url=f"/editor/versions/{vid}", who=None,
                             submitted=[], reason="您查看差异之后，知识库又发布了新的版本；请重新查看与当前版本的差异后再回滚。")
    except loader.KnowledgeError as exc:
        def load(s):
            v = s.get(KnowledgeVersion, vid)
            current = loader.latest_version(s)
            return ({"id": v.id, "at": fmt_time(v.created_at), "author": v.author, "comment": v.comment},
                    current.id, _file_diffs(current.files, v.files, f"当前版本{current.id}", f"版本{v.id}"))
        version, current, diffs = await ed.db(load)
        return render(request, "editor/version.html", status=422, v=version, current=current, diffs=diffs,
                      problems=[str(p) for p in exc.problems])
    log.info("editor: %s rolled the knowledge back to version %s (new version %s)", identity.username, vid, new_id)
    raise web.HTTPSeeOther(f"/editor/versions?rolled={new_id}&from={vid}")


# --------------------------------------------------------------------------- wiring
async def _to_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/editor/")


def setup_editor(app: web.Application) -> Editor:
    """Register the editor's routes on the desk application (``create_app`` calls this)."""
    settings = app["xinghe.settings"]
    ed = Editor(settings=settings)
    app[EDITOR_KEY] = ed
    r = app.router
    r.add_get("/editor", _to_index)
    r.add_get("/editor/", index)
    r.add_get("/editor/records/{kind}", records_page)
    r.add_get("/editor/records/{kind}/{rid}", record_form)
    r.add_post("/editor/records/{kind}/{rid}", record_form)
    r.add_get("/editor/new/{kind}", new_record_form)
    r.add_post("/editor/new/{kind}", new_record_form)
    r.add_get("/editor/documents/{name}", document_form)
    r.add_post("/editor/documents/{name}", document_form)
    r.add_get("/editor/showtimes", showtimes_page)
    r.add_post("/editor/showtimes", showtimes_submit)
    r.add_get("/editor/showtimes.csv", showtimes_csv)
    r.add_get("/editor/audit", audit_page)
    r.add_get("/editor/versions", versions_page)
    r.add_get("/editor/versions/{vid}", version_page)
    r.add_post("/editor/versions/{vid}/rollback", rollback_submit)
    r.add_static("/editor/static", STATIC_DIR, name="editor-static", append_version=True)
    return ed
