"""Two hot spots of Rasa 3.6's per-message work, measured with py-spy on our server (bench/turn_profile.py,
the issue note): each removes repeated work and changes nothing Rasa decides.

- ``RemoteAction._validate_action_result`` calls ``jsonschema.validate``, which checks the (constant) response
  schema itself and builds a new validator on every action call: a quarter of the server's CPU at 8 senders.
  The schema is checked once here and one validator is reused; invalid responses still raise the same
  ``ValidationError`` with Rasa's message.
- ``Event.resolve_by_type`` walks every subclass of ``Event`` for each event it deserialises (a tracker
  load deserialises them all): the class for a type name is remembered, and looked up afresh on a miss.

More, one module each in ``bot/speedups/`` (measured with py-spy at 20 senders, see the README):

- ``linear_scores`` (bot/speedups/sklearn_predict.py): the ensemble's logistic regression without a 10 MB
  copy of its coefficients per message, and its feature union without joblib set-up;
- ``rule_keys`` (bot/speedups/rule_keys.py): RulePolicy's first filter over every rule remembered per
  newest state;
- ``action_keepalive`` (bot/speedups/action_keepalive.py): calls to the action server reuse their
  connections instead of opening one per call.

Installed when Rasa imports ``bot.nlu`` to load the model's custom components, so it applies to any Rasa
server process that serves this project's model, however it was started. ``XINGHE_RASA_SPEEDUPS=0``
installs none; ``XINGHE_RASA_SPEEDUPS_OFF=rule_keys,linear_scores`` leaves out the ones named (names in
``SPEEDUPS``).
"""
from __future__ import annotations

import os
import threading
from typing import Any, Dict, Optional, Text, Type

_installed = False
_lock = threading.Lock()


def _cached_action_validation() -> None:
    from jsonschema import ValidationError, validators
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    schema = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)

    def _validate_action_result(self: Any, result: Dict[Text, Any]) -> bool:
        try:
            validator.validate(result)
            return True
        except ValidationError as e:
            e.message += (
                f". Failed to validate Action server response from API, "
                f"make sure your response from the Action endpoint is valid. "
                f"For more information about the format visit "
                f"{DOCS_BASE_URL}/custom-actions"
            )
            raise e

    RemoteAction._validate_action_result = _validate_action_result


def _cached_event_types() -> None:
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    known: Dict[Text, Type[Event]] = {}

    def resolve_by_type(type_name: Text, default: Optional[Type[Event]] = None) -> Optional[Type[Event]]:
        cls = known.get(type_name)
        if cls is not None:
            return cls
        cls = original(type_name, default)
        if cls is not None and cls is not default:
            known[type_name] = cls
        return cls

    Event.resolve_by_type = staticmethod(resolve_by_type)


def _linear_scores() -> None:
    from bot.speedups import sklearn_predict

    sklearn_predict.install()


def _rule_keys() -> None:
    from bot.speedups import rule_keys

    rule_keys.install()


def _action_keepalive() -> None:
    from bot.speedups import action_keepalive

    action_keepalive.install()


#: name → installer, in installation order
SPEEDUPS = {
    "action_schema": _cached_action_validation,
    "event_types": _cached_event_types,
    "linear_scores": _linear_scores,
    "rule_keys": _rule_keys,
    "action_keepalive": _action_keepalive,
}


def enabled() -> list:
    """The names ``install`` applies under the current environment."""
    if os.environ.get("XINGHE_RASA_SPEEDUPS", "1") == "0":
        return []
    off = {n.strip() for n in os.environ.get("XINGHE_RASA_SPEEDUPS_OFF", "").split(",") if n.strip()}
    unknown = off - set(SPEEDUPS)
    if unknown:
        raise ValueError(f"XINGHE_RASA_SPEEDUPS_OFF names unknown speed-ups {sorted(unknown)}; known: {list(SPEEDUPS)}")
    return [name for name in SPEEDUPS if name not in off]


def install() -> None:
    """Apply the enabled speed-ups (once per process); ``XINGHE_RASA_SPEEDUPS=0`` leaves Rasa as shipped."""
    global _installed
    names = enabled()
    with _lock:
        if _installed:
            return
        for name in names:
            SPEEDUPS[name]()
        _installed = True
