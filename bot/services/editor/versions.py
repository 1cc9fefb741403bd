"""The audit log of knowledge edits and the published versions: diffs against the current one, rollback."""
from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
from typing import Any, Dict, List, Optional
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select

from bot.kb import editing, loader, schema, timeline
from bot.models import AuditLog, KnowledgeVersion, utcnow
from bot.services.auth import current_user, require_role
from bot.services.editor.common import (EDIT_ROLES, conflict_page, editor_of, fmt_time, int_or_none, problem_text,
                                        render)
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
def _files_text(changed: Optional[tuple]) -> str:
    if changed is None or set(changed) == set(schema.ALL_FILES):
        return "全部文件"
    return "、".join(changed) or "（无改动）"


def _status(e: timeline.Entry, current: int, now: dt.datetime) -> str:
    if e.cancelled:
        return "cancelled"
    if e.effective_at > now:
        return "pending"
    return "current" if e.id == current else "past"


@require_role(*EDIT_ROLES)
async def versions_page(request: web.Request) -> web.StreamResponse:
    ed = editor_of(request)
    limit = min(max(int_or_none(request.query.get("limit")) or 50, 1), 1000)

    def load(s):
        now = utcnow()
        current = timeline.current_version_id(s, now)
        entries = sorted(timeline.entries(s), key=lambda e: e.id, reverse=True)[:limit]
        return current, loader.version_id(s), [
            {"id": e.id, "at": fmt_time(e.created_at), "effective": fmt_time(e.effective_at)[:16],
             "scheduled": e.effective_at > e.created_at + dt.timedelta(seconds=1), "author": e.author,
             "comment": e.comment, "status": _status(e, current, now),
             "files": _files_text(e.changed)} for e in entries]
    current, latest, rows = await ed.db(load)
    more = f"/editor/versions?limit={limit * 2}" if len(rows) == limit else ""
    q = request.query
    return render(request, "editor/versions.html", rows=rows, current=current, latest=latest, more=more,
                  rolled=int_or_none(q.get("rolled")), restored=int_or_none(q.get("from")),
                  reverted=int_or_none(q.get("reverted")), reverted_file=q.get("file", ""),
                  cancelled=int_or_none(q.get("cancelled")))


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


def _version_view(s, vid: Optional[int]) -> Optional[Dict[str, Any]]:
    """A version: what it changed (file by file), and how the knowledge now differs from its state."""
    e = timeline.entry(s, vid) if vid else None
    if e is None:
        return None
    now = utcnow()
    current = timeline.current_version_id(s, now)
    before, through = timeline.files_before(s, e), timeline.files_through(s, e)
    now_files = timeline.files_at(s, now)
    return {"v": {"id": e.id, "at": fmt_time(e.created_at), "effective": fmt_time(e.effective_at)[:16],
                  "author": e.author, "comment": e.comment, "status": _status(e, current, now)},
            "current": current, "latest": loader.version_id(s),
            "own": _file_diffs(before, through, f"版本{e.id}之前", f"版本{e.id}"),
            "diffs": _file_diffs(now_files, through, "现在", f"版本{e.id}生效时")}


async def _version_page(request: web.Request, vid: Optional[int], status: int = 200,
                        problems: Optional[List[str]] = None, note: str = "") -> web.Response:
    found = await editor_of(request).db(_version_view, vid)
    if found is None:
        raise web.HTTPNotFound(text="没有这个版本")
    return render(request, "editor/version.html", status=status, problems=problems or [], note=note, **found)


@require_role(*EDIT_ROLES)
async def version_page(request: web.Request) -> web.StreamResponse:
    return await _version_page(request, int_or_none(request.match_info["vid"]))


def _stale(s, base_version: Optional[int]) -> None:
    latest = loader.version_id(s)
    if base_version is not None and base_version != latest:
        raise editing.Conflict(f"{base_version} → {latest}")


_STALE = "您查看这个版本之后，知识库又发布了新的版本；请重新查看后再操作。"


