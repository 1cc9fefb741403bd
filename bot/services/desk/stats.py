"""Statistics for supervisors and editors: tickets per type and category, response and resolution times, SLA
breaches, and the bot's conversations (handled alone, not understood). The functions take a session or
the analytics turns the event consumer writes."""
from __future__ import annotations

import collections
import datetime as dt
import logging
import statistics
from typing import Any, Dict, List, Optional, Set

from sqlalchemy import select

from bot.analytics import read as analytics

from bot.models import Ticket, TicketEvent, utcnow
from bot.services.desk.core import BOT_ACTORS
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


def bot_stats(s, since: dt.datetime, period: str, labels: List[str]) -> Dict[str, Any]:
    """Conversations the bot handled alone and the messages it missed, from the analytics turns the event
    consumer writes (``bot.analytics``): the desk no longer reads the tracker store's keys or tables."""
    ticket_senders = {x for (x,) in s.execute(select(Ticket.sender_id).where(Ticket.created_at >= since))}
    data = analytics.conversation_stats(
        s, since.replace(tzinfo=dt.timezone.utc).timestamp(), labels,
        lambda ts: _bucket(to_local(dt.datetime.fromtimestamp(ts, dt.timezone.utc)), period), ticket_senders)
    latest = analytics.latest_turn_at(s)
    data.update(source="events", latest_turn_at=latest.isoformat() if latest else None)
    return data


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
