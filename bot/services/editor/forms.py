"""The overview, the record lists and the edit form of records and documents: preview, then publish.

Nothing is stored between the two requests: the draft travels in the form itself, plus a digest of what
was previewed, so what is published is exactly what was previewed. Publishing re-applies the change to
the files current *now* (edits of other records published meanwhile are kept); a record changed since the
page was loaded is a conflict (409), never a silent overwrite.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlencode

from aiohttp import web

from bot.kb import editing, loader, sanity, timeline
from bot.services.auth import current_user, require_role
from bot.services.editor.common import (EDIT_ROLES, PublishOptions, conflict_page, doc_url, document_of, editor_of,
                                        fmt_time, int_or_none, kind_of, last_change, local_now, pending_for,
                                        problem_text, publish_options, published, record_url, render, version_row)
from bot.services.editor.fields import (FieldSpec, build_values, changes, document_fields, document_specs,
                                        field_problems, form_texts, json_text, map_keys, plain,
                                        record_specs)
from bot.services.editor.rasa import intents, preview
from bot.services.editor.wording import (ACTION_LABELS, DOC_LABELS, KIND_LABELS, PREVIEW_HINTS, SAMPLE_QUESTIONS,
                                         SECTIONS, SHOWTIMES, SUMMARY_FIELDS, field_label)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- pages: overview and lists
@require_role(*EDIT_ROLES)
async def index(request: web.Request) -> web.StreamResponse:
    ed = editor_of(request)

    def load(s):
        return version_row(s), loader.current_files(s), pending_for(s)
    version, files, pending = await ed.db(load)
    counts: Dict[str, int] = {}
    if files:
        for kind in editing.RECORDS:
            try:
                counts[kind] = len(editing.list_records(files, kind))
            except Exception:
                counts[kind] = 0
        counts[SHOWTIMES] = max(0, files.get(SHOWTIMES, b"").decode("utf-8").strip().count("\n"))
    sections = []
    for title, items in SECTIONS:
        links = []
        for how, target in items:
            if how == "records":
                links.append({"href": f"/editor/records/{target}", "label": KIND_LABELS[target],
                              "count": counts.get(target), "file": editing.RECORDS[target][0]})
            elif how == "document":
                links.append({"href": doc_url(target), "label": DOC_LABELS[target], "count": None, "file": target})
            else:
                links.append({"href": "/editor/showtimes", "label": "排片（CSV 批量上传）", "count": counts.get(SHOWTIMES),
                              "file": SHOWTIMES})
        sections.append({"title": title, "links": links})
    return render(request, "editor/index.html", version=version, sections=sections, empty=not files, pending=pending)


def _summary(value: Any) -> str:
    text = json_text(plain(value)) if not isinstance(value, list) else "、".join(str(v) for v in value)
    return text if len(text) <= 60 else text[:58] + "…"


@require_role(*EDIT_ROLES)
async def records_page(request: web.Request) -> web.StreamResponse:
    kind = kind_of(request)
    version, files = await published(request)
    _, _, id_field = editing.RECORDS[kind]
    columns = SUMMARY_FIELDS.get(kind, [])
    rows = []
    for record in editing.list_records(files, kind):
        rid = record.get(id_field)
        rows.append({"id": rid, "href": record_url(kind, rid),
                     "cells": [_summary(record.get(c)) if record.get(c) is not None else "" for c in columns]})
    return render(request, "editor/records.html", kind=kind, kind_label=KIND_LABELS[kind], id_field=id_field,
                  id_label=field_label(id_field), columns=[field_label(c) for c in columns], rows=rows,
                  file=editing.RECORDS[kind][0], version=version, new_url=record_url(kind, None),
                  deleted=request.query.get("deleted"))


# --------------------------------------------------------------------------- the edit form (records and documents)
@dataclass
class Target:
    """What a form edits: a record of ``kind`` (``record_id`` None = a new one) or fields of document ``name``."""
    kind: Optional[str] = None
    record_id: Optional[str] = None
    name: Optional[str] = None

    @property
    def file(self) -> str:
        return editing.RECORDS[self.kind][0] if self.kind else self.name  # type: ignore[return-value]

    @property
    def url(self) -> str:
        return record_url(self.kind, self.record_id) if self.kind else doc_url(self.name)  # type: ignore[arg-type]

    @property
    def entity(self) -> str:
        return self.kind or self.name  # type: ignore[return-value]

    @property
    def title(self) -> str:
        if self.kind:
            label = KIND_LABELS[self.kind]
            return f"新增{label}" if self.record_id is None else f"{label}：{self.record_id}"
        return DOC_LABELS[self.name]  # type: ignore[index]

    def sample(self) -> str:
        if self.kind == "films" and self.record_id:
            return f"{self.record_id}讲的是什么"
        return SAMPLE_QUESTIONS.get(self.entity, "")

    def current(self, files: Dict[str, bytes]) -> Tuple[Dict[str, Any], str]:
        """The stored values and their etag (raises ``editing.NotFound``)."""
        if self.kind:
            if self.record_id is None:
                return {}, ""
            return editing.get_record(files, self.kind, self.record_id)
        doc, _ = editing.get_document(files, self.name)  # type: ignore[arg-type]
        shown = {k: doc[k] for k in document_fields(self.name) if k in doc}  # type: ignore[arg-type]
        return shown, editing.etag(shown)

    def specs(self, values: Dict[str, Any], files: Dict[str, bytes]) -> List[FieldSpec]:
        keys = map_keys(files)
        return (record_specs(self.kind, values, keys) if self.kind
                else document_specs(self.name, values, keys))  # type: ignore[arg-type]


@dataclass
class Draft:
    """The result of applying a form to the published files."""
    files: Dict[str, bytes]
    before: Optional[Dict[str, Any]]
    after: Dict[str, Any]
    entity_id: str
    action: str
    changed: bool


def apply_form(target: Target, files: Dict[str, bytes], values: Dict[str, Any], expected_etag: str,
               delete: bool = False) -> Draft:
    """The files with the form's values applied; ``editing.Conflict`` when the stored values changed since
    ``expected_etag`` was read, ``editing.NotFound`` when the record is gone."""
    if target.kind:
        _, _, id_field = editing.RECORDS[target.kind]
        if delete:
            new, before = editing.delete_record(files, target.kind, target.record_id, expected_etag)  # type: ignore[arg-type]
            return Draft(new, before, {}, str(target.record_id), "delete", True)
        new_id = values.get(id_field)
        if target.record_id is None:
            new, _ = editing.put_record(files, target.kind, None, values, None)
            return Draft(new, None, plain(values), str(new_id), "create", True)
        if target.record_id is not None and str(new_id) != str(target.record_id) and new_id is not None:
            if any(str(r.get(id_field)) == str(new_id) for r in editing.list_records(files, target.kind)):
                raise DuplicateId(str(new_id))
        new, before = editing.put_record(files, target.kind, target.record_id, values, expected_etag)
        after = plain(values)
        return Draft(new, before, after, str(target.record_id), "update", plain(before) != after)
    shown, tag = target.current(files)
    if tag != expected_etag:
        raise editing.Conflict(target.name)
    changed: Dict[str, Any] = {}
    for k in [*shown, *(k for k in values if k not in shown)]:
        value = values.get(k)  # a field left empty that has no empty value becomes null: the validator says so
        if plain(value) == plain(shown.get(k)):
            continue
        if k not in shown and value in (None, "", []):
            continue
        changed[k] = value
    if not changed:
        return Draft(files, {}, {}, "", "update", False)
    new, before = editing.put_document_fields(files, target.name, changed, None)  # type: ignore[arg-type]
    return Draft(new, before, plain(changed), ",".join(changed)[:128], "update", True)


class DuplicateId(Exception):
    pass


def _digest(target: Target, expected_etag: str, draft: Draft) -> str:
    return editing.etag({"entity": target.entity, "id": target.record_id, "etag": expected_etag,
                         "action": draft.action, "after": draft.after})


def _locate(target: Target, files: Dict[str, bytes], values: Dict[str, Any]) -> List[str]:
    """loc prefix of the edited record in the (draft) file, for attaching problems to inputs."""
    if not target.kind:
        return []
    _, key, id_field = editing.RECORDS[target.kind]
    try:
        records = editing.list_records(files, target.kind)
    except Exception:
        return [key]
    wanted = str(values.get(id_field))
    for i, r in enumerate(records):
        if str(r.get(id_field)) == wanted:
            return [key, str(i)]
    return [key, str(len(records) - 1)]


async def _form_target(request: web.Request) -> Target:
    if "name" in request.match_info:
        return Target(name=document_of(request))
    kind = kind_of(request)
    rid = request.match_info.get("rid")
    return Target(kind=kind, record_id=rid)


async def form_page(request: web.Request) -> web.StreamResponse:
    target = await _form_target(request)
    version, files = await published(request)
    try:
        values, tag = target.current(files)
    except editing.NotFound:
        raise web.HTTPNotFound(text="没有这条记录（可能已被删除）")
    specs = target.specs(values, files)
    return await _render_form(request, target, specs=specs, texts=form_texts(specs, values), etag=tag,
                              base_version=version, current_version=version, question=target.sample(),
                              published=int_or_none(request.query.get("published")),
                              scheduled=request.query.get("at", ""))


async def _render_form(request: web.Request, target: Target, *, specs: List[FieldSpec], texts: Dict[str, str],
                       etag: str, base_version: int, current_version: int, question: str = "", intent: str = "",
                       status: int = 200, problems: Optional[List[str]] = None, field_problems=None,
                       form_errors: Optional[List[str]] = None, diff: Optional[List[Dict[str, str]]] = None,
                       result: Optional[Dict[str, Any]] = None, digest: str = "", note: str = "",
                       published: Optional[int] = None, previewed: bool = False, scheduled: str = "",
                       opts: PublishOptions = PublishOptions(), warnings: Optional[List[str]] = None) -> web.Response:
    pending = await editor_of(request).db(pending_for, target.file)
    return render(request, "editor/form.html", status=status, target=target, title=target.title, specs=specs,
                  texts=texts, etag=etag, base_version=base_version, current_version=current_version,
                  question=question, intent=intent, intents=intents(), problems=problems or [],
                  field_problems=field_problems or {}, form_errors=form_errors or [], diff=diff or [],
                  result=result, digest=digest, note=note, published=published, previewed=previewed,
                  scheduled=scheduled, opts=opts, warnings=warnings or [], pending=pending,
                  file=target.file, is_new=target.kind is not None and target.record_id is None,
                  can_delete=target.kind is not None and target.record_id is not None,
                  back_url=f"/editor/records/{target.kind}" if target.kind else "/editor/",
                  back_label=KIND_LABELS[target.kind] if target.kind else "概览", field_label=field_label,
                  preview_hint=PREVIEW_HINTS.get(target.entity, ""))


def _shown_values(s, target: Target, base_version: int) -> Optional[Dict[str, Any]]:
    """The values the editor's page showed (the knowledge in effect at ``base_version``), for conflicts."""
    e = timeline.entry(s, base_version) if base_version else None
    if e is None:
        return None
    try:
        values, _ = target.current({k: v.encode("utf-8") for k, v in timeline.files_through(s, e).items()})
    except (editing.NotFound, KeyError):
        return None
    return values


