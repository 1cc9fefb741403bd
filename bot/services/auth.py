"""Logins for the agent desk (and the editor): bcrypt passwords, server-side sessions, CSRF, roles.

- Passwords: bcrypt (``User.password_hash``); checks run in a worker thread so the event loop stays free.
- Lockout: ``MAX_FAILURES`` wrong passwords in a row lock the account for ``LOCKOUT`` (``User.failed_logins``
  and ``User.locked_until``, counted with atomic updates); a correct password while locked is refused too,
  with the same answer as a wrong password or an unknown user. Attempts per client address are throttled.
- Sessions: a random token in an HttpOnly, SameSite=Lax cookie (``Secure`` and the ``__Host-`` prefix unless
  ``insecure_cookies``); the database keeps only an HMAC of the token (table ``desk_session``), with an
  idle and an absolute expiry. Logout deletes the row; a password change deletes all of the user's rows.
- CSRF: every session has its own random token; every POST/PUT/PATCH/DELETE under a protected prefix must
  send it as header ``X-CSRF-Token`` or form field ``csrf_token``. The login form is protected the same
  way with a token bound to a short-lived pre-login cookie.
- Roles: ``agent``, ``supervisor``, ``editor``; ``require_role(...)`` on a handler answers 403 otherwise.
- One-time passwords (first-run admin, ``make user``): until the owner sets their own on the password page
  (``bot.services.account``), every other protected page redirects there and every API answers 403
  ``password_change_required``.

Everything under ``PROTECTED_PREFIXES`` (``/desk`` and ``/editor``) needs a login, except the login page.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Optional, Tuple
from urllib.parse import urlsplit

import bcrypt
from aiohttp import web
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, func, select, update

from bot.db import get_engine, session_scope
from bot.models import AuditLog, User, utcnow
from bot.services.ratelimit import Limiter

log = logging.getLogger(__name__)

ROLES = ("agent", "supervisor", "editor")
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
SESSION_IDLE = dt.timedelta(hours=8)
SESSION_MAX = dt.timedelta(hours=24)
PRELOGIN_MAX_AGE = 3600
BCRYPT_MAX_BYTES = 72
MIN_PASSWORD_CHARS = 10
PROTECTED_PREFIXES = ("/desk", "/editor")
PUBLIC_PATHS = frozenset({"/desk/login", "/editor/login"})
#: What a session with a one-time password may open (besides the login pages): the password page and logout.
PASSWORD_PATHS = {"/desk": "/desk/password", "/editor": "/editor/password"}
ONE_TIME_ALLOWED = frozenset(set(PASSWORD_PATHS.values()) | {"/desk/logout", "/editor/logout"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


metadata = MetaData()
desk_session = Table(
    "desk_session",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("username", String(64), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
)

# bcrypt runs here, not in asyncio's default pool that the desk's database calls share: a burst of logins
# must not starve the queue, the transcripts and the event streams of threads.
_BCRYPT_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bcrypt")

# A valid hash to compare against for unknown users, so a wrong username costs the same time.
_DUMMY_HASH = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(rounds=12))


# --------------------------------------------------------------------------- passwords
class PasswordError(ValueError):
    pass


def check_password_policy(password: str) -> None:
    """Raise ``PasswordError`` unless ``password`` is at least 10 characters and at most 72 UTF-8 bytes."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
        raise PasswordError(f"the password must be at most {BCRYPT_MAX_BYTES} bytes (UTF-8)")


def hash_password(password: str, rounds: int = 12) -> str:
    check_password_policy(password)
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=rounds)).decode("ascii")


def verify_password(password: str, password_hash: Optional[str]) -> bool:
    raw = (password or "").encode("utf-8")
    stored = (password_hash or "").encode("ascii") or _DUMMY_HASH
    if len(raw) > BCRYPT_MAX_BYTES or not raw:
        bcrypt.checkpw(b"x", _DUMMY_HASH)  # same cost
        return False
    try:
        return bcrypt.checkpw(raw, stored) and bool(password_hash)
    except ValueError:  # malformed hash
        return False


# --------------------------------------------------------------------------- identities
@dataclass(frozen=True)
class Identity:
    username: str
    role: str
    csrf: str
    token_hash: str
    must_change_password: bool = False  # logged in with a one-time password: only the password page opens

    def has(self, *roles: str) -> bool:
        return self.role in roles


@dataclass
class LoginResult:
    ok: bool
    reason: str = ""  # "", "invalid", "locked"
    user: Optional[Identity] = None
    token: Optional[str] = None
    locked_until: Optional[dt.datetime] = None