@require_role(*EDIT_ROLES)
async def rollback_submit(request: web.Request) -> web.StreamResponse:
    """The knowledge as it was once that version took effect, published again as a new version."""
    identity = current_user(request)
    vid = int_or_none(request.match_info["vid"])
    form = await request.post()

    def run(s):
        _stale(s, int_or_none(form.get("base_version")))
        current = timeline.current_version_id(s)
        if vid is None or s.get(KnowledgeVersion, vid) is None:
            raise editing.NotFound(str(vid))
        new = loader.rollback(s, vid, author=identity.username)
        s.add(AuditLog(actor=identity.username, entity="knowledge", entity_id=str(vid), action="rollback",
                       before={"version": current}, after={"version": new.id, "restored_version": vid}))
        s.flush()
        return new.id

    try:
        new_id = await editor_of(request).db(run, locked=True)
    except editing.NotFound:
        raise web.HTTPNotFound(text="没有这个版本")
    except editing.Conflict:
        return conflict_page(request, what=f"回滚到版本 {vid}", reload_url=f"/editor/versions/{vid}", who=None,
                             submitted=[], reason=_STALE)
    except loader.KnowledgeError as exc:
        return await _version_page(request, vid, 422, [problem_text(p) for p in exc.problems])
    log.info("editor: %s rolled the knowledge back to version %s (new version %s)", identity.username, vid, new_id)
    raise web.HTTPSeeOther(f"/editor/versions?rolled={new_id}&from={vid}")


@require_role(*EDIT_ROLES)
async def revert_submit(request: web.Request) -> web.StreamResponse:
    """Undo what one version changed in one file, keeping every later change."""
    identity = current_user(request)
    vid = int_or_none(request.match_info["vid"])
    form = await request.post()
    name = str(form.get("file") or "")
    if name not in schema.ALL_FILES:
        raise web.HTTPNotFound(text="没有这个文件")

    def run(s):
        _stale(s, int_or_none(form.get("base_version")))
        e = timeline.entry(s, vid) if vid else None
        if e is None:
            raise editing.NotFound(str(vid))
        new = loader.revert_file(s, e.id, name, author=identity.username,
                                 comment=f"撤销版本 {e.id} 对 {name} 的修改")
        if new is None:
            return None
        s.add(AuditLog(actor=identity.username, entity=name, entity_id=str(vid), action="revert",
                       before={"version": e.id}, after={"version": new.id}))
        s.flush()
        return new.id

    try:
        new_id = await editor_of(request).db(run, locked=True)
    except editing.NotFound:
        raise web.HTTPNotFound(text="没有这个版本")
    except editing.Conflict:
        return conflict_page(request, what=f"撤销版本 {vid} 对 {name} 的修改", reload_url=f"/editor/versions/{vid}",
                             who=None, submitted=[], reason=_STALE)
    except loader.KnowledgeError as exc:
        return await _version_page(request, vid, 422, [problem_text(p) for p in exc.problems])
    if new_id is None:
        return await _version_page(request, vid, note=f"{name} 里版本 {vid} 的修改已经不在了，没有需要撤销的内容。")
    log.info("editor: %s undid version %s in %s (new version %s)", identity.username, vid, name, new_id)
    raise web.HTTPSeeOther(f"/editor/versions?{urlencode({'reverted': new_id, 'from': vid, 'file': name})}")


@require_role(*EDIT_ROLES)
async def cancel_submit(request: web.Request) -> web.StreamResponse:
    """Withdraw a scheduled version before its moment."""
    identity = current_user(request)
    vid = int_or_none(request.match_info["vid"])

    def run(s):
        if vid is None or s.get(KnowledgeVersion, vid) is None:
            raise editing.NotFound(str(vid))
        loader.cancel(s, vid, actor=identity.username)
        s.add(AuditLog(actor=identity.username, entity="knowledge", entity_id=str(vid), action="cancel",
                       before={"version": vid}, after=None))

    try:
        await editor_of(request).db(run, locked=True)
    except editing.NotFound:
        raise web.HTTPNotFound(text="没有这个版本")
    except loader.KnowledgeError as exc:
        return await _version_page(request, vid, 422, [problem_text(p) for p in exc.problems])
    log.info("editor: %s cancelled scheduled version %s", identity.username, vid)
    raise web.HTTPSeeOther(f"/editor/versions?cancelled={vid}")
