"""A custom mapping, loaded by `package.module:attribute` in the tests."""

from __future__ import annotations

from dualwrite.mapping.identity import IdentityMapping
from dualwrite.wire import Item


class TaggedCopy(IdentityMapping):
    name = "tagged-copy"

    def _transform(self, item: Item) -> Item:
        return {**item, "migrated": {"BOOL": True}}


NOT_A_MAPPING = object()
