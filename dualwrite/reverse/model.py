"""The records of reverse replication (DESIGN.md section 8): a target-stream change, what a
plan must read first, the read-only view it plans against, and a planned source write. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from dualwrite.wire import AttributeValue, Item, Key, decode_json_item, key_id

INSERT = "INSERT"
MODIFY = "MODIFY"
REMOVE = "REMOVE"


def _empty() -> Mapping[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TargetChange:
    """One record of a target table's stream, images decoded (binary as bytes)."""

    event_name: str
    keys: Key
    new_image: Item | None
    old_image: Item | None = None
    #: ApproximateCreationDateTime, epoch seconds, when the record has it
    created_at: float | None = None
    sequence_number: str = ""
    #: the OldImage as the record carries it (Lambda JSON), decoded only when a planner asks
    #: (old()): decoding every record's would double the parse on the reverse path
    old_json: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def removed(self) -> bool:
        return self.event_name == REMOVE

    def old(self) -> Item | None:
        """The image before the change (None: none, or not wire format)."""
        if self.old_image is not None or self.old_json is None:
            return self.old_image
        try:
            return decode_json_item(self.old_json)
        except ValueError:
            return None

    @classmethod
    def from_lambda(cls, record: Mapping[str, Any], *, old_image: bool = False) -> TargetChange:
        """From a Lambda-shaped DynamoDB stream record (images in Lambda JSON). Raises
        ValueError for an image that is not wire format (quarantine the record)."""
        body = record.get("dynamodb") or {}
        new, old = body.get("NewImage"), body.get("OldImage")
        created = body.get("ApproximateCreationDateTime")
        keys = body.get("Keys") or {}
        return cls(
            event_name=str(record.get("eventName", "")),
            # string keys (the usual) decode to themselves
            keys=keys if string_keys(keys) else decode_json_item(keys),
            new_image=decode_json_item(new) if new is not None else None,
            old_image=decode_json_item(old) if old is not None and old_image else None,
            old_json=old if old is not None and not old_image else None,
            created_at=float(created) if isinstance(created, int | float) else None,
            sequence_number=str(body.get("SequenceNumber", "")),
        )


def string_keys(keys: Mapping[str, Any]) -> bool:
    """Whether every value of a key (Lambda JSON) is a string: it then decodes to itself.
    Asked twice for every target-stream record: a loop, half the time of all() over a
    generator (164 ns against 341, timeit)."""
    for v in keys.values():  # noqa: SIM110
        if v.__class__ is not dict or len(v) != 1 or "S" not in v:
            return False
    return True


@dataclass(frozen=True)
class Reads:
    """What a plan must read before it can be made: source items by key, whole groups of the
    source (a Query on its hash key: all of a user's memberships), and target items."""

    source_keys: tuple[Key, ...] = ()
    #: group values (of the mapping's group_attr, the source's hash key)
    groups: tuple[AttributeValue, ...] = ()
    target_keys: tuple[Key, ...] = ()
    #: kid of each of source_keys and target_keys, in order, when union made them (the
    #: reads need them again; empty: work them out)
    source_ids: tuple[KeyId, ...] = ()
    target_ids: tuple[KeyId, ...] = ()

    @staticmethod
    def union(reads: Iterable[Reads]) -> Reads:
        """Every read of many plans, each key and group once (first-seen order)."""
        source: dict[KeyId, Key] = {}
        groups: dict[str, AttributeValue] = {}
        target: dict[KeyId, Key] = {}
        for r in reads:
            for k in r.source_keys:
                source.setdefault(kid(k), k)
            if r.groups:
                for g in r.groups:
                    groups.setdefault(group_id(g), g)
            if r.target_keys:
                for k in r.target_keys:
                    target.setdefault(kid(k), k)
        return Reads(
            tuple(source.values()),
            tuple(groups.values()),
            tuple(target.values()),
            tuple(source),
            tuple(target),
        )


#: the identity of a source or target key within one table (hashable)
KeyId = tuple[str, ...]


