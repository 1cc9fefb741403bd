"""Telling a patron the number of a ticket that was kept in the durable queue during an outage.

While the database was unreachable the patron got a reference (登记号) and the promise of a number. Once a
flush has stored the ticket it owes its number (``bot.tickets.notice``); every ``notice_every_s`` this
process takes the owed ones one by one — a claim in the database, so of several app processes exactly one
tells each patron — and sends ``followup.stored`` of complaints.yml through the patron's channel the way an
agent's message goes (``action_agent_message``, Rasa's ``output_channel=latest``): the web chat socket on
whichever instance holds it, or a WeChat customer-service message. When the channel cannot carry it (WeChat
48 h after the patron's last message or its quota spent, a web chat silent for half an hour, REST and other
channels) the ticket keeps the task for the desk: a note, and a follow-up call when there is a phone.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Dict, List

from bot.models import Ticket, utcnow
from bot.services.common.rasa import RasaError
from bot.services.desk.core import Desk
from bot.services.desk.followup import WEBCHAT_LIVE_S, reachable
from bot.services.desk.knowledge import complaints_wording
from bot.services.desk.workers import deliver_desk_action
from bot.tickets import notice
from bot.tickets import store as tickets
from bot.tickets._common import due_label

log = logging.getLogger(__name__)


async def tell_one(desk: Desk, owed: notice.Owed, wording: Dict[str, str]) -> str:
    """Claim and tell one owed number: ``sent``, ``desk``, or ``""`` (another process has it, or Rasa did
    not answer and it is given back for the next pass)."""
    def claim(s):
        return notice.claim(s, owed.ticket_id)
    if not await desk.db(claim):
        return ""
    outcome = notice.DESK
    try:
        if owed.sender_id and wording.get("stored") and await reachable(desk, owed.sender_id, live_within_s=WEBCHAT_LIVE_S):
            text = wording["stored"].format(ref=owed.ref, ticket=owed.number, due=due_label(owed.reply_due))
            await deliver_desk_action(desk, owed.sender_id, "action_agent_message",
                                      pre=[{"event": "slot", "name": "agent_message", "value": {"text": text}}])
            outcome = notice.SENT
    except RasaError as exc:
        log.warning("desk: ticket %s's number not told yet (%s); trying again later", owed.number, exc)
        await desk.db(lambda s: notice.release(s, owed.ticket_id))
        return ""

    def settle(s):
        note = wording.get("stored_told" if outcome == notice.SENT else "stored_call") or outcome
        notice.settle(s, owed.ticket_id, outcome, note=note)
        if outcome == notice.DESK:
            t = s.get(Ticket, owed.ticket_id)
            if t.contact_phone and t.followup_status != "scheduled":
                tickets.transition(s, t, actor="bot", followup_at=utcnow())
    await desk.db(settle)
    log.info("desk: ticket %s stored after an outage: number %s", owed.number,
             "told in the patron's channel" if outcome == notice.SENT else "left for the desk")
    return outcome


async def tell_stored_numbers(desk: Desk) -> List[str]:
    """One pass over the owed numbers; the outcome of each (see ``tell_one``)."""
    owed = await desk.db(notice.owed)
    if not owed:
        return []
    wording = {k: str(v) for k, v in complaints_wording(desk, "followup").items()}
    out = [await tell_one(desk, o, wording) for o in owed]
    if notice.DESK in out:
        desk.hub.wake()
    return out


async def notice_loop(desk: Desk) -> None:
    while True:
        await asyncio.sleep(desk.settings.notice_every_s)
        try:
            await tell_stored_numbers(desk)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database may still be out: the next pass tries again
            log.debug("desk: ticket number pass failed", exc_info=True)