class Auth:
    """Sessions and logins on one database; one per application (``app[APP_KEY]``)."""

    def __init__(self, db_url: str, secret_key: bytes, *, secure_cookies: bool = True,
                 idle: dt.timedelta = SESSION_IDLE, max_age: dt.timedelta = SESSION_MAX) -> None:
        if len(secret_key) < 32:
            raise ValueError("the desk secret key must be at least 32 bytes")
        self.db_url = db_url
        self._key = secret_key
        self.secure = secure_cookies
        self.idle = idle
        self.max_age = max_age
        prefix = "__Host-" if secure_cookies else ""
        self.cookie_name = f"{prefix}xh_desk"
        self.pre_cookie_name = f"{prefix}xh_prelogin"
        self._limiter = Limiter()  # per process: throttles one desk instance; nginx limit_req for more
        metadata.create_all(get_engine(db_url))

    # -- helpers
    def _digest(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode("utf-8"), hashlib.sha256).hexdigest()

    def _set_cookie(self, response: web.StreamResponse, name: str, value: str, max_age: Optional[int]) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, secure=self.secure,
                            samesite="Lax")

    # -- login
    # Three steps so that bcrypt (~0.25 s of CPU) never holds a database connection or a thread of the
    # default pool the desk's database calls use: read the account, check the password on the bcrypt pool,
    # then record the outcome with atomic updates (parallel wrong guesses all count).
    def _load_for_login(self, username: str) -> Tuple[Optional[str], bool]:
        """(password hash or None for an unknown user, locked now)."""
        with session_scope(self.db_url) as s:
            user = s.get(User, username)
            if user is None:
                return None, False
            return user.password_hash, bool(user.locked_until and user.locked_until > utcnow())

    def _record_login(self, username: str, known: bool, was_locked: bool, password_ok: bool,
                      remote: str) -> LoginResult:
        now = utcnow()
        users = User.__table__
        with session_scope(self.db_url) as s:
            if not known:
                _audit(s, username[:64] or "-", "login", "failed", {"reason": "unknown user", "remote": remote})
                return LoginResult(False, "invalid")
            not_locked = (users.c.locked_until.is_(None)) | (users.c.locked_until <= now)
            if was_locked:
                _audit(s, username, "login", "refused_locked", {"remote": remote})
                return LoginResult(False, "invalid")  # the same answer as a wrong password or unknown user
            if not password_ok:
                s.execute(update(users).where(users.c.username == username)
                          .values(failed_logins=func.coalesce(users.c.failed_logins, 0) + 1))
                failures = s.execute(select(users.c.failed_logins).where(users.c.username == username)).scalar()
                locked = None
                if failures >= MAX_FAILURES:
                    locked = now + LOCKOUT
                    s.execute(update(users).where(users.c.username == username)
                              .values(failed_logins=0, locked_until=locked))
                    log.warning("desk login: %s locked for %s after %d failures", username, LOCKOUT, failures)
                _audit(s, username, "login", "locked" if locked else "failed", {"failures": failures, "remote": remote})
                return LoginResult(False, "invalid")
            # Right password: only if no parallel wrong guess locked the account meanwhile.
            done = s.execute(update(users).where(users.c.username == username).where(not_locked)
                             .values(failed_logins=0, locked_until=None)).rowcount
            if not done:
                _audit(s, username, "login", "refused_locked", {"remote": remote})
                return LoginResult(False, "invalid")
            role, must_change = s.execute(select(users.c.role, users.c.must_change_password)
                                          .where(users.c.username == username)).one()
            token = secrets.token_urlsafe(32)
            csrf = secrets.token_urlsafe(32)
            token_hash = self._digest("session", token)
            s.execute(desk_session.insert().values(token_hash=token_hash, username=username, csrf=csrf,
                                                   created_at=now, last_seen=now))
            s.execute(delete(desk_session).where(desk_session.c.last_seen < now - self.idle))
            _audit(s, username, "login", "ok", {"remote": remote})
            return LoginResult(True, user=Identity(username, role, csrf, token_hash, bool(must_change)), token=token)

    async def authenticate(self, request: web.Request, username: str, password: str) -> LoginResult:
        """Check a login (counting failures, locking); on success a new session exists (see ``start_session``).

        Unknown, locked and wrong-password logins get the same answer (``invalid``); more than
        ``login_ip`` attempts from one client address in the window get ``throttled``."""
        username = username.strip()[:64]
        remote = request.remote or ""
        if not self._limiter.hit("login_ip", remote):
            log.warning("desk login: throttled attempts from %s", remote)
            return LoginResult(False, "throttled")
        password_hash, locked = await asyncio.to_thread(self._load_for_login, username)
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(_BCRYPT_POOL, verify_password, password,
                                        None if locked else password_hash)
        return await asyncio.to_thread(self._record_login, username, password_hash is not None, locked,
                                       ok and password_hash is not None and not locked, remote)

    def start_session(self, response: web.StreamResponse, result: LoginResult) -> None:
        """Put the session cookie of a successful login on ``response``."""
        if result.ok and result.token:
            self._set_cookie(response, self.cookie_name, result.token, None)
            response.del_cookie(self.pre_cookie_name, path="/")

    # -- sessions
    def _load_sync(self, token: str) -> Optional[Identity]:
        now = utcnow()
        token_hash = self._digest("session", token)
        with session_scope(self.db_url) as s:
            row = s.execute(select(desk_session).where(desk_session.c.token_hash == token_hash)).first()
            if row is None:
                return None
            if row.last_seen < now - self.idle or row.created_at < now - self.max_age:
                s.execute(delete(desk_session).where(desk_session.c.token_hash == token_hash))
                return None
            user = s.get(User, row.username)
            if user is None:
                s.execute(delete(desk_session).where(desk_session.c.token_hash == token_hash))
                return None
            if (now - row.last_seen).total_seconds() > 60:
                s.execute(update(desk_session).where(desk_session.c.token_hash == token_hash).values(last_seen=now))
            return Identity(user.username, user.role, row.csrf, token_hash, bool(user.must_change_password))

    async def identify(self, request: web.Request) -> Optional[Identity]:
        if "xinghe.user" in request:
            return request["xinghe.user"]
        token = request.cookies.get(self.cookie_name)
        identity = await asyncio.to_thread(self._load_sync, token) if token and len(token) < 200 else None
        request["xinghe.user"] = identity
        return identity

    def _logout_sync(self, identity: Identity) -> None:
        with session_scope(self.db_url) as s:
            s.execute(delete(desk_session).where(desk_session.c.token_hash == identity.token_hash))
            _audit(s, identity.username, "login", "logout", None)

    async def logout(self, identity: Identity, response: web.StreamResponse) -> web.StreamResponse:
        await asyncio.to_thread(self._logout_sync, identity)
        response.del_cookie(self.cookie_name, path="/")
        return response

    # -- the owner's own password change (the page: bot.services.account)
    def _change_load(self, username: str) -> Optional[str]:
        with session_scope(self.db_url) as s:
            user = s.get(User, username)
            return user.password_hash if user is not None else None

    def _change_store(self, identity: Identity, new_hash: str, remote: str) -> int:
        users = User.__table__
        with session_scope(self.db_url) as s:
            s.execute(update(users).where(users.c.username == identity.username)
                      .values(password_hash=new_hash, must_change_password=False, failed_logins=0, locked_until=None))
            # the other sessions were opened with the old password; this one goes on
            revoked = s.execute(delete(desk_session).where(desk_session.c.username == identity.username,
                                                           desk_session.c.token_hash != identity.token_hash)).rowcount
            _audit(s, identity.username, "user", "password_changed",
                   {"one_time_replaced": identity.must_change_password, "sessions_revoked": revoked or 0,
                    "remote": remote})
            return revoked or 0

    async def change_password(self, request: web.Request, identity: Identity, current: str, new: str,
                              again: str) -> str:
        """Set the logged-in user's own password; returns ``""`` or what was wrong: ``current`` (the present
        password is not that), ``mismatch``, ``policy``, ``same`` (the new one is the present one)."""
        if new != again:
            return "mismatch"
        try:
            check_password_policy(new)
        except PasswordError:
            return "policy"
        if not self._limiter.hit("login_ip", request.remote or ""):
            return "throttled"  # the present password is checked here too: guesses count like logins
        stored = await asyncio.to_thread(self._change_load, identity.username)
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(_BCRYPT_POOL, verify_password, current, stored):
            return "current"
        if await loop.run_in_executor(_BCRYPT_POOL, verify_password, new, stored):
            return "same"
        new_hash = await loop.run_in_executor(_BCRYPT_POOL, hash_password, new)
        await asyncio.to_thread(self._change_store, identity, new_hash, request.remote or "")
        request["xinghe.user"] = Identity(identity.username, identity.role, identity.csrf, identity.token_hash, False)
        return ""

    # -- login-form CSRF (before there is a session)
    def prelogin_token(self, request: web.Request, response: web.StreamResponse) -> str:
        """The CSRF token for the login form, bound to a random pre-login cookie (set when missing)."""
        nonce = request.cookies.get(self.pre_cookie_name)
        if not nonce or len(nonce) > 100:
            nonce = secrets.token_urlsafe(24)
            self._set_cookie(response, self.pre_cookie_name, nonce, PRELOGIN_MAX_AGE)
        return self._digest("login", nonce)

    def check_prelogin(self, request: web.Request, sent: Optional[str]) -> bool:
        nonce = request.cookies.get(self.pre_cookie_name)
        return bool(nonce and sent) and hmac.compare_digest(self._digest("login", nonce), str(sent))


