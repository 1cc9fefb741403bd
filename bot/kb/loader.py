"""Validate knowledge files and publish them into the store atomically, as a new version.

A file with an error rejects the whole import: the caller gets every problem as
``file:line: reason`` and the published data stays as it was.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from bot.answers import templates
from bot.kb import schema
from bot.kb import timeline
from bot.kb.merge import merge3
from bot.models import KnowledgeEffect, KnowledgeVersion, utcnow

MAX_FILE_BYTES = 2 * 1024 * 1024
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster, same documents


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    reason: str
    column: str = ""  # showtimes.csv: the column at fault
    zh: str = ""      # the reason in Chinese, for the editor pages (showtimes.csv)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class KnowledgeError(Exception):
    """Raised with every problem found; nothing was written."""

    def __init__(self, problems: List[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# --------------------------------------------------------------------------- reading
def read_dir(directory: Path | str) -> Dict[str, bytes]:
    """The knowledge files of a folder as bytes (missing files are reported by ``validate``)."""
    directory = Path(directory)
    return {name: (directory / name).read_bytes() for name in schema.ALL_FILES if (directory / name).exists()}


def _decode(name: str, raw: bytes, problems: List[Problem]) -> Optional[str]:
    if len(raw) > MAX_FILE_BYTES:
        problems.append(Problem(name, 1, f"file is larger than {MAX_FILE_BYTES // 1024} KB"))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(Problem(name, line, "file is not UTF-8 text (save it as UTF-8)"))
        return None
    return text.lstrip("\ufeff")


def _node_line(node: Any, loc: Tuple[Any, ...]) -> int:
    """Line (1-based) of the YAML node at a pydantic error location; the deepest one found."""
    line = node.start_mark.line + 1 if node is not None else 1
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == key), None)
            if match is None:
                key_node = next((k for k, _ in node.value if k.value == key), None)
                return key_node.start_mark.line + 1 if key_node else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line + 1
    return line


def _load_yaml(name: str, text: str, problems: List[Problem]) -> Any:
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(Problem(name, (mark.line + 1) if mark else 1, f"YAML syntax: {getattr(exc, 'problem', exc)}"))
        return None
    model = schema.YAML_FILES[name]
    try:
        return model.parse_obj(data or {})
    except ValidationError as exc:
        node = yaml.compose(text, Loader=_YAML_LOADER)  # only now: the lines of the problems
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = ".".join(str(p) for p in loc)
            problems.append(Problem(name, _node_line(node, loc), f"{where}: {err['msg']}"))
        return None


CSV_FIELD_ZH = {
    "day": "「{v}」无法识别：请写 daily（每天）、mon…sun（周一…周日），或具体日期如 2026-12-03、2026/12/3",
    "start": "「{v}」应为 时:分，如 09:30",
    "film": "影片不能为空",
    "hall": "「{v}」应为正整数，如 3",
    "version": "「{v}」应为 2D 或 3D",
}


def _load_csv(name: str, text: str, problems: List[Problem]) -> List[Tuple[int, schema.ShowtimeRow]]:
    """Every row that parses; a problem (with its column, in English and Chinese) for each one that does not."""
    rows: List[Tuple[int, schema.ShowtimeRow]] = []
    reader = csv.DictReader(io.StringIO(text))
    expected = list(schema.ShowtimeRow.__fields__)
    header = [schema.SHOWTIME_HEADER_ALIASES.get(f.strip(), f.strip()) for f in reader.fieldnames or []]
    if header != expected:
        problems.append(Problem(name, 1, f"header must be: {','.join(expected)}",
                                zh=f"第1行是表头，应为：{','.join(expected)}（或 日期,开场时间,影片,厅号,版本）"))
        return rows
    reader.fieldnames = header
    for record in reader:
        line = reader.line_num
        if None in record or any(v is None for v in record.values()):
            count = len(expected) + len(record.get(None) or []) - sum(v is None for v in record.values())
            problems.append(Problem(name, line, f"expected {len(expected)} columns",
                                    zh=f"应有{len(expected)}列（{','.join(expected)}），这一行有{count}列"))
            continue
        if not any(v.strip() for v in record.values()):
            continue  # an empty line as spreadsheets leave at the end
        values = {k: v.strip() for k, v in record.items()}
        try:
            rows.append((line, schema.ShowtimeRow.parse_obj(values)))
        except ValidationError as exc:
            for err in exc.errors():
                col = str(err["loc"][0])
                problems.append(Problem(name, line, f"{'.'.join(map(str, err['loc']))}: {err['msg']}", column=col,
                                        zh=CSV_FIELD_ZH.get(col, "{v}").format(v=values.get(col, ""))))
    return rows


# --------------------------------------------------------------------------- validation
@dataclass
class Parsed:
    docs: Dict[str, Any]
    showtimes: List[Tuple[int, schema.ShowtimeRow]]
    texts: Dict[str, str] = field(default_factory=dict)

    def line_of(self, file: str, needle: str, nth: int = 1) -> int:
        """The ``nth`` line of ``file`` that contains ``needle`` (the first when fewer do; 1 when none does)."""
        found = [no for no, line in enumerate(self.texts.get(file, "").splitlines(), start=1) if needle in line]
        return found[min(nth, len(found)) - 1] if found else 1


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _cross_check(p: Parsed, problems: List[Problem]) -> None:
    halls: schema.Halls = p.docs["halls.yml"]
    films: schema.Films = p.docs["films.yml"]
    prices: schema.Prices = p.docs["prices.yml"]
    type_codes = {t.code for t in halls.hall_types}
    price_keys = {r.key for r in prices.base}

    def dup(items: List[str], file: str, what: str) -> None:
        seen: Dict[str, int] = {}
        for item in items:
            seen[item] = seen.get(item, 0) + 1
            if seen[item] > 1:  # the line of the repeat, so the editor sees which one to change
                problems.append(Problem(file, p.line_of(file, item, seen[item]), f"duplicate {what}: {item}"))

    dup([t.code for t in halls.hall_types], "halls.yml", "hall type code")
    dup([str(h.number) for h in halls.halls], "halls.yml", "hall number")
    for t in halls.hall_types:
        if t.price_key not in price_keys and not any(k.startswith(t.price_key + "_") for k in price_keys):
            problems.append(Problem("halls.yml", p.line_of("halls.yml", f"price_key: {t.price_key}"),
                                    f"hall type {t.code}: price_key {t.price_key} not in prices.yml"))
    for h in halls.halls:
        if h.type not in type_codes:
            problems.append(Problem("halls.yml", 1, f"hall {h.number}: unknown hall type {h.type}"))
    names = [f.title for f in films.films] + [a for f in films.films for a in f.aliases]
    dup(names, "films.yml", "film title or alias")
    for f in films.films:
        for fmt in f.formats:
            if fmt.split(":")[0] not in type_codes:
                problems.append(Problem("films.yml", p.line_of("films.yml", f.title), f"{f.title}: unknown hall type {fmt}"))
    parking: schema.Parking = p.docs["parking.yml"]
    levels = {lv.code for lv in p.docs["membership.yml"].levels}
    for code in parking.free_hours.hall_types:
        if code not in type_codes:
            problems.append(Problem("parking.yml", 1, f"free_hours.hall_types: unknown hall type {code}"))
    for code in parking.free_hours.member_levels:
        if code not in levels:
            problems.append(Problem("parking.yml", 1, f"free_hours.member_levels: unknown level {code}"))
    complaints: schema.Complaints = p.docs["complaints.yml"]
    wording = [*complaints.empathy, complaints.apology_after, complaints.ask_facts,
               complaints.escalation.human_online, complaints.escalation.human_offline,
               complaints.escalation.timeout, complaints.escalation.handback,
               complaints.emergency.first_reply, complaints.emergency.follow_up, *(c.handling for c in complaints.categories),
               *(c.remedy for c in complaints.categories)]
    for text in wording:
        for phrase in complaints.forbidden_phrases:
            if phrase in text:
                problems.append(Problem("complaints.yml", p.line_of("complaints.yml", text[:20]),
                                        f"wording uses the forbidden phrase 「{phrase}」: {text}"))

    lexicon: schema.Lexicon = p.docs["lexicon.yml"]
    dup([e.to for e in lexicon.entries], "lexicon.yml", "standard word (to)")
    dup([v for e in lexicon.entries for v in e.variants], "lexicon.yml", "variant")

    questions: schema.Questions = p.docs["questions.yml"]
    dup([q.key for q in questions.questions], "questions.yml", "question key")
    sections = {name.rsplit(".", 1)[0]: _jsonable(doc) for name, doc in p.docs.items()}
    # the film as templates see it: its fields plus its halls in words ({film.halls})
    sample_film = {**sections["films"]["films"][0], "halls": ""} if sections["films"]["films"] else None
    sample_type = sections["halls"]["hall_types"][0] if sections["halls"]["hall_types"] else None
    for q in questions.questions:
        why = templates.check(q.answer, sections, sample_film, sample_type)
        if why:
            problems.append(Problem("questions.yml", p.line_of("questions.yml", f"key: {q.key}"),
                                    f"question {q.key}: {why}"))
        for phrase in complaints.forbidden_phrases:
            if phrase in q.answer:
                problems.append(Problem("questions.yml", p.line_of("questions.yml", f"key: {q.key}"),
                                        f"question {q.key} uses the forbidden phrase 「{phrase}」"))

    # showtimes: known film and hall, the film plays in that hall type/version, no overlap in a hall
    film_by_title = {f.title: f for f in films.films}
    hall_by_no = {h.number: h for h in halls.halls}
    slots: Dict[Tuple[str, int], List[Tuple[int, int, int, str]]] = {}
    for line, row in p.showtimes:
        film = film_by_title.get(row.film)
        hall = hall_by_no.get(row.hall)
        if film is None:
            problems.append(Problem("showtimes.csv", line, f"unknown film 「{row.film}」 (not in films.yml)", "film",
                                    f"「{row.film}」不在影片列表里（片名要与“影片”页上的完全一致）"))
        if hall is None:
            problems.append(Problem("showtimes.csv", line, f"unknown hall {row.hall} (not in halls.yml)", "hall",
                                    f"没有{row.hall}号厅"))
        if film is None or hall is None:
            continue
        allowed = {fmt for fmt in film.formats}
        if hall.type not in allowed and f"{hall.type}:{row.version}" not in allowed:
            problems.append(Problem("showtimes.csv", line, f"{row.film} is not shown in {hall.name} ({row.version})",
                                    "version", f"《{row.film}》没有 {hall.name} 的 {row.version} 版本"
                                               f"（它的放映格式：{'、'.join(film.formats)}）"))
        start = _minutes(row.start)
        key = (row.day, row.hall)
        for other_line, other_start, other_end, other_film in slots.get(key, []):
            if start == other_start:
                problems.append(Problem("showtimes.csv", line, f"duplicate showtime: {hall.name} {row.day} {row.start} (line {other_line})",
                                        "start", f"与第{other_line}行重复：{hall.name} {row.day} {row.start} 已有场次"))
            elif start < other_end and other_start < start + film.runtime_min:
                problems.append(Problem("showtimes.csv", line, f"overlaps {other_film} in {hall.name} at line {other_line}",
                                        "start", f"与第{other_line}行的《{other_film}》在{hall.name}时间重叠"
                                                 f"（《{row.film}》片长{film.runtime_min}分钟）"))
        slots.setdefault(key, []).append((line, start, start + film.runtime_min, row.film))


def validate(files: Dict[str, bytes], cross_check: bool = True) -> Parsed:
    """Parse and check all knowledge files; raise ``KnowledgeError`` listing every problem.
    ``cross_check=False`` only parses (for files validated when they were published)."""
    problems: List[Problem] = []
    docs: Dict[str, Any] = {}
    showtimes: List[Tuple[int, schema.ShowtimeRow]] = []
    texts: Dict[str, str] = {}
    for name in schema.ALL_FILES:
        if name not in files:
            problems.append(Problem(name, 0, "file is missing"))
            continue
        text = _decode(name, files[name], problems)
        if text is None:
            continue
        texts[name] = text
        if name in schema.YAML_FILES:
            docs[name] = _load_yaml(name, text, problems)
        else:
            showtimes = _load_csv(name, text, problems)
    if cross_check and not any(p.file != "showtimes.csv" for p in problems) and "showtimes.csv" in texts:
        _cross_check(Parsed(docs, showtimes, texts), problems)
    if problems:
        raise KnowledgeError(problems)
    return Parsed(docs, showtimes, texts)


def checksum(files: Dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name] + b"\0")
    return h.hexdigest()


# --------------------------------------------------------------------------- publishing
class ScheduleConflict(KnowledgeError):
    """A change that cannot be combined with a scheduled version (see ``publish``)."""


def current_version(session: Session) -> Optional[KnowledgeVersion]:
    """The version that took effect last (scheduled versions count from their moment on)."""
    vid = timeline.current_version_id(session)
    return session.get(KnowledgeVersion, vid) if vid else None


def current_files(session: Session, at: Optional[dt.datetime] = None) -> Dict[str, bytes]:
    """The files in effect now (or at ``at``, UTC: what a change scheduled for then is made on)."""
    return {k: v.encode("utf-8") for k, v in timeline.files_at(session, at).items()}


def _jsonable(model: Any) -> Any:
    return json.loads(model.json(by_alias=True))


def lock_knowledge(session: Session) -> None:
    """Serialise publishers until the transaction ends (PostgreSQL advisory lock; SQLite's writer lock
    already serialises), so a version check followed by a publish cannot interleave with another."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sql_text("SELECT pg_advisory_xact_lock(7320042)"))


