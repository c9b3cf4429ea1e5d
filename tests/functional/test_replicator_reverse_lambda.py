"""The replicator Lambda follows a route's direction (DESIGN.md section 8): a target-stream
record is held before the forward direction has drained (by time: the Lambda cannot see the
shards), then applied in reverse once the route is reverse and drained; throttling and
partial batches in reverse are retried, a failed record keeps the later records of its key
behind it, and what the old schema cannot hold is quarantined and counted."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from dualwrite import seed
from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.config import parse_migration
from dualwrite.errors import ConfigError
from dualwrite.reverse.direction import Direction, Flow, switch
from dualwrite.runtime import Runtime
from dualwrite.wire import Item
from stream_replicator import handler
from stream_replicator.batch import process_records
from tests.reverse_world import World, prepared

OLD, NEW = "old-accounts", "new-accounts"
MIGRATION = f"""\
control_table: rev-lambda-control
metrics_namespace: DualWriteTest
routes:
  - {{name: accounts, source: {OLD}, target: {NEW}, mapping: identity}}
  - {{name: servers, source: ServersTable, target: CoreTable, mapping: servers}}
  - {{name: memberships, source: UserMembershipTable, target: CoreTable, mapping: memberships}}
targets:
  CoreTable:
    key: {{PK: S, SK: S}}
