"""One HTTP client session per endpoint and event loop, so action calls reuse their connections.

Rasa 3.6's ``EndpointConfig.request`` opens a new ``aiohttp.ClientSession`` — a new TCP connection — for
every call, and a turn makes one or two calls to the action server; connection set-up was 2-3 % of the Rasa
server's main thread at 20 senders, and the action server accepts a connection per call too. Here each
endpoint keeps a session per event loop with Rasa's headers, auth and timeout, and ``request`` is Rasa
3.6.21's body otherwise (headers, parameters, status check, JSON answer). Differences, all on purpose:

- idle connections are dropped after ``KEEPALIVE_S`` (2 s), before the action server's Sanic drops them
  (``KEEP_ALIVE_TIMEOUT`` 5 s), so a request is not sent on a connection the server is closing;
- no cookies are kept between calls (``DummyCookieJar``), as with a fresh session per call;
- no limit on concurrent connections (a fresh session per call had none in effect either).
"""
from __future__ import annotations

import asyncio
import os
import ssl
import weakref
from typing import Any, Dict, Optional, Text, Tuple

KEEPALIVE_S = 2.0

# loop → id(endpoint) → (the endpoint, weakly; its session). EndpointConfig defines __eq__ without __hash__.
_sessions: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[int, Tuple[Any, Any]]]" = \
    weakref.WeakKeyDictionary()


def shared_session(endpoint: Any) -> Any:
    """The endpoint's session on the running loop (made on first use, again if closed)."""
    import aiohttp
    from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT

    per_loop = _sessions.setdefault(asyncio.get_running_loop(), {})
    entry = per_loop.get(id(endpoint))
    if entry is None or entry[0]() is not endpoint or entry[1].closed:
        auth = (aiohttp.BasicAuth(endpoint.basic_auth["username"], endpoint.basic_auth["password"])
                if endpoint.basic_auth else None)
        session = aiohttp.ClientSession(
            headers=endpoint.headers, auth=auth, timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_S),
            cookie_jar=aiohttp.DummyCookieJar())
        entry = (weakref.ref(endpoint), session)
        per_loop[id(endpoint)] = entry
    return entry[1]


def install() -> bool:
    """Patch ``EndpointConfig.request`` of Rasa 3.6.21 (whose body this copies); False for another version."""
    import rasa
    from rasa.utils.endpoints import EndpointConfig

    if rasa.__version__ != "3.6.21":
        return False
    if getattr(EndpointConfig.request, "_xinghe_keepalive", False):
        return True
    from aiohttp.client_exceptions import ContentTypeError
    from rasa.shared.exceptions import FileNotFoundException
    from rasa.utils.endpoints import ClientResponseError, concat_url

    async def request(self: Any, method: Text = "post", subpath: Optional[Text] = None,
                      content_type: Optional[Text] = "application/json", compress: bool = False,
                      **kwargs: Any) -> Optional[Any]:
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if "headers" in kwargs:
            headers.update(kwargs["headers"])
            del kwargs["headers"]
        if self.headers:
            headers.update(self.headers)
        url = concat_url(self.url, subpath)
        sslcontext = None
        if self.cafile:
            try:
                sslcontext = ssl.create_default_context(cafile=self.cafile)
            except FileNotFoundError as e:
                raise FileNotFoundException(
                    f"Failed to find certificate file, '{os.path.abspath(self.cafile)}' does not exist.") from e
        session = shared_session(self)
        async with session.request(method, url, headers=headers, params=self.combine_parameters(kwargs),
                                   compress=compress, ssl=sslcontext, **kwargs) as response:
            if response.status >= 400:
                raise ClientResponseError(response.status, response.reason, await response.content.read())
            try:
                return await response.json()
            except ContentTypeError:
                return None

    request._xinghe_keepalive = True  # type: ignore[attr-defined]
    EndpointConfig.request = request
    return True
