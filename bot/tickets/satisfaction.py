"""Satisfaction ratings (满意度评价): asked once when a conversation ends, answered 1–5 with an optional
comment, stored with the conversation, the agent who served and the ticket; a low rating opens a follow-up
ticket. Functions take the caller's session and never commit; naive datetimes are UTC.

The wording (prompt, the five choices, thanks) is ``complaints.yml`` → ``satisfaction`` in the knowledge
store; callers pass that section in.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.models import AnalyticsTurn, Conversation, SatisfactionRating, Ticket
from bot.tickets import store as tickets
from bot.tickets._common import utc_naive

PAYLOAD = "/satisfaction"
ASK_AGAIN_AFTER = dt.timedelta(minutes=30)  # one prompt per ending, not one per goodbye
ANSWER_WITHIN = dt.timedelta(hours=24)
COMMENT_WITHIN = dt.timedelta(minutes=30)
TRIGGERS = ("goodbye", "agent_closed", "handback", "inactivity")  # what ended the conversation
#: A patron silent longer than this after the bot's answer is asked no more: the conversation is over (and a
#: later message starts a new one, as Rasa's session_expiration_time of 60 minutes does).
IDLE_LOOKBACK = dt.timedelta(hours=1)
CONVERSATION_GAP = dt.timedelta(minutes=60)
#: Turns that alone do not make a conversation worth rating: the web chat's opening ``/greet``, a 「你好」.
OPENING_INTENTS = frozenset({"greet"})
IDLE_CHANNELS = ("socketio", "wechat")  # where a message can reach the patron unprompted

_PAYLOAD_RE = re.compile(r'^/satisfaction\{\s*"score"\s*:\s*([1-5])\s*\}$')
# a digit first, then nothing, 分/星, or a separator and a comment: 「4」「5分」「2 排队太久」 (not 「5号厅」)
_TYPED_RE = re.compile(r'^([1-5])(?:\s*[分星])?(?:$|[\s,，.。、:：!！;；]+(.*)$)', re.S)
_QUESTION_RE = re.compile(r"[?？]|吗|怎么|多少|哪|几点|能不能|可以.*吗")


def buttons(choices: List[str]) -> List[Dict[str, str]]:
    """Quick replies (web) / numbered choices (WeChat) for the scores 1..5."""
    return [{"title": title, "payload": PAYLOAD + json.dumps({"score": i}, separators=(",", ":"))}
            for i, title in enumerate(choices, start=1)]


def parse_score(text: str) -> Optional[Tuple[int, str]]:
    """``(score, comment)`` when ``text`` is a rating (the quick reply's payload or a typed digit)."""
    text = (text or "").strip()
    m = _PAYLOAD_RE.match(text)
    if m:
        return int(m.group(1)), ""
    m = _TYPED_RE.match(text)
    if m:
        return int(m.group(1)), (m.group(2) or "").strip()[:1000]
    return None


def request(session: Session, sender_id: str, channel: str, trigger: str, *, agent: Optional[str] = None,
            ticket_number: Optional[str] = None, now: Optional[dt.datetime] = None) -> Optional[SatisfactionRating]:
    """Record that the patron is asked now; None when they were asked less than ``ASK_AGAIN_AFTER`` ago."""
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}")
    now = utc_naive(now)
    recent = session.execute(select(SatisfactionRating.id).where(
        SatisfactionRating.sender_id == sender_id, SatisfactionRating.requested_at >= now - ASK_AGAIN_AFTER)
        .limit(1)).first()
    if recent is not None:
        return None
    row = SatisfactionRating(sender_id=sender_id, channel=channel or "", trigger=trigger, agent=agent,
                             ticket_number=ticket_number, requested_at=now)
    session.add(row)
    session.flush()
    return row


def pending(session: Session, sender_id: str, now: Optional[dt.datetime] = None) -> Optional[SatisfactionRating]:
    """The request this patron's next message may answer: unrated and recent, or rated with a comment open."""
    now = utc_naive(now)
    row = session.execute(select(SatisfactionRating).where(SatisfactionRating.sender_id == sender_id)
                          .order_by(SatisfactionRating.id.desc()).limit(1)).scalar_one_or_none()
    if row is None:
        return None
    if row.score is None and row.requested_at >= now - ANSWER_WITHIN:
        return row
    if row.comment_open and row.rated_at is not None and row.rated_at >= now - COMMENT_WITHIN:
        return row
    return None