async def _conflict(request: web.Request, target: Target, base_version: int, mine: Optional[Dict[str, Any]],
                    reason: str = "") -> web.Response:
    """The conflict page: what this editor changed and what the other editor changed, field by field."""
    def load(s):
        shown = _shown_values(s, target, base_version)
        now = loader.current_files(s)
        try:
            current, _ = target.current(now)
        except editing.NotFound:
            current = None
        return shown, current, last_change(s, target.entity, target.record_id)
    shown, current, who = await editor_of(request).db(load)
    theirs = changes(shown, current) if shown is not None and current is not None else []
    yours = changes(shown if shown is not None else current, mine) if mine is not None else []
    return conflict_page(request, what=target.title, reload_url=target.url if current is not None or not target.kind
                         else f"/editor/records/{target.kind}", who=who, submitted=yours, theirs=theirs,
                         deleted=current is None and target.kind is not None and target.record_id is not None,
                         reason=reason)


async def form_submit(request: web.Request) -> web.StreamResponse:
    identity = current_user(request)
    target = await _form_target(request)
    form = await request.post()
    op = str(form.get("op") or "preview")
    expected_etag = str(form.get("etag") or "")
    base_version = int_or_none(form.get("base_version")) or 0
    question = str(form.get("preview_question") or "")
    chosen_intent = str(form.get("preview_intent") or "")
    opts, opts_error = publish_options(form)
    version, files = await published(request)

    try:
        original, current_tag = target.current(files)
    except editing.NotFound:
        return await _conflict(request, target, base_version, None, reason="这条记录已被其他人删除或改名。")
    specs = target.specs(original, files)
    if op == "delete" and target.kind and target.record_id is not None:
        values, form_errors = original, []
    else:
        values, form_errors = build_values(specs, original, form)
    texts = form_texts(specs, values, form)
    show = dict(specs=specs, texts=texts, etag=expected_etag, base_version=base_version, current_version=version,
                question=question, intent=chosen_intent, opts=opts)

    if target.kind and target.record_id is not None and expected_etag != current_tag:
        return await _conflict(request, target, base_version, values if op != "delete" else None)
    if form_errors:
        return await _render_form(request, target, status=422, form_errors=form_errors, **show)
    try:
        draft = apply_form(target, files, values, expected_etag, delete=(op == "delete"))
    except editing.Conflict:
        if target.kind and target.record_id is None:  # a new record whose id exists
            _, _, id_field = editing.RECORDS[target.kind]
            return await _render_form(request, target, status=422, form_errors=[
                f"已经有{field_label(id_field)}为「{values.get(id_field)}」的记录，请换一个或直接编辑那条记录。"], **show)
        return await _conflict(request, target, base_version, values)
    except DuplicateId as exc:
        _, _, id_field = editing.RECORDS[target.kind]  # type: ignore[index]
        return await _render_form(request, target, status=422, form_errors=[
            f"已经有{field_label(id_field)}为「{exc}」的记录，不能改成重复的。"], **show)

    problems: List[loader.Problem] = []
    try:
        await asyncio.to_thread(loader.validate, draft.files)
    except loader.KnowledgeError as exc:
        problems = exc.problems
    if problems:
        prefix = _locate(target, draft.files, values)
        return await _render_form(request, target, status=422, problems=[problem_text(p) for p in problems],
                                  field_problems=field_problems(problems, target.file, prefix, specs), **show)
    if not draft.changed:
        result = await preview(request, question, chosen_intent, draft.files, files)
        return await _render_form(request, target, result=result, note="与当前发布的内容相同，没有需要发布的修改。", **show)

    digest = _digest(target, expected_etag, draft)
    warnings = await asyncio.to_thread(sanity.warnings, files, draft.files, local_now())
    show["warnings"] = warnings
    if op in ("publish", "delete"):
        note = ""
        if op == "publish" and str(form.get("preview_digest") or "") != digest:
            note = "内容在预览之后又有改动：请核对下面新的预览，再点“发布”。"
        elif opts_error:
            note = opts_error
        elif op == "publish" and warnings and not opts.confirmed:
            note = "发布前请核对下面的提醒，确认无误后勾选“我已核对”，再点“发布”。"
        if note:
            result = await preview(request, question, chosen_intent, draft.files, files)
            return await _render_form(request, target, diff=changes(draft.before, draft.after), result=result,
                                      digest=digest, previewed=True, note=note, **show)
        return await _publish_form(request, identity.username, target, values, expected_etag, base_version,
                                   delete=(op == "delete"), opts=opts)
    result = await preview(request, question, chosen_intent, draft.files, files)
    return await _render_form(request, target, diff=changes(draft.before, draft.after), result=result, digest=digest,
                              previewed=True, **show)


