"""Scheduled versions, the knowledge in effect per file, undoing one file's change, the three-way merge."""
from __future__ import annotations

import datetime as dt

import pytest

from bot.db import session_scope
from bot.kb import loader, timeline
from bot.kb.merge import merge3
from bot.kb.store import KnowledgeStore
from bot.db import session_factory
from bot.models import utcnow


def _files(url):
    with session_scope(url) as s:
        return loader.current_files(s)


def _with(files, name, old, new):
    text = files[name].decode("utf-8")
    assert old in text, (name, old)
    out = dict(files)
    out[name] = text.replace(old, new, 1).encode("utf-8")
    return out


def _clock(monkeypatch, at):
    """Move the timeline's idea of now (what every reader uses) to ``at``."""
    monkeypatch.setattr(timeline, "utcnow", lambda: at)
    monkeypatch.setattr(loader, "utcnow", lambda: at)


def test_merge3_combines_separate_lines_and_refuses_the_same_line():
    base = "a: 1\nb: 2\nc: 3\n"
    assert merge3(base, "a: 9\nb: 2\nc: 3\n", "a: 1\nb: 2\nc: 7\n") == "a: 9\nb: 2\nc: 7\n"
    assert merge3(base, "a: 9\nb: 2\nc: 3\n", "a: 8\nb: 2\nc: 3\n") is None
    assert merge3(base, base, "x\n" + base) == "x\n" + base


def test_a_scheduled_price_takes_effect_at_its_moment_and_keeps_a_later_unrelated_change(kb_url, monkeypatch):
    now = utcnow()
    friday = now + dt.timedelta(days=3)
    store = KnowledgeStore(session_factory(kb_url))
    start = store.get()
    fee = 5
    assert start.section("parking")["fee_per_hour"] == fee
    with session_scope(kb_url) as s:
        scheduled = loader.publish(s, _with(_files(kb_url), "parking.yml", f"fee_per_hour: {fee}", "fee_per_hour: 8"),
                                   author="ed", effective_at=friday)
        sid = scheduled.id
    # nothing changes before the moment; the version list knows it is still to come
    assert store.get().section("parking")["fee_per_hour"] == fee
    with session_scope(kb_url) as s:
        assert [e.id for e in timeline.pending(s)] == [sid]
        assert timeline.current_version_id(s) == start.version
    # an unrelated change published meanwhile, at once
    with session_scope(kb_url) as s:
        files = _files(kb_url)
        cinema = files["cinema.yml"].decode("utf-8")
        line = next(ln for ln in cinema.splitlines() if ln.startswith("hotline:"))
        loader.publish(s, _with(files, "cinema.yml", line, 'hotline: "400-000-0000"'), author="ed2")
    assert store.get().section("cinema")["hotline"] == "400-000-0000"
    # the moment comes: every reader computes the scheduled fee, and the hotline change stays
    _clock(monkeypatch, friday + dt.timedelta(seconds=1))
    k = store.get()
    assert k.version == sid
    assert k.section("parking")["fee_per_hour"] == 8
    assert k.section("cinema")["hotline"] == "400-000-0000"


def test_an_immediate_change_is_merged_into_a_scheduled_version_of_the_same_file(kb_url, monkeypatch):
    friday = utcnow() + dt.timedelta(days=3)
    files = _files(kb_url)
    text = files["parking.yml"].decode("utf-8")
    cap = next(ln for ln in text.splitlines() if ln.startswith("daily_cap:"))
    with session_scope(kb_url) as s:
        loader.publish(s, _with(files, "parking.yml", "fee_per_hour: 5", "fee_per_hour: 8"), effective_at=friday)
    with session_scope(kb_url) as s:  # same file, another line, now
        loader.publish(s, _with(_files(kb_url), "parking.yml", cap, "daily_cap: 50"))
    assert b"fee_per_hour: 5" in _files(kb_url)["parking.yml"]
    with session_scope(kb_url) as s:  # the same line as the scheduled change: refused, nothing written
        before = loader.version_id(s)
        with pytest.raises(loader.ScheduleConflict):
            loader.publish(s, _with(_files(kb_url), "parking.yml", "fee_per_hour: 5", "fee_per_hour: 6"))
        s.rollback()
    with session_scope(kb_url) as s:
        assert loader.version_id(s) == before
    _clock(monkeypatch, friday + dt.timedelta(minutes=1))
    later = _files(kb_url)["parking.yml"]
    assert b"fee_per_hour: 8" in later and b"daily_cap: 50" in later


def test_cancelling_a_scheduled_version(kb_url, monkeypatch):
    friday = utcnow() + dt.timedelta(days=3)
    with session_scope(kb_url) as s:
        vid = loader.publish(s, _with(_files(kb_url), "parking.yml", "fee_per_hour: 5", "fee_per_hour: 8"),
                             effective_at=friday).id
    with session_scope(kb_url) as s:
        loader.cancel(s, vid, actor="ed")
    _clock(monkeypatch, friday + dt.timedelta(minutes=1))
    assert b"fee_per_hour: 5" in _files(kb_url)["parking.yml"]
    with session_scope(kb_url) as s, pytest.raises(loader.KnowledgeError):
        loader.cancel(s, vid, actor="ed")


def test_undoing_one_files_change_keeps_later_changes(kb_url):
    files = _files(kb_url)
    with session_scope(kb_url) as s:  # one version changes two files
        both = _with(_with(files, "parking.yml", "fee_per_hour: 5", "fee_per_hour: 7"),
                     "lost_found.yml", "keep_days: 30", "keep_days: 60")
        v = loader.publish(s, _with(both, "parking.yml", "height_limit: 2.1米", "height_limit: 2.0米")).id
    with session_scope(kb_url) as s:  # a later change of another line of the same file
        loader.publish(s, _with(_files(kb_url), "parking.yml", "chargers: B2层", "chargers: B3层"))
    with session_scope(kb_url) as s:
        loader.revert_file(s, v, "parking.yml", author="ed")
    now = _files(kb_url)["parking.yml"].decode("utf-8")
    assert "fee_per_hour: 5" in now and "height_limit: 2.1米" in now and "chargers: B3层" in now
    with session_scope(kb_url) as s:  # undoing it again has nothing left to undo on those lines: no-op
        assert loader.revert_file(s, v, "parking.yml") is None
