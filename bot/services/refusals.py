"""The patron-facing texts of refused messages (bot/services/refusals.yml)."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Dict

import yaml

_FILE = Path(__file__).resolve().with_name("refusals.yml")


@functools.lru_cache(maxsize=1)
def _texts() -> Dict[str, str]:
    return yaml.safe_load(_FILE.read_text(encoding="utf-8"))


def refusal(code: str, **values: object) -> str:
    """The reply for ``code`` (``too_long``, ``too_many_messages``, ...), with ``values`` filled in."""
    return _texts()[code].format(**values)
