"""Tests of the WeChat Official Account channel, driven as WeChat drives it.

The Sanic app is built the way Rasa builds it (``register`` under
``/webhooks/``) and served on a free port of 127.0.0.1; a fake agent plays the
bot and ``tests/wechat_stub.py`` plays the WeChat API.
"""

import asyncio
import contextlib
import importlib.util
import io
import logging
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import aiohttp
import pytest
import pytest_asyncio

from defusedxml.ElementTree import fromstring
from sanic import Sanic
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.utils import WeChatSigner

from rasa.core.channels.channel import UserMessage, register
from rasa.shared.exceptions import RasaException

from bot.channels.wechat import TTLCache, WeChatInput, render_messages
from bot.channels.wechat_api import WeChatApiClient, WeChatApiError, split_utf8
from tests.wechat_stub import WeChatStub

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token-123"
APPID = "wx1234567890abcdef"
SECRET = "test-secret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 chars
ACCOUNT = "gh_0123456789ab"
OPENID = "oUser-0123456789abcdefghijkl"

# -- helpers ------------------------------------------------------------------


def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def signed_query(token: str = TOKEN, **extra: str) -> Dict[str, str]:
    timestamp = str(int(time.time()))
    nonce = uuid.uuid4().hex[:10]
    query = {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    query.update(extra)
    return query


_msg_ids = iter(range(6_200_000_000_000_000_000, 6_300_000_000_000_000_000))


def text_xml(content: str, openid: str = OPENID, msg_id: Optional[int] = None) -> str:
    msg_id = msg_id or next(_msg_ids)
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )


def message_xml(msg_type: str, fields: str, openid: str = OPENID, with_id: bool = True) -> str:
    msg_id = f"<MsgId>{next(_msg_ids)}</MsgId>" if with_id else ""
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>{fields}{msg_id}</xml>"
    )


def event_xml(event: str, key: Optional[str] = None, openid: str = OPENID, create_time: Optional[int] = None) -> str:
    key_xml = f"<EventKey><![CDATA[{key}]]></EventKey>" if key is not None else ""
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event>{key_xml}</xml>"
    )


def reply_fields(body: str) -> Dict[str, str]:
    root = fromstring(body, forbid_dtd=True)
    return {child.tag: (child.text or "") for child in root}


class FakeBot:
    """Plays Rasa's agent: ``register`` calls ``app.ctx.agent.handle_message``."""

    def __init__(self) -> None:
        self.received: List[UserMessage] = []
        self.delay = 0.0
        self.fail = False
        self.replies: Callable[[str], List[Dict[str, Any]]] = lambda text: [
            {"text": f"bot: {text}"}
        ]

    @property
    def texts(self) -> List[str]:
        return [m.text for m in self.received]

    async def handle_message(self, message: UserMessage) -> None:
        self.received.append(message)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("boom")
        for reply in self.replies(message.text):
            await message.output_channel.send_response(message.sender_id, dict(reply))