def _texts(files: Dict[str, bytes]) -> Dict[str, str]:
    return {k: v.decode("utf-8").lstrip("\ufeff") for k, v in files.items()}


def _raw(texts: Dict[str, str]) -> Dict[str, bytes]:
    return {k: v.encode("utf-8") for k, v in texts.items()}


def cinema_time(value: dt.datetime) -> str:
    from zoneinfo import ZoneInfo

    return value.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")


def publish(session: Session, files: Dict[str, bytes], author: str = "system", comment: str = "",
            force: bool = False, effective_at: Optional[dt.datetime] = None) -> Optional[KnowledgeVersion]:
    """Validate ``files`` and record them as a new version in the caller's transaction; ``None`` if nothing
    changed. ``effective_at`` (UTC, in the future) schedules it; otherwise it takes effect at once.

    Scheduled versions still to come that changed the same files get this change merged in (line by line),
    so it is not undone when they take effect; if both changed the same lines, or the knowledge at a later
    scheduled moment would no longer validate, ``ScheduleConflict`` says so and nothing is written."""
    validate(files)
    lock_knowledge(session)
    now = utcnow()
    at = effective_at if effective_at is not None and effective_at > now else now
    new = _texts(files)
    base = timeline.files_at(session, at)
    changed = [n for n in schema.ALL_FILES if new.get(n) != base.get(n)]
    if not changed and not force:
        return None
    later = timeline.pending(session, at)
    rebased: Dict[int, Dict[str, str]] = {}
    problems: List[Problem] = []
    for p in later:
        overlap = [n for n in changed if p.touches(n)]
        if not overlap:
            continue
        before = timeline.files_before(session, p)
        merged = dict(session.get(KnowledgeVersion, p.id).files)
        for name in overlap:
            text = merge3(before.get(name, ""), merged.get(name, ""), new[name]) \
                if before.get(name) == base.get(name) else None
            if text is None:
                problems.append(Problem(name, 0, f"version {p.id} (scheduled for {cinema_time(p.effective_at)}) changes "
                                                 f"the same lines; cancel it or schedule this change after it",
                                        zh=f"版本 {p.id}（定时于 {cinema_time(p.effective_at)} 生效）改了同样的内容，两者无法合并："
                                           f"请先在“版本与回滚”中取消它，或把这次修改也定在它之后生效"))
            else:
                merged[name] = text
        rebased[p.id] = merged
    if problems:
        raise ScheduleConflict(problems)
    version = KnowledgeVersion(author=author, comment=comment, checksum=checksum(files), files=new, created_at=now)
    session.add(version)
    session.flush()
    session.add(KnowledgeEffect(version_id=version.id, effective_at=at, changed=changed))
    for vid, merged in rebased.items():
        old = session.get(KnowledgeVersion, vid)
        old.files = merged
        old.checksum = checksum(_raw(merged))
    session.flush()
    for p in later:  # what every later scheduled moment will bring must still be valid knowledge
        try:
            validate(_raw(timeline.files_at(session, p.effective_at)))
        except KnowledgeError as exc:
            raise ScheduleConflict([Problem(x.file, x.line, f"once version {p.id} takes effect "
                                            f"({cinema_time(p.effective_at)}): {x.reason}",
                                            zh=f"到版本 {p.id} 定时生效时（{cinema_time(p.effective_at)}）知识库将不一致："
                                               f"{x.zh or x.reason}") for x in exc.problems])
    return version


