#!/usr/bin/env python
"""config.yml's NLU pipeline on a public yardstick: SMP2017-ECDT task 1 (31-domain intent classification).

    .venv/bin/python bench/smp2017.py                      # train config.yml's NLU on train+dev, score test
    .venv/bin/python bench/smp2017.py --baseline           # char 1-4-gram TF-IDF + logistic regression
    .venv/bin/python bench/smp2017.py --data DIR --config config.yml --show-errors
    .venv/bin/python bench/smp2017.py --tune --dump var/dev.jsonl   # train only -> dev, for tuning

Tuning reads dev only (``--tune`` trains on train and scores dev; test is not even loaded), so the test
figure stays a single, untuned measurement per final configuration. ``--dump`` writes every scored query
with its gold label and the model's intent ranking (one JSON object a line), for offline combinations.

The data is not in the repo (research use only): DIR (default $SMP2017_DIR or /work/smp2017) holds either
train.json, dev.json (or develop.json) and test.json as {"0": {"query": "...", "label": "..."}, ...}, or the
official release's layout train/train_<label>.txt, develop/develop_<label>.txt, test/test_<label>.txt
(one query a line). Without it the script says where to get it and exits 0.

What it does (full pipeline): writes train+dev as Rasa NLU YAML (one intent per label, no entities) and a
domain listing the intents into a temporary directory, checks that Rasa reads back exactly those examples,
runs ``rasa train nlu`` on them with --config (wall time and the peak RSS of its process tree, sampled every
0.5 s), loads the model with rasa.core.agent.Agent and parses every test query. The knowledge store is an
empty SQLite file in the temporary directory, so the project's bot.nlu components see no titles or cue
words; the component cache is the temporary directory too, so nothing is reused from earlier runs.
Prints accuracy and macro-F1 over the test labels (nlu_fallback is scored by the next intent of the
ranking, as bench/nlu_eval.py does), training seconds and peak RSS MB, and the load average: the figures
depend on what else runs on the machine.
"""
from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, children, loadavg, rss_kb, setup_env, stop_all  # noqa: E402

Example = Tuple[str, str]  # (text, label)

DEFAULT_DIR = Path(os.environ.get("SMP2017_DIR") or "/work/smp2017")
SPLIT_FILES = {"train": ("train",), "dev": ("dev", "develop", "val"), "test": ("test",)}
RELEASE_DIRS = {"train": "train", "dev": "develop", "test": "test"}
TRAIN_LIMIT_S = 3600
SAMPLE_EVERY_S = 0.5
# Characters YAML may not carry even in a block scalar (C0/C1 controls other than tab, surrogates, BOM).
NOT_YAML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufeff\ufffe\uffff]")
WHERE_TO_GET = """SMP2017-ECDT task 1 data not found in {dir}.
It is the public release of the first Chinese human-computer dialogue technology evaluation (user intent
classification, 31 domains; train 2,299 / develop 770 / test 667): https://github.com/HITlilingzhi/SMP2017ECDT-DATA
("开源供研究使用", research use only; cite Zhang et al. 2017, arXiv:1709.10217). It is not committed here.
Put train.json, dev.json and test.json ({{"0": {{"query": "...", "label": "..."}}}}) or the release's
train/ develop/ test/ folders of <split>_<label>.txt files into {dir} (or pass --data DIR / set SMP2017_DIR)."""


# -- data -----------------------------------------------------------------------------------------------

def clean(text: str) -> str:
    """One line of plain text: no BOM or control characters, whitespace runs folded to one space."""
    return " ".join(NOT_YAML.sub("", text).split())


def _records(data) -> List[Example]:
    rows = data.values() if isinstance(data, dict) else data
    out = []
    for row in rows:
        text, label = row.get("query", row.get("text")), row.get("label", row.get("domain"))
        if isinstance(text, str) and isinstance(label, str) and clean(text):
            out.append((clean(text), label.strip()))
    return out


