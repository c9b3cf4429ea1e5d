"""The mapping interface every route uses: replicator, backfill and reconciler alike.

Pure: wire-format dicts in and out; no boto3, no clock, no environment.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from dualwrite.errors import UnmappableError
from dualwrite.mapping.templates import KeySpace
from dualwrite.wire import AttributeValue, Item, Key, key_of, over_item_limit


@dataclass(frozen=True)
class KeySchema:
    """A table's primary key: hash attribute first, then the optional range attribute."""

    attributes: tuple[tuple[str, str], ...]  # ((name, "S"|"N"|"B"), ...)

    @cached_property
    def names(self) -> tuple[str, ...]:
        # cached: asked for on every replicated record
        return tuple(name for name, _ in self.attributes)

    @property
    def hash_name(self) -> str:
        return self.attributes[0][0]

    @property
    def range_name(self) -> str | None:
        return self.attributes[1][0] if len(self.attributes) > 1 else None

    @cached_property
    def types(self) -> dict[str, str]:
        # cached: reverse replication asks for a key's types on every target-stream record
        return dict(self.attributes)

    def type_of(self, name: str) -> str:
        return self.types[name]

    def describe(self) -> str:
        return ", ".join(
            f"{n} ({t}, {'hash' if i == 0 else 'range'})"
            for i, (n, t) in enumerate(self.attributes)
        )


PK_SK = KeySchema((("PK", "S"), ("SK", "S")))


class Mapping(ABC):
    """Turns source items into target items, and answers questions about its key space."""

    #: name used in migration files
    name: str = ""
    #: source attribute whose value groups items into one derived target item (or None)
    group_attr: str | None = None
    #: whether `inverse` is implemented (reverse replication, DESIGN.md section 8)
    has_inverse: bool = False
    #: whether `inverse` never takes anything from `current` (the forward mapping drops no
    #: source attribute): reverse replication then writes whole items without a second look
    inverse_ignores_current: bool = False

    def __init__(self, source_key: KeySchema) -> None:
        self.source_key = source_key

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # a subclass that changes the transform (say, of identity) must not inherit an
        # inverse that no longer undoes it: it has none until it defines its own
        own = cls.__dict__
        if "_transform" in own and "inverse" not in own and "has_inverse" not in own:
            cls.has_inverse = False
            cls.inverse = Mapping.inverse  # type: ignore[method-assign]
        # an inverse of its own is one (it was ignored without has_inverse = True, so
        # reverse replication refused the route); it may keep what it likes of `current`
        # unless it says otherwise
        if "inverse" in own and "has_inverse" not in own:
            cls.has_inverse = True
        if "inverse" in own and "inverse_ignores_current" not in own:
            cls.inverse_ignores_current = False

    # --- schema fit -------------------------------------------------------------------
    @property
    @abstractmethod
    def target_key(self) -> KeySchema:
        """The key schema the target table must have."""

    def fits_key(self, table_key: KeySchema) -> bool:
        """Whether a table keyed `table_key` takes the keys this mapping writes."""
        return table_key.attributes == self.target_key.attributes

    def schema_problem(self) -> str | None:
        """Why the source key schema does not fit this mapping, or None if it does."""
        return None

    # --- items ------------------------------------------------------------------------
    def quarantine_reason(self, item: Item) -> str | None:
        """Why an item must not be migrated (it is quarantined), or None."""
        return None

    @abstractmethod
    def _transform(self, item: Item) -> Item:
        """The target item for a source item that passed quarantine_reason."""

    def transform(self, item: Item, *, check_size: bool = True) -> Item:
        """The target item for a source item; raises UnmappableError (quarantine).

        `check_size=False` leaves the 400 KB check (check_item_size) to the caller, for a
        caller that sizes the item anyway."""
        reason = self.quarantine_reason(item)
        if reason is not None:
            raise UnmappableError(reason)
        target = self._transform(item)
        check_key_size(target, self.target_key)
        if check_size:
            check_item_size(target)
        return target

    def source_key_of_item(self, item: Item) -> Key:
        return key_of(item, self.source_key.names)

    @abstractmethod
    def target_keys(self, source_key: Key) -> list[Key]:
        """The target keys written directly for a source key (deletes remove these)."""

    @abstractmethod
    def owns(self, target_key: Key) -> bool:
        """Whether a target key lies in this mapping's key space."""

    @abstractmethod
    def source_key_for(self, target_key: Key) -> Key | None:
        """The source key a directly-mapped target item comes from; None for derived items."""

    def key_space(self) -> KeySpace | None:
        """The target keys this mapping may write, as templates per key attribute (a tuple
        of templates: any of them; an attribute left out matches anything), or None when
        undeclared: routes sharing a target are then not checked against this one."""
        return None

    # --- the inverse (reverse replication, DESIGN.md section 8) ---------------------------
    def inverse(self, target: Item, current: Item | None) -> Item:
        """The source item for a directly-mapped target item. Pure.

        `current` is the source item as it is now (or None): its attributes the forward
        mapping drops are kept. Raises UnmappableError("unrepresentable: <why>") when the
        old schema cannot hold the target item."""
        raise NotImplementedError(f"{self.name} has no inverse")

    # --- derived items (one per group of source items) ----------------------------------
    def group_of(self, source_key_or_item: Item) -> AttributeValue | None:
        """The group a source item belongs to, or None when the mapping derives nothing."""
        if self.group_attr is None:
            return None
        return source_key_or_item.get(self.group_attr)

    def derived_key(self, group: AttributeValue) -> Key:
        raise NotImplementedError(f"{self.name} derives no items")

    def group_for_target(self, target_key: Key) -> AttributeValue | None:
        """The group of a derived target item, or None when it is not a derived item."""
        return None

    def derive(
        self, group: AttributeValue, members: Sequence[Item], name: str | None = None
    ) -> Item | None:
        """The derived item of a group from all its source items; None deletes it."""
        raise NotImplementedError(f"{self.name} derives no items")


