"""Editor operations: record edits with optimistic locking, CSV previews, audit, preview answers."""
from __future__ import annotations

import pytest

from bot.db import session_scope
from bot.kb import editing, loader
from bot.kb.preview import preview_answer
from bot.models import AuditLog
from tests.conftest import ROOT


@pytest.fixture()
def files():
    return loader.read_dir(ROOT / "knowledge")


def test_record_edit_keeps_comments_and_validates(files):
    record, tag = editing.get_record(files, "films", "星际归途")
    record["aliases"] = ["星际", "归途"]
    new, before = editing.put_record(files, "films", "星际归途", record, tag)
    assert before["aliases"] == ["星际"]
    assert new["films.yml"].startswith("# 在映影片".encode())
    parsed = loader.validate(new)
    assert parsed.docs["films.yml"].films[0].aliases == ["星际", "归途"]


def test_stale_etag_is_a_conflict(files):
    record, tag = editing.get_record(files, "facilities", "wifi")
    record["answer"] = "免费WiFi：Xinghe-Guest"
    first, _ = editing.put_record(files, "facilities", "wifi", record, tag)
    other = dict(record, answer="免费WiFi：Xinghe-Other")
    with pytest.raises(editing.Conflict):
        editing.put_record(first, "facilities", "wifi", other, tag)


def test_invalid_edit_is_rejected_with_line(files):
    doc, tag = editing.get_document(files, "parking.yml")
    new, _ = editing.put_document_fields(files, "parking.yml", {"fee_per_hour": -1}, tag)
    with pytest.raises(loader.KnowledgeError) as exc:
        loader.validate(new)
    assert str(exc.value.problems[0]).startswith("parking.yml:3: fee_per_hour")


def test_showtime_csv_preview(files):
    new_csv = files["showtimes.csv"].replace(b"daily,10:00,\xe6\x98\x9f\xe9\x99\x85\xe5\xbd\x92\xe9\x80\x94,1,2D\n", b"") \
        + "daily,23:30,熊猫总动员,5,2D\n".encode()
    change = editing.showtime_changes(files, new_csv)
    assert change.added == [{"day": "daily", "start": "23:30", "film": "熊猫总动员", "hall": "5", "version": "2D"}]
    assert change.removed[0]["start"] == "10:00" and change.removed[0]["film"] == "星际归途"


def test_publish_edit_audits_and_rolls_back(tmp_path, files):
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    with session_scope(url) as s:
        loader.publish(s, files)
    doc, tag = editing.get_document(files, "parking.yml")
    new, before = editing.put_document_fields(files, "parking.yml", {"daily_cap": 50}, tag)
    with session_scope(url) as s:
        editing.publish_edit(s, new, actor="editor1", entity="parking.yml", entity_id="daily_cap",
                             action="update", before=before, after={"daily_cap": 50}, base_version=1)
    with session_scope(url) as s:
        audit = s.query(AuditLog).one()
        assert (audit.actor, audit.before, audit.after) == ("editor1", {"daily_cap": 40}, {"daily_cap": 50})
        with pytest.raises(editing.Conflict):
            editing.publish_edit(s, new, actor="editor2", entity="parking.yml", entity_id="x", action="update",
                                 before=None, after=None, base_version=1)
        loader.rollback(s, 1, author="editor1")
        assert b"daily_cap: 40" in loader.current_files(s)["parking.yml"]


def test_preview_answer_uses_draft(files):
    doc, tag = editing.get_document(files, "parking.yml")
    new, _ = editing.put_document_fields(files, "parking.yml", {"fee_per_hour": 6}, tag)
    answer = preview_answer(new, "停车怎么收费", {"intent": {"name": "ask_parking"}, "entities": []})
    assert "每小时6元" in answer[0]