async def _publish_form(request: web.Request, actor: str, target: Target, values: Dict[str, Any],
                        expected_etag: str, base_version: int, delete: bool, opts: PublishOptions) -> web.StreamResponse:
    ed = editor_of(request)

    def publish(s):
        version = loader.version_id(s)
        files = loader.current_files(s, opts.at)  # a scheduled change is made on the knowledge of its moment
        draft = apply_form(target, files, values, expected_etag, delete=delete)
        new = editing.publish_edit(s, draft.files, actor=actor, entity=target.entity[:64],
                                   entity_id=draft.entity_id[:128], action=draft.action, before=draft.before,
                                   after=draft.after if not delete else None, base_version=version,
                                   comment=opts.comment or _comment(target, draft, base_version, version),
                                   effective_at=opts.at)
        return new.id if new is not None else timeline.current_version_id(s)

    try:
        new_version = await ed.db(publish, locked=True)
    except (editing.Conflict, editing.NotFound):
        return await _conflict(request, target, base_version, values if not delete else None)
    except loader.KnowledgeError as exc:  # valid at preview, invalid on top of a newer (or a scheduled) version
        version, files = await published(request)
        original, _ = target.current(files)
        specs = target.specs(original, files)
        return await _render_form(request, target, status=422, specs=specs,
                                  texts=form_texts(specs, values, await request.post()), etag=expected_etag,
                                  base_version=base_version, current_version=version, opts=opts,
                                  problems=[problem_text(p) for p in exc.problems])
    log.info("editor: %s published %s %s as version %s%s", actor, target.entity, target.record_id or "", new_version,
             f" effective {opts.at:%Y-%m-%d %H:%M} UTC" if opts.at else "")
    if delete:
        raise web.HTTPSeeOther(f"/editor/records/{target.kind}?{urlencode({'deleted': target.record_id})}")
    url = target.url
    if target.kind:
        _, _, id_field = editing.RECORDS[target.kind]
        url = record_url(target.kind, values.get(id_field))
    query = {"published": new_version, **({"at": fmt_time(opts.at)[:16]} if opts.at else {})}
    raise web.HTTPSeeOther(f"{url}?{urlencode(query)}")


def _comment(target: Target, draft: Draft, base_version: int, version: int) -> str:
    what = KIND_LABELS.get(target.kind or "", "") or DOC_LABELS.get(target.name or "", "")
    text = f"{ACTION_LABELS.get(draft.action, draft.action)}{what} {draft.entity_id}".strip()
    if base_version and base_version != version:
        text += f"（页面载入于版本 {base_version}）"
    return text[:255]


@require_role(*EDIT_ROLES)
async def record_form(request: web.Request) -> web.StreamResponse:
    if request.method == "POST":
        return await form_submit(request)
    return await form_page(request)


@require_role(*EDIT_ROLES)
async def new_record_form(request: web.Request) -> web.StreamResponse:
    if request.method == "POST":
        return await form_submit(request)
    return await form_page(request)


@require_role(*EDIT_ROLES)
async def document_form(request: web.Request) -> web.StreamResponse:
    if request.method == "POST":
        return await form_submit(request)
    return await form_page(request)

