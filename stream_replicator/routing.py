"""Which route a target-stream record belongs to (a target table such as CoreTable may be
the target of several routes): the one whose mapping owns the record's key. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dualwrite.config import Route
from dualwrite.mapping.base import Mapping
from dualwrite.reverse.model import KeyId, kid, string_keys
from dualwrite.wire import decode_json_item
from stream_replicator.reverse_apply import DECODE_ERRORS


def route_of_key(
    keys_json: Any, mappings: Sequence[tuple[Route, Mapping]], default: Route
) -> Route:
    """The route whose mapping owns a record's Keys (Lambda JSON); `default` for keys no
    route owns or that do not decode (its planner quarantines the record). Asked for every
    target-stream record of a shared table: string keys (the usual) are not decoded."""
    if not isinstance(keys_json, dict):
        keys = {}
    elif string_keys(keys_json):
        keys = keys_json
    else:
        try:
            keys = decode_json_item(keys_json)
        except DECODE_ERRORS:
            return default
    for route, mapping in mappings:
        if mapping.source_key_for(keys) is not None or mapping.group_for_target(keys) is not None:
            return route
    return next((r for r, m in mappings if m.owns(keys)), default)


#: how many keys a KeyRouter remembers (cleared when full)
KEYS_REMEMBERED = 8192


@dataclass
class KeyRouter:
    """route_of_key for one shared target table and its live routes, remembering the route
    of each all-string key it saw (the same keys come back batch after batch)."""

    mappings: Sequence[tuple[Route, Mapping]]
    default: Route
    _seen: dict[KeyId, Route] = field(default_factory=dict)

    def route(self, keys_json: Any) -> Route:
        if not isinstance(keys_json, dict):
            return route_of_key(keys_json, self.mappings, self.default)
        try:  # a key's identity, whatever its types (binary as base64 text here)
            key = kid(keys_json)
        except DECODE_ERRORS:
            return self.default
        if len(key) == 1:  # not all strings: worked out each time, not remembered
            return route_of_key(keys_json, self.mappings, self.default)
        found = self._seen.get(key)
        if found is None:
            found = route_of_key(keys_json, self.mappings, self.default)
            if len(self._seen) >= KEYS_REMEMBERED:
                self._seen.clear()
            self._seen[key] = found
        return found
