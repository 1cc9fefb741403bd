"""Shared helpers for the benchmarks in bench/: environment, message mixes, statistics, processes."""
from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# Patron conversations for 星河客服: prices, showtimes, parking, refund rules, follow-ups, greetings.
# Each inner list is one short conversation under one sender id, so follow-ups (那周二呢, 学生呢) have context.
OUR_CONVERSATIONS: List[List[str]] = [
    ["你好", "IMAX周六多少钱", "那周二呢", "学生呢"],
    ["停车怎么收费", "能免费停几个小时", "谢谢"],
    ["明天晚上有星际归途吗", "票价多少"],
    ["退票有什么规定", "开场前多久可以退"],
    ["今天都有什么电影", "破晓行动几点有场"],
    ["您好", "杜比厅周末多少钱", "那儿童票呢"],
    ["有充电桩吗", "停车场在哪", "再见"],
    ["熊猫总动员后天上午有排片吗", "谢谢"],
    ["4DX票价多少", "周三呢"],
    ["买了票还能改签吗", "退票收手续费吗"],
]

# Rasa's stock moodbot (rasa init), in its own English.
STOCK_CONVERSATIONS: List[List[str]] = [
    ["hi", "I am sad", "yes", "bye"],
    ["hello there", "great", "bye"],
    ["good morning", "I am feeling very good", "goodbye"],
    ["hey", "not good", "no", "see you later"],
    ["are you a bot?", "hi", "very bad", "yes"],
    ["good evening", "perfect", "have a nice day"],
]


