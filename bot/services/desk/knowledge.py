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
    """De-escalation scripts from knowledge/complaints.yml, grouped for the reply box."""
    k = _knowledge(desk)
    if k is None:
        return []
    c = k.section("complaints")
    groups: List[Dict[str, Any]] = [
        {"group": "empathy", "label": None, "items": list(c.get("empathy") or [])},
        {"group": "ask_facts", "label": None, "items": [c["ask_facts"]] if c.get("ask_facts") else []},
        {"group": "apology_after", "label": None, "items": [c["apology_after"]] if c.get("apology_after") else []},
    ]
    for cat in c.get("categories") or []:
        items = [x for x in (cat.get("handling"), cat.get("remedy")) if x]
        if items:
            groups.append({"group": "category", "label": cat.get("code"), "items": items})
    return [g for g in groups if g["items"]]


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


def sla_minutes(desk: Desk) -> Dict[str, Any]:
    k = _knowledge(desk)
    return dict(k.section("complaints").get("sla_minutes") or {}) if k is not None else {}
