"""Informational answers, one function per topic, every fact read from the knowledge store.

Each function takes the replies collector (same call as Rasa's dispatcher), the knowledge snapshot and the
patron's ask (with values carried over from earlier turns), sends the answer, and returns the values worth
remembering for a follow-up. ``TOPICS`` maps topic names to them; ``INTENT_TOPIC`` maps intents to topics.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Callable, Dict, List, Optional, Text, Tuple

from bot.answers.ask import Ask, date_label, join_lines, money, now, resolve_day
from bot.answers.replies import phrase
from bot.answers.resolvers import parse_number, resolve_clock, resolve_date, resolve_time_window
from bot.kb import rules
from bot.kb.store import Knowledge, Showing

SHOWTIME_DAYS = 7
Answer = Callable[[Any, Knowledge, Ask], Dict[str, str]]
TOPICS: Dict[str, Answer] = {}


def topic(name: str) -> Callable[[Answer], Answer]:
    def register(fn: Answer) -> Answer:
        TOPICS[name] = fn
        return fn
    return register


GENRE_QUESTION = re.compile(r"什么|哪些|哪部|哪几部|有没有|有吗|有.{1,6}[吗么]|推荐|啥|想看|要看|看点|来点|^.{0,6}(片|电影)呢[?？]?$")


def films_list(k: Knowledge) -> Text:
    return "、".join(f"《{f.title}》" for f in k.films)


def _hall_type_of(k: Knowledge, ask: Ask):
    return k.find_hall_type(ask.get("hall_type")) or (k.find_hall_type(ask.text) if ask.text else None)


def _version_of(ask: Ask) -> Optional[Text]:
    for source in (ask.get("hall_type") or "", ask.text):
        m = re.search(r"([23])[dD]", source)
        if m:
            return f"{m.group(1)}D"
    return None


# --------------------------------------------------------------------------- showtimes and films
LISTING_LINES = 8  # a listing fits a phone screen: at most this many films, the rest behind 「查看更多」
MORE_TITLE = "查看更多"
FILMS_JOINED = "、"  # the 「查看更多」 payload names the films still to show, joined by this


def _type_label(k: Knowledge, type_code: str) -> Text:
    """A hall type as a listing line names it: its short name (the first alias, 「IMAX」「杜比」「巨幕」) when
    that is shorter than the full name, else the name (「普通厅」)."""
    ht = k.hall_type(type_code)
    if ht is None:
        return type_code
    short = ht.aliases[0] if ht.aliases else ht.name
    return short if len(short) < len(ht.name) else ht.name


def _times(shows: List[Showing]) -> Text:
    """「10:00 / 15:40 3D / 21:10」: start times in order, the version said only when it is not 2D."""
    return " / ".join(f"{s.start:%H:%M}" + (f" {s.version}" if s.version != "2D" else "")
                      for s in sorted(shows, key=lambda s: s.start))


def _grouped(shows: List[Showing], key: Callable[[Showing], Any]) -> List[List[Showing]]:
    """``shows`` in groups of equal ``key``, each group where its first showing is in time order."""
    groups: Dict[Any, List[Showing]] = {}
    for s in sorted(shows, key=lambda s: (s.start, s.hall.number)):
        groups.setdefault(key(s), []).append(s)
    return list(groups.values())


def _film_lines(k: Knowledge, shows: List[Showing]) -> List[Tuple[Text, Text]]:
    """One line per film (in the order of its first showing), with its title: 「星际归途（IMAX）：10:00 /
    15:40 3D / 21:10」, or by hall type when it plays in several: 「星际归途：IMAX 10:00 / 21:10；杜比 18:30」."""
    out = []
    for film_shows in _grouped(shows, lambda s: s.film.id):
        title = film_shows[0].film.title
        by_type = _grouped(film_shows, lambda s: s.hall.type_code)
        if len(by_type) == 1:
            line = f"{title}（{_type_label(k, by_type[0][0].hall.type_code)}）：{_times(by_type[0])}"
        else:
            line = f"{title}：" + "；".join(f"{_type_label(k, g[0].hall.type_code)} {_times(g)}" for g in by_type)
        out.append((title, line))
    return out


def _hall_lines(shows: List[Showing]) -> List[Text]:
    """One film's showings, one line per hall: 「1号厅·IMAX激光厅：10:00 / 15:40 3D / 21:10」."""
    return [f"{g[0].hall.name}·{g[0].hall.type_name}：{_times(g)}" for g in _grouped(shows, lambda s: s.hall.number)]


def _films_named(k: Knowledge, value: Optional[Text]) -> List[Any]:
    """The films a 「查看更多」 payload names (``film`` joined by 、); empty for one name."""
    if not value or FILMS_JOINED not in value:
        return []
    films = [k.film_by_name(name) for name in value.split(FILMS_JOINED)]
    return [f for f in films if f is not None]


def _more_button(day: dt.date, films: List[Text], ask: Ask, hall_type: Any, window: Any) -> Dict[str, str]:
    """「查看更多」: the same listing for the films not shown yet (a payload, so WeChat's numbered choice and a
    web chat quick reply both ask exactly that)."""
    values = {"date": day.isoformat(), "film": FILMS_JOINED.join(films)}
    if window and ask.get("time"):
        values["time"] = ask.get("time")
    if hall_type is not None:
        values["hall_type"] = hall_type.name
    return {"title": MORE_TITLE, "payload": "/ask_showtimes" + json.dumps(values, ensure_ascii=False)}


def _film_plays_in(film: Any, type_code: str) -> bool:
    return any(f.split(":")[0] == type_code for f in film.formats)


def film_halls(k: Knowledge, film: Any) -> str:
    names = {t.code: t.name for t in k.hall_types}
    return "、".join(names.get(f.split(":")[0], f) + (f.split(":")[1] if ":" in f else "") for f in film.formats)


ASKED_IF_ANY = re.compile(r"吗|么[?？]?$|有没有|有冇|有无|放不放|有不有|是不是|能不能看|可不可以看")


