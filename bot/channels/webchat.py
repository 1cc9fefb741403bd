"""Rasa's socket.io channel for the web chat, with server-issued session ids (replaces ``socketio`` in
credentials.yml; the channel keeps the name ``socketio``).

Rasa's stock channel takes the conversation from the client: ``session_request`` joins whatever room the
client names, and every ``user_uttered`` names its own ``session_id``. So a second browser could read a
patron's conversation, or write into a WeChat patron's by naming the OpenID. Here:

- ``session_request`` must name an id issued by this server (``bot.channels.webchat_ids``; the relay in the
  web app puts the browser-bound one there); without one a fresh signed id is issued, a forged one is refused.
- A connection is bound to the session it requested; ``user_uttered`` goes to that session whatever it says.
- The client's metadata is dropped except a string ``url``; the server adds ``client_ip`` (the relay's
  ``X-Forwarded-For``) for the per-address message limits.
- Long-polling POSTs carrying packets no client sends are answered 400 before python-engineio sees them
  (it would hold the request for ever; found by bench/fuzz.py).
- Several Rasa instances (``make run-cluster``): with ``SOCKETIO_MANAGER=redis`` a message for a session
  (an agent's reply or a handoff notice executed by whichever instance served the desk's HTTP call) is
  published on Redis and emitted by the instance holding the patron's socket (``bot.channels.socket_cluster``);
  engine.io session ids start with ``XINGHE_INSTANCE`` so nginx sends a long-polling client back to the
  process that holds its session.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request

from bot.channels import socket_cluster, webchat_ids
from bot.channels.webchat_ids import CLIENT_POLLING_TYPES

logger = logging.getLogger(__name__)

MAX_MESSAGE_FIELD = 10_000  # the gate refuses long messages politely; this only bounds memory


class _ScreenedSocketBlueprint(SocketBlueprint):
    """Rasa's socket.io blueprint plus a check of long-polling POST bodies before python-engineio sees them."""

    def register(self, app, options) -> None:
        path = "/" + str(self.ctx.socketio_path).strip("/")

        async def screen(request: Request):
            if request.method != "POST" or not (request.path == path or request.path.startswith(path + "/")):
                return None
            try:
                packets = (request.body or b"").decode("utf-8").split("\x1e")
            except UnicodeDecodeError:
                return response.text("bad payload", status=400)
            if any(not p or p[0] not in CLIENT_POLLING_TYPES for p in packets):
                return response.text("bad packet", status=400)
            return None

        app.register_middleware(screen, "request")
        super().register(app, options)


def agent_css(metadata: Any) -> Optional[Dict[Text, Text]]:
    """rasa-webchat's per-message ``customCss`` for an agent's message: the classes ``xh-agent`` and
    ``xh-agent-<hex of the UTF-8 display name>`` (the page's script shows the name and an avatar from it)."""
    agent = metadata.get("agent") if isinstance(metadata, dict) else None
    name = agent.get("name") if isinstance(agent, dict) else None
    if not isinstance(name, str) or not name.strip():
        return None
    return {"style": "class", "css": "xh-agent xh-agent-" + name.strip()[:32].encode("utf-8").hex()}


class WebChatOutput(SocketIOOutput):
    """Rasa's socket.io output plus the marks the web chat shows: an agent's messages carry the agent's
    name (``metadata.agent.name`` of the bot message, set by ``action_agent_message``)."""

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        css = agent_css(kwargs.get("metadata"))
        for part in text.strip().split("\n\n"):
            message: Dict[Text, Any] = {"text": part}
            if css:
                message["metadata"] = {"customCss": css}
            await self._send_message(recipient_id, message)

    async def send_text_with_buttons(self, recipient_id: Text, text: Text, buttons: Any, **kwargs: Any) -> None:
        css = agent_css(kwargs.get("metadata"))
        parts = text.strip().split("\n\n") or [text]
        messages: list = [{"text": part, "quick_replies": []} for part in parts]
        messages[-1]["quick_replies"] = [{"content_type": "text", "title": b["title"], "payload": b["payload"]}
                                         for b in buttons]
        for message in messages:
            if css:
                message["metadata"] = {"customCss": css}
            await self._send_message(recipient_id, message)


class WebChatInput(SocketIOInput):
    @classmethod
    def name(cls) -> Text:
        return "socketio"

    def __init__(self, *args: Any, key: Optional[bytes] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_persistence = True
        self._key = key or webchat_ids.key_from_env()
        self._sessions: Dict[Text, Text] = {}   # socket.io sid → session id
        self._ips: Dict[Text, Text] = {}

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        sio = socket_cluster.server(async_mode="sanic", cors_allowed_origins=[], max_http_buffer_size=64 * 1024)
        bp = _ScreenedSocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        self.sio = sio

        @bp.route("/", methods=["GET"])
        async def health(_: Request):
            return response.json({"status": "ok"})

        @sio.on("connect", namespace=self.namespace)
        async def connect(sid: Text, environ: Dict, auth: Optional[Dict] = None) -> bool:
            forwarded = str(environ.get("HTTP_X_FORWARDED_FOR") or "").split(",")[0].strip()
            self._ips[sid] = forwarded or str(environ.get("REMOTE_ADDR") or "")
            return True

        @sio.on("disconnect", namespace=self.namespace)
        async def disconnect(sid: Text) -> None:
            self._sessions.pop(sid, None)
            self._ips.pop(sid, None)

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: Text, data: Any) -> None:
            wanted = data.get("session_id") if isinstance(data, dict) else None
            if wanted is None:
                wanted = webchat_ids.issue(self._key)
            elif not webchat_ids.valid(self._key, wanted):
                logger.warning("web chat: refused a session_request for an id this server did not issue")
                await sio.disconnect(sid, namespace=self.namespace)
                return
            old = self._sessions.get(sid)
            if old and old != wanted:
                sio.leave_room(sid, old, namespace=self.namespace)
            self._sessions[sid] = wanted
            sio.enter_room(sid, wanted, namespace=self.namespace)
            await sio.emit("session_confirm", wanted, room=sid, namespace=self.namespace)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: Text, data: Any) -> None:
            session_id = self._sessions.get(sid)
            if session_id is None:
                logger.warning("web chat: message before session_request ignored")
                return
            if not isinstance(data, dict) or not isinstance(data.get("message"), str):
                return
            if data.get("session_id") not in (None, session_id):
                logger.warning("web chat: refused a message naming another session")
                return
            metadata: Dict[Text, Any] = {}
            client_meta = data.get(self.metadata_key)
            if isinstance(client_meta, dict) and isinstance(client_meta.get("url"), str):
                metadata["url"] = client_meta["url"][:500]
            if self._ips.get(sid):
                metadata["client_ip"] = self._ips[sid]
            message = UserMessage(data["message"][:MAX_MESSAGE_FIELD], WebChatOutput(sio, self.bot_message_evt),
                                  session_id, input_channel=self.name(), metadata=metadata)
            await on_new_message(message)

        return bp

    def get_output_channel(self) -> Optional[SocketIOOutput]:
        """The channel the desk's messages (``output_channel=latest``) go through."""
        if getattr(self, "sio", None) is None:
            return None
        return WebChatOutput(self.sio, self.bot_message_evt)
