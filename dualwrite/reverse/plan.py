"""Reverse plans: which source writes a batch of target-stream changes makes. Pure.

A mapping that is one-to-one (identity, servers, declarative, a custom class with `inverse`)
is planned from its `inverse` by InversePlanner. A mapping whose target items stand for more
than one source item (memberships: a User item's email lives on every membership of the
user) implements the ReversePlanner protocol itself.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from dualwrite.errors import UnmappableError
from dualwrite.mapping.base import Mapping, no_source_key
from dualwrite.reverse.model import (
    KeyId,
    Reads,
    SourceView,
    SourceWrite,
    TargetChange,
    group_id,
    kid,
    leaves,
)
from dualwrite.wire import AttributeValue, Item, Key, items_equal, values_equal


@runtime_checkable
class ReversePlanner(Protocol):
    """What reverse replication asks of a route's mapping."""

    def reverse_reads(self, change: TargetChange) -> Reads:
        """What must be read before `reverse_changes` can plan this change."""
        ...

    def reverse_changes(self, change: TargetChange, view: SourceView) -> list[SourceWrite]:
        """The source writes for one change, against the source as `view` shows it (every
        key read, and the writes planned before this change in the batch). Raises
        UnmappableError("unrepresentable: ...") when the old schema cannot hold it."""
        ...


def update_between(key: Key, current: Item, wanted: Item) -> SourceWrite:
    """An UPDATE turning `current` into `wanted` (only the attributes that differ)."""
    set_ = {
        n: v
        for n, v in wanted.items()
        if n not in key and (n not in current or not values_equal(current[n], v))
    }
    remove = [n for n in current if n not in wanted and n not in key]
    return SourceWrite.update(key, set_, remove)


class InversePlanner:
    """The reverse plan of a one-to-one mapping, from its `inverse`.

    A target item is written back as a PUT of inverse(target) when that keeps nothing of the
    current source item (the mapping drops nothing), else as an UPDATE, so attributes the
    forward mapping drops survive. A derived item (one per group) is an echo when it equals
    what the group's source items derive, and unrepresentable otherwise; its delete is left
    to its members (forward deletes it when none remain, and the members' own deletes may
    arrive on other shards, later)."""

    def __init__(self, mapping: Mapping) -> None:
        if not mapping.has_inverse:
            raise ValueError(f"mapping {mapping.name} has no inverse")
        self.mapping = mapping

    def reverse_reads(self, change: TargetChange) -> Reads:
        return self.batch_reads((change,))

    def batch_reads(self, changes: Sequence[TargetChange]) -> Reads:
        """Reads.union of every change's reverse_reads, listed directly (one Reads made a
        record and united again was a tenth of reverse's own CPU, py-spy)."""
        source: dict[KeyId, Key] = {}
        groups: dict[str, AttributeValue] = {}
        key_for, group_for = self.mapping.source_key_for, self.mapping.group_for_target
        for change in changes:
            source_key = key_for(change.keys)
            if source_key is not None:
                source.setdefault(kid(source_key), source_key)
                continue
            group = group_for(change.keys)
            if group is not None and not change.removed:
                groups.setdefault(group_id(group), group)
        return Reads(tuple(source.values()), tuple(groups.values()), source_ids=tuple(source))

    def reverse_changes(self, change: TargetChange, view: SourceView) -> list[SourceWrite]:
        m = self.mapping
        source_key = m.source_key_for(change.keys)
        if source_key is None:
            return self._derived(change, view)
        if change.removed:
            return [SourceWrite.delete(source_key)]
        if change.new_image is None:
            raise UnmappableError("unrepresentable: the record has no new image")
        # a mapping whose inverse ignores the current item needs no look-up of it
        current = None if m.inverse_ignores_current else view.current(source_key)
        if current is None:
            return [SourceWrite.put(source_key, m.inverse(change.new_image, None))]
        full = m.inverse(change.new_image, current)
        if len(full) == len(m.inverse(change.new_image, None)):
            return [SourceWrite.put(source_key, full)]  # nothing of `current` is kept
        return [update_between(source_key, current, full)]

    def _derived(self, change: TargetChange, view: SourceView) -> list[SourceWrite]:
        m = self.mapping
        group = m.group_for_target(change.keys)
        if group is None:
            raise no_source_key(m, change.keys)
        if change.removed:
            return []
        name = view.names.get(group_id(group)) if view.pool else None
        expected = m.derive(group, view.members(group), name)
        if (
            expected is not None
            and change.new_image is not None
            and items_equal(expected, change.new_image)
        ):
            return []
        raise UnmappableError(
            "unrepresentable: the derived item differs from what the source's items derive"
        )


