"""Settings both bounded tracker stores share: view size, session expiry and the slots a new session keeps."""
from __future__ import annotations

import logging
import os
from typing import Any, Optional, Sequence, Text, Tuple

from rasa.shared.core.domain import Domain, SessionConfig

log = logging.getLogger(__name__)

DEFAULT_CARRY_OVER = ("phone", "contact_name")   # who the patron is, not what they asked about last time
SYNC_ATTR = "_xinghe_sync"   # on a tracker: (its events when last in step with the store, store position, view start)


def sync_of(tracker: Any, events_count: int, fresh: Any) -> Tuple[int, Any, int, bool]:
    """(events already stored, the store's position of them, start of the stored view, replaced?) for a
    tracker about to be saved. A tracker that did not come from the store — a new patron, or
    ``PUT .../tracker/events`` replacing the conversation — has all its events new (``fresh`` position)."""
    sync = getattr(tracker, SYNC_ATTR, None)
    if sync is not None and sync[0] <= events_count:
        return sync[0], sync[1], sync[2], False
    return 0, fresh, 0, True


def _env_float(name: str) -> Optional[float]:
    value = os.environ.get(name)
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        log.warning("%s=%r is not a number; ignored", name, value)
        return None


class BoundedViewSettings:
    """Mixin for a TrackerStore: ``max_turns``/``keep_turns`` of the working view; ``SESSION_IDLE_MINUTES``
    (overrides domain.yml's session_expiration_time for this server: Rasa's processor reads the same
    domain object) and ``SESSION_CARRY_SLOTS`` (comma-separated; empty for none)."""

    _domain: Domain

    def _init_view_settings(self, max_turns: int, keep_turns: int, carry_over_slots: Optional[Sequence[Text]],
                            session_idle_minutes: Optional[float]) -> None:
        self.max_turns, self.keep_turns = int(max_turns), int(keep_turns)
        if not 1 <= self.keep_turns < self.max_turns:
            raise ValueError("need 1 <= keep_turns < max_turns")
        env_carry = os.environ.get("SESSION_CARRY_SLOTS")
        if env_carry is not None:
            carry_over_slots = [s.strip() for s in env_carry.split(",") if s.strip()]
        self.carry_over = tuple(carry_over_slots if carry_over_slots is not None else DEFAULT_CARRY_OVER)
        self.session_idle_minutes = _env_float("SESSION_IDLE_MINUTES") or session_idle_minutes

    @property
    def domain(self) -> Domain:
        return self._domain

    @domain.setter
    def domain(self, domain: Optional[Domain]) -> None:
        self._domain = domain or Domain.empty()
        if getattr(self, "session_idle_minutes", None) is not None:
            self._domain.session_config = SessionConfig(self.session_idle_minutes,
                                                        self._domain.session_config.carry_over_slots)

    def idle_seconds(self) -> Optional[float]:
        config = self.domain.session_config
        return config.session_expiration_time * 60 if config.are_sessions_enabled() else None

    def carried_slots(self) -> Sequence[Text]:
        return self.carry_over if self.domain.session_config.carry_over_slots else ()
