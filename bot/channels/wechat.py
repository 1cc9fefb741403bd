"""Rasa input channel for a WeChat Official Account (微信公众号).

Configure it in ``credentials.yml``::

    bot.channels.wechat.WeChatInput:
      token: ${WECHAT_TOKEN}          # 服务器配置 → 令牌(Token)
      appid: ${WECHAT_APPID}
      secret: ${WECHAT_SECRET}
      aes_key: ${WECHAT_AES_KEY}      # EncodingAESKey (43 chars), for 安全模式
      # api_base: https://api.weixin.qq.com
      # reply_timeout: 4.0

Every key falls back to the environment (``WECHAT_TOKEN``, ``WECHAT_APPID``,
``WECHAT_SECRET``, ``WECHAT_AES_KEY``, ``WECHAT_API_BASE``,
``WECHAT_REPLY_TIMEOUT``). The webhook is ``/webhooks/wechat/webhook``.

How a message is answered: WeChat waits 5 seconds for the HTTP answer and
retries up to three times. The channel runs the bot once per message (retries
are deduplicated by MsgId, or FromUserName+CreateTime for events) and waits
up to ``reply_timeout`` seconds. If the bot has answered by then, the answer
goes back as a passive XML reply; if not, the channel answers ``success`` and
delivers the answer later through the customer-service message API.

With several Rasa instances the claim of a message, the choice between those
two ways, the numbered choices last shown and the access token are shared in Redis
(``bot.channels.wechat_shared``): a retry that lands on another instance waits
for the first instance's answer instead of running the bot again.
"""

import asyncio
import logging
import os
import re
import time
from collections import OrderedDict
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Generic,
    List,
    Optional,
    Set,
    Text,
    Tuple,
    TypeVar,
)
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import (
    ClickEvent,
    SubscribeEvent,
    SubscribeScanEvent,
)
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import BaseMessage, TextMessage, VoiceMessage
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage

from bot.channels.wechat_api import (
    DEFAULT_API_BASE,
    MAX_TEXT_BYTES,
    WeChatApiClient,
    WeChatApiError,
    mask_openid,
    split_utf8,
)
from bot.channels.wechat_replay import ReplayGuard, timestamp_fresh
from bot.channels.wechat_shared import RetryLedger, SharedChoices, SharedToken
from bot.privacy import mask_text

logger = logging.getLogger(__name__)

CHANNEL_NAME = "wechat"

# Intent triggers sent to the bot instead of hard-coded texts.
GREET_TRIGGER = "/greet"
UNSUPPORTED_TRIGGER = "/unsupported_message"

MAX_BODY_BYTES = 64 * 1024
DEFAULT_REPLY_TIMEOUT = 4.0
DEDUP_TTL_SECONDS = 600.0
DEDUP_MAX_ENTRIES = 10_000
CHOICES_TTL_SECONDS = 600.0
CHOICES_MAX_ENTRIES = 10_000
# Shown above numbered button titles; WeChat has no buttons in chat.
DEFAULT_CHOICE_PROMPT = "回复数字选择："

