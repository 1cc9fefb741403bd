#!/usr/bin/env python
"""Send one message to the bot's WeChat webhook exactly as WeChat would.

Signs the request with the token, optionally encrypts it (安全模式), and
prints the reply (decrypted when encrypted). Examples::

    python tools/wechat_send.py --url http://127.0.0.1:5005/webhooks/wechat/webhook \\
        --token $WECHAT_TOKEN --openid test-user "停车怎么收费"
    python tools/wechat_send.py --token $WECHAT_TOKEN --encrypt \\
        --appid $WECHAT_APPID --aes-key $WECHAT_AES_KEY "你好"
    python tools/wechat_send.py --token $WECHAT_TOKEN --type subscribe
    python tools/wechat_send.py --token $WECHAT_TOKEN --type click --event-key ask_showtimes
    python tools/wechat_send.py --token $WECHAT_TOKEN --type voice "明天有什么电影"
    python tools/wechat_send.py --token $WECHAT_TOKEN --verify

Token, appid and key default to WECHAT_TOKEN, WECHAT_APPID, WECHAT_AES_KEY.
Exit status: 0 on HTTP 200, 1 otherwise.
"""

import argparse
import os
import random
import string
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Dict, Optional, Text, Tuple
from xml.sax.saxutils import escape

from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.utils import WeChatSigner

DEFAULT_URL = "http://127.0.0.1:5005/webhooks/wechat/webhook"


def _cdata(value: Text) -> Text:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def sign(*parts: Text) -> Text:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def random_nonce() -> Text:
    return "".join(random.choice(string.digits) for _ in range(10))


def build_message_xml(
    openid: Text,
    text: Text = "",
    msg_type: Text = "text",
    to_user: Text = "gh_test_account",
    msg_id: Optional[Text] = None,
    create_time: Optional[int] = None,
    event_key: Text = "",
) -> Text:
    """The XML WeChat posts for a patron's message or event."""
    create_time = create_time or int(time.time())
    msg_id = msg_id or str(random.randint(10**18, 10**19 - 1))
    fields = [
        f"<ToUserName>{_cdata(to_user)}</ToUserName>",
        f"<FromUserName>{_cdata(openid)}</FromUserName>",
        f"<CreateTime>{create_time}</CreateTime>",
    ]
    if msg_type in ("subscribe", "click", "view", "unsubscribe"):
        event = {"click": "CLICK", "view": "VIEW"}.get(msg_type, msg_type)
        fields.append(f"<MsgType>{_cdata('event')}</MsgType>")
        fields.append(f"<Event>{_cdata(event)}</Event>")
        if event_key or msg_type == "click":
            fields.append(f"<EventKey>{_cdata(event_key)}</EventKey>")
    else:
        fields.append(f"<MsgType>{_cdata(msg_type)}</MsgType>")
        if msg_type == "text":
            fields.append(f"<Content>{_cdata(text)}</Content>")
        elif msg_type == "voice":
            fields.append(f"<MediaId>{_cdata('media_id_test')}</MediaId>")
            fields.append(f"<Format>{_cdata('amr')}</Format>")
            fields.append(f"<Recognition>{_cdata(text)}</Recognition>")
        elif msg_type == "image":
            fields.append(f"<PicUrl>{_cdata(text or 'http://example.invalid/p.jpg')}</PicUrl>")
            fields.append(f"<MediaId>{_cdata('media_id_test')}</MediaId>")
        elif msg_type == "location":
            fields.append("<Location_X>30.0</Location_X><Location_Y>120.0</Location_Y>")
            fields.append(f"<Scale>15</Scale><Label>{_cdata(text)}</Label>")
        else:
            fields.append(f"<Content>{_cdata(text)}</Content>")
        fields.append(f"<MsgId>{escape(msg_id)}</MsgId>")
    return "<xml>" + "".join(fields) + "</xml>"


