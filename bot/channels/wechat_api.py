"""Client for the WeChat Official Account server API (公众号接口).

Used by the WeChat input channel (to deliver replies that missed the 5-second
passive-reply window) and usable standalone, e.g. by the agent desk::

    client = WeChatApiClient(appid="wx...", secret="...")
    await client.send_text(openid, "您好，人工客服为您服务")
    await client.close()

Only what the bot needs is implemented: the access token (cached, refreshed
five minutes before it expires, refreshed once more when WeChat says it is
invalid) and text customer-service messages (客服消息).  Every failure is
raised as :class:`WeChatApiError` and also remembered in
:attr:`WeChatApiClient.failures`.
"""

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Text

import aiohttp

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.weixin.qq.com"

# WeChat limits a text message (passive reply or customer-service message) to
# 2048 bytes of UTF-8.
MAX_TEXT_BYTES = 2048

# errcodes that mean "this access token is not (or no longer) valid".
TOKEN_INVALID_ERRCODES = frozenset({40001, 40014, 42001})


class WeChatApiError(Exception):
    """A call to the WeChat API failed.

    ``errcode``/``errmsg`` are WeChat's own when it answered with an error;
    ``errcode`` is ``None`` for transport failures (connection refused,
    timeout, non-JSON answer, HTTP error status).
    """

    def __init__(
        self,
        message: Text,
        *,
        errcode: Optional[int] = None,
        errmsg: Optional[Text] = None,
        endpoint: Optional[Text] = None,
    ) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.errmsg = errmsg
        self.endpoint = endpoint


def mask_openid(openid: Optional[Text]) -> Text:
    """Short, non-identifying form of an OpenID for logs."""
    if not openid:
        return "-"
    openid = str(openid)
    if len(openid) <= 8:
        return openid[:2] + "***"
    return f"{openid[:4]}***{openid[-4:]}"


def split_utf8(text: Text, limit: int = MAX_TEXT_BYTES) -> List[Text]:
    """Splits ``text`` into chunks of at most ``limit`` UTF-8 bytes.

    Splits on line boundaries where possible and on character boundaries
    otherwise, so no multi-byte character is ever cut in half. Empty chunks
    are dropped.
    """
    if limit < 4:
        raise ValueError("limit must allow at least one character")
    text = text or ""
    if len(text.encode("utf-8")) <= limit:
        return [text] if text.strip() else []

    chunks: List[Text] = []
    current = ""
    current_bytes = 0

    def flush() -> None:
        nonlocal current, current_bytes
        if current.strip():
            chunks.append(current.strip("\n"))
        current = ""
        current_bytes = 0

    for line in text.splitlines(keepends=True):
        line_bytes = len(line.encode("utf-8"))
        if current_bytes + line_bytes <= limit:
            current += line
            current_bytes += line_bytes
            continue
        flush()
        if line_bytes <= limit:
            current, current_bytes = line, line_bytes
            continue
        # A single line longer than the limit: cut on character boundaries.
        for char in line:
            char_bytes = len(char.encode("utf-8"))
            if current_bytes + char_bytes > limit:
                flush()
            current += char
            current_bytes += char_bytes
    flush()
    return chunks


