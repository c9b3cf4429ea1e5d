"""The replicator's pure core: record parsing, classification, coalescing, failure closure."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import PK_SK, KeySchema
from stream_replicator.planning import (
    DELETE,
    PUT,
    QUARANTINE,
    Classified,
    classify,
    close_failures,
    coalesce,
)
from stream_replicator.records import MalformedRecord, parse, sequence_order, table_of_arn

SERVERS = build_mapping("servers", KeySchema((("id", "N"),)))
MEMBERS = build_mapping("memberships", KeySchema((("userId", "S"), ("serverId", "S"))))
TARGET = PK_SK.names
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/ServersTable/stream/2015-06-27T00:48:05.899"


def record(
    name: str,
    seq: int,
    keys: dict[str, Any],
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    *,
    arn: str = ARN,
    ttl: bool = False,
) -> dict[str, Any]:
    """A record shaped like the AWS documentation's DynamoDB event samples."""
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": 1479499740,
        "Keys": keys,
        "SequenceNumber": f"{13021600000000001596893679 + seq}",
        "SizeBytes": 112,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        body["NewImage"] = new
    if old is not None:
        body["OldImage"] = old
    out: dict[str, Any] = {
        "eventID": f"ev{seq}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": body,
        "eventSourceARN": arn,
    }
    if ttl:
        out["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return out


def server(i: int, **attrs: Any) -> dict[str, Any]:
    item = {"id": {"N": str(i)}}
    item.update(attrs)
    return item


def member(user: str, srv: str, role: str | None = "viewer", email: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {"userId": {"S": user}, "serverId": {"S": srv}}
    if role is not None:
        item["role"] = {"S": role}
    if email:
        item["email"] = {"S": email}
    return item


def keys_of(item: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: item[n] for n in names}


def classified(mapping: Any, records: list[dict[str, Any]]) -> list[Classified]:
    return [classify(mapping, parse(r, i), TARGET) for i, r in enumerate(records)]


# --- records ---------------------------------------------------------------------------
def test_table_of_arn_reads_table_and_stream_arns() -> None:
    assert table_of_arn(ARN) == "ServersTable"
    assert table_of_arn("arn:aws:dynamodb:eu-west-1:1:table/a.b-c_d") == "a.b-c_d"
    with pytest.raises(MalformedRecord):
        table_of_arn("arn:aws:sqs:us-east-1:1:queue")


def test_sequence_numbers_order_as_numbers_not_text() -> None:
    seqs = ["900", "10000000000000000000000000000000000000", "1000"]
    assert sorted(seqs, key=sequence_order) == [
        "900",
        "1000",
        "10000000000000000000000000000000000000",
    ]


def test_parse_refuses_records_that_cannot_be_reported() -> None:
    good = record("INSERT", 1, {"id": {"N": "1"}}, server(1))
    assert parse(good, 0).table == "ServersTable"
    body = {k: v for k, v in good["dynamodb"].items() if k != "SequenceNumber"}
    no_seq = {**good, "dynamodb": body}
    with pytest.raises(MalformedRecord):
        parse(no_seq, 0)
    with pytest.raises(MalformedRecord):
        parse({k: v for k, v in good.items() if k != "eventSourceARN"}, 0)


def test_ttl_deletes_are_recognised_by_user_identity() -> None:
    ttl = parse(record("REMOVE", 1, {"id": {"N": "1"}}, old=server(1), ttl=True), 0)
    user = parse(record("REMOVE", 2, {"id": {"N": "1"}}, old=server(1)), 0)
    assert ttl.ttl_delete and not user.ttl_delete


# --- classify --------------------------------------------------------------------------
def test_insert_with_numeric_key_maps_to_server_item() -> None:
    new = server(101, name={"S": "atlas"}, icon={"B": base64.b64encode(b"\x00\xff").decode()})
    (c,) = classified(SERVERS, [record("INSERT", 1, {"id": {"N": "101"}}, new)])
    assert c.kind == PUT
    ((key, item),) = c.writes
    assert key == {"PK": {"S": "SERVER#101"}, "SK": {"S": "METADATA"}}
    assert item is not None
    assert item["Type"] == {"S": "Server"} and item["name"] == {"S": "atlas"}
    assert item["icon"] == {"B": b"\x00\xff"}  # base64 in the event, bytes for boto3
    assert "id" not in item


def test_remove_uses_keys_or_else_the_old_image() -> None:
    with_keys = record("REMOVE", 1, {"id": {"N": "7"}}, old=server(7))
    without_keys = record("REMOVE", 2, {}, old=server(8))
    del without_keys["dynamodb"]["Keys"]
    a, b = classified(SERVERS, [with_keys, without_keys])
    assert a.kind == b.kind == DELETE
    assert a.writes == (({"PK": {"S": "SERVER#7"}, "SK": {"S": "METADATA"}}, None),)
    assert b.writes == (({"PK": {"S": "SERVER#8"}, "SK": {"S": "METADATA"}}, None),)


def test_composite_keys_and_groups_of_memberships() -> None:
    m = member("u1", "s1", "owner", "a@x.io")
    (c,) = classified(MEMBERS, [record("MODIFY", 1, keys_of(m, "userId", "serverId"), m, m)])
    assert c.kind == PUT
    assert c.writes[0][0] == {"PK": {"S": "USER#u1"}, "SK": {"S": "SERVER#s1"}}
    assert c.group == {"S": "u1"}
    assert c.unknown_role  # "owner" is not a role we know: read only, and counted


@pytest.mark.parametrize(
    ("rec", "reason"),
    [
        (record("INSERT", 1, {"id": {"N": "1"}}, server(1, PK={"S": "x"})), "overwrite"),
        (record("INSERT", 1, {"id": {"N": "1"}}), "no NewImage"),
        (record("INSERT", 1, {"id": {"N": "1"}}, server(1, b={"B": "abc"})), "cannot be decoded"),
        # a bare string or list where an AttributeValue belongs, also nested
        (record("INSERT", 1, {"id": {"N": "1"}}, server(1, b="S")), "cannot be decoded"),
        (record("INSERT", 1, {"id": {"N": "1"}}, server(1, b={"L": [["N"]]})), "cannot be decoded"),
        (record("UPSERT", 1, {"id": {"N": "1"}}, server(1)), "unknown eventName"),
        (record("REMOVE", 1, {"other": {"S": "1"}}), "no complete source key"),
    ],
)
def test_records_that_can_never_succeed_are_quarantined_with_a_reason(
    rec: dict[str, Any], reason: str
) -> None:
    (c,) = classified(SERVERS, [rec])
    assert c.kind == QUARANTINE
    assert c.reason is not None and reason in c.reason
    assert c.writes == ()


def test_membership_without_role_is_quarantined_but_still_touches_its_user() -> None:
    m = member("u9", "s1", role=None)
    (c,) = classified(MEMBERS, [record("INSERT", 1, keys_of(m, "userId", "serverId"), m)])
    assert c.kind == QUARANTINE and "role" in (c.reason or "")
    assert c.group == {"S": "u9"}  # the User item is recomputed from the source anyway


def test_item_over_400_kb_is_quarantined() -> None:
    big = server(1, blob={"S": "x" * (400 * 1024)})
    (c,) = classified(SERVERS, [record("INSERT", 1, {"id": {"N": "1"}}, big)])
    assert c.kind == QUARANTINE and "400 KB" in (c.reason or "")


# --- coalesce --------------------------------------------------------------------------
def test_several_changes_to_one_key_become_one_write_last_change_wins() -> None:
    k = {"id": {"N": "1"}}
    recs = [
        record("INSERT", 1, k, server(1, v={"N": "1"})),
        record("INSERT", 2, {"id": {"N": "2"}}, server(2)),
        record("MODIFY", 3, k, server(1, v={"N": "2"})),
        record("MODIFY", 4, k, server(1, v={"N": "3"})),
    ]
    plan = coalesce(classified(SERVERS, recs), set(), TARGET)
    assert len(plan.writes) == 2
    write = plan.writes[("SERVER#1", "METADATA")]
    assert write.item is not None and write.item["v"] == {"N": "3"}
    assert write.contributors == [0, 2, 3]


def test_a_delete_after_a_put_deletes_and_a_put_after_a_delete_puts() -> None:
    k = {"id": {"N": "1"}}
    put_then_delete = [record("INSERT", 1, k, server(1)), record("REMOVE", 2, k, old=server(1))]
    delete_then_put = list(reversed(put_then_delete))
    a = coalesce(classified(SERVERS, put_then_delete), set(), TARGET)
    b = coalesce(classified(SERVERS, delete_then_put), set(), TARGET)
    assert next(iter(a.writes.values())).item is None
    assert next(iter(b.writes.values())).item is not None


def test_a_quarantined_change_leaves_the_previous_write_standing() -> None:
    k = {"id": {"N": "1"}}
    recs = [
        record("INSERT", 1, k, server(1, v={"N": "1"})),
        record("MODIFY", 2, k, server(1, SK={"S": "clash"})),
    ]
    plan = coalesce(classified(SERVERS, recs), set(), TARGET)
    write = plan.writes[("SERVER#1", "METADATA")]
    assert write.item is not None and write.item["v"] == {"N": "1"}


def test_after_a_failure_later_records_of_the_same_key_are_blocked_not_others() -> None:
    k1, k2 = {"id": {"N": "1"}}, {"id": {"N": "2"}}
    recs = [
        record("INSERT", 1, k1, server(1, v={"N": "1"})),
        record("MODIFY", 2, k1, server(1, v={"N": "2"})),  # fails
        record("INSERT", 3, k2, server(2)),
        record("MODIFY", 4, k1, server(1, v={"N": "3"})),  # must not overtake record 1
    ]
    items = classified(SERVERS, recs)
    plan = coalesce(items, {1}, TARGET)
    assert plan.blocked == {3}
    write = plan.writes[("SERVER#1", "METADATA")]
    assert write.item is not None and write.item["v"] == {"N": "1"}
    assert ("SERVER#2", "METADATA") in plan.writes
    assert close_failures(items, {1}) == {1, 3}


def test_each_user_is_recomputed_once_per_batch() -> None:
    recs = []
    for i, (u, s) in enumerate([("u1", "s1"), ("u1", "s2"), ("u2", "s1"), ("u1", "s1")]):
        m = member(u, s)
        recs.append(record("INSERT", i, keys_of(m, "userId", "serverId"), m))
    plan = coalesce(classified(MEMBERS, recs), set(), TARGET)
    assert sorted(g.value["S"] for g in plan.groups.values()) == ["u1", "u2"]
    assert len(plan.writes) == 3
