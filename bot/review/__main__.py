"""``python -m bot.review export [--output data/nlu/reviewed.yml]``: the editors' intent assignments as
Rasa NLU training data for the next training; ``python -m bot.review list [--status new]``: the queue."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.db import database_url, session_scope
from bot.review import queue, training


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.review", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="write the intent assignments as NLU training data")
    exp.add_argument("--output", type=Path, default=training.OUTPUT)
    lst = sub.add_parser("list", help="show the review queue")
    lst.add_argument("--status", default="new", choices=queue.STATUSES)
    args = parser.parse_args(argv)
    with session_scope(database_url()) as s:
        if args.command == "list":
            for item in queue.items(s, args.status, limit=1000):
                target = item.intent or item.facet_key or ""
                print(f"{item.id}\t{item.count}\t{item.status}\t{target}\t{item.text}")
            return 0
        report = training.export(s, args.output)
    print(f"{report.path}: {len(report.written)} examples written")
    for intent, text in report.duplicates:
        print(f"  already in the training data ({intent}): {text}")
    for text, assigned, existing in report.conflicts:
        print(f"  CONFLICT, left out: {text!r} assigned to {assigned} but the training data has it as {existing}",
              file=sys.stderr)
    for text, reason in report.unusable:
        print(f"  left out ({reason}): {text}", file=sys.stderr)
    return 1 if report.conflicts else 0


if __name__ == "__main__":
    sys.exit(main())