def setup_env() -> None:
    """What scripts/env.sh exports, for this process and the servers it starts."""
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(ROOT) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + paths)
    tmp = Path(os.environ.get("TMPDIR_OVERRIDE") or ROOT / "var" / "tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(tmp)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # A SIGTERM is handled like Ctrl-C so that the finally blocks stop the servers.
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def newest_model() -> Optional[str]:
    models = sorted(glob.glob(str(ROOT / "models" / "xinghe-*.tar.gz")), key=os.path.getmtime)
    return models[-1] if models else None


def wait_for_model(max_wait: float = 900, poll: float = 30) -> str:
    deadline = time.monotonic() + max_wait
    while True:
        model = newest_model()
        if model:
            return model
        if time.monotonic() >= deadline:
            raise SystemExit(f"no model in {ROOT / 'models'} after {max_wait:.0f} s (run scripts/prepare.sh)")
        print(f"no model in models/ yet; checking again in {poll:.0f} s", flush=True)
        time.sleep(poll)


def require_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host not in LOOPBACK:
        raise SystemExit(f"refusing to send benchmark traffic to {host!r}: only 127.0.0.1 is allowed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def conversation_turns(conversations: Sequence[Sequence[str]]) -> Iterable[tuple]:
    """Endless (conversation number, turn index, text), cycling through the conversations."""
    n = 0
    while True:
        for conversation in conversations:
            for i, text in enumerate(conversation):
                yield n, i, text
            n += 1


# -- statistics ---------------------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarize(latencies: Sequence[float], wall: float) -> Dict[str, float]:
    return {"n": len(latencies), "p50": percentile(latencies, 50) * 1000, "p95": percentile(latencies, 95) * 1000,
            "p99": percentile(latencies, 99) * 1000, "max": (max(latencies) * 1000 if latencies else float("nan")),
            "rate": (len(latencies) / wall if wall > 0 else float("nan")), "wall": wall}


def fmt_ms(ms: float) -> str:
    if ms != ms:  # NaN
        return "-"
    return f"{ms:.0f} ms" if ms < 10000 else f"{ms / 1000:.1f} s"


# -- processes ------------------------------------------------------------------------------------------

def rss_kb(pid: int) -> Dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB."""
    out: Dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def children(pid: int) -> List[int]:
    kids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                kids.append(int(stat.split("/")[2]))
        except (OSError, IndexError, ValueError):
            continue
    return kids


def pid_listening_on(port: int) -> Optional[int]:
    """The pid of the process with a listening TCP socket on ``port`` (needs access to its /proc/PID/fd)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(parts[9])
        except OSError:
            continue
    if not inodes:
        return None
    for fd_dir in glob.glob("/proc/[0-9]*/fd"):
        try:
            for fd in os.listdir(fd_dir):
                try:
                    link = os.readlink(f"{fd_dir}/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(fd_dir.split("/")[2])
        except OSError:
            continue
    return None


def stop_process(p: Optional[subprocess.Popen], timeout: float = 15) -> None:
    if p is None or p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=timeout)


def stop_all(procs: List[subprocess.Popen]) -> None:
    """Stops the given processes and any other child this process still has (e.g. servers a helper had
    started when it was interrupted), by pid."""
    for p in reversed(procs):
        try:
            stop_process(p)
        except Exception:  # noqa: BLE001
            pass
    for pid in children(os.getpid()):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            continue
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            time.sleep(0.2)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass


def run_guarded(body, procs: List[subprocess.Popen], cleanup=None) -> int:
    """Runs ``body()``; whatever happens (Ctrl-C, SIGTERM, a failure) every server in ``procs`` is stopped
    and ``cleanup()`` runs. Returns the exit status: 0, 130 (interrupted) or 1 (failed)."""
    status = 0
    try:
        body()
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers", file=sys.stderr)
        status = 130
    except Exception as e:  # noqa: BLE001
        print(f"\nbenchmark failed: {type(e).__name__}: {e}", file=sys.stderr)
        status = 1
    finally:
        stop_all(procs)
        if cleanup is not None:
            cleanup()
    return status


def finish(workdir: Path, status: int, keep: bool = False) -> int:
    """Keeps the work directory (logs) when asked or when something failed, else removes it."""
    import shutil

    if keep or status:
        print(f"logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return status


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# -- load generation ------------------------------------------------------------------------------------

class LoadResult:
    def __init__(self) -> None:
        self.latencies: List[float] = []          # seconds, every answered request
        self.kinds: Dict[str, List[float]] = {}   # latencies per outcome kind (e.g. "ok", "empty", "passive")
        self.errors: List[str] = []
        self.wall = 0.0

    def add(self, kind: str, latency: float) -> None:
        self.latencies.append(latency)
        self.kinds.setdefault(kind, []).append(latency)

    def count(self, kind: str) -> int:
        return len(self.kinds.get(kind, []))


async def run_load(send, conversations: Sequence[Sequence[str]], senders: int, max_messages: int,
                   time_budget: float, id_prefix: str) -> LoadResult:
    """Runs ``senders`` concurrent patrons, each walking through the conversations (a new sender id per
    conversation, so follow-ups have their context and no two concurrent patrons share an id), until
    ``max_messages`` messages were sent or ``time_budget`` seconds passed.

    ``send(sender_id, text)`` is a coroutine returning an outcome kind (str); an exception is an error.
    """
    import asyncio

    result = LoadResult()
    remaining = [max_messages]
    start = time.perf_counter()
    deadline = start + time_budget

    async def patron(w: int) -> None:
        offset = (w * 3) % len(conversations)
        rotated = list(conversations[offset:]) + list(conversations[:offset])
        for n, _i, text in conversation_turns(rotated):
            if remaining[0] <= 0 or time.perf_counter() >= deadline:
                return
            remaining[0] -= 1
            sender = f"{id_prefix}-{w:02d}-{n:04d}"
            t0 = time.perf_counter()
            try:
                kind = await send(sender, text)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every failure is a data point
                result.errors.append(f"{type(e).__name__}: {e}"[:200])
                continue
            result.add(kind, time.perf_counter() - t0)

    await asyncio.gather(*(patron(w) for w in range(senders)))
    result.wall = time.perf_counter() - start
    return result