def load_split(data_dir: Path, split: str) -> Optional[List[Example]]:
    """A split from <name>.json or from the release's <dir>/<split>_<label>.txt files; None if absent."""
    for name in SPLIT_FILES[split]:
        path = data_dir / f"{name}.json"
        if path.is_file():
            return _records(json.loads(path.read_text(encoding="utf-8-sig")))
    folder = RELEASE_DIRS[split]
    for base in (data_dir, data_dir / "Task1data"):
        files = sorted((base / folder).glob(f"{folder}_*.txt"))
        if files:
            out = []
            for path in files:
                label = path.stem.split("_", 1)[1]
                raw = path.read_bytes()
                try:
                    text = raw.decode("utf-8-sig")
                except UnicodeDecodeError:
                    text = raw.decode("gb18030")
                out.extend((clean(line), label) for line in text.splitlines() if clean(line))
            return out
    return None


# -- Rasa training data -----------------------------------------------------------------------------------

def write_training_files(examples: Sequence[Example], workdir: Path) -> Tuple[Path, Path]:
    """NLU YAML and a domain with the intents. Texts are one line in a block scalar, where YAML reads
    every character as it stands; intent names are quoted (JSON strings are YAML scalars)."""
    by_label: Dict[str, List[str]] = {}
    for text, label in examples:
        by_label.setdefault(label, []).append(text)
    nlu = workdir / "nlu.yml"
    lines = ['version: "3.1"', "nlu:"]
    for label in sorted(by_label):
        lines += [f"- intent: {json.dumps(label, ensure_ascii=False)}", "  examples: |"]
        lines += [f"    - {text}" for text in by_label[label]]
    nlu.write_text("\n".join(lines) + "\n", encoding="utf-8")
    domain = workdir / "domain.yml"
    domain.write_text('version: "3.1"\nintents:\n' + "".join(f"  - {json.dumps(label, ensure_ascii=False)}\n"
                                                           for label in sorted(by_label)), encoding="utf-8")
    return nlu, domain


def check_training_file(nlu: Path, examples: Sequence[Example]) -> None:
    """Rasa must read back exactly our (text, intent) pairs and no entities (e.g. no '[x](y)' in a query)."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    data = RasaYAMLReader().read(str(nlu))
    got = Counter((m.get("text"), m.get("intent")) for m in data.intent_examples)
    want = Counter(examples)
    with_entities = [m.get("text") for m in data.intent_examples if m.get("entities")]
    if got != want or with_entities:
        missing = list((want - got).elements())[:5]
        raise SystemExit(f"Rasa reads {nlu} differently from the data: missing {missing}, "
                         f"extra {list((got - want).elements())[:5]}, with entities {with_entities[:5]}")


# -- training and parsing ---------------------------------------------------------------------------------

def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, in kB."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            return 0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
        return total // 1024
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss_kb(p).get("VmRSS", 0)
        todo.extend(children(p))
    return total


def train_nlu(config: Path, nlu: Path, domain: Path, workdir: Path, env: Dict[str, str],
              procs: List[subprocess.Popen]) -> Tuple[Path, float, float]:
    """`rasa train nlu` in ROOT (config paths such as data/jieba are relative to it): model, s, peak MB."""
    rasa = ROOT / ".venv" / "bin" / "rasa"
    rasa_cmd = str(rasa) if rasa.exists() else (shutil.which("rasa") or "rasa")
    out = workdir / "models"
    cmd = [rasa_cmd, "train", "nlu", "--config", str(config), "--nlu", str(nlu), "--domain", str(domain),
           "--out", str(out), "--fixed-model-name", "smp2017"]
    log = workdir / "train.log"
    print(f"training: {' '.join(cmd)}  (log: {log})", flush=True)
    peak = 0
    with open(log, "w") as sink:
        start = time.monotonic()
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
        procs.append(p)
        while p.poll() is None:
            if time.monotonic() - start > TRAIN_LIMIT_S:
                raise SystemExit(f"rasa train nlu took longer than {TRAIN_LIMIT_S} s (log: {log})")
            peak = max(peak, _tree_rss_kb(p.pid), rss_kb(p.pid).get("VmHWM", 0))
            time.sleep(SAMPLE_EVERY_S)
        seconds = time.monotonic() - start
    model = out / "smp2017.tar.gz"
    if p.returncode != 0 or not model.exists():
        tail = log.read_text(encoding="utf-8", errors="replace")[-6000:]
        raise SystemExit(f"rasa train nlu failed (exit {p.returncode}); end of {log}:\n{tail}")
    return model, seconds, peak / 1024


def parse_all(model: Path, texts: Sequence[str]) -> Tuple[List[str], int, float, List[list]]:
    """Top intent of every text (the next one where FallbackClassifier said nlu_fallback), the number
    of fallbacks, the mean parse time in ms, and each text's ranking as [name, confidence] pairs."""
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    # Rasa logs every parse at debug level otherwise: 667 lines of noise around the figures.
    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)
    agent = Agent.load(str(model))

    async def run() -> Tuple[List[str], int, float, List[list]]:
        preds, fallbacks, rankings = [], 0, []
        start = time.perf_counter()
        for text in texts:
            result = agent.parse_message(text)
            if inspect.isawaitable(result):
                result = await result
            name = (result.get("intent") or {}).get("name") or ""
            if name == "nlu_fallback":
                fallbacks += 1
                ranking = [r["name"] for r in result.get("intent_ranking") or [] if r["name"] != "nlu_fallback"]
                name = ranking[0] if ranking else name
            preds.append(name)
            rankings.append([[r["name"], r["confidence"]] for r in result.get("intent_ranking") or []])
        return preds, fallbacks, (time.perf_counter() - start) * 1000 / max(len(texts), 1), rankings

    return asyncio.run(run())


