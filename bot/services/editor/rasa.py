"""The answer preview: Rasa's ``/model/parse`` of the sample question, then the bot's answer from the draft."""
from __future__ import annotations

import asyncio
import logging
from functools import lru_cache
from typing import Any, Dict, List, Optional, Tuple

import aiohttp
from aiohttp import web

from bot.kb import loader
from bot.services.editor.common import editor_of
from bot.services.rasa_auth import auth_headers

log = logging.getLogger(__name__)

RASA_TIMEOUT_S = 10.0


@lru_cache(maxsize=1)
def intents() -> List[str]:
    """Intents the bot answers from the knowledge (for choosing one by hand when Rasa is unreachable)."""
    try:
        from bot.answers.topics import INTENT_TOPIC

        return sorted(INTENT_TOPIC)
    except Exception:  # pragma: no cover - the answers package is part of the project
        log.exception("editor: cannot list the intents")
        return []


async def rasa_parse(settings: Any, text: str) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """``/model/parse`` of the Rasa server; ``(None, message)`` when it cannot answer."""
    base = (settings.rasa_url or "").rstrip("/")
    url = f"{base}/model/parse"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=RASA_TIMEOUT_S)) as http:
            async with http.post(url, json={"text": text}, headers=auth_headers(settings.rasa_token)) as r:
                if r.status in (401, 403):
                    return None, f"Rasa 服务拒绝了请求（HTTP {r.status}），请检查 RASA_TOKEN 设置"
                if r.status >= 400:
                    return None, f"Rasa 服务返回错误（HTTP {r.status}）"
                return await r.json(content_type=None), None
    except asyncio.TimeoutError:
        return None, f"Rasa 服务（{base}）在 {RASA_TIMEOUT_S:g} 秒内没有响应"
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return None, f"无法连接 Rasa 服务（{base}）：{type(exc).__name__}"


def _answers(files: Dict[str, bytes], question: str, parse: Dict[str, Any]) -> Tuple[List[str], Optional[str]]:
    from bot.kb.preview import preview_answer

    try:
        return preview_answer(files, question, parse), None
    except loader.KnowledgeError as exc:
        return [], "草稿未通过校验：" + "；".join(str(p) for p in exc.problems[:3])
    except Exception as exc:  # a broken draft must not break the page
        log.exception("editor: preview failed")
        return [], f"预览失败：{type(exc).__name__}: {exc}"


async def preview(request: web.Request, question: str, chosen_intent: str, draft: Dict[str, bytes],
                  published: Dict[str, bytes]) -> Optional[Dict[str, Any]]:
    """The bot's answer to ``question`` now and after publishing the draft."""
    question = question.strip()[:200]
    if not question:
        return None
    settings = editor_of(request).settings
    parse, error = await rasa_parse(settings, question)
    result: Dict[str, Any] = {"question": question, "rasa_error": error, "intent": None, "confidence": None,
                              "entities": [], "source": "rasa", "before": [], "after": [], "error": None,
                              "no_topic": False}
    if chosen_intent and chosen_intent in intents():
        parse = dict(parse or {"entities": []})
        parse["intent"] = {"name": chosen_intent, "confidence": 1.0}
        result["source"] = "manual"
    if parse is None:
        return result
    result["intent"] = (parse.get("intent") or {}).get("name")
    result["confidence"] = (parse.get("intent") or {}).get("confidence")
    result["entities"] = [f"{e.get('entity')}={e.get('value')}" for e in parse.get("entities") or []]
    parse = {"intent": parse.get("intent"), "entities": parse.get("entities") or []}
    before, _ = await asyncio.to_thread(_answers, published, question, parse)
    after, err = await asyncio.to_thread(_answers, draft, question, parse)
    result.update(before=before, after=after, error=err)
    result["no_topic"] = not after and not err
    return result

