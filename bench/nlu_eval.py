"""Score a model on held-out patron messages through `POST /model/parse`, as an outside evaluator would.

  python bench/nlu_eval.py --model models/xinghe-*.tar.gz [--data tests/nlu/holdout.yml]
  python bench/nlu_eval.py --url http://127.0.0.1:5005 --token $RASA_TOKEN

Prints intent accuracy and macro-F1, per-intent precision/recall/F1, entity F1 (type + text span),
and the misclassified messages.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Set, Tuple

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENTITY = re.compile(r"\[([^\]]+)\]\((\w+)\)")


def load_examples(path: Path) -> List[Tuple[str, str, Set[Tuple[str, str]]]]:
    out = []
    for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
        if "intent" not in block:
            continue
        for line in block["examples"].splitlines():
            line = line.strip()
            if line.startswith("- "):
                raw = line[2:]
                ents = {(m.group(2), m.group(1)) for m in ENTITY.finditer(raw)}
                out.append((ENTITY.sub(lambda m: m.group(1), raw), block["intent"], ents))
    return out


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def evaluate(url: str, token: str, examples) -> None:
    tp, fp, fn = Counter(), Counter(), Counter()
    ent_tp = ent_fp = ent_fn = 0
    ent_by_type = defaultdict(lambda: [0, 0, 0])
    wrong = []
    ent_errors = []
    fallbacks = 0
    for text, gold, gold_ents in examples:
        r = requests.post(f"{url}/model/parse", params={"token": token}, json={"text": text}, timeout=30).json()
        pred = r["intent"]["name"]
        if pred == "nlu_fallback":
            fallbacks += 1
            ranking = [x for x in r.get("intent_ranking", []) if x["name"] != "nlu_fallback"]
            pred = ranking[0]["name"] if ranking else pred
        if pred == gold:
            tp[gold] += 1
        else:
            fp[pred] += 1
            fn[gold] += 1
            wrong.append((text, gold, pred, r["intent"]["confidence"]))
        pred_ents = {(e["entity"], text[e["start"]:e["end"]]) for e in r.get("entities", [])}
        for e in pred_ents & gold_ents:
            ent_by_type[e[0]][0] += 1
        for e in pred_ents - gold_ents:
            ent_by_type[e[0]][1] += 1
        for e in gold_ents - pred_ents:
            ent_by_type[e[0]][2] += 1
        if pred_ents != gold_ents:
            ent_errors.append((text, sorted(gold_ents - pred_ents), sorted(pred_ents - gold_ents)))
        ent_tp += len(pred_ents & gold_ents)
        ent_fp += len(pred_ents - gold_ents)
        ent_fn += len(gold_ents - pred_ents)
    intents = sorted(set(tp) | set(fn))
    rows = []
    for i in intents:
        p = tp[i] / (tp[i] + fp[i]) if tp[i] + fp[i] else 0.0
        rc = tp[i] / (tp[i] + fn[i]) if tp[i] + fn[i] else 0.0
        rows.append((i, p, rc, f1(p, rc), tp[i] + fn[i]))
    macro = sum(r[3] for r in rows) / len(rows)
    acc = sum(tp.values()) / len(examples)
    print(f"messages {len(examples)}  intent accuracy {acc:.3f}  macro-F1 {macro:.3f}  "
          f"(nlu_fallback reported for {fallbacks}; scored by their top intent)")
    for i, p, rc, f, n in rows:
        print(f"  {i:<22} P {p:.2f}  R {rc:.2f}  F1 {f:.2f}  n={n}")
    ep = ent_tp / (ent_tp + ent_fp) if ent_tp + ent_fp else 0.0
    er = ent_tp / (ent_tp + ent_fn) if ent_tp + ent_fn else 0.0
    print(f"entities  P {ep:.3f}  R {er:.3f}  F1 {f1(ep, er):.3f}")
    for name, (t, p_, n_) in sorted(ent_by_type.items()):
        pp = t / (t + p_) if t + p_ else 0.0
        rr = t / (t + n_) if t + n_ else 0.0
        print(f"  {name:<12} P {pp:.2f}  R {rr:.2f}  F1 {f1(pp, rr):.2f}  n={t + n_}")
    print("entity errors (missed | extra):")
    for text, missed, extra in ent_errors:
        print(f"  {text}  missed={missed}  extra={extra}")
    print("misclassified:")
    for text, gold, pred, conf in wrong:
        print(f"  {gold:>20} → {pred:<20} {conf:.2f}  {text}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "tests" / "nlu" / "holdout.yml"))
    ap.add_argument("--url")
    ap.add_argument("--token", default="")
    ap.add_argument("--model")
    args = ap.parse_args()
    examples = load_examples(Path(args.data))
    if args.url:
        evaluate(args.url.rstrip("/"), args.token, examples)
        return
    from tests.stack import start_stack

    model = args.model or sorted((ROOT / "models").glob("xinghe-*.tar.gz"), key=lambda p: p.stat().st_mtime)[-1]
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(str(model), Path(tmp))
        try:
            evaluate(stack.rasa, stack.token, examples)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
