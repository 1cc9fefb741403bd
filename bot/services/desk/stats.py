"""Statistics for supervisors and editors: tickets per type and category, response and resolution times, SLA
breaches, and the bot's conversations (handled alone, not understood). The functions take a session or
plain event lists, so the data source can change (tracker store today, the event broker's tables later)."""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import logging
import statistics
from typing import Any, Dict, List, Optional, Set, Tuple

from sqlalchemy import select

from bot.models import Conversation, Ticket, TicketEvent, utcnow
from bot.services.common.rasa import RasaError
from bot.services.desk.core import BOT_ACTORS, Desk
from bot.services.desk.tracker_views import _ts
from bot.tickets import store as tickets
from bot.tickets._common import to_local

log = logging.getLogger(__name__)


def _bucket(local: dt.datetime, period: str) -> str:
    if period == "week":
        monday = local.date() - dt.timedelta(days=local.weekday())
        return monday.isoformat()
    return local.date().isoformat()


def _buckets(since_local: dt.date, until_local: dt.date, period: str) -> List[str]:
    out, day = [], since_local
    if period == "week":
        day = day - dt.timedelta(days=day.weekday())
    step = dt.timedelta(days=7 if period == "week" else 1)
    while day <= until_local:
        out.append(day.isoformat())
        day += step
    return out


def _mean(values: List[float]) -> Optional[float]:
    return round(statistics.fmean(values), 1) if values else None


def _median(values: List[float]) -> Optional[float]:
    return round(statistics.median(values), 1) if values else None


