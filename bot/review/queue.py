"""The review queue: missed patron messages, and what editors decide about them.

The service reads the misses from the analytics turns the event consumer writes
(``bot.analytics.read.missed_messages``); ``missed_messages`` here finds the same in a list of tracker
events (tests, and a backfill from a tracker store).

A message is *missed* when the bot's reply in that turn was one of its "I did not understand" responses
(``MISSED_RESPONSES``: clarify, rephrase, offer a person, Rasa's core fallback) and no answer came in the
same turn (the answering layer sets ``topic_context`` whenever it answers, e.g. from a facet an editor
added). So an ``nlu_fallback`` that a form takes as a free-text answer, or that a knowledge facet answers,
is not missed; a turn without a reply yet is left for the next reading. Each distinct text (folded: width,
case, spaces) is one ``ReviewItem``; every tracker event is counted once (``ReviewSighting``), so reading
the store again is safe.

Decisions, each stored with who and when:
- ``assign_intent``: the text becomes a training example of that intent at the next export and training;
- ``assign_facet``: the text (or a shortened phrasing) is appended to the examples of a question in
  ``questions.yml`` and published as a new knowledge version with an audit row; the bot answers it at once;
- ``dismiss`` (noise, spam) and ``reopen``.
Messages holding a phone number or an order id are stored masked and can only be dismissed: personal data
never goes into training data or the knowledge store.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.analytics.ingest import entity_spans as _entities
from bot.analytics.read import Miss  # re-exported with the constants below: the review layer names them
from bot.analytics.signals import ANSWERED_SLOT, MISSED_ACTIONS, MISSED_RESPONSES, TEXT_MAX
from bot.kb import editing, loader
from bot.models import ReviewItem, ReviewSighting, utcnow
from bot.privacy import mask_text

STATUSES = ("new", "intent", "facet", "dismissed")
NOT_ASSIGNABLE_INTENTS = frozenset({"nlu_fallback", "unsupported_message"})
EXAMPLE_MIN, EXAMPLE_MAX = 2, 80  # questions.yml examples (bot.kb.schema.QuestionDoc)


class ReviewError(Exception):
    """A decision that cannot be made; ``code`` names why (the pages word it)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


def fold_key(text: str) -> str:
    """Messages that differ only in width, case or spacing are one item (spaces carry no meaning between
    Chinese words; voice transcripts and phone keyboards put them anywhere)."""
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def digest(text: str) -> str:
    return hashlib.sha256(fold_key(text).encode("utf-8")).hexdigest()


def missed_messages(conversations: Iterable[Tuple[str, List[Dict[str, Any]]]], since_ts: float = 0.0) -> List[Miss]:
    """The missed patron messages of these trackers (``(sender, events)``) at or after ``since_ts``."""
    out: List[Miss] = []
    for sender, events in conversations:
        pending: Optional[Miss] = None
        answered = missed = False
        for event in list(events) + [{"event": "user"}]:  # the sentinel closes the last turn
            kind = event.get("event")
            if kind == "user":
                if pending is not None and missed and not answered:
                    out.append(pending)
                pending, answered, missed = None, False, False
                raw = event.get("text") or ""
                text = raw.strip()[:TEXT_MAX]
                ts = float(event.get("timestamp") or 0.0)
                if not text or text.startswith("/") or ts < since_ts or "timestamp" not in event:
                    continue
                lead = len(raw) - len(raw.lstrip())
                pending = Miss(sender, str(event.get("input_channel") or ""), ts, text,
                               _entities(raw, event.get("parse_data") or {}, lead, len(text)))
            elif pending is None:
                continue
            elif kind == "slot" and event.get("name") == ANSWERED_SLOT:
                answered = True
            elif kind == "bot" and (event.get("metadata") or {}).get("utter_action") in MISSED_RESPONSES:
                missed = True
            elif kind == "action" and event.get("name") in MISSED_ACTIONS:
                missed = True
    return out


def record(s: Session, misses: Sequence[Miss]) -> int:
    """Add the misses not seen before to the queue; returns how many were new sightings."""
    if not misses:
        return 0
    low = min(m.ts for m in misses)
    seen = {(a, b) for a, b in s.execute(select(ReviewSighting.sender_id, ReviewSighting.ts)
                                         .where(ReviewSighting.ts >= low))}
    items: Dict[str, ReviewItem] = {}
    added = 0
    for m in sorted(misses, key=lambda x: x.ts):
        if (m.sender_id, m.ts) in seen:
            continue
        seen.add((m.sender_id, m.ts))
        masked = mask_text(m.text)
        was_masked = masked != m.text or m.masked  # the analytics turns store texts masked already
        key = digest(masked)  # of the masked text: a digest of a phone number could be reversed by trying them
        item = items.get(key) or s.execute(select(ReviewItem).where(ReviewItem.key == key)).scalar_one_or_none()
        when = dt.datetime.fromtimestamp(m.ts, dt.timezone.utc).replace(tzinfo=None)
        if item is None:
            item = ReviewItem(key=key, text=masked, masked=was_masked,
                              entities=[] if was_masked else m.entities, first_seen=when, last_seen=when,
                              count=0, status="new", sender_id=m.sender_id[:128], channel=m.channel[:32])
            s.add(item)
            s.flush()
        items[key] = item
        item.count += 1
        if when >= item.last_seen:
            item.last_seen, item.sender_id, item.channel = when, m.sender_id[:128], m.channel[:32]
        item.first_seen = min(item.first_seen, when)
        s.add(ReviewSighting(item_id=item.id, sender_id=m.sender_id[:128], ts=m.ts))
        added += 1
    s.flush()
    return added


