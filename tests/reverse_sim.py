"""Reverse replication in memory, for the pure tests: the reads a plan asks for served from
dicts, then plan_batch and the echo filter, then the netted writes applied."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dualwrite.mapping.base import Mapping
from dualwrite.reverse.echo import Netted, net_writes
from dualwrite.reverse.model import INSERT, MODIFY, REMOVE, Reads, TargetChange, group_id
from dualwrite.reverse.plan import Plan, ReadResult, plan_batch, planner_for
from dualwrite.wire import Item, Key, key_id, key_of


@dataclass
class Outcome:
    source: dict[str, Item]
    plan: Plan
    netted: Netted
    reads: Reads


def source_table(mapping: Mapping, items: Sequence[Item]) -> dict[str, Item]:
    return {key_id(mapping.source_key_of_item(i)): i for i in items}


def target_table(mapping: Mapping, items: Sequence[Item]) -> dict[str, Item]:
    return {key_id(key_of(i, mapping.target_key.names)): i for i in items}


def put(mapping: Mapping, target: Item, old: Item | None = None) -> TargetChange:
    keys = key_of(target, mapping.target_key.names)
    return TargetChange(MODIFY if old else INSERT, keys, target, old, 1000.0)


def remove(mapping: Mapping, target: Item) -> TargetChange:
    keys = key_of(target, mapping.target_key.names)
    return TargetChange(REMOVE, keys, None, target, 1000.0)


def reverse(
    mapping: Mapping,
    changes: Sequence[TargetChange],
    source: dict[str, Item],
    target: dict[str, Item] | None = None,
    names: dict[str, str] | None = None,
) -> Outcome:
    planner = planner_for(mapping)
    assert planner is not None
    reads = Reads.union(planner.reverse_reads(c) for c in changes)
    found: dict[str, Item] = {}
    read: set[str] = set()
    for k in reads.source_keys:
        kid = key_id(k)
        read.add(kid)
        if kid in source:
            found[kid] = source[kid]
    groups: dict[str, tuple[str, ...]] = {}
    for g in reads.groups:
        assert mapping.group_attr is not None
        ids = tuple(kid for kid, it in source.items() if it[mapping.group_attr] == g)
        for kid in ids:
            found[kid] = source[kid]
            read.add(kid)
        groups[group_id(g)] = ids
    target = target or {}
    seen = {key_id(k): target[key_id(k)] for k in reads.target_keys if key_id(k) in target}
    result = ReadResult(found, frozenset(read), groups, seen, names or {}, pool=names is not None)
    plan = plan_batch(planner, changes, result, mapping.group_attr)
    netted = net_writes(plan.writes, result.source)
    after = dict(source)
    for w in netted.writes:
        kid = key_id(w.key)
        new = w.apply_to(after.get(kid))
        if new is None:
            after.pop(kid, None)
        else:
            after[kid] = new
    return Outcome(after, plan, netted, reads)


def key(item: Item, names: Sequence[str]) -> Key:
    return key_of(item, names)