def ticket_stats(s, since: dt.datetime, period: str, now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """Tickets created since ``since`` (naive UTC): per bucket by type and complaint category, first-response
    and resolution minutes (first staff action / first "resolved"), SLA breaches (no staff response by
    ``reply_due``)."""
    now = now or utcnow()
    rows = list(s.execute(select(Ticket).where(Ticket.created_at >= since)).scalars())
    ids = [t.id for t in rows]
    events: Dict[int, List[TicketEvent]] = collections.defaultdict(list)
    for i in range(0, len(ids), 500):
        for e in s.execute(select(TicketEvent).where(TicketEvent.ticket_id.in_(ids[i:i + 500]))
                           .order_by(TicketEvent.at, TicketEvent.id)).scalars():
            events[e.ticket_id].append(e)
    labels = _buckets(to_local(since).date(), to_local(now).date(), period)
    by_type: Dict[str, Dict[str, int]] = collections.defaultdict(lambda: collections.Counter())
    by_category: Dict[str, Dict[str, int]] = collections.defaultdict(lambda: collections.Counter())
    first: Dict[str, List[float]] = collections.defaultdict(list)
    resolution: Dict[str, List[float]] = collections.defaultdict(list)
    breaches: Dict[str, int] = collections.Counter()
    all_first: List[float] = []
    all_res: List[float] = []
    breached_tickets = []
    types: Set[str] = set()
    categories: Set[str] = set()
    for t in rows:
        b = _bucket(to_local(t.created_at), period)
        by_type[b][t.type] += 1
        types.add(t.type)
        if t.type == "complaint":
            cat = t.category or "-"
            by_category[b][cat] += 1
            categories.add(cat)
        staff = [e for e in events[t.id] if e.actor not in BOT_ACTORS and e.action != "created"]
        responded = staff[0].at if staff else None
        resolved = next((e.at for e in events[t.id] if e.action == "resolved"), None)
        if responded is not None:
            minutes = max(0.0, (responded - t.created_at).total_seconds() / 60)
            first[b].append(minutes)
            all_first.append(minutes)
        if resolved is not None:
            minutes = max(0.0, (resolved - t.created_at).total_seconds() / 60)
            resolution[b].append(minutes)
            all_res.append(minutes)
        if (responded or now) > t.reply_due and (responded is not None or t.status in tickets.OPEN_STATUSES):
            breaches[b] += 1
            breached_tickets.append(t.number)
    types_sorted, cats_sorted = sorted(types), sorted(categories)
    return {
        "labels": labels,
        "types": types_sorted,
        "by_type": {ty: [by_type[b][ty] for b in labels] for ty in types_sorted},
        "categories": cats_sorted,
        "complaints_by_category": {c: [by_category[b][c] for b in labels] for c in cats_sorted},
        "first_response_avg_min": [_mean(first[b]) for b in labels],
        "resolution_avg_min": [_mean(resolution[b]) for b in labels],
        "sla_breaches": [breaches[b] for b in labels],
        "tickets": [sum(by_type[b].values()) for b in labels],
        "totals": {"tickets": len(rows), "first_response_median_min": _median(all_first),
                   "resolution_median_min": _median(all_res), "sla_breaches": sum(breaches.values()),
                   "breached": breached_tickets[:50]},
    }


def conversation_stats(conversations: List[Tuple[str, List[Dict[str, Any]]]], ticket_senders: Set[str],
                       since_ts: float, period: str, labels: List[str], top: int = 20) -> Dict[str, Any]:
    """Per bucket: conversations with a patron message, and those the bot handled alone (no pause for an
    agent, no ticket); plus the most frequent messages the NLU did not understand (``nlu_fallback``)."""
    total: Dict[str, int] = collections.Counter()
    alone: Dict[str, int] = collections.Counter()
    fallbacks: Dict[str, Dict[str, Any]] = {}
    for sender, events in conversations:
        users = [e for e in events if e.get("event") == "user" and _ts(e) >= since_ts]
        if not users:
            continue
        b = _bucket(to_local(dt.datetime.fromtimestamp(_ts(users[0]), dt.timezone.utc)), period)
        total[b] += 1
        human = sender in ticket_senders or any(
            e.get("event") == "pause" or (e.get("event") == "action" and e.get("name") == "action_request_human")
            for e in events)
        if not human:
            alone[b] += 1
        for e in users:
            intent = ((e.get("parse_data") or {}).get("intent") or {}).get("name")
            text = (e.get("text") or "").strip()
            if intent == "nlu_fallback" and text and not text.startswith("/"):
                key = " ".join(text.lower().split())
                entry = fallbacks.setdefault(key, {"text": tickets._mask_text(text), "count": 0, "last": 0.0})
                entry["count"] += 1
                entry["last"] = max(entry["last"], _ts(e))
    top_list = sorted(fallbacks.values(), key=lambda x: (-x["count"], -x["last"]))[:top]
    for entry in top_list:
        entry["last"] = dt.datetime.fromtimestamp(entry["last"], dt.timezone.utc).isoformat()
    all_total, all_alone = sum(total.values()), sum(alone.values())
    return {"conversations": [total[b] for b in labels], "bot_only": [alone[b] for b in labels],
            "bot_only_share": [round(alone[b] / total[b], 3) if total[b] else None for b in labels],
            "totals": {"conversations": all_total, "bot_only": all_alone,
                       "bot_only_share": round(all_alone / all_total, 3) if all_total else None},
            "top_fallbacks": top_list}


def _redis_conversations(settings, since_ts: float, limit: int) -> Optional[List[Tuple[str, List[Dict]]]]:
    """Hot events from the Redis tracker store: the project's layout (``{prefix}:conv:{sender}:events``,
    bot.conversations.redis_store) and Rasa's (``{prefix}:tracker:{sender}``, one JSON value), or None
    if Redis is unavailable or holds neither."""
    try:
        import redis

        r = redis.Redis(host=settings.redis_host, port=settings.redis_port, db=settings.redis_db,
                        socket_connect_timeout=1, socket_timeout=5)
        base = f"{settings.tracker_prefix}:" if settings.tracker_prefix else ""
        out: List[Tuple[str, List[Dict]]] = []
        head, tail = f"{base}conv:", ":meta"
        for key in r.scan_iter(match=f"{head}*{tail}", count=500):
            sender = key.decode("utf-8", "replace")[len(head):-len(tail)]
            events = []
            for raw in r.lrange(f"{head}{sender}:events", 0, -1):
                try:
                    events.append(json.loads(raw))
                except ValueError:
                    continue
            if events and _ts(events[-1]) >= since_ts:
                out.append((sender, events))
            if len(out) >= limit:
                return out
        keys = []
        prefix = f"{base}tracker:"
        for key in r.scan_iter(match=prefix + "*", count=500):
            keys.append(key)
            if len(keys) + len(out) >= limit:
                break
    except Exception as exc:
        log.debug("stats: Redis tracker store unavailable: %s", exc)
        return None
    if not keys and not out:
        return None
    for i in range(0, len(keys), 200):
        for key, raw in zip(keys[i:i + 200], r.mget(keys[i:i + 200])):
            if not raw:
                continue
            try:
                data = json.loads(raw)
            except ValueError:
                continue
            events = data.get("events") or []
            if events and _ts(events[-1]) >= since_ts:
                out.append((key.decode("utf-8", "replace")[len(prefix):], events))
    return out


def _merge_conversations(*sources: Optional[List[Tuple[str, List[Dict]]]]) -> List[Tuple[str, List[Dict]]]:
    """One entry per patron: archived events (SQL) first, then the hot ones (Redis)."""
    merged: Dict[str, List[Dict]] = collections.OrderedDict()
    for source in sources:
        for sender, events in source or []:
            merged.setdefault(sender, []).extend(events)
    return list(merged.items())


def _sql_conversations(url: str, since_ts: float, limit: int) -> Optional[List[Tuple[str, List[Dict]]]]:
    """Trackers from Rasa's SQL tracker store (table ``events``)."""
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(url, future=True)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT sender_id, data FROM events WHERE timestamp >= :since "
                                     "ORDER BY sender_id, id"), {"since": since_ts}).fetchall()
        engine.dispose()
    except Exception as exc:
        log.debug("stats: SQL tracker store unavailable: %s", exc)
        return None
    grouped: Dict[str, List[Dict]] = collections.OrderedDict()
    for sender, data in rows:
        try:
            grouped.setdefault(sender, []).append(json.loads(data))
        except (TypeError, ValueError):
            continue
    return list(grouped.items())[:limit]


