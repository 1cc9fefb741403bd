"""Tickets (工单), durable ticket writes and human handoff state.

* ``bot.tickets.store``   – create/transition/list tickets, numbering, SLA, log masking
* ``bot.tickets.durable`` – ``TicketWriter``: commit or queue on local disk while the DB is down
* ``bot.tickets.notice``  – the number a ticket stored after an outage still owes its patron
* ``bot.tickets.handoff`` – waiting queue, claim/release, expiry, agent presence, service hours
"""
from bot.tickets.durable import Receipt, TicketWriter
from bot.tickets.store import (
    compute_reply_due,
    create_ticket,
    get_by_client_ref,
    get_by_number,
    list_tickets,
    masked,
    transition,
)

__all__ = [
    "Receipt",
    "TicketWriter",
    "compute_reply_due",
    "create_ticket",
    "get_by_client_ref",
    "get_by_number",
    "list_tickets",
    "masked",
    "transition",
]
