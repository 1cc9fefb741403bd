"""Web helpers the project's aiohttp apps share: typed application keys, page rendering, JSON values and
Chinese error pages (403/404/500, each with a way back)."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Sequence

import jinja2
from aiohttp import web

from bot.tickets._common import to_local

log = logging.getLogger(__name__)

#: The application's settings (``bot.services.app.Settings``) and its Jinja environment.
SETTINGS = web.AppKey("xinghe.settings", object)
TEMPLATES = web.AppKey("xinghe.templates", jinja2.Environment)

#: Where the error pages send people back, by path prefix (longest first wins).
HOMES = {"/desk": ("/desk/", "返回坐席工作台"), "/editor": ("/editor/", "返回知识库编辑"),
         "/chat": ("/chat", "返回在线客服"), "": ("/", "返回首页")}

ERROR_TEXT = {
    403: ("没有权限", "您当前的账号无权打开这个页面。如需使用，请联系主管开通相应角色。"),
    404: ("页面不存在", "您要找的页面或记录不存在，可能已被删除，或链接有误。"),
    405: ("不支持的操作", "这个页面不支持这种打开方式，请从页面上的按钮操作。"),
    500: ("系统出错了", "服务器处理时出了错，您的操作可能没有完成。请稍后重试；问题持续时请联系管理员。"),
}


def jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601 (naive ones are UTC), recursively through dicts and lists."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc).isoformat() if value.tzinfo is None else value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def iso(value: Optional[dt.datetime]) -> Optional[str]:
    """Naive UTC from the database as ISO 8601 with an explicit zone (the browser shows local time)."""
    return jsonable(value) if value is not None else None


def fmt_local(value: Optional[str], with_date: bool = True) -> str:
    """An ISO timestamp as Asia/Shanghai wall-clock time for the server-rendered pages."""
    if not value:
        return ""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    return to_local(parsed).strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


def templates(app: web.Application) -> jinja2.Environment:
    return app[TEMPLATES]


def render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    """A template with the signed-in user, their CSRF token and the path in its context."""
    identity = request.get("xinghe.user")
    html = templates(request.app).get_template(name).render(
        user=identity, csrf=identity.csrf if identity else "", path=request.path, **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def _wants_html(request: web.Request) -> bool:
    if "/api/" in request.path or request.headers.get("X-Requested-With") == "fetch":
        return False
    return "text/html" in request.headers.get("Accept", "text/html") or not request.headers.get("Accept")


def home_for(path: str) -> tuple:
    for prefix in sorted(HOMES, key=len, reverse=True):
        if path.startswith(prefix):
            return HOMES[prefix]
    return HOMES[""]


def error_page(request: web.Request, status: int, detail: str = "") -> web.Response:
    title, text = ERROR_TEXT.get(status, ERROR_TEXT[500] if status >= 500 else ERROR_TEXT[404])
    back, back_label = home_for(request.path)
    env = templates(request.app)
    html = env.get_template("error.html").render(status=status, title=title, text=text, detail=detail,
                                                back=back, back_label=back_label)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


def error_pages(prefixes: Sequence[str] = ("/desk", "/editor", "/")) -> Callable:
    """Middleware: browsers get a Chinese page for 403/404/405/500 under ``prefixes``; API calls keep JSON."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        if not request.path.startswith(tuple(prefixes)) or not _wants_html(request):
            return await handler(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status in ERROR_TEXT:
                return error_page(request, exc.status)
            raise
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return error_page(request, 500)
        if response.status in ERROR_TEXT and response.status != 200 and not response.prepared \
                and (response.content_type or "").startswith("text/plain"):
            return error_page(request, response.status)
        return response

    return middleware


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter clamped to [low, high]; malformed values give the default."""
    try:
        return max(low, min(high, int(request.query.get(name, default))))
    except (TypeError, ValueError):
        return default


def page_window(total: int, page: int, per_page: int) -> Dict[str, Any]:
    """Pagination facts for a list page."""
    pages = max(1, (total + per_page - 1) // per_page)
    page = max(1, min(page, pages))
    return {"page": page, "pages": pages, "per_page": per_page, "total": total, "offset": (page - 1) * per_page,
            "prev": page - 1 if page > 1 else None, "next": page + 1 if page < pages else None}
