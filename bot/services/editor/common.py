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
from bot.kb import editing, loader
from bot.models import AuditLog
from bot.services.editor.wording import ROLE_LABELS

EDIT_ROLES = ("editor", "supervisor")
STATIC_DIR = Path(__file__).resolve().parents[1] / "static" / "editor"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


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


EDITOR = web.AppKey("xinghe.editor", Editor)


def editor_of(request: web.Request) -> Editor:
    return request.app[EDITOR]


def _snapshot(s) -> Tuple[int, Dict[str, bytes]]:
    return loader.version_id(s), loader.current_files(s)



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
    v = loader.latest_version(s)
    return {"id": v.id, "author": v.author, "at": fmt_time(v.created_at), "comment": v.comment} if v else None


def conflict_page(request: web.Request, *, what: str, reload_url: str, who: Optional[Dict[str, str]],
                  submitted: List[Dict[str, str]], reason: str = "") -> web.Response:
    return render(request, "editor/conflict.html", status=409, what=what, reload_url=reload_url, who=who,
                  submitted=submitted, reason=reason)



async def published(request: web.Request) -> Tuple[int, Dict[str, bytes]]:
    """The current version number and files; 503 while nothing was ever published."""
    version, files = await editor_of(request).db(_snapshot)
    if not files:
        raise web.HTTPServiceUnavailable(text="知识库还没有任何已发布的版本（请先运行 kb import）")
    return version, files