def rollback(session: Session, version_id: int, author: str = "system") -> KnowledgeVersion:
    """Publish the knowledge as it was once version ``version_id`` took effect, as a new version."""
    e = timeline.entry(session, version_id)
    if e is None:
        raise KnowledgeError([Problem("-", 0, f"no knowledge version {version_id}")])
    files = _raw(timeline.files_through(session, e))
    return publish(session, files, author=author, comment=f"rollback to version {version_id}", force=True)


def revert_file(session: Session, version_id: int, name: str, author: str = "system",
                comment: str = "") -> Optional[KnowledgeVersion]:
    """Undo what version ``version_id`` changed in file ``name``, keeping every later change (of this file's
    other lines too); ``ScheduleConflict`` when a later version changed the same lines."""
    e = timeline.entry(session, version_id)
    if e is None or not e.touches(name) or name not in schema.ALL_FILES:
        raise KnowledgeError([Problem(name, 0, f"version {version_id} did not change {name}")])
    before = timeline.files_before(session, e).get(name, "")
    after = timeline.files_through(session, e).get(name, "")
    current = timeline.files_at(session)
    text = merge3(after, current.get(name, ""), before)
    if text is None:
        raise ScheduleConflict([Problem(name, 0, f"changed again after version {version_id} on the same lines",
                                        zh=f"版本 {version_id} 之后这些行又被修改过，无法单独撤销；请直接编辑现在的内容")])
    files = dict(current)
    files[name] = text
    return publish(session, _raw(files), author=author,
                   comment=comment or f"undo version {version_id} in {name}")


