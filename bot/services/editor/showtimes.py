"""``showtimes.csv``: replaced by an uploaded (or pasted) CSV, previewed as added/removed rows, exported.

An upload is first brought into the file's own spelling (Chinese headers, 2026/12/3, 9:30, 周五 … as
spreadsheets write them), then validated as a whole: every problem of every row is listed at once, in
Chinese, by row and column, and the uploaded table is shown with the bad rows and cells highlighted.
"""
from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlencode

from aiohttp import web

from bot.kb import editing, loader, sanity, schema, timeline
from bot.services.auth import current_user, require_role
from bot.services.editor.common import (EDIT_ROLES, PublishOptions, conflict_page, editor_of, fmt_time, int_or_none,
                                        last_change, local_now, pending_for, problem_text, publish_options,
                                        published, render)
from bot.services.editor.rasa import intents, preview
from bot.services.editor.wording import SAMPLE_QUESTIONS, SHOWTIME_COLUMNS, SHOWTIMES

COLUMNS = list(schema.ShowtimeRow.__fields__)
COLUMN_LABELS = SHOWTIME_COLUMNS
BOM = "\ufeff"  # Excel on Chinese Windows reads a CSV as GBK unless it starts with one


def _csv_text(raw: bytes) -> Tuple[str, Optional[str]]:
    """Uploaded bytes as text (UTF-8, or GB18030 as Excel saves it on Chinese Windows)."""
    try:
        text, note = raw.decode("utf-8"), None
    except UnicodeDecodeError:
        try:
            text, note = raw.decode("gb18030"), "文件不是 UTF-8 编码，已按 GB18030（Excel 中文默认）读取并转换为 UTF-8。"
        except UnicodeDecodeError:
            return "", "文件既不是 UTF-8 也不是 GB18030 编码的文本，请在 Excel 中“另存为 CSV UTF-8”。"
    text = text.lstrip(BOM).replace("\r\n", "\n").replace("\r", "\n")
    if text and not text.endswith("\n"):
        text += "\n"
    return text, note


