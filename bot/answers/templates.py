"""Answer templates over the knowledge store: ``{parking.fee_per_hour}``, ``{refund.windows[1].text}``,
``{prices.ticket_types[student].text}``, ``{film.runtime_min}``, ``{hall_type.name}``.

A path starts with a knowledge file's name (without ``.yml``) or with ``film`` / ``hall_type`` (the film
or hall type the patron is talking about). ``[n]`` picks the n-th item of a list, ``[code]`` the item
whose code/key/name/to equals it. Lists of words are joined with 、, whole numbers print without
decimals. Editors change the fact in its own file and every answer that quotes it follows.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*(?:\[[^\]]+\]|\.[a-z0-9_]+)*)\}")
_STEP = re.compile(r"\.?([a-z0-9_]+)|\[([^\]]+)\]")
OBJECTS = ("film", "hall_type")


class TemplateError(ValueError):
    pass


def _pick(items: List[Any], selector: str) -> Any:
    if selector.isdigit():
        return items[int(selector)]
    for item in items:
        if isinstance(item, dict) and selector in (str(item.get(k)) for k in ("code", "key", "name", "to", "points")):
            return item
    raise TemplateError(f"no item {selector}")


def resolve(path: str, scope: Dict[str, Any]) -> Any:
    value: Any = scope
    for name, selector in _STEP.findall(path):
        try:
            if name:
                value = value[name] if isinstance(value, dict) else getattr(value, name)
            else:
                value = _pick(value, selector)
        except (KeyError, IndexError, AttributeError, TypeError) as exc:
            raise TemplateError(f"{{{path}}} does not name a value in the knowledge") from exc
    return value


def show(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "、".join(show(v) for v in value)
    if hasattr(value, "month") and hasattr(value, "day") and hasattr(value, "year"):
        return f"{value.year}年{value.month}月{value.day}日"
    if isinstance(value, dict):
        raise TemplateError("a placeholder must name a single value, not a whole section")
    return str(value)


def needs(template: str) -> List[str]:
    """The objects (film, hall_type) a template needs from the conversation."""
    return sorted({m.group(1).split(".")[0].split("[")[0] for m in PLACEHOLDER.finditer(template)} & set(OBJECTS))


def render(template: str, sections: Dict[str, Any], film: Any = None, hall_type: Any = None) -> str:
    scope: Dict[str, Any] = dict(sections)
    scope["film"], scope["hall_type"] = film, hall_type
    return PLACEHOLDER.sub(lambda m: show(resolve(m.group(1), scope)), template)


def check(template: str, sections: Dict[str, Any], sample_film: Optional[Any] = None,
          sample_hall_type: Optional[Any] = None) -> Optional[str]:
    """Why the template cannot be filled from these sections (None when it can)."""
    if template.count("{") != template.count("}"):
        return "unbalanced { }"
    for m in PLACEHOLDER.finditer(template):
        root = m.group(1).split(".")[0].split("[")[0]
        if root in OBJECTS:
            target = sample_film if root == "film" else sample_hall_type
            if target is None:
                continue
        elif root not in sections:
            return f"{{{m.group(1)}}}: no knowledge file {root}.yml"
        try:
            show(resolve(m.group(1), {**sections, "film": sample_film, "hall_type": sample_hall_type}))
        except TemplateError as exc:
            return str(exc)
    leftover = PLACEHOLDER.sub("", template)
    if "{" in leftover or "}" in leftover:
        return "a placeholder is not of the form {file.field}"
    return None
