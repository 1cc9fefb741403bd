"""The review queue's intent loop, measured with real trainings: which patron messages the shipped NLU
pipeline misses, and whether after an editor assigns them (``bot.review``) and the next training reads
``data/nlu/reviewed.yml`` the same messages — and paraphrases never trained on — are understood.

    .venv/bin/python bench/review_loop.py [--messages bench/review_loop.yml] [--keep DIR]

Steps: import knowledge/ into a temporary store; ``rasa train nlu`` on data/nlu (baseline); parse every
message; the missed ones (wrong intent or nlu_fallback) go through the queue (``queue.record``,
``queue.assign_intent``) and ``training.export`` into a copy of data/nlu; train again; parse the missed
messages, their paraphrases, and every message that was right before (regressions). Two trainings: several
minutes on 2 cores (``--base-model`` skips the first).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, setup_env  # noqa: E402


def train(nlu_dir: Path, out: Path, name: str) -> float:
    start = time.monotonic()
    subprocess.run(["nice", "-n", "10", str(ROOT / ".venv" / "bin" / "rasa"), "train", "nlu", "--config",
                    str(ROOT / "config.yml"), "--nlu", str(nlu_dir), "--domain", str(ROOT / "domain.yml"), "--out",
                    str(out), "--fixed-model-name", name], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def parse_all(model: Path, texts: List[str]) -> Dict[str, str]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))

    async def run():
        return {t: (await agent.parse_message(t))["intent"]["name"] for t in texts}
    return asyncio.run(run())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=Path, default=ROOT / "bench" / "review_loop.yml")
    parser.add_argument("--keep", type=Path, help="keep the models and data here")
    parser.add_argument("--base-model", type=Path, help="a baseline model already trained on data/nlu as it is "
                        "(e.g. DIR/base.tar.gz of an earlier --keep DIR run): skips the first training")
    args = parser.parse_args(argv)
    setup_env()
    work = Path(args.keep or tempfile.mkdtemp(prefix="review-loop-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["KNOWLEDGE_DB_URL"] = url = f"sqlite:///{work / 'kb.db'}"
    from bot.db import session_scope
    from bot.kb import loader
    from bot.models import ReviewItem
    from bot.review import queue, training

    with session_scope(url) as s:
        loader.publish(s, loader.read_dir(ROOT / "knowledge"), author="bench")
    cases = yaml.safe_load(args.messages.read_text(encoding="utf-8"))
    base_dir = work / "nlu-base"
    shutil.rmtree(base_dir, ignore_errors=True)
    shutil.copytree(ROOT / "data" / "nlu", base_dir, ignore=shutil.ignore_patterns("reviewed.yml"))
    if args.base_model:
        base_model, t_base = args.base_model, float("nan")
    else:
        base_model, t_base = work / "base.tar.gz", train(base_dir, work, "base")
    texts = [c["text"] for c in cases] + [c["paraphrase"] for c in cases]
    before = parse_all(base_model, texts)
    missed = [c for c in cases if before[c["text"]] != c["intent"]]
    trained = f"{t_base:.0f} s training" if t_base == t_base else f"model {base_model}"
    print(f"baseline ({trained}): {len(missed)}/{len(cases)} messages missed; "
          f"paraphrases right {sum(before[c['paraphrase']] == c['intent'] for c in cases)}/{len(cases)}")
    for c in missed:
        print(f"  missed: {c['text']} → {before[c['text']]} (should be {c['intent']})")
    for c in cases:
        if before[c["paraphrase"]] != c["intent"]:
            print(f"  paraphrase missed: {c['paraphrase']} → {before[c['paraphrase']]} (should be {c['intent']})")
    if not missed:
        return 0
    with session_scope(url) as s:
        queue.record(s, [queue.Miss(f"p{i}", "wechat", time.time() + i, c["text"]) for i, c in enumerate(missed)])
        for c in missed:
            item = s.query(ReviewItem).filter_by(key=queue.digest(c["text"])).one()
            queue.assign_intent(s, item.id, c["intent"], "bench", training.domain_intents())
    after_dir = work / "nlu-after"
    shutil.rmtree(after_dir, ignore_errors=True)
    shutil.copytree(base_dir, after_dir)
    with session_scope(url) as s:
        report = training.export(s, after_dir / "reviewed.yml")
    print(f"exported {len(report.written)} examples, {len(report.duplicates)} duplicates, "
          f"{len(report.conflicts)} conflicts")
    t_after = train(after_dir, work, "after")
    after = parse_all(work / "after.tar.gz", texts)
    same = sum(after[c["text"]] == c["intent"] for c in missed)
    para = sum(after[c["paraphrase"]] == c["intent"] for c in missed)
    para_before = sum(before[c["paraphrase"]] == c["intent"] for c in missed)
    right = [t for c in cases for t in (c["text"], c["paraphrase"]) if before[t] == c["intent"]]
    intent_of = {t: c["intent"] for c in cases for t in (c["text"], c["paraphrase"])}
    regressions = [t for t in right if after[t] != intent_of[t]]
    print(f"after the next training ({t_after:.0f} s): missed messages understood {same}/{len(missed)}; "
          f"their paraphrases {para}/{len(missed)} (before {para_before}/{len(missed)}); "
          f"regressions among the {len(right)} right before: {len(regressions)}")
    for c in missed:
        print(f"  {c['text']} → {after[c['text']]}; {c['paraphrase']} → {before[c['paraphrase']]} → "
              f"{after[c['paraphrase']]} (should be {c['intent']})")
    for t in regressions:
        print(f"  regression: {t} → {after[t]} (was {before[t]})")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