"""
ROUTE = "accounts"


def stream_arn(table: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-01-01T00:00:00.000"


@dataclass
class Context:
    aws_request_id: str = "req-reverse"
    function_name: str = "replicator"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class Records:
    """Target-stream records shaped as Lambda delivers them."""

    def __init__(self) -> None:
        self.seq = 7_000_000_000_000_000_000

    def record(self, table: str, name: str, keys: Item, new: Item | None, at: float) -> Any:
        self.seq += 10
        body: dict[str, Any] = {
            "ApproximateCreationDateTime": at,
            "Keys": keys,
            "SequenceNumber": str(self.seq),
            "SizeBytes": 40,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if new is not None:
            body["NewImage"] = new
        return {
            "eventID": f"ev-{self.seq}",
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": body,
            "eventSourceARN": stream_arn(table),
        }

    def account(self, i: int, at: float, name: str = "INSERT", **attrs: str) -> Any:
        item: Item = {"accountId": {"S": f"a{i:02}"}, **{k: {"S": v} for k, v in attrs.items()}}
        keys = {"accountId": item["accountId"]}
        return self.record(NEW, name, keys, None if name == "REMOVE" else item, at)


@pytest.fixture
def world(moto_clients: Clients, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    tables.create_table(
        moto_clients.dynamodb,
        {
            "TableName": OLD,
            "KeySchema": [{"AttributeName": "accountId", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "accountId", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    seed.ensure_tables(moto_clients)
    return prepared(moto_clients, parse_migration(yaml.safe_load(MIGRATION)))


def emf(out: str) -> dict[str, dict[str, float]]:
    """Route -> metric -> value, from the EMF lines on stdout."""
    got: dict[str, dict[str, float]] = {}
    for line in out.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for d in blob["_aws"]["CloudWatchMetrics"]:
            for metric in d["Metrics"]:
                v = blob[metric["Name"]]
                got.setdefault(blob["Route"], {})[metric["Name"]] = float(
                    v[0] if isinstance(v, list) else v
                )
    return got


def old_item(w: World, i: int) -> Item | None:
    got = w.ddb.get_item(TableName=OLD, Key={"accountId": {"S": f"a{i:02}"}}, ConsistentRead=True)
    item: Item | None = got.get("Item")
    return item


def save(w: World, state: Direction) -> None:
    assert w.store.save_direction(ROUTE, state, expected=w.store.direction(ROUTE))


def test_lambda_holds_before_the_drain_and_applies_in_reverse_after_it(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    w = world
    rt = Runtime.of(w.migration, w.clients, w.store)
    now = time.time()
    recs = Records()
    event = {"Records": [recs.account(1, now, plan="pro")]}
    seq = event["Records"][0]["dynamodb"]["SequenceNumber"]

    # forward before any switch: a target-stream record is nobody's, settled and not applied
    assert handler.lambda_handler(event, Context(), runtime=rt) == {"batchItemFailures": []}
    assert old_item(w, 1) is None

    # cut over just now, the lag allowed is a minute: the record waits for forward's drain
    save(w, switch(Direction(), Flow.REVERSE, now, 0.0, drain_grace_s=60.0))
    capsys.readouterr()
    held = handler.lambda_handler(event, Context(), runtime=rt)
    assert held == {"batchItemFailures": [{"itemIdentifier": seq}]}
    assert old_item(w, 1) is None and not w.store.direction(ROUTE).old_drained
    metrics = emf(capsys.readouterr().out)[ROUTE]
    assert metrics["ReplicationFailures"] == 0  # waiting for a drain is not a failure

    # a switch long enough ago that its drain is over by the clock: the Lambda marks it
    # drained and applies the record in reverse, exactly once
    save(w, switch(Direction(), Flow.REVERSE, now - 100, 10.0, drain_grace_s=5.0))
    applied = handler.lambda_handler(event, Context(), runtime=rt)
    assert applied == {"batchItemFailures": []}
    assert old_item(w, 1) == {"accountId": {"S": "a01"}, "plan": {"S": "pro"}}
    assert w.store.direction(ROUTE).old_drained
    metrics = emf(capsys.readouterr().out)[ROUTE]
    assert metrics["ReverseReplicatedRecords"] == 1 and metrics["ReplicatedRecords"] == 0
    assert metrics["ForeignWrites"] == 0 and metrics["Unrepresentable"] == 0
    # a record made before T minus the margin is forward's: skipped, nothing written
    old = {"Records": [recs.account(2, now - 200)]}
    assert handler.lambda_handler(old, Context(), runtime=rt) == {"batchItemFailures": []}
    assert old_item(w, 2) is None


class Faulty:
    """A DynamoDB client whose BatchWriteItem on the old table throttles `throttle` times,
    leaves part of the first batch unprocessed, and never takes keys `refuse` picks."""

    def __init__(self, real: Any, refuse: Callable[[Any], bool], throttle: int = 1) -> None:
        self.real = real
        self.refuse = refuse
        self.throttle = throttle
        self.partial = 1
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def batch_write_item(self, RequestItems: dict[str, Any], **kw: Any) -> Any:
        ((table, requests),) = RequestItems.items()
        if table != OLD:
            return self.real.batch_write_item(RequestItems=RequestItems, **kw)
        self.calls += 1
        if self.throttle:
            self.throttle -= 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "BatchWriteItem",
            )
        left = [r for r in requests if self.refuse(r)]
        keep = [r for r in requests if r not in left]
        if self.partial and len(keep) > 1:
            self.partial -= 1
            left += keep[len(keep) // 2 :]
            keep = keep[: len(keep) // 2]
        if keep:
            self.real.batch_write_item(RequestItems={table: keep}, **kw)
        return {"UnprocessedItems": {table: left} if left else {}}


def test_reverse_retries_throttling_and_partial_batches_and_keeps_a_key_in_order(
    world: World,
) -> None:
    w = world
    now = time.time()
    save(w, switch(Direction(), Flow.REVERSE, now - 100, 10.0))
    recs = Records()
    batch = [
        recs.account(10, now, plan="a"),
        recs.account(11, now, plan="b"),
        recs.account(12, now, plan="c"),
        recs.account(11, now, "MODIFY", plan="b2"),
        recs.account(13, now, plan="d"),
    ]

    def refuses_a11(request: Any) -> bool:
        return bool(request.get("PutRequest", {}).get("Item", {}).get("accountId") == {"S": "a11"})

    # throttled first: the whole batch fails and is redelivered
    faulty = Faulty(w.ddb, refuses_a11, throttle=1)
    rep = w.replicator(dynamodb=faulty)
    first = process_records(rep, batch)
    assert len(first.failures) == len(batch)
    assert all(old_item(w, i) is None for i in (10, 11, 12, 13))
    # redelivered: the partial batch is retried; a11 never lands, so both its records fail
    # and what comes after the first of them is redelivered (counted once it is final)
    second = process_records(rep, batch)
    seqs = [r["dynamodb"]["SequenceNumber"] for r in batch]
    assert sorted(second.failures) == sorted([seqs[1], seqs[3]])
    assert second.result.reasons[3] is not None
    assert [old_item(w, i) is not None for i in (10, 11, 12, 13)] == [True, False, True, True]
    settled = second.settled()[ROUTE]
    assert settled.reverse_replicated == 1 and settled.failed == 2  # a10 is final, a12 is not
    assert faulty.calls >= 3  # throttled, partial, and the unprocessed half retried
    # the redelivery from the lowest failure, with a client that takes everything
    third = process_records(w.replicator(), batch[1:])
    assert third.failures == []
    assert old_item(w, 11) == {"accountId": {"S": "a11"}, "plan": {"S": "b2"}}
    assert third.settled()[ROUTE].reverse_replicated == 4


def test_an_unrepresentable_target_change_is_quarantined_and_counted(world: World) -> None:
    w = world
    now = time.time()
    for route in ("servers", "memberships"):
        state = w.store.direction(route)
        assert w.store.save_direction(
            route, switch(state, Flow.REVERSE, now - 100, 10.0), expected=state
        )
    recs = Records()
    bad = {
        "PK": {"S": "USER#u1"},
        "SK": {"S": "SERVER#s1"},
        "Type": {"S": "UserServer"},
        "role": {"S": "viewer"},
        "permissions": {"L": [{"S": "everything"}]},
    }
    server = {
        "PK": {"S": "SERVER#s7"},
        "SK": {"S": "METADATA"},
        "Type": {"S": "Server"},
        "name": {"S": "seven"},
    }
    events = [
        recs.record("CoreTable", "INSERT", {"PK": bad["PK"], "SK": bad["SK"]}, bad, now),
        recs.record("CoreTable", "INSERT", {"PK": server["PK"], "SK": server["SK"]}, server, now),
    ]
    done = process_records(w.replicator(), events)
    assert done.failures == []
    counts = done.settled()
    # dispatched by key: the UserServer item is the memberships route's, the server servers'
    assert counts["memberships"].unrepresentable == 1 and counts["memberships"].quarantined == 1
    assert counts["servers"].reverse_replicated == 1
    (entry,) = w.store.quarantined("memberships")
    assert entry.reason.startswith("unrepresentable: permissions")
    got = w.ddb.get_item(TableName="ServersTable", Key={"id": {"S": "s7"}}, ConsistentRead=True)
    assert got["Item"] == {"id": {"S": "s7"}, "name": {"S": "seven"}}
    none = w.ddb.scan(TableName="UserMembershipTable")["Items"]
    assert none == []


def test_a_route_without_an_inverse_quarantines_what_reaches_it_in_reverse(
    moto_clients: Clients,
) -> None:
    tables.create_table(
        moto_clients.dynamodb,
        {
            "TableName": "tagged-old",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    migration = parse_migration(
        {
            "control_table": "tagged-control",
            "routes": [
                {
                    "name": "tagged",
                    "source": "tagged-old",
                    "target": "tagged-new",
                    "mapping": "tests.unit.sample_mapping:TaggedCopy",
                }
            ],
        }
    )
    w = prepared(moto_clients, migration)
    state = switch(Direction(), Flow.REVERSE, time.time() - 100, 10.0)
    assert w.store.save_direction("tagged", state, expected=Direction())
    item = {"pk": {"S": "k1"}, "migrated": {"BOOL": True}}
    record = Records().record("tagged-new", "INSERT", {"pk": item["pk"]}, item, time.time())
    done = process_records(w.replicator(), [record])
    assert done.failures == []
    assert done.settled()["tagged"].unrepresentable == 1
    (entry,) = w.store.quarantined("tagged")
    assert entry.reason.startswith("unrepresentable") and "no inverse" in entry.reason
    assert w.ddb.scan(TableName="tagged-old")["Items"] == []


def test_once_the_old_table_is_decommissioned_reverse_records_are_skipped_not_failed(
    world: World,
) -> None:
    w = world
    start = time.time() - 60
    save(w, Direction(Flow.REVERSE, switched_at=start, overlap_s=0.0, old_drained=True))
    records = Records()
    rep = w.replicator()
    w.ddb.delete_table(TableName=OLD)
    batch = [records.account(1, time.time(), plan="gone")]
    # deleted by someone, not decommissioned: the batch fails loudly (a configuration error)
    with pytest.raises(ConfigError, match=OLD):
        process_records(rep, batch)
    w.store.put("DECOMMISSION", OLD, {"table": OLD})  # what decommission records
    done = process_records(w.replicator(), batch)
    assert done.failures == []
    assert done.settled()[ROUTE].skipped == 1
    assert done.settled()[ROUTE].reverse_replicated == 0
