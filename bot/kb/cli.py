"""kb: validate, import, export, diff, history and roll back the knowledge store.

Examples:
  kb validate [knowledge/]          check files, print file:line: reason for every problem
  kb import [knowledge/]            publish the files as a new version (atomic; unchanged files: no-op)
  kb export DIR                     write the published version's files to DIR
  kb diff [knowledge/]              what importing DIR would change, as a unified diff
  kb import --at "2026-12-04 00:00" publish now, take effect then (cinema time)
  kb history                        published versions, newest first, with when they take effect
  kb rollback VERSION               publish an earlier version again
The database is KNOWLEDGE_DB_URL (default: SQLite file var/xinghe.db).
"""
from __future__ import annotations

import argparse
import difflib
import getpass
import sys
from pathlib import Path

from bot.db import ROOT, database_url, session_scope
from bot.kb import loader
from bot.kb.schema import ALL_FILES

DEFAULT_DIR = ROOT / "knowledge"


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        parsed = loader.validate(loader.read_dir(args.dir))
    except loader.KnowledgeError as exc:
        for p in exc.problems:
            print(p)
        print(f"invalid: {len(exc.problems)} problem(s); nothing was imported")
        return 1
    films = len(parsed.docs["films.yml"].films)
    print(f"ok: {len(ALL_FILES)} files, {films} films, {len(parsed.showtimes)} showtimes")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    files = loader.read_dir(args.dir)
    _progress(f"validating {len(files)} files from {args.dir} ...")
    if args.if_new:
        # start-up import: files already published once are not re-imported over newer editor changes
        with session_scope() as session:
            seen = loader.version_with_checksum(session, loader.checksum(files))
        if seen is not None:
            print(f"unchanged (these files are version {seen}; current version kept)")
            return 0
    try:
        with session_scope() as session:
            version = loader.publish(session, files, author=args.author, comment=args.comment or f"import {args.dir}",
                                     effective_at=_effective_at(args.at))
            number = version.id if version else loader.version_id(session)
    except loader.KnowledgeError as exc:
        for p in exc.problems:
            print(p)
        print(f"rejected: {len(exc.problems)} problem(s); the published knowledge is unchanged")
        return 1
    print(f"published version {number}" if version else f"unchanged (version {number})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    with session_scope() as session:
        files = loader.current_files(session)
    if not files:
        print("the knowledge store is empty")
        return 1
    for name, raw in files.items():
        (out / name).write_bytes(raw)
        _progress(f"wrote {out / name}")
    print(f"exported {len(files)} files to {out}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    new = loader.read_dir(args.dir)
    with session_scope() as session:
        old = loader.current_files(session)
    changed = 0
    for name in ALL_FILES:
        a = old.get(name, b"").decode("utf-8").splitlines(keepends=True)
        b = new.get(name, b"").decode("utf-8", errors="replace").splitlines(keepends=True)
        diff = list(difflib.unified_diff(a, b, f"published/{name}", f"{args.dir}/{name}"))
        if diff:
            changed += 1
            sys.stdout.writelines(diff)
    print(f"{changed} file(s) differ")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from bot.kb import timeline
    from bot.models import utcnow

    with session_scope() as session:
        now = utcnow()
        current = timeline.current_version_id(session, now)
        entries = sorted(timeline.entries(session), key=lambda e: e.id, reverse=True)[:args.limit]
        for e in entries:
            state = ("cancelled" if e.cancelled else "scheduled" if e.effective_at > now
                     else "current" if e.id == current else "")
            print(f"{e.id:>4}  effective {loader.cinema_time(e.effective_at)} (Asia/Shanghai)  {state:<9}  {e.author:<12} "
                  f"{e.comment}")
    return 0


def _effective_at(text: str):
    """``YYYY-MM-DD HH:MM`` in the cinema's time zone, as UTC (None for an empty text)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    if not text:
        return None
    local = dt.datetime.fromisoformat(text.replace(" ", "T"))
    return local.replace(tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(dt.timezone.utc).replace(tzinfo=None)


def cmd_rollback(args: argparse.Namespace) -> int:
    try:
        with session_scope() as session:
            version = loader.rollback(session, args.version, author=args.author)
            print(f"published version {version.id} (= version {args.version})")
    except loader.KnowledgeError as exc:
        print(exc)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kb", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--author", default=getpass.getuser(), help="who is publishing (audit)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, fn, help_ in [("validate", cmd_validate, "check knowledge files"),
                            ("import", cmd_import, "publish knowledge files"),
                            ("diff", cmd_diff, "compare files with the published version")]:
        p = sub.add_parser(name, help=help_)
        p.add_argument("dir", nargs="?", default=str(DEFAULT_DIR))
        p.add_argument("--comment", default="")
        if name == "import":
            p.add_argument("--if-new", action="store_true",
                           help="skip files that were already published once (keeps newer edits made in the editor)")
            p.add_argument("--at", default="", help="take effect at this time (YYYY-MM-DD HH:MM, cinema time) "
                                                     "instead of now")
        p.set_defaults(fn=fn)
    p = sub.add_parser("export", help="write the published files to a folder")
    p.add_argument("dir")
    p.set_defaults(fn=cmd_export)
    p = sub.add_parser("history", help="list published versions")
    p.add_argument("--limit", type=int, default=30)
    p.set_defaults(fn=cmd_history)
    p = sub.add_parser("rollback", help="publish an earlier version again")
    p.add_argument("version", type=int)
    p.set_defaults(fn=cmd_rollback)
    args = parser.parse_args(argv)
    if args.cmd != "validate":
        _progress(f"database: {database_url().split('@')[-1]}")
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
