"""Property: applying the coalesced plan gives the same target as applying the records one by
one, in order, whatever the mix of puts, deletes, unmappable records and failures."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import PK_SK, KeySchema
from dualwrite.wire import key_id
from stream_replicator.planning import DELETE, PUT, classify, close_failures, coalesce
from stream_replicator.records import parse

TARGET = PK_SK.names
MAPPINGS = {
    "servers": build_mapping("servers", KeySchema((("id", "N"),))),
    "memberships": build_mapping("memberships", KeySchema((("userId", "S"), ("serverId", "S")))),
}
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/label"

# (event, key number, value, poison)
steps = st.lists(
    st.tuples(
        st.sampled_from(["INSERT", "MODIFY", "REMOVE"]),
        st.integers(0, 5),
        st.integers(0, 3),
        st.booleans(),
    ),
    max_size=40,
)


def source_key(mapping_name: str, k: int) -> dict[str, Any]:
    if mapping_name == "servers":
        return {"id": {"N": str(k)}}
    return {"userId": {"S": f"u{k % 3}"}, "serverId": {"S": f"s{k // 3}"}}


def image(mapping_name: str, k: int, value: int, poison: bool) -> dict[str, Any]:
    item = source_key(mapping_name, k)
    if mapping_name == "servers":
        item["v"] = {"N": str(value)}
        if poison:
            item["Type"] = {"S": "clash"}  # would overwrite the target's Type: quarantined
    else:
        item["email"] = {"S": f"e{value}@x.io"}
        if not poison:  # no role: quarantined
            item["role"] = {"S": ["admin", "viewer", "moderator", "owner"][value]}
    return item


def records_for(mapping_name: str, plan: list[tuple[str, int, int, bool]]) -> list[dict[str, Any]]:
    out = []
    for seq, (event, k, value, poison) in enumerate(plan):
        body: dict[str, Any] = {
            "Keys": source_key(mapping_name, k),
            "SequenceNumber": str(1000 + seq),
            "ApproximateCreationDateTime": 1_700_000_000 + seq,
        }
        if event == "REMOVE":
            body["OldImage"] = image(mapping_name, k, value, False)
        else:
            body["NewImage"] = image(mapping_name, k, value, poison)
        out.append(
            {"eventID": str(seq), "eventName": event, "eventSourceARN": ARN, "dynamodb": body}
        )
    return out


initial_targets = st.dictionaries(st.integers(0, 5), st.integers(0, 3), max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(MAPPINGS)),
    steps,
    initial_targets,
    st.sets(st.integers(0, 39), max_size=4),
)
def test_coalesced_plan_equals_one_by_one(
    mapping_name: str,
    plan: list[tuple[str, int, int, bool]],
    initial: dict[int, int],
    failed_raw: set[int],
) -> None:
    mapping = MAPPINGS[mapping_name]
    records = records_for(mapping_name, plan)
    items = [classify(mapping, parse(r, i), TARGET) for i, r in enumerate(records)]
    failed = {i for i in failed_raw if i < len(items)}

    start: dict[str, Any] = {}
    for k, value in initial.items():
        target = mapping.transform(image(mapping_name, k, value, False))
        start[key_id({n: target[n] for n in TARGET})] = target

    # one by one: each key stops at its first failed record
    one_by_one = dict(start)
    broken: set[Any] = set()
    applied_groups: set[str] = set()
    for c in items:
        if c.change.index in failed or c.source_kid in broken:
            broken.add(c.source_kid)
            continue
        if c.group is not None:
            applied_groups.add(key_id({"g": c.group}))
        for tkey, item in c.writes:
            if c.kind == PUT:
                one_by_one[key_id(tkey)] = item
            elif c.kind == DELETE:
                one_by_one.pop(key_id(tkey), None)

    coalesced = dict(start)
    result = coalesce(items, failed, TARGET)
    for write in result.writes.values():
        if write.item is None:
            coalesced.pop(key_id(write.key), None)
        else:
            coalesced[key_id(write.key)] = write.item
    assert coalesced == one_by_one
    # every user touched by an applied record is recomputed, and no other
    assert {key_id({"g": g.value}) for g in result.groups.values()} == applied_groups
    # a failure never lets a later record of the same source key through
    closed = close_failures(items, failed)
    assert closed == failed | result.blocked
    for write in result.writes.values():
        assert not set(write.contributors) & closed