def canonical(text: str) -> str:
    """The CSV in the file's spelling: English header, ISO dates, HH:MM, 2D/3D; one line per input line
    (blank lines kept) so row numbers stay those of the editor's spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header: List[str] = []
    for i, cells in enumerate(csv.reader(io.StringIO(text))):
        if i == 0:
            header = [schema.SHOWTIME_HEADER_ALIASES.get(c.strip(), c.strip()) for c in cells]
            writer.writerow(header)
        elif not cells:
            out.write("\n")
        else:
            writer.writerow([schema.normalise_showtime(header[j], c) if j < len(header) else c.strip()
                             for j, c in enumerate(cells)])
    return out.getvalue()


def _csv_rows(raw: bytes) -> List[Dict[str, str]]:
    return [dict(r) for r in csv.DictReader(io.StringIO(raw.decode("utf-8").lstrip(BOM)))]


@dataclass
class Row:
    """A line of the uploaded CSV as the preview table shows it."""
    line: int
    cells: List[str]
    bad: Dict[str, List[str]] = field(default_factory=dict)  # column -> problems
    other: List[str] = field(default_factory=list)            # problems of the whole row

    @property
    def problems(self) -> List[str]:
        return [f"{COLUMN_LABELS.get(c, c)}：{m}" for c, ms in self.bad.items() for m in ms] + self.other


def uploaded_rows(text: str, problems: List[loader.Problem]) -> Tuple[List[Row], List[str]]:
    """Rows of the upload with their problems attached by line and column; problems of no row (the header,
    other files) separately."""
    rows: Dict[int, Row] = {}
    reader = csv.reader(io.StringIO(text))
    next(reader, None)
    for cells in reader:
        if cells:
            rows[reader.line_num] = Row(reader.line_num, cells)
    loose = []
    for p in problems:
        row = rows.get(p.line) if p.file == SHOWTIMES else None
        if row is None:
            loose.append(problem_text(p))
        elif p.column:
            row.bad.setdefault(p.column, []).append(p.zh or p.reason)
        else:
            row.other.append(p.zh or p.reason)
    return list(rows.values()), loose


def _page(request: web.Request, status: int = 200, **context: Any) -> web.Response:
    return render(request, "editor/showtimes.html", status=status, columns=COLUMNS, column_labels=COLUMN_LABELS,
                  **context)


def _show(version: int, files: Dict[str, bytes], pending: List[Dict[str, Any]], **values: Any) -> Dict[str, Any]:
    show: Dict[str, Any] = dict(preview_hint="", rows=_csv_rows(files[SHOWTIMES]), version=version, etag="",
                                base_version=version, question=SAMPLE_QUESTIONS[SHOWTIMES], intent="",
                                intents=intents(), change=None, problems=[], upload_rows=[], bad_count=0,
                                result=None, csv_text="", digest="", note="", published=None, scheduled="",
                                previewed=False, opts=PublishOptions(), warnings=[], pending=pending)
    show.update(values)
    return show


@require_role(*EDIT_ROLES)
async def showtimes_page(request: web.Request) -> web.StreamResponse:
    version, files = await published(request)
    pending = await editor_of(request).db(pending_for, SHOWTIMES)
    return _page(request, **_show(version, files, pending, etag=editing.etag(files[SHOWTIMES].decode("utf-8")),
                                  published=int_or_none(request.query.get("published")),
                                  scheduled=request.query.get("at", "")))


@require_role(*EDIT_ROLES)
async def showtimes_csv(request: web.Request) -> web.StreamResponse:
    version, files = await published(request)
    body = BOM.encode("utf-8") + files[SHOWTIMES]
    return web.Response(body=body, content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f"attachment; filename=\"showtimes-v{version}.csv\""})


def _upload(form: Any) -> Optional[bytes]:
    upload = form.get("csv_file")
    if upload is not None and hasattr(upload, "file") and getattr(upload, "filename", ""):
        raw = upload.file.read()
        if raw:
            return raw
    text = str(form.get("csv_text") or "")
    return text.encode("utf-8") if text.strip() else None


@require_role(*EDIT_ROLES)
async def showtimes_submit(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    ed = editor_of(request)
    form = await request.post()
    op = str(form.get("op") or "preview")
    expected_etag = str(form.get("etag") or "")
    base_version = int_or_none(form.get("base_version")) or 0
    opts, opts_error = publish_options(form)
    version, files = await published(request)
    pending = await ed.db(pending_for, SHOWTIMES)
    current = files[SHOWTIMES].decode("utf-8")
    show = _show(version, files, pending, etag=expected_etag, base_version=base_version, opts=opts,
                 question=str(form.get("preview_question") or ""), intent=str(form.get("preview_intent") or ""))

    raw = _upload(form)
    if not raw:
        show["note"] = "请选择要上传的 CSV 文件（或把 CSV 内容粘贴到文本框）。"
        return _page(request, status=422, **show)
    text, note = _csv_text(raw)
    show.update(csv_text=text, note=note or "")
    if not text:
        return _page(request, status=422, **show)
    text = canonical(text)
    show["csv_text"] = text
    if editing.etag(current) != expected_etag:
        return await _conflict(request, base_version, text, "排片在您打开页面之后已被其他人发布过新的版本。")
    draft = dict(files)
    draft[SHOWTIMES] = text.encode("utf-8")
    problems: List[loader.Problem] = []
    try:
        await asyncio.to_thread(loader.validate, draft)
    except loader.KnowledgeError as exc:
        problems = exc.problems
    if problems:
        rows, loose = uploaded_rows(text, problems)
        bad = [r for r in rows if r.bad or r.other]
        show.update(upload_rows=rows, bad_count=len(bad), problems=loose +
                    [f"第{r.line}行 {m}" for r in bad for m in r.problems])
        return _page(request, status=422, **show)
    change = editing.showtime_changes(files, draft[SHOWTIMES])
    show["change"] = change
    if not change.added and not change.removed:
        show["note"] = (show["note"] + " " if show["note"] else "") + "上传的排片与当前发布的完全相同，没有需要发布的修改。"
        return _page(request, **show)
    digest = editing.etag({"etag": expected_etag, "csv": text})
    warnings = await asyncio.to_thread(sanity.warnings, files, draft, local_now())
    show.update(digest=digest, previewed=True, warnings=warnings)
    if op == "publish":
        if str(form.get("preview_digest") or "") != digest:
            show["note"] = "内容在预览之后又有改动：请核对下面新的预览，再点“发布”。"
        elif opts_error:
            show["note"] = opts_error
        elif warnings and not opts.confirmed:
            show["note"] = "发布前请核对下面的提醒，确认无误后勾选“我已核对”，再点“发布”。"
        else:
            return await _publish(request, identity.username, text, expected_etag, opts, show)
    show["result"] = await preview(request, show["question"], show["intent"], draft, files)
    return _page(request, **show)


def _delta_rows(change: editing.ShowtimeChange) -> List[Dict[str, str]]:
    def text(rows: List[Dict[str, str]]) -> str:
        return "\n".join(" ".join(r.values()) for r in rows)
    return ([{"field": "added", "before": "", "after": text(change.added)}] if change.added else []) + \
        ([{"field": "removed", "before": text(change.removed), "after": ""}] if change.removed else [])


async def _conflict(request: web.Request, base_version: int, text: str, reason: str) -> web.Response:
    """409 with the showtimes the other editor added/removed since this page was loaded, and this upload's."""
    def load(s):
        e = timeline.entry(s, base_version) if base_version else None
        shown = {k: v.encode("utf-8") for k, v in timeline.files_through(s, e).items()} if e else None
        now = loader.current_files(s)
        return shown, now, last_change(s, SHOWTIMES, None)
    shown, now, who = await editor_of(request).db(load)
    theirs = _delta_rows(editing.showtime_changes(shown, now[SHOWTIMES])) if shown else []
    yours = _delta_rows(editing.showtime_changes(shown or now, text.encode("utf-8")))
    return conflict_page(request, what="排片（showtimes.csv）", reload_url="/editor/showtimes", who=who,
                         submitted=yours, theirs=theirs, reason=reason)