def cancel(session: Session, version_id: int, actor: str) -> None:
    """Withdraw a scheduled version before it takes effect."""
    lock_knowledge(session)
    e = timeline.entry(session, version_id)
    now = utcnow()
    if e is None or not e.pending(now):
        raise KnowledgeError([Problem("-", 0, f"version {version_id} is not a scheduled version still to come")])
    later = [p for p in timeline.pending(session, e.effective_at) if p.key > e.key
             and any(p.touches(n) for n in (e.changed or schema.ALL_FILES))]
    if later:
        raise ScheduleConflict([Problem(n, 0, f"version {later[0].id} (scheduled for {cinema_time(later[0].effective_at)}) "
                                              f"was prepared on top of it; cancel that one first",
                                        zh=f"之后的版本 {later[0].id}（{cinema_time(later[0].effective_at)} 生效）是在它的基础上改的，"
                                           f"请先取消那个版本")
                                for n in (e.changed or ())[:1] or ("-",)])
    effect = session.get(KnowledgeEffect, version_id)
    effect.cancelled_at = now
    effect.cancelled_by = actor
    session.flush()


def version_with_checksum(session: Session, digest: str) -> Optional[int]:
    return session.execute(select(KnowledgeVersion.id).where(KnowledgeVersion.checksum == digest)
                           .order_by(KnowledgeVersion.id.desc()).limit(1)).scalar()


def version_id(session: Session) -> int:
    return session.execute(select(func.max(KnowledgeVersion.id))).scalar() or 0


def today_shanghai() -> dt.date:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