@topic("showtimes")
def showtimes(d: Any, k: Knowledge, ask: Ask) -> Dict[str, str]:
    current = now()
    today = current.date()
    day = resolve_day(ask, today)
    used = {key: ask.get(key) for key in ("film", "date", "time", "hall_type") if ask.get(key)}
    film_name = ask.get("film")
    named = _films_named(k, film_name)  # 「查看更多」: the films the first page left out
    if named:
        film_name = None
        used["film"] = ""  # the joined names are no film to remember for a follow-up
    film = k.film_by_name(film_name) if film_name else (k.find_film(ask.text) if ask.text and not named else None)
    in_range = today <= day < today + dt.timedelta(days=SHOWTIME_DAYS)
    if film_name and film is None:  # 「12月25号有没有《疯狂动物城3》」: no such film, whatever the day
        d.utter_message(response="utter_film_not_showing", film=film_name.strip("《》"), films=films_list(k))
        # no such film to carry on with — but 「什么时候上啊」 next still asks about it
        return {**used, "film": "", "missing_film": film_name.strip("《》"), **({} if in_range else {"date": ""})}
    if not in_range:
        last = today + dt.timedelta(days=SHOWTIME_DAYS - 1)
        d.utter_message(response="utter_showtimes_range", last_date=f"{last.month}月{last.day}日")
        return {**used, "date": ""}  # a day with no schedule is not carried to the next question
    hall_type = _hall_type_of(k, ask)
    # what the words said without an entity (「钢铁洪流 巨幕 周五」) is remembered too, for 「票价」 next
    if film is not None:
        used["film"] = film.title
    if day != today:
        used.setdefault("date", f"{day.month}月{day.day}日")
    if hall_type is not None:
        used.setdefault("hall_type", hall_type.name)
    version = _version_of(ask)
    window = resolve_time_window(ask.get("time") or "") if ask.get("time") else None
    if window is None and ask.text:
        window = resolve_time_window(ask.text)
    shows = [s for s in k.showings(day) if day > today or s.start > current.time()]
    if named:
        shows = [s for s in shows if s.film.id in {f.id for f in named}]
    pool = [s for s in shows if film is None or s.film.id == film.id]
    selected = [s for s in pool
                if (hall_type is None or s.hall.type_code == hall_type.code)
                and (version is None or hall_type is None or hall_type.code != "standard" or s.version == version)
                and (window is None or window[0] <= s.start <= window[1])]
    filter_label = "".join([
        f"{ask.get('time') or ''}" if window else "",
        f"{hall_type.name}" if hall_type else "",
        version if version and hall_type is not None and hall_type.code == "standard" else "",
    ])
    label = date_label(day, today)
    if film and hall_type and not _film_plays_in(film, hall_type.code):
        d.utter_message(response="utter_text", text=f"《{film.title}》不在{hall_type.name}放映，可在{film_halls(k, film)}观看。")
        hall_type, filter_label = None, ""
        selected = [s for s in pool if window is None or window[0] <= s.start <= window[1]]
    if film is None and hall_type and not named:
        playing = [f"《{f.title}》" for f in k.films if _film_plays_in(f, hall_type.code)]
        d.utter_message(response="utter_text", text=f"{hall_type.name}放映的影片：{'、'.join(playing) or '暂无'}。")
    if not selected and film is None and not named and day == today:
        # nothing left today with these filters: the next day that has some
        for i in range(1, SHOWTIME_DAYS):
            nxt = today + dt.timedelta(days=i)
            selected = [s for s in k.showings(nxt)
                        if (hall_type is None or s.hall.type_code == hall_type.code)
                        and (window is None or window[0] <= s.start <= window[1])]
            if selected:
                d.utter_message(response="utter_text", text=f"{label}{filter_label}的场次已经结束了。")
                label = date_label(nxt, today)
                break
    if selected:
        if film:
            # 「破晓在4DX厅放吗」「那部片子有杜比的场吗」: asked whether there are any — yes, first
            yes = phrase("utter_yes_there_are") if filter_label and ask.text and ASKED_IF_ANY.search(ask.text) else ""
            d.utter_message(response="utter_showtimes", film=film.title, date_label=label, yes=yes,
                            filter_label=filter_label, lines=join_lines(_hall_lines(selected)))
        else:
            film_lines = _film_lines(k, selected)
            rest = [title for title, _ in film_lines[LISTING_LINES:]]
            buttons = [_more_button(selected[0].date, rest, ask, hall_type, window)] if rest else None
            d.utter_message(response="utter_showtimes_all", date_label=label, filter_label=filter_label,
                            lines=join_lines([line for _, line in film_lines[:LISTING_LINES]]), buttons=buttons)
        return used
    if film:
        alternatives = ""
        if hall_type is not None and window is None:
            # 「有3D吗」「有IMAX吗」 on a day without one: the next day that has it answers the question
            nxt = next((day + dt.timedelta(days=i) for i in range(1, SHOWTIME_DAYS)
                        if any(s.film.id == film.id and s.hall.type_code == hall_type.code
                               and (version is None or hall_type.code != "standard" or s.version == version)
                               for s in k.showings(day + dt.timedelta(days=i)))), None)
            if nxt:
                lines = _hall_lines([s for s in k.showings(nxt) if s.film.id == film.id and s.hall.type_code == hall_type.code
                                     and (version is None or hall_type.code != "standard" or s.version == version)])
                alternatives = f"{date_label(nxt, today)}{filter_label}的场次：\n" + join_lines(lines) + "\n"
        if pool:
            alternatives += "当天还有：\n" + join_lines(_hall_lines(pool))
        elif not alternatives:
            nxt = next((day + dt.timedelta(days=i) for i in range(1, SHOWTIME_DAYS)
                        if any(s.film.id == film.id for s in k.showings(day + dt.timedelta(days=i)))), None)
            if nxt:
                lines = _hall_lines([s for s in k.showings(nxt) if s.film.id == film.id])
                alternatives = f"{date_label(nxt, today)}的场次：\n" + join_lines(lines)
        d.utter_message(response="utter_showtimes_none_for_filter", film=film.title, date_label=label,
                        filter_label=filter_label, alternatives=alternatives)
    else:
        d.utter_message(response="utter_showtimes_none_for_filter", film="全部影片", date_label=label,
                        filter_label=filter_label, alternatives="")
    return used


LONGEST = re.compile(r"最长|最久|时间最长|片长最长")
SHORTEST = re.compile(r"最短|时间最短|片长最短")


def genre_asked(k: Knowledge, text: str) -> Optional[str]:
    """The store's genre a question asks for (「有什么科幻片」「有没有动画片」), if any."""
    if not text or not GENRE_QUESTION.search(text):
        return None
    genres = {g for f in k.films for g in re.split(r"[/、,，]", f.genre or "") if g}
    for g in sorted(genres, key=len, reverse=True):
        if re.search(f"{re.escape(g)}(片|电影|的|类|吗|呢|[\\s，,。?？!！]|$)|(哪部|哪个|哪一部)是{re.escape(g)}", text):  # 「哪部是喜剧」
            return g
    return None


# 「给孩子看的，你们有啥」「有什么适合小朋友的片」: the films for all ages, asked without naming one
KIDS = re.compile(r"小孩|孩子|小朋友|儿童|宝宝|娃|亲子|全家|一家人|小学生")
FILM_WORDS_KIDS = re.compile(r"片|电影|看的|看什么|看啥|适合")
FILMS_OFFERED = re.compile(r"有什么|有啥|有哪些|哪部|哪些|推荐|什么片|什么电影|看什么|看啥|有没有.{0,6}(片|电影)")


def kids_films_asked(k: Knowledge, text: str) -> Optional[str]:
    """The store's all-ages advisory (「全年龄」) when the question asks which films suit children, else None."""
    if not text or not KIDS.search(text) or not FILMS_OFFERED.search(text) or not FILM_WORDS_KIDS.search(text) \
            or films_in(k, text):
        return None
    return next((f.advisory for f in k.films if "全年龄" in (f.advisory or "")), None)


RUNTIME_COMPARED = re.compile(r"哪(个|部|一部)(更)?(长|短|久)|谁(更)?(长|短)|哪个时间长|比.{1,8}(长|短)")


def films_in(k: Knowledge, text: Optional[str]) -> List[Any]:
    """The store's films whose title or alias the words name, in the order said."""
    low = (text or "").lower()
    hits = []
    for f in k.films:
        spots = [low.find(n.lower()) for n in (f.title, *f.aliases) if n and n.lower() in low]
        if spots:
            hits.append((min(spots), f))
    return [f for _, f in sorted(hits, key=lambda h: h[0])]


