"""Web chat for the cinema's own site: a full-page chat (GET /chat), an embeddable launcher
(GET /widget.js) and their static files (/static/webchat/), on top of Rasa's ``socketio`` channel.

The browser side is the vendored rasa-webchat bundle (static/webchat/vendor/, made by
tools/vendor_webchat.sh) plus static/webchat/xinghe-webchat.js, which sets the Chinese texts, keeps
the session in localStorage (the socketio channel runs with ``session_persistence: true``, so a reload
or reconnect rejoins the same conversation and the widget restores its history) and adds the labels
and keyboard handling the widget lacks.

The browser reaches Rasa's socket.io server through this application: ``/webchat/socket.io/`` is a
small reverse proxy (long-polling and WebSocket) to ``{rasa_url}/socket.io/``. So the chat page and
its socket share an origin (no CORS setting needed on Rasa), only this service has to be public (not
Rasa's HTTP API), and ``rasa_url`` may be an internal address. The proxy answers CORS itself for pages
on other sites that embed /widget.js (allowed origins: ``allowed_origins`` or the environment variable
``XINGHE_WEBCHAT_ORIGINS``, comma-separated; default ``*``). A page can instead connect straight to a
public Rasa with ``<script src=".../widget.js" data-rasa="https://rasa-host">``; Rasa then needs
``rasa run --cors <that site's origin>`` (Rasa 3.6 disables python-socketio's own CORS handling and
relies on Sanic-CORS, which only ``--cors`` configures; credentials.yml has no CORS option).

Use ``setup_webchat(app, rasa_url)`` on an aiohttp application, or run just the chat:
``python -m bot.services.webchat --port 8080 --rasa http://127.0.0.1:5005``.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import html
import logging
import os
import re
import secrets
import weakref
from pathlib import Path
from typing import Iterable, List, Optional, Tuple, Union

import aiohttp
from aiohttp import WSMsgType, web
from yarl import URL

from bot.channels import webchat_ids
from bot.services import socketio_frames
from bot.services.webchat_presence import WEBCHAT_PRESENCE, SocketPresence

logger = logging.getLogger(__name__)

TITLE = "星河国际影城 在线客服"
STATIC_DIR = Path(__file__).resolve().parent / "static" / "webchat"
VENDOR_BUNDLE = STATIC_DIR / "vendor" / "rasa-webchat.js"
SOCKET_PATH = "/webchat/socket.io/"          # the proxy's path, as the browser sees it
ORIGINS_ENV = "XINGHE_WEBCHAT_ORIGINS"
MAX_MESSAGE = 2 * 1024 * 1024                 # engine.io's default maxPayload is 1 MB

CHAT_COOKIE = "xh_chat"                       # binds the browser to its conversation (bot.channels.webchat_ids)
CHAT_COOKIE_MAX_AGE = 30 * 24 * 3600

_CONFIG = web.AppKey("xinghe_webchat_config", dict)
_SESSION = web.AppKey("xinghe_webchat_session", aiohttp.ClientSession)
_SOCKETS = web.AppKey("xinghe_webchat_sockets", weakref.WeakSet)

# Hop-by-hop and connection-specific headers that a proxy must not copy.
_SKIP_HEADERS = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                 "transfer-encoding", "upgrade", "host", "content-length", "origin", "cookie", "set-cookie",
                 "access-control-allow-origin", "access-control-allow-credentials",
                 "access-control-allow-methods", "access-control-allow-headers", "access-control-max-age",
                 "access-control-expose-headers", "vary", "date", "server"}

_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="theme-color" content="#3b2f8f">
<link rel="icon" href="data:,">
<title>{title}</title>
<link rel="stylesheet" href="{base}static/webchat/xinghe-webchat.css?v={v}">
</head>
<body class="xh-chat-body">
<div class="xh-page">
  <header class="xh-page-header">
    <h1 class="xh-page-title">{title}</h1>
    <p class="xh-page-subtitle">智能客服小星为您服务，需要时可转人工客服</p>
  </header>
  <main class="xh-page-main" id="xinghe-chat" aria-label="在线客服对话"
        data-socket-path="{socket_path}"></main>
  <noscript><p class="xh-noscript">在线客服需要启用浏览器的 JavaScript。您也可以拨打影城客服电话咨询。</p></noscript>
</div>
<script src="{base}static/webchat/vendor/rasa-webchat.js?v={v}"></script>
<script src="{base}static/webchat/xinghe-webchat.js?v={v}"></script>
<script src="{base}static/webchat/chat-page.js?v={v}"></script>
</body>
</html>
"""

