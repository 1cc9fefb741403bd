"""Reduce Rasa events (as published by the event broker: ``{"sender_id": ..., **event.as_dict()}``) to one
``AnalyticsTurn`` per patron message.

- ``user``: a new turn (masked text, intent, entity spans inside the stored text, channel);
- ``slot topic_context``: the answering layer answered → ``answered``;
- ``bot`` with an "I did not understand" response, ``action_default_fallback`` → ``missed``;
- ``action_request_human``, ``pause`` → ``human``;
- ``action_listen`` after the message → ``done`` (the turn is complete).

Everything else is ignored. Applying the same events twice changes nothing (a turn is unique per sender and
timestamp; flags only turn on), so the consumer can acknowledge after the commit and a re-delivery after a
crash is harmless. An event is attributed to the sender's latest turn at or before its timestamp.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.analytics.signals import (ANSWERED_SLOT, HANDOFF_ACTIONS, MISSED_ACTIONS, MISSED_RESPONSES,
                                   TEXT_MAX)
from bot.models import AnalyticsTurn
from bot.privacy import mask_text

log = logging.getLogger(__name__)


@dataclass
class Applied:
    turns: int = 0      # new turns written
    flags: int = 0      # flag events applied to a turn
    ignored: int = 0    # events that say nothing the statistics need (or came before any turn)


def entity_spans(raw: str, parse: Dict[str, Any], lead: int, size: int) -> List[Dict[str, Any]]:
    """The NLU's entity spans inside the stored text (``raw`` without ``lead`` leading spaces, ``size`` long)."""
    out = []
    for e in parse.get("entities") or []:
        start, end = e.get("start"), e.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and e.get("entity")):
            continue
        start, end = start - lead, end - lead
        if 0 <= start < end <= size:
            out.append({"entity": str(e["entity"]), "start": start, "end": end, "value": raw[lead + start:lead + end]})
    return out


def _flag(event: Dict[str, Any]) -> Optional[str]:
    kind = event.get("event")
    if kind == "slot" and event.get("name") == ANSWERED_SLOT:
        return "answered"
    if kind == "bot" and (event.get("metadata") or {}).get("utter_action") in MISSED_RESPONSES:
        return "missed"
    if kind == "action":
        name = event.get("name")
        if name in MISSED_ACTIONS:
            return "missed"
        if name in HANDOFF_ACTIONS:
            return "human"
        if name == "action_listen":
            return "done"
    if kind == "pause":
        return "human"
    return None


def _turn_row(sender: str, event: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    raw = event.get("text") or ""
    text = raw.strip()[:TEXT_MAX]
    if "timestamp" not in event:
        return None
    ts = float(event["timestamp"])
    parse = event.get("parse_data") or {}
    masked = mask_text(text)
    lead = len(raw) - len(raw.lstrip())
    return {"sender_id": sender[:128], "ts": ts,
            "at": dt.datetime.fromtimestamp(ts, dt.timezone.utc).replace(tzinfo=None),
            "channel": str(event.get("input_channel") or "")[:32], "text": masked, "masked": masked != text,
            "payload": text.startswith("/"), "intent": ((parse.get("intent") or {}).get("name") or None),
            "entities": [] if masked != text else entity_spans(raw, parse, lead, len(text))}


def apply(s: Session, events: Iterable[Dict[str, Any]]) -> Applied:
    """Write what ``events`` (in publishing order) say into the turns table; the caller commits."""
    result = Applied()
    latest: Dict[str, List[AnalyticsTurn]] = {}  # this batch's turns per sender, by timestamp

    def turns_of(sender: str, ts: float) -> Optional[AnalyticsTurn]:
        known = [t for t in latest.get(sender, []) if t.ts <= ts]
        if known:
            return max(known, key=lambda t: t.ts)
        turn = s.execute(select(AnalyticsTurn).where(AnalyticsTurn.sender_id == sender, AnalyticsTurn.ts <= ts)
                         .order_by(AnalyticsTurn.ts.desc()).limit(1)).scalar_one_or_none()
        if turn is not None:
            latest.setdefault(sender, []).append(turn)
        return turn

    events = list(events)
    # the batch's patron messages already written (a re-delivery), in one query rather than one per message
    keys = {(str(e.get("sender_id") or "")[:128], float(e["timestamp"])) for e in events
            if e.get("event") == "user" and "timestamp" in e}
    known: Dict[Tuple[str, float], AnalyticsTurn] = {}
    if keys:
        for turn in s.execute(select(AnalyticsTurn).where(
                AnalyticsTurn.sender_id.in_({k[0] for k in keys}), AnalyticsTurn.ts.in_({k[1] for k in keys}))).scalars():
            known[(turn.sender_id, turn.ts)] = turn
    for event in events:
        sender = str(event.get("sender_id") or "")[:128]
        kind = event.get("event")
        if not sender:
            result.ignored += 1
            continue
        if kind == "user":
            row = _turn_row(sender, event)
            if row is None:
                result.ignored += 1
                continue
            existing = known.get((sender, row["ts"]))
            if existing is None:
                existing = known[(sender, row["ts"])] = AnalyticsTurn(**row, answered=False, missed=False,
                                                                       human=False, done=False)
                s.add(existing)
                result.turns += 1
            latest.setdefault(sender, []).append(existing)
            continue
        flag = _flag(event)
        if flag is None:
            result.ignored += 1
            continue
        turn = turns_of(sender, float(event.get("timestamp") or 0.0))
        if turn is None:
            if flag == "human":  # a handoff before any patron message (an agent opened the conversation)
                log.debug("analytics: %s before any turn of %s", flag, sender[:8])
            result.ignored += 1
            continue
        if flag == "done" and turn.done:
            continue
        setattr(turn, flag, True)
        result.flags += 1
    s.flush()
    return result


def turn_counts(s: Session) -> Tuple[int, int]:
    """(turns, completed turns): for health checks and the benchmarks."""
    from sqlalchemy import func

    total, done = s.execute(select(func.count(), func.count().filter(AnalyticsTurn.done.is_(True)))).one()
    return int(total), int(done)
