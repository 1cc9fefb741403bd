"""Preview the bot's answer with a draft of the knowledge, before an editor publishes it.

The draft is parsed into a snapshot like the published one, and the same topic handlers the action server uses
answer the sample question, so the preview is exactly what patrons would read.
"""
from __future__ import annotations

from typing import Any, Dict, List

from bot.answers.replies import render
from bot.kb.store import Knowledge, knowledge_from_files


def draft_knowledge(files: Dict[str, bytes]) -> Knowledge:
    """A snapshot of unpublished files (validated like an import)."""
    return knowledge_from_files(files, version=-1, checked=False)


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