@topic("film_info")
def film_info(d: Any, k: Knowledge, ask: Ask) -> Dict[str, str]:
    genre = genre_asked(k, ask.text)
    ages = None if genre else kids_films_asked(k, ask.text)
    if ages:
        picks = [f for f in k.films if f.advisory == ages]
        d.utter_message(response="utter_films_of_genre", genre=ages,
                        films="、".join(f"《{f.title}》（{f.runtime_min}分钟，{f.genre}）" for f in picks))
        return {"film": picks[0].title} if len(picks) == 1 else {}
    if genre:
        picks = [f for f in k.films if genre in (f.genre or "")]
        d.utter_message(response="utter_films_of_genre", genre=genre,
                        films="、".join(f"《{f.title}》（{f.runtime_min}分钟，{f.advisory}）" for f in picks))
        return {"film": picks[0].title} if len(picks) == 1 else {}
    named = films_in(k, ask.text)
    if len(named) >= 2 and RUNTIME_COMPARED.search(ask.text or ""):
        # 「星际归途和破晓行动哪个长」: the running times of the films named, the longer said
        longest = max(named, key=lambda f: f.runtime_min)
        d.utter_message(response="utter_text", text="；".join(f"《{f.title}》{f.runtime_min}分钟" for f in named)
                        + f"。《{longest.title}》更长。")
        return {"film": longest.title}
    if k.films and (LONGEST.search(ask.text) or SHORTEST.search(ask.text)):
        pick = (max if LONGEST.search(ask.text) else min)(k.films, key=lambda f: f.runtime_min)
        word = "最长" if LONGEST.search(ask.text) else "最短"
        d.utter_message(response="utter_text", text=f"正在上映的影片中片长{word}的是《{pick.title}》，{pick.runtime_min}分钟（{pick.genre}）。")
        return {"film": pick.title}
    film_name = ask.get("film")
    film = k.film_by_name(film_name) if film_name else (k.find_film(ask.text) if ask.text else None)
    if film is None:
        if film_name:
            d.utter_message(response="utter_film_not_showing", film=film_name.strip("《》"), films=films_list(k))
        else:
            d.utter_message(response="utter_ask_which_film", films=films_list(k))
        return {}
    formats = film_halls(k, film)
    d.utter_message(response="utter_film_info", title=film.title, genre=film.genre, runtime=film.runtime_min,
                    advisory=film.advisory, director=film.director, cast="、".join(film.cast),
                    language=film.language, release_date=f"{film.release_date.month}月{film.release_date.day}日",
                    formats=formats, synopsis=film.synopsis)
    return {"film": film.title}


# --------------------------------------------------------------------------- halls and prices
def hall_types_named(k: Knowledge, text: str) -> List[Any]:
    """Every hall type the words name, in the order said (「IMAX和杜比有什么区别」 → IMAX, 杜比)."""
    low = (text or "").lower()
    spans: List[tuple] = []
    for t in k.hall_types:
        for alias in sorted({t.name, *t.aliases}, key=len, reverse=True):
            start = low.find(alias.lower())
            if start >= 0 and not any(a < start + len(alias) and start < b for a, b, _ in spans):
                spans.append((start, start + len(alias), t))
                break
    seen, out = set(), []
    for _, _, t in sorted(spans, key=lambda x: x[0]):
        if t.code not in seen:
            seen.add(t.code)
            out.append(t)
    return out


COMPARE = re.compile(r"哪个|哪一个|哪种|比较|更贵|更便宜|差多少|区别")
WORKDAY = re.compile(r"工作日|平日|平时")
GROUP_PRICE = re.compile(r"团体价|团体票|团购价|团票")
BOTH_DAYS_WEEK = re.compile(r"周一(到|至|~|-)周四|工作日|平日|平时")
BOTH_DAYS_END = re.compile(r"周末|周五(到|至|~|-)周日|节假日|假日")
# 「五一放假那天」「国庆去看」: a public holiday, priced as the weekend is, whatever day of the week it falls on
HOLIDAY_SAID = re.compile(r"(?<!不)(五一|劳动节|国庆|黄金周|春节|过年|大年|元旦|中秋|端午|清明|节假日|法定假|放假那|放假的时候|假期里|假期的)")
DATE_SAID = re.compile(r"周[一二三四五六日天]|星期|[今明后]天|\d+月|\d+[号日]")
ELDERLY_AGE = re.compile(r"([6-9]\d)\s*(?:岁|周岁|了|多了|多岁)|(?:今年|已经|都)([6-9]\d)(?!\d)")


def elderly_by_age(k: Knowledge, text: str) -> Optional[Dict[str, Any]]:
    """「我爸65岁了」 → the elderly ticket type (its age from the store's text is 60)."""
    m = ELDERLY_AGE.search(text or "")
    if not m or int(m.group(1) or m.group(2)) < 60:
        return None
    return next((t for t in k.section("prices")["ticket_types"] if t["code"] == "elderly"), None)


def _compare_halls(d: Any, k: Knowledge, types: List[Any]) -> None:
    weekday_label, weekend_label = rules.price_day_labels(k)
    prices = {r["key"]: r for r in k.section("prices")["base"]}
    lines = []
    for t in types:
        row = prices.get(t.price_key) or prices.get(f"{t.price_key}_2d")
        price = f"；{weekday_label}{row['weekday']}元，{weekend_label}{row['weekend']}元" if row else ""
        lines.append(f"· {t.name}：{t.description}{price}")
    d.utter_message(response="utter_text", text=join_lines(lines))


WHICH_DEARER = re.compile(r"(哪个|哪一个|哪种|谁)(更|比较|最)?(贵|便宜|划算|实惠)|(贵|便宜)的?是哪个|差多少钱|价格差")
WHICH_BIGGER = re.compile(r"(哪个|哪一个|哪种|谁)(的)?(更|比较|最)?(大|座位多|座多|人多|位子多|坐的人多|能坐更多)|座位.{0,2}(哪个|谁)多")


def _which_of_compared(d: Any, k: Knowledge, types: List[Any], text: str) -> bool:
    """「哪个贵」「哪个座位多」 after two halls were compared: the answer, with the figures."""
    if WHICH_DEARER.search(text or ""):
        weekday_label, weekend_label = rules.price_day_labels(k)
        prices = {r["key"]: r for r in k.section("prices")["base"]}
        rows = [(t, prices.get(t.price_key) or prices.get(f"{t.price_key}_2d")) for t in types]
        rows = [(t, r) for t, r in rows if r]
        if len(rows) < 2:
            return False
        cheap = bool(re.search(r"便宜|划算|实惠", text or ""))
        rows.sort(key=lambda tr: (tr[1]["weekday"], tr[1]["weekend"]), reverse=not cheap)
        same = rows[0][1]["weekday"] == rows[-1][1]["weekday"] and rows[0][1]["weekend"] == rows[-1][1]["weekend"]
        head = "票价一样" if same else f"{rows[0][0].name}更{'便宜' if cheap else '贵'}"
        detail = "；".join(f"{t.name}{weekday_label}{r['weekday']}元、{weekend_label}{r['weekend']}元" for t, r in rows)
        d.utter_message(response="utter_text", text=f"{head}：{detail}。")
        return True
    if WHICH_BIGGER.search(text or ""):
        seats = [(t, sum(h.seats for h in k.halls if h.type_code == t.code),
                  "、".join(f"{h.name}{h.seats}座" for h in k.halls if h.type_code == t.code)) for t in types]
        seats.sort(key=lambda ts: ts[1], reverse=True)
        head = "座位一样多" if seats[0][1] == seats[-1][1] else f"{seats[0][0].name}座位更多"
        d.utter_message(response="utter_text", text=f"{head}：" + "；".join(f"{t.name}{where}" for t, _, where in seats) + "。")
        return True
    return False


HALL_WITH = re.compile(r"(?:有|带|是)(?P<f>[\u4e00-\u9fffA-Za-z0-9.]{2,8}?)的?(?:影)?厅|"
                       r"(?:哪个|哪些|什么)(?:影)?厅(?:有|是|带|可以|能)(?P<g>[\u4e00-\u9fffA-Za-z0-9.]{2,8}?)(?:的|吗|呢|[?？]|$)")