def no_source_key(mapping: Mapping, target_key: Key) -> UnmappableError:
    """Why a target key reverse replication cannot map back: in no route's key space, or
    the route's with ids no source key can hold."""
    if mapping.owns(target_key):
        return UnmappableError(
            "unrepresentable: the target key is in the route's key space, but no source key "
            "maps to it (an empty id, a number DynamoDB refuses or spells otherwise, or a "
            "sort key the route never writes)"
        )
    return UnmappableError("unrepresentable: the target key is in no route's key space")


#: DynamoDB's limits on a key attribute's value (bytes): partition 2048, sort 1024
KEY_LIMITS = (2048, 1024)


def check_key_size(target: Item, key: KeySchema) -> None:
    """Raises UnmappableError for a target key DynamoDB would refuse (a template's prefix
    can push a legal source key over the limit: every write of its batch would fail)."""
    for name, limit in zip(key.names, KEY_LIMITS, strict=False):
        value = target.get(name)
        if value is None:
            continue
        if "S" in value:
            size = len(value["S"].encode())
        elif "B" in value:  # bytes, or base64 text (Lambda JSON)
            raw = value["B"]
            size = len(base64.b64decode(raw)) if isinstance(raw, str) else len(raw)
        else:
            continue
        if size > limit:
            raise UnmappableError(
                f"target key {name} is {size} bytes, over DynamoDB's {limit}-byte limit"
            )


def check_item_size(target: Item) -> None:
    """Raises UnmappableError for a target item over DynamoDB's 400 KB item limit."""
    size = over_item_limit(target)
    if size is not None:
        raise UnmappableError(f"target item is {size} bytes, over the 400 KB item limit")


def require_keys(item: MappingABC[str, AttributeValue], schema: KeySchema) -> str | None:
    missing = [n for n in schema.names if n not in item]
    if missing:
        return f"item lacks key attribute(s) {', '.join(missing)}"
    for name, typ in schema.attributes:
        if typ not in item[name]:
            return f"key attribute {name} is not of type {typ}"
    return None