def items(s: Session, status: Optional[str] = "new", limit: int = 200, offset: int = 0) -> List[ReviewItem]:
    """Items of one status (all when None), the most frequent first, then the most recent."""
    q = select(ReviewItem)
    if status:
        q = q.where(ReviewItem.status == status)
    order = (ReviewItem.count.desc(), ReviewItem.last_seen.desc()) if status == "new" else \
        (ReviewItem.assigned_at.desc(), ReviewItem.last_seen.desc())
    return list(s.execute(q.order_by(*order, ReviewItem.id.desc()).limit(limit).offset(offset)).scalars())


def counts(s: Session) -> Dict[str, int]:
    found = dict(s.execute(select(ReviewItem.status, func.count()).group_by(ReviewItem.status)).all())
    return {st: int(found.get(st, 0)) for st in STATUSES}


def _item(s: Session, item_id: int, *, assignable: bool = True, expected: Optional[str] = None) -> ReviewItem:
    item = s.get(ReviewItem, item_id)
    if item is None:
        raise ReviewError("not_found")
    if expected is not None and item.status != expected:
        raise ReviewError("already_decided", item.assigned_by or "")
    if assignable and item.masked:
        raise ReviewError("masked")
    return item


def _decided(item: ReviewItem, status: str, actor: str) -> None:
    item.status, item.assigned_by, item.assigned_at = status, actor, utcnow()


def assign_intent(s: Session, item_id: int, intent: str, actor: str, known_intents: Sequence[str],
                  expected: Optional[str] = None) -> ReviewItem:
    """Store the intent for the next export (``bot.review.training``). ``expected``: the status the editor
    saw; another editor's decision in between is refused rather than overwritten."""
    if intent not in known_intents or intent in NOT_ASSIGNABLE_INTENTS:
        raise ReviewError("bad_intent", intent)
    item = _item(s, item_id, expected=expected)
    _decided(item, "intent", actor)
    item.intent, item.facet_key, item.example = intent, None, None
    return item


def facet_choices(files: Dict[str, bytes]) -> List[Dict[str, Any]]:
    """The questions of ``questions.yml`` an item can be assigned to."""
    return [{"key": q["key"], "topic": q["topic"], "examples": list(q["examples"])}
            for q in editing.list_records(files, "questions")]


def check_example(text: str) -> str:
    example = " ".join(text.split())
    if len(example) < EXAMPLE_MIN:
        raise ReviewError("example_short")
    if len(example) > EXAMPLE_MAX:
        raise ReviewError("example_long", str(len(example)))
    return example


def assign_facet(s: Session, item_id: int, facet_key: str, example: str, actor: str,
                 base_version: Optional[int] = None, expected: Optional[str] = None) -> Optional[int]:
    """Append ``example`` to the question's examples and publish (audited); returns the new version, or
    None when the question already had that phrasing. Raises ``ReviewError``, ``editing.Conflict`` (another
    publish since ``base_version``) or ``loader.KnowledgeError`` (the result does not validate)."""
    item = _item(s, item_id, expected=expected)
    example = check_example(example)
    version = loader.version_id(s)
    if base_version is not None and base_version != version:
        raise editing.Conflict(f"{base_version} → {version}")
    files = loader.current_files(s)
    choices = {q["key"]: q for q in facet_choices(files)}
    if facet_key not in choices:
        raise ReviewError("bad_facet", facet_key)
    key = fold_key(example)
    other = next((q["key"] for q in choices.values() if q["key"] != facet_key
                  and any(fold_key(e) == key for e in q["examples"])), None)
    if other is not None:
        raise ReviewError("example_elsewhere", other)
    new_version: Optional[int] = None
    if not any(fold_key(e) == key for e in choices[facet_key]["examples"]):
        new_files, before, after = editing.append_to_list(files, "questions", facet_key, "examples", example)
        published = editing.publish_edit(s, new_files, actor=actor, entity="questions", entity_id=facet_key,
                                         action="update", before=before, after=after, base_version=version,
                                         comment=f"待审消息归入问题 {facet_key}：{example}"[:255])
        new_version = published.id if published is not None else None
    _decided(item, "facet", actor)
    item.facet_key, item.example, item.intent = facet_key, example, None
    return new_version


def dismiss(s: Session, item_id: int, actor: str, expected: Optional[str] = None) -> ReviewItem:
    item = _item(s, item_id, assignable=False, expected=expected)
    _decided(item, "dismissed", actor)
    return item


def reopen(s: Session, item_id: int, actor: str, expected: Optional[str] = None) -> ReviewItem:
    """Back to the queue (the knowledge keeps a phrasing already published: remove it on the question's page)."""
    item = _item(s, item_id, assignable=False, expected=expected)
    item.status, item.assigned_by, item.assigned_at = "new", actor, utcnow()
    item.intent = item.facet_key = item.example = None
    return item