async def _publish(request: web.Request, actor: str, text: str, expected_etag: str, opts: PublishOptions,
                   show: Dict[str, Any]) -> web.StreamResponse:
    def publish(s):
        now = loader.version_id(s)
        if editing.etag(loader.current_files(s)[SHOWTIMES].decode("utf-8")) != expected_etag:
            raise editing.Conflict(SHOWTIMES)
        new_files = dict(loader.current_files(s, opts.at))
        new_files[SHOWTIMES] = text.encode("utf-8")
        delta = editing.showtime_changes(loader.current_files(s, opts.at), new_files[SHOWTIMES])
        new = editing.publish_edit(s, new_files, actor=actor, entity=SHOWTIMES, entity_id="upload",
                                   action="replace", before={"removed": delta.removed},
                                   after={"added": delta.added}, base_version=now, effective_at=opts.at,
                                   comment=opts.comment or f"排片：新增{len(delta.added)}场，删除{len(delta.removed)}场")
        return new.id if new is not None else now
    try:
        new_version = await editor_of(request).db(publish, locked=True)
    except editing.Conflict:
        return await _conflict(request, int(show["base_version"] or 0), text, "排片在您预览之后已被其他人发布过新的版本。")
    except loader.KnowledgeError as exc:
        show["problems"] = [problem_text(p) for p in exc.problems]
        return _page(request, status=422, **show)
    query = {"published": new_version, **({"at": fmt_time(opts.at)[:16]} if opts.at else {})}
    raise web.HTTPSeeOther(f"/editor/showtimes?{urlencode(query)}")