def kid(key: Key) -> KeyId:
    """A key's identity within its table, cheap for string keys (a table's key attributes
    have one type each, so their text stands for itself); key_id (numbers and binary
    normalised) otherwise. Called several times per replicated record."""
    if len(key) == 1:
        ((name, value),) = key.items()
        text = value.get("S")
        if text is not None and len(value) == 1:
            return (name, text)
    elif len(key) == 2:
        (n1, v1), (n2, v2) = key.items()
        t1, t2 = v1.get("S"), v2.get("S")
        if t1 is not None and t2 is not None and len(v1) == 1 and len(v2) == 1:
            return (n1, t1, n2, t2) if n1 < n2 else (n2, t2, n1, t1)
    return (key_id(key),)


def group_id(value: AttributeValue) -> str:
    """A stable identity for a group value (as key_id gives keys). Asked for every planned
    write of a grouped route: a string (the usual) is its own text, behind a prefix that
    key_id's JSON never starts with (key_id's json.dumps took 14% of memberships' reverse)."""
    text = value.get("S")
    if isinstance(text, str) and len(value) == 1:
        return "S:" + text
    return key_id({"g": value})


@dataclass(frozen=True)
class SourceView:
    """The source (and target) as read, for planning. Read-only to the mapping: the planner
    keeps it up to date with the writes planned so far in the batch.

    source: kid -> item, for every source key read (a key read and absent is in `read`
    but not in `source`); groups: group_id -> the kids of the group's members;
    target: kid -> target item, for the target keys read; names: group_id -> the name
    the Cognito user pool gives (only when a pool is configured, `pool`)."""

    source: Mapping[KeyId, Item] = field(default_factory=_empty)
    read: AbstractSet[KeyId] = frozenset()
    groups: Mapping[str, Iterable[KeyId]] = field(default_factory=_empty)
    target: Mapping[KeyId, Item] = field(default_factory=_empty)
    names: Mapping[str, str] = field(default_factory=_empty)
    pool: bool = False

    def current(self, key: Key) -> Item | None:
        return self.source.get(kid(key))

    def members(self, group: AttributeValue) -> list[Item]:
        ids = self.groups.get(group_id(group), ())
        return [self.source[i] for i in ids if i in self.source]

    def target_item(self, key: Key) -> Item | None:
        return self.target.get(kid(key))


class WriteKind(StrEnum):
    PUT = "put"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class SourceWrite:
    """One planned write of a source item.

    PUT replaces the item with `item` (key included); UPDATE sets `set` and removes
    `remove`, keeping every other attribute (what the forward mapping drops); DELETE
    removes the item."""

    kind: WriteKind
    key: Key
    item: Item | None = None
    set: Item = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    #: the key's identity (kid), made once: every step of a batch asks for it
    kid: KeyId = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kid", kid(self.key))

    @classmethod
    def put(cls, key: Key, item: Item) -> SourceWrite:
        return cls(WriteKind.PUT, key, item=item)

    @classmethod
    def update(cls, key: Key, set_: Item, remove: Iterable[str] = ()) -> SourceWrite:
        return cls(WriteKind.UPDATE, key, set=set_, remove=tuple(remove))

    @classmethod
    def delete(cls, key: Key) -> SourceWrite:
        return cls(WriteKind.DELETE, key)

    def apply_to(self, current: Item | None) -> Item | None:
        """The item this write leaves, given the item before it."""
        if self.kind is WriteKind.DELETE:
            return None
        if self.kind is WriteKind.PUT:
            assert self.item is not None
            return dict(self.item)
        out: Item = dict(current) if current is not None else dict(self.key)
        for name in self.remove:
            out.pop(name, None)
        out.update(self.set)
        return out


def leaves(write: SourceWrite, before: Item | None) -> Item | None:
    """write.apply_to(before), without copying what a PUT writes (nothing changes an item
    once planned: the plan's views are read-only, netting makes new items)."""
    if write.kind is WriteKind.PUT:
        return write.item
    if write.kind is WriteKind.DELETE:
        return None
    return write.apply_to(before)
