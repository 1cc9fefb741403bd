"""The desk's JSON API: queue, staff, canned replies, conversations (read, claim, reply, hand back, close,
transfer) and tickets."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any, Dict

from aiohttp import web
from sqlalchemy import select

from bot.models import Ticket, utcnow
from bot.services.auth import Identity, current_user
from bot.services.common.rasa import RasaError
from bot.services.desk.core import (MAX_MESSAGE_CHARS, STAFF_ROLES, STATS_ROLES, WECHAT_CHANNEL, Desk, DeskError, api,
                                    desk_of, iso, json_body)
from bot.services.desk import followup, patrons
from bot.services.desk.knowledge import canned_replies, complaint_categories
from bot.services.desk.operations import (_audit, claim_sync, conversation_row, hold_check, list_tickets_sync, may_read,
                                          queue_snapshot, related_tickets_sync, release_sync, staff_sync, take_over_sync,
                                          ticket_action_sync, ticket_detail, transfer_sync)
from bot.services.desk.stats import bot_stats, satisfaction_stats, ticket_stats
from bot.services.desk.tracker_views import channel_window, check_can_send, topic_slots, transcript, visible_slots
from bot.services.desk.workers import deliver_desk_action, return_to_bot
from bot.tickets import staff
from bot.tickets import store as tickets
from bot.tickets._common import local_to_utc_naive, to_local

log = logging.getLogger(__name__)


@api(*STAFF_ROLES)
async def api_queue(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    snap = await desk_of(request).db(queue_snapshot, identity.username, identity.role)
    return web.json_response(snap)


@api(*STAFF_ROLES)
async def api_staff(request: web.Request) -> web.StreamResponse:
    return web.json_response({"staff": await desk_of(request).db(staff_sync)})


@api(*STAFF_ROLES)
async def api_canned(request: web.Request) -> web.StreamResponse:
    return web.json_response({"canned": canned_replies(desk_of(request)),
                              "categories": complaint_categories(desk_of(request))})


async def conversation_view(desk: Desk, sender: str, user: Identity) -> Dict[str, Any]:
    row, ticket = await desk.db(conversation_row, sender)
    if row is None and ticket is None:
        raise DeskError("unknown_conversation", 404)
    if not may_read(row, user):
        raise DeskError("not_your_conversation", 403)
    tracker = await desk.rasa.tracker(sender)
    events = tracker.get("events") or []
    channel = tracker.get("latest_input_channel") or (row or {}).get("channel") or (ticket or {}).get("channel")
    forms = await desk.form_slots()
    notes = await desk.db(patrons.notes_sync, sender)
    related = await desk.db(related_tickets_sync, sender, (ticket or {}).get("number"))
    masked = {"phone": tickets.mask_phone}  # the full phone only through an audited reveal
    slots = {k: masked.get(k, lambda v: v)(v) for k, v in visible_slots(tracker).items()}
    topic = [(k, masked.get(k, lambda v: v)(v)) for k, v in topic_slots(tracker, forms)]
    return {"sender_id": sender, "channel": channel, "conversation": row, "ticket": ticket, "related": related,
            "transcript": transcript(events), "slots": slots, "topic_slots": topic, "notes": notes,
            "paused": bool(tracker.get("paused")), "window": channel_window(channel, events)}


@api(*STAFF_ROLES)
async def api_conversation(request: web.Request) -> web.StreamResponse:
    return web.json_response(await conversation_view(desk_of(request), request.match_info["sender"],
                                                     current_user(request)))


@api(*STAFF_ROLES)
async def api_claim(request: web.Request) -> web.StreamResponse:
    identity, desk, sender = current_user(request), desk_of(request), request.match_info["sender"]
    async with desk.locks[sender]:
        await desk.db(claim_sync, sender, identity)
        await desk.rasa.append(sender, [{"event": "pause"}])
        await followup.announce_agent(desk, sender, identity.username)
    desk.hub.wake()
    return web.json_response(await conversation_view(desk, sender, identity))


@api(*STAFF_ROLES)
async def api_take_over(request: web.Request) -> web.StreamResponse:
    identity, desk, number = current_user(request), desk_of(request), request.match_info["number"]
    claimed = await desk.db(take_over_sync, number, identity)
    sender = claimed["sender_id"]
    async with desk.locks[sender]:
        await desk.rasa.append(sender, [{"event": "pause"}])
        await followup.announce_agent(desk, sender, identity.username)
    desk.hub.wake()
    return web.json_response(await conversation_view(desk, sender, identity))


@api(*STAFF_ROLES)
async def api_send(request: web.Request) -> web.StreamResponse:
    identity, desk, sender = current_user(request), desk_of(request), request.match_info["sender"]
    body = await json_body(request)
    text = str(body.get("text") or "").strip()
    if not text:
        raise DeskError("empty_message", 400)
    if len(text) > MAX_MESSAGE_CHARS:
        raise DeskError("message_too_long", 400, limit=MAX_MESSAGE_CHARS)
    async with desk.locks[sender]:
        await desk.db(lambda s: hold_check(s, sender, identity, allow_supervisor=False))
        tracker = await desk.rasa.tracker(sender)
        channel = tracker.get("latest_input_channel")
        events = tracker.get("events") or []
        check_can_send(channel, events, text)
        name = await desk.db(staff.display_name, identity.username)
        try:
            result = await deliver_desk_action(desk, sender, "action_agent_message", pre=[
                {"event": "slot", "name": "agent_message", "value": {"text": text, "agent": name}}])
        except RasaError as exc:  # e.g. WeChat refused the customer-service message (45015, 45047)
            log.error("desk: message to %s not delivered: %s", sender[:12], exc)
            raise DeskError("delivery_failed", 502, channel=channel, followup=True)
        tracker = await desk.rasa.tracker(sender)
    await desk.db(lambda s: _audit(s, identity.username, "conversation", sender, "agent_message",
                                   after={"chars": len(text), "channel": channel}))
    events = tracker.get("events") or []
    return web.json_response({"ok": True, "channel": channel, "window": channel_window(channel, events),
                              "live": channel in ("socketio", WECHAT_CHANNEL),
                              "collected": [m.get("text") for m in (result.get("messages") or [])]})


@api(*STAFF_ROLES)
async def api_handback(request: web.Request) -> web.StreamResponse:
    return await _release(request, close=False)


@api(*STAFF_ROLES)
async def api_close(request: web.Request) -> web.StreamResponse:
    return await _release(request, close=True)


async def _release(request: web.Request, close: bool) -> web.StreamResponse:
    identity, desk, sender = current_user(request), desk_of(request), request.match_info["sender"]
    body = await json_body(request)
    resolve = None
    if close or body.get("resolution"):
        resolution = str(body.get("resolution") or "").strip()
        if close and not resolution:
            raise DeskError("resolution_required", 400)
        resolve = {"resolution": resolution[:4000], "category": str(body.get("category") or "")[:20]}
    async with desk.locks[sender]:
        result = await desk.db(release_sync, sender, identity, "closed" if close else "handed_back", resolve)
        said = await return_to_bot(desk, sender, "action_handback", reset_slots=close)
        outcome = ""
        if resolve is not None and result.get("ticket"):
            outcome = await followup.tell_resolution(desk, result["ticket"], identity.username)
        rating = await followup.ask_rating(desk, sender, "agent_closed" if close else "handback",
                                           result.get("agent"), result.get("ticket"))
    desk.hub.wake()
    return web.json_response({"ok": True, "announced": said, "rating_asked": rating, "followup": outcome, **result})


@api(*STAFF_ROLES)
async def api_transfer(request: web.Request) -> web.StreamResponse:
    identity, desk, sender = current_user(request), desk_of(request), request.match_info["sender"]
    body = await json_body(request)
    target = str(body.get("to") or "").strip()
    async with desk.locks[sender]:
        result = await desk.db(transfer_sync, sender, identity, target)
    desk.hub.wake()
    return web.json_response({"ok": True, **result})


@api(*STAFF_ROLES)
async def api_tickets(request: web.Request) -> web.StreamResponse:
    filters = {k: request.query.get(k, "") for k in ("type", "status", "priority", "overdue")}
    if filters["priority"] and not filters["priority"].isdigit():
        raise DeskError("bad_priority", 400)
    if filters["overdue"] in ("0", "false"):
        filters["overdue"] = ""
    return web.json_response({"tickets": await desk_of(request).db(list_tickets_sync, filters)})


@api(*STAFF_ROLES)
async def api_ticket(request: web.Request) -> web.StreamResponse:
    number = request.match_info["number"]
    user = current_user(request)

    def load(s):
        t = tickets.get_by_number(s, number)
        return ticket_detail(s, t, user) if t else None
    detail = await desk_of(request).db(load)
    if detail is None:
        raise DeskError("unknown_ticket", 404)
    return web.json_response(detail)


@api(*STAFF_ROLES)
async def api_ticket_action(request: web.Request) -> web.StreamResponse:
    identity, desk = current_user(request), desk_of(request)
    body = await json_body(request)
    number, do = request.match_info["number"], request.match_info["do"]
    detail = await desk.db(ticket_action_sync, number, identity, do, body)
    if do == "resolve":
        detail["followup_sent"] = await followup.tell_resolution(desk, number, identity.username)
    desk.hub.wake()
    return web.json_response(detail)


@api(*STATS_ROLES)
async def api_stats(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    period = request.query.get("period", "day")
    if period not in ("day", "week"):
        raise DeskError("bad_period", 400)
    try:
        days = int(request.query.get("days", "84" if period == "week" else "30"))
    except ValueError:
        raise DeskError("bad_days", 400)
    days = max(1, min(days, 366))
    now = utcnow()
    since_local = (to_local(now) - dt.timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    since = local_to_utc_naive(since_local.replace(tzinfo=None))
    cache_key = (period, days)
    cached = desk.stats_cache.get(cache_key)
    if cached and time.monotonic() - cached[0] < desk.settings.stats_cache_s:
        return web.json_response(cached[1])
    data = await desk.db(ticket_stats, since, period, now)
    data["bot"] = await desk.db(bot_stats, since, period, data["labels"])
    data["satisfaction"] = await desk.db(satisfaction_stats, since, period, data["labels"])
    data["period"] = period
    data["days"] = days
    data["generated_at"] = iso(now)
    desk.stats_cache[cache_key] = (time.monotonic(), data)
    return web.json_response(data)


# --------------------------------------------------------------------------- patron sidebar, notes, labels, lists
@api(*STAFF_ROLES)
async def api_conversation_list(request: web.Request) -> web.StreamResponse:
    """``?view=waiting|mine|open|recent``, each row with the last message and how long the patron waits."""
    identity, desk = current_user(request), desk_of(request)
    view = request.query.get("view", "open")
    rows = await desk.db(patrons.conversation_list_sync, identity.username, identity.role, view)
    sem = asyncio.Semaphore(4)

    async def last(row):
        async with sem:
            try:
                tracker = await desk.rasa.tracker(row["sender_id"])
            except RasaError:
                return
        items = [m for m in transcript(tracker.get("events") or []) if m["who"] != "system"]
        if items:
            row["last"] = {k: items[-1].get(k) for k in ("who", "text", "at", "agent_name")}
            patron = [m for m in items if m["who"] == "patron"]
            row["last_patron_at"] = patron[-1]["at"] if patron else None
    await asyncio.gather(*(last(r) for r in rows))
    return web.json_response({"view": view, "conversations": rows})


async def _readable(desk: Desk, sender: str, identity: Identity) -> None:
    row, ticket = await desk.db(conversation_row, sender)
    if row is None and ticket is None:
        raise DeskError("unknown_conversation", 404)
    if not may_read(row, identity):
        raise DeskError("not_your_conversation", 403)


@api(*STAFF_ROLES)
async def api_patron(request: web.Request) -> web.StreamResponse:
    identity, desk, sender = current_user(request), desk_of(request), request.match_info["sender"]
    await _readable(desk, sender, identity)
    return web.json_response(await desk.db(patrons.patron_sync, sender))


@api(*STAFF_ROLES)
async def api_add_note(request: web.Request) -> web.StreamResponse:
    identity, desk, sender = current_user(request), desk_of(request), request.match_info["sender"]
    await _readable(desk, sender, identity)
    body = await json_body(request)
    note = await desk.db(patrons.add_note_sync, sender, identity, str(body.get("text") or ""))
    return web.json_response(note)


@api(*STAFF_ROLES)
async def api_labels(request: web.Request) -> web.StreamResponse:
    identity, desk, sender = current_user(request), desk_of(request), request.match_info["sender"]
    await _readable(desk, sender, identity)
    body = await json_body(request)
    add = [str(x) for x in (body.get("add") or []) if isinstance(x, str)]
    remove = [str(x) for x in (body.get("remove") or []) if isinstance(x, str)]
    return web.json_response({"labels": await desk.db(patrons.set_labels_sync, sender, identity, add, remove)})


@api(*STAFF_ROLES)
async def api_reveal_phone(request: web.Request) -> web.StreamResponse:
    identity, desk = current_user(request), desk_of(request)
    return web.json_response(await desk.db(patrons.reveal_phone_sync, request.match_info["number"], identity))


@api(*STAFF_ROLES)
async def api_profile(request: web.Request) -> web.StreamResponse:
    """GET: the name patrons see for this agent; POST ``{"display_name"}`` sets it."""
    identity, desk = current_user(request), desk_of(request)
    if request.method == "POST":
        body = await json_body(request)
        try:
            name = await desk.db(staff.set_display_name, identity.username, str(body.get("display_name") or ""))
        except ValueError:
            raise DeskError("display_name_required", 400)
        await desk.db(lambda s: _audit(s, identity.username, "staff", identity.username, "display_name",
                                       after={"display_name": name}))
    else:
        name = await desk.db(staff.display_name, identity.username)
    return web.json_response({"username": identity.username, "display_name": name})
