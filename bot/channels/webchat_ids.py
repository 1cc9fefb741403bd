"""Web chat session ids: issued by the server, signed, and bound to one browser.

A session id is ``web-<22 random-looking chars>-<16 hex MAC>``. The relay in front of Rasa
(``bot.services.webchat``) derives the random part from the browser's HttpOnly chat cookie, so the same
browser keeps its conversation across reloads and no other browser can name it; the Rasa channel
(``bot.channels.webchat``) accepts only ids whose MAC is right, so a sender id of another channel (a WeChat
OpenID, a REST tool's id) can never be claimed from the web. The key is ``XINGHE_WEBCHAT_KEY`` (shared by
the Rasa server and the web app; ``make run`` generates one per run when it is unset).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from typing import Optional

WEB_PREFIX = "web-"
#: Engine.IO v4 packet types a client sends in a long-polling POST: close, pong, message. On any other type
#: python-engineio 4.x closes the socket and then waits for ever on its queue, holding the request; the relay
#: and Rasa's web chat channel both refuse them (bench/fuzz.py found the hang).
CLIENT_POLLING_TYPES = "134"
KEY_ENV = "XINGHE_WEBCHAT_KEY"
_ID_RE = re.compile(r"^web-([A-Za-z0-9_-]{22})-([0-9a-f]{16})$")


def key_from_env() -> bytes:
    key = os.environ.get(KEY_ENV, "").encode("utf-8")
    if len(key) < 32:
        raise RuntimeError(f"{KEY_ENV} must be set to 32+ bytes for the web chat (make run generates one)")
    return key


def _mac(key: bytes, purpose: str, value: str) -> bytes:
    return hmac.new(key, f"{purpose}:{value}".encode("utf-8"), hashlib.sha256).digest()


def issue(key: bytes, binding: Optional[str] = None) -> str:
    """A session id; the same ``binding`` (the browser's chat cookie) always gives the same id."""
    raw = _mac(key, "bind", binding) if binding else secrets.token_bytes(16)
    rand = base64.urlsafe_b64encode(raw[:16]).decode("ascii").rstrip("=")
    return f"{WEB_PREFIX}{rand}-{_mac(key, 'id', rand).hex()[:16]}"


def valid(key: bytes, session_id: object) -> bool:
    """True when ``session_id`` is an id this server issued."""
    if not isinstance(session_id, str):
        return False
    m = _ID_RE.match(session_id)
    return bool(m) and hmac.compare_digest(m.group(2), _mac(key, "id", m.group(1)).hex()[:16])
