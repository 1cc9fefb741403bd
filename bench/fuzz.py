"""Fuzz the stack that `make run` starts: random and mutated WeChat XML, socket.io frames (through the web
chat relay, ``sio-relay``, and straight to Rasa's loopback socket.io, ``sio-rasa``) and REST bodies, a
bounded number of each. Prints the requests sent, the
5xx answers (must be 0), crashed services (must be 0) and the servers' RSS before and after.

    .venv/bin/python bench/fuzz.py [--count 300] [--seed 1]

Everything runs on 127.0.0.1 (tests/security/run_stack.py: scripts/run.sh with WeChat in 安全模式) and is
stopped at the end. Exit status 1 when any 5xx answer or crash was seen.
"""
from __future__ import annotations

import argparse
import json
import random
import string
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from bench._common import pid_listening_on, rss_kb, setup_env  # noqa: E402

TEXTS = ["停车怎么收费", "IMAX周六多少钱", "退票", "/greet", "/request_human", "着火了", "13812345678", "XH202611230001",
         "", " ", "\u0000", "🎬" * 50, "<script>alert(1)</script>", "]]><xml>", "${jndi:ldap://x}", "%s%s%n"]


def rand_text(rng: random.Random, n: int = 0) -> str:
    n = n or rng.choice([1, 5, 40, 600, 5000])
    pool = string.printable + "停车票价退款影厅你好]]><&;\"'\\\u3000\ufffd"
    return "".join(rng.choice(pool) for _ in range(n))


def mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        pos = rng.randrange(len(data) + 1) if data else 0
        if op < 0.3 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op < 0.55:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op < 0.75 and data:
            del data[pos:pos + rng.randint(1, 32)]
        else:
            data[pos:pos] = rng.choice([b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b"&a;", b"<![CDATA[", b"]]>", b"\xff\xfe",
                                         b"<xml>", b"</xml>", b"\x1e", b"42", b'{"', b"[[[[[[[["])
    return bytes(data)


# ---------------------------------------------------------------------------- WeChat
def wechat_case(rng: random.Random, stack) -> Tuple[str, str, dict, bytes]:
    from tests.security.run_stack import AES_KEY, APPID
    from tools.wechat_send import build_message_xml, encrypt_request, signed_query

    token = stack.env["WECHAT_TOKEN"]
    openid = "o" + "".join(rng.choice(string.ascii_letters) for _ in range(27))
    xml = build_message_xml(openid, rng.choice(TEXTS + [rand_text(rng)]),
                            rng.choice(["text", "voice", "image", "location", "click", "subscribe", "video"]),
                            "gh_test_account", None, event_key=rng.choice(["ask_showtimes", "x" * 100, "../"]))
    kind = rng.random()
    query = signed_query(token)
    if kind < 0.4:     # mutated XML inside a correctly encrypted and signed envelope
        inner = mutate(rng, xml.encode()).decode("utf-8", "replace")
        body, query = encrypt_request(inner, query, token, AES_KEY, APPID)
        return "POST", "/webhooks/wechat/webhook", query, body.encode()
    if kind < 0.7:     # a mutated envelope with a valid signature
        body, query = encrypt_request(xml, query, token, AES_KEY, APPID)
        return "POST", "/webhooks/wechat/webhook", query, mutate(rng, body.encode())
    if kind < 0.85:    # mutated query strings
        q = {k: (mutate(rng, v.encode()).decode("latin-1") if rng.random() < 0.5 else v) for k, v in query.items()}
        q["encrypt_type"] = rng.choice(["aes", "raw", "", "AES", "x" * 300])
        return rng.choice(["POST", "GET"]), "/webhooks/wechat/webhook", q, mutate(rng, xml.encode())
    return "POST", "/webhooks/wechat/webhook", query, bytes(rng.randrange(256) for _ in range(rng.choice([0, 10, 70000])))


# ---------------------------------------------------------------------------- socket.io
def sio_frame(rng: random.Random) -> str:
    data = rng.choice([{"message": rng.choice(TEXTS), "session_id": rng.choice([None, "web-x", "o" * 28, 5])},
                       {"session_id": rng.choice([None, "web-" + "a" * 22 + "-" + "0" * 16, [], {}])},
                       rng.choice(TEXTS), None, 12, [1, 2], {"metadata": "{bad json"}, {"message": {"a": 1}}])
    event = rng.choice(["user_uttered", "session_request", "bot_uttered", "x", "", "connect"])
    frame = "42" + rng.choice(["", "/", "/ns,", "7"]) + json.dumps([event, data], ensure_ascii=False)
    if rng.random() < 0.5:
        frame = mutate(rng, frame.encode()).decode("utf-8", "replace")
    return rng.choice([frame, "40", "41", "2", "3", "451-[\"x\",{\"_placeholder\":true,\"num\":0}]", "6", frame * 3])


def handshake(base: str, path: str, http: requests.Session) -> str:
    r = http.get(f"{base}{path}", params={"EIO": "4", "transport": "polling"}, timeout=30)
    if r.status_code != 200 or not r.text.startswith("0"):
        return ""
    sid = json.loads(r.text[1:])["sid"]
    http.post(f"{base}{path}", params={"EIO": "4", "transport": "polling", "sid": sid}, data="40", timeout=30)
    http.get(f"{base}{path}", params={"EIO": "4", "transport": "polling", "sid": sid}, timeout=30)
    return sid


