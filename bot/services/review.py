"""Review queue pages of the editor (``/editor/review``; roles editor and supervisor).

The messages the bot missed are read from the analytics turns the event consumer writes
(``bot.analytics.read.missed_messages``, like the desk statistics) each time the queue is opened — at most
every ``SYNC_EVERY_S`` seconds, or at once with 「刷新」 — and kept in the database (``bot.review.queue``).
An editor assigns a message

- to an **intent**: stored with who/when; ``python -m bot.review export`` writes it to
  ``data/nlu/reviewed.yml`` for the next training;
- to a **specific question** of ``questions.yml``: the phrasing is appended to its examples and published
  as a new knowledge version (audited like every edit); the bot answers the next such message at once;

or dismisses it. Forms post with the session's CSRF token like every editor page; ``Accept:
application/json`` gets JSON answers instead of redirects. ``GET /editor/review/api/items`` lists the queue.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from bot.analytics import read as analytics
from bot.kb import editing, loader
from bot.review import queue, training
from bot.services.auth import current_user, require_role
from bot.services.editor.common import EDIT_ROLES, editor_of, fmt_time, render
from bot.services.editor.common import int_or_none as _int

log = logging.getLogger(__name__)

SYNC_KEY = "xinghe.review.synced"
SYNC_EVERY_S = 30.0
SYNC_DAYS = 30           # how far back the first reading goes
SYNC_OVERLAP_S = 3600.0  # later readings re-read the last hour (sightings are counted once)
STATUS_LABELS = {"new": "待处理", "intent": "已归入意图（下次训练生效）", "facet": "已加入具体问题（已生效）",
                 "dismissed": "已忽略"}
CHANNEL_LABELS = {"wechat": "微信", "socketio": "网页聊天", "rest": "接口", "": "—"}
ERRORS = {
    "not_found": "没有这条消息。",
    "masked": "这条消息含有手机号或订单号（已遮盖），不能作为训练样例或问法，只能忽略。",
    "already_decided": "这条消息刚刚已被{detail}处理过，请看最新状态。",
    "bad_intent": "请选择一个意图。",
    "bad_facet": "请选择一个具体问题。",
    "example_short": "问法至少要 2 个字。",
    "example_long": "问法最多 80 个字（现在 {detail} 个字）：请删去与问题无关的部分再加入，或把整条消息归入意图。",
    "example_elsewhere": "这个问法已经是另一个问题（{detail}）的问法了。",
    "conflict": "知识库刚刚发布了新的版本，请重试。",
    "invalid": "加入后的知识库未通过校验，没有发布。",
}


def _sync_state(request: web.Request) -> Dict[str, float]:
    return request.app[SYNC_KEY]


async def sync(request: web.Request, force: bool = False) -> Optional[str]:
    """Read new missed messages from the analytics turns into the queue; returns the source read (or None
    when skipped because the last reading is recent)."""
    state = _sync_state(request)
    if not force and time.monotonic() - state["at"] < SYNC_EVERY_S:
        return None
    now = time.time()
    since_ts = state["until"] - SYNC_OVERLAP_S if state["until"] else now - SYNC_DAYS * 86400
    try:  # under the editor's lock: two readings in this process never insert the same text twice
        added = await editor_of(request).db(lambda s: queue.record(s, analytics.missed_messages(s, since_ts, now)),
                                            locked=True)
    except IntegrityError:  # … another desk process did, just now; the next reading counts the rest
        log.info("review: another process recorded the same messages; reading again next time")
        return "events"
    # a turn still settling (analytics.SETTLE_S) is within the overlap of the next reading
    state.update(at=time.monotonic(), until=now)
    if added:
        log.info("review: %d new missed messages from the conversation events", added)
    return "events"


def _intents() -> List[Dict[str, str]]:
    labels = training.intent_labels()
    return [{"name": i, "label": labels.get(i, i)} for i in training.domain_intents()
            if i not in queue.NOT_ASSIGNABLE_INTENTS]


def _topic_labels() -> Dict[str, str]:
    from bot.answers.topics import INTENT_TOPIC

    labels = training.intent_labels()
    return {topic: labels.get(intent, topic) for intent, topic in INTENT_TOPIC.items()}


def _item_view(item) -> Dict[str, Any]:
    return {"id": item.id, "text": item.text, "masked": item.masked, "count": item.count, "status": item.status,
            "status_label": STATUS_LABELS.get(item.status, item.status),
            "channel": CHANNEL_LABELS.get(item.channel, item.channel), "first_seen": fmt_time(item.first_seen),
            "last_seen": fmt_time(item.last_seen), "intent": item.intent, "facet_key": item.facet_key,
            "example": item.example, "assigned_by": item.assigned_by, "assigned_at": fmt_time(item.assigned_at),
            "seen_since_decided": bool(item.assigned_at and item.last_seen > item.assigned_at),
            "entities": [f"{e['value']}（{e['entity']}）" for e in item.entities or []],
            "fits_facet": queue.EXAMPLE_MIN <= len(" ".join(item.text.split())) <= queue.EXAMPLE_MAX}


def _status(request: web.Request) -> str:
    status = request.query.get("status", "new")
    return status if status in queue.STATUSES else "new"


async def _page(request: web.Request, *, status_code: int = 200, error: str = "", problems: List[str] = (),
                item_id: Optional[int] = None, source: Optional[str] = None) -> web.Response:
    status = _status(request)

    def load(s):
        files = loader.current_files(s)
        return ([_item_view(i) for i in queue.items(s, status)], queue.counts(s), queue.facet_choices(files),
                loader.version_id(s))
    rows, counts, facets, version = await editor_of(request).db(load)
    topics = _topic_labels()
    for f in facets:
        f["topic_label"] = topics.get(f["topic"], f["topic"])
    facets.sort(key=lambda f: (f["topic_label"], f["key"]))
    intents = _intents()
    return render(request, "editor/review.html", status=status_code, rows=rows, counts=counts, current=status,
                  statuses=STATUS_LABELS, intents=intents, intent_labels={i["name"]: i["label"] for i in intents},
                  facets=facets, facet_labels={f["key"]: f"{f['topic_label']} · {f['examples'][0]}" for f in facets},
                  version=version, error=error, problems=list(problems), error_item=item_id,
                  done=request.query.get("done", ""), done_item=_int(request.query.get("item")),
                  published=_int(request.query.get("published")), source=source or "",
                  example_max=queue.EXAMPLE_MAX)


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@require_role(*EDIT_ROLES)
async def review_page(request: web.Request) -> web.StreamResponse:
    source = None
    if _status(request) == "new":
        source = await sync(request, force=request.query.get("refresh") == "1")
    return await _page(request, source=source)


@require_role(*EDIT_ROLES)
async def api_items(request: web.Request) -> web.StreamResponse:
    status = _status(request)
    if status == "new":
        await sync(request, force=request.query.get("refresh") == "1")
    rows, counts = await editor_of(request).db(lambda s: ([_item_view(i) for i in queue.items(s, status)],
                                                          queue.counts(s)))
    return web.json_response({"status": status, "items": rows, "counts": counts})


@require_role(*EDIT_ROLES)
async def decide(request: web.Request) -> web.StreamResponse:
    """``POST /editor/review/{id}/{intent|facet|dismiss|reopen}`` (form fields: intent / facet, example,
    status = the status the page showed)."""
    identity = current_user(request)
    item_id = _int(request.match_info["id"])
    do = request.match_info["do"]
    form = await request.post()
    expected = str(form.get("status") or "") or None
    if item_id is None or do not in ("intent", "facet", "dismiss", "reopen"):
        raise web.HTTPNotFound(text="没有这个操作")
    actor = identity.username
    version: Optional[int] = None
    try:
        if do == "intent":
            names = [i["name"] for i in _intents()]
            await editor_of(request).db(queue.assign_intent, item_id, str(form.get("intent") or ""), actor, names,
                                        expected)
        elif do == "facet":
            version = await editor_of(request).db(queue.assign_facet, item_id, str(form.get("facet") or ""),
                                                  str(form.get("example") or ""), actor, None, expected, locked=True)
        elif do == "dismiss":
            await editor_of(request).db(queue.dismiss, item_id, actor, expected)
        else:
            await editor_of(request).db(queue.reopen, item_id, actor, expected)
    except queue.ReviewError as exc:
        return await _failed(request, exc.code, ERRORS.get(exc.code, exc.code).format(detail=exc.detail or "其他编辑"),
                             item_id, status=404 if exc.code == "not_found" else 409 if exc.code == "already_decided"
                             else 422)
    except editing.Conflict:
        return await _failed(request, "conflict", ERRORS["conflict"], item_id, status=409)
    except loader.KnowledgeError as exc:
        return await _failed(request, "invalid", ERRORS["invalid"], item_id, status=422,
                             problems=[str(p) for p in exc.problems])
    log.info("review: %s decided %s on item %s (version %s)", actor, do, item_id, version)
    if _wants_json(request):
        return web.json_response({"ok": True, "item": item_id, "done": do, "published": version})
    back = str(form.get("back") or "new")
    back = back if back in queue.STATUSES else "new"
    tail = f"&published={version}" if version else ""
    raise web.HTTPSeeOther(f"/editor/review?status={back}&done={do}&item={item_id}{tail}")


async def _failed(request: web.Request, code: str, message: str, item_id: int, *, status: int,
                  problems: List[str] = ()) -> web.StreamResponse:
    if _wants_json(request):
        return web.json_response({"error": code, "message": message, "problems": list(problems)}, status=status)
    return await _page(request, status_code=status, error=message, problems=problems, item_id=item_id)


def setup_review(app: web.Application) -> None:
    """Register the review queue's routes (after ``setup_editor``, whose state and lock it shares)."""
    app[SYNC_KEY] = {"at": 0.0, "until": 0.0}  # last reading of the tracker store (monotonic, epoch)
    r = app.router
    r.add_get("/editor/review", review_page)
    r.add_get("/editor/review/api/items", api_items)
    r.add_post("/editor/review/{id}/{do}", decide)
