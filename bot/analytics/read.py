"""The read side of the analytics: what the desk statistics and the review queue need, from the turns the
event consumer wrote (``bot.analytics.ingest``). Functions take a SQLAlchemy session; nothing here knows how
Rasa stores trackers."""
from __future__ import annotations

import collections
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from bot.analytics.signals import FALLBACK_INTENT
from bot.models import AnalyticsTurn

#: A turn not yet complete (no action_listen seen) is only taken as missed once this old: its answer may
#: still be on its way.
SETTLE_S = 60.0


@dataclass
class Miss:
    """A patron message the bot did not understand (``text`` masked when ``masked``)."""

    sender_id: str
    channel: str
    ts: float
    text: str
    entities: List[Dict[str, Any]] = field(default_factory=list)
    masked: bool = False


def _since(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).replace(tzinfo=None)


def conversation_stats(s: Session, since_ts: float, labels: Sequence[str], bucket: Callable[[float], str],
                       ticket_senders: Set[str], top: int = 20) -> Dict[str, Any]:
    """Per bucket (``bucket(ts)`` names it): conversations with a patron message since ``since_ts`` (counted
    in the bucket of their first one), and those the bot handled alone (no handoff, no pause, no ticket);
    plus the most frequent typed messages the NLU did not understand (``nlu_fallback``)."""
    since = _since(since_ts)
    rows = s.execute(select(AnalyticsTurn.sender_id, func.min(AnalyticsTurn.ts),
                            func.max(case((AnalyticsTurn.human.is_(True), 1), else_=0)))
                     .where(AnalyticsTurn.at >= since).group_by(AnalyticsTurn.sender_id)).all()
    total: Dict[str, int] = collections.Counter()
    alone: Dict[str, int] = collections.Counter()
    for sender, first_ts, human in rows:
        b = bucket(float(first_ts))
        total[b] += 1
        if not human and sender not in ticket_senders:
            alone[b] += 1
    fallbacks: Dict[str, Dict[str, Any]] = {}
    for text, ts in s.execute(select(AnalyticsTurn.text, AnalyticsTurn.ts).where(
            AnalyticsTurn.at >= since, AnalyticsTurn.intent == FALLBACK_INTENT,
            AnalyticsTurn.payload.is_(False), AnalyticsTurn.text != "")):
        key = " ".join(text.lower().split())
        entry = fallbacks.setdefault(key, {"text": text, "count": 0, "last": 0.0})
        entry["count"] += 1
        entry["last"] = max(entry["last"], float(ts))
    top_list = sorted(fallbacks.values(), key=lambda x: (-x["count"], -x["last"]))[:top]
    for entry in top_list:
        entry["last"] = dt.datetime.fromtimestamp(entry["last"], dt.timezone.utc).isoformat()
    all_total, all_alone = sum(total.values()), sum(alone.values())
    return {"conversations": [total[b] for b in labels], "bot_only": [alone[b] for b in labels],
            "bot_only_share": [round(alone[b] / total[b], 3) if total[b] else None for b in labels],
            "totals": {"conversations": all_total, "bot_only": all_alone,
                       "bot_only_share": round(all_alone / all_total, 3) if all_total else None},
            "top_fallbacks": top_list}


def missed_messages(s: Session, since_ts: float = 0.0, now: Optional[float] = None) -> List[Miss]:
    """Typed patron messages at or after ``since_ts`` whose turn ended with an "I did not understand" reply
    and no answer (complete turns, or older than ``SETTLE_S``), oldest first."""
    settled = _since((now if now is not None else time.time()) - SETTLE_S)
    q = (select(AnalyticsTurn).where(AnalyticsTurn.ts >= since_ts, AnalyticsTurn.missed.is_(True),
                                     AnalyticsTurn.answered.is_(False), AnalyticsTurn.payload.is_(False),
                                     AnalyticsTurn.text != "",
                                     (AnalyticsTurn.done.is_(True)) | (AnalyticsTurn.at < settled))
         .order_by(AnalyticsTurn.ts))
    return [Miss(t.sender_id, t.channel, t.ts, t.text, list(t.entities or []), bool(t.masked))
            for t in s.execute(q).scalars()]


def latest_turn_at(s: Session) -> Optional[dt.datetime]:
    """When the newest patron message the consumer wrote was sent (how current the statistics are)."""
    return s.execute(select(func.max(AnalyticsTurn.at))).scalar()