def hall_types_with(k: Knowledge, text: str) -> List[Any]:
    """「那有躺椅的厅吗」「哪个厅有情侣座」: the hall types whose description has the feature asked for."""
    m = HALL_WITH.search(text or "")
    if not m:
        return []
    feature = (m.group("f") or m.group("g") or "").strip()
    # 「电动躺椅」「轮椅位」: the longest part of it the descriptions have (not a format: 3D is in many halls)
    words = sorted({feature[i:j] for i in range(len(feature)) for j in range(i + 2, len(feature) + 1)}, key=len, reverse=True)
    for word in words:
        if re.fullmatch(r"[23][Dd]|.*厅|[A-Za-z0-9.]+", word):
            continue
        found = [t for t in k.hall_types if word in t.description]
        if found:
            return found if len(found) < len(k.hall_types) else []
    return []


@topic("hall_types")
def hall_types(d: Any, k: Knowledge, ask: Ask) -> Dict[str, str]:
    featured = hall_types_with(k, ask.text)
    if featured and not hall_types_named(k, ask.text):
        lines = []
        for t in featured:
            halls = "，".join(f"{h.name}{h.seats}座" for h in k.halls if h.type_code == t.code)
            lines.append(f"{t.name}（{halls}）：{t.description}")
        d.utter_message(response="utter_text", text="\n".join(lines))
        return {"hall_type": featured[0].name}
    named = hall_types_named(k, ask.text)
    if len(named) < 2 and ask.get("compared"):
        before = [t for t in (k.find_hall_type(n) for n in ask.get("compared").split("|")) if t]
        if len(before) >= 2 and _which_of_compared(d, k, before, ask.text):
            return {"hall_type": before[0].name, "compared": ask.get("compared")}
    if len(named) >= 2 and _which_of_compared(d, k, named, ask.text):
        return {"hall_type": named[0].name, "compared": "|".join(t.name for t in named)}
    if len(named) >= 2:
        _compare_halls(d, k, named)
        return {"hall_type": named[0].name, "compared": "|".join(t.name for t in named)}
    ht = _hall_type_of(k, ask)
    hall = k.find_hall(ask.get("hall") or ask.text)
    if hall and not ht:
        ht = k.hall_type(hall.type_code)
    if ht:
        halls = [h for h in k.halls if h.type_code == ht.code]
        seats = "，".join(f"{h.name}{h.seats}座" for h in halls)
        d.utter_message(response="utter_hall_type", name=ht.name, description=f"{ht.description}（{seats}）")
        return {"hall_type": ht.name}
    lines = [f"· {t.name}：{t.description.split('。')[0]}" for t in k.hall_types]
    d.utter_message(response="utter_hall_types_all", lines=join_lines(lines))
    return {}


def _next_priced_day(k: Knowledge, today: dt.date, holiday: bool) -> dt.date:
    """The next day priced at the weekday price, or (``holiday``) one priced as a holiday is: at the weekend
    price and outside every weekday-only discount that holidays exclude (the store's weekend_days and
    ticket types decide which)."""
    from bot.kb.store import WEEKDAY_CODES
    prices = k.section("prices")
    weekend = set(prices["weekend_days"])
    weekday_only = {c for t in prices["ticket_types"] if t.get("exclude_holidays") for c in t.get("weekdays_only") or ()}
    days = [today + dt.timedelta(days=i) for i in range(7)]
    codes = [WEEKDAY_CODES[d.weekday()] for d in days]
    if not holiday:
        return next(d for d, c in zip(days, codes) if c not in weekend)
    return next((d for d, c in zip(days, codes) if c in weekend and c not in weekday_only),
                next(d for d, c in zip(days, codes) if c in weekend))


RATE_SAID = re.compile(r"打(?:完|了)?\s*([5-9](?:\.\d)?|[五六七八九]五?)\s*折")


def parse_rate(said: str) -> Optional[float]:
    """「8」→ 0.8, 「8.5」/「八五」→ 0.85."""
    digits = said.translate(str.maketrans("五六七八九", "56789"))
    if re.fullmatch(r"\d\d", digits):
        digits = f"{digits[0]}.{digits[1]}"
    try:
        return float(digits) / 10
    except ValueError:
        return None


