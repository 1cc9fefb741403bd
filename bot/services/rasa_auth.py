"""How the web app authenticates to Rasa's HTTP API without putting RASA_TOKEN in a URL.

Rasa accepts the token only as ``?token=`` (which ends up in access logs, proxies and error messages) or a
JWT in ``Authorization: Bearer``. ``bot.services.rasa_server`` runs Rasa with RASA_TOKEN as its HS256 JWT
secret too, so the app signs a short-lived admin JWT with it and sends that in a header.
"""
from __future__ import annotations

import time
from typing import Dict, Optional

import jwt

LIFETIME_S = 300


def auth_headers(token: Optional[str], now: Optional[float] = None) -> Dict[str, str]:
    """Headers for one call to Rasa's API (empty when the API has no token)."""
    if not token:
        return {}
    now = time.time() if now is None else now
    claims = {"user": {"username": "xinghe-desk", "role": "admin"}, "iat": int(now), "exp": int(now) + LIFETIME_S}
    return {"Authorization": "Bearer " + jwt.encode(claims, token, algorithm="HS256")}
