"""Replies an answer produces: Rasa response names with their values, or plain text (and buttons)."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Dict, List, Optional


class Replies:
    """Collects messages with the same call as Rasa's dispatcher, so answers need no Rasa objects."""

    def __init__(self) -> None:
        self.messages: List[Dict[str, Any]] = []

    def utter_message(self, text: Optional[str] = None, response: Optional[str] = None,
                      buttons: Optional[List[Dict[str, str]]] = None, **kwargs: Any) -> None:
        message: Dict[str, Any] = dict(kwargs)
        if text is not None:
            message["text"] = text
        if response is not None:
            message["response"] = response
        if buttons:
            message["buttons"] = buttons
        self.messages.append(message)

    def replay(self, dispatcher: Any) -> None:
        """Send the collected messages through a Rasa dispatcher."""
        for m in self.messages:
            dispatcher.utter_message(**m)


@lru_cache(maxsize=1)
def _responses() -> Dict[str, Any]:
    import yaml

    from bot.db import ROOT

    return yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))["responses"]


def phrase(name: str) -> str:
    """A fixed phrase of domain.yml's responses (e.g. the 「有的，」 said before a yes answer)."""
    return _responses()[name][0]["text"]


def render(message: Dict[str, Any]) -> str:
    """A collected message as the patron reads it (the response's template filled the way Rasa does)."""
    if message.get("text"):
        return message["text"]
    template = _responses()[message["response"]][0]["text"]
    return re.sub(r"\{(\w+)\}", lambda m: str(message.get(m.group(1), m.group(0))), template)