# Everything the page loads comes from this service; bot messages may show images from any https host.
_PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
             "img-src 'self' https: data: blob:; media-src 'self' https:; connect-src 'self' ws: wss:; "
             "font-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'")


def _asset_version() -> str:
    """A short hash of the front-end files, appended to their URLs so browsers pick up new versions."""
    h = hashlib.sha256()
    for name in ("vendor/rasa-webchat.js", "xinghe-webchat.js", "xinghe-webchat.css", "chat-page.js",
                 "widget.js"):
        path = STATIC_DIR / name
        if path.exists():
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _parse_origins(value: Union[str, Iterable[str], None]) -> Union[str, List[str]]:
    if value is None:
        value = os.environ.get(ORIGINS_ENV, "*")
    if isinstance(value, str):
        items = [v.strip().rstrip("/") for v in value.split(",") if v.strip()]
    else:
        items = [str(v).strip().rstrip("/") for v in value if str(v).strip()]
    if not items or "*" in items:
        return "*"
    return items


def _session_key(key: Optional[bytes]) -> bytes:
    if key:
        return key
    try:
        return webchat_ids.key_from_env()
    except RuntimeError:
        logger.warning("%s is not set: web chat session ids are signed with a per-process key, which the Rasa "
                       "server's web chat channel will not accept", webchat_ids.KEY_ENV)
        return os.urandom(32)


def setup_webchat(app: web.Application, rasa_url: str, *,
                  allowed_origins: Union[str, Iterable[str], None] = None, key: Optional[bytes] = None) -> None:
    """Register the web chat on ``app``: GET /chat, GET /widget.js, /static/webchat/ and the
    socket.io proxy at /webchat/socket.io/ to ``rasa_url`` (Rasa's base URL, e.g. http://127.0.0.1:5005).
    ``key`` signs the session ids (default ``XINGHE_WEBCHAT_KEY``)."""
    if not VENDOR_BUNDLE.exists():
        raise RuntimeError(f"{VENDOR_BUNDLE} is missing: run tools/vendor_webchat.sh")
    version = _asset_version()
    widget_js = (STATIC_DIR / "widget.js").read_text(encoding="utf-8")
    app[_CONFIG] = {
        "rasa": URL(rasa_url.rstrip("/") + "/"),
        "origins": _parse_origins(allowed_origins),
        "version": version,
        "widget_js": widget_js.replace("__XINGHE_ASSET_VERSION__", version),
        "key": _session_key(key),
    }
    app[_SOCKETS] = weakref.WeakSet()
    app[WEBCHAT_PRESENCE] = SocketPresence()

    async def _open_session(app_: web.Application) -> None:
        # No total timeout: long-polling GETs are held by the server for up to its ping interval (25 s).
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=90)
        app_[_SESSION] = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)

    async def _close_session(app_: web.Application) -> None:
        session = app_.get(_SESSION)
        if session is not None:
            await session.close()

    async def _close_sockets(app_: web.Application) -> None:
        # Open browser websockets would otherwise keep the server from shutting down; the widget
        # reconnects by itself (to the same session) when the service is back.
        for ws in list(app_[_SOCKETS]):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"server shutdown")

    async def _cache_headers(request: web.Request, response: web.StreamResponse) -> None:
        # Asset URLs carry ?v=<hash of the files>, so those responses may be cached for long.
        if request.path.startswith("/static/webchat/") and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = ("public, max-age=31536000, immutable" if "v" in request.query
                                                 else "public, max-age=300")

    app.on_startup.append(_open_session)
    app.on_shutdown.append(_close_sockets)
    app.on_response_prepare.append(_cache_headers)
    app.on_cleanup.append(_close_session)

    app.router.add_get("/chat", _chat_page)
    app.router.add_get("/widget.js", _widget_js)
    app.router.add_route("*", SOCKET_PATH, _socket_proxy)
    app.router.add_static("/static/webchat/", STATIC_DIR, append_version=False)


# ---- pages ---------------------------------------------------------------------------------------

async def _chat_page(request: web.Request) -> web.Response:
    cfg = request.app[_CONFIG]
    body = _PAGE.format(title=html.escape(TITLE), base="/", v=cfg["version"],
                        socket_path=html.escape(SOCKET_PATH))
    return web.Response(text=body, content_type="text/html", charset="utf-8", headers={
        "Cache-Control": "no-cache",
        "Content-Security-Policy": _PAGE_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    })