class Env:
    def __init__(self, url: str, channel: WeChatInput, bot: FakeBot, stub: WeChatStub, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.channel = channel
        self.bot = bot
        self.stub = stub
        self.http = http

    async def post(self, body: Any, query: Optional[Dict[str, str]] = None):
        query = signed_query() if query is None else query
        async with self.http.post(self.url, params=query, data=body) as resp:
            return resp.status, await resp.text()

    async def send_text(self, content: str, **kwargs: Any) -> str:
        status, body = await self.post(text_xml(content, **kwargs))
        assert status == 200, body
        return body

    async def reply_content(self, xml: str) -> Optional[str]:
        status, body = await self.post(xml)
        assert status == 200, body
        if body == "success":
            return None
        return reply_fields(body)["Content"]


@contextlib.asynccontextmanager
async def serve(channel: WeChatInput, bot: FakeBot):
    # As sanic_testing does: lets several apps start in one process (Sanic's
    # start-up "touchup" of its HTTP class can only run once otherwise).
    Sanic.test_mode = True
    app = Sanic(f"wechat_test_{uuid.uuid4().hex[:12]}")
    app.ctx.agent = bot
    register([channel], app, route="/webhooks/")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{port}/webhooks/wechat/webhook"
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
        sock.close()


@contextlib.asynccontextmanager
async def environment(**channel_kwargs: Any):
    async with WeChatStub(appid=APPID, secret=SECRET) as stub:
        settings = {
            "token": TOKEN,
            "appid": APPID,
            "secret": SECRET,
            "api_base": stub.base_url,
            "reply_timeout": 0.5,
        }
        settings.update(channel_kwargs)
        channel = WeChatInput.from_credentials(settings)
        bot = FakeBot()
        async with serve(channel, bot) as url:
            async with aiohttp.ClientSession() as http:
                try:
                    yield Env(url, channel, bot, stub, http)
                finally:
                    await channel.wait_for_deliveries(timeout=2)
                    if channel.api_client is not None:
                        await channel.api_client.close()


@pytest_asyncio.fixture
async def env():
    async with environment() as e:
        yield e


# -- server verification and request hygiene -------------------------------------


@pytest.mark.asyncio
async def test_get_verification_echoes_echostr(env: Env) -> None:
    async with env.http.get(env.url, params=signed_query(echostr="8136712451")) as resp:
        assert resp.status == 200
        assert await resp.text() == "8136712451"


@pytest.mark.asyncio
async def test_get_verification_rejects_bad_or_missing_signature(env: Env) -> None:
    query = signed_query(echostr="e")
    query["signature"] = "0" * 40
    async with env.http.get(env.url, params=query) as resp:
        assert resp.status == 403
    async with env.http.get(env.url, params={"echostr": "e"}) as resp:
        assert resp.status == 403
    wrong_token = signed_query(token="not-the-token", echostr="e")
    async with env.http.get(env.url, params=wrong_token) as resp:
        assert resp.status == 403


@pytest.mark.asyncio
async def test_post_with_wrong_signature_is_403(env: Env) -> None:
    query = signed_query()
    query["signature"] = "f" * 40
    status, _ = await env.post(text_xml("你好"), query)
    assert status == 403
    status, _ = await env.post(text_xml("你好"), {})
    assert status == 403
    assert env.bot.received == []


@pytest.mark.asyncio
async def test_malformed_xml_is_400_without_traceback(env: Env) -> None:
    for body in ["<xml><Content>unclosed", "not xml at all", "<other><a>1</a></other>", "<xml><MsgType>text</MsgType></xml>"]:
        status, text = await env.post(body)
        assert status == 400, body
        assert "Traceback" not in text and len(text) < 100
    assert env.bot.received == []


XXE = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol4;</Content><MsgId>2</MsgId></xml>"""


PLAIN_DTD = '<?xml version="1.0"?><!DOCTYPE xml><xml><ToUserName>a</ToUserName></xml>'


@pytest.mark.parametrize(
    "payload", [XXE, BILLION_LAUGHS, PLAIN_DTD], ids=["xxe", "billion-laughs", "dtd"]
)
@pytest.mark.asyncio
async def test_dtd_and_entities_are_rejected(env: Env, payload: str) -> None:
    status, text = await env.post(payload)
    assert (status, text) == (400, "forbidden xml construct")
    assert env.bot.received == []


@pytest.mark.asyncio
async def test_oversized_body_is_413(env: Env) -> None:
    big = text_xml("长" * 30_000)  # ~90 KB of UTF-8
    status, _ = await env.post(big)
    assert status == 413

    async def chunked():  # no Content-Length: the limit applies while reading
        for _ in range(20):
            yield b"<xml>" + b"x" * 8192

    status, _ = await env.post(chunked())
    assert status == 413
    assert env.bot.received == []
    # The server is still fine afterwards.
    assert await env.reply_content(text_xml("还在吗")) == "bot: 还在吗"


# -- messages to the bot ---------------------------------------------------------


@pytest.mark.asyncio
async def test_plaintext_text_message_gets_passive_reply(env: Env) -> None:
    xml = text_xml("停车怎么收费", msg_id=6100000000000000001)
    status, body = await env.post(xml)
    assert status == 200
    fields = reply_fields(body)
    assert fields["MsgType"] == "text"
    assert fields["Content"] == "bot: 停车怎么收费"
    assert fields["ToUserName"] == OPENID
    assert fields["FromUserName"] == ACCOUNT

    (message,) = env.bot.received
    assert message.text == "停车怎么收费"
    assert message.sender_id == OPENID
    assert message.input_channel == "wechat"
    assert message.metadata["wechat_msg_id"] == "6100000000000000001"
    assert isinstance(message.metadata["wechat_create_time"], int)
    assert message.output_channel.name() == "wechat"


@pytest.mark.asyncio
async def test_encrypted_message_gets_encrypted_reply() -> None:
    async with environment(aes_key=AES_KEY) as env:
        query = signed_query()
        plain = text_xml("你们几点关门")
        encrypt = PrpCrypto(WeChatCrypto(TOKEN, AES_KEY, APPID).key).encrypt(plain, APPID).decode()
        query.update(
            encrypt_type="aes",
            msg_signature=sign(TOKEN, query["timestamp"], query["nonce"], encrypt),
        )
        body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        status, reply = await env.post(body, query)
        assert status == 200
        outer = reply_fields(reply)
        assert set(outer) >= {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
        assert "你们几点关门" not in reply
        crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
        decrypted = crypto.decrypt_message(
            {"Encrypt": outer["Encrypt"]}, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
        )
        assert reply_fields(decrypted)["Content"] == "bot: 你们几点关门"
        assert env.bot.texts == ["你们几点关门"]

        # A wrong msg_signature (with a valid URL signature) is refused.
        bad = dict(query, msg_signature="0" * 40)
        status, _ = await env.post(body, bad)
        assert status == 403
        assert len(env.bot.received) == 1


@pytest.mark.asyncio
async def test_image_message_gets_the_bots_unsupported_reply(env: Env) -> None:
    env.bot.replies = lambda text: [{"text": "UNSUPPORTED-ANSWER"}] if text == "/unsupported_message" else []
    content = await env.reply_content(
        message_xml("image", "<PicUrl><![CDATA[http://x/p.jpg]]></PicUrl><MediaId><![CDATA[m]]></MediaId>")
    )
    assert content == "UNSUPPORTED-ANSWER"
    assert env.bot.received[0].text == "/unsupported_message"
    assert env.bot.received[0].metadata["wechat_msg_type"] == "image"
    for msg_type, fields in [
        ("location", "<Location_X>1</Location_X><Location_Y>2</Location_Y><Scale>3</Scale><Label>x</Label>"),
        ("link", "<Title>t</Title><Description>d</Description><Url>http://x</Url>"),
        ("video", "<MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId>"),
        ("file", "<Title>a.pdf</Title>"),
    ]:
        assert await env.reply_content(message_xml(msg_type, fields)) == "UNSUPPORTED-ANSWER"
    assert env.bot.texts == ["/unsupported_message"] * 5


@pytest.mark.asyncio
async def test_subscribe_sends_greet(env: Env) -> None:
    env.bot.replies = lambda text: [{"text": "WELCOME"}]
    assert await env.reply_content(event_xml("subscribe", "")) == "WELCOME"
    assert env.bot.texts == ["/greet"]
    assert env.bot.received[0].metadata["wechat_event"] == "subscribe"
    # Unsubscribe and menu links are acknowledged without bothering the bot.
    assert await env.reply_content(event_xml("unsubscribe")) is None
    assert await env.reply_content(event_xml("VIEW", "http://x")) is None
    assert env.bot.texts == ["/greet"]


@pytest.mark.asyncio
async def test_menu_click_maps_key_to_intent(env: Env) -> None:
    assert await env.reply_content(event_xml("CLICK", "ask_showtimes")) == "bot: /ask_showtimes"
    assert env.bot.texts == ["/ask_showtimes"]
    for bad_key in ["Ask-Showtimes", 'greet{"x":1}', ""]:
        assert await env.reply_content(event_xml("CLICK", bad_key)) is None
    assert env.bot.texts == ["/ask_showtimes"]


@pytest.mark.asyncio
async def test_voice_with_and_without_recognition(env: Env) -> None:
    voice = "<MediaId><![CDATA[m]]></MediaId><Format><![CDATA[amr]]></Format>"
    content = await env.reply_content(
        message_xml("voice", voice + "<Recognition><![CDATA[明天有什么电影]]></Recognition>")
    )
    assert content == "bot: 明天有什么电影"
    content = await env.reply_content(message_xml("voice", voice + "<Recognition><![CDATA[]]></Recognition>"))
    assert content == "bot: /unsupported_message"
    assert env.bot.texts == ["明天有什么电影", "/unsupported_message"]


@pytest.mark.asyncio
async def test_patron_cannot_trigger_intents_with_a_slash(env: Env) -> None:
    await env.send_text('/request_refund{"order_id": "XH1"}')
    assert not env.bot.texts[0].startswith("/")


@pytest.mark.asyncio
async def test_logs_mask_phones_and_openids(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env.bot.delay = 0.6  # also exercise the late-delivery path's logging
    with caplog.at_level(logging.DEBUG, logger="bot.channels"):
        await env.send_text("我的电话13812345678，订单XH202611230001")
        await env.stub.wait_for_messages(1, timeout=3)
    assert "wechat" in caplog.text.lower()
    assert "13812345678" not in caplog.text
    assert OPENID not in caplog.text


@pytest.mark.asyncio
async def test_bot_failure_answers_success(env: Env) -> None:
    env.bot.fail = True
    status, body = await env.post(text_xml("你好"))
    assert (status, body) == (200, "success")


# -- retries and the 5-second deadline ----------------------------------------------


@pytest.mark.asyncio
async def test_retry_while_in_flight_runs_the_bot_once() -> None:
    async with environment(reply_timeout=2.0) as env:
        env.bot.delay = 0.3
        xml = text_xml("退票手续费", msg_id=6100000000000000002)
        first = asyncio.ensure_future(env.post(xml))
        await asyncio.sleep(0.1)
        second = asyncio.ensure_future(env.post(xml))
        (s1, b1), (s2, b2) = await asyncio.gather(first, second)
        assert s1 == s2 == 200
        assert reply_fields(b1)["Content"] == reply_fields(b2)["Content"] == "bot: 退票手续费"
        assert len(env.bot.received) == 1
        # A retry after the answer went out gets the same answer again.
        s3, b3 = await env.post(xml)
        assert reply_fields(b3)["Content"] == "bot: 退票手续费"
        assert len(env.bot.received) == 1
        assert env.stub.messages == []


@pytest.mark.asyncio
async def test_duplicate_events_are_deduplicated(env: Env) -> None:
    xml = event_xml("subscribe", "", create_time=1700000000)
    await env.post(xml)
    await env.post(xml)
    assert env.bot.texts == ["/greet"]


@pytest.mark.asyncio
async def test_slow_bot_answers_success_then_uses_customer_service_api(env: Env) -> None:
    env.bot.delay = 1.0
    xml = text_xml("包场怎么收费")
    started = time.monotonic()
    status, body = await env.post(xml)
    assert (status, body) == (200, "success")
    assert time.monotonic() - started < 0.9
    # WeChat's retry while the bot still works: no second run, still "success".
    status, body = await env.post(xml)
    assert (status, body) == (200, "success")
    messages = await env.stub.wait_for_messages(1, timeout=3)
    assert messages == [{"touser": OPENID, "msgtype": "text", "text": {"content": "bot: 包场怎么收费"}}]
    # And a retry after delivery neither reruns the bot nor resends.
    assert await env.post(xml) == (200, "success")
    await asyncio.sleep(0.1)
    assert len(env.bot.received) == 1
    assert len(env.stub.messages) == 1


@pytest.mark.asyncio
async def test_long_reply_is_split_passive_first_then_api(env: Env) -> None:
    lines = [f"第{i}行：" + "影" * 40 for i in range(40)]  # ~5 KB
    long_text = "\n".join(lines)
    env.bot.replies = lambda text: [{"text": long_text}]
    content = await env.reply_content(text_xml("说说所有影厅"))
    assert content is not None and len(content.encode("utf-8")) <= 2048
    assert content.startswith("第0行") and content.endswith("影")  # cut at a line end
    messages = await env.stub.wait_for_messages(2, timeout=3)
    parts = [content] + [m["text"]["content"] for m in messages]
    assert all(len(p.encode("utf-8")) <= 2048 for p in parts)
    assert "\n".join(parts) == long_text


@pytest.mark.asyncio
async def test_several_bot_messages_are_joined_by_blank_lines(env: Env) -> None:
    env.bot.replies = lambda text: [{"text": "第一条"}, {"image": "https://img.example/p.png"}, {"text": "第三条"}]
    assert await env.reply_content(text_xml("hi")) == "第一条\n\nhttps://img.example/p.png\n\n第三条"


@pytest.mark.asyncio
async def test_buttons_become_numbered_choices_and_digits_map_to_payloads(env: Env) -> None:
    buttons = [
        {"title": "星际归途", "payload": '/inform{"film": "星际归途"}'},
        {"title": "深海回声", "payload": '/inform{"film": "深海回声"}'},
    ]
    env.bot.replies = lambda text: [{"text": "您想看哪部？", "buttons": buttons}] if text == "排片" else [{"text": "好的"}]
    content = await env.reply_content(text_xml("排片"))
    assert content == "您想看哪部？\n回复数字选择：\n1. 星际归途\n2. 深海回声"
    await env.send_text("2")
    assert env.bot.texts[-1] == '/inform{"film": "深海回声"}'
    # The answer had no buttons: digits are plain text again.
    await env.send_text("1")
    assert env.bot.texts[-1] == "1"
    # Out of range and other patrons' digits are plain text too.
    await env.reply_content(text_xml("排片"))
    await env.send_text("7")
    assert env.bot.texts[-1] == "7"
    await env.send_text("1", openid="someone-else")
    assert env.bot.texts[-1] == "1"


# -- API client and output channel -------------------------------------------------


@pytest.mark.asyncio
async def test_api_client_caches_and_refreshes_the_token() -> None:
    now = [1000.0]
    async with WeChatStub(appid=APPID, secret=SECRET, expires_in=7200) as stub:
        client = WeChatApiClient(APPID, SECRET, api_base=stub.base_url, clock=lambda: now[0])
        try:
            await client.send_text("o1", "一")
            await client.send_text("o1", "二")
            assert stub.tokens_issued == 1
            now[0] += 7200 - 300 - 1  # still inside the safety margin
            await client.send_text("o1", "三")
            assert stub.tokens_issued == 1
            now[0] += 2  # 5 minutes before expiry: refreshed
            await client.send_text("o1", "四")
            assert stub.tokens_issued == 2
            # WeChat invalidated the token (40001): refresh once and retry.
            stub.fail_next(40001)
            await client.send_text("o1", "五")
            assert stub.tokens_issued == 3
            # Expired on WeChat's side (42001).
            stub.expire_all_tokens()
            await client.send_text("o1", "六")
            assert stub.tokens_issued == 4
            assert stub.texts_for("o1") == ["一", "二", "三", "四", "五", "六"]
            # Concurrent senders share one token fetch.
            client.invalidate_token()
            await asyncio.gather(*(client.send_text("o2", str(i)) for i in range(5)))
            assert stub.tokens_issued == 5
        finally:
            await client.close()


@pytest.mark.asyncio
async def test_api_client_short_lived_tokens_and_errors() -> None:
    async with WeChatStub(appid=APPID, secret=SECRET, expires_in=1) as stub:
        client = WeChatApiClient(APPID, SECRET, api_base=stub.base_url)
        try:
            await client.send_text("o1", "a")
            await client.send_text("o1", "b")
            assert stub.tokens_issued == 1
            await asyncio.sleep(0.6)  # a 1 s token is refreshed after half its life
            await client.send_text("o1", "c")
            assert stub.tokens_issued == 2

            stub.fail_next(45015)  # "response out of time limit" (48 h window)
            with pytest.raises(WeChatApiError) as info:
                await client.send_text("o1", "d")
            assert info.value.errcode == 45015
            assert client.failures[-1]["errcode"] == 45015

            stub.fail_next(40001, times=2)  # refresh once only, then give up
            with pytest.raises(WeChatApiError) as info:
                await client.send_text("o1", "e")
            assert info.value.errcode == 40001
        finally:
            await client.close()

    bad = WeChatApiClient(APPID, "wrong-secret", api_base=stub.base_url)
    with pytest.raises(WeChatApiError) as info:  # the stub is gone: transport error
        await bad.send_text("o1", "x")
    assert info.value.errcode is None
    await bad.close()


@pytest.mark.asyncio
async def test_api_client_wrong_secret() -> None:
    async with WeChatStub(appid=APPID, secret=SECRET) as stub:
        client = WeChatApiClient(APPID, "wrong", api_base=stub.base_url)
        with pytest.raises(WeChatApiError) as info:
            await client.send_text("o1", "x")
        assert info.value.errcode == 40125
        await client.close()


@pytest.mark.asyncio
async def test_output_channel_sends_through_the_api(env: Env) -> None:
    output = env.channel.get_output_channel()
    assert output is not None and output.name() == "wechat"
    await output.send_response(
        OPENID, {"text": "场次提醒：今晚19:30", "buttons": [{"title": "查看场次", "payload": "/ask_showtimes"}]}
    )
    await output.send_text_message(OPENID, "第二条")
    await output.send_image_url(OPENID, "https://img.example/seat.png")
    assert env.stub.texts_for(OPENID) == [
        "场次提醒：今晚19:30\n回复数字选择：\n1. 查看场次",
        "第二条",
        "https://img.example/seat.png",
    ]


# -- pieces ---------------------------------------------------------------------


def test_split_utf8_respects_bytes_and_characters() -> None:
    text = "\n".join("行" * n for n in (10, 700, 5, 1000))
    chunks = split_utf8(text, 2048)
    assert all(len(c.encode("utf-8")) <= 2048 for c in chunks)
    assert "".join(chunks).replace("\n", "") == text.replace("\n", "")
    assert chunks[0] == "行" * 10  # the 700-character line did not fit beside it
    assert split_utf8("短", 2048) == ["短"]
    assert split_utf8("", 2048) == []
    assert split_utf8("😀" * 10, 8) == ["😀😀"] * 5


def test_ttl_cache_expires_and_is_bounded() -> None:
    now = [0.0]
    cache: TTLCache[str, int] = TTLCache(ttl=600, max_entries=3, clock=lambda: now[0])
    for i in range(5):
        cache.put(f"k{i}", i)
    assert len(cache) == 3 and cache.get("k0") is None and cache.get("k4") == 4
    now[0] = 599
    assert cache.get("k2") == 2
    now[0] = 600
    assert cache.get("k2") is None
    cache.put("new", 1)
    assert len(cache) == 1


def test_render_messages() -> None:
    text, payloads = render_messages(
        [
            {"text": "选影片", "buttons": [{"title": "A", "payload": "/a"}]},
            {"text": "再选", "quick_replies": [{"title": "B", "payload": "/b"}]},
        ]
    )
    assert text == "选影片\n回复数字选择：\n1. A\n\n再选\n回复数字选择：\n2. B"
    assert payloads == ["/a", "/b"]


def test_from_credentials_env_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECHAT_TOKEN", "env-token")
    monkeypatch.setenv("WECHAT_APPID", APPID)
    monkeypatch.setenv("WECHAT_SECRET", "env-secret")
    monkeypatch.setenv("WECHAT_AES_KEY", AES_KEY)
    monkeypatch.delenv("WECHAT_API_BASE", raising=False)
    channel = WeChatInput.from_credentials(None)
    assert WeChatInput.name() == "wechat"
    assert channel.token == "env-token"
    assert channel.crypto is not None
    assert channel.reply_timeout == 4.0
    assert channel.api_client.api_base == "https://api.weixin.qq.com"
    assert channel.api_client.secret == "env-secret"
    channel = WeChatInput.from_credentials({"token": "t", "api_base": "http://127.0.0.1:9", "reply_timeout": 1.5})
    assert channel.token == "t" and channel.reply_timeout == 1.5
    assert channel.api_client.api_base == "http://127.0.0.1:9"
    monkeypatch.delenv("WECHAT_TOKEN")
    with pytest.raises(RasaException):
        WeChatInput.from_credentials({})
    with pytest.raises(ValueError):
        WeChatInput.from_credentials({"token": "t", "appid": APPID, "aes_key": "short"})


@pytest.mark.asyncio
async def test_cli_tool_sends_signed_encrypted_message() -> None:
    spec = importlib.util.spec_from_file_location("wechat_send", ROOT / "tools" / "wechat_send.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    async with environment(aes_key=AES_KEY) as env:
        args = ["--url", env.url, "--token", TOKEN, "--openid", "cli-user"]

        def run_blocking(extra: List[str], code: int = 0) -> str:
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                assert tool.main(args + extra) == code
            return out.getvalue().strip()

        async def run(extra: List[str], code: int = 0) -> str:
            # The tool blocks (urllib): run it beside the server's event loop.
            return await asyncio.to_thread(run_blocking, extra, code)

        encrypt = ["--encrypt", "--appid", APPID, "--aes-key", AES_KEY]
        # with an aes_key configured, a plaintext call is a downgrade and is refused
        assert await run(["停车怎么收费"], code=1) == "encrypted messages required"
        assert await run([*encrypt, "加密的你好"]) == "bot: 加密的你好"
        assert await run([*encrypt, "--type", "click", "--event-key", "ask_showtimes"]) == "bot: /ask_showtimes"
        assert (await run(["--verify"])).endswith("verified")
        assert env.bot.texts == ["加密的你好", "/ask_showtimes"]
