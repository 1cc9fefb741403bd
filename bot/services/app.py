"""The project's web application (aiohttp): agent desk, patron web chat and knowledge editor.

    python -m bot.services.app --port 8080 [--host 127.0.0.1]

Settings come from the environment (``Settings.from_env``):

| variable | default | meaning |
|---|---|---|
| ``KNOWLEDGE_DB_URL`` | ``sqlite:///var/xinghe.db`` | database of users, tickets, handoff state |
| ``RASA_URL`` | ``http://127.0.0.1:5005`` | Rasa server (HTTP API enabled) |
| ``RASA_TOKEN`` | unset | Rasa HTTP API token |
| ``DESK_SECRET_KEY`` | generated per process | 32+ bytes; keys the session and CSRF digests |
| ``DESK_INSECURE_COOKIES`` | unset | ``1``: cookies without ``Secure`` (plain-http localhost only) |
| ``REDIS_URL`` or ``REDIS_HOST``, ``REDIS_PORT``, ``REDIS_DB``; ``REDIS_PASSWORD`` | ``127.0.0.1``, ``6379``, ``0`` | desk notifications, tracker store for stats (``bot.redis_conn``) |
| ``HANDOFF_TIMEOUT_S`` | ``300`` | a queued patron nobody claims goes back to the bot after this |
| ``SATISFACTION_IDLE_S`` | unset | seconds of patron silence after an answer before the rating is asked (unset: ``complaints.yml`` ``satisfaction.idle_minutes``) |
| ``TRACKER_STORE`` | ``auto`` | where the statistics read conversations: ``auto``, ``redis``, ``sql``, ``memory`` |
| ``DESK_HOST`` | ``127.0.0.1`` | listen address when ``--host`` is not given |
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Tuple

import jinja2
from aiohttp import web

from bot.db import ROOT, database_url
from bot.privacy import install_masking_filter
from bot.redis_conn import RedisSettings
from bot.redis_conn import settings as redis_settings
from bot.services.account import setup_account
from bot.services.auth import setup_auth
from bot.services.common.web import SETTINGS, TEMPLATES, error_pages
from bot.services.desk import setup_desk

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent


def _env_bool(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    db_url: str = field(default_factory=database_url)
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: Optional[str] = None
    secret_key: bytes = b""
    secure_cookies: bool = True
    redis: RedisSettings = field(default_factory=RedisSettings)
    redis_channel: str = "xinghe:desk"
    redis_retry_s: float = 30.0
    handoff_timeout_s: float = 300.0
    expire_every_s: float = 15.0
    notice_every_s: float = 5.0     # how often ticket numbers owed after an outage are told (desk.notices)
    satisfaction_idle_s: Optional[float] = None  # None: complaints.yml satisfaction.idle_minutes
    inactivity_every_s: float = 30.0
    inactivity_channels: Tuple[str, ...] = ("socketio", "wechat")
    heartbeat_s: float = 15.0
    poll_s: float = 2.0
    ping_s: float = 15.0
    sse_retry_ms: int = 2000
    tracker_store: str = "auto"
    tracker_prefix: str = "xinghe"
    tracker_db_url: Optional[str] = None
    stats_max_conversations: int = 20000
    stats_max_known: int = 500
    stats_cache_s: float = 60.0
    static_dir: Path = HERE / "static" / "desk"
    templates_dir: Path = HERE / "templates"
    background_tasks: bool = True

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        env = os.environ
        key = env.get("DESK_SECRET_KEY", "").encode("utf-8")
        if not key:
            key = secrets.token_bytes(32)
            log.warning("DESK_SECRET_KEY is not set: generated one for this process; desk sessions end when it "
                        "restarts and several processes cannot share sessions")
        elif len(key) < 32:
            raise SystemExit("DESK_SECRET_KEY must be at least 32 bytes")
        store = env.get("TRACKER_STORE", "auto")
        values = dict(
            db_url=database_url(),
            rasa_url=env.get("RASA_URL", "http://127.0.0.1:5005"),
            rasa_token=env.get("RASA_TOKEN") or None,
            secret_key=key,
            secure_cookies=not _env_bool("DESK_INSECURE_COOKIES"),
            redis=redis_settings(env),
            handoff_timeout_s=float(env.get("HANDOFF_TIMEOUT_S", "300")),
            satisfaction_idle_s=float(env["SATISFACTION_IDLE_S"]) if env.get("SATISFACTION_IDLE_S") else None,
            tracker_store=store,
            tracker_db_url=env.get("TRACKER_DB_URL") or f"sqlite:///{ROOT / 'var' / 'tracker.db'}",
        )
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)


def _templates(settings: Settings) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(settings.templates_dir)),
                             autoescape=jinja2.select_autoescape(["html", "xml"]), undefined=jinja2.StrictUndefined)
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": True}
    return env


def create_app(settings: Optional[Settings] = None) -> web.Application:
    """The application: the desk always; the web chat and the editor when their modules are present."""
    settings = settings or Settings.from_env()
    if not settings.secret_key:
        settings = settings.with_(secret_key=secrets.token_bytes(32))
    app = web.Application(client_max_size=1024 ** 2)
    app[SETTINGS] = settings
    app[TEMPLATES] = _templates(settings)
    # The editor still reads the string keys; they go once it takes the typed ones above.
    app["xinghe.settings"] = settings
    app["xinghe.templates"] = app[TEMPLATES]
    app.middlewares.append(error_pages())
    setup_auth(app, settings.db_url, settings.secret_key, secure_cookies=settings.secure_cookies)
    setup_account(app)
    setup_desk(app, settings)
    setup_webchat = _optional("bot.services.webchat", "setup_webchat")
    if setup_webchat is not None:
        _guarded("web chat", setup_webchat, app, settings.rasa_url)
    setup_editor = _optional("bot.services.editor", "setup_editor")
    if setup_editor is not None:
        _guarded("knowledge editor", setup_editor, app)
        setup_review = _optional("bot.services.review", "setup_review")
        if setup_review is not None:
            _guarded("review queue", setup_review, app)
    if not any(getattr(r, "canonical", None) == "/" for r in app.router.resources()):
        app.router.add_get("/", _index)
    app.router.add_get("/healthz", _healthz)
    return app


def _optional(module: str, name: str):
    """``module.name`` when the module exists (it is written by another part of the project), else None."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        log.info("%s is not installed; skipping it", module)
        return None
    return getattr(mod, name)


def _guarded(what: str, setup, *args) -> None:
    """Set up an optional part; if it fails the error is logged and the rest (the desk) still serves."""
    try:
        setup(*args)
    except Exception:
        log.exception("the %s could not be set up; serving without it", what)


async def _healthz(request: web.Request) -> web.StreamResponse:
    """For the supervisor's health watcher and a load balancer: the process serves requests (no database
    call: a database outage must not get the app restarted)."""
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def _index(request: web.Request) -> web.StreamResponse:
    """The front page: where the web chat, the desk and the editor are (public; nothing about accounts)."""
    paths = {getattr(r, "canonical", "") for r in request.app.router.resources()}
    html = request.app["xinghe.templates"].get_template("home.html").render(
        webchat="/chat" in paths, editor="/editor/" in paths)
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.services.app", description="agent desk and web chat")
    parser.add_argument("--host", default=os.environ.get("DESK_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DESK_PORT", "8080")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_masking_filter()  # phones, order ids and OpenIDs, as in the Rasa and action servers' logs
    app = create_app(Settings.from_env())
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=lambda *_: None)


if __name__ == "__main__":
    main()