async def _widget_js(request: web.Request) -> web.Response:
    cfg = request.app[_CONFIG]
    return web.Response(text=cfg["widget_js"], content_type="application/javascript", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=300",
                                 "Access-Control-Allow-Origin": "*",
                                 "X-Content-Type-Options": "nosniff"})


# ---- socket.io proxy -------------------------------------------------------------------------------

def _origin_allowed(request: web.Request, origin: Optional[str]) -> bool:
    allowed = request.app[_CONFIG]["origins"]
    if not origin or allowed == "*":
        return True
    origin = origin.rstrip("/")
    # the chat's own pages (compared by host only: TLS may end at a proxy in front of this service)
    return origin.split("://", 1)[-1] == request.host or origin in allowed


def _cors_headers(request: web.Request) -> dict:
    origin = request.headers.get("Origin")
    if not origin or not _origin_allowed(request, origin):
        return {}
    # The widget's XHRs carry no cookies, so the origin is echoed without Allow-Credentials.
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


# The engine.io query parameters a browser sends, and what each may look like; nothing else is forwarded.
_QUERY_RULES = {"EIO": re.compile(r"4"), "transport": re.compile(r"polling|websocket"),
                "sid": re.compile(r"[A-Za-z0-9_-]{1,64}"), "t": re.compile(r"[A-Za-z0-9_.-]{1,32}")}


def _engineio_query(request: web.Request) -> Optional[dict]:
    """The validated engine.io parameters of ``request``, or None when any is malformed or unknown."""
    query = {}
    for key, value in request.query.items():
        rule = _QUERY_RULES.get(key)
        if rule is None or key in query or not rule.fullmatch(value):
            return None
        query[key] = value
    return query if "EIO" in query and "transport" in query else None


def _upstream_url(request: web.Request, query: dict, websocket: bool = False) -> URL:
    base: URL = request.app[_CONFIG]["rasa"]
    url = base.join(URL("socket.io/"))
    if websocket:
        url = url.with_scheme("wss" if url.scheme == "https" else "ws")
    return url.with_query(query)


def _client_ip(request: web.Request) -> str:
    """The browser's address: a loopback peer is a proxy in front of this service (nginx), so its
    X-Forwarded-For names the client."""
    remote = request.remote or ""
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and remote in ("127.0.0.1", "::1"):
        return forwarded.split(",")[-1].strip()
    return remote


def _chat_binding(request: web.Request) -> Tuple[str, Optional[str]]:
    """The session id this browser may use, and a new chat cookie to set (None when it sent one).

    Browsers on this site send the HttpOnly cookie with every poll and the websocket upgrade. A page on
    another site that embeds the widget sends no cookie (its requests carry no credentials); it is bound to
    its engine.io connection instead, so its conversation lasts as long as the connection."""
    key = request.app[_CONFIG]["key"]
    cookie = request.cookies.get(CHAT_COOKIE, "")
    if 32 <= len(cookie) <= 64:
        return webchat_ids.issue(key, "cookie:" + cookie), None
    new_cookie = secrets.token_urlsafe(32)
    eio_sid = request.query.get("sid", "")
    binding = "eio:" + eio_sid if eio_sid else "ws:" + secrets.token_urlsafe(16)
    return webchat_ids.issue(key, binding), new_cookie


def _set_chat_cookie(request: web.Request, response: web.StreamResponse, cookie: Optional[str]) -> None:
    if cookie:
        secure = request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"
        response.set_cookie(CHAT_COOKIE, cookie, max_age=CHAT_COOKIE_MAX_AGE, path="/webchat/", httponly=True,
                            secure=secure, samesite="Lax")


