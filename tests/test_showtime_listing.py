"""The showtimes answer as a patron reads it on a phone: one line per film with its times by hall type, at
most eight films, then 「查看更多」 (a payload, so a WeChat numbered choice asks the same) that lists the rest;
one film's showtimes one line per hall. The answering layer and the Rasa action on a SQLite store."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from bot.answers.ask import now
from tests.conftest import ROOT
from tests.test_answers import Chat

NEW_FILM = ("  - title: 银河快递\n    aliases: [快递]\n    genre: 科幻喜剧\n    runtime_min: 99\n    advisory: 全年龄\n"
            "    formats: [\"standard:2D\", \"standard:3D\"]\n    synopsis: 一位星际快递员必须在24小时内把一件神秘包裹送到银河尽头。\n"
            "    director: 方一舟\n    cast: [陆小满, 程远]\n    language: 国语\n    release_date: 2026-11-20\n")
TIME = re.compile(r"\d{2}:\d{2}")


@pytest.fixture()
def k(kb_url):
    from bot.kb.store import default_store

    return default_store().get()


@pytest.fixture()
def k9(kb_url):
    """The shipped store plus a ninth film (two showings a day, the later in 3D)."""
    from bot.db import session_scope
    from bot.kb import loader
    from bot.kb.store import default_store

    files = loader.read_dir(ROOT / "knowledge")
    files["films.yml"] = files["films.yml"] + NEW_FILM.encode("utf-8")
    files["showtimes.csv"] += "daily,23:30,银河快递,5,2D\ndaily,23:40,银河快递,6,3D\n".encode("utf-8")
    with session_scope(kb_url) as s:
        loader.publish(s, files, author="test")
    return default_store().get()


def _lines(reply: str):
    header, *lines = reply.split("\n")
    return header, lines


def test_a_day_is_one_line_per_film(k):
    tomorrow = now().date() + dt.timedelta(days=1)
    chat = Chat(k)
    header, lines = _lines(chat.say("明天有哪些场次", "showtimes", entities=[("date", "明天")]))
    assert f"{tomorrow.month}月{tomorrow.day}日" in header and "场次" in header
    assert len(lines) == len(k.films) == 8  # every film once: all of them fit
    for film in k.films:
        [line] = [x for x in lines if x.startswith(film.title)]
        expected = sorted(f"{s.start:%H:%M}" for s in k.showings(tomorrow) if s.film.id == film.id)
        assert sorted(TIME.findall(line)) == expected, line
    assert "熊猫总动员（普通厅）：10:10 3D / 10:40 / 14:30 / 15:30 / 19:00" in lines  # one hall type
    star = next(x for x in lines if x.startswith("星际归途"))
    assert star.startswith("星际归途：IMAX 10:00 / 15:40 3D / 21:10；杜比 13:00 3D / 18:30；巨幕 16:00"), star
    assert not chat.turn.replies.messages[-1].get("buttons")  # nothing more to see


def test_more_than_eight_films_go_on_behind_more(k9):
    tomorrow = now().date() + dt.timedelta(days=1)
    chat = Chat(k9)
    _, lines = _lines(chat.say("明天有哪些场次", "showtimes", entities=[("date", "明天")]))
    assert len(lines) == 8 and not any("银河快递" in x for x in lines)
    [more] = chat.turn.replies.messages[-1]["buttons"]
    assert more["title"] == "查看更多"
    intent, values = more["payload"].split("{", 1)
    assert intent == "/ask_showtimes"
    entities = json.loads("{" + values)
    assert entities == {"date": tomorrow.isoformat(), "film": "银河快递"}

    # the quick reply (or WeChat's 「1」) sends the payload: no words, its entities
    header, rest = _lines(chat.say("", "showtimes", 1.0, list(entities.items())))
    # one film left: its own listing, by hall
    assert header.startswith("《银河快递》") and f"{tomorrow.day}日" in header
    assert rest == ["5号厅·普通厅：23:30", "6号厅·普通厅：23:40 3D"]
    assert not chat.turn.replies.messages[-1].get("buttons")
    assert chat.ctx.values["date"]  # the day stays for a follow-up


def test_more_keeps_the_filters(k9):
    """「明天晚上有什么电影」: all nine films play in the evening; the second page is the same evening."""
    chat = Chat(k9)
    _, lines = _lines(chat.say("明天晚上有什么电影", "showtimes", entities=[("date", "明天"), ("time", "晚上")]))
    assert len(lines) == 8
    assert all(t >= "17:00" for line in lines for t in TIME.findall(line)), lines
    [more] = chat.turn.replies.messages[-1]["buttons"]
    entities = json.loads("{" + more["payload"].split("{", 1)[1])
    assert entities["time"] == "晚上" and entities["film"] == "银河快递"
    header, rest = _lines(chat.say("", "showtimes", 1.0, list(entities.items())))
    assert "晚上" in header and rest == ["5号厅·普通厅：23:30", "6号厅·普通厅：23:40 3D"]


def test_one_film_is_one_line_per_hall(k):
    chat = Chat(k)
    header, lines = _lines(chat.say("后天星际归途几点", "showtimes", entities=[("date", "后天"), ("film", "星际归途")]))
    assert header.startswith("《星际归途》后天")
    assert lines == ["1号厅·IMAX激光厅：10:00 / 15:40 3D / 21:10", "2号厅·杜比影院：13:00 3D / 18:30",
                     "4号厅·中国巨幕厅：16:00"]


def test_more_through_the_rasa_action(k9, tracker_factory, run_action):
    """The payload as Rasa parses it (intent, entities, the text a payload) through ActionShowtimes."""
    from actions import topics

    tomorrow = now().date() + dt.timedelta(days=1)
    entities = [{"entity": "date", "value": tomorrow.isoformat()}, {"entity": "film", "value": "破晓行动、银河快递"}]
    payload = "/ask_showtimes" + json.dumps({"date": tomorrow.isoformat(), "film": "破晓行动、银河快递"},
                                            ensure_ascii=False)
    texts, events, _ = run_action(topics.ActionShowtimes(), tracker_factory(payload, "ask_showtimes", entities))
    _, lines = _lines(texts[-1])
    assert [x.split("：")[0].split("（")[0] for x in lines] == ["破晓行动", "银河快递"], texts
    context = next(e["value"] for e in events if e.get("name") == "topic_context")
    assert not context["values"].get("film")
