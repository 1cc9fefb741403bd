"""Preview the bot's answer with a draft of the knowledge, before an editor publishes it.

The draft is loaded into a scratch SQLite store and the same topic handlers the action server uses
answer the sample question, so the preview is exactly what patrons would read.
"""
from __future__ import annotations

import re
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from bot.db import ROOT, make_engine
from bot.kb import loader
from bot.answers.replies import render
from bot.kb.store import Knowledge, KnowledgeStore


def draft_knowledge(files: Dict[str, bytes]) -> Knowledge:
    """A snapshot of unpublished files (validated like an import)."""
    from sqlalchemy.orm import sessionmaker

    from bot.models import Base

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'draft.db'}")
        Base.metadata.create_all(engine)
        factory = sessionmaker(bind=engine, future=True, expire_on_commit=False)
        with factory() as session:
            loader.publish(session, files, author="preview")
            session.commit()
        knowledge = KnowledgeStore(factory).get()
        engine.dispose()
    return knowledge


def preview_answer(files: Dict[str, bytes], question: str, parse: Dict[str, Any]) -> List[str]:
    """Answer ``question`` (with its ``/model/parse`` result) from the draft files, as a first message."""
    from bot.answers.context import DialogueContext
    from bot.answers.topics import INTENT_TOPIC
    from bot.answers.turn import answer_turn
    from bot.text.normalise import fold, lexicon_from_section

    knowledge = draft_knowledge(files)
    intent = parse.get("intent") or {}
    text = fold(question, lexicon_from_section(knowledge.sections.get("lexicon"))).text
    turn = answer_turn(knowledge, DialogueContext(), INTENT_TOPIC.get(intent.get("name") or ""),
                       float(intent.get("confidence") or 0.0), text, parse.get("entities", []))
    return [render(m) for m in turn.replies.messages] if turn.handled else []

