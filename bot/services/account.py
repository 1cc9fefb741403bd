"""A desk or editor user's own password page (``/desk/password``, ``/editor/password``): after a login with a
one-time password (first-run admin, ``make user``) it is the only page that opens until a new password is
set (``bot.services.auth`` redirects there); any user may use it to change theirs. The present password is
asked again, so a session left open cannot be used to take the account over."""
from __future__ import annotations

from typing import Optional

from aiohttp import web

from bot.services.auth import APP_KEY as AUTH_KEY
from bot.services.auth import MIN_PASSWORD_CHARS, PASSWORD_PATHS, current_user
from bot.services.common.web import TEMPLATES

HOMES = {"agent": "/desk/", "supervisor": "/desk/", "editor": "/editor/"}


def _area(request: web.Request) -> str:
    return "/editor" if request.path.startswith("/editor/") else "/desk"


def _safe_next(value: Optional[str], role: str) -> str:
    """A page of this site's desk or editor (never another site, never the password page itself)."""
    if value and value.startswith(("/desk/", "/editor/")) and not value.startswith("//") and "\\" not in value \
            and value.split("?")[0] not in PASSWORD_PATHS.values():
        return value
    return HOMES.get(role, "/desk/")


def _render(request: web.Request, *, error: str = "", next_url: str, status: int = 200) -> web.Response:
    identity = current_user(request)
    html = request.app[TEMPLATES].get_template("password.html").render(
        area=_area(request), action=request.path, user=identity.username, forced=identity.must_change_password,
        csrf=identity.csrf, error=error, next=next_url, min_chars=MIN_PASSWORD_CHARS)
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)


async def password_page(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    return _render(request, next_url=_safe_next(request.query.get("next"), identity.role))


async def password_submit(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    form = await request.post()
    next_url = _safe_next(str(form.get("next") or ""), identity.role)
    error = await request.app[AUTH_KEY].change_password(
        request, identity, str(form.get("current_password") or ""), str(form.get("new_password") or ""),
        str(form.get("new_password_again") or ""))
    if error:
        return _render(request, error=error, next_url=next_url, status=400)
    raise web.HTTPFound(next_url)


def setup_account(app: web.Application) -> None:
    for path in PASSWORD_PATHS.values():
        app.router.add_get(path, password_page)
        app.router.add_post(path, password_submit)
