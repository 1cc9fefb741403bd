"""The editors' login page: the same accounts, sessions and lockout as the desk (``bot.services.auth``),
named for knowledge editors and leading back into the editor."""
from __future__ import annotations

from typing import Optional

from aiohttp import web

from bot.services.auth import APP_KEY as AUTH_KEY
from bot.services.auth import current_user


def safe_next(value: Optional[str]) -> str:
    """Only a path inside the editor (no other site, no scheme-relative URL)."""
    if value and (value == "/editor" or value.startswith("/editor/")) and not value.startswith("//") \
            and "\\" not in value and not value.startswith("/editor/login"):
        return value
    return "/editor/"


async def login_page(request: web.Request) -> web.StreamResponse:
    auth = request.app[AUTH_KEY]
    identity = await auth.identify(request)
    if identity is not None:
        raise web.HTTPFound("/editor/" if identity.role in ("editor", "supervisor") else "/desk/")
    response = web.Response(content_type="text/html", charset="utf-8")
    token = auth.prelogin_token(request, response)
    response.text = request.app["xinghe.templates"].get_template("editor/login.html").render(
        csrf=token, error=request.query.get("error"), next=safe_next(request.query.get("next")))
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    auth = request.app[AUTH_KEY]
    form = await request.post()
    target = safe_next(str(form.get("next") or ""))
    if not auth.check_prelogin(request, form.get("csrf_token")):
        raise web.HTTPFound("/editor/login?error=csrf")
    result = await auth.authenticate(request, str(form.get("username") or ""), str(form.get("password") or ""))
    if not result.ok:
        raise web.HTTPFound(f"/editor/login?error={result.reason}")
    if result.user is not None and result.user.role == "agent":
        target = "/desk/"  # agents do not edit the knowledge; their place is the desk
    response = web.HTTPFound(target)
    auth.start_session(response, result)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """An editor's logout, back to the editors' login (desk staff log out on the desk: presence)."""
    identity = current_user(request)
    response = web.HTTPFound("/editor/login")
    await request.app[AUTH_KEY].logout(identity, response)
    raise response
