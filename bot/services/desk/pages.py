"""The desk's HTML pages: login/logout, the workspace, the tickets list and a ticket, the statistics page."""
from __future__ import annotations

import logging
from typing import Optional
from urllib.parse import quote, urlencode

from aiohttp import web
from sqlalchemy import select

from bot.models import Ticket
from bot.services.auth import APP_KEY as AUTH_KEY
from bot.services.auth import current_user, require_role
from bot.services.common.web import TEMPLATES, fmt_local, query_int, render
from bot.services.desk import followup
from bot.services.desk.patrons import reveal_phone_sync, reveals_sync
from bot.services.desk.knowledge import canned_flat, canned_replies, complaint_categories
from bot.services.desk.core import STAFF_ROLES, STATS_ROLES, DeskError, desk_of
from bot.services.desk.operations import search_tickets_sync, set_presence_sync, ticket_action_sync, ticket_detail
from bot.tickets import staff
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
    name = await desk.db(staff.display_name, identity.username)
    return render(request, "desk/workspace.html", canned=canned, canned_flat=canned_flat(canned),
                  categories=categories, display_name=name, handoff_timeout_s=desk.settings.handoff_timeout_s)


@require_role("agent", "supervisor")
async def tickets_page(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    filters = {k: request.query.get(k, "") for k in ("type", "status", "priority", "overdue", "q")}
    if filters["priority"] and not filters["priority"].isdigit():
        filters["priority"] = ""
    page = query_int(request, "page", 1, 1, 10_000)
    found = await desk.db(search_tickets_sync, filters, page)
    types = await desk.db(lambda s: sorted({t for (t,) in s.execute(select(Ticket.type).distinct())}))
    keep = {k: v for k, v in filters.items() if v}
    return render(request, "desk/tickets.html", rows=found["rows"], page=found["page"], filters=filters, types=types,
                  statuses=tickets.STATUSES, fmt=fmt_local, query=lambda **kw: urlencode({**keep, **kw}))


@require_role("agent", "supervisor")
async def ticket_page(request: web.Request) -> web.StreamResponse:
    number = request.match_info["number"]
    user = current_user(request)
    return await _ticket_view(request, number, user)


async def _ticket_view(request: web.Request, number: str, user, revealed: Optional[str] = None) -> web.Response:
    desk = desk_of(request)

    def load(s):
        t = tickets.get_by_number(s, number)
        if t is None:
            return None
        detail = ticket_detail(s, t, user)
        detail["phone_masked"] = detail["contact_phone"]
        detail["reveals"] = reveals_sync(s, t.number)
        return detail
    detail = await desk.db(load)
    if detail is None:
        raise web.HTTPNotFound()
    return render(request, "desk/ticket.html", t=detail, categories=complaint_categories(desk), fmt=fmt_local,
                  error=request.query.get("error"), done=request.query.get("done"), revealed=revealed,
                  followup=request.query.get("followup"))


async def ticket_form(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    if identity.role not in STAFF_ROLES:
        raise web.HTTPForbidden()
    desk = desk_of(request)
    number = request.match_info["number"]
    form = await request.post()
    do = str(form.get("do") or "")
    base = f"/desk/tickets/{quote(number)}"
    if do == "reveal_phone":  # shown on this response only; the audit log names who looked
        try:
            found = await desk.db(reveal_phone_sync, number, identity)
        except DeskError as exc:
            raise web.HTTPFound(f"{base}?error={exc.code}")
        return await _ticket_view(request, number, identity, revealed=found["phone"])
    try:
        await desk.db(ticket_action_sync, number, identity, do, {k: str(v) for k, v in form.items()})
    except DeskError as exc:
        raise web.HTTPFound(f"{base}?error={exc.code}")
    extra = ""
    if do == "resolve":  # 回访: told in the patron's channel, or a follow-up task for a call
        extra = "&followup=" + (await followup.tell_resolution(desk, number, identity.username) or "none")
    desk.hub.wake()
    raise web.HTTPFound(f"{base}?done={do}{extra}")


@require_role(*STATS_ROLES)
async def stats_page(request: web.Request) -> web.StreamResponse:
    return render(request, "desk/stats.html")


async def to_desk(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/desk/")