@topic("ticket_price")
def ticket_price(d: Any, k: Knowledge, ask: Ask) -> Dict[str, str]:
    today = now().date()
    ht = _hall_type_of(k, ask)
    ticket = rules.find_ticket_type(k, ask.get("ticket_type")) or (rules.find_ticket_type(k, ask.text) if ask.text else None)
    used = {key: ask.get(key) for key in ("hall_type", "date", "ticket_type", "time") if ask.get(key)}
    named = hall_types_named(k, ask.text)
    if len(named) < 2 and ask.get("compared") and COMPARE.search(ask.text):  # 「哪个贵」 after a comparison
        named = [t for t in (k.find_hall_type(n) for n in ask.get("compared").split("|")) if t]
    if len(named) >= 2 and not ask.get("date") and _which_of_compared(d, k, named, ask.text):
        return {**used, "compared": "|".join(t.name for t in named)}
    if len(named) >= 2 and not ask.get("date"):
        _compare_halls(d, k, named)
        return {**used, "compared": "|".join(t.name for t in named)}
    workday = WORKDAY.search(ask.text)
    if workday and not DATE_SAID.search(ask.text):  # 「工作日呢」: the next day at the weekday price
        day = _next_priced_day(k, today, holiday=False)
        ask = Ask(ask.text, {**ask.values, "date": f"{day.month}月{day.day}日"})
        used["date"] = ask.values["date"]
    holiday = HOLIDAY_SAID.search(ask.text or "") if not (DATE_SAID.search(ask.text) or workday) else None
    if holiday:  # priced on a day that prices as the holiday does
        day = _next_priced_day(k, today, holiday=True)
        ask = Ask(ask.text, {**ask.values, "date": f"{day.month}月{day.day}日"})
    if ticket is None:
        ticket = elderly_by_age(k, ask.text)
    if ticket is not None:  # 「67岁有优惠吗」 then 「需要带什么」: the proof for that ticket type
        used.setdefault("ticket_type", ticket["name"])
    if ht is None:
        film = k.film_by_name(ask.get("film")) if ask.get("film") else k.find_film(ask.text)
        if ticket:
            d.utter_message(response="utter_ticket_type_rule", rule=ticket["text"])
            return used
        prices = k.section("prices")
        weekday_label, weekend_label = rules.price_day_labels(k)
        lines = [f"· {r['label']}：{weekday_label}{r['weekday']}元，{weekend_label}{r['weekend']}元"
                 for r in prices["base"]]
        discounts = join_lines([prices["early_show"]["text"], *(t["text"] for t in prices["ticket_types"]),
                                prices["no_stacking"]])
        if film:
            discounts += f"\n《{film.title}》可在这些影厅观看：" + "、".join(
                t.name for t in k.hall_types if any(f.split(":")[0] == t.code for f in film.formats))
        d.utter_message(response="utter_price_table", lines=join_lines(lines), discounts=discounts)
        return used
    version = _version_of(ask) or "2D"
    if ticket is None and BOTH_DAYS_WEEK.search(ask.text or "") and BOTH_DAYS_END.search(ask.text or ""):
        # 「周一到周四是多少钱然后周末又是多少」: both prices of the hall at once
        row = rules.price_row(k, ht, version)
        weekday_label, weekend_label = rules.price_day_labels(k)
        d.utter_message(response="utter_text", text=f"{row['label']}：{weekday_label}{money(row['weekday'])}元/张，"
                                                     f"{weekend_label}{money(row['weekend'])}元/张。{k.section('prices')['no_stacking']}")
        return used
    day = resolve_day(ask, today)
    window = resolve_time_window(ask.get("time") or ask.text or "")
    start = window[0] if window else None
    q = rules.quote(k, ht, day, version, ticket, start=start)
    for other in rules.find_ticket_types(k, ask.text):  # 「我是学生也是会员」: the best single discount
        alt = rules.quote(k, ht, day, version, other, start=start)
        if alt.rule_text is not None and (q.rule_text is None or alt.price < q.price):
            q, ticket = alt, other
    label = date_label(day, today)
    group = k.section("services")["group"]
    if GROUP_PRICE.search(ask.text or "") and ticket is None:
        # 「30个人周六看IMAX团体价一张多少」: the group price is the day's price at the group discount
        d.utter_message(response="utter_text", text=(
            f"{q.hall_label}{label}票价{money(q.base)}元/张（{q.day_label}价），团体价（{group['min_people']}人及以上）"
            f"{money(group['discount'] * 10)}折为{money(round(q.base * group['discount'], 2))}元/张。{group['text']}"))
        return used
    if holiday:
        label = f"{holiday.group(1)}（节假日）"  # the weekend's price, not the date it was computed for
    if ticket and q.rule_text is None:
        d.utter_message(response="utter_price_not_applicable", rule=ticket["text"], date_label=label,
                        hall=q.hall_label, price=money(q.base))
        return used
    ticket_label = f"{ticket['name']}" if ticket else ""
    rule = q.rule_text or k.section("prices")["no_stacking"]
    rate = RATE_SAID.search(ask.text or "")
    if rate and ticket is None:  # 「打完8折多少」: the day's price at the rate said
        r = parse_rate(rate.group(1))
        if r:
            d.utter_message(response="utter_text", text=f"{q.hall_label}{label}票价{money(q.price)}元/张（{q.day_label}价），"
                                                         f"打{rate.group(1)}折为{money(round(q.price * r, 1))}元/张。")
            return used
    level = rules.level_by_text(k, ask.text) if ask.text else None
    if level and level.get("discount") and ticket is None and not (q.rule_text is not None and q.price != q.base):
        # 「周六IMAX金卡算下来多少」: the day's price at the member level's discount
        d.utter_message(response="utter_text", text=f"{q.hall_label}{label}票价{money(q.price)}元/张（{q.day_label}价），"
                                                     f"{level['name']}会员购票{money(level['discount'] * 10)}折为"
                                                     f"{money(round(q.price * level['discount'], 2))}元/张。{rule}")
        return {**used, "level": level["name"]}
    if q.rule_text is not None and (q.free or q.price != q.base):
        # the full price said with the discounted one: 「原价多少」 and the next question both need it
        d.utter_message(response="utter_price_quote_discounted", hall=q.hall_label, date_label=label,
                        day_label=q.day_label, base=money(q.base), ticket_label=ticket_label or "早场",
                        price="免票" if q.free else f"{money(q.price)}元/张", rule=rule)
        return used
    if not (ask.get("date") or DATE_SAID.search(ask.text or "") or workday or holiday or start):
        # no day said: both prices of the hall, today's named (「VIP厅多少钱」 is asked for any day)
        row = rules.price_row(k, ht, version)
        weekday_label, weekend_label = rules.price_day_labels(k)
        d.utter_message(response="utter_price_both_days", hall=q.hall_label, weekday_label=weekday_label,
                        weekday=money(row["weekday"]), weekend_label=weekend_label, weekend=money(row["weekend"]),
                        date_label=label, price=money(q.price), rule=rule)
        return used
    d.utter_message(response="utter_price_quote", hall=q.hall_label, date_label=label, day_label=q.day_label,
                    ticket_label=ticket_label, price=money(q.price), rule=rule)
    return used


# --------------------------------------------------------------------------- refund
_DURATION = re.compile(r"(\d+(?:\.\d+)?|[零一二两三四五六七八九十半]+)\s*(个)?\s*(半|多)?\s*(分钟|分|小时|钟头|个钟|钟|h)")


def minutes_before_show(text: str) -> Optional[float]:
    """「开场前40分钟」→ 40, 「提前一个半小时」→ 90, 「开场后10分钟」/「已经开场」→ negative."""
    if not text:
        return None
    started = any(w in re.sub(r"[就快要马上]+(开场|开始|开演)了", "", text)
                  for w in ("开场后", "开演后", "已经开场", "开场了", "开了场", "开咗场", "开始了", "已经开始", "散场", "迟到", "没赶上",
                            "错过了", "没进去", "没进场"))  # 「还有半小时就开场了」 is before the show
    m = _DURATION.search(text)
    if m is None:
        return -1.0 if started else None
    raw = m.group(1)
    amount = 0.5 if raw == "半" else (float(raw) if re.fullmatch(r"\d+\.\d+", raw) else parse_number(raw))
    if amount is None:
        return None
    minutes = amount * 60 if m.group(4) in ("小时", "钟头", "个钟", "钟", "h") else amount
    if m.group(3) and m.group(4) in ("小时", "钟头", "个钟", "钟"):
        minutes += 30
    if re.search(r"^(以内|之内|内)|不到|少于", text[m.end():m.end() + 4]) \
            or re.search(r"不到|不足|少于|没到|不够", text[max(0, m.start() - 3):m.start()]):  # 「不到两小时」
        minutes -= 1  # 「开场前半小时以内」 is less than half an hour
    return -minutes if started else minutes


# 「改签都不行？」「那改签呢」 right after a verdict for a time: the same time, asked again
SAME_TIME = re.compile(r"^.{0,6}(也|都|还|呢|总)(不行|不可以|不能|行|可以|能|唔得)?.{0,4}[?？吗呢吧]*$")
_NOW_SAID = re.compile(r"(现在|而家|目前)(才|是|已经|都)?")
_SHOW_CLOCK = re.compile(r"(今晚|今天|晚上|下午|上午|中午|早上|凌晨|夜里)?.{0,2}(\d{1,2}[:：]\d{2}|[\d一二两三四五六七八九十]{1,3}点[半\d]*)")


def minutes_until_clock(text: str, current: dt.datetime) -> Optional[float]:
    """Minutes from now (or the time the patron says it is) to today's show at the clock time said:
    「是今晚9点的，现在才下午3点」 → 360. None without a clock time, or when a later day is named."""
    if not text or resolve_date(text, current.date()) not in (None, current.date()):
        return None
    said_now = _NOW_SAID.search(text)
    show_part, now_part = (text[:said_now.start()], text[said_now.end():]) if said_now else (text, "")
    if not _SHOW_CLOCK.search(show_part):
        return None
    show = resolve_clock(show_part)
    if show is None:
        return None
    told = resolve_clock(now_part) if now_part else None
    base = told or current.time()
    return float((show.hour * 60 + show.minute) - (base.hour * 60 + base.minute))


