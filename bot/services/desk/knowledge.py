"""What the desk reads from the knowledge store: de-escalation scripts as canned replies, complaint
categories, and the wording of messages the desk sends (agent joined, satisfaction prompt)."""
from __future__ import annotations

import logging
from typing import Any, Dict, List

from bot.services.desk.core import Desk

log = logging.getLogger(__name__)


def _knowledge(desk: Desk):
    if desk.knowledge is None:
        from bot.db import session_factory
        from bot.kb.store import KnowledgeStore

        desk.knowledge = KnowledgeStore(session_factory(desk.db_url))
    try:
        return desk.knowledge.get()
    except LookupError as exc:
        log.warning("desk: %s", exc)
    except Exception:
        log.exception("desk: knowledge store unavailable")
    return None


def canned_replies(desk: Desk) -> List[Dict[str, Any]]:
    """De-escalation scripts from knowledge/complaints.yml, grouped for the reply box; each item has a
    shortcut the agent can type (``/道歉``, ``/安抚2``, ``/放映质量处理``)."""
    k = _knowledge(desk)
    if k is None:
        return []
    c = k.section("complaints")
    empathy = list(c.get("empathy") or [])
    groups: List[Dict[str, Any]] = [
        {"group": "empathy", "label": None,
         "items": [{"text": x, "shortcut": f"/安抚{i}"} for i, x in enumerate(empathy, start=1)]},
        {"group": "ask_facts", "label": None,
         "items": [{"text": c["ask_facts"], "shortcut": "/了解情况"}] if c.get("ask_facts") else []},
        {"group": "apology_after", "label": None,
         "items": [{"text": c["apology_after"], "shortcut": "/道歉"}] if c.get("apology_after") else []},
    ]
    for cat in c.get("categories") or []:
        code = cat.get("code") or ""
        items = [{"text": x, "shortcut": f"/{code}{what}"}
                 for x, what in ((cat.get("handling"), "处理"), (cat.get("remedy"), "补救")) if x]
        if items:
            groups.append({"group": "category", "label": code, "items": items})
    return [g for g in groups if g["items"]]


def canned_flat(groups: List[Dict[str, Any]]) -> List[Dict[str, str]]:
    """Every canned reply once, for the shortcut search."""
    seen, out = set(), []
    for g in groups:
        for item in g["items"]:
            if item["text"] not in seen:
                seen.add(item["text"])
                out.append({**item, "group": g["group"], "label": g.get("label") or ""})
    return out


def complaint_categories(desk: Desk) -> List[str]:
    k = _knowledge(desk)
    if k is None:
        return []
    return [c.get("code") for c in k.section("complaints").get("categories") or [] if c.get("code")]


def complaints_wording(desk: Desk, key: str) -> Dict[str, Any]:
    """A block of complaints.yml (``escalation``, ``satisfaction``, ``followup``); empty when missing."""
    k = _knowledge(desk)
    if k is None:
        return {}
    return dict(k.section("complaints").get(key) or {})