async def gather_conversations(desk: Desk, since: dt.datetime) -> Tuple[str, List[Tuple[str, List[Dict]]]]:
    """Conversations since ``since`` with their events, from the tracker store when the desk can read it,
    else the conversations the database knows (tickets, handoffs) through Rasa's HTTP API."""
    settings = desk.settings
    since_ts = since.replace(tzinfo=dt.timezone.utc).timestamp()
    store = settings.tracker_store
    if store in ("auto", "redis"):
        found = await asyncio.to_thread(_redis_conversations, settings, since_ts, settings.stats_max_conversations)
        if found is not None:
            # Finished sessions have moved to the archive (Rasa's events table at TRACKER_DB_URL).
            archived = None
            if settings.tracker_db_url:
                archived = await asyncio.to_thread(_sql_conversations, settings.tracker_db_url, since_ts,
                                                   settings.stats_max_conversations)
            return "redis", _merge_conversations(archived, found)[: settings.stats_max_conversations]
    if store in ("auto", "sql") and settings.tracker_db_url:
        found = await asyncio.to_thread(_sql_conversations, settings.tracker_db_url, since_ts,
                                        settings.stats_max_conversations)
        if found is not None and (found or store == "sql"):
            return "sql", found

    def known(s):
        senders = {x for (x,) in s.execute(select(Ticket.sender_id).where(Ticket.created_at >= since,
                                                                          Ticket.sender_id != ""))}
        senders |= {x for (x,) in s.execute(select(Conversation.sender_id).where(Conversation.updated_at >= since))}
        return sorted(senders)[: settings.stats_max_known]
    senders = await desk.db(known)
    out = []
    sem = asyncio.Semaphore(4)

    async def fetch(sender: str):
        async with sem:
            try:
                tracker = await desk.rasa.tracker(sender)
                out.append((sender, tracker.get("events") or []))
            except RasaError:
                pass
    await asyncio.gather(*(fetch(x) for x in senders))
    return "known", out


def satisfaction_stats(s, since: dt.datetime, period: str, labels: List[str]) -> Dict[str, Any]:
    """Ratings asked since ``since``: per bucket the average and the count of each score 1–5, how many
    were answered; per agent the count and average (bot-only conversations under ``agent`` None)."""
    from bot.models import SatisfactionRating
    from bot.tickets import staff

    rows = list(s.execute(select(SatisfactionRating).where(SatisfactionRating.requested_at >= since)).scalars())
    asked: Dict[str, int] = collections.Counter()
    scores: Dict[str, List[int]] = collections.defaultdict(list)
    agents: Dict[Optional[str], List[int]] = collections.defaultdict(list)
    for r in rows:
        b = _bucket(to_local(r.requested_at), period)
        asked[b] += 1
        if r.score is not None:
            scores[b].append(r.score)
            agents[r.agent].append(r.score)
    names = staff.display_names(s, [a for a in agents if a])
    all_scores = [x for b in scores.values() for x in b]
    return {
        "asked": [asked[b] for b in labels],
        "rated": [len(scores[b]) for b in labels],
        "average": [_mean([float(x) for x in scores[b]]) for b in labels],
        "distribution": {str(k): [scores[b].count(k) for b in labels] for k in range(1, 6)},
        "by_agent": sorted(({"agent": a, "name": names.get(a, a) if a else None, "count": len(v),
                             "average": _mean([float(x) for x in v]),
                             "distribution": {str(k): v.count(k) for k in range(1, 6)}}
                            for a, v in agents.items()), key=lambda x: (x["agent"] is None, x["agent"] or "")),
        "totals": {"asked": sum(asked.values()), "rated": len(all_scores),
                   "average": _mean([float(x) for x in all_scores]),
                   "low": sum(1 for x in all_scores if x <= 2)},
    }