@topic("refund_policy")
def refund_policy(d: Any, k: Knowledge, ask: Ask) -> Dict[str, str]:
    refund = k.section("refund")
    if ask.text and any(p in ask.text for p in refund["third_party"]["platforms"]):
        d.utter_message(response="utter_text", text=refund["third_party"]["text"])
        return {}
    # 「电影8点开始，现在7点10分」: two clock times say how long is left; 「10分」 alone would be no duration
    minutes = minutes_until_clock(ask.text, now()) if _NOW_SAID.search(ask.text or "") else None
    if minutes is None:
        minutes = minutes_before_show(ask.text)
    day_label = None
    if minutes is None and ask.get("minutes") and (ticket_price_in(ask.text, loose=True) is not None
                                                   or SAME_TIME.search(ask.text or "")) \
            and (not resolve_date(ask.text or "", now().date()) or "的票" in (ask.text or "")):
        # 「那如果是普通厅40块一张呢」 after 「…开场前一个半小时退要扣多少」: the time said before, not the day carried
        minutes = float(ask.get("minutes"))
    if minutes is None:
        # 「是后天晚上的场」: a show on a later day is more than any window's hours away
        today = now().date()
        day = next((d for d in (resolve_date(x, today) for x in (ask.get("date"), ask.text) if x) if d), None)
        if day is not None and day > today:
            minutes, day_label = float((day - today).days * 24 * 60), date_label(day, today)
    if minutes is None:
        minutes = minutes_until_clock(ask.text, now())  # 「是今晚9点的，现在才下午3点」
    if minutes is None and ask.get("minutes") and (ticket_price_in(ask.text) is not None or SAME_TIME.search(ask.text or "")):
        minutes = float(ask.get("minutes"))  # 「那一单两张40的要扣多少」 about the time said before
    if minutes is not None:
        price = ticket_price_in(ask.text, loose=True)
        count = _COUNT.search(ask.text or "")
        n = int(parse_number(count.group(1)) or 1) if count else 1
        total = _TOTAL.search(ask.text or "")
        if total and n > 1 and (price is None or price == float(total.group(1))):
            price = float(total.group(1)) / n  # 「两张…一共170」: 85 a ticket
        verdict = rules.refund_verdict(k, minutes, price)
        if price is not None and verdict.refundable:
            fee = (f"，{n}张{money(price)}元的票手续费共{money(verdict.fee * n)}元" if n > 1 else
                   f"，这张{money(price)}元的票手续费{money(verdict.fee)}元") if verdict.fee else "，不收手续费"
            d.utter_message(response="utter_text", text=f"{verdict.text.rstrip('。')}{fee}。")
            return {"minutes": str(minutes)}
        label = "已开场" if minutes < 0 else (f"{money(minutes / 60)}小时" if minutes >= 60 and minutes % 30 == 0
                                             else f"{money(minutes)}分钟")
        said = _DURATION.search(ask.text or "")
        if said and minutes >= 0:
            label = said.group(0)  # in the patron's words: 「一个多小时」, not 1.5小时
        if day_label:
            label = f"（{day_label}的场）2小时以上"  # a later day's show is past the longest window; no hour count claimed
        d.utter_message(response="utter_refund_for_time", minutes_label=label if minutes >= 0 else "（已开场）",
                        verdict=verdict.text)
        return {"minutes": str(minutes)}
    lines = [f"· {w['text']}" for w in refund["windows"]]
    lines += [f"· {refund['special_tickets']['text']}", f"· {refund['third_party']['text']}",
              f"· {refund['own_channels']}", f"· {refund['arrival']}", f"· {refund['cinema_fault']}"]
    d.utter_message(response="utter_refund_policy", lines=join_lines(lines))
    return {}


_PRICE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:块|元|¥)(?:钱)?的?票|票价?(?:是|为)?\s*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*(?:块|元)一张|"
                    r"张\s*(\d+(?:\.\d+)?)\s*(?:块|元)?的|(?<![\d.])(\d{2,3}(?:\.\d+)?)\s*的票")  # 「IMAX 85的票」
_COUNT = re.compile(r"([两二三四五六七八九十\d])\s*张")
_TOTAL = re.compile(r"(?:一共|总共|合计|共)\s*(\d+(?:\.\d+)?)\s*(?:块|元)?")
# 「停了不到5个小时」「停了快5个小时」 count as 5, 「停了5个多小时」 as 5 and a half
_PARKED = re.compile(r"停(?:了|车)?\s*(?:不到|快|将近|差不多|大概|大约|约|接近|有)?\s*(\d+(?:\.\d+)?|[一二两三四五六七八九十]+)\s*个?\s*(半|多)?\s*(?:小时|钟头|钟)")


_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:块|元)(?!/|每)")


def ticket_price_in(text: str, loose: bool = False) -> Optional[float]:
    """「40块的票」「票价45」「票是85的」 → 40 / 45 / 85; ``loose`` also reads a bare 「85块」 (a refund question)."""
    m = _PRICE.search(text or "") or (_AMOUNT.search(text or "") if loose else None)
    if not m:
        return None
    return float(next(g for g in m.groups() if g))


_HEIGHT = re.compile(r"(\d(?:\.\d+)?)\s*米\s*(\d{1,2})?|([一二两三])米([一二三四五六七八九])")


def height_said(text: str) -> Optional[float]:
    """「2米3高」「车高2.2米」 → 2.3 / 2.2 (a vehicle height, for the height limit)."""
    if not re.search(r"高|车|能进", text or ""):
        return None
    m = _HEIGHT.search(text or "")
    if not m:
        return None
    if m.group(1):
        return float(m.group(1)) + (float(f"0.{m.group(2)}") if m.group(2) else 0)
    return float(parse_number(m.group(3))) + float(parse_number(m.group(4))) / 10


def hours_parked(text: str) -> Optional[float]:
    """「停了6个小时」「停三个半小时」 → 6 / 3.5."""
    m = _PARKED.search(text or "")
    if not m:
        return None
    raw = m.group(1)
    hours = float(raw) if raw[0].isdigit() else parse_number(raw)
    return None if hours is None else hours + (0.5 if m.group(2) else 0)


# --------------------------------------------------------------------------- parking
@topic("parking")
def parking(d: Any, k: Knowledge, ask: Ask) -> Dict[str, str]:
    p = k.section("parking")
    ht = _hall_type_of(k, ask)
    level = rules.level_by_text(k, ask.text) if ask.text else None
    # 「我停了7个小时」 after 「金卡不是免5小时吗」: the level said before still counts
    level = level or (rules.level_by_text(k, ask.get("level")) if ask.get("level") else None)
    kept = {"level": level["name"]} if level else {}
    common = dict(registration=p["registration"], beyond=p["beyond"], fee_per_hour=money(p["fee_per_hour"]),
                  daily_cap=money(p["daily_cap"]))
    height = height_said(ask.text)
    if height is not None:
        limit = float(re.sub(r"[^\d.]", "", p["height_limit"]) or 0)
        verdict = "可以进入" if height <= limit else "无法进入"
        d.utter_message(response="utter_text", text=f"停车场限高{p['height_limit']}，{money(height)}米高的车{verdict}。")
        return {}
    parked = hours_parked(ask.text)
    if parked is None and ask.get("hours") and (ht or level):
        parked = float(ask.get("hours"))  # 「那要是看的4DX呢」 for the hours said before
    if parked is not None:
        free = rules.free_parking_hours(k, ht, level)
        fee = rules.parking_fee(k, parked, free)
        who = "、".join(x for x in ((ht.name if ht else ""), (level["name"] + "会员" if level else "")) if x) or "观影"
        d.utter_message(response="utter_text", text=(
            f"{who}可免费停车{free}小时（{p['registration']}），停{money(parked)}小时"
            + (f"需付{money(fee)}元" if fee else "不收费")
            + f"（每小时{money(p['fee_per_hour'])}元，每日封顶{money(p['daily_cap'])}元）。"))
        return {"hours": str(parked), **kept, **({"hall_type": ask.get("hall_type") or ht.name} if ht else {})}
    if ht or level:
        who = "、".join(x for x in ((ht.name if ht else ""), (level["name"] + "会员" if level else "")) if x)
        d.utter_message(response="utter_parking_for", who=who,
                        free_hours=rules.free_parking_hours(k, ht, level), **common)
        return {**kept, **({"hall_type": ask.get("hall_type") or (ht.name if ht else "")} if ht else {})}
    names = {t.code: t.name for t in k.hall_types}
    by_hall = "、".join(names[c] for c in p["free_hours"]["hall_types"])
    hall_hours = sorted(set(p["free_hours"]["hall_types"].values()))
    levels = {lv["code"]: lv["name"] for lv in k.section("membership")["levels"]}
    by_level = "、".join(levels[c] for c in p["free_hours"]["member_levels"])
    level_hours = sorted(set(p["free_hours"]["member_levels"].values()))
    detail = f"（{by_hall}观众{'/'.join(map(str, hall_hours))}小时；{by_level}会员{'/'.join(map(str, level_hours))}小时）"
    d.utter_message(response="utter_parking", location=p["location"], free_hours=p["free_hours"]["default"],
                    free_detail=detail, height_limit=p["height_limit"], chargers=p["chargers"], **common)
    return {}