def signed_query(
    token: Text,
    timestamp: Optional[Text] = None,
    nonce: Optional[Text] = None,
    openid: Optional[Text] = None,
) -> Dict[Text, Text]:
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or random_nonce()
    query = {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    if openid:
        query["openid"] = openid
    return query


def encrypt_request(
    xml: Text, query: Dict[Text, Text], token: Text, aes_key: Text, appid: Text
) -> Tuple[Text, Dict[Text, Text]]:
    """Encrypts ``xml`` as WeChat does in 安全模式; returns body and query."""
    crypto = WeChatCrypto(token, aes_key, appid)
    encrypt = PrpCrypto(crypto.key).encrypt(xml, appid).decode("ascii")
    query = dict(query)
    query["encrypt_type"] = "aes"
    query["msg_signature"] = sign(token, query["timestamp"], query["nonce"], encrypt)
    body = f"<xml><ToUserName>{_cdata('gh_test_account')}</ToUserName><Encrypt>{_cdata(encrypt)}</Encrypt></xml>"
    return body, query


def decrypt_reply(body: Text, token: Text, aes_key: Text, appid: Text) -> Text:
    """Checks the reply's signature and returns its plaintext XML."""
    from defusedxml.ElementTree import fromstring

    root = fromstring(body, forbid_dtd=True)
    crypto = WeChatCrypto(token, aes_key, appid)
    return crypto.decrypt_message(
        {"Encrypt": root.findtext("Encrypt")},
        root.findtext("MsgSignature"),
        root.findtext("TimeStamp"),
        root.findtext("Nonce"),
    )


def reply_content(xml: Text) -> Optional[Text]:
    """The text of a passive text reply, or None if it is not one."""
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(xml, forbid_dtd=True)
    except Exception:
        return None
    return root.findtext("Content")


def http(method: Text, url: Text, query: Dict[Text, Text], body: Optional[Text] = None, timeout: float = 10.0) -> Tuple[int, Text]:
    full = url + ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
    data = body.encode("utf-8") if body is not None else None
    request = urllib.request.Request(full, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "text/xml; charset=utf-8")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Send one message to a WeChat webhook as WeChat would.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("text", nargs="?", default="", help="message text (voice: the Recognition)")
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--token", default=os.environ.get("WECHAT_TOKEN"))
    parser.add_argument("--openid", default="test-user")
    parser.add_argument("--to-user", default="gh_test_account")
    parser.add_argument(
        "--type",
        default="text",
        choices=["text", "voice", "image", "location", "video", "link", "subscribe", "unsubscribe", "click", "view"],
    )
    parser.add_argument("--event-key", default="")
    parser.add_argument("--msg-id", help="reuse a MsgId (to imitate WeChat's retries)")
    parser.add_argument("--encrypt", action="store_true", help="安全模式 (AES)")
    parser.add_argument("--appid", default=os.environ.get("WECHAT_APPID"))
    parser.add_argument("--aes-key", default=os.environ.get("WECHAT_AES_KEY"))
    parser.add_argument("--verify", action="store_true", help="do the GET server verification instead")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--raw", action="store_true", help="also print the raw reply body")
    args = parser.parse_args(argv)

    if not args.token:
        parser.error("--token (or WECHAT_TOKEN) is required")
    query = signed_query(args.token, openid=args.openid)

    if args.verify:
        echostr = random_nonce()
        query["echostr"] = echostr
        status, body = http("GET", args.url, query, timeout=args.timeout)
        ok = status == 200 and body == echostr
        print(f"HTTP {status}: {'verified' if ok else 'NOT verified: ' + body[:200]}")
        return 0 if ok else 1

    xml = build_message_xml(
        args.openid, args.text, args.type, args.to_user, args.msg_id, event_key=args.event_key
    )
    if args.encrypt:
        if not (args.appid and args.aes_key):
            parser.error("--encrypt needs --appid and --aes-key (or WECHAT_APPID, WECHAT_AES_KEY)")
        xml, query = encrypt_request(xml, query, args.token, args.aes_key, args.appid)

    started = time.monotonic()
    status, body = http("POST", args.url, query, xml, timeout=args.timeout)
    elapsed = time.monotonic() - started
    print(f"HTTP {status} in {elapsed:.2f}s", file=sys.stderr)
    if args.raw:
        print(body, file=sys.stderr)
    if status != 200:
        print(body[:500])
        return 1
    if body.strip() in ("", "success"):
        print("(success: no passive reply; any answer goes through the customer-service API)")
        return 0
    plain = body
    if args.encrypt:
        plain = decrypt_reply(body, args.token, args.aes_key, args.appid)
    content = reply_content(plain)
    print(content if content is not None else plain)
    return 0


if __name__ == "__main__":
    sys.exit(main())
