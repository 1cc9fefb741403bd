"""Knowledge loader and kb CLI: validation with file/line/reason, atomic rejection, versions, rollback."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.db import session_scope
from bot.kb import cli, loader
from bot.kb.store import KnowledgeStore
from bot.db import session_factory
from tests.conftest import ROOT


@pytest.fixture()
def kdir(tmp_path) -> Path:
    d = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", d)
    return d


@pytest.fixture()
def db(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    monkeypatch.setenv("KNOWLEDGE_DB_URL", url)
    return url


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def problems(kdir: Path) -> list:
    with pytest.raises(loader.KnowledgeError) as exc:
        loader.validate(loader.read_dir(kdir))
    return [str(p) for p in exc.value.problems]


def test_shipped_knowledge_is_valid():
    parsed = loader.validate(loader.read_dir(ROOT / "knowledge"))
    assert len(parsed.docs["films.yml"].films) == 8 and len(parsed.showtimes) >= 32


def test_bad_date_in_showtimes(kdir):
    with (kdir / "showtimes.csv").open("a", encoding="utf-8") as f:
        f.write("2026-02-30,10:00,星际归途,1,2D\n")
    assert any(p.startswith("showtimes.csv:45:") and "day" in p for p in problems(kdir)), problems(kdir)


def test_unknown_hall_and_film(kdir):
    with (kdir / "showtimes.csv").open("a", encoding="utf-8") as f:
        f.write("daily,23:00,星际归途,9,2D\ndaily,23:00,不存在的电影,7,2D\n")
    found = problems(kdir)
    assert any("showtimes.csv:45: unknown hall 9" in p for p in found)
    assert any("showtimes.csv:46: unknown film" in p for p in found)


def test_negative_price_reports_line(kdir):
    edit(kdir / "prices.yml", "weekday: 70, weekend: 85", "weekday: -70, weekend: 85")
    found = problems(kdir)
    assert any(p.startswith("prices.yml:8: base.3.weekday") for p in found), found


def test_duplicate_and_overlapping_showtime(kdir):
    with (kdir / "showtimes.csv").open("a", encoding="utf-8") as f:
        f.write("daily,10:00,星际归途,1,2D\ndaily,11:00,破晓行动,1,2D\n")
    found = problems(kdir)
    assert any("showtimes.csv:45: duplicate showtime" in p for p in found), found
    assert any("showtimes.csv:46: overlaps" in p for p in found), found


def test_wrong_encoding(kdir):
    (kdir / "faq.yml").unlink(missing_ok=True)
    (kdir / "parking.yml").write_bytes("location: 地下停车场\n".encode("gbk"))
    assert any(p.startswith("parking.yml:1: file is not UTF-8") for p in problems(kdir))


def test_yaml_syntax_error_line(kdir):
    edit(kdir / "cinema.yml", "hotline: 400-820-8800", "hotline: [400-820-8800")
    assert any(p.startswith("cinema.yml:") and "YAML syntax" in p for p in problems(kdir))


def test_forbidden_phrase_in_wording(kdir):
    edit(kdir / "complaints.yml", "请您先别着急", "规定如此，请您先别着急")
    assert any("规定如此" in p for p in problems(kdir))


def test_rejected_import_keeps_old_data(kdir, db, capsys):
    assert cli.main(["import", str(kdir)]) == 0
    edit(kdir / "parking.yml", "fee_per_hour: 5", "fee_per_hour: -5")
    assert cli.main(["import", str(kdir)]) == 1
    out = capsys.readouterr().out
    assert "parking.yml:3: fee_per_hour" in out and "unchanged" in out
    k = KnowledgeStore(session_factory(db)).get()
    assert k.version == 1 and k.section("parking")["fee_per_hour"] == 5


def test_export_import_round_trip_and_rollback(kdir, db, tmp_path, capsys):
    assert cli.main(["import", str(kdir)]) == 0
    edit(kdir / "parking.yml", "fee_per_hour: 5", "fee_per_hour: 6")
    assert cli.main(["diff", str(kdir)]) == 0
    assert "+fee_per_hour: 6" in capsys.readouterr().out
    assert cli.main(["import", str(kdir)]) == 0
    out = tmp_path / "exported"
    assert cli.main(["export", str(out)]) == 0
    assert (out / "parking.yml").read_bytes() == (kdir / "parking.yml").read_bytes()
    assert cli.main(["import", str(out)]) == 0
    assert "unchanged (version 2)" in capsys.readouterr().out
    assert cli.main(["rollback", "1"]) == 0
    k = KnowledgeStore(session_factory(db)).get()
    assert k.version == 3 and k.section("parking")["fee_per_hour"] == 5
    assert cli.main(["history"]) == 0
    assert "rollback to version 1" in capsys.readouterr().out


def test_store_reload_follows_publish(kdir, db):
    store = KnowledgeStore(session_factory(db))
    with session_scope(db) as s:
        loader.publish(s, loader.read_dir(kdir))
    assert store.get().find_film("银河快递") is None
    edit(kdir / "films.yml", "  - title: 追光少年\n    aliases: [追光]",
         "  - title: 追光少年\n    aliases: [追光, 银河快递]")
    with session_scope(db) as s:
        loader.publish(s, loader.read_dir(kdir))
    assert store.get().find_film("银河快递").title == "追光少年"


def test_duplicate_lexicon_entry_reports_the_line_of_the_repeat(kdir):
    path = kdir / "lexicon.yml"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines + ["  - {to: 拿, variants: [攞], kind: 粤语}"]) + "\n", encoding="utf-8")
    found = problems(kdir)
    assert f"lexicon.yml:{len(lines) + 1}: duplicate standard word (to): 拿" in " ".join(found), found
