"""Rasa's REST channel for local tools and tests (``rest`` in credentials.yml is replaced by this one).

Differences from ``rasa.core.channels.rest.RestInput``, which trusts its caller completely:

- Only loopback callers, unless ``XINGHE_REST_PUBLIC=1`` (the public web talks through the web chat relay
  or WeChat, never here).
- The input channel is always ``rest``: the stock channel takes ``input_channel`` from the body, so a caller
  could label its message ``wechat`` and have an agent's next reply sent to a patron's WeChat.
- Sender ids of the web chat's space (``web-…``, issued and signed by the server) are refused.
- Malformed bodies get 400 instead of a server error; the caller's ``metadata`` is replaced by the
  server's (the client address, for the per-address message limits).
"""
from __future__ import annotations

import ipaddress
import os
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request

from bot.channels.webchat_ids import WEB_PREFIX

MAX_SENDER_CHARS = 128


def _loopback(address: Optional[str]) -> bool:
    try:
        return ipaddress.ip_address((address or "").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class LocalRestInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "rest"

    def _extract_input_channel(self, req: Request) -> Text:
        return self.name()

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        # Local tools (benchmarks, tests) share 127.0.0.1: only remote callers are limited per address.
        return {} if _loopback(request.ip) else {"client_ip": request.ip}

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        bp = super().blueprint(on_new_message)
        public = os.environ.get("XINGHE_REST_PUBLIC", "").strip().lower() in ("1", "true", "yes")

        @bp.middleware("request")
        async def check(request: Request):
            if not public and not _loopback(request.ip):
                return response.json({"error": "the REST channel serves local tools only"}, status=403)
            if request.method != "POST":
                return None
            try:
                body = request.json
            except Exception:
                body = None
            if not isinstance(body, dict):
                return response.json({"error": "the body must be a JSON object"}, status=400)
            sender, message = body.get("sender"), body.get("message")
            if not isinstance(sender, str) or not sender or len(sender) > MAX_SENDER_CHARS \
                    or not isinstance(message, str):
                return response.json({"error": "sender (1-128 characters) and message (text) are required"},
                                     status=400)
            if sender.startswith(WEB_PREFIX):
                return response.json({"error": "sender ids of the web chat cannot be used here"}, status=403)
            return None

        return bp