CLICK_KEY_PATTERN = re.compile(r"^[a-z_]{1,64}$")
DIGIT_REPLY_PATTERN = re.compile(r"^\d{1,2}$")

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Small in-memory mapping whose entries expire and whose size is bounded.

    Entries are kept in insertion order, so the expired ones are always at the
    front; when full, the oldest entry is dropped.
    """

    def __init__(
        self,
        ttl: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._data: "OrderedDict[K, Tuple[float, V]]" = OrderedDict()

    def _evict(self) -> None:
        now = self._clock()
        while self._data:
            key, (stored_at, _) = next(iter(self._data.items()))
            if now - stored_at < self.ttl:
                break
            del self._data[key]
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def get(self, key: K) -> Optional[V]:
        item = self._data.get(key)
        if item is None:
            return None
        stored_at, value = item
        if self._clock() - stored_at >= self.ttl:
            del self._data[key]
            return None
        return value

    def put(self, key: K, value: V) -> None:
        self._data.pop(key, None)
        self._data[key] = (self._clock(), value)
        self._evict()

    def pop(self, key: K) -> Optional[V]:
        item = self._data.pop(key, None)
        return item[1] if item else None

    def __len__(self) -> int:
        return len(self._data)


# -- rendering bot messages as WeChat text ---------------------------------


def _button_lines(
    buttons: List[Dict[Text, Any]], payloads: List[Text]
) -> List[Text]:
    lines = []
    for button in buttons:
        if not isinstance(button, dict):
            continue
        title = button.get("title") or button.get("payload") or ""
        payload = button.get("payload") or button.get("url") or title
        if not title or not payload:
            continue
        payloads.append(str(payload))
        lines.append(f"{len(payloads)}. {title}")
    return lines


def render_messages(
    messages: List[Dict[Text, Any]], choice_prompt: Text = DEFAULT_CHOICE_PROMPT
) -> Tuple[Text, List[Text]]:
    """Turns Rasa bot messages into one WeChat text and the choice payloads.

    Messages are separated by blank lines. Buttons (and quick replies) become
    numbered lines under ``choice_prompt``, numbered across the whole reply;
    the payloads are returned in that order. Images and attachments become
    their URL.
    """
    parts: List[Text] = []
    payloads: List[Text] = []
    for message in messages:
        lines: List[Text] = []
        text = message.get("text")
        if text:
            lines.append(str(text).strip())
        custom = message.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("text"), str):
            lines.append(custom["text"].strip())
        for element in message.get("elements") or []:
            if not isinstance(element, dict):
                continue
            heading = " ".join(
                str(element[k]) for k in ("title", "subtitle") if element.get(k)
            )
            if heading:
                lines.append(heading)
            if element.get("image_url"):
                lines.append(str(element["image_url"]))
            lines.extend(_button_lines(element.get("buttons") or [], payloads))
        buttons = message.get("buttons") or message.get("quick_replies") or []
        button_lines = _button_lines(buttons, payloads)
        if button_lines:
            lines.append(choice_prompt)
            lines.extend(button_lines)
        if message.get("image"):
            lines.append(str(message["image"]))
        attachment = message.get("attachment")
        if attachment:
            if isinstance(attachment, dict):
                attachment = (attachment.get("payload") or {}).get("src") or attachment.get(
                    "url"
                )
            if attachment:
                lines.append(str(attachment))
        lines = [line for line in lines if line]
        if lines:
            parts.append("\n".join(lines))
    return "\n\n".join(parts), payloads


def _raw_type(message: BaseMessage) -> Text:
    return str(message._data.get("MsgType") or "").strip().lower()


def _cdata_safe(text: Text) -> Text:
    # TextReply renders <Content><![CDATA[...]]></Content>; "]]>" would end it.
    return text.replace("]]>", "]]]]><![CDATA[>")


class _ChoiceMemory:
    """Remembers per OpenID the payloads of the numbered choices last shown.

    With ``shared`` (``SharedChoices``: cluster instances) they live in Redis, so a digit answered on
    another instance picks the same choice; a single process (or Redis gone) keeps them here.
    """

    def __init__(self, ttl: float, max_entries: int, shared: Optional[SharedChoices] = None) -> None:
        self._cache: TTLCache[Text, List[Text]] = TTLCache(ttl, max_entries)
        self._shared = shared

    def remember(self, openid: Text, payloads: List[Text]) -> None:
        if self._shared is not None and self._shared.put(openid, payloads):
            return
        if payloads:
            self._cache.put(openid, list(payloads))
        else:
            # A newer answer without choices: digits no longer refer to them.
            self._cache.pop(openid)

    def _payloads(self, openid: Text) -> Optional[List[Text]]:
        if self._shared is not None:
            shared = self._shared.get(openid)
            if shared is not None:
                return shared
        return self._cache.get(openid)

    def resolve(self, openid: Text, text: Text) -> Optional[Text]:
        text = text.strip()
        if not DIGIT_REPLY_PATTERN.match(text):
            return None
        payloads = self._payloads(openid)
        if not payloads:
            return None
        number = int(text)
        if 1 <= number <= len(payloads):
            return payloads[number - 1]
        return None


# -- output channels --------------------------------------------------------


class WeChatCollectingOutput(OutputChannel):
    """Collects the bot's messages for one incoming WeChat message."""

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    def __init__(self) -> None:
        self.messages: List[Dict[Text, Any]] = []

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        self.messages.append(dict(message))

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        self.messages.append({"text": text})

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        self.messages.append({"text": text, "buttons": buttons})

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        self.messages.append({"image": image})

    async def send_attachment(self, recipient_id: Text, attachment: Text, **kwargs: Any) -> None:
        self.messages.append({"attachment": attachment})

    async def send_custom_json(
        self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any
    ) -> None:
        self.messages.append({"custom": json_message})


