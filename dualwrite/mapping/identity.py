"""`identity`: copy unchanged (table renames). The target's schema is cloned from the source."""

from __future__ import annotations

from dualwrite.mapping.base import KeySchema, Mapping
from dualwrite.mapping.base import require_keys as _require_keys
from dualwrite.mapping.templates import EVERYTHING, KeySpace
from dualwrite.wire import Item, Key, key_of


class IdentityMapping(Mapping):
    name = "identity"
    has_inverse = True
    inverse_ignores_current = True

    @property
    def target_key(self) -> KeySchema:
        return self.source_key

    def quarantine_reason(self, item: Item) -> str | None:
        return _require_keys(item, self.source_key)

    def _transform(self, item: Item) -> Item:
        return dict(item)

    def target_keys(self, source_key: Key) -> list[Key]:
        return [key_of(source_key, self.source_key.names)]

    def owns(self, target_key: Key) -> bool:
        return all(name in target_key for name in self.source_key.names)

    def source_key_for(self, target_key: Key) -> Key | None:
        return key_of(target_key, self.source_key.names)

    def key_space(self) -> KeySpace:
        return EVERYTHING

    def inverse(self, target: Item, current: Item | None) -> Item:
        return dict(target)  # identity drops nothing, so `current` adds nothing
