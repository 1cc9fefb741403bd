"""Every route of the knowledge editor, in one place (``setup_editor`` is called by ``create_app``)."""
from __future__ import annotations

from aiohttp import web

from bot.services.editor import forms, login, showtimes, versions
from bot.services.editor.common import EDITOR, STATIC_DIR, Editor


async def _to_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/editor/")


def setup_editor(app: web.Application) -> Editor:
    """Register the editor's routes and state on the application."""
    ed = Editor(settings=app["xinghe.settings"])
    app[EDITOR] = ed
    r = app.router
    r.add_get("/editor/login", login.login_page)
    r.add_post("/editor/login", login.login_submit)
    r.add_post("/editor/logout", login.logout)
    r.add_get("/editor", _to_index)
    r.add_get("/editor/", forms.index)
    r.add_get("/editor/records/{kind}", forms.records_page)
    r.add_get("/editor/records/{kind}/{rid}", forms.record_form)
    r.add_post("/editor/records/{kind}/{rid}", forms.record_form)
    r.add_get("/editor/new/{kind}", forms.new_record_form)
    r.add_post("/editor/new/{kind}", forms.new_record_form)
    r.add_get("/editor/documents/{name}", forms.document_form)
    r.add_post("/editor/documents/{name}", forms.document_form)
    r.add_get("/editor/showtimes", showtimes.showtimes_page)
    r.add_post("/editor/showtimes", showtimes.showtimes_submit)
    r.add_get("/editor/showtimes.csv", showtimes.showtimes_csv)
    r.add_get("/editor/audit", versions.audit_page)
    r.add_get("/editor/versions", versions.versions_page)
    r.add_get("/editor/versions/{vid}", versions.version_page)
    r.add_post("/editor/versions/{vid}/rollback", versions.rollback_submit)
    r.add_post("/editor/versions/{vid}/revert", versions.revert_submit)
    r.add_post("/editor/versions/{vid}/cancel", versions.cancel_submit)
    r.add_static("/editor/static", STATIC_DIR, name="editor-static", append_version=True)
    return ed
