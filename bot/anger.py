"""Detect anger and distress in a patron's message, with the cues from the complaint guidance.

Signals: insults and angry words, threats to escalate outside (12315, media), runs of ！/？, shouting
in capitals. Word lists live in knowledge/complaints.yml so editors can refine them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List

PUNCT_RUN = re.compile(r"[!！?？]{2,}|[。\.]{4,}")
EXCLAIMED = re.compile(r"[!！]")
CAPS = re.compile(r"\b[A-Z]{4,}\b")


@dataclass(frozen=True)
class Mood:
    angry: bool
    threat: bool
    score: float
    cues: List[str]
    # angry only by the reproaches (「不是说免费吗，为什么收我钱」): empathy, but no step towards a handoff
    mild: bool = False


def assess(text: str, complaints: Dict[str, Any], intent: str | None = None) -> Mood:
    """Score a message; ``angry`` when the cues add up to 1 or more."""
    if not text:
        return Mood(False, False, 0.0, [])
    anger = complaints["anger"]
    cues: List[str] = []
    score = 0.0
    words = [w for w in anger["keywords"] if w in text]
    if words:
        cues += words
        score += 1.0
    threats = [w for w in anger["threats"] if w in text]
    if threats:
        cues += threats
        score += 1.0
    if PUNCT_RUN.search(text):
        cues.append("punctuation")
        score += 0.6
    if CAPS.search(text):
        cues.append("caps")
        score += 0.3
    if intent == "complain":
        score += 0.5
    strong = score >= 1.0
    # 「停车收了我60块！不是说看电影免费吗」「现在都10天了！」: reproaching words, two of them or one said with
    # a 「！」, are anger that no single keyword names
    reproaches = [w for w in anger.get("reproaches") or () if w in text]
    if reproaches:
        cues += reproaches
        score += min(1.0, 0.5 * len(reproaches)) + (0.5 if EXCLAIMED.search(text) else 0.0)
    angry = score >= 1.0
    return Mood(angry, bool(threats), score, cues, mild=angry and not strong)
