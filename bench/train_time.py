"""Time `rasa train` (or `rasa train nlu` / `rasa train core`) phase by phase, on a cold cache.

  python bench/train_time.py                          # rasa train --config config.yml, models to a temp dir
  python bench/train_time.py --config /tmp/variant.yml --out models --name xinghe-variant
  python bench/train_time.py --what nlu               # rasa train nlu; --what core likewise

Runs Rasa in this process with each graph node timed (its run, and the hooks around it: the fingerprints
and the cache writes), and prints the wall-clock total, the load average before and after (the machine is
shared: compare timings only at similar load), the CPU time, the peak RSS, and the nodes that took longer
than 0.5 s.
The Rasa cache is a fresh directory unless --warm-cache (a changed `data/` re-runs every node anyway).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--what", choices=["all", "nlu", "core"], default="all")
    ap.add_argument("--config", default="config.yml")
    ap.add_argument("--out", help="models directory (default: a temporary one)")
    ap.add_argument("--name", default="timed", help="--fixed-model-name")
    ap.add_argument("--warm-cache", action="store_true", help="use the project's .rasa/cache")
    ap.add_argument("--cache", help="use this Rasa cache directory (e.g. to re-train only a changed DIET)")
    args = ap.parse_args()

    os.chdir(ROOT)
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KNOWLEDGE_DB_URL", f"sqlite:///{ROOT / 'var' / 'xinghe.db'}")
    tmp = tempfile.mkdtemp(prefix="train-time-")
    if args.cache:
        os.environ["RASA_CACHE_DIRECTORY"] = args.cache
    elif not args.warm_cache:
        os.environ["RASA_CACHE_DIRECTORY"] = str(Path(tmp) / "cache")
    out = args.out or str(Path(tmp) / "models")
    sys.path.insert(0, str(ROOT))

    load_before = os.getloadavg()
    start = time.monotonic()
    from rasa.engine import graph

    times: dict = defaultdict(float)
    hooks: dict = defaultdict(float)
    original_call = graph.GraphNode.__call__
    original_before, original_after = graph.GraphNode._run_before_hooks, graph.GraphNode._run_after_hooks

    def timed_call(self, *inputs):
        t = time.monotonic()
        try:
            return original_call(self, *inputs)
        finally:
            times[self._node_name] += time.monotonic() - t

    def timed_before(self, received):
        t = time.monotonic()
        try:
            return original_before(self, received)
        finally:
            hooks[self._node_name] += time.monotonic() - t

    def timed_after(self, hook_outputs, output):
        t = time.monotonic()
        try:
            return original_after(self, hook_outputs, output)
        finally:
            hooks[self._node_name] += time.monotonic() - t

    graph.GraphNode.__call__ = timed_call
    graph.GraphNode._run_before_hooks = timed_before
    graph.GraphNode._run_after_hooks = timed_after

    argv = ["rasa", "train"] + ([args.what] if args.what != "all" else []) + [
        "--config", args.config, "--out", out, "--fixed-model-name", args.name]
    if args.what != "nlu":
        argv += ["--domain", "domain.yml"]
    argv += ["--data", "data"] if args.what == "all" else (["--nlu", "data/nlu"] if args.what == "nlu" else
                                                          ["--stories", "data"])
    sys.argv = argv
    from rasa.__main__ import main as rasa_main

    code = 0
    try:
        rasa_main()
    except SystemExit as e:
        code = e.code or 0
    total = time.monotonic() - start
    graph_total = sum(times.values())
    print(f"\n==> {' '.join(argv[1:])}", flush=True)
    print(f"wall clock {total:.1f} s (graph nodes {graph_total:.1f} s, of which hooks {sum(hooks.values()):.1f} s; "
          f"the rest is reading and validating the data, building and packing the model)")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime
    print(f"CPU time {cpu:.1f} s (user+system; less sensitive to other load than the wall clock)")
    print(f"load average before {' '.join(f'{x:.2f}' for x in load_before)}; "
          f"after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"Rasa cache {os.environ.get('RASA_CACHE_DIRECTORY', '.rasa/cache')}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; model in {out}")
    for name, t in sorted(times.items(), key=lambda x: -x[1]):
        if t >= 0.5:
            print(f"  {t:7.1f} s  {name}  (hooks {hooks[name]:.1f} s)")
    sys.exit(code)


if __name__ == "__main__":
    main()