class WeChatOutput(OutputChannel):
    """Sends bot messages to a patron through the customer-service message API.

    Used when Rasa sends outside a request (reminders, ``trigger_intent`` with
    ``output_channel=wechat``) and by anything else that has an OpenID.
    """

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    def __init__(
        self,
        api_client: WeChatApiClient,
        choice_memory: Optional[_ChoiceMemory] = None,
        choice_prompt: Text = DEFAULT_CHOICE_PROMPT,
    ) -> None:
        self.api_client = api_client
        self._choices = choice_memory
        self._choice_prompt = choice_prompt

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        text, payloads = render_messages([message], self._choice_prompt)
        if self._choices is not None and text:
            self._choices.remember(recipient_id, payloads)
        if text:
            await self.api_client.send_text(recipient_id, text)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {"text": text, "buttons": buttons})

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"image": image})

    async def send_attachment(self, recipient_id: Text, attachment: Text, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"attachment": attachment})

    async def send_custom_json(
        self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {"custom": json_message})


# -- deduplication of WeChat's retries ---------------------------------------


class _Pending:
    """One incoming WeChat message: the bot run and how its answer went out.

    ``outcome`` is decided once: ``"passive"`` (``passive_text`` was the HTTP
    reply; retries get it again) or ``"api"`` (the answer goes/went through
    the customer-service API; retries get ``success``).
    """

    __slots__ = ("task", "openid", "outcome", "passive_text", "key")

    def __init__(self, openid: Text, key: Text = "") -> None:
        self.openid = openid
        self.key = key
        self.task: Optional["asyncio.Task[Text]"] = None
        self.outcome: Optional[Text] = None
        self.passive_text: Optional[Text] = None


class _BadRequest(Exception):
    def __init__(self, status: int, message: Text) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# -- the input channel ---------------------------------------------------------


