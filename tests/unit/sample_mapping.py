"""A custom mapping, loaded by `package.module:attribute` in the tests."""

from __future__ import annotations

from dualwrite.mapping.base import PK_SK, KeySchema, Mapping
from dualwrite.mapping.identity import IdentityMapping
from dualwrite.wire import Item


class TaggedCopy(IdentityMapping):
    name = "tagged-copy"

    def _transform(self, item: Item) -> Item:
        return {**item, "migrated": {"BOOL": True}}


NOT_A_MAPPING = object()


class Unfinished(Mapping):
    """A user's mapping that forgot the abstract methods but one."""

    @property
    def target_key(self) -> KeySchema:
        return PK_SK

    def _transform(self, item: Item) -> Item:
        return item


class SingleKeyOnly(IdentityMapping):
    """A user's mapping whose constructor refuses a source with a sort key."""

    def __init__(self, source_key: KeySchema) -> None:
        if len(source_key.names) != 1:
            raise ValueError("SingleKeyOnly takes a table keyed by one attribute")
        super().__init__(source_key)
