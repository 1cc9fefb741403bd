"""RulePolicy's rule matching without re-testing every rule against the latest state.

``RulePolicy._get_possible_keys`` filters all rule keys (365 rules and 255 loop rules in this model) turn by
turn, newest state first, and runs two to four times per prediction; the first filter, over every key, is
most of its work (7 % of the server's main thread at 20 senders). Which keys survive it depends only on the
keys and the newest state, which repeat across patrons, so the survivors are remembered per (keys in
order, newest state). The result set is then built exactly as Rasa builds it — the same keys inserted in the same
order — because the caller picks the longest key with ``max``, which breaks ties by iteration order.
"""
from __future__ import annotations

from typing import Any, Dict, List, Set, Text, Tuple

MAX_ENTRIES = 4096  # distinct (key set, newest state) pairs kept per policy; cleared when full


def _freeze(state: Dict[Text, Any]) -> frozenset:
    return frozenset((k, frozenset(v.items()) if isinstance(v, dict) else v) for k, v in state.items())


def install() -> None:
    from rasa.core.policies.rule_policy import RulePolicy

    original = RulePolicy._get_possible_keys

    def _get_possible_keys(self: Any, lookup: Dict[Text, Text], states: List[Dict[Text, Any]]) -> Set[Text]:
        if not states:
            return original(self, lookup, states)
        newest = states[-1]
        try:
            # the keys in their order: set(lookup.keys()) below, and Rasa's, iterate in an order that follows it
            key: Tuple[tuple, frozenset] = (tuple(lookup), _freeze(newest))
            hash(key)
        except TypeError:  # an unhashable value in a state: Rasa's way
            return original(self, lookup, states)
        cache = self.__dict__.setdefault("_xinghe_first_turn_keys", {})
        survivors = cache.get(key)
        if survivors is None:
            # in the order Rasa's first filter meets them: iterating set(lookup.keys())
            survivors = tuple(k for k in set(lookup.keys()) if self._is_rule_applicable(k, 0, newest))
            if len(cache) >= MAX_ENTRIES:
                cache.clear()
            cache[key] = survivors
        possible_keys = set(survivors)
        for i, state in enumerate(reversed(states)):
            if i == 0:
                continue
            possible_keys = set(filter(lambda _key: self._is_rule_applicable(_key, i, state), possible_keys))
        return possible_keys

    RulePolicy._get_possible_keys = _get_possible_keys
