"""How patrons see desk users: display names (「人工客服 小李」). Functions take the caller's session."""
from __future__ import annotations

from typing import Dict, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import StaffProfile
from bot.tickets._common import update_or_insert

MAX_NAME = 16


def display_name(session: Session, username: str | None) -> str:
    """The name patrons see; the username until one is set."""
    if not username:
        return ""
    profile = session.get(StaffProfile, username)
    return profile.display_name if profile is not None else username


def display_names(session: Session, usernames: Iterable[str | None]) -> Dict[str, str]:
    wanted = {u for u in usernames if u}
    if not wanted:
        return {}
    found = {p.username: p.display_name for p in
             session.execute(select(StaffProfile).where(StaffProfile.username.in_(wanted))).scalars()}
    return {u: found.get(u, u) for u in wanted}


def set_display_name(session: Session, username: str, name: str) -> str:
    """Set the display name (trimmed, at most ``MAX_NAME`` characters); ``ValueError`` when empty."""
    name = " ".join(str(name or "").split())[:MAX_NAME]
    if not name:
        raise ValueError("display name is empty")
    update_or_insert(session, StaffProfile, {"username": username}, {"display_name": name}, {"display_name": name})
    return name
