"""A stand-in for the WeChat server API (api.weixin.qq.com) on 127.0.0.1.

Implements what the bot uses:

- ``GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`` issues
  numbered tokens (``TOKEN-1``, ``TOKEN-2``, …) with ``expires_in`` seconds
  and counts them; wrong appid/secret gives errcode 40125.
- ``POST /cgi-bin/message/custom/send?access_token=`` records text messages;
  an unknown token gives 40001, an expired one 42001, and ``fail_next(code)``
  makes the next call(s) fail with that errcode.

In tests::

    async with WeChatStub(appid="wx-test", secret="s3cret") as stub:
        client = WeChatApiClient("wx-test", "s3cret", api_base=stub.base_url)
        ...
        await stub.wait_for_messages(1)

By hand (to point a running bot's ``WECHAT_API_BASE`` at it)::

    python tests/wechat_stub.py --port 8899 --appid wx-test --secret s3cret
"""

import argparse
import asyncio
import json
import time
from typing import Any, Dict, List, Optional, Text

from aiohttp import web


class WeChatStub:
    def __init__(
        self,
        appid: Text = "wx-test-appid",
        secret: Text = "test-secret",
        expires_in: int = 7200,
        host: Text = "127.0.0.1",
        port: int = 0,
        one_token: bool = False,
    ) -> None:
        self.appid = appid
        self.secret = secret
        self.expires_in = expires_in
        self.host = host
        self.port = port
        self.tokens_issued = 0
        # like WeChat: a new token invalidates the ones issued before (several instances refreshing on
        # their own would keep invalidating each other's)
        self.one_token = one_token
        # token -> wall-clock expiry
        self._tokens: Dict[Text, float] = {}
        self.messages: List[Dict[Text, Any]] = []
        self.requests: List[Dict[Text, Any]] = []
        self._fail_codes: List[int] = []
        self._changed: Optional[asyncio.Condition] = None
        self._runner: Optional[web.AppRunner] = None

    # -- control -------------------------------------------------------------

    def fail_next(self, errcode: int = 40001, times: int = 1) -> None:
        """Makes the next ``times`` custom/send calls answer ``errcode``."""
        self._fail_codes.extend([errcode] * times)

    def expire_all_tokens(self) -> None:
        for token in self._tokens:
            self._tokens[token] = 0.0

    @property
    def base_url(self) -> Text:
        return f"http://{self.host}:{self.port}"

    def texts_for(self, openid: Text) -> List[Text]:
        return [
            m["text"]["content"]
            for m in self.messages
            if m.get("touser") == openid and m.get("msgtype") == "text"
        ]

    async def wait_for_messages(self, count: int, timeout: float = 5.0) -> List[Dict[Text, Any]]:
        """Waits until at least ``count`` messages were recorded."""
        assert self._changed is not None, "stub not started"
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.messages) >= count), timeout
            )
        return list(self.messages)

    # -- handlers ------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        q = request.query
        self.requests.append({"path": request.path, "query": dict(q)})
        if q.get("grant_type") != "client_credential":
            return web.json_response({"errcode": 40002, "errmsg": "invalid grant_type"})
        if q.get("appid") != self.appid or q.get("secret") != self.secret:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        self.tokens_issued += 1
        token = f"TOKEN-{self.tokens_issued}"
        if self.one_token:
            self._tokens.clear()
        self._tokens[token] = time.time() + self.expires_in
        return web.json_response({"access_token": token, "expires_in": self.expires_in})

    async def _custom_send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        raw = await request.read()
        self.requests.append({"path": request.path, "query": dict(request.query), "body": raw})
        if self._fail_codes:
            code = self._fail_codes.pop(0)
            return web.json_response({"errcode": code, "errmsg": "stub failure"})
        if token not in self._tokens:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        if self._tokens[token] <= time.time():
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            return web.json_response({"errcode": 47001, "errmsg": "data format error"})
        if body.get("msgtype") == "text":
            content = (body.get("text") or {}).get("content", "")
            if len(content.encode("utf-8")) > 2048:
                return web.json_response({"errcode": 45002, "errmsg": "content size out of limit"})
        assert self._changed is not None
        async with self._changed:
            self.messages.append(body)
            self._changed.notify_all()
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> "WeChatStub":
        self._changed = asyncio.Condition()
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "WeChatStub":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()


async def _serve(args: argparse.Namespace) -> None:
    stub = WeChatStub(args.appid, args.secret, args.expires_in, args.host, args.port, one_token=args.one_token)
    await stub.start()
    print(f"WeChat API stub on {stub.base_url} (appid={stub.appid})", flush=True)
    seen = issued = 0
    try:
        while True:
            await asyncio.sleep(0.2)
            for message in stub.messages[seen:]:
                print(json.dumps(message, ensure_ascii=False), flush=True)
            seen = len(stub.messages)
            if stub.tokens_issued != issued:
                issued = stub.tokens_issued
                print(json.dumps({"tokens_issued": issued}), flush=True)
    finally:
        await stub.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899)
    parser.add_argument("--appid", default="wx-test-appid")
    parser.add_argument("--secret", default="test-secret")
    parser.add_argument("--expires-in", type=int, default=7200)
    parser.add_argument("--one-token", action="store_true", help="a new token invalidates the older ones")
    try:
        asyncio.run(_serve(parser.parse_args()))
    except KeyboardInterrupt:
        pass
