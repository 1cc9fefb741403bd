"""A desk or editor user's own password page (``/desk/password``, ``/editor/password``): after a login with a
one-time password (first-run admin, ``make user``) it is the only page that opens until a new password is
set (``bot.services.auth`` redirects there); any logged-in user opens it from the 「修改密码」 link of the
desk's and the editor's top bar to change theirs. The present password is asked again, so a session left
open cannot be used to take the account over; the strength rules, the throttle, the audit entry and the
sign-out elsewhere are the same in both cases (``Auth.change_password``)."""
from __future__ import annotations

from typing import Optional
from urllib.parse import urlencode

from aiohttp import web

from bot.services.auth import APP_KEY as AUTH_KEY
from bot.services.auth import MIN_PASSWORD_CHARS, PASSWORD_PATHS, ROLES, Identity, current_user, require_role
from bot.services.common.web import TEMPLATES

HOMES = {"agent": "/desk/", "supervisor": "/desk/", "editor": "/editor/"}
#: The area whose pages a role may open (agents have no editor): its password page is the one they get.
AREAS = {"agent": ("/desk",), "supervisor": ("/desk", "/editor"), "editor": ("/editor", "/desk")}


def _area(request: web.Request) -> str:
    return "/editor" if request.path.startswith("/editor/") else "/desk"


def _safe_next(value: Optional[str], role: str) -> str:
    """A page of this site's desk or editor the role may open (never another site, never a password page)."""
    if value and value.startswith(("/desk/", "/editor/")) and not value.startswith("//") and "\\" not in value \
            and value.split("?")[0] not in PASSWORD_PATHS.values() \
            and value.startswith(tuple(area + "/" for area in AREAS.get(role, ()))):
        return value
    return HOMES.get(role, "/desk/")


def _own_area(request: web.Request, identity: Identity) -> None:
    """Send a user to the password page of an area their role opens (an agent has no editor)."""
    areas = AREAS.get(identity.role, ("/desk",))
    if _area(request) not in areas:
        raise web.HTTPFound(f"{PASSWORD_PATHS[areas[0]]}?{request.query_string}".rstrip("?"))


def _render(request: web.Request, *, error: str = "", next_url: str, done: bool = False,
            status: int = 200) -> web.Response:
    identity = current_user(request)
    html = request.app[TEMPLATES].get_template("password.html").render(
        area=_area(request), action=request.path, user=identity.username, forced=identity.must_change_password,
        csrf=identity.csrf, error=error, next=next_url, done=done, min_chars=MIN_PASSWORD_CHARS)
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)


@require_role(*ROLES)
async def password_page(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    _own_area(request, identity)
    done = request.query.get("done") == "1" and not identity.must_change_password
    return _render(request, next_url=_safe_next(request.query.get("next"), identity.role), done=done)


@require_role(*ROLES)
async def password_submit(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    _own_area(request, identity)
    form = await request.post()
    next_url = _safe_next(str(form.get("next") or ""), identity.role)
    error = await request.app[AUTH_KEY].change_password(
        request, identity, str(form.get("current_password") or ""), str(form.get("new_password") or ""),
        str(form.get("new_password_again") or ""))
    if error:
        return _render(request, error=error, next_url=next_url, status=400)
    if identity.must_change_password:
        raise web.HTTPFound(next_url)  # the one-time password is replaced: on to the page they asked for
    raise web.HTTPFound(f"{request.path}?{urlencode({'done': '1', 'next': next_url})}")


def setup_account(app: web.Application) -> None:
    for path in PASSWORD_PATHS.values():
        app.router.add_get(path, password_page)
        app.router.add_post(path, password_submit)