# --------------------------------------------------------------------------- membership
EXCHANGE_WORDS = re.compile(r"爆米花|可乐|饮料|观影券|电影券|电影票|(?<=换)[一两]?张票|升级券|套餐")
# what patrons call the catalogue's items: a free ticket is the 2D voucher, a drink is the cola
EXCHANGE_ALIASES = (("电影票", "观影券"), ("一张票", "观影券"), ("两张票", "观影券"), ("张票", "观影券"), ("电影券", "观影券"),
                    ("饮料", "可乐"))


def exchange_item_said(text: str, k: Optional[Knowledge] = None) -> Optional[Dict[str, Any]]:
    """The exchange-catalogue item the patron names (「换一杯中杯可乐要多少积分」), if any."""
    m = EXCHANGE_WORDS.search(text or "")
    if not m:
        return None
    if k is None:
        return {"word": m.group(0)}
    word = m.group(0)
    for said, item in EXCHANGE_ALIASES:
        word = word.replace(said, item)
    return next((o for o in k.section("membership")["exchange"] if word in o["item"]), None)


_POINTS = re.compile(r"([\d,，]+(?:\.\d+)?\s*[kK千w万]?|[零一二两三四五六七八九十百千万]+)\s*(积分|分)")
_BARE_POINTS = re.compile(r"^(?:那|那么|如果|要是|只有|我有|有)?\s*(\d{3,6}|\d+(?:\.\d+)?\s*[kK千])\s*(?:分|积分)?(?:的话)?\s*(?:呢|的话呢|能换什么|能换啥)?[?？。]*$")


def points_said(text: Optional[str]) -> Optional[int]:
    """Points the patron names: 「900分」「3k分」「两千分」, or a bare 「那1500呢」 in a points conversation."""
    t = (text or "").strip()
    hit = _POINTS.search(t) or _BARE_POINTS.search(t)
    if not hit:
        return None
    raw = hit.group(1).replace(",", "").replace("，", "").replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kK千w万]?)", raw)
    if m:
        return int(float(m.group(1)) * {"": 1, "k": 1000, "K": 1000, "千": 1000, "w": 10000, "万": 10000}[m.group(2)])
    return parse_number(raw)


# 「我今年积分4800了，还差多少能升金卡」: the points held and the level wanted give the gap
POINTS_HELD = re.compile(r"(?:积分|分数|积份)(?:有|已经|已|才|是|攒了|攒到)?\s*(\d{2,6})")
GAP_ASKED = re.compile(r"差多少|差几|还要多少|还需要?多少|还得多少|还差|多少.{0,4}(才能|就能|能)升|够不够")
# 「黑钻卡消费100块积多少分」: what a spend earns at a level's multiplier
SPEND = re.compile(r"(\d+(?:\.\d+)?)\s*(?:块钱?|元|蚊)")
EARN_ASKED = re.compile(r"积(多少|几)|(多少|几)\s*(积)?分|得(多少|几)分|有(多少|几)分")


def points_held(text: Optional[str]) -> Optional[int]:
    m = POINTS_HELD.search(text or "")
    return int(m.group(1)) if m else points_said(text)


def points_gap(k: Knowledge, text: Optional[str]) -> Optional[str]:
    """How many points short of the level the patron names (None unless both are said and the gap asked)."""
    level = rules.level_by_text(k, text)
    held = points_held(text)
    if level is None or held is None or not GAP_ASKED.search(text or ""):
        return None
    upgrade = k.section("membership")["upgrade"]
    if held >= level["threshold"]:
        return f"{level['name']}需年度累计{level['threshold']}积分，您的{held}分已经够了。{upgrade}"
    return f"{level['name']}需年度累计{level['threshold']}积分，您现在{held}分，还差{level['threshold'] - held}分。{upgrade}"


def points_earned(k: Knowledge, text: Optional[str], level_said: Optional[str] = None,
                  spend_said: Optional[str] = None) -> Optional[str]:
    """The points a spend earns at the level named (None unless an amount and the question are said).
    ``level_said``/``spend_said``: the level and spend of the last such answer, for 「打错了，是花了300块」「黑钻呢」."""
    earned = _earned(k, text, level_said, spend_said)
    return earned[0] if earned else None


def _earned(k: Knowledge, text: Optional[str], level_said: Optional[str],
            spend_said: Optional[str]) -> Optional[Tuple[str, float, Dict[str, Any]]]:
    """(answer, spend, level) of :func:`points_earned`."""
    spend = SPEND.search(text or "")
    level = rules.level_by_text(k, text)
    if spend_said and (spend or level):  # a follow-up of an earned-points answer: one of the two changed
        amount = float(spend.group(1)) if spend else float(spend_said)
        level = level or rules.level_by_text(k, level_said or "")
    elif spend is None or not EARN_ASKED.search(text or ""):
        return None
    else:
        amount = float(spend.group(1))
    level = level or k.section("membership")["levels"][0]
    earned = amount * level["points_multiplier"]
    return (f"{level['name']}消费{money(amount)}元可积{money(round(earned, 1))}分。"
            f"{k.section('membership')['points']['earn']}", amount, level)


@topic("member_points")
def member_points(d: Any, k: Knowledge, ask: Ask) -> Dict[str, str]:
    m = k.section("membership")
    gap = points_gap(k, ask.text)
    if gap:
        d.utter_message(response="utter_text", text=gap)
        return {}
    earned = _earned(k, ask.text, ask.get("level"), ask.get("spend"))
    if earned:
        answer, spend, level = earned
        d.utter_message(response="utter_text", text=answer)
        return {"spend": money(spend), "level": level["name"]}
    points = points_said(ask.text)
    item = exchange_item_said(ask.text, k)
    if item and points is None and not re.search(r"退|改签", ask.text):
        d.utter_message(response="utter_text", text=f"{item['item']}需要{item['points']}积分。{m['points']['where']}")
        return {}
    if points is not None:
        options = rules.exchange_options(k, points)
        if options:
            lines = [f"· {o['points']}分：{o['item']}" for o in options]
            d.utter_message(response="utter_points_exchange", points=points, lines=join_lines(lines), where=m["points"]["where"])
        else:
            lowest = rules.exchange_options(k, None)[0]
            d.utter_message(response="utter_points_not_enough", points=points, min_points=lowest["points"],
                            min_item=lowest["item"], earn=m["points"]["earn"])
        return {}
    lines = [f"· {o['points']}分：{o['item']}" for o in rules.exchange_options(k, None)]
    d.utter_message(response="utter_points_rules", earn=m["points"]["earn"], expiry=m["points"]["expiry"],
                    where=m["points"]["where"], lines=join_lines(lines), query=m["points"]["query"])
    return {}


