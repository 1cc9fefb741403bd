"""What every editor page shares: the app state (under a typed key), database calls, rendering, small helpers."""
from __future__ import annotations

import asyncio
import datetime as dt
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select

from bot.db import session_scope
from bot.kb import editing, loader, timeline
from bot.models import AuditLog
from bot.services.editor.wording import ROLE_LABELS, SHOWTIME_COLUMNS, field_label

EDIT_ROLES = ("editor", "supervisor")
STATIC_DIR = Path(__file__).resolve().parents[1] / "static" / "editor"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


@dataclass
class Editor:
    """The editor's state on the app: settings and the lock that serialises publishing in this process."""
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


EDITOR = web.AppKey("xinghe.editor", Editor)


def editor_of(request: web.Request) -> Editor:
    return request.app[EDITOR]


def _snapshot(s) -> Tuple[int, Dict[str, bytes]]:
    """The version in effect and its files (what the pages show and edits start from)."""
    return timeline.current_version_id(s), loader.current_files(s)



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


def record_url(kind: str, record_id: Optional[str]) -> str:
    if record_id is None:
        return f"/editor/new/{kind}"
    return f"/editor/records/{kind}/{quote(str(record_id), safe='')}"


def doc_url(name: str) -> str:
    return f"/editor/documents/{name.rsplit('.', 1)[0]}"


def kind_of(request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in editing.RECORDS:
        raise web.HTTPNotFound(text="没有这类记录")
    return kind


def document_of(request: web.Request) -> str:
    name = request.match_info["name"] + ".yml"
    if name not in editing.DOCUMENTS:
        raise web.HTTPNotFound(text="没有这个文件")
    return name


def int_or_none(value: Any) -> Optional[int]:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def last_change(s, entity: str, entity_id: Optional[str]) -> Optional[Dict[str, str]]:
    q = select(AuditLog).where(AuditLog.entity == entity)
    if entity_id is not None:
        q = q.where(AuditLog.entity_id == str(entity_id)[:128])
    row = s.execute(q.order_by(AuditLog.id.desc()).limit(1)).scalar_one_or_none()
    return {"actor": row.actor, "at": fmt_time(row.at)} if row else None


def version_row(s) -> Optional[Dict[str, Any]]:
    v = loader.current_version(s)
    return {"id": v.id, "author": v.author, "at": fmt_time(v.created_at), "comment": v.comment} if v else None


def conflict_page(request: web.Request, *, what: str, reload_url: str, who: Optional[Dict[str, str]],
                  submitted: List[Dict[str, str]], reason: str = "", theirs: Optional[List[Dict[str, str]]] = None,
                  deleted: bool = False) -> web.Response:
    """409: nothing was published. ``submitted``: what this editor changed; ``theirs``: what the other did."""
    return render(request, "editor/conflict.html", status=409, what=what, reload_url=reload_url, who=who,
                  submitted=submitted, theirs=theirs or [], deleted=deleted, reason=reason, field_label=field_label)



async def published(request: web.Request) -> Tuple[int, Dict[str, bytes]]:
    """The current version number and files; 503 while nothing was ever published."""
    version, files = await editor_of(request).db(_snapshot)
    if not files:
        raise web.HTTPServiceUnavailable(text="知识库还没有任何已发布的版本（请先运行 kb import）")
    return version, files


# --------------------------------------------------------------------------- publishing options
@dataclass(frozen=True)
class PublishOptions:
    """What the editor chose next to the publish button: a comment, now or a scheduled moment, warnings seen."""

    comment: str = ""
    at: Optional[dt.datetime] = None  # UTC; None: at once
    at_text: str = ""                 # as typed (datetime-local, cinema time)
    confirmed: bool = False
    later: bool = False               # "定时生效" was chosen (even with an unusable moment)

    @property
    def scheduled(self) -> bool:
        return self.at is not None


def local_now() -> dt.datetime:
    """The cinema's wall-clock time (naive), what editors type and sanity checks compare with."""
    return dt.datetime.now(LOCAL_TZ).replace(tzinfo=None)


def publish_options(form: Any) -> Tuple[PublishOptions, Optional[str]]:
    """The options of a submitted form, and a message when the chosen moment is not usable."""
    comment = " ".join(str(form.get("publish_comment") or "").split())[:200]
    at_text = str(form.get("publish_at") or "").strip()
    confirmed = str(form.get("publish_confirm") or "") == "1"
    if str(form.get("publish_when") or "now") != "later":
        return PublishOptions(comment, None, at_text, confirmed), None
    try:
        local = dt.datetime.fromisoformat(at_text.replace(" ", "T"))
    except ValueError:
        return PublishOptions(comment, None, at_text, confirmed, True), "请填写定时生效的日期和时刻。"
    if local <= local_now():
        return (PublishOptions(comment, None, at_text, confirmed, True),
                "定时生效的时间必须晚于现在；要马上生效请选“立即生效”。")
    at = local.replace(tzinfo=LOCAL_TZ).astimezone(dt.timezone.utc).replace(tzinfo=None)
    return PublishOptions(comment, at, at_text, confirmed, True), None


def pending_for(s, file: Optional[str] = None) -> List[Dict[str, Any]]:
    """Scheduled versions still to come (that change ``file``), for the notes on the edit pages."""
    return [{"id": e.id, "at": fmt_time(e.effective_at), "author": e.author, "comment": e.comment,
             "files": list(e.changed or ())}
            for e in timeline.pending(s) if file is None or e.touches(file)]


def problem_text(p: loader.Problem) -> str:
    """A validation problem as editors read it: Chinese where the validator has it."""
    if p.zh:
        where = "".join([f" 第{p.line}行" if p.line else "", f" {SHOWTIME_COLUMNS.get(p.column, p.column)}" if p.column else ""])
        return f"{p.file}{where}：{p.zh}"
    return str(p)