def answer(session: Session, sender_id: str, text: str, wording: Mapping[str, Any], sla: Mapping[str, Any],
           now: Optional[dt.datetime] = None) -> Optional[str]:
    """Take ``text`` as the answer to a pending request and return the reply; None when it is not one
    (no request pending, or a question rather than a rating or comment): the bot answers it as usual."""
    now = utc_naive(now)
    row = pending(session, sender_id, now)
    if row is None:
        return None
    text = (text or "").strip()
    low = int(wording.get("low_at_most") or 2)
    if row.score is None:
        parsed = parse_score(text)
        if parsed is None:
            return None
        score, comment = parsed
        row.score, row.rated_at = score, now
        row.comment = comment or None
        row.comment_open = not comment
        if score <= low:
            row.followup_ticket = _open_followup(session, row, sla, now)
            return str(wording["thanks_low"]).format(ticket=row.followup_ticket)
        return str(wording["comment_thanks"] if comment else wording["thanks"])
    # a comment after the rating
    if text.startswith("/") or _QUESTION_RE.search(text):
        row.comment_open = False
        return None
    row.comment_open = False
    if text in (wording.get("skip_words") or []):
        return str(wording.get("skipped") or wording["comment_thanks"])
    row.comment = text[:1000]
    if row.followup_ticket:
        ticket = tickets.get_by_number(session, row.followup_ticket)
        if ticket is not None:
            tickets.add_facts(session, ticket, actor="bot", facts={"comment": row.comment})
    session.flush()
    return str(wording["comment_thanks"])


def _open_followup(session: Session, row: SatisfactionRating, sla: Mapping[str, Any], now: dt.datetime) -> str:
    """A low rating: a feedback ticket (high priority) with a 回访 scheduled for the next working day."""
    facts = {"reason": "满意度低分回访", "score": row.score, "rated_ticket": row.ticket_number,
             "agent": row.agent, "trigger": row.trigger}
    ticket = tickets.create_ticket(session, type="feedback", channel=row.channel, sender_id=row.sender_id,
                                   facts={k: v for k, v in facts.items() if v is not None}, priority=2, sla=sla,
                                   now=now, actor="bot")
    tickets.transition(session, ticket, actor="bot", followup_at=tickets.add_working_days(now, 1),
                       note="满意度低分，需回访了解情况")
    return ticket.number


def history(session: Session, sender_id: str, limit: int = 20) -> List[SatisfactionRating]:
    return list(session.execute(select(SatisfactionRating).where(SatisfactionRating.sender_id == sender_id,
                                                                 SatisfactionRating.score.is_not(None))
                                .order_by(SatisfactionRating.id.desc()).limit(limit)).scalars())


# --------------------------------------------------------------------------- after inactivity
@dataclass(frozen=True)
class IdleConversation:
    """A conversation whose patron has been silent since the bot answered them (naive UTC times)."""

    sender_id: str
    channel: str
    started_at: dt.datetime  # its first patron message
    last_at: dt.datetime     # its latest patron message


def idle_conversations(s: Session, idle: dt.timedelta, now: Optional[dt.datetime] = None, *,
                       channels: Iterable[str] = IDLE_CHANNELS, limit: int = 100) -> List[IdleConversation]:
    """Conversations to ask for a rating because the patron went quiet: the latest patron message (the
    analytics turns, ``bot.analytics``) is between ``idle`` and ``idle + IDLE_LOOKBACK`` old and the bot
    answered it; the patron asked something (not only the opening greeting); nobody was asked for a rating
    since the conversation began (its first message after a silence of ``CONVERSATION_GAP``); it is with the
    bot (not waiting for or talking with an agent); and no emergency ticket of the patron is open."""
    now = utc_naive(now)
    newest, oldest = now - idle, now - idle - IDLE_LOOKBACK
    channels = tuple(channels)
    latest = list(s.execute(
        select(AnalyticsTurn.sender_id, func.max(AnalyticsTurn.at))
        .where(AnalyticsTurn.at >= oldest).group_by(AnalyticsTurn.sender_id)
        .having(func.max(AnalyticsTurn.at) <= newest).order_by(func.max(AnalyticsTurn.at)).limit(limit * 4)))
    out: List[IdleConversation] = []
    for sender, last_at in latest:
        if len(out) >= limit:
            break
        turns = list(s.execute(select(AnalyticsTurn).where(
            AnalyticsTurn.sender_id == sender, AnalyticsTurn.at >= last_at - dt.timedelta(hours=12))
            .order_by(AnalyticsTurn.at.desc()).limit(500)).scalars())
        if not turns or turns[0].channel not in channels or not turns[0].done or turns[0].human:
            continue  # another channel, the answer still on its way, or a human was asked for
        conversation = [turns[0]]
        for turn in turns[1:]:
            if conversation[-1].at - turn.at > CONVERSATION_GAP:
                break
            conversation.append(turn)
        if all(t.intent in OPENING_INTENTS for t in conversation):
            continue
        started_at = conversation[-1].at
        asked = s.execute(select(SatisfactionRating.id).where(
            SatisfactionRating.sender_id == sender, SatisfactionRating.requested_at >= started_at).limit(1)).first()
        if asked is not None:
            continue
        state = s.execute(select(Conversation.state).where(Conversation.sender_id == sender)).scalar()
        if state not in (None, "bot"):
            continue
        emergency = s.execute(select(Ticket.id).where(
            Ticket.sender_id == sender, Ticket.type == "emergency",
            Ticket.status.in_(tickets.OPEN_STATUSES)).limit(1)).first()
        if emergency is not None:
            continue
        out.append(IdleConversation(sender, turns[0].channel, started_at, last_at))
    return out


def withdraw(session: Session, row_id: int) -> None:
    """Forget a request that could not be delivered (the patron was never asked)."""
    row = session.get(SatisfactionRating, row_id)
    if row is not None and row.score is None:
        session.delete(row)
        session.flush()