@topic("member_benefits")
def member_benefits(d: Any, k: Knowledge, ask: Ask) -> Dict[str, str]:
    m = k.section("membership")
    level = rules.level_by_text(k, ask.text) if ask.text else None
    computed = points_gap(k, ask.text)
    if computed:
        d.utter_message(response="utter_text", text=computed)
        return {}
    if level:
        d.utter_message(response="utter_member_level", name=level["name"], threshold=level["threshold"],
                        perks="、".join(level["perks"]))
        return {}
    if ask.text and "生日" in ask.text:
        d.utter_message(response="utter_text", text=m["birthday"])
        return {}
    lines = [f"· {lv['name']}（{lv['threshold']}分）：{'、'.join(lv['perks'])}" for lv in m["levels"]]
    d.utter_message(response="utter_member_benefits", signup=m["signup"], lines=join_lines(lines),
                    upgrade=m["upgrade"], birthday=m["birthday"])
    return {}


# --------------------------------------------------------------------------- topics answered by keyword
def _match_topics(items: List[Dict[str, Any]], *texts: Optional[str]) -> List[Dict[str, Any]]:
    found = []
    for item in items:
        words = [item["name"], *item["aliases"]]
        if any(t and any(w.lower() in t.lower() for w in words) for t in texts):
            found.append(item)
    return found


@topic("facilities")
def facilities(d: Any, k: Knowledge, ask: Ask) -> Dict[str, str]:
    items = k.section("facilities")["facilities"]
    hits = _match_topics(items, ask.get("facility"), ask.text)
    if hits:
        d.utter_message(response="utter_text", text=join_lines([h["answer"] for h in hits[:3]]))
        return {"facility": ask.get("facility") or hits[0]["name"]}
    d.utter_message(response="utter_text", text=join_lines([f"· {i['answer']}" for i in items]))
    return {}


@topic("viewing_rules")
def viewing_rules(d: Any, k: Knowledge, ask: Ask) -> Dict[str, str]:
    items = k.section("viewing_rules")["rules"]
    hits = _match_topics(items, ask.text)
    chosen = hits[:3] if hits else items
    d.utter_message(response="utter_text", text=join_lines([f"{'· ' if not hits else ''}{i['answer']}" for i in chosen]))
    return {}


@topic("cinema_info")
def cinema_info(d: Any, k: Knowledge, ask: Ask) -> Dict[str, str]:
    c = k.section("cinema")
    d.utter_message(response="utter_cinema_info", name=c["name"], address=c["address"], directions=c["directions"],
                    opening_hours=c["opening_hours"], hotline=c["hotline"], hotline_hours=c["hotline_hours"])
    return {}


@topic("vip_service")
def vip_service(d: Any, k: Knowledge, ask: Ask) -> Dict[str, str]:
    lounge = next((f["answer"] for f in k.section("facilities")["facilities"] if f["key"] == "vip_lounge"), "")
    d.utter_message(response="utter_vip_service", vip_booking=k.section("services")["vip_booking"], lounge=lounge)
    return {}


@topic("order_problem")
def order_problem(d: Any, k: Knowledge, ask: Ask) -> Dict[str, str]:
    orders = k.section("orders")
    third = k.section("refund").get("third_party") or {}
    if ask.text and any(p in ask.text for p in third.get("platforms") or ()) and third.get("text"):
        # 「淘票票买的票出不了票」: a ticket of another platform is that platform's to sort out — said first
        d.utter_message(response="utter_text", text=third["text"])
    hits = _match_topics(orders["problems"], ask.text)
    if hits:
        d.utter_message(response="utter_order_problem", answer=hits[0]["answer"], order_format=orders["order_id"]["text"])
    else:
        d.utter_message(response="utter_order_problem_general",
                        lines=join_lines([f"· {p['answer']}" for p in orders["problems"]]))
    return {}


# What a patron asks about their own complaint: when they hear back, what they get, whether anyone acts.
COMPLAINT_WHEN = re.compile(r"(多久|多长时间|什么时候|啥时候|几时|何时|几天|要等).{0,6}(回复|答复|处理|回电|联系|结果|给.{0,2}说法|解决)|"
                            r"(回复|答复|处理|解决).{0,4}(多久|要多久|几天|什么时候)|等多久|多久给")
COMPLAINT_REMEDY = re.compile(r"修不好|好不了|看不成了?[吗呢]|解决不了|弄不好|补偿|赔|退钱|退款|能退|可以退|退票|改签|券|怎么弥补|给个说法")
COMPLAINT_ACTION = re.compile(r"管不管|有人管|能不能解决|能解决|处理吗|怎么处理|会处理|派人|有没有人|回访|回电话|打电话给我|联系我吗|"
                             r"(多久|多长时间|什么时候|啥时候|几时|几分钟).{0,4}(有人|来人|到场|过来|来处理)|人.{0,2}(什么时候|多久)(来|到)")
COMPLAINT_QUESTION = re.compile(f"{COMPLAINT_WHEN.pattern}|{COMPLAINT_REMEDY.pattern}|{COMPLAINT_ACTION.pattern}")
# 「那退款多久到」「是原路退吗」 during a complaint: the refund rules' facts, not the complaint's remedy
REFUND_MONEY = re.compile(r"多久到|几天到|多久能到|到账|原路|退到哪|退回哪|退到什么")


# 「这属于放映事故吧，你们怎么赔」: the refund rule for the cinema's own fault answers, not the category's remedy
CINEMA_FAULT = re.compile(r"放映事故|设备故障|影城原因|影院原因|你们的原因|影城的原因|场次取消")


def about_complaint(text: Optional[str]) -> bool:
    """Whether a question during a complaint asks about the complaint's handling or remedy."""
    return bool(COMPLAINT_QUESTION.search(text or "")) and not REFUND_MONEY.search(text or "") \
        and not CINEMA_FAULT.search(text or "")


def complaint_category_named(k: Knowledge, code: Optional[str], text: str = "") -> Dict[str, Any]:
    """The complaint category by its code, else the one whose keywords the words mention, else 其他."""
    cats = k.section("complaints")["categories"]
    return next((c for c in cats if c["code"] == code), None) or \
        next((c for c in cats if any(w in (text or "") for w in c["keywords"])), cats[-1])


@topic("complaint")
def complaint(d: Any, k: Knowledge, ask: Ask) -> Dict[str, str]:
    """A question about the patron's complaint: the reply time and handling, or the remedy, of its category."""
    cat = complaint_category_named(k, ask.get("category"), ask.text)
    text = ask.text or ""
    if COMPLAINT_REMEDY.search(text) and not COMPLAINT_WHEN.search(text):
        d.utter_message(response="utter_text", text=cat["remedy"])
    elif COMPLAINT_WHEN.search(text) or COMPLAINT_ACTION.search(text):
        d.utter_message(response="utter_text", text=cat["handling"])
    else:
        d.utter_message(response="utter_text", text=cat["handling"] + cat["remedy"])
    return {"category": cat["code"]}


# intent → topic, for follow-ups and side questions asked in the middle of a form
INTENT_TOPIC = {f"ask_{t}": t for t in TOPICS if t not in ("order_problem", "complaint")}
INTENT_TOPIC["report_order_problem"] = "order_problem"
