"""Score a model on held-out patron messages through `POST /model/parse`, as an outside evaluator would.

  python bench/nlu_eval.py --model models/xinghe-*.tar.gz          # every set below, one server
  python bench/nlu_eval.py --data tests/nlu/holdout.yml --url http://127.0.0.1:5005 --token $RASA_TOKEN

Sets (default): tests/nlu/blind_clean.yml, blind_noisy.yml, blind_emergency.yml (blind: written by someone
who never saw data/ or the bot; only their figures are printed, never their messages, so they stay blind)
and tests/nlu/holdout.yml (wave 1's set, read while tuning: its errors are printed).
With --model it starts its own stack and prints the Rasa server's RSS after loading the model and after the
sets. Prints intent accuracy and macro-F1, per-intent precision/recall/F1, entity F1 (type + text span of the
patron's original text; a hall type's trailing 厅 is not part of the comparison), emergency recall and the messages wrongly raised as emergencies (count), and for
sets that are not blind the misclassified messages. 5-fold cross-validation of the training data:
``rasa test nlu --cross-validation --folds 5 --config config.yml --nlu data/nlu``.
"""
from __future__ import annotations

import argparse
import json
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
# [span](entity) or Rasa's long form [span]{"entity": "hall_type", "value": "IMAX"}; compared by type and span.
ENTITY = re.compile(r"\[([^\]]+)\](?:\((\w+)\)|(\{[^}]*\}))")


def entity_type(m: "re.Match[str]") -> str:
    return m.group(2) or json.loads(m.group(3))["entity"]


def load_examples(path: Path) -> List[Tuple[str, str, Set[Tuple[str, str]]]]:
    out = []
    for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
        if "intent" not in block:
            continue
        for line in block["examples"].splitlines():
            line = line.strip()
            if line.startswith("- "):
                raw = line[2:]
                ents = {same_entity(entity_type(m), m.group(1)) for m in ENTITY.finditer(raw)}
                out.append((ENTITY.sub(lambda m: m.group(1), raw), block["intent"], ents))
    return out


def same_entity(kind: str, span: str) -> Tuple[str, str]:
    """The entity as compared: a hall type with or without the 厅 after it (「杜比厅」/「杜比」) is the same one —
    the contract lists hall types as IMAX、杜比、VIP厅 and the blind writers differ on whether 厅 is in the span."""
    if kind == "hall_type" and len(span) > 2 and span.endswith("厅"):
        return kind, span[:-1]
    return kind, span


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


DEFAULT_SETS = ["blind_clean.yml", "blind_noisy.yml", "blind_emergency.yml", "holdout.yml"]


def evaluate(url: str, token: str, examples, show_errors: bool = True) -> Dict[str, float]:
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
        pred_ents = {same_entity(e["entity"], text[e["start"]:e["end"]]) for e in r.get("entities", [])}
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
    em_n = tp["report_emergency"] + fn["report_emergency"]
    if em_n:
        print(f"emergency recall {tp['report_emergency'] / em_n:.3f} ({tp['report_emergency']}/{em_n}); "
              f"other messages raised as emergencies: {fp['report_emergency']}")
    figures = {"accuracy": acc, "macro_f1": macro, "entity_f1": f1(ep, er)}
    if not show_errors:
        print("(blind set: individual errors not shown)")
        return figures
    print("entity errors (missed | extra):")
    for text, missed, extra in ent_errors:
        print(f"  {text}  missed={missed}  extra={extra}")
    print("misclassified:")
    for text, gold, pred, conf in wrong:
        print(f"  {gold:>20} → {pred:<20} {conf:.2f}  {text}")
    return figures


def run_sets(url: str, token: str, paths: List[Path], show_blind: bool) -> None:
    for path in paths:
        blind = "blind" in path.name
        print(f"\n=== {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}{' (blind)' if blind else ''}")
        evaluate(url, token, load_examples(path), show_errors=show_blind or not blind)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", help="a test set (repeatable); default: the four sets above")
    ap.add_argument("--url")
    ap.add_argument("--token", default="")
    ap.add_argument("--model")
    ap.add_argument("--show-blind-errors", action="store_true", help="print a blind set's errors (it is blind no more)")
    args = ap.parse_args()
    paths = [Path(p) for p in args.data] if args.data else [ROOT / "tests" / "nlu" / n for n in DEFAULT_SETS]
    paths = [p for p in paths if p.exists()]
    if args.url:
        run_sets(args.url.rstrip("/"), args.token, paths, args.show_blind_errors)
        return
    from bench._common import rss_kb
    from tests.stack import start_stack

    model = args.model or sorted((ROOT / "models").glob("xinghe-*.tar.gz"), key=lambda p: p.stat().st_mtime)[-1]
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(str(model), Path(tmp))
        try:
            rasa_pid = stack.procs[1].pid  # the Rasa server (the first is the action server)
            loaded = rss_kb(rasa_pid)
            print(f"model {model}\nRasa server RSS after loading {loaded.get('VmRSS', 0) / 1024:.0f} MB")
            run_sets(stack.rasa, stack.token, paths, args.show_blind_errors)
            after = rss_kb(rasa_pid)
            print(f"\nRasa server RSS after the sets {after.get('VmRSS', 0) / 1024:.0f} MB "
                  f"(peak {after.get('VmHWM', 0) / 1024:.0f} MB)")
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
