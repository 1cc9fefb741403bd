"""Reading and rewriting the socket.io frames a browser sends (Engine.IO v4 text packets), for the web chat relay.

Only two events matter to Rasa: ``session_request`` and ``user_uttered``. Both get the session id the server
bound to the browser; a ``user_uttered`` naming any other session is dropped. Binary packets (which the web
chat never sends) and unparsable events are dropped too, so nothing reaches Rasa that the relay did not read.
"""
from __future__ import annotations

import json
import logging
import re
from typing import Optional

from bot.channels.webchat_ids import CLIENT_POLLING_TYPES  # what Rasa's web chat channel lets through too

log = logging.getLogger(__name__)

RECORD_SEPARATOR = "\x1e"   # between packets of one long-polling payload (Engine.IO v4)
_ACK = re.compile(r"\d*")
USER_EVENT = "user_uttered"
CLIENT_WS_TYPES = "1345"       # close, pong, message, upgrade


def rewrite_packet(packet: str, session_id: str, websocket: bool = False) -> Optional[str]:
    """The packet to forward (possibly rewritten), or None to drop it."""
    if websocket and packet == "2probe":
        return packet                       # the upgrade handshake's probe
    if not packet or packet[0] not in (CLIENT_WS_TYPES if websocket else CLIENT_POLLING_TYPES):
        # Not a packet an Engine.IO v4 client sends (binary "b…" included). python-engineio 4.x answers any
        # other type by closing the socket and then waits for ever on its queue, holding the request
        # (bench/fuzz.py found the hang with "2" and "6").
        return None
    if packet[0] != "4":
        return packet[:1]                   # close, pong, upgrade: they carry no payload
    if len(packet) < 2 or packet[1] not in "0123456":
        return None
    kind, rest = packet[1], packet[2:]
    if kind in "56":
        return None                         # binary event / binary ack
    if kind != "2":
        return packet                       # connect, disconnect, ack
    namespace = ""
    if rest.startswith("/"):
        comma = rest.find(",")
        if comma < 0:
            return None
        namespace, rest = rest[:comma + 1], rest[comma + 1:]
    ack = _ACK.match(rest).group(0)
    try:
        args = json.loads(rest[len(ack):])
    except ValueError:
        return None
    if not isinstance(args, list) or not args or not isinstance(args[0], str):
        return None
    name = args[0]
    data = args[1] if len(args) > 1 else None
    if name == "session_request":
        data = data if isinstance(data, dict) else {}
        if data.get("session_id") not in (None, session_id):
            log.info("web chat: a browser asked for a session it does not hold; given its own")
        data["session_id"] = session_id
        args = [name, data]
    elif name == USER_EVENT:
        if not isinstance(data, dict):
            return None
        if data.get("session_id") not in (None, session_id):
            log.warning("web chat: dropped a message naming a session the browser does not hold")
            return None
        data["session_id"] = session_id
        args = [name, data]
    return "42" + namespace + ack + json.dumps(args, ensure_ascii=False, separators=(",", ":"))


def rewrite_payload(payload: str, session_id: str) -> Optional[str]:
    """A long-polling POST body: every packet rewritten, dropped ones left out; None when none is left."""
    kept = [p for p in (rewrite_packet(x, session_id) for x in payload.split(RECORD_SEPARATOR)) if p is not None]
    return RECORD_SEPARATOR.join(kept) if kept else None