def socketio_case(rng: random.Random, stack, sessions: Dict[str, Tuple[requests.Session, str]]):
    base, path = rng.choice([(stack.desk, "/webchat/socket.io/"), (stack.rasa, "/socket.io/")])
    key = base + path
    if key not in sessions or rng.random() < 0.05:
        http = requests.Session()
        sessions[key] = (http, handshake(base, path, http))
    http, sid = sessions[key]
    frames = "\x1e".join(sio_frame(rng) for _ in range(rng.randint(1, 4)))
    query = {"EIO": rng.choice(["4", "4", "3", "x"]), "transport": rng.choice(["polling", "polling", "websocket"]),
             "sid": sid if rng.random() < 0.85 else rand_text(rng, 20)}
    return "POST", base, path, query, frames.encode("utf-8", "surrogatepass"), http


# ---------------------------------------------------------------------------- REST
def rest_body(rng: random.Random) -> bytes:
    valid = {"sender": "fuzz-" + str(rng.randrange(50)), "message": rng.choice(TEXTS)}
    choice = rng.random()
    if choice < 0.35:
        return json.dumps(valid, ensure_ascii=False).encode()
    if choice < 0.6:
        return mutate(rng, json.dumps(valid, ensure_ascii=False).encode())
    if choice < 0.8:
        value = rng.choice([[], {}, None, 1, "x", {"sender": 1, "message": 2}, {"sender": "s"}, {"message": "m"},
                            {"sender": "s" * 500, "message": "m"}, {"sender": "web-abc", "message": "m"},
                            {"sender": "s", "message": "m", "input_channel": "wechat", "metadata": "x"},
                            {"sender": ["a"], "message": None}, {"sender": "s", "message": rand_text(rng, 5000)}])
        return json.dumps(value).encode()
    return rng.choice([b"", b"{", b"\xff\xfe", b"[" * 5000 + b"]" * 5000, b'{"sender":"a","message":"' + b"a" * 100000 + b'"}'])


# ---------------------------------------------------------------------------- the run
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300, help="requests per kind (WeChat, socket.io, REST)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    setup_env()
    from tests.security.run_stack import start, stop

    rng = random.Random(args.seed)
    var = Path(tempfile.mkdtemp(prefix="xinghe-fuzz-"))
    print(f"==> starting the make-run stack in {var}", flush=True)
    stack = start(var, {"XINGHE_LIMIT_MESSAGE_SENDER": "1000/60"})   # limits are not what is fuzzed here
    services = {"rasa": stack.rasa_port, "actions": stack.actions_port, "desk": stack.desk_port}
    pids = {name: pid_listening_on(port) for name, port in services.items()}
    try:
        stack.rest("fuzz-warmup", "你好")
        before = {name: rss_kb(pid).get("VmRSS", 0) for name, pid in pids.items()}
        sent: Counter = Counter()
        status: Counter = Counter()
        errors: List[str] = []
        sessions: Dict[str, Tuple[requests.Session, str]] = {}
        started = time.monotonic()

        def record(kind: str, send: Callable[[], requests.Response], what: str = "") -> None:
            sent[kind] += 1
            try:
                r = send()
                status[(kind, r.status_code // 100)] += 1
                if r.status_code >= 500:
                    errors.append(f"{kind} {r.status_code} {r.text[:120]!r} {what}")
            except requests.RequestException as exc:
                status[(kind, "no answer")] += 1
                errors.append(f"{kind} no answer: {type(exc).__name__} {what}")

        for _ in range(args.count):
            method, path, query, body = wechat_case(rng, stack)
            record("wechat", lambda: requests.request(method, stack.rasa + path, params=query, data=body, timeout=30))
            method, base, path, query, body, http = socketio_case(rng, stack, sessions)
            kind = "sio-relay" if base == stack.desk else "sio-rasa"
            record(kind, lambda: http.request(method, base + path, params=query, data=body, timeout=30),
                   f"{query} {body[:60]!r}")
            body = rest_body(rng)
            record("rest", lambda: requests.post(stack.rasa + "/webhooks/rest/webhook", data=body, timeout=60,
                                                 headers={"Content-Type": "application/json"}))
        wall = time.monotonic() - started
        crashed = [name for name, pid in pids.items() if pid is None or not Path(f"/proc/{pid}").exists()]
        alive = not crashed and requests.get(f"{stack.desk}/desk/login", timeout=30).ok \
            and "停车" in stack.rest("fuzz-after", "停车怎么收费")[0]["text"]
        after = {name: (rss_kb(pid).get("VmRSS", 0) if name not in crashed else 0) for name, pid in pids.items()}
    finally:
        stop(stack)

    total = sum(sent.values())
    fives = sum(v for (k, c), v in status.items() if c == 5)
    public_fives = sum(v for (k, c), v in status.items() if c == 5 and k != "sio-rasa")
    print(f"requests sent: {total} ({', '.join(f'{k} {v}' for k, v in sent.items())}) in {wall:.0f} s, seed {args.seed}")
    for kind in sent:
        print(f"  {kind:10s} " + "  ".join(f"{c}xx: {v}" if isinstance(c, int) else f"{c}: {v}"
                                         for (k, c), v in sorted(status.items(), key=str) if k == kind))
    print(f"5xx answers: {fives} (public paths: {public_fives}; Rasa's loopback socket.io: {fives - public_fives})")
    print(f"crashed services: {len(crashed)} {crashed if crashed else ''}; answering normally afterwards: {alive}")
    for name in services:
        print(f"  RSS {name:7s} before {before[name] / 1024:7.1f} MB   after {after[name] / 1024:7.1f} MB")
    for line in errors[:20]:
        print("  !", line)
    unanswered = [e for e in errors if "no answer" in e]
    print(f"unanswered requests: {len(unanswered)} (public paths: "
          f"{sum(1 for e in unanswered if not e.startswith('sio-rasa'))})")
    return 0 if fives == 0 and not crashed and alive and not unanswered else 1


if __name__ == "__main__":
    sys.exit(main())
