"""A conversation's working view: what older turns established, as a few events, plus the recent turns.

Rasa replays, featurises and ships the whole session to the action server on every turn, so per-turn work
grows with the session. Everything that survives from older turns is state — slot values, an active form,
a paused conversation — and the policies look only at the last few turns. ``state_prefix`` writes that state
as the events a fresh session with carried-over slots starts with; the recent turns follow unchanged.
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple

from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.events import (
    ActionExecuted, ActiveLoop, ConversationPaused, Event, Restarted, SessionStarted, SlotSet, UserUttered,
)
from rasa.shared.core.slots import Slot
from rasa.shared.core.trackers import DialogueStateTracker


def _is_session_start(event: Event) -> bool:
    return isinstance(event, ActionExecuted) and event.action_name == ACTION_SESSION_START_NAME


def last_session_start(events: Sequence[Event], start: int = 0) -> Optional[int]:
    """Index of the last ``action_session_start`` at or after ``start``, or None."""
    for i in range(len(events) - 1, start - 1, -1):
        if _is_session_start(events[i]):
            return i
    return None


def user_turn_starts(events: Sequence[Event], start: int = 0) -> List[int]:
    """Indices of the patron's messages (each begins a turn) at or after ``start``."""
    return [i for i in range(start, len(events)) if isinstance(events[i], UserUttered)]


def cut_index(events: Sequence[Event], start: int, max_turns: int, keep_turns: int) -> Optional[int]:
    """Where to cut a working view whose own events begin at ``start``: None while it has at most
    ``max_turns`` turns, else the start of the latest turn that leaves at least ``keep_turns`` and began outside
    a form (so a form's opening message stays in view), else the latest turn leaving ``keep_turns``."""
    turns = user_turn_starts(events, start)
    if len(turns) <= max_turns:
        return None
    candidates = turns[1: len(turns) - keep_turns + 1]
    loop_at = _active_loop_at(events, candidates)
    for c in reversed(candidates):
        if loop_at[c] is None:
            return c
    return candidates[-1]


def _active_loop_at(events: Sequence[Event], indices: Sequence[int]) -> dict:
    """The active form just before each of ``indices`` (one pass over the events)."""
    targets, found, active = set(indices), {}, None
    for i, e in enumerate(events):
        if i in targets:
            found[i] = active
        if isinstance(e, ActiveLoop):
            active = e.name
        elif isinstance(e, (SessionStarted, Restarted)):
            active = None
    return found


def state_prefix(events: Sequence[Event], slots: Iterable[Slot], sender_id: str = "_",
                 only_slots: Optional[Iterable[str]] = None) -> List[Event]:
    """The events of a session start that reproduce the state after ``events``: slots that differ from
    their initial value (only those in ``only_slots`` if given), a paused conversation and an active form
    (both left out when ``only_slots`` is given: a new session starts unpaused and outside any form)."""
    tracker = DialogueStateTracker.from_events(sender_id, list(events), slots)
    ts = events[-1].timestamp if events else None
    out: List[Event] = [ActionExecuted(ACTION_SESSION_START_NAME, timestamp=ts), SessionStarted(timestamp=ts)]
    keep = set(only_slots) if only_slots is not None else None
    for name, slot in tracker.slots.items():
        if keep is not None and name not in keep:
            continue
        if slot.value != slot.initial_value:
            out.append(SlotSet(name, slot.value, timestamp=ts))
    if keep is None:
        if tracker.active_loop_name:
            out.append(ActiveLoop(tracker.active_loop_name, timestamp=ts))
        if tracker.is_paused():
            out.append(ConversationPaused(timestamp=ts))
    out.append(ActionExecuted(ACTION_LISTEN_NAME, timestamp=ts))
    return out


def plan_view(events: Sequence[Event], synced: int, own_from: int, replaced: bool, slots: Iterable[Slot],
              sender_id: str, max_turns: int, keep_turns: int) -> Tuple[int, Optional[List[dict]], bool]:
    """Where a conversation's working view starts after a save: (index into ``events``, the new prefix as
    dicts or None for unchanged, whether the start moved). ``events[synced:]`` are the turn's new events,
    ``events[own_from:]`` the stored ones in view; a ``replaced`` conversation's view is exactly its events.
    The view moves to a new session's start, and is cut back to ``keep_turns`` past ``max_turns``."""
    start = last_session_start(events, max(synced, own_from))
    moved = start is not None
    if replaced and not moved:
        start, moved = 0, True
    view_from = start if moved else own_from
    prefix: Optional[List[dict]] = [] if moved else None
    cut = cut_index(events, view_from, max_turns, keep_turns)
    if cut is not None:
        prefix = [e.as_dict() for e in state_prefix(events[:cut], slots, sender_id)]
        view_from, moved = cut, True
    return view_from, prefix, moved


def expired_view(view: List[dict], slots: Iterable[Slot], sender_id: str, idle_seconds: Optional[float],
                 carry_over: Optional[Iterable[str]], now: float) -> Optional[List[dict]]:
    """For a session idle longer than ``idle_seconds``: the carried-over slots and the last message (Rasa's
    processor looks at its time to see that the session expired, then copies every SlotSet of the view
    into the new session). None while the session is live."""
    from rasa.shared.core.events import deserialise_events

    last_user = next((i for i in range(len(view) - 1, -1, -1) if view[i].get("event") == "user"), None)
    if last_user is None or idle_seconds is None or now - float(view[last_user].get("timestamp") or 0) <= idle_seconds:
        return None
    carried = state_prefix(deserialise_events(view), slots, sender_id, only_slots=list(carry_over or ()))
    return [e.as_dict() for e in carried] + [view[last_user]]
