"""Resolve what patrons say (Chinese free text) into concrete values.

Pure functions without I/O or user-facing replies: dates, time windows, numbers, head
counts, phone numbers and order ids. Callers pass ``today`` in the cinema's time zone
(Asia/Shanghai); nothing here reads the clock.

Choices made where Chinese is ambiguous (tests pin them down):

* ``周X`` / ``星期X`` without a prefix is the *coming* one: today if today is that
  weekday, else the next occurrence within 7 days.
* ``这周X`` / ``本周X`` is that weekday of the current Monday–Sunday week, returned even
  when it is already past (the caller decides what to say about a past date).
* ``周末`` / ``这周末`` is Saturday of the current week, or today when today is Sunday;
  ``下周末`` is Saturday of the next week.
* ``X号`` is this month, or the next month (with such a day) once the day has passed;
  ``X月X日`` is this year, or next year once it has passed.  An explicit year is kept.
* ``昨天`` / ``前天`` and ``上周X`` resolve to past dates (useful for lost items and orders).
* Hours: with 下午/晚上/傍晚/夜 1–11 get +12; with 中午 1–4 get +12; bare 1–9 are PM,
  bare 10/11 stay AM, 12 is noon; ``晚上12点`` is midnight and is clamped to 23:59.
* ``二十多人`` / ``二十来个`` count as 20 (the lower bound); ``20张`` (tickets) counts as
  20 people; ranges (``三四个人``, ``二三十人``, ``20-30人``) are vague and give ``None``.
* An explicit ``am``/``pm`` after a clock time overrides the hour heuristics.
* Numbers that are not whole (``2.5``) give ``None`` from :func:`parse_number`.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata

try:  # cn2an handles mixed forms such as "3千", "1.5万" and "一万二".
    import cn2an  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - cn2an is a project dependency
    cn2an = None

__all__ = [
    "resolve_date",
    "resolve_time_window",
    "parse_number",
    "parse_party_size",
    "normalize_phone",
    "normalize_order_id",
    "weekday_name",
]

# ---------------------------------------------------------------------------
# text and numeral helpers
# ---------------------------------------------------------------------------

_TRAD = str.maketrans(
    {"點": "点", "時": "时", "週": "周", "號": "号", "兩": "两", "後": "后", "個": "个",
     "禮": "礼", "這": "这", "於": "于", "許": "许", "幾": "几"}
)

_CN_DIGIT = "零〇一二两三四五六七八九"
_CN_NUM_CHARS = _CN_DIGIT + "十百千万"
_CN_DIGIT_VALUE = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
                   "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}

#: A small number (days, months, hours): 1–2 Arabic digits or 1–3 Chinese numerals.
_SMALL = rf"(?:\d{{1,2}}|[{_CN_DIGIT}十]{{1,3}})"


def _normalize(text: str) -> str:
    """NFKC-normalise (full-width → half-width) and map a few traditional characters."""
    return unicodedata.normalize("NFKC", text or "").translate(_TRAD)


def _cn_fallback(token: str) -> int | None:
    """Convert a pure Chinese numeral without cn2an (used only when cn2an fails)."""
    if token and all(ch in _CN_DIGIT_VALUE for ch in token):
        if len(token) == 1:
            return _CN_DIGIT_VALUE[token]
        return int("".join(str(_CN_DIGIT_VALUE[ch]) for ch in token))  # 二零二六
    units = {"十": 10, "百": 100, "千": 1000}
    total = section = number = 0
    for ch in token:
        if ch in _CN_DIGIT_VALUE:
            number = _CN_DIGIT_VALUE[ch]
        elif ch in units:
            if number == 0 and ch == "十":
                number = 1
            section += number * units[ch]
            number = 0
        elif ch == "万":
            total += (section + number) * 10000
            section = number = 0
        else:
            return None
    return total + section + number


def _to_int(token: str) -> int | None:
    """Turn one numeral token (Arabic, Chinese or mixed like ``3千``) into an int.

    Returns ``None`` when the token is not a whole number.
    """
    token = token.strip().replace(",", "")
    if not token:
        return None
    if re.fullmatch(r"[0-9]+", token):
        return int(token)
    value: float | int | None = None
    if cn2an is not None:
        try:
            value = cn2an.cn2an(token, "smart")
        except Exception:  # cn2an raises ValueError and friends on odd input
            value = None
    if value is None and all(ch in _CN_NUM_CHARS for ch in token):
        value = _cn_fallback(token)
    if value is None:
        return None
    if float(value) != int(value):
        return None
    return int(value)


# ---------------------------------------------------------------------------
# dates
# ---------------------------------------------------------------------------

_WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_WEEKDAY_CHAR = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
                 "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}

_ISO_RE = re.compile(
    r"(?<!\d)(\d{4})\s*(?:[-/.]|年)\s*(\d{1,2})\s*(?:[-/.]|月)\s*(\d{1,2})(?!\d)"
)
_REL_MONTH_RE = re.compile(rf"(下个?月|这个?月|本月)\s*({_SMALL})\s*[号日]")
_MONTH_DAY_RE = re.compile(
    rf"(?<![\d{_CN_DIGIT}十])({_SMALL})\s*月\s*({_SMALL})(?![\d{_CN_DIGIT}十])\s*[号日]?"
)
_SLASH_RE = re.compile(
    r"(?<![\d./:\-])(\d{1,2})\s*[/.]\s*(\d{1,2})"
    r"(?![\d./:]|[A-Za-z%]|\s*(?:米|元|块|折|小时|分|倍|公里|万|千|个|人|岁|寸|斤|升|秒))"
)
_DAY_ONLY_RE = re.compile(
    rf"(?<![\d{_CN_DIGIT}十月])({_SMALL})\s*[号日](?![厅线门口楼座排位院场游])"
)
_RELATIVE_DAYS: tuple[tuple[str, int], ...] = (
    ("大后天", 3), ("大前天", -3),
    ("后天", 2), ("后晚", 2), ("后日", 2),
    ("明天", 1), ("明日", 1), ("明晚", 1), ("明儿", 1), ("明早", 1), ("明夜", 1),
    ("今天", 0), ("今日", 0), ("今晚", 0), ("今儿", 0), ("今早", 0), ("今夜", 0),
    ("昨天", -1), ("昨日", -1), ("昨晚", -1), ("昨儿", -1),
    ("前天", -2), ("前晚", -2),
)
_WEEK_RE = re.compile(
    r"(?<!每)(下下个?|下个?|上个?|这个?|本)?\s*(?:周|星期|礼拜)\s*([一二三四五六日天1-7]|末)"
)


def weekday_name(d: dt.date) -> str:
    """Return the Chinese short weekday name of ``d`` (``周一`` … ``周日``)."""
    return _WEEKDAY_NAMES[d.weekday()]


def _safe_date(year: int, month: int, day: int) -> dt.date | None:
    """Build a date or return ``None`` when it does not exist."""
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    """Return (year, month) ``n`` months after the given month."""
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def _roll_month_day(month: int, day: int, today: dt.date) -> dt.date | None:
    """``X月X日`` without a year: this year, or the next year in which it exists and is not past."""
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    for year in range(today.year, today.year + 5):  # 2月29日 may need a leap year
        candidate = _safe_date(year, month, day)
        if candidate is not None and candidate >= today:
            return candidate
    return None


def _roll_day(day: int, today: dt.date) -> dt.date | None:
    """``X号``: this month, or the next month having that day once it has passed."""
    if not 1 <= day <= 31:
        return None
    for offset in range(0, 13):
        year, month = _add_months(today.year, today.month, offset)
        candidate = _safe_date(year, month, day)
        if candidate is not None and candidate >= today:
            return candidate
    return None


def _resolve_week(prefix: str | None, target: str, today: dt.date) -> dt.date:
    """Resolve ``[这/本/下/下下/上]周X`` and ``周末`` relative to ``today``."""
    monday = today - dt.timedelta(days=today.weekday())
    prefix = (prefix or "").rstrip("个")
    week_offset = {"": 0, "这": 0, "本": 0, "下": 1, "下下": 2, "上": -1}[prefix]
    if target == "末":
        if week_offset == 0 and today.weekday() == 6:
            return today
        return monday + dt.timedelta(days=7 * week_offset + 5)
    weekday = _WEEKDAY_CHAR[target]
    if prefix == "":
        return today + dt.timedelta(days=(weekday - today.weekday()) % 7)
    return monday + dt.timedelta(days=7 * week_offset + weekday)


def resolve_date(text: str, today: dt.date) -> dt.date | None:
    """Resolve a Chinese date expression in ``text`` relative to ``today``.

    Understands 今天/明天/后天/大后天 (and 今晚, 明儿 …), 周X/星期X/礼拜X with the
    prefixes 这/本/下/下下/上, 周末/下周末, X月X日/X号 in Arabic or Chinese numerals,
    下个月X号, ISO ``2026-12-05``, ``12/5`` and ``12.5``.  Explicit calendar dates win
    over relative words, which win over weekdays, which win over a bare ``X号``.
    Returns ``None`` when nothing matches or the date does not exist.
    """
    s = _normalize(text)
    if not s:
        return None

    m = _ISO_RE.search(s)
    if m:
        return _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))

    m = _REL_MONTH_RE.search(s)
    if m:
        day = _to_int(m.group(2))
        offset = 1 if m.group(1).startswith("下") else 0
        year, month = _add_months(today.year, today.month, offset)
        return _safe_date(year, month, day) if day is not None else None

    m = _MONTH_DAY_RE.search(s)
    if m:
        month, day = _to_int(m.group(1)), _to_int(m.group(2))
        if month is None or day is None:
            return None
        return _roll_month_day(month, day, today)

    m = _SLASH_RE.search(s)
    if m:  # "12/5", "12.5"; an impossible one (19.30) is not a date: keep looking
        rolled = _roll_month_day(int(m.group(1)), int(m.group(2)), today)
        if rolled is not None:
            return rolled

    for word, offset in _RELATIVE_DAYS:
        if word in s:
            return today + dt.timedelta(days=offset)

    m = _WEEK_RE.search(s)
    if m:
        return _resolve_week(m.group(1), m.group(2), today)

    m = _DAY_ONLY_RE.search(s)
    if m:
        day = _to_int(m.group(1))
        return _roll_day(day, today) if day is not None else None

    return None


# ---------------------------------------------------------------------------
# time windows
# ---------------------------------------------------------------------------

_END_OF_DAY = 23 * 60 + 59

#: (words, start minute, end minute); more specific words first.
_PERIODS: tuple[tuple[tuple[str, ...], int, int], ...] = (
    (("午夜场", "午夜", "深夜", "半夜"), 22 * 60, _END_OF_DAY),
    (("傍晚",), 17 * 60, 19 * 60),
    (("中午",), 11 * 60, 14 * 60),
    (("下午", "午后"), 12 * 60, 18 * 60),
    (("上午", "早上", "早场", "早晨", "清晨", "今早", "明早"), 9 * 60, 12 * 60),
    (("晚上", "今晚", "明晚", "后晚", "夜场", "晚场", "晚间", "夜里", "夜间"), 18 * 60, _END_OF_DAY),
    (("白天",), 10 * 60, 18 * 60),
)

_HOUR_TOKEN = rf"(?:\d{{1,2}}|[{_CN_DIGIT}十]{{1,3}})"
_CN_MINUTE = rf"(?:[一二三四五]?十[一二三四五六七八九]?|零[一二三四五六七八九])"
_CLOCK_RE = re.compile(
    rf"(?<![\d{_CN_DIGIT}十百千万])(?P<h>{_HOUR_TOKEN})\s*(?:点钟|点|时)"
    rf"(?:\s*(?P<min>半|一刻|三刻|(?:\d{{1,2}}|[{_CN_DIGIT}十]{{1,3}})\s*分|\d{{2}}(?!\d)|{_CN_MINUTE}))?"
    r"|(?<!\d)(?P<ch>\d{1,2})\s*:\s*(?P<cm>[0-5]\d)(?!\d)"
)
_MODIFIER_RE = re.compile(
    r"\s*(?:钟\s*)?(?P<mod>左右|前后|上下|以后|之后|往后|以前|之前|多钟|多|后|前)"
)
_RANGE_SEP_RE = re.compile(
    r"\s*(?:到|至|~|-|—|–)\s*(?P<part>上午|早上|中午|下午|傍晚|晚上|夜里)?\s*"
)
_MERIDIEM_RE = re.compile(r"\s*(?P<ampm>[ap])\.?m\.?(?![a-z])", re.IGNORECASE)
#: Characters before "一点" that make it mean "a bit" (晚一点, 便宜一点) rather than 1 o'clock.
_BIT_BEFORE = set("早晚快慢近远宜贵多少大小高低好前后再稍差有点")


def _minutes_of(match: re.Match[str]) -> tuple[int, int] | None:
    """Return the raw (hour, minute) of a clock match, or ``None`` if not a clock time."""
    if match.group("ch") is not None:
        hour = int(match.group("ch"))
        return (hour, int(match.group("cm"))) if hour <= 24 else None
    hour = _to_int(match.group("h"))
    if hour is None or hour > 24:
        return None
    raw_min = match.group("min")
    minute = 0
    if raw_min:
        raw_min = raw_min.replace("分", "").strip()
        minute_value = {"半": 30, "一刻": 15, "三刻": 45}.get(raw_min)
        if minute_value is None:
            minute_value = _to_int(raw_min)
        if minute_value is None or minute_value > 59:
            return None
        minute = minute_value
    return hour, minute


def _is_bit_idiom(s: str, match: re.Match[str]) -> bool:
    """True for 一点 meaning "a little" (晚一点, 一点点, 一点儿)."""
    if match.group("h") != "一" or match.group("min"):
        return False
    before = s[match.start() - 1] if match.start() > 0 else ""
    after = s[match.end()] if match.end() < len(s) else ""
    return before in _BIT_BEFORE or after in ("点", "儿", "都", "也")


def _context(s: str) -> str:
    """Classify the day-part context used to read 12-hour clock numbers."""
    if re.search(r"(?<!傍)晚|夜", s):
        return "night"
    if re.search(r"下午|午后|傍晚", s):
        return "pm"
    if "中午" in s:
        return "noon"
    if re.search(r"上午|早|清晨|凌晨", s):
        return "am"
    return ""


def _to_24h(hour: int, context: str) -> int:
    """Apply the cinema hour heuristics; returns 0–24 (24 = midnight at day's end)."""
    if hour > 12 or hour == 0:
        return hour
    if context in ("pm", "night"):
        if hour == 12:
            return 24 if context == "night" else 12
        return hour + 12
    if context == "noon":
        return hour + 12 if hour <= 4 else hour
    if context == "am":
        return hour
    return hour + 12 if 1 <= hour <= 9 else hour


def _time_of(minutes: int) -> dt.time:
    """Minutes since midnight → time, clamped to 00:00–23:59."""
    minutes = max(0, min(_END_OF_DAY, minutes))
    return dt.time(minutes // 60, minutes % 60)


def _find_clock(s: str, start: int = 0) -> tuple[re.Match[str], tuple[int, int]] | None:
    """Find the first real clock time in ``s`` at or after ``start``."""
    for match in _CLOCK_RE.finditer(s, start):
        if match.group("h") is not None and _is_bit_idiom(s, match):
            continue
        raw = _minutes_of(match)
        if raw is not None:
            return match, raw
    return None


def resolve_clock(text: str) -> dt.time | None:
    """The first clock time said (「今晚9点」 → 21:00, 「下午3点半」 → 15:30), read with its day part."""
    s = _normalize(text)
    found = _find_clock(s) if s else None
    if found is None:
        return None
    match, (hour, minute) = found
    meridiem = _MERIDIEM_RE.match(s, match.end())
    if meridiem:
        hour = hour % 12 + (12 if meridiem.group("ampm").lower() == "p" else 0)
    else:
        hour = _to_24h(hour, _context(s[:match.end()]))
    return _time_of(hour * 60 + minute)


def resolve_time_window(text: str) -> tuple[dt.time, dt.time] | None:
    """Resolve a time-of-day expression into a ``(start, end)`` window.

    A clock time (``8点``, ``十点半``, ``19:30``) wins over a day part (``晚上``), which is
    then used only to read the hour.  ``X点`` alone gives X−0:30..X+1:00; ``以后`` X..23:59;
    ``以前`` 00:00..X; ``左右``/``前后`` X±1h; ``多`` X..X+1h; ``X点到Y点`` X..Y.
    Without a clock time the day parts map to fixed windows (晚上 18:00–23:59 …; several
    day parts give their union).  Ends are clamped to 23:59.  ``None`` if nothing matches.
    """
    s = _normalize(text)
    if not s:
        return None
    context = _context(s)
    found = _find_clock(s)
    if found is not None:
        match, (hour, minute) = found
        end_of_token = match.end()
        meridiem = _MERIDIEM_RE.match(s, end_of_token)
        if meridiem:  # "11:30pm", "8点am"
            end_of_token = meridiem.end()
            hour = hour % 12 + (12 if meridiem.group("ampm").lower() == "p" else 0)
            anchor = hour * 60 + minute
        else:
            anchor = _to_24h(hour, context) * 60 + minute
        rest = s[end_of_token:]
        sep = _RANGE_SEP_RE.match(rest)
        if sep:
            second = _find_clock(s, end_of_token + sep.end())
            if second is not None and second[0].start() == end_of_token + sep.end():
                hour2, minute2 = second[1]
                context2 = _context(sep.group("part")) if sep.group("part") else context
                end = _to_24h(hour2, context2) * 60 + minute2
                if end <= anchor and hour2 < 12:
                    end += 12 * 60
                if end > anchor:
                    return _time_of(anchor), _time_of(end)
        mod = _MODIFIER_RE.match(rest)
        kind = mod.group("mod") if mod else ""
        if kind in ("以后", "之后", "往后", "后"):
            return _time_of(anchor), _time_of(_END_OF_DAY)
        if kind in ("以前", "之前", "前"):
            return _time_of(0), _time_of(anchor)
        if kind in ("左右", "前后", "上下"):
            return _time_of(anchor - 60), _time_of(anchor + 60)
        if kind in ("多", "多钟"):
            return _time_of(anchor), _time_of(anchor + 60)
        return _time_of(anchor - 30), _time_of(anchor + 60)

    spans: list[tuple[int, int]] = []
    remaining = s
    for words, start, end in _PERIODS:
        for word in words:
            if word in remaining:
                spans.append((start, end))
                remaining = remaining.replace(word, " ")
    if not spans:
        return None
    return _time_of(min(a for a, _ in spans)), _time_of(max(b for _, b in spans))


# ---------------------------------------------------------------------------
# numbers and head counts
# ---------------------------------------------------------------------------

#: Phrases that contain numeral characters but are not numbers.
_NOT_NUMBER_RE = re.compile(
    r"一些|一堆|一点|一下|一起|一共|一般|一直|一定|一样|一会|一切|一群|一帮|一伙|一大|一家|"
    r"万一|千万|十分|统一|唯一|之一|第一|"
    r"[几数好][十百千万]|十几|几|"
    r"(?:周|星期|礼拜)[一二三四五六日天]"
)
_NUMBER_RE = re.compile(
    rf"(?:\d{{1,3}}(?:,\d{{3}})+|\d+(?:\.\d+)?)(?:\s*[十百千万亿]+[0-9{_CN_DIGIT}]?)?"
    rf"|[{_CN_DIGIT}十][{_CN_NUM_CHARS}]*"
)
_VAGUE_RE = re.compile(r"很多|好多|许多|不少|一些|一堆|一群|一帮|一大|若干|好些|好几|几")
_PARTY_RE = re.compile(
    rf"((?:\d+|[{_CN_DIGIT}十][{_CN_NUM_CHARS}]*))\s*(?:[多来余]\s*)?"
    r"(?:个人|个(?![小月钟星礼周工半])|人(?!民)|位|名|口|张)"
)
#: Two adjacent Chinese digits are a range (一两个, 三四个, 二三十): vague, not a number.
_CN_RANGE_RE = re.compile(
    rf"[{_CN_NUM_CHARS}]*(?:一两|两三|二三|三四|三五|四五|五六|六七|七八|八九)[{_CN_NUM_CHARS}]*"
)
#: An Arabic range of people (20-30人, 20到30个): the count is not known.
_ARABIC_RANGE_RE = re.compile(r"\d+\s*(?:-|~|到|至|—)\s*\d+\s*(?:个|人|位|名|张)")
_PARTY_FILLER_RE = re.compile(
    r"大概|大约|约|差不多|一共|总共|共|我们|咱们|我|咱|有|就|是|吧|啊|呢|呀|哦|左右|上下|"
    r"[\s,，。.!！?？~、]"
)


def _strip_non_numbers(s: str) -> str:
    """Blank out idioms and ranges that contain numeral characters but are not numbers."""
    return _CN_RANGE_RE.sub(" ", _NOT_NUMBER_RE.sub(" ", s))


def parse_number(text: str) -> int | None:
    """Return the first whole number in ``text`` (Arabic, Chinese or mixed, e.g. ``3千``).

    Vague amounts (很多, 好多, 一些, 十几) and weekday names (周二) are not numbers;
    ``None`` when there is no number or it is not whole (``2.5``).
    """
    s = _strip_non_numbers(_normalize(text))
    m = _NUMBER_RE.search(s)
    if not m:
        return None
    return _to_int(m.group(0))


def parse_party_size(text: str) -> int | None:
    """Return a head count (1..2000) from ``20个人``, ``三十人``, ``25位``, ``十五个`` or a bare number.

    Counts need a person unit (人, 个, 位, 名, 口, 张) unless the text is only a number;
    other units (两桌) and vague amounts (很多人, 一堆人) give ``None``.
    """
    s = _normalize(text).replace("俩", "两").replace("仨", "三").replace("廿", "二十").replace("卅", "三十")
    if _ARABIC_RANGE_RE.search(s):
        return None
    s = _strip_non_numbers(s)
    m = _PARTY_RE.search(s)
    value: int | None = None
    if m:
        value = _to_int(m.group(1))
    else:
        bare = _PARTY_FILLER_RE.sub("", s)
        if bare and _NUMBER_RE.fullmatch(bare):
            value = _to_int(bare)
    if value is None or not 1 <= value <= 2000:
        return None
    return value


# ---------------------------------------------------------------------------
# phone numbers and order ids
# ---------------------------------------------------------------------------

_SEP = r"[ \t\-]{0,2}"
_PHONE_RE = re.compile(
    rf"(?<!\d)(?:(?:\+|00)?\s*86{_SEP})?(1{_SEP}[3-9](?:{_SEP}\d){{9}})(?!\d)"
)
_ORDER_RE = re.compile(rf"[Xx]\s*[Hh]((?:{_SEP}\d){{12}})(?!\d)")


def normalize_phone(text: str) -> str | None:
    """Return the first mainland mobile number (``1[3-9]`` + 9 digits) in ``text`` as 11 digits.

    Tolerates spaces, dashes, ``+86``/``0086``/``86`` prefixes and full-width digits.
    """
    s = _normalize(text)
    m = _PHONE_RE.search(s)
    if not m:
        return None
    return re.sub(r"\D", "", m.group(1))


def last_phone(text: str) -> str | None:
    """The last mainland mobile number in ``text`` (「…0000，不对，是…0001」 → the second), as 11 digits."""
    found = list(_PHONE_RE.finditer(_normalize(text)))
    return re.sub(r"\D", "", found[-1].group(1)) if found else None


def normalize_order_id(text: str) -> str | None:
    """Return the first order id (``XH`` + 12 digits) in ``text`` in canonical upper case.

    Case-insensitive, tolerant of full-width characters and spaces or dashes between digits.
    """
    s = _normalize(text)
    m = _ORDER_RE.search(s)
    if not m:
        return None
    return "XH" + re.sub(r"\D", "", m.group(1))
