"""Signed, encrypted WeChat calls to the stack (what WeChat's servers send in 安全模式)."""
from __future__ import annotations

import time
from typing import Optional, Tuple

import requests

from tests.security.conftest import AES_KEY, APPID
from tools.wechat_send import build_message_xml, decrypt_reply, encrypt_request, reply_content, signed_query


def post(stack, openid: str, text: str, *, msg_id: Optional[str] = None, timestamp: Optional[int] = None,
         encrypt: bool = True, query: Optional[dict] = None, body: Optional[str] = None) -> Tuple[int, str]:
    """(HTTP status, reply text or body) of one WeChat message."""
    token = stack.env["WECHAT_TOKEN"]
    xml = build_message_xml(openid, text, "text", "gh_test_account", msg_id)
    query = dict(query or signed_query(token, timestamp=str(timestamp or int(time.time()))))
    if encrypt and body is None:
        xml, query = encrypt_request(xml, query, token, AES_KEY, APPID)
    r = requests.post(f"{stack.rasa}/webhooks/wechat/webhook", params=query, data=(body or xml).encode("utf-8"),
                      timeout=30)
    if r.status_code != 200 or r.text.strip() in ("", "success"):
        return r.status_code, r.text
    plain = decrypt_reply(r.text, token, AES_KEY, APPID) if encrypt else r.text
    return r.status_code, reply_content(plain) or plain
