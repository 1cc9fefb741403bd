"""Accuracy of the facet matcher on phrasings it has not seen (tests/nlu/blind_facets.yml: questions written
by a helper from each facet's answer only, never from its example phrasings).

  python bench/facets.py [--data tests/nlu/blind_facets.yml]

For every question: the best facet within its topic (how the bot uses it once the topic is known, by intent
or context) and the best facet over all topics; a facet counts as chosen only at or above the threshold the
bot uses. Prints top-1 accuracy, how often a facet was chosen at all, and accuracy per topic (figures only:
the set is blind). Uses the knowledge store of $KNOWLEDGE_DB_URL (run `bin/kb import` first).
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "tests" / "nlu" / "blind_facets.yml")
    args = ap.parse_args()
    from bot.answers import facets
    from bot.answers.turn import FACET_MIN, FACET_MIN_OTHER
    from bot.kb.store import default_store
    from bot.nlu import knowledge_names
    from bot.text.normalise import fold

    k = default_store().get()
    index = facets.index_for(k)
    lexicon = knowledge_names.current().lexicon
    known = {(f.topic, f.key) for f in index.facets}
    total = Counter()
    for item in yaml.safe_load(args.data.read_text(encoding="utf-8"))["facets"]:
        if (item["topic"], item["key"]) not in known:
            print(f"(skipped {item['key']}: not in the store)")
            continue
        for q in item["questions"]:
            text = fold(q, lexicon).text
            within = index.match(text, [item["topic"]])
            overall = index.match(text)
            total["n"] += 1
            total[f"n:{item['topic']}"] += 1
            if within and within[0].facet.key == item["key"]:
                total["within_top1"] += 1
                total[f"ok:{item['topic']}"] += 1
                if within[0].score >= FACET_MIN:
                    total["within_chosen_right"] += 1
            if within and within[0].score >= FACET_MIN:
                total["within_chosen"] += 1
            if overall and overall[0].facet.key == item["key"]:
                total["overall_top1"] += 1
                if overall[0].score >= FACET_MIN_OTHER:
                    total["overall_sure_right"] += 1
            if overall and overall[0].score >= FACET_MIN_OTHER:
                total["overall_sure"] += 1
    n = total["n"] or 1
    print(f"questions {total['n']}")
    print(f"within the topic: top-1 {total['within_top1'] / n:.3f}; chosen (score ≥ {FACET_MIN}) "
          f"{total['within_chosen'] / n:.3f}, of which right {total['within_chosen_right'] / max(total['within_chosen'], 1):.3f}")
    print(f"over all topics:  top-1 {total['overall_top1'] / n:.3f}; sure (score ≥ {FACET_MIN_OTHER}) "
          f"{total['overall_sure'] / n:.3f}, of which right {total['overall_sure_right'] / max(total['overall_sure'], 1):.3f}")
    for key in sorted(k for k in total if k.startswith("n:")):
        topic = key[2:]
        print(f"  {topic:<16} within-topic top-1 {total['ok:' + topic] / total[key]:.2f}  n={total[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
