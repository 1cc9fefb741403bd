"""``python -m bot.analytics backfill [--endpoints var/endpoints.yml] [--days 90]``: the conversations already
in the tracker store into the analytics turns, once after upgrading from the release before the event
broker (whose statistics read the tracker store). Reads through Rasa's TrackerStore interface (``keys``,
``retrieve_full_tracker``), so it works with any store endpoints.yml names; safe to run again (the ingest
is idempotent). The event consumer takes everything from then on."""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import yaml

from bot.db import ROOT, database_url, session_scope

OUR_STORES = ("bot.conversations.redis_store.", "bot.conversations.sql_store.")


def open_tracker_store(endpoints: Path):
    """The tracker store ``endpoints`` configures (the project's stores without their archiver thread)."""
    from rasa.core.tracker_store import TrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.utils.endpoints import EndpointConfig

    section = (yaml.safe_load(endpoints.read_text(encoding="utf-8")) or {}).get("tracker_store")
    if not section:
        raise SystemExit(f"{endpoints} has no tracker_store: nothing to read")
    if str(section.get("type", "")).startswith(OUR_STORES):
        section = dict(section, start_archiver=False)
    return TrackerStore.create(EndpointConfig.from_dict(section), Domain.load(str(ROOT / "domain.yml")))


async def backfill(store, db_url: str, since_ts: float, batch: int = 500) -> dict:
    from bot.analytics import ingest

    senders = turns = 0
    for sender in await store.keys():
        tracker = await store.retrieve_full_tracker(sender)
        if tracker is None:
            continue
        events = [dict(e.as_dict(), sender_id=sender) for e in tracker.events]
        if not any(e.get("event") == "user" and float(e.get("timestamp") or 0) >= since_ts for e in events):
            continue
        senders += 1
        with session_scope(db_url) as s:
            for i in range(0, len(events), batch):
                turns += ingest.apply(s, events[i:i + batch]).turns
    return {"conversations": senders, "new_turns": turns}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.analytics", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    bf = sub.add_parser("backfill", help="read the tracker store into the analytics turns")
    bf.add_argument("--endpoints", type=Path, default=ROOT / "var" / "endpoints.yml")
    bf.add_argument("--days", type=float, default=90.0, help="conversations with a message this recent")
    args = parser.parse_args(argv)
    store = open_tracker_store(args.endpoints)
    result = asyncio.run(backfill(store, database_url(), time.time() - args.days * 86400))
    print(f"{result['conversations']} conversations, {result['new_turns']} new turns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
