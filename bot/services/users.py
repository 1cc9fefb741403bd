"""Desk and editor accounts.

    python -m bot.services.users create NAME --role agent|supervisor|editor [--password-stdin | --generate]
    python -m bot.services.users ensure-first-admin   # on an empty database: a supervisor with a printed password
    python -m bot.services.users list
    python -m bot.services.users set-password NAME [--password-stdin]
    python -m bot.services.users unlock NAME
    python -m bot.services.users delete NAME

Passwords are read from a prompt (twice), with ``--password-stdin`` from the first line of standard
input, or with ``--generate`` made up and printed once (``make user NAME=… ROLE=…`` does that); they are
stored as bcrypt hashes only. ``ensure-first-admin`` is what ``make run`` calls: on a database without any
account it creates the supervisor ``admin`` and prints its password once, so the first run can log in.
A printed password (``--generate``, the first admin) is one-time: its owner sets their own at the first login.
Uses ``KNOWLEDGE_DB_URL`` (or ``--db``).
"""
from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import database_url, session_scope
from bot.models import AuditLog, User, utcnow
from bot.services.auth import ROLES, PasswordError, check_password_policy, hash_password, revoke_sessions


class UserError(ValueError):
    pass


def create_user(session: Session, username: str, role: str, password: str, *, rounds: int = 12,
                actor: str = "cli", one_time: bool = False) -> User:
    """A new account; ``one_time``: the password was made up and shown once, so its owner must set their own
    at the first login (the desk and the editor open only the password page until then)."""
    username = (username or "").strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise UserError("the user name must be 1-64 characters without spaces")
    if role not in ROLES:
        raise UserError(f"the role must be one of {', '.join(ROLES)}")
    if session.get(User, username) is not None:
        raise UserError(f"user {username!r} exists already")
    user = User(username=username, role=role, password_hash=hash_password(password, rounds), failed_logins=0,
                must_change_password=one_time)
    session.add(user)
    session.add(AuditLog(actor=actor, entity="user", entity_id=username, action="created",
                         after={"role": role, "one_time_password": one_time}))
    session.flush()
    return user


def set_password(session: Session, username: str, password: str, *, rounds: int = 12, actor: str = "cli",
                 one_time: bool = False) -> None:
    user = session.get(User, username)
    if user is None:
        raise UserError(f"no user {username!r}")
    user.password_hash = hash_password(password, rounds)
    user.failed_logins = 0
    user.locked_until = None
    user.must_change_password = one_time
    revoked = revoke_sessions(session, username)
    session.add(AuditLog(actor=actor, entity="user", entity_id=username, action="password_set",
                         after={"sessions_revoked": revoked}))


def unlock(session: Session, username: str, actor: str = "cli") -> None:
    user = session.get(User, username)
    if user is None:
        raise UserError(f"no user {username!r}")
    user.failed_logins = 0
    user.locked_until = None
    session.add(AuditLog(actor=actor, entity="user", entity_id=username, action="unlocked"))


def delete_user(session: Session, username: str, actor: str = "cli") -> None:
    user = session.get(User, username)
    if user is None:
        raise UserError(f"no user {username!r}")
    revoke_sessions(session, username)
    session.delete(user)
    session.add(AuditLog(actor=actor, entity="user", entity_id=username, action="deleted"))


FIRST_ADMIN = "admin"


def generated_password() -> str:
    """A password that passes the policy, for an account whose owner sets their own later."""
    return secrets.token_urlsafe(12)


def ensure_first_admin(session: Session, name: str = FIRST_ADMIN, rounds: int = 12) -> Optional[str]:
    """Create supervisor ``name`` when there is no account at all; its password (to show once), else None."""
    if session.execute(select(User.username).limit(1)).first() is not None:
        return None
    password = generated_password()
    create_user(session, name, "supervisor", password, rounds=rounds, actor="first-run", one_time=True)
    return password


def list_users(session: Session) -> List[User]:
    return list(session.execute(select(User).order_by(User.role, User.username)).scalars())


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the passwords differ")
    return first


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.services.users", description="desk and editor accounts")
    parser.add_argument("--db", default=None, help="SQLAlchemy URL (default: KNOWLEDGE_DB_URL)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("create", help="create a user")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--generate", action="store_true", help="make up a password and print it once")
    p = sub.add_parser("ensure-first-admin", help="on a database without accounts, create supervisor admin")
    p.add_argument("--login-url", default="", help="where to log in, for the message")
    sub.add_parser("list", help="list the users")
    p = sub.add_parser("set-password", help="set a new password (signs the user out everywhere)")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true")
    p = sub.add_parser("unlock", help="lift a lockout after failed logins")
    p.add_argument("name")
    p = sub.add_parser("delete", help="delete a user")
    p.add_argument("name")
    args = parser.parse_args(argv)
    url = args.db or database_url()
    try:
        if args.command == "list":
            now = utcnow()
            with session_scope(url) as s:
                for u in list_users(s):
                    locked = " locked until %s UTC" % u.locked_until.strftime("%Y-%m-%d %H:%M") \
                        if u.locked_until and u.locked_until > now else ""
                    print(f"{u.username}\t{u.role}{locked}")
            return 0
        if args.command == "ensure-first-admin":
            with session_scope(url) as s:
                password = ensure_first_admin(s)
            if password is not None:
                where = f"在 {args.login_url} " if args.login_url else ""
                print(f"""==> 首次运行：已创建主管账号 {FIRST_ADMIN}
    一次性密码：{password}
    （只显示这一次，不会保存或写进日志。请{where}登录，首次登录时须设置自己的新密码；
     其他账号：make user NAME=小李 ROLE=agent|supervisor|editor）""", flush=True)
            return 0
        if args.command == "create" and args.generate:
            password = generated_password()
            with session_scope(url) as s:
                create_user(s, args.name, args.role, password, one_time=True)
            print(f"created {args.name} ({args.role}); password (shown once): {password}\n"
                  "one-time: the desk and the editor ask for a new password at the first login")
            return 0
        if args.command in ("create", "set-password"):
            password = _read_password(args.password_stdin)
            check_password_policy(password)
            with session_scope(url) as s:
                if args.command == "create":
                    create_user(s, args.name, args.role, password)
                    print(f"created {args.name} ({args.role})")
                else:
                    set_password(s, args.name, password)
                    print(f"password of {args.name} changed; their sessions were signed out")
            return 0
        with session_scope(url) as s:
            if args.command == "unlock":
                unlock(s, args.name)
                print(f"unlocked {args.name}")
            else:
                delete_user(s, args.name)
                print(f"deleted {args.name}")
        return 0
    except (UserError, PasswordError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
