"""Health checks of the supervised services, and a watcher that restarts a service that is up but stuck.

supervisord restarts a process that exits; it cannot see one that runs but no longer answers (a deadlock, an
event loop stuck in one call). ``--watch`` (a supervised program itself) asks every service's health URL every
``--every`` seconds, and kills one that failed ``--failures`` checks in a row (each waiting ``--timeout``
seconds); supervisord then restarts it as after any crash, and logs it. Only a hang counts, never load:

- a process is watched from its first answer on (loading a Rasa model took from one to ten minutes on the
  shared 2-core machine; a start grace of any length was either too short or useless);
- a check that fails while the process keeps using CPU is "busy", not a miss: an overloaded instance answers
  late (health answers over 20 s at load 20 in bench/cluster.py), and killing it would only move its
  patrons' wait onto the others. A deadlocked or stopped process uses none.

    python -m bot.deploy.health --layout var/layout.json            # one round: a table, exit 1 if any is down
    python -m bot.deploy.health --layout var/layout.json --wait 300 # until all answer (run scripts, tests)
"""
from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import socket
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from pathlib import Path
from typing import Dict, List, Optional

log = logging.getLogger("healthwatch")


def check(url: Optional[str], timeout: float = 3.0) -> Optional[str]:
    """None when ``url`` answers 2xx within ``timeout``, else why not. A service without a health URL (the
    event consumer) is judged by its process state alone."""
    if not url:
        return None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return None if 200 <= r.status < 300 else f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}"
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        return type(getattr(e, "reason", e)).__name__


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self._path)


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path

    def make_connection(self, host):  # noqa: D401 - xmlrpc API
        return _UnixHTTPConnection(self._path)


def supervisor(socket_path: str):
    """supervisord's XML-RPC interface over its unix socket (``supervisor.getAllProcessInfo`` …)."""
    return xmlrpc.client.ServerProxy("http://localhost", transport=_UnixTransport(socket_path)).supervisor


def load(path: str) -> Dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def states(layout: Dict) -> Dict[str, Dict]:
    try:
        return {p["name"]: p for p in supervisor(layout["socket"]).getAllProcessInfo()}
    except (OSError, xmlrpc.client.Error):
        return {}


def report(layout: Dict) -> List[Dict]:
    procs = states(layout)
    rows = []
    for svc in layout["services"]:
        p = procs.get(svc["name"], {})
        rows.append({"name": svc["name"], "state": p.get("statename", "?"), "pid": p.get("pid"),
                     "health": check(svc["health"]) or "ok"})
    return rows


def wait(layout: Dict, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(check(s["health"]) is None for s in layout["services"]):
            return True
        time.sleep(1)
    return False


def watch(layout: Dict, every: float, failures: int, timeout: float) -> None:
    misses: Dict[str, int] = {}
    while True:
        try:
            _watch_round(layout, misses, failures, timeout)
        except Exception:  # never let the watcher itself die on a slow supervisord or a refused socket
            log.exception("health round failed")
        time.sleep(every)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


_answered: Dict[str, int] = {}     # service → pid that has answered at least once
_cpu: Dict[str, float] = {}


def _watch_round(layout: Dict, misses: Dict[str, int], failures: int, timeout: float) -> None:
    procs = states(layout)
    for svc in layout["services"]:
        name = svc["name"]
        p = procs.get(name)
        if not p or p.get("statename") != "RUNNING":
            misses.pop(name, None)   # supervisord is (re)starting it
            continue
        pid = p.get("pid")
        why = check(svc["health"], timeout=timeout)
        cpu, before = cpu_seconds(pid), _cpu.get(name)
        _cpu[name] = cpu
        if why is None:
            if _answered.get(name) != pid:
                log.info("%s is up (pid %s): watched from now on", name, pid)
            _answered[name] = pid
            if misses.pop(name, None):
                log.info("%s answers again", name)
            continue
        if _answered.get(name) != pid:
            continue                 # not up yet (a Rasa instance loading its model)
        if before is not None and cpu - before >= 0.1:
            log.info("%s (pid %s) is slow to answer (%s) but working: not counted", name, pid, why)
            continue
        misses[name] = misses.get(name, 0) + 1
        log.warning("%s (pid %s) failed its health check %d/%d: %s", svc["name"], p.get("pid"),
                    misses[svc["name"]], failures, why)
        if misses[svc["name"]] >= failures:
            # SIGKILL: a stuck process may not honour TERM; supervisord restarts it like any crash
            log.error("%s is running but has not answered for %d checks: killing it for supervisord to "
                      "restart", svc["name"], failures)
            try:
                supervisor(layout["socket"]).signalProcess(svc["name"], "KILL")
            except xmlrpc.client.Error as e:
                log.error("could not signal %s: %s", svc["name"], e)
            misses.pop(svc["name"], None)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layout", required=True, help="var/layout.json written by bot.deploy.layout")
    parser.add_argument("--watch", action="store_true")
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for every service to answer")
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument("--failures", type=int, default=6)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds one health check may take")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    layout = load(args.layout)
    if args.watch:
        watch(layout, args.every, args.failures, args.timeout)
        return 0
    if args.wait and not wait(layout, args.wait):
        print("not every service answered within", args.wait, "s", file=sys.stderr)
    rows = report(layout)
    for r in rows:
        print(f"{r['name']:<12} {r['state']:<9} pid={r['pid'] or '-':<8} health={r['health']}")
    return 0 if all(r["health"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