def run_pipeline(config: Path, train: Sequence[Example], test: Sequence[Example], keep: bool) -> Dict[str, float]:
    procs: List[subprocess.Popen] = []
    workdir = Path(tempfile.mkdtemp(prefix="smp2017-"))
    try:
        nlu, domain = write_training_files(train, workdir)
        check_training_file(nlu, train)
        env = dict(os.environ, KNOWLEDGE_DB_URL=f"sqlite:///{workdir / 'no-knowledge-store.db'}",
                   RASA_CACHE_DIRECTORY=str(workdir / "cache"), RASA_TELEMETRY_ENABLED="false")
        model, seconds, peak_mb = train_nlu(config, nlu, domain, workdir, env, procs)
        print(f"trained in {seconds:.0f} s; parsing {len(test)} test queries ...", flush=True)
        os.environ.update(KNOWLEDGE_DB_URL=env["KNOWLEDGE_DB_URL"], RASA_CACHE_DIRECTORY=env["RASA_CACHE_DIRECTORY"])
        preds, fallbacks, parse_ms, rankings = parse_all(model, [t for t, _ in test])
        return {"preds": preds, "train_s": seconds, "peak_mb": peak_mb, "fallbacks": fallbacks,
                "parse_ms": parse_ms, "rankings": rankings}
    finally:
        stop_all(procs)
        if keep:
            print(f"kept {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def describe_config(config: Path) -> str:
    """The config's fingerprint and components, so a figure can be tied to the config it came from."""
    import hashlib

    import yaml

    raw = config.read_bytes()
    names = [str(c.get("name")).rsplit(".", 1)[-1] for c in (yaml.safe_load(raw) or {}).get("pipeline") or []]
    return f"sha256 {hashlib.sha256(raw).hexdigest()[:12]}: {' > '.join(names)}"


def run_baseline(train: Sequence[Example], test: Sequence[Example]) -> Dict[str, float]:
    """Character 1-4-gram TF-IDF + logistic regression, in this process (peak RSS is this process's).

    C was chosen on train -> dev, never on test (dev accuracy: C=1 0.79, C=10 0.90, C=100 0.90)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(1, 4), sublinear_tf=True),
                          LogisticRegression(C=10.0, max_iter=2000))
    start = time.monotonic()
    model.fit([t for t, _ in train], [y for _, y in train])
    seconds = time.monotonic() - start
    start = time.perf_counter()
    preds = list(model.predict([t for t, _ in test]))
    parse_ms = (time.perf_counter() - start) * 1000 / max(len(test), 1)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"preds": preds, "train_s": seconds, "peak_mb": peak_mb, "fallbacks": 0, "parse_ms": parse_ms}


# -- scoring ----------------------------------------------------------------------------------------------

def score(gold: Sequence[str], pred: Sequence[str]) -> Tuple[float, float, Dict[str, float]]:
    """Accuracy and macro-F1 over the gold labels (a prediction outside them counts as a miss only)."""
    labels = sorted(set(gold))
    tp, fp, fn = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        if g == p:
            tp[g] += 1
        else:
            fn[g] += 1
            fp[p] += 1
    per_label = {}
    for label in labels:
        precision = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 0.0
        recall = tp[label] / (tp[label] + fn[label]) if tp[label] + fn[label] else 0.0
        per_label[label] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return sum(tp.values()) / len(gold), sum(per_label.values()) / len(labels), per_label


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DIR, help=f"data directory (default: {DEFAULT_DIR})")
    ap.add_argument("--config", type=Path, default=ROOT / "config.yml", help="Rasa config whose pipeline is trained")
    ap.add_argument("--baseline", action="store_true", help="TF-IDF char 1-4-grams + logistic regression instead")
    ap.add_argument("--show-errors", action="store_true", help="print the misclassified test queries")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (training data, model, log)")
    ap.add_argument("--tune", action="store_true", help="train on train only and score dev (test is not read)")
    ap.add_argument("--dump", type=Path, help="write each scored query, gold label and ranking as JSON lines")
    args = ap.parse_args()

    names = ("train", "dev") if args.tune else tuple(SPLIT_FILES)
    splits = {name: load_split(args.data, name) for name in names}
    absent = [name for name, rows in splits.items() if not rows]
    if absent:
        print(WHERE_TO_GET.format(dir=args.data))
        print(f"(missing: {', '.join(absent)})")
        return 0
    setup_env()
    if args.tune:
        train, test = splits["train"], splits["dev"]
    else:
        train, test = splits["train"] + splits["dev"], splits["test"]
    labels = sorted({y for _, y in test})
    config = args.config if args.config.is_absolute() else (Path.cwd() / args.config).resolve()
    if args.tune:
        print(f"SMP2017-ECDT task 1 from {args.data}, TUNING: train {len(train)} -> dev {len(test)}, "
              f"{len(labels)} labels (test not read)", flush=True)
    else:
        print(f"SMP2017-ECDT task 1 from {args.data}: train {len(splits['train'])} + dev {len(splits['dev'])} "
              f"= {len(train)} training examples, test {len(test)}, {len(labels)} labels", flush=True)
    if args.baseline:
        what = "baseline: TF-IDF character 1-4-grams (sublinear tf) + logistic regression (C=10), scikit-learn"
        res = run_baseline(train, test)
        memory = "this process"
    else:
        what = f"pipeline of {config} (rasa train nlu), {describe_config(config)}"
        res = run_pipeline(config, train, test, args.keep)
        memory = f"rasa train nlu and its children, sampled every {SAMPLE_EVERY_S} s"
    gold = [y for _, y in test]
    accuracy, macro_f1, per_label = score(gold, res["preds"])
    right = sum(g == p for g, p in zip(gold, res["preds"]))
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as sink:
            for i, ((text, g), p) in enumerate(zip(test, res["preds"])):
                ranking = res.get("rankings", [None] * len(test))[i]
                sink.write(json.dumps({"text": text, "gold": g, "pred": p, "ranking": ranking},
                                      ensure_ascii=False) + "\n")
    print(f"\n{what}{'  [train -> dev]' if args.tune else ''}")
    print(f"  accuracy        {accuracy:.3f}  ({right}/{len(test)})")
    print(f"  macro-F1        {macro_f1:.3f}  (over the {len(labels)} test labels)")
    print(f"  training        {res['train_s']:.1f} s")
    print(f"  peak RSS        {res['peak_mb']:.0f} MB  ({memory})")
    print(f"  prediction      {res['parse_ms']:.1f} ms per query")
    if not args.baseline:
        print(f"  nlu_fallback    {res['fallbacks']} test queries (scored by their next intent)")
    outside = Counter(p for p in res["preds"] if p not in per_label)
    if outside:
        print(f"  predicted outside the test labels: {dict(outside)}")
    worst = sorted(per_label.items(), key=lambda kv: kv[1])[:5]
    print("  lowest F1       " + ", ".join(f"{label} {f:.2f}" for label, f in worst))
    print(f"  load average    {loadavg()}")
    if args.show_errors:
        print("misclassified (gold → predicted):")
        for (text, g), p in zip(test, res["preds"]):
            if g != p:
                print(f"  {g:>12} → {p:<12} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
