"""The desk's HTML pages: login/logout, the workspace, the tickets list and a ticket, the statistics page."""
from __future__ import annotations

import logging
from typing import Optional
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select

from bot.models import Ticket
from bot.services.auth import APP_KEY as AUTH_KEY
from bot.services.auth import current_user, require_role
from bot.services.common.web import TEMPLATES, fmt_local, render
from bot.services.desk.knowledge import canned_replies, complaint_categories
from bot.services.desk.core import STAFF_ROLES, STATS_ROLES, DeskError, desk_of
from bot.services.desk.operations import list_tickets_sync, set_presence_sync, ticket_action_sync, ticket_detail
from bot.tickets import store as tickets

log = logging.getLogger(__name__)


async def login_page(request: web.Request) -> web.StreamResponse:
    auth = request.app[AUTH_KEY]
    if await auth.identify(request) is not None:
        raise web.HTTPFound("/desk/")
    response = web.Response(content_type="text/html", charset="utf-8")
    token = auth.prelogin_token(request, response)
    response.text = request.app[TEMPLATES].get_template("desk/login.html").render(
        csrf=token, error=request.query.get("error"), next=_safe_next(request.query.get("next")))
    return response


def _safe_next(value: Optional[str]) -> str:
    if value and value.startswith(("/desk", "/editor")) and not value.startswith("//") and "\\" not in value:
        return value
    return "/desk/"


async def login_submit(request: web.Request) -> web.StreamResponse:
    auth = request.app[AUTH_KEY]
    form = await request.post()
    target = _safe_next(form.get("next"))
    if not auth.check_prelogin(request, form.get("csrf_token")):
        raise web.HTTPFound("/desk/login?error=csrf")
    result = await auth.authenticate(request, str(form.get("username") or ""), str(form.get("password") or ""))
    if not result.ok:
        raise web.HTTPFound(f"/desk/login?error={result.reason}")
    if result.user and result.user.role == "editor" and target == "/desk/":
        target = "/editor/"
    response = web.HTTPFound(target)
    auth.start_session(response, result)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    desk = desk_of(request)
    if identity.role in STAFF_ROLES:
        await desk.db(set_presence_sync, identity.username, False)
    response = web.HTTPFound("/desk/login")
    await request.app[AUTH_KEY].logout(identity, response)
    raise response


@require_role("agent", "supervisor", "editor")
async def home(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    if identity.role == "editor":
        raise web.HTTPFound("/desk/stats")
    desk = desk_of(request)
    canned = canned_replies(desk)
    categories = complaint_categories(desk)
    return render(request, "desk/workspace.html", canned=canned, categories=categories,
                  handoff_timeout_s=desk.settings.handoff_timeout_s)


@require_role("agent", "supervisor")
async def tickets_page(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    filters = {k: request.query.get(k, "") for k in ("type", "status", "priority", "overdue")}
    if filters["priority"] and not filters["priority"].isdigit():
        filters["priority"] = ""
    rows = await desk.db(list_tickets_sync, filters)
    types = await desk.db(lambda s: sorted({t for (t,) in s.execute(select(Ticket.type).distinct())}))
    return render(request, "desk/tickets.html", rows=rows, filters=filters, types=types,
                  statuses=tickets.STATUSES, fmt=fmt_local)


@require_role("agent", "supervisor")
async def ticket_page(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    number = request.match_info["number"]
    user = current_user(request)

    def load(s):
        t = tickets.get_by_number(s, number)
        return ticket_detail(s, t, user) if t else None
    detail = await desk.db(load)
    if detail is None:
        raise web.HTTPNotFound(text="no such ticket")
    return render(request, "desk/ticket.html", t=detail, categories=complaint_categories(desk), fmt=fmt_local,
                  error=request.query.get("error"), done=request.query.get("done"))


async def ticket_form(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    if identity.role not in STAFF_ROLES:
        raise web.HTTPForbidden()
    desk = desk_of(request)
    number = request.match_info["number"]
    form = await request.post()
    do = str(form.get("do") or "")
    base = f"/desk/tickets/{quote(number)}"
    try:
        await desk.db(ticket_action_sync, number, identity, do, {k: str(v) for k, v in form.items()})
    except DeskError as exc:
        raise web.HTTPFound(f"{base}?error={exc.code}")
    desk.hub.wake()
    raise web.HTTPFound(f"{base}?done={do}")


@require_role(*STATS_ROLES)
async def stats_page(request: web.Request) -> web.StreamResponse:
    return render(request, "desk/stats.html")


async def to_desk(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/desk/")