def batch_reads(planner: ReversePlanner, changes: Sequence[TargetChange]) -> Reads:
    """Every read the plans of a batch need (each key and group once, first-seen order)."""
    if isinstance(planner, InversePlanner):
        return planner.batch_reads(changes)
    return Reads.union(planner.reverse_reads(c) for c in changes)


def planner_for(mapping: Mapping) -> ReversePlanner | None:
    """The reverse planner of a mapping: its own, else one from its inverse, else None (a
    route that cuts over only with `cutover.reverse: false`)."""
    if isinstance(mapping, ReversePlanner):
        return mapping
    if mapping.has_inverse:
        return InversePlanner(mapping)
    return None


@dataclass(frozen=True)
class Plan:
    """The planned writes of a batch, in order (not yet netted against the source: see
    echo.net_writes), which source keys each change's writes touch (a failed write fails
    those changes), and the changes the old schema cannot hold (index, reason)."""

    writes: tuple[SourceWrite, ...]
    touched: tuple[tuple[KeyId, ...], ...]
    unrepresentable: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class ReadResult:
    """What the reads of a batch found: source items (kid -> item), every kid read,
    each group's member keys, target items, and pool names by group_id."""

    source: MappingABC[KeyId, Item]
    read: frozenset[KeyId]
    groups: MappingABC[str, tuple[KeyId, ...]]
    target: MappingABC[KeyId, Item]
    names: MappingABC[str, str] = field(default_factory=dict)
    pool: bool = False


def plan_batch(
    planner: ReversePlanner,
    changes: Sequence[TargetChange],
    found: ReadResult,
    group_attr: str | None = None,
) -> Plan:
    """Plans each change in order against the source as read plus the writes planned before
    it. A plan that writes a key nobody read is a bug in the mapping (ValueError): netting
    needs the item before the write."""
    source: dict[KeyId, Item] = dict(found.source)
    groups: dict[str, list[KeyId]] = {g: list(ids) for g, ids in found.groups.items()}
    view = SourceView(
        source=MappingProxyType(source),
        read=found.read,
        groups=MappingProxyType(groups),
        target=found.target,
        names=found.names,
        pool=found.pool,
    )
    writes: list[SourceWrite] = []
    touched: list[tuple[KeyId, ...]] = []
    bad: list[tuple[int, str]] = []
    for index, change in enumerate(changes):
        try:
            planned = planner.reverse_changes(change, view)
        except UnmappableError as exc:
            bad.append((index, exc.reason))
            touched.append(())
            continue
        ids = []
        for write in planned:
            kid = write.kid
            if kid not in found.read:
                raise ValueError(f"reverse plan writes source key {kid} it did not read")
            after = leaves(write, source.get(kid))
            if after is None:
                source.pop(kid, None)
            else:
                source[kid] = after
            if group_attr is not None and group_attr in write.key:
                _track(groups, write.key[group_attr], kid, present=after is not None)
            ids.append(kid)
        writes.extend(planned)
        touched.append(tuple(ids))
    return Plan(tuple(writes), tuple(touched), tuple(bad))


def _track(
    groups: dict[str, list[KeyId]], group: AttributeValue, kid: KeyId, *, present: bool
) -> None:
    members = groups.setdefault(group_id(group), [])
    if present and kid not in members:
        members.append(kid)
    elif not present and kid in members:
        members.remove(kid)
