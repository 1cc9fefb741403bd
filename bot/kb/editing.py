"""Record-level editing of the knowledge files for the editor pages.

Edits work on the published files' text (YAML round-trip keeps comments and layout), so the result is
always a complete, validated file set published as a new version — the same path as `kb import`.
Each record carries an etag (hash of its content); saving with a stale etag is a conflict, never a
silent overwrite. Every publish writes audit rows with before/after.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from sqlalchemy.orm import Session

from bot.kb import loader
from bot.models import AuditLog

# kind -> (file, list key, id field)
RECORDS: Dict[str, Tuple[str, str, str]] = {
    "films": ("films.yml", "films", "title"),
    "halls": ("halls.yml", "halls", "number"),
    "hall_types": ("halls.yml", "hall_types", "code"),
    "prices": ("prices.yml", "base", "key"),
    "ticket_types": ("prices.yml", "ticket_types", "code"),
    "refund_windows": ("refund.yml", "windows", "min_minutes_before"),
    "levels": ("membership.yml", "levels", "code"),
    "exchange": ("membership.yml", "exchange", "points"),
    "facilities": ("facilities.yml", "facilities", "key"),
    "viewing_rules": ("viewing_rules.yml", "rules", "key"),
    "order_problems": ("orders.yml", "problems", "key"),
    "complaint_categories": ("complaints.yml", "categories", "code"),
    "questions": ("questions.yml", "questions", "key"),
    "lexicon": ("lexicon.yml", "entries", "to"),
}
# whole documents edited field by field (top-level keys)
DOCUMENTS = ["cinema.yml", "parking.yml", "refund.yml", "services.yml", "lost_found.yml", "complaints.yml",
             "prices.yml", "membership.yml"]


class Conflict(Exception):
    """The record changed since the editor loaded it."""


class NotFound(Exception):
    pass


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.allow_unicode = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def etag(value: Any) -> str:
    return hashlib.sha256(json.dumps(_plain(value), ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]


def _load(files: Dict[str, bytes], name: str):
    return _yaml().load(files[name].decode("utf-8"))


def _dump(doc) -> bytes:
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue().encode("utf-8")


def list_records(files: Dict[str, bytes], kind: str) -> List[Dict[str, Any]]:
    name, key, _ = RECORDS[kind]
    return [_plain(r) for r in _load(files, name)[key]]


def _find(items, id_field: str, record_id: str) -> int:
    for i, item in enumerate(items):
        if str(item.get(id_field)) == str(record_id):
            return i
    raise NotFound(record_id)


def get_record(files: Dict[str, bytes], kind: str, record_id: str) -> Tuple[Dict[str, Any], str]:
    name, key, id_field = RECORDS[kind]
    items = _load(files, name)[key]
    record = _plain(items[_find(items, id_field, record_id)])
    return record, etag(record)


def put_record(files: Dict[str, bytes], kind: str, record_id: Optional[str], record: Dict[str, Any],
               expected_etag: Optional[str]) -> Tuple[Dict[str, bytes], Optional[Dict[str, Any]]]:
    """New file set with the record replaced (or added when ``record_id`` is None); returns it and the old record."""
    name, key, id_field = RECORDS[kind]
    doc = _load(files, name)
    items = doc[key]
    before = None
    if record_id is None:
        if any(str(i.get(id_field)) == str(record.get(id_field)) for i in items):
            raise Conflict(f"{record.get(id_field)} already exists")
        items.append(record)
    else:
        idx = _find(items, id_field, record_id)
        before = _plain(items[idx])
        if expected_etag is not None and etag(before) != expected_etag:
            raise Conflict(record_id)
        current = items[idx]
        for field in list(current.keys()):
            if field not in record:
                del current[field]
        for field, value in record.items():
            current[field] = value
    out = dict(files)
    out[name] = _dump(doc)
    return out, before


def append_to_list(files: Dict[str, bytes], kind: str, record_id: str, field: str,
                   value: str) -> Tuple[Dict[str, bytes], Dict[str, Any], Dict[str, Any]]:
    """New file set with ``value`` appended to a list field of a record (layout of the rest kept; the new item
    double-quoted so no YAML reader takes it for a number, a time or a flow indicator); returns it with the
    record before and after."""
    name, key, id_field = RECORDS[kind]
    doc = _load(files, name)
    items = doc[key]
    current = items[_find(items, id_field, record_id)]
    before = _plain(current)
    current[field].append(DoubleQuotedScalarString(value))
    out = dict(files)
    out[name] = _dump(doc)
    return out, before, _plain(current)


def delete_record(files: Dict[str, bytes], kind: str, record_id: str, expected_etag: Optional[str]) -> Tuple[Dict[str, bytes], Dict[str, Any]]:
    name, key, id_field = RECORDS[kind]
    doc = _load(files, name)
    idx = _find(doc[key], id_field, record_id)
    before = _plain(doc[key][idx])
    if expected_etag is not None and etag(before) != expected_etag:
        raise Conflict(record_id)
    del doc[key][idx]
    out = dict(files)
    out[name] = _dump(doc)
    return out, before


def get_document(files: Dict[str, bytes], name: str) -> Tuple[Dict[str, Any], str]:
    doc = _plain(_load(files, name))
    return doc, etag(doc)


def put_document_fields(files: Dict[str, bytes], name: str, fields: Dict[str, Any],
                        expected_etag: Optional[str]) -> Tuple[Dict[str, bytes], Dict[str, Any]]:
    """Replace top-level fields of a document (e.g. parking.yml fee_per_hour)."""
    doc = _load(files, name)
    before = _plain(doc)
    if expected_etag is not None and etag(before) != expected_etag:
        raise Conflict(name)
    for field, value in fields.items():
        if field not in doc:
            raise NotFound(f"{name}: {field}")
        doc[field] = value
    out = dict(files)
    out[name] = _dump(doc)
    return out, {k: before.get(k) for k in fields}


# --------------------------------------------------------------------------- showtimes CSV
@dataclass
class ShowtimeChange:
    added: List[Dict[str, str]]
    removed: List[Dict[str, str]]


def _rows(raw: bytes) -> List[Dict[str, str]]:
    return [{k.strip(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))]


def showtime_changes(files: Dict[str, bytes], new_csv: bytes) -> ShowtimeChange:
    old = {tuple(r.values()) for r in _rows(files["showtimes.csv"])}
    new_rows = _rows(new_csv)
    new = {tuple(r.values()) for r in new_rows}
    old_rows = _rows(files["showtimes.csv"])
    return ShowtimeChange(added=[r for r in new_rows if tuple(r.values()) not in old],
                          removed=[r for r in old_rows if tuple(r.values()) not in new])


# --------------------------------------------------------------------------- publishing with audit
def publish_edit(session: Session, files: Dict[str, bytes], *, actor: str, entity: str, entity_id: str,
                 action: str, before: Any, after: Any, comment: str = "", base_version: Optional[int] = None,
                 effective_at=None):
    """Validate and publish the edited file set as a new version, with an audit row (one transaction);
    ``effective_at`` (UTC) schedules it."""
    loader.lock_knowledge(session)
    current = loader.version_id(session)
    if base_version is not None and current != base_version:
        # another publish happened since the editor loaded the page; record-level etags decide conflicts,
        # so re-apply on top of the current files is the caller's job — here we only refuse stale file sets
        raise Conflict(f"knowledge changed (version {base_version} → {current}); reload and try again")
    version = loader.publish(session, files, author=actor, comment=comment or f"{action} {entity} {entity_id}",
                             effective_at=effective_at)
    session.add(AuditLog(actor=actor, entity=entity, entity_id=str(entity_id), action=action,
                         before=_plain(before) if before is not None else None,
                         after=_plain(after) if after is not None else None))
    session.flush()
    return version
