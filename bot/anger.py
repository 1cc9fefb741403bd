"""Detect anger and distress in a patron's message, with the cues from the complaint guidance.

Signals: insults and angry words, threats to escalate outside (12315, media), runs of ！/？, shouting
in capitals. Word lists live in knowledge/complaints.yml so editors can refine them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List

PUNCT_RUN = re.compile(r"[!！?？]{2,}|[。\.]{4,}")
CAPS = re.compile(r"\b[A-Z]{4,}\b")


@dataclass(frozen=True)
class Mood:
    angry: bool
    threat: bool
    score: float
    cues: List[str]


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
    return Mood(score >= 1.0, bool(threats), score, cues)