class WeChatApiClient:
    """Async client for the parts of the WeChat API the bot uses."""

    def __init__(
        self,
        appid: Text,
        secret: Text,
        api_base: Text = DEFAULT_API_BASE,
        *,
        timeout: float = 10.0,
        refresh_margin: float = 300.0,
        max_failures_kept: int = 100,
        clock: Callable[[], float] = time.monotonic,
        token_store: Optional[Any] = None,
    ) -> None:
        """``token_store`` (``bot.channels.wechat_shared.SharedToken``) shares the token between instances."""
        self.appid = appid
        self.token_store = token_store
        self.secret = secret
        self.api_base = (api_base or DEFAULT_API_BASE).rstrip("/")
        self.timeout = timeout
        self.refresh_margin = refresh_margin
        self._clock = clock
        self._token: Optional[Text] = None
        self._token_expires_at = 0.0
        self._token_lock: Optional[asyncio.Lock] = None
        self._lock_loop: Optional[asyncio.AbstractEventLoop] = None
        self._session: Optional[aiohttp.ClientSession] = None
        self._session_loop: Optional[asyncio.AbstractEventLoop] = None
        self.tokens_fetched = 0
        # Most recent failures, newest last: (unix time, exception).
        self.failures: Deque[Dict[Text, Any]] = deque(maxlen=max_failures_kept)

    # -- plumbing -----------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if (
            self._session is None
            or self._session.closed
            or self._session_loop is not loop
        ):
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
            self._session_loop = loop
        return self._session

    def _get_token_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._token_lock is None or self._lock_loop is not loop:
            self._token_lock = asyncio.Lock()
            self._lock_loop = loop
        return self._token_lock

    async def close(self) -> None:
        """Closes the HTTP session (if one was opened in the running loop)."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            try:
                await session.close()
            except RuntimeError:  # session of a loop that is gone
                pass

    def _record(self, error: WeChatApiError) -> WeChatApiError:
        self.failures.append(
            {
                "time": time.time(),
                "endpoint": error.endpoint,
                "errcode": error.errcode,
                "errmsg": error.errmsg,
                "error": str(error),
            }
        )
        return error

    async def _request(
        self,
        method: Text,
        path: Text,
        *,
        params: Dict[Text, Any],
        json_body: Optional[Dict[Text, Any]] = None,
    ) -> Dict[Text, Any]:
        url = f"{self.api_base}{path}"
        body = None
        headers = None
        if json_body is not None:
            # WeChat shows \uXXXX escapes literally: send real UTF-8.
            body = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            headers = {"Content-Type": "application/json; charset=utf-8"}
        try:
            session = self._get_session()
            async with session.request(
                method, url, params=params, data=body, headers=headers
            ) as response:
                if response.status >= 400:
                    raise WeChatApiError(
                        f"{path}: HTTP {response.status}", endpoint=path
                    )
                # WeChat sometimes answers JSON as text/plain.
                data = await response.json(content_type=None)
        except WeChatApiError as e:
            raise self._record(e)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            raise self._record(
                WeChatApiError(
                    f"{path}: {type(e).__name__}: {e}", endpoint=path
                )
            ) from e
        if not isinstance(data, dict):
            raise self._record(
                WeChatApiError(f"{path}: unexpected answer", endpoint=path)
            )
        return data

    # -- access token -------------------------------------------------------

    def invalidate_token(self) -> None:
        """Forgets the cached access token (the next call fetches a new one)."""
        self._token = None
        self._token_expires_at = 0.0

    async def get_access_token(self, force_refresh: bool = False, refused: Optional[Text] = None) -> Text:
        """Returns a valid access token, fetching a new one when needed (``force_refresh``: the current one
        was refused; ``refused``: which one). With a shared store, the token another instance fetched is used,
        and only one instance at a time fetches."""
        stale = refused if refused is not None else self._token
        if not force_refresh and self._token and self._clock() < self._token_expires_at:
            return self._token
        async with self._get_token_lock():
            # Another caller may have refreshed it while we waited.
            if self._token and self._clock() < self._token_expires_at:
                if not force_refresh or self._token != stale:
                    return self._token
            store = self.token_store
            if store is None or not store.available:
                return await self._fetch_token()
            deadline = self._clock() + 15.0
            while True:
                shared = store.get()
                if shared is not None and (not force_refresh or shared[0] != stale):
                    return self._adopt(*shared)
                if store.try_lock():
                    break
                if self._clock() > deadline:   # the holder is stuck: fetch ourselves rather than fail
                    break
                await asyncio.sleep(0.1)
            try:
                shared = store.get()  # fetched by the previous holder just before we locked?
                if shared is not None and (not force_refresh or shared[0] != stale):
                    return self._adopt(*shared)
                token = await self._fetch_token()
                store.put(token, self._token_expires_at - self._clock())
                return token
            finally:
                store.unlock()

    def _adopt(self, token: Text, valid_s: float) -> Text:
        self._token = token
        self._token_expires_at = self._clock() + valid_s
        return token

    async def _fetch_token(self) -> Text:
        data = await self._request(
            "GET",
            "/cgi-bin/token",
            params={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret,
            },
        )
        token = data.get("access_token")
        if not token:
            raise self._record(
                WeChatApiError(
                    "could not get an access token: "
                    f"{data.get('errcode')} {data.get('errmsg')}",
                    errcode=data.get("errcode"),
                    errmsg=data.get("errmsg"),
                    endpoint="/cgi-bin/token",
                )
            )
        expires_in = float(data.get("expires_in") or 7200)
        # Refresh `refresh_margin` seconds early; for (test) tokens that
        # live shorter than the margin, use half their life instead.
        margin = self.refresh_margin
        if margin >= expires_in:
            margin = expires_in / 2
        self._token = str(token)
        self._token_expires_at = self._clock() + expires_in - margin
        self.tokens_fetched += 1
        logger.debug("Fetched a WeChat access token (expires_in=%s).", expires_in)
        return self._token

    async def call(
        self,
        method: Text,
        path: Text,
        json_body: Optional[Dict[Text, Any]] = None,
        params: Optional[Dict[Text, Any]] = None,
    ) -> Dict[Text, Any]:
        """Calls an access-token-protected endpoint and returns its JSON.

        Refreshes the token and retries once when WeChat reports it invalid or
        expired (40001/40014/42001). Raises :class:`WeChatApiError` for any
        non-zero errcode.
        """
        data: Dict[Text, Any] = {}
        token: Optional[Text] = None
        for attempt in range(2):
            token = await self.get_access_token(force_refresh=attempt > 0, refused=token)
            query = dict(params or {})
            query["access_token"] = token
            data = await self._request(method, path, params=query, json_body=json_body)
            errcode = int(data.get("errcode") or 0)
            if errcode in TOKEN_INVALID_ERRCODES and attempt == 0:
                logger.info(
                    "WeChat rejected the access token (errcode %s); refreshing.",
                    errcode,
                )
                if self._token == token:
                    self.invalidate_token()
                continue
            break
        errcode = int(data.get("errcode") or 0)
        if errcode != 0:
            raise self._record(
                WeChatApiError(
                    f"{path}: errcode {errcode} {data.get('errmsg', '')}".strip(),
                    errcode=errcode,
                    errmsg=data.get("errmsg"),
                    endpoint=path,
                )
            )
        return data

    # -- messages -----------------------------------------------------------

    async def send_text(self, openid: Text, text: Text) -> int:
        """Sends ``text`` to ``openid`` as customer-service message(s).

        Texts longer than 2048 UTF-8 bytes are sent as several messages, split
        on line (or character) boundaries, in order. Returns the number of
        messages sent. Raises :class:`WeChatApiError` on the first failure.
        """
        chunks = split_utf8(text)
        for chunk in chunks:
            await self.call(
                "POST",
                "/cgi-bin/message/custom/send",
                json_body={
                    "touser": openid,
                    "msgtype": "text",
                    "text": {"content": chunk},
                },
            )
        logger.debug(
            "Sent %d customer-service message(s) to %s.", len(chunks), mask_openid(openid)
        )
        return len(chunks)