class WeChatInput(InputChannel):
    """WeChat Official Account webhook (plaintext and 安全模式)."""

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WeChatInput":
        credentials = credentials or {}

        def setting(key: Text, env: Text, default: Any = None) -> Any:
            value = credentials.get(key)
            if value is None or value == "":
                value = os.environ.get(env) or default
            return value

        token = setting("token", "WECHAT_TOKEN")
        if not token:
            cls.raise_missing_credentials_exception()
        return cls(
            token=str(token),
            appid=setting("appid", "WECHAT_APPID"),
            secret=setting("secret", "WECHAT_SECRET"),
            aes_key=setting("aes_key", "WECHAT_AES_KEY"),
            api_base=setting("api_base", "WECHAT_API_BASE", DEFAULT_API_BASE),
            reply_timeout=float(
                setting("reply_timeout", "WECHAT_REPLY_TIMEOUT", DEFAULT_REPLY_TIMEOUT)
            ),
        )

    def __init__(
        self,
        token: Text,
        appid: Optional[Text] = None,
        secret: Optional[Text] = None,
        aes_key: Optional[Text] = None,
        api_base: Text = DEFAULT_API_BASE,
        reply_timeout: float = DEFAULT_REPLY_TIMEOUT,
        api_client: Optional[WeChatApiClient] = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        choice_prompt: Text = DEFAULT_CHOICE_PROMPT,
        replay_guard: Optional[ReplayGuard] = None,
        retry_ledger: Optional[RetryLedger] = None,
        shared_choices: Optional[SharedChoices] = None,
    ) -> None:
        self.token = token
        self.appid = appid
        self.reply_timeout = reply_timeout
        self.max_body_bytes = max_body_bytes
        self.choice_prompt = choice_prompt
        self.crypto: Optional[WeChatCrypto] = None
        if aes_key:
            if not appid:
                raise ValueError("WeChat channel: aes_key needs the appid as well")
            try:
                self.crypto = WeChatCrypto(token, aes_key, appid)
            except Exception as e:  # bad base64 / wrong length
                raise ValueError(
                    "WeChat channel: aes_key must be the 43-character EncodingAESKey"
                ) from e
        if api_client is None and appid and secret:
            api_client = WeChatApiClient(appid, secret, api_base or DEFAULT_API_BASE,
                                         token_store=SharedToken.from_env(appid))
        self.api_client = api_client
        self._pending: TTLCache[Text, _Pending] = TTLCache(
            DEDUP_TTL_SECONDS, DEDUP_MAX_ENTRIES
        )
        self._choices = _ChoiceMemory(CHOICES_TTL_SECONDS, CHOICES_MAX_ENTRIES,
                                      shared_choices or SharedChoices.from_env())
        self._background: Set["asyncio.Task[Any]"] = set()
        self._replay = replay_guard or ReplayGuard.from_env()
        self._ledger = retry_ledger or RetryLedger.from_env()

    # -- Rasa hooks ---------------------------------------------------------

    def get_output_channel(self) -> Optional[OutputChannel]:
        if self.api_client is None:
            return None
        return WeChatOutput(self.api_client, self._choices, self.choice_prompt)

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        bp = Blueprint(f"{CHANNEL_NAME}_webhook", __name__)

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            if not self._signature_ok(request) or not self._replay.accept(
                    request.args.get("timestamp"), request.args.get("nonce"), b"GET"):
                return response.text("invalid signature", status=403)
            return response.text(request.args.get("echostr", ""))

        @bp.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            try:
                return await self._handle_post(request, on_new_message)
            except _BadRequest as e:
                return response.text(e.message, status=e.status)

        return bp

    # -- request handling ---------------------------------------------------

    def _signature_ok(self, request: Request) -> bool:
        signature = request.args.get("signature")
        timestamp = request.args.get("timestamp")
        nonce = request.args.get("nonce")
        if not (signature and timestamp and nonce):
            return False
        if not timestamp_fresh(timestamp):  # a signature is only good for ±5 minutes
            return False
        try:
            check_signature(self.token, signature, timestamp, nonce)
        except InvalidSignatureException:
            return False
        return True

    async def _read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _BadRequest(413, "request body too large")
        chunks: List[bytes] = []
        size = 0
        if request.stream is not None:
            async for chunk in request.stream:
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise _BadRequest(413, "request body too large")
                chunks.append(chunk)
            return b"".join(chunks)
        body = request.body or b""
        if len(body) > self.max_body_bytes:
            raise _BadRequest(413, "request body too large")
        return body

    @staticmethod
    def _safe_parse(xml: Any) -> Any:
        try:
            root = safe_fromstring(xml, forbid_dtd=True)
        except DefusedXmlException:
            raise _BadRequest(400, "forbidden xml construct")
        except (ParseError, ValueError, TypeError):
            raise _BadRequest(400, "malformed xml")
        if root.tag != "xml":
            raise _BadRequest(400, "malformed xml")
        return root

    def _decode_message(self, request: Request, body: bytes) -> BaseMessage:
        root = self._safe_parse(body)
        xml_text = body.decode("utf-8", errors="strict")
        if request.args.get("encrypt_type", "raw").lower() == "aes":
            if self.crypto is None:
                logger.error("Encrypted WeChat message but no aes_key is configured.")
                raise _BadRequest(500, "encryption not configured")
            encrypt = root.findtext("Encrypt")
            msg_signature = request.args.get("msg_signature")
            if not encrypt or not msg_signature:
                raise _BadRequest(400, "malformed encrypted message")
            try:
                xml_text = self.crypto.decrypt_message(
                    {"Encrypt": encrypt},
                    msg_signature,
                    request.args.get("timestamp"),
                    request.args.get("nonce"),
                )
            except (InvalidSignatureException, InvalidAppIdException):
                raise _BadRequest(403, "invalid signature")
            except Exception:
                raise _BadRequest(400, "undecryptable message")
            self._safe_parse(xml_text.encode("utf-8"))
        try:
            message = parse_message(xml_text)
        except Exception:
            raise _BadRequest(400, "malformed xml")
        if message is None or not message.source:
            raise _BadRequest(400, "malformed xml")
        return message

    async def _handle_post(
        self,
        request: Request,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> HTTPResponse:
        if not self._signature_ok(request):
            return response.text("invalid signature", status=403)
        encrypted = request.args.get("encrypt_type", "raw").lower() == "aes"
        if self.crypto is not None and not encrypted:
            # 安全模式 is configured: a plaintext call is a downgrade (its body is not signed).
            return response.text("encrypted messages required", status=403)
        body = await self._read_body(request)
        if not self._replay.accept(request.args.get("timestamp"), request.args.get("nonce"), body):
            logger.warning("WeChat call refused: nonce replayed with another body")
            return response.text("invalid signature", status=403)
        try:
            message = self._decode_message(request, body)
        except UnicodeDecodeError:
            raise _BadRequest(400, "malformed xml")

        openid = str(message.source)
        key = self._dedup_key(message)
        entry = self._pending.get(key)
        if entry is None and not self._ledger.claim(key):
            # a retry of a message another instance is answering (or answered)
            logger.info("WeChat retry of message %s from %s answered by another instance.",
                        key.rsplit(":", 1)[-1], mask_openid(openid))
            return self._render_reply(request, message, await self._await_elsewhere(key))
        if entry is None:
            text = self._text_for_bot(message)
            if text is None:
                self._ledger.decide(key, "api")  # nothing to answer: a retry elsewhere gets success at once
                return response.text("success")
            entry = _Pending(openid, key)
            user_message = UserMessage(
                text,
                WeChatCollectingOutput(),
                sender_id=openid,
                input_channel=self.name(),
                metadata=self._metadata(message),
            )
            entry.task = asyncio.ensure_future(self._run_bot(on_new_message, user_message))
            entry.task.add_done_callback(lambda _t, e=entry: self._on_bot_done(e))
            self._pending.put(key, entry)
        else:
            logger.info(
                "WeChat retry of message %s from %s (state: %s).",
                key.rsplit(":", 1)[-1],
                mask_openid(openid),
                entry.outcome or "running",
            )

        return self._render_reply(request, message, await self._await_reply(entry))

    def _render_reply(self, request: Request, message: BaseMessage, reply: Optional[Text]) -> HTTPResponse:
        if not reply:
            return response.text("success")
        xml = TextReply(content=_cdata_safe(reply), message=message).render()
        if request.args.get("encrypt_type", "raw").lower() == "aes" and self.crypto:
            xml = self.crypto.encrypt_message(
                xml, request.args.get("nonce"), request.args.get("timestamp")
            )
        return response.text(xml, content_type="application/xml; charset=utf-8")

    @staticmethod
    def _dedup_key(message: BaseMessage) -> Text:
        data = message._data
        msg_id = str(data.get("MsgId") or "").strip()
        if _raw_type(message) == "event" or not msg_id:
            # WeChat's rule is FromUserName + CreateTime; the event and its key
            # are the same in a retry and keep two quick clicks apart.
            return (
                f"event:{message.source}:{data.get('CreateTime', '')}:"
                f"{data.get('Event', '')}:{data.get('EventKey', '')}"
            )
        # MsgId is unique per account only as far as WeChat promises; keyed with the sender, a forged or
        # colliding id can never swallow another patron's message.
        return f"msg:{message.source}:{msg_id}"

    @staticmethod
    def _metadata(message: BaseMessage) -> Dict[Text, Any]:
        data = message._data
        metadata: Dict[Text, Any] = {
            "wechat_msg_id": str(data.get("MsgId")) if data.get("MsgId") else None,
            "wechat_create_time": int(data["CreateTime"])
            if str(data.get("CreateTime", "")).isdigit()
            else None,
            "wechat_msg_type": _raw_type(message),
            "wechat_account": message.target,
        }
        if _raw_type(message) == "event":
            metadata["wechat_event"] = str(data.get("Event") or "").lower() or None
            metadata["wechat_event_key"] = data.get("EventKey")
        return {k: v for k, v in metadata.items() if v is not None}

    def _text_for_bot(self, message: BaseMessage) -> Optional[Text]:
        """What the bot should receive for ``message``; None means ignore it."""
        openid = str(message.source or "")
        if isinstance(message, TextMessage):
            content = (message.content or "").strip()
            if not content:
                return None
            choice = self._choices.resolve(openid, content)
            if choice is not None:
                logger.debug("WeChat choice %s from %s.", content, mask_openid(openid))
                return choice
            logger.debug(
                "WeChat text from %s: %s", mask_openid(openid), mask_text(content)
            )
            return self._neutralise(content) or None
        if isinstance(message, VoiceMessage):
            recognition = (message.recognition or "").strip()
            if recognition:
                choice = self._choices.resolve(openid, recognition.rstrip("。."))
                if choice is not None:
                    return choice
                return self._neutralise(recognition) or None
            return UNSUPPORTED_TRIGGER
        if isinstance(message, (SubscribeEvent, SubscribeScanEvent)):
            return GREET_TRIGGER
        if isinstance(message, ClickEvent):
            key = (message.key or "").strip()
            if CLICK_KEY_PATTERN.match(key):
                return "/" + key
            logger.warning("Ignoring WeChat menu click with key %r.", key[:64])
            return None
        if _raw_type(message) == "event":
            # unsubscribe, VIEW (menu link), SCAN, LOCATION reports, job results…
            return None
        # image, sticker, location, link, video, shortvideo, file, unknown…
        return UNSUPPORTED_TRIGGER

    @staticmethod
    def _neutralise(text: Text) -> Text:
        # A leading "/" makes Rasa treat the text as an intent (with entities):
        # patrons must not be able to trigger intents or set slots that way.
        return text.lstrip("/").strip()

    # -- running the bot and delivering ----------------------------------------

    async def _run_bot(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        user_message: UserMessage,
    ) -> Text:
        openid = user_message.sender_id
        output: WeChatCollectingOutput = user_message.output_channel  # type: ignore
        try:
            await on_new_message(user_message)
        except Exception:
            logger.exception(
                "The bot failed on a WeChat message from %s.", mask_openid(openid)
            )
        text, payloads = render_messages(output.messages, self.choice_prompt)
        if text:
            self._choices.remember(openid, payloads)
        return text

    async def _await_reply(self, entry: _Pending) -> Optional[Text]:
        """Waits up to ``reply_timeout`` for the bot; the passive reply or None."""
        assert entry.task is not None
        if entry.outcome is None and not entry.task.done():
            try:
                await asyncio.wait({entry.task}, timeout=self.reply_timeout)
            except asyncio.CancelledError:
                # The HTTP request went away: make sure the answer still goes out.
                if entry.outcome is None:
                    self._commit_to_api(entry)
                raise
        if entry.outcome is None:
            if entry.task.done():
                self._commit_to_passive(entry)
            else:
                self._commit_to_api(entry)
        if entry.outcome == "passive":
            return entry.passive_text
        return None

    async def _await_elsewhere(self, key: Text) -> Optional[Text]:
        """A retry on an instance that did not run the bot: the passive reply the owner decided on, or None
        (``success``) once it went to the API, or when none was decided within ``reply_timeout`` (then this
        instance decides on the API, and the owner delivers there when the bot is done)."""
        deadline = time.monotonic() + self.reply_timeout
        while time.monotonic() < deadline:
            held = self._ledger.outcome(key)
            if held is not None:
                return held[1] if held[0] == "passive" else None
            await asyncio.sleep(0.05)
        outcome, text = self._ledger.decide(key, "api")
        return text if outcome == "passive" else None

    def _bot_text(self, entry: _Pending) -> Text:
        assert entry.task is not None and entry.task.done()
        if entry.task.cancelled() or entry.task.exception() is not None:
            return ""
        return entry.task.result() or ""

    def _commit_to_passive(self, entry: _Pending) -> None:
        chunks = split_utf8(self._bot_text(entry), MAX_TEXT_BYTES)
        first = chunks[0] if chunks else None
        outcome, _ = self._ledger.decide(entry.key, "passive", first)
        if outcome != "passive":  # a retry on another instance gave up waiting and chose the API
            self._commit_to_api(entry, decided=True)
            return
        entry.outcome = "passive"
        entry.passive_text = first
        if len(chunks) > 1:
            self._deliver_later(entry.openid, "\n".join(chunks[1:]))

    def _commit_to_api(self, entry: _Pending, decided: bool = False) -> None:
        if not decided:
            outcome, text = self._ledger.decide(entry.key, "api")
            if outcome == "passive":  # cannot happen from this instance: only its own calls choose passive
                entry.outcome, entry.passive_text = "passive", text
                return
        entry.outcome = "api"
        if entry.task is not None and entry.task.done():
            self._deliver_later(entry.openid, self._bot_text(entry))
        # Otherwise _on_bot_done delivers when the bot finishes.

    def _on_bot_done(self, entry: _Pending) -> None:
        if entry.outcome == "api":
            self._deliver_later(entry.openid, self._bot_text(entry))

    def _deliver_later(self, openid: Text, text: Text) -> None:
        if not text.strip():
            return
        if self.api_client is None:
            logger.error(
                "A reply to %s missed the passive window but no appid/secret is "
                "configured for the customer-service API; it is lost.",
                mask_openid(openid),
            )
            return
        task = asyncio.ensure_future(self._deliver(openid, text))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _deliver(self, openid: Text, text: Text) -> None:
        assert self.api_client is not None
        try:
            await self.api_client.send_text(openid, text)
        except WeChatApiError as e:
            logger.error(
                "Could not deliver a reply to %s via the customer-service API: %s",
                mask_openid(openid),
                e,
            )
        except Exception:
            logger.exception(
                "Unexpected error delivering a reply to %s.", mask_openid(openid)
            )

    async def wait_for_deliveries(self, timeout: float = 10.0) -> None:
        """Waits for replies being sent through the API (tests, shutdown)."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)
