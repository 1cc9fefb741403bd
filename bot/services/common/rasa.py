"""One client for Rasa's HTTP API (tracker, appended events, executed actions), shared by the web apps.

``execute`` runs with ``output_channel=latest``: Rasa sends the action's messages through the patron's
channel (the socket.io room of the session, or WeChat's customer-service message API).
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, List, Optional
from urllib.parse import quote

import aiohttp

from bot.services.rasa_auth import auth_headers



class RasaError(Exception):
    pass


class RasaClient:
    def __init__(self, base_url: str, token: Optional[str]) -> None:
        self.base = base_url.rstrip("/")
        self.token = token
        self._session: Optional[aiohttp.ClientSession] = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _url(self, sender: str, tail: str) -> str:
        return f"{self.base}/conversations/{quote(sender, safe='')}/{tail}"

    def _params(self, **extra: str) -> Dict[str, str]:
        return dict(extra)

    async def _call(self, method: str, url: str, params: Dict[str, str], body: Any = None) -> Any:
        try:
            async with self._http().request(method, url, params=params, json=body,
                                            headers={**auth_headers(self.token), "Accept": "application/json"}) as r:
                text = await r.text()
                if r.status >= 400:
                    raise RasaError(f"{method} {url.split('?')[0]}: HTTP {r.status} {text[:300]}")
                return json.loads(text) if text else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise RasaError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc

    async def tracker(self, sender: str) -> Dict[str, Any]:
        return await self._call("GET", self._url(sender, "tracker"), self._params(include_events="AFTER_RESTART"))

    async def append(self, sender: str, events: List[Dict[str, Any]]) -> Dict[str, Any]:
        return await self._call("POST", self._url(sender, "tracker/events"),
                                self._params(include_events="NONE"), events)

    async def execute(self, sender: str, action: str) -> Dict[str, Any]:
        return await self._call("POST", self._url(sender, "execute"),
                                self._params(output_channel="latest", include_events="NONE"), {"name": action})

    async def domain(self) -> Dict[str, Any]:
        """The loaded model's domain (forms and their required slots, responses, actions)."""
        return await self._call("GET", f"{self.base}/domain", {})