def revoke_sessions(session, username: str) -> int:
    """Delete every desk session of ``username`` (after a password change); returns how many."""
    metadata.create_all(session.get_bind())
    return session.execute(delete(desk_session).where(desk_session.c.username == username)).rowcount or 0


def _audit(session, actor: str, entity: str, action: str, after: Optional[dict], entity_id: str = "") -> None:
    session.add(AuditLog(actor=actor, entity=entity, entity_id=entity_id or actor, action=action, after=after))


APP_KEY = web.AppKey("xinghe.auth", Auth)  # the application's Auth


# --------------------------------------------------------------------------- middleware and decorators
def _wants_json(request: web.Request) -> bool:
    return "/api/" in request.path or "application/json" in request.headers.get("Accept", "") \
        or request.headers.get("X-Requested-With") == "fetch"


def _is_protected(request: web.Request, prefixes: Iterable[str]) -> bool:
    path = request.path
    if path in PUBLIC_PATHS:
        return False
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def _same_origin(request: web.Request) -> bool:
    """A browser's Origin (or else Referer) must name this host when it is sent at all."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if origin is None:
        return True
    if origin == "null":
        return False
    return urlsplit(origin).netloc == request.host


async def csrf_ok(request: web.Request, identity: Identity) -> bool:
    sent = request.headers.get("X-CSRF-Token")
    if not sent and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        sent = form.get("csrf_token")
    return bool(sent) and hmac.compare_digest(str(sent), identity.csrf) and _same_origin(request)


def login_redirect(request: web.Request) -> web.StreamResponse:
    if _wants_json(request):
        return web.json_response({"error": "login_required"}, status=401)
    editor = request.path == "/editor" or request.path.startswith("/editor/")
    target = request.path_qs if request.method == "GET" else ("/editor/" if editor else "/desk/")
    login = "/editor/login" if editor else "/desk/login"  # editors get a login page named for them
    return web.HTTPFound(f"{login}?{_urlencode({'next': target})}")


def password_redirect(request: web.Request) -> web.StreamResponse:
    """A session with a one-time password: to the password page of its area (APIs: 403)."""
    if _wants_json(request):
        return web.json_response({"error": "password_change_required"}, status=403)
    area = "/editor" if request.path == "/editor" or request.path.startswith("/editor/") else "/desk"
    target = request.path_qs if request.method == "GET" else area + "/"
    return web.HTTPFound(f"{PASSWORD_PATHS[area]}?{_urlencode({'next': target})}")


def _urlencode(params: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


@web.middleware
async def auth_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    auth: Auth = request.app[APP_KEY]
    prefixes = request.app.get("xinghe.protected_prefixes", PROTECTED_PREFIXES)
    if _is_protected(request, prefixes):
        identity = await auth.identify(request)
        if identity is None:
            return login_redirect(request)
        if request.method in UNSAFE_METHODS and not await csrf_ok(request, identity):
            log.warning("desk: CSRF check failed for %s %s by %s", request.method, request.path, identity.username)
            return web.json_response({"error": "csrf"}, status=403)
        if identity.must_change_password and request.path not in ONE_TIME_ALLOWED:
            return password_redirect(request)
    response = await handler(request)
    if _is_protected(request, prefixes) or request.path in PUBLIC_PATHS:
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    return response


def require_role(*roles: str):
    """Handler decorator: a logged-in user with one of ``roles`` (else 401/redirect, or 403)."""
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")

    def decorate(handler):
        @functools.wraps(handler)
        async def wrapper(request: web.Request):
            identity = await request.app[APP_KEY].identify(request)
            if identity is None:
                return login_redirect(request)
            if roles and identity.role not in roles:
                if _wants_json(request):
                    return web.json_response({"error": "forbidden", "role": identity.role}, status=403)
                raise web.HTTPForbidden(text="403: forbidden for role " + identity.role)
            return await handler(request)

        wrapper.roles = roles  # type: ignore[attr-defined]
        return wrapper

    return decorate


def current_user(request: web.Request) -> Identity:
    """The identity the middleware or ``require_role`` attached (call only in protected handlers)."""
    identity = request.get("xinghe.user")
    if identity is None:
        raise web.HTTPUnauthorized()
    return identity


def setup_auth(app: web.Application, db_url: str, secret_key: bytes, *, secure_cookies: bool = True) -> Auth:
    auth = Auth(db_url, secret_key, secure_cookies=secure_cookies)
    app[APP_KEY] = auth
    app.middlewares.append(auth_middleware)
    return auth