async def _socket_proxy(request: web.Request) -> web.StreamResponse:
    if not _origin_allowed(request, request.headers.get("Origin")):
        return web.Response(status=403, text="origin not allowed")
    if request.method == "OPTIONS":
        headers = _cors_headers(request)
        headers.update({"Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                        "Access-Control-Allow-Headers": request.headers.get(
                            "Access-Control-Request-Headers", "content-type"),
                        "Access-Control-Max-Age": "600"})
        return web.Response(status=204, headers=headers)
    query = _engineio_query(request)
    if query is None:
        return web.Response(status=400, text="bad engine.io request", headers=_cors_headers(request))
    if request.headers.get("Upgrade", "").lower() == "websocket":
        if query["transport"] != "websocket":
            return web.Response(status=400, text="bad engine.io request")
        return await _proxy_websocket(request, query)
    if request.method not in ("GET", "POST"):
        return web.Response(status=405)
    if query["transport"] != "polling":
        return web.Response(status=400, text="bad engine.io request", headers=_cors_headers(request))

    session: aiohttp.ClientSession = request.app[_SESSION]
    session_id, new_cookie = _chat_binding(request)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIP_HEADERS}
    headers["X-Forwarded-For"] = _client_ip(request)
    body = None
    presence = request.app[WEBCHAT_PRESENCE]
    if request.method == "GET":
        presence.polled(session_id)  # a long-poll: the page is open (marked again when it returns)
    if request.method == "POST":
        try:
            text = (await request.read()).decode("utf-8")
        except UnicodeDecodeError:
            return web.Response(status=400, text="bad payload", headers=_cors_headers(request))
        rewritten = socketio_frames.rewrite_payload(text, session_id)
        if rewritten is None:   # nothing Rasa should see: answer as engine.io does to an accepted POST
            response = web.Response(text="ok", headers={**_cors_headers(request), "Cache-Control": "no-store"})
            _set_chat_cookie(request, response, new_cookie)
            return response
        body = rewritten.encode("utf-8")
    try:
        async with session.request(request.method, _upstream_url(request, query), data=body, headers=headers,
                                   allow_redirects=False) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _SKIP_HEADERS}
            status = upstream.status
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        logger.warning("web chat: Rasa socket.io at %s unreachable: %s", request.app[_CONFIG]["rasa"], exc)
        return web.Response(status=502, text="chat server unreachable", headers=_cors_headers(request))
    if request.method == "GET" and status == 200:
        presence.polled(session_id)
    out.update(_cors_headers(request))
    out["Cache-Control"] = "no-store"
    response = web.Response(status=status, body=payload, headers=out)
    _set_chat_cookie(request, response, new_cookie)
    return response


async def _proxy_websocket(request: web.Request, query: dict) -> web.StreamResponse:
    session: aiohttp.ClientSession = request.app[_SESSION]
    session_id, _ = _chat_binding(request)
    try:
        upstream = await session.ws_connect(_upstream_url(request, query, websocket=True), max_msg_size=MAX_MESSAGE,
                                            headers={"X-Forwarded-For": _client_ip(request)})
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        logger.warning("web chat: Rasa socket.io websocket unreachable: %s", exc)
        return web.Response(status=502, text="chat server unreachable")

    client = web.WebSocketResponse(max_msg_size=MAX_MESSAGE)
    await client.prepare(request)
    request.app[_SOCKETS].add(client)
    presence = request.app[WEBCHAT_PRESENCE]
    presence.opened(session_id)

    async def pump(src, dst, rewrite: bool) -> None:
        async for msg in src:
            if msg.type == WSMsgType.TEXT:
                data = socketio_frames.rewrite_packet(msg.data, session_id, websocket=True) if rewrite else msg.data
                if data is not None:
                    await dst.send_str(data)
            elif msg.type == WSMsgType.BINARY:
                if not rewrite:
                    await dst.send_bytes(msg.data)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break

    tasks = [asyncio.ensure_future(pump(client, upstream, True)),
             asyncio.ensure_future(pump(upstream, client, False))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await upstream.close()
        await client.close()
        presence.closed(session_id)
    return client


# ---- standalone server -----------------------------------------------------------------------------

def create_app(rasa_url: str, *, allowed_origins: Union[str, Iterable[str], None] = None) -> web.Application:
    """An application that serves only the web chat (the agent desk's app factory adds it to its own)."""
    app = web.Application()
    setup_webchat(app, rasa_url, allowed_origins=allowed_origins)

    async def index(_: web.Request) -> web.Response:
        raise web.HTTPFound("/chat")

    app.router.add_get("/", index)
    return app


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=f"{TITLE}: serve the web chat page and widget")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--rasa", default=os.environ.get("RASA_URL", "http://127.0.0.1:5005"),
                        help="Rasa server base URL (its socketio channel), default %(default)s")
    parser.add_argument("--origins", default=None,
                        help=f"comma-separated origins allowed to embed the widget (default ${ORIGINS_ENV} or *)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"==> web chat on http://{args.host}:{args.port}/chat (Rasa: {args.rasa})", flush=True)
    web.run_app(create_app(args.rasa, allowed_origins=args.origins), host=args.host, port=args.port,
                print=None)


if __name__ == "__main__":
    main()
