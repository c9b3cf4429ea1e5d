"""Reverse replication in memory, for the pure tests: the reads a plan asks for served from
dicts, then plan_batch and the echo filter, then the netted writes applied."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dualwrite.mapping.base import Mapping
from dualwrite.reverse.echo import Netted, net_writes
from dualwrite.reverse.model import (
    INSERT,
    MODIFY,
    REMOVE,
    KeyId,
    Reads,
    TargetChange,
    group_id,
    kid,
)
from dualwrite.reverse.plan import Plan, ReadResult, plan_batch, planner_for
from dualwrite.wire import Item, Key, key_of


@dataclass
class Outcome:
    source: dict[KeyId, Item]
    plan: Plan
    netted: Netted
    reads: Reads


def source_table(mapping: Mapping, items: Sequence[Item]) -> dict[KeyId, Item]:
    return {kid(mapping.source_key_of_item(i)): i for i in items}


def target_table(mapping: Mapping, items: Sequence[Item]) -> dict[KeyId, Item]:
    return {kid(key_of(i, mapping.target_key.names)): i for i in items}


def put(mapping: Mapping, target: Item, old: Item | None = None) -> TargetChange:
    keys = key_of(target, mapping.target_key.names)
    return TargetChange(MODIFY if old else INSERT, keys, target, old, 1000.0)


def remove(mapping: Mapping, target: Item) -> TargetChange:
    keys = key_of(target, mapping.target_key.names)
    return TargetChange(REMOVE, keys, None, target, 1000.0)


def reverse(
    mapping: Mapping,
    changes: Sequence[TargetChange],
    source: dict[KeyId, Item],
    target: dict[KeyId, Item] | None = None,
    names: dict[str, str] | None = None,
) -> Outcome:
    planner = planner_for(mapping)
    assert planner is not None
    reads = Reads.union(planner.reverse_reads(c) for c in changes)
    found: dict[KeyId, Item] = {}
    read: set[KeyId] = set()
    for k in reads.source_keys:
        k_id = kid(k)
        read.add(k_id)
        if k_id in source:
            found[k_id] = source[k_id]
    groups: dict[str, tuple[KeyId, ...]] = {}
    for g in reads.groups:
        assert mapping.group_attr is not None
        ids = tuple(i for i, it in source.items() if it[mapping.group_attr] == g)
        for i in ids:
            found[i] = source[i]
            read.add(i)
        groups[group_id(g)] = ids
    # the target as it is after the changes (they were made to it), unless a test says
    # otherwise for a key
    after: dict[KeyId, Item | None] = {kid(c.keys): c.new_image for c in changes}
    now = {k: v for k, v in after.items() if v is not None} | (target or {})
    seen = {kid(k): now[kid(k)] for k in reads.target_keys if kid(k) in now}
    result = ReadResult(found, frozenset(read), groups, seen, names or {}, pool=names is not None)
    plan = plan_batch(planner, changes, result, mapping.group_attr)
    netted = net_writes(plan.writes, result.source)
    after = dict(source)
    for w in netted.writes:
        new = w.apply_to(after.get(w.kid))
        if new is None:
            after.pop(w.kid, None)
        else:
            after[w.kid] = new
    return Outcome(after, plan, netted, reads)


def key(item: Item, names: Sequence[str]) -> Key:
    return key_of(item, names)
