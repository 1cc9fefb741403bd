"""``showtimes.csv``: replaced by an uploaded (or pasted) CSV, previewed as added/removed rows, exported."""
from __future__ import annotations

import asyncio
import csv
import io
from typing import Dict, List, Optional, Tuple

from aiohttp import web

from bot.kb import editing, loader
from bot.services.auth import current_user, require_role
from bot.services.editor.common import (EDIT_ROLES, conflict_page, editor_of, int_or_none, last_change,
                                        published, render)
from bot.services.editor.rasa import intents, preview
from bot.services.editor.wording import SAMPLE_QUESTIONS, SHOWTIMES


def _csv_text(raw: bytes) -> Tuple[str, Optional[str]]:
    """Uploaded bytes as text (UTF-8, or GB18030 as Excel saves it on Chinese Windows)."""
    try:
        text, note = raw.decode("utf-8"), None
    except UnicodeDecodeError:
        try:
            text, note = raw.decode("gb18030"), "文件不是 UTF-8 编码，已按 GB18030（Excel 中文默认）读取并转换为 UTF-8。"
        except UnicodeDecodeError:
            return "", "文件既不是 UTF-8 也不是 GB18030 编码的文本，请在 Excel 中“另存为 CSV UTF-8”。"
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if text and not text.endswith("\n"):
        text += "\n"
    return text, note


def _csv_rows(raw: bytes) -> List[Dict[str, str]]:
    return [dict(r) for r in csv.DictReader(io.StringIO(raw.decode("utf-8").lstrip("\ufeff")))]


@require_role(*EDIT_ROLES)
async def showtimes_page(request: web.Request) -> web.StreamResponse:
    version, files = await published(request)
    return render(request, "editor/showtimes.html", preview_hint="", rows=_csv_rows(files[SHOWTIMES]), version=version,
                  etag=editing.etag(files[SHOWTIMES].decode("utf-8")), base_version=version, question=SAMPLE_QUESTIONS[SHOWTIMES],
                  intent="", intents=intents(), change=None, problems=[], result=None, csv_text="", digest="",
                  note="", published=int_or_none(request.query.get("published")), previewed=False)


@require_role(*EDIT_ROLES)
async def showtimes_csv(request: web.Request) -> web.StreamResponse:
    version, files = await published(request)
    return web.Response(body=files[SHOWTIMES], content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f"attachment; filename=\"showtimes-v{version}.csv\""})


@require_role(*EDIT_ROLES)
async def showtimes_submit(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    ed = editor_of(request)
    form = await request.post()
    op = str(form.get("op") or "preview")
    expected_etag = str(form.get("etag") or "")
    base_version = int_or_none(form.get("base_version")) or 0
    question = str(form.get("preview_question") or "")
    chosen_intent = str(form.get("preview_intent") or "")
    version, files = await published(request)
    current = files[SHOWTIMES].decode("utf-8")

    upload = form.get("csv_file")
    raw: Optional[bytes] = None
    if upload is not None and hasattr(upload, "file") and getattr(upload, "filename", ""):
        raw = upload.file.read()
    if not raw and str(form.get("csv_text") or "").strip():
        raw = str(form.get("csv_text")).encode("utf-8")
    show = dict(preview_hint="", rows=_csv_rows(files[SHOWTIMES]), version=version, etag=expected_etag, base_version=base_version,
                question=question, intent=chosen_intent, intents=intents(), change=None, problems=[], result=None,
                csv_text="", digest="", note="", published=None, previewed=False)
    if not raw:
        show["note"] = "请选择要上传的 CSV 文件（或把 CSV 内容粘贴到文本框）。"
        return render(request, "editor/showtimes.html", status=422, **show)
    text, note = _csv_text(raw)
    show.update(csv_text=text, note=note or "")
    if not text:
        return render(request, "editor/showtimes.html", status=422, **show)
    if editing.etag(current) != expected_etag:
        who = await ed.db(last_change, SHOWTIMES, None)
        return conflict_page(request, what="排片（showtimes.csv）", reload_url="/editor/showtimes", who=who,
                             submitted=[], reason="排片在您打开页面之后已被其他人发布过新的版本。")
    draft = dict(files)
    draft[SHOWTIMES] = text.encode("utf-8")
    try:
        change = editing.showtime_changes(files, draft[SHOWTIMES])
    except Exception as exc:
        change = None
        show["problems"] = [f"{SHOWTIMES}:1: 无法读取 CSV：{exc}"]
    try:
        await asyncio.to_thread(loader.validate, draft)
    except loader.KnowledgeError as exc:
        show["problems"] = [str(p) for p in exc.problems]
    show["change"] = change
    if show["problems"]:
        return render(request, "editor/showtimes.html", status=422, **show)
    if not change.added and not change.removed:  # type: ignore[union-attr]
        show["note"] = (show["note"] + " " if show["note"] else "") + "上传的排片与当前发布的完全相同，没有需要发布的修改。"
        return render(request, "editor/showtimes.html", **show)
    digest = editing.etag({"etag": expected_etag, "csv": text})
    show.update(digest=digest, previewed=True)
    if op == "publish" and str(form.get("preview_digest") or "") == digest:
        def publish(s):
            now = loader.version_id(s)
            latest = loader.current_files(s)
            if editing.etag(latest[SHOWTIMES].decode("utf-8")) != expected_etag:
                raise editing.Conflict(SHOWTIMES)
            new_files = dict(latest)
            new_files[SHOWTIMES] = text.encode("utf-8")
            delta = editing.showtime_changes(latest, new_files[SHOWTIMES])
            new = editing.publish_edit(s, new_files, actor=identity.username, entity=SHOWTIMES, entity_id="upload",
                                       action="replace", before={"removed": delta.removed},
                                       after={"added": delta.added}, base_version=now,
                                       comment=f"排片：新增{len(delta.added)}场，删除{len(delta.removed)}场")
            return new.id if new is not None else now
        try:
            new_version = await ed.db(publish, locked=True)
        except editing.Conflict:
            who = await ed.db(last_change, SHOWTIMES, None)
            return conflict_page(request, what="排片（showtimes.csv）", reload_url="/editor/showtimes", who=who,
                                 submitted=[], reason="排片在您预览之后已被其他人发布过新的版本。")
        except loader.KnowledgeError as exc:
            show["problems"] = [str(p) for p in exc.problems]
            return render(request, "editor/showtimes.html", status=422, **show)
        raise web.HTTPSeeOther(f"/editor/showtimes?published={new_version}")
    if op == "publish":
        show["note"] = "内容在预览之后又有改动：请核对下面新的预览，再点“发布”。"
    show["result"] = await preview(request, question, chosen_intent, draft, files)
    return render(request, "editor/showtimes.html", **show)

