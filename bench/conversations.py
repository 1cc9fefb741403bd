"""Play scripted patron conversations through the REST webhook and score every turn against the facts it
must (and must not) contain.

  python bench/conversations.py                                   # tests/conversations/dev/*.yml on a fresh stack
  python bench/conversations.py tests/conversations/blind --quiet # a blind set: rates only, no failures shown
  python bench/conversations.py --url http://127.0.0.1:5005 FILE  # a running server

Script format: tests/conversations/README.md. Each conversation is a new sender; a turn passes when every
``must`` item (a string, or a list of alternatives) occurs in the bot's reply of that turn, no ``must_not``
string does, and every ``regex`` matches. Matching folds width (NFKC), case and whitespace.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_SETS = [ROOT / "tests" / "conversations" / "dev"]


def fold(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


@dataclass
class TurnResult:
    user: str
    reply: str
    problems: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_turn(turn: Dict[str, Any], reply: str) -> List[str]:
    """What is wrong with ``reply`` for this scripted turn (empty when it passes)."""
    got = fold(reply)
    problems = []
    for item in turn.get("must") or []:
        options = item if isinstance(item, list) else [item]
        if not any(fold(str(o)) in got for o in options):
            problems.append("missing " + "|".join(map(str, options)))
    for item in turn.get("must_not") or []:
        if fold(str(item)) in got:
            problems.append(f"must not say {item}")
    for pattern in turn.get("regex") or []:
        if not re.search(pattern, unicodedata.normalize("NFKC", reply)):
            problems.append(f"no match for /{pattern}/")
    if not reply.strip():
        problems.append("no reply")
    return problems


def reply_text(messages: Iterable[Dict[str, Any]]) -> str:
    parts = []
    for m in messages:
        if m.get("text"):
            parts.append(m["text"])
        parts.extend(b.get("title", "") for b in m.get("buttons") or [])
    return "\n".join(parts)


def load_scripts(paths: List[Path]) -> List[Dict[str, Any]]:
    scripts = []
    for path in paths:
        files = sorted(path.glob("*.yml")) if path.is_dir() else [path]
        for f in files:
            for conv in yaml.safe_load(f.read_text(encoding="utf-8")).get("conversations") or []:
                conv = dict(conv, source=f.name)
                scripts.append(conv)
    return scripts


def play(url: str, conv: Dict[str, Any], run_id: str) -> List[TurnResult]:
    sender = f"conv-{run_id}-{conv['id']}"
    results = []
    for turn in conv["turns"]:
        r = requests.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": str(turn["user"])}, timeout=60)
        r.raise_for_status()
        reply = reply_text(r.json())
        results.append(TurnResult(turn["user"], reply, check_turn(turn, reply)))
    return results


def report(scripts: List[Dict[str, Any]], outcomes: List[List[TurnResult]], quiet: bool) -> Dict[str, float]:
    conv_ok = sum(all(t.ok for t in res) for res in outcomes)
    turns = [t for res in outcomes for t in res]
    turn_ok = sum(t.ok for t in turns)
    by_kind: Counter = Counter()
    by_kind_ok: Counter = Counter()
    for conv, res in zip(scripts, outcomes):
        for kind in conv.get("kinds") or ["-"]:
            by_kind[kind] += 1
            by_kind_ok[kind] += all(t.ok for t in res)
    if not quiet:
        for conv, res in zip(scripts, outcomes):
            if all(t.ok for t in res):
                continue
            print(f"\n✗ {conv['source']}:{conv['id']} ({', '.join(conv.get('kinds') or [])})")
            for t in res:
                mark = "  " if t.ok else "✗ "
                print(f"  {mark}> {t.user}")
                print("      " + t.reply.replace("\n", "\n      ")[:600])
                for p in t.problems:
                    print(f"      !! {p}")
    print("\nper kind (conversations passed):")
    for kind in sorted(by_kind):
        print(f"  {kind:14s} {by_kind_ok[kind]:3d}/{by_kind[kind]:<3d} {by_kind_ok[kind] / by_kind[kind]:.2f}")
    conv_rate = conv_ok / len(outcomes) if outcomes else 0.0
    turn_rate = turn_ok / len(turns) if turns else 0.0
    print(f"\nconversations passed: {conv_ok}/{len(outcomes)} = {conv_rate:.3f}")
    print(f"turns passed:         {turn_ok}/{len(turns)} = {turn_rate:.3f}")
    return {"conversations": conv_rate, "turns": turn_rate}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", type=Path, help="script files or folders (default: tests/conversations/dev)")
    ap.add_argument("--url", help="a running Rasa server; default: start the stack with the newest model")
    ap.add_argument("--model", help="model for the stack (default: newest models/xinghe-*.tar.gz)")
    ap.add_argument("--quiet", action="store_true", help="rates only (keep a blind set blind)")
    ap.add_argument("--only", help="play only conversations whose id contains this")
    args = ap.parse_args(argv)
    scripts = load_scripts(args.paths or DEFAULT_SETS)
    if args.only:
        scripts = [s for s in scripts if args.only in s["id"]]
    stack = None
    url = args.url
    if url is None:
        from bench._common import newest_model, setup_env
        from tests.stack import start_stack

        setup_env()
        stack = start_stack(args.model or newest_model(), Path(tempfile.mkdtemp(prefix="conv-")))
        url = stack.rasa
    try:
        run_id = uuid.uuid4().hex[:8]
        start = time.time()
        outcomes = [play(url, conv, run_id) for conv in scripts]
        report(scripts, outcomes, args.quiet)
        print(f"({len(scripts)} conversations in {time.time() - start:.0f} s)")
    finally:
        if stack:
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
