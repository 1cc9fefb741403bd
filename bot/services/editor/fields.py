"""Form inputs derived from the pydantic schema, and the conversion between stored values and input text."""
from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import yaml
from pydantic import BaseModel
from pydantic.fields import SHAPE_DICT, SHAPE_LIST, SHAPE_MAPPING, SHAPE_SINGLETON, ModelField
from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from bot.kb import editing, loader, schema
from bot.services.editor.wording import FIELD_LABELS, KEYED_HINTS, LINE_LIST_KEYS, LONG_TEXT_KEYS


@dataclass
class FieldSpec:
    name: str                 # dotted path in the record/document, e.g. "escalation.human_online"
    key: str                  # last part
    label: str
    widget: str               # text, textarea, int, float, bool, date, list, lines, yaml, scalar (number or text)
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


Keys = Dict[str, List[Tuple[str, str]]]  # field name -> the (code, name) pairs its mapping is keyed by


def map_keys(files: Dict[str, bytes]) -> Keys:
    """What per-hall-type and per-member-level values are keyed by, from the knowledge itself."""
    keys: Keys = {}
    for field_name, kind in (("hall_types", "hall_types"), ("member_levels", "levels")):
        try:
            keys[field_name] = [(str(r["code"]), str(r.get("name") or r["code"])) for r in editing.list_records(files, kind)]
        except Exception:  # an invalid draft: the mapping falls back to its YAML box
            pass
    return keys


def _map_specs(f: ModelField, prefix: str, value: Any, group: str, codes: List[Tuple[str, str]]) -> List[FieldSpec]:
    """One number input per known key (a hall type, a member level) instead of a YAML box; empty = not set."""
    kind = _scalar(f.type_) or "int"
    label = FIELD_LABELS.get(f.alias, f.alias)
    sub = f"{group} · {label}" if group else label
    known = [c for c, _ in codes]
    extra = [(c, c) for c in (value or {}) if c not in known] if isinstance(value, dict) else []
    return [FieldSpec(f"{prefix}{f.alias}.{code}", code, f"{name}", kind, required=False, nullable=False,
                      attrs=_constraints(f.type_, kind), group=sub, hint="留空表示不单独设置")
            for code, name in [*codes, *extra]]


def _keyed_specs(f: ModelField, prefix: str, value: Dict[str, Any], group: str) -> List[FieldSpec]:
    """A mapping keyed by codes the program defines (e.g. reply deadlines per ticket type): one input per key."""
    label = FIELD_LABELS.get(f.alias, f.alias)
    sub = f"{group} · {label}" if group else label
    return [FieldSpec(f"{prefix}{f.alias}.{code}", code, FIELD_LABELS.get(code, code), "scalar", required=True,
                      attrs={"required": ""}, group=sub, hint=KEYED_HINTS.get(f.alias, ""))
            for code in value]


def _specs_for_model(model: type, values: Dict[str, Any], exclude: Tuple[str, ...] = (), prefix: str = "",
                     group: str = "", depth: int = 0, keys: Optional[Keys] = None) -> List[FieldSpec]:
    specs: List[FieldSpec] = []
    for f in model.__fields__.values():
        if f.alias in exclude:
            continue
        value = (values or {}).get(f.alias)
        if f.shape == SHAPE_SINGLETON and _is_model(f.type_) and depth == 0:
            label = FIELD_LABELS.get(f.alias, f.alias)
            specs.extend(_specs_for_model(f.type_, value if isinstance(value, dict) else {},
                                          prefix=f"{prefix}{f.alias}.", group=f"{label}（{f.alias}）", depth=1,
                                          keys=keys))
        elif f.shape in (SHAPE_DICT, SHAPE_MAPPING) and _scalar(f.type_) in ("int", "float") \
                and (keys or {}).get(f.alias):
            specs.extend(_map_specs(f, prefix, value, group, keys[f.alias]))  # type: ignore[index]
        elif f.shape in (SHAPE_DICT, SHAPE_MAPPING) and isinstance(value, dict) and value \
                and all(isinstance(v, (int, float, str)) for v in value.values()):
            specs.extend(_keyed_specs(f, prefix, value, group))
        else:
            specs.append(_spec(f, prefix, value, group))
    return specs


def record_model(kind: str) -> type:
    name, key, _ = editing.RECORDS[kind]
    return schema.YAML_FILES[name].__fields__[key].type_


def record_specs(kind: str, record: Dict[str, Any], keys: Optional[Keys] = None) -> List[FieldSpec]:
    return _specs_for_model(record_model(kind), record, keys=keys)


def document_fields(name: str) -> List[str]:
    """Top-level fields of a document edited on its page (record lists have their own pages)."""
    lists = {key for file, key, _ in editing.RECORDS.values() if file == name}
    return [f.alias for f in schema.YAML_FILES[name].__fields__.values() if f.alias not in lists]


def document_specs(name: str, doc: Dict[str, Any], keys: Optional[Keys] = None) -> List[FieldSpec]:
    lists = tuple(key for file, key, _ in editing.RECORDS.values() if file == name)
    return _specs_for_model(schema.YAML_FILES[name], doc, exclude=lists, keys=keys)


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
    if widget == "scalar":  # a number where it reads as one, else the text
        if not text:
            return MISSING, None
        try:
            return _number(text), None
        except ValueError:
            return _yaml_str(text), None
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
        return [{"field": "", "before": json_text(before), "after": json_text(after)}]
    rows = []
    for key in list(before) + [k for k in after if k not in before]:
        b, a = before.get(key), after.get(key)
        if b == a:
            continue
        if isinstance(b, dict) and isinstance(a, dict):
            for sub in list(b) + [k for k in a if k not in b]:
                if b.get(sub) != a.get(sub):
                    rows.append({"field": f"{key}.{sub}", "before": json_text(b.get(sub), sub in b),
                                 "after": json_text(a.get(sub), sub in a)})
        else:
            rows.append({"field": key, "before": json_text(b, key in before), "after": json_text(a, key in after)})
    return rows


def json_text(value: Any, present: bool = True) -> str:
    if not present:
        return "（无）"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)



def field_problems(problems: List[loader.Problem], file: str, prefix: List[str],
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

