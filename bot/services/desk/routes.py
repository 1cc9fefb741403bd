"""Every route of the desk, in one place."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bot.services.desk import api, events, pages


def setup_routes(app: web.Application, static_dir: Path) -> None:
    r = app.router
    r.add_get("/desk/login", pages.login_page)
    r.add_post("/desk/login", pages.login_submit)
    r.add_post("/desk/logout", pages.logout)
    r.add_get("/desk", pages.to_desk)
    r.add_get("/desk/", pages.home)
    r.add_get("/desk/tickets", pages.tickets_page)
    r.add_get("/desk/tickets/{number}", pages.ticket_page)
    r.add_post("/desk/tickets/{number}", pages.ticket_form)
    r.add_get("/desk/stats", pages.stats_page)
    r.add_get("/desk/api/events", events.api_events)
    r.add_get("/desk/api/queue", api.api_queue)
    r.add_get("/desk/api/staff", api.api_staff)
    r.add_get("/desk/api/canned", api.api_canned)
    r.add_get("/desk/api/stats", api.api_stats)
    r.add_get("/desk/api/tickets", api.api_tickets)
    r.add_get("/desk/api/tickets/{number}", api.api_ticket)
    r.add_post("/desk/api/tickets/{number}/take-over", api.api_take_over)
    r.add_post("/desk/api/tickets/{number}/reveal-phone", api.api_reveal_phone)
    r.add_post("/desk/api/tickets/{number}/{do}", api.api_ticket_action)
    r.add_get("/desk/api/conversations/{sender}", api.api_conversation)
    r.add_post("/desk/api/conversations/{sender}/claim", api.api_claim)
    r.add_post("/desk/api/conversations/{sender}/messages", api.api_send)
    r.add_post("/desk/api/conversations/{sender}/handback", api.api_handback)
    r.add_post("/desk/api/conversations/{sender}/close", api.api_close)
    r.add_post("/desk/api/conversations/{sender}/transfer", api.api_transfer)
    r.add_get("/desk/api/conversation-list", api.api_conversation_list)
    r.add_get("/desk/api/conversations/{sender}/patron", api.api_patron)
    r.add_post("/desk/api/conversations/{sender}/notes", api.api_add_note)
    r.add_post("/desk/api/conversations/{sender}/labels", api.api_labels)
    r.add_get("/desk/api/profile", api.api_profile)
    r.add_post("/desk/api/profile", api.api_profile)
    r.add_static("/desk/static", static_dir, name="desk-static", append_version=True)
