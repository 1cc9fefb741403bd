"""The audit log of knowledge edits and the published versions: diffs against the current one, rollback."""
from __future__ import annotations

import difflib
import json
import logging
from typing import Any, Dict, List
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select

from bot.kb import editing, loader, schema
from bot.models import AuditLog, KnowledgeVersion
from bot.services.auth import current_user, require_role
from bot.services.editor.common import EDIT_ROLES, conflict_page, editor_of, fmt_time, int_or_none, render
from bot.services.editor.fields import changes
from bot.services.editor.wording import ACTION_LABELS, SHOWTIMES, entity_label, field_label, knowledge_entities

log = logging.getLogger(__name__)


@require_role(*EDIT_ROLES)
async def audit_page(request: web.Request) -> web.StreamResponse:
    ed = editor_of(request)
    entity = request.query.get("entity", "")
    entities = knowledge_entities()
    wanted = [entity] if entity in entities else entities
    before_id = int_or_none(request.query.get("before"))
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
    limit = min(max(int_or_none(request.query.get("limit")) or 50, 1), 1000)

    def load(s):
        current = loader.version_id(s)
        return current, [{"id": v.id, "at": fmt_time(v.created_at), "author": v.author, "comment": v.comment,
                          "checksum": v.checksum[:10]} for v in loader.history(s, limit)]
    current, rows = await ed.db(load)
    more = f"/editor/versions?limit={limit * 2}" if len(rows) == limit else ""
    return render(request, "editor/versions.html", rows=rows, current=current, more=more,
                  rolled=int_or_none(request.query.get("rolled")), restored=int_or_none(request.query.get("from")))


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
    vid = int_or_none(request.match_info["vid"])

    def load(s):
        v = s.get(KnowledgeVersion, vid) if vid else None
        if v is None:
            return None
        current = loader.current_version(s)
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
    vid = int_or_none(request.match_info["vid"])
    form = await request.post()
    base_version = int_or_none(form.get("base_version"))

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
            current = loader.current_version(s)
            return ({"id": v.id, "at": fmt_time(v.created_at), "author": v.author, "comment": v.comment},
                    current.id, _file_diffs(current.files, v.files, f"当前版本{current.id}", f"版本{v.id}"))
        version, current, diffs = await ed.db(load)
        return render(request, "editor/version.html", status=422, v=version, current=current, diffs=diffs,
                      problems=[str(p) for p in exc.problems])
    log.info("editor: %s rolled the knowledge back to version %s (new version %s)", identity.username, vid, new_id)
    raise web.HTTPSeeOther(f"/editor/versions?rolled={new_id}&from={vid}")

