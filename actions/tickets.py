"""Logging tickets from the action server: committed before the bot confirms, queued durably if the
database is down, and worded for the patron (number and when they will hear back)."""
from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import knowledge, now
from bot.db import ROOT, database_url, session_factory
from bot.privacy import mask_text
from bot.tickets._common import due_label as ticket_due_label
from bot.tickets.durable import Receipt, TicketWriter

logger = logging.getLogger(__name__)
_writer: Optional[TicketWriter] = None


def writer() -> TicketWriter:
    """Process-wide writer; its session factory is lazy so a database that is down at start-up is retried."""
    global _writer
    if _writer is None:
        url = database_url()
        var = Path(os.environ.get("XINGHE_VAR_DIR") or ROOT / "var")
        _writer = TicketWriter(lambda: session_factory(url)(), var / "ticket-queue")
        _writer.start_background_flusher(interval=5.0)
    return _writer


def transcript(tracker: Tracker, limit: int = 12) -> List[Dict[str, Any]]:
    """The last messages of the conversation (patron and bot) for the agent."""
    lines = []
    for e in tracker.events:
        if e.get("event") in ("user", "bot") and e.get("text"):
            lines.append({"who": "patron" if e["event"] == "user" else "bot", "text": e["text"],
                          "at": e.get("timestamp")})
    return lines[-limit:]


def due_label(due_utc: dt.datetime) -> Text:
    """「今天18:30」「明天10:00」「11月25日 10:00」 in the cinema's time zone."""
    return ticket_due_label(due_utc, now().date())


def log_ticket(dispatcher: CollectingDispatcher, tracker: Tracker, *, type: Text, facts: Dict[str, Any],
               phone: Optional[Text] = None, name: Optional[Text] = None, category: Optional[Text] = None,
               onsite: bool = False, priority: Optional[int] = None, announce: bool = True) -> Receipt:
    """Create the ticket (or queue it) and tell the patron its number and reply time."""
    k = knowledge()
    channel = tracker.get_latest_input_channel() or ""
    receipt = writer().submit(type=type, channel=channel, sender_id=tracker.sender_id, facts=facts, phone=phone,
                              name=name, category=category, onsite=onsite, priority=priority,
                              transcript=transcript(tracker), sla=k.section("complaints")["sla_minutes"])
    logger.info("ticket %s type=%s sender=%s facts=%s", receipt.number or f"queued:{receipt.client_ref}", type,
                tracker.sender_id[:8], mask_text(str(facts)))
    if announce:
        due = due_label(receipt.reply_due) if receipt.reply_due else ""
        if receipt.queued:
            dispatcher.utter_message(response="utter_ticket_queued", ref=receipt.client_ref[:8], due=due)
        else:
            dispatcher.utter_message(response="utter_ticket_logged", ticket=receipt.number, due=due)
    return receipt
