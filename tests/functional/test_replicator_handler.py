"""The replicator Lambda (and its inner function) against in-process moto, with events shaped
like the AWS documentation's DynamoDB Streams samples."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dualwrite import prepare
from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.backoff import Backoff
from dualwrite.config import Migration, load_migration
from dualwrite.control import ControlStore, Phase
from dualwrite.errors import ConfigError
from dualwrite.runtime import Runtime
from dualwrite.seed import MEMBERSHIPS_DEFINITION
from stream_replicator import handler
from stream_replicator.apply import Replicator
from stream_replicator.batch import process_records

MIGRATION = """\
control_table: dualwrite-control
metrics_namespace: DualWriteTest
routes:
  - {name: servers, source: NumServers, target: CoreTable, mapping: servers}
  - {name: memberships, source: UserMembershipTable, target: CoreTable, mapping: memberships}
  - {name: docs, source: ExampleTableWithStream, target: ExampleTableCopy, mapping: identity}
targets:
  CoreTable:
    key: {PK: S, SK: S}
"""
SOURCES = [
    {
        "TableName": "NumServers",
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "N"}],
        "BillingMode": "PAY_PER_REQUEST",
    },
    MEMBERSHIPS_DEFINITION,
    {
        "TableName": "ExampleTableWithStream",
        "KeySchema": [{"AttributeName": "Id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "Id", "AttributeType": "N"}],
        "BillingMode": "PAY_PER_REQUEST",
    },
]


def arn(table: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2015-06-27T00:48:05.899"


@dataclass
class Context:
    """The parts of a Lambda context the handler uses."""

    remaining: Callable[[], int] = lambda: 60_000
    function_name: str = "replicator"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining()


@dataclass
class Events:
    """Builds records like AWS's samples, keeping the source tables in step (derived items are
    recomputed from the source)."""

    clients: Clients
    seq: int = 4_000_000_000_000_000_000
    records: list[dict[str, Any]] = field(default_factory=list)

    def _record(self, name: str, table: str, keys: dict[str, Any], new: Any, old: Any) -> None:
        self.seq += 100
        body: dict[str, Any] = {
            "ApproximateCreationDateTime": 1479499740,
            "Keys": keys,
            "SequenceNumber": str(self.seq),
            "SizeBytes": 26,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if new is not None:
            body["NewImage"] = json_safe(new)
        if old is not None:
            body["OldImage"] = json_safe(old)
        self.records.append(
            {
                "eventID": f"ev-{self.seq}",
                "eventName": name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": body,
                "eventSourceARN": arn(table),
            }
        )

    def put(self, table: str, item: dict[str, Any], *, old: Any = None, write: bool = True) -> None:
        names = key_names(self.clients, table)
        if write:
            self.clients.dynamodb.put_item(TableName=table, Item=item)
        keys = json_safe({n: item[n] for n in names})
        self._record("MODIFY" if old is not None else "INSERT", table, keys, item, old)

    def delete(self, table: str, old: dict[str, Any], *, ttl: bool = False) -> None:
        names = key_names(self.clients, table)
        key = {n: old[n] for n in names}
        self.clients.dynamodb.delete_item(TableName=table, Key=key)
        self._record("REMOVE", table, json_safe(key), None, old)
        if ttl:
            self.records[-1]["userIdentity"] = {
                "type": "Service",
                "principalId": "dynamodb.amazonaws.com",
            }

    def event(self) -> dict[str, Any]:
        return {"Records": list(self.records)}


def json_safe(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def key_names(clients: Clients, table: str) -> tuple[str, ...]:
    desc = tables.describe(clients.dynamodb, table)
    assert desc is not None
    return tables.key_schema_of(desc).names


@dataclass
class Env:
    clients: Clients
    migration: Migration
    store: ControlStore
    events: Events
    _runtime: Runtime | None = None

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        item = self.clients.dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)
        return item.get("Item")

    def core(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self.get("CoreTable", {"PK": {"S": pk}, "SK": {"S": sk}})

    @property
    def runtime(self) -> Runtime:
        """What the Lambda container would hold, around this test's clients and store."""
        if self._runtime is None:
            self._runtime = Runtime.of(self.migration, self.clients, self.store)
        return self._runtime

    def replicator(self, dynamodb: Any = None, **kwargs: Any) -> Replicator:
        return Replicator(
            self.migration,
            self.clients,
            self.store,
            dynamodb=dynamodb,
            backoff=Backoff(sleep=lambda _s: None),
            **kwargs,
        )


@pytest.fixture
def env(moto_clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    path = tmp_path / "migration.yaml"
    path.write_text(MIGRATION)
    monkeypatch.setenv("DUALWRITE_CONFIG", str(path))
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    migration = load_migration(path)
    for definition in SOURCES:
        tables.create_table(moto_clients.dynamodb, dict(definition))
    prepare.apply(
        migration,
        moto_clients,
        prepare.analyze(migration, moto_clients, backup=False),
        backup=False,
    )
    store = ControlStore(moto_clients.dynamodb, migration.control_table)
    for route in migration.routes:
        store.set_phase(route.name, Phase.BACKFILLED)
    yield Env(moto_clients, migration, store, Events(moto_clients))


def server(i: int, **attrs: Any) -> dict[str, Any]:
    return {"id": {"N": str(i)}, "name": {"S": f"srv{i}"}, **attrs}


def member(user: str, srv: str, role: str | None = "viewer", email: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {"userId": {"S": user}, "serverId": {"S": srv}}
    if role is not None:
        item["role"] = {"S": role}
    if email:
        item["email"] = {"S": email}
    return item


def emf_lines(out: str) -> list[dict[str, Any]]:
    blobs = []
    for line in out.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if isinstance(blob, dict) and "_aws" in blob:
            blobs.append(blob)
    return blobs


def value(emf: Any) -> float:
    """EMF carries a metric's values as a list (Powertools) or a number."""
    return float(emf[0] if isinstance(emf, list) else emf)


class Flaky:
    """A DynamoDB client that leaves chosen writes unprocessed (or throttles) and counts."""

    def __init__(
        self,
        real: Any,
        leave: Callable[[dict[str, Any]], bool] = lambda _r: False,
        times: int | None = None,
        throttle_times: int = 0,
        reject: Callable[[dict[str, Any]], bool] = lambda _r: False,
    ) -> None:
        self.real = real
        self.leave = leave
        self.times = times
        self.throttle_times = throttle_times
        self.reject = reject
        self.calls: dict[str, int] = {}

    def _count(self, op: str) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1

    def batch_write_item(self, RequestItems: dict[str, Any], **kw: Any) -> Any:
        self._count("BatchWriteItem")
        ((table, requests),) = RequestItems.items()
        assert len(requests) <= 25
        if self.throttle_times:
            self.throttle_times -= 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "BatchWriteItem",
            )
        if any(self.reject(r) for r in requests):
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "bad item"}},
                "BatchWriteItem",
            )
        leaving = self.times is None or self.times > 0
        left = [r for r in requests if leaving and self.leave(r)]
        if left and self.times is not None:
            self.times -= 1
        keep = [r for r in requests if r not in left]
        if keep:
            self.real.batch_write_item(RequestItems={table: keep}, **kw)
        return {"UnprocessedItems": {table: left} if left else {}}

    def put_item(self, **kw: Any) -> Any:
        self._count("PutItem")
        if self.reject({"PutRequest": {"Item": kw["Item"]}}):
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "bad item"}}, "PutItem"
            )
        return self.real.put_item(**kw)

    def query(self, **kw: Any) -> Any:
        self._count("Query")
        return self.real.query(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def pk_of(request: dict[str, Any]) -> str:
    if "PutRequest" in request:
        return str(request["PutRequest"]["Item"]["PK"]["S"])
    return str(request["DeleteRequest"]["Key"]["PK"]["S"])


# --- the Lambda entry point --------------------------------------------------------------
def test_documented_event_shapes_through_lambda_handler(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    ev = env.events
    ev.put("NumServers", server(101, icon={"B": b"\x00\x01\xfe"}))
    ev.put("NumServers", server(102))
    ev.put(
        "NumServers", server(101, status={"S": "up"}, icon={"B": b"\x00\x01\xfe"}), old=server(101)
    )
    ev.delete("NumServers", server(102))
    ev.put("UserMembershipTable", member("u1", "s1", "admin", "ana@example.com"))
    ev.put("UserMembershipTable", member("u1", "s2", "owner"))  # unknown role
    doc = {"Id": {"N": "101"}, "Message": {"S": "New item!"}}
    ev.put("ExampleTableWithStream", doc)
    ev.put("ExampleTableWithStream", {"Id": {"N": "102"}, "Message": {"S": "gone soon"}})
    ev.delete("ExampleTableWithStream", {"Id": {"N": "102"}, "Message": {"S": "x"}}, ttl=True)

    response = handler.lambda_handler(ev.event(), Context(), runtime=env.runtime)

    assert response == {"batchItemFailures": []}
    s101 = env.core("SERVER#101", "METADATA")
    assert s101 is not None
    assert s101["status"] == {"S": "up"} and s101["icon"] == {"B": b"\x00\x01\xfe"}
    assert s101["Type"] == {"S": "Server"} and "id" not in s101
    assert env.core("SERVER#102", "METADATA") is None
    owner = env.core("USER#u1", "SERVER#s2")
    assert owner is not None and owner["permissions"] == {"L": [{"S": "read"}]}
    user = env.core("USER#u1", "METADATA")
    assert user is not None
    assert user["email"] == {"S": "ana@example.com"} and user["name"] == {"S": "ana"}
    assert env.get("ExampleTableCopy", {"Id": {"N": "101"}}) == doc
    assert env.get("ExampleTableCopy", {"Id": {"N": "102"}}) is None  # the TTL delete

    blobs = emf_lines(capsys.readouterr().out)
    by_route = {b["Route"]: b for b in blobs if "ReplicatedRecords" in b}
    assert value(by_route["servers"]["ReplicatedRecords"]) == 4
    assert value(by_route["memberships"]["UnknownRole"]) == 1
    assert value(by_route["docs"]["ReplicatedRecords"]) == 3
    assert value(by_route["docs"]["TtlDeletes"]) == 1  # the expiry of item 102
    assert value(by_route["servers"]["TtlDeletes"]) == 0
    for blob in blobs:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "DualWriteTest"
        assert directive["Dimensions"] == [["Route"]]
    assert value(by_route["servers"]["ReplicationLagMs"]) > 0


def test_a_record_counts_once_when_its_outcome_is_final(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    ev = env.events
    for i in (1, 2, 3):
        ev.put("NumServers", server(i))
    records = list(ev.records)
    seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
    flaky = Flaky(env.clients.dynamodb, leave=lambda r: pk_of(r) == "SERVER#2", times=1)
    env.runtime.part("replicator", lambda: env.replicator(flaky, max_write_attempts=1))
    capsys.readouterr()

    first = handler.lambda_handler({"Records": records}, Context(), runtime=env.runtime)

    assert first == {"batchItemFailures": [{"itemIdentifier": seqs[1]}]}
    # written, but Lambda delivers it again with the failed one: not final yet
    assert env.core("SERVER#3", "METADATA") is not None
    second = handler.lambda_handler({"Records": records[1:]}, Context(), runtime=env.runtime)
    assert second == {"batchItemFailures": []}
    blobs = emf_lines(capsys.readouterr().out)
    assert [b["Route"] for b in blobs] == ["servers", "servers"]
    assert [value(b["ReplicatedRecords"]) for b in blobs] == [1, 2]  # 3 records, 3 counts
    assert [value(b["ReplicationFailures"]) for b in blobs] == [1, 0]
    for blob in blobs:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Dimensions"] == [["Route"]]


def test_route_not_backfilled_is_held_not_written_not_lost(env: Env) -> None:
    env.store.set_phase("memberships", Phase.BACKFILLING)
    env.events.put("NumServers", server(1))
    env.events.put("UserMembershipTable", member("u1", "s1"))
    env.events.put("UserMembershipTable", member("u2", "s1"))
    records = env.events.records

    response = handler.lambda_handler(env.events.event(), Context(), runtime=env.runtime)

    held = [r["dynamodb"]["SequenceNumber"] for r in records[1:]]
    assert response == {"batchItemFailures": [{"itemIdentifier": s} for s in held]}
    assert env.core("SERVER#1", "METADATA") is not None
    assert env.core("USER#u1", "SERVER#s1") is None
    assert env.core("USER#u1", "METADATA") is None

    env.store.set_phase("memberships", Phase.BACKFILLED)
    again = handler.lambda_handler({"Records": records[1:]}, Context(), runtime=env.runtime)
    assert again == {"batchItemFailures": []}
    assert env.core("USER#u2", "SERVER#s1") is not None


def test_record_of_an_unknown_table_fails_the_whole_batch(env: Env) -> None:
    env.events.put("NumServers", server(1))
    event = env.events.event()
    event["Records"][0]["eventSourceARN"] = arn("SomebodyElsesTable")
    with pytest.raises(ConfigError, match="SomebodyElsesTable"):
        handler.lambda_handler(event, Context(), runtime=env.runtime)


def test_missing_config_is_a_clear_error(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUALWRITE_CONFIG")
    with pytest.raises(ConfigError, match="DUALWRITE_CONFIG"):
        handler.lambda_handler({"Records": []}, Context())


# --- the inner function ------------------------------------------------------------------
def test_several_changes_to_one_key_take_one_write_and_one_query_per_user(env: Env) -> None:
    ev = env.events
    for v in range(5):
        ev.put("NumServers", server(1, v={"N": str(v)}), old=server(1) if v else None)
    for s in range(30):
        ev.put("NumServers", server(100 + s))
    ev.put("UserMembershipTable", member("u1", "s1", "viewer", "a@x.io"))
    ev.put("UserMembershipTable", member("u1", "s1", "admin", "b@x.io"), old=member("u1", "s1"))
    ev.put("UserMembershipTable", member("u2", "s1"))
    flaky = Flaky(env.clients.dynamodb)

    done = process_records(env.replicator(flaky), ev.records)

    assert done.response == {"batchItemFailures": []}
    got = env.core("SERVER#1", "METADATA")
    assert got is not None and got["v"] == {"N": "4"}
    # 31 server writes -> 2 batches; 2 memberships + 2 users -> 1 batch; 1 Query per user
    assert flaky.calls == {"BatchWriteItem": 3, "Query": 2}
    user = env.core("USER#u1", "METADATA")
    assert user is not None and user["email"] == {"S": "b@x.io"}


def test_duplicate_delivery_of_a_whole_batch_converges_and_quarantines_once(env: Env) -> None:
    ev = env.events
    ev.put("NumServers", server(1, v={"N": "1"}))
    ev.put("NumServers", server(2, PK={"S": "nope"}))  # poison
    ev.put("NumServers", server(1, v={"N": "2"}), old=server(1))
    ev.delete("NumServers", server(3))
    rep = env.replicator()

    first = process_records(rep, ev.records)
    second = process_records(rep, ev.records)

    assert first.response == second.response == {"batchItemFailures": []}
    got = env.core("SERVER#1", "METADATA")
    assert got is not None and got["v"] == {"N": "2"}
    assert env.core("SERVER#2", "METADATA") is None
    assert len(env.store.quarantined("servers")) == 1
    assert first.result.routes["servers"].quarantined == 1


def test_poison_record_between_good_ones_is_quarantined_and_the_batch_goes_on(env: Env) -> None:
    ev = env.events
    ev.put("UserMembershipTable", member("u1", "s1", "admin", "a@x.io"))
    ev.put("UserMembershipTable", member("u1", "s2", role=None))  # no role: poison
    ev.put("UserMembershipTable", member("u2", "s1"))

    done = process_records(env.replicator(), ev.records)

    assert done.response == {"batchItemFailures": []}
    assert done.result.outcomes == ["applied", "quarantined", "applied"]
    assert env.core("USER#u1", "SERVER#s1") is not None
    assert env.core("USER#u1", "SERVER#s2") is None
    assert env.core("USER#u2", "SERVER#s1") is not None
    (entry,) = env.store.quarantined("memberships")
    assert entry.source == "replicator"
    assert "role" in entry.reason
    assert entry.record == ev.records[1]  # the full record, JSON-safe


def test_user_losing_memberships_gets_a_recomputed_then_no_user_item(env: Env) -> None:
    ev = env.events
    ev.put("UserMembershipTable", member("u1", "s1", "viewer", "first@x.io"))
    ev.put("UserMembershipTable", member("u1", "s2", "viewer", "second@x.io"))
    rep = env.replicator()
    process_records(rep, ev.records)
    before = env.core("USER#u1", "METADATA")
    assert before is not None and before["email"] == {"S": "first@x.io"}

    ev.records.clear()
    ev.delete("UserMembershipTable", member("u1", "s1", "viewer", "first@x.io"))
    assert process_records(rep, ev.records).response == {"batchItemFailures": []}
    after = env.core("USER#u1", "METADATA")
    assert after is not None and after["email"] == {"S": "second@x.io"}

    ev.records.clear()
    ev.delete("UserMembershipTable", member("u1", "s2", "viewer", "second@x.io"))
    assert process_records(rep, ev.records).response == {"batchItemFailures": []}
    assert env.core("USER#u1", "SERVER#s2") is None
    assert env.core("USER#u1", "METADATA") is None


def test_unprocessed_items_are_retried_with_backoff_until_written(env: Env) -> None:
    for i in range(10):
        env.events.put("NumServers", server(i))
    sleeps: list[float] = []
    flaky = Flaky(
        env.clients.dynamodb, leave=lambda r: pk_of(r) in {"SERVER#3", "SERVER#7"}, times=2
    )
    rep = env.replicator(flaky)
    rep.backoff = Backoff(sleep=sleeps.append, rand=lambda: 1.0)

    done = process_records(rep, env.events.records)

    assert done.response == {"batchItemFailures": []}
    assert flaky.calls["BatchWriteItem"] == 3
    assert sleeps == [0.1, 0.2]  # exponential (full jitter at its ceiling here)
    assert all(env.core(f"SERVER#{i}", "METADATA") is not None for i in range(10))


def test_unprocessed_items_when_time_runs_out_fail_their_key_and_nothing_overtakes(
    env: Env,
) -> None:
    ev = env.events
    ev.put("NumServers", server(1, v={"N": "1"}))
    ev.put("NumServers", server(2))
    ev.put("NumServers", server(1, v={"N": "2"}), old=server(1))
    ev.put("NumServers", server(3))
    records = list(ev.records)
    flaky = Flaky(env.clients.dynamodb, leave=lambda r: pk_of(r) == "SERVER#1")
    rep = env.replicator(flaky, max_write_attempts=50)

    def remaining() -> int:
        # plenty of time until the first BatchWriteItem has gone out, then too little
        return 60_000 if not flaky.calls.get("BatchWriteItem") else rep.time_margin_ms - 1

    done = process_records(rep, records, Context(remaining=remaining))

    assert flaky.calls["BatchWriteItem"] == 1  # no retry once the time is short
    failed = [f["itemIdentifier"] for f in done.response["batchItemFailures"]]
    seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert failed == [seqs[0], seqs[2]]  # both records of key 1, and only them
    assert env.core("SERVER#1", "METADATA") is None
    assert env.core("SERVER#2", "METADATA") is not None
    assert env.core("SERVER#3", "METADATA") is not None

    # Lambda redelivers from the lowest failed sequence number: everything from record 0
    healed = process_records(env.replicator(), records)
    assert healed.response == {"batchItemFailures": []}
    got = env.core("SERVER#1", "METADATA")
    assert got is not None and got["v"] == {"N": "2"}


def test_throttling_beyond_retries_fails_the_batch_records_for_redelivery(env: Env) -> None:
    for i in range(3):
        env.events.put("NumServers", server(i))
    flaky = Flaky(env.clients.dynamodb, throttle_times=1)

    done = process_records(env.replicator(flaky), env.events.records)

    assert len(done.response["batchItemFailures"]) == 3
    assert env.core("SERVER#0", "METADATA") is None
    again = process_records(env.replicator(flaky), env.events.records)
    assert again.response == {"batchItemFailures": []}
    assert env.core("SERVER#2", "METADATA") is not None


def test_item_the_target_rejects_is_quarantined_and_the_rest_written(env: Env) -> None:
    for i in range(4):
        env.events.put("NumServers", server(i))
    flaky = Flaky(
        env.clients.dynamodb,
        reject=lambda r: "PutRequest" in r and pk_of(r) == "SERVER#2",
    )

    done = process_records(env.replicator(flaky), env.events.records)

    assert done.response == {"batchItemFailures": []}
    assert done.result.outcomes == ["applied", "applied", "quarantined", "applied"]
    assert env.core("SERVER#2", "METADATA") is None
    assert env.core("SERVER#3", "METADATA") is not None
    (entry,) = env.store.quarantined("servers")
    assert "rejected" in entry.reason


def test_item_over_400_kb_is_quarantined_with_what_fits_of_its_record(env: Env) -> None:
    big = server(7, blob={"S": "x" * (399 * 1024)}, more={"S": "y" * 2048})
    env.events.put("NumServers", big, write=False)  # the target item would pass 400 KB
    env.events.put("NumServers", server(8))

    done = process_records(env.replicator(), env.events.records)

    assert done.response == {"batchItemFailures": []}
    assert done.result.outcomes == ["quarantined", "applied"]
    (entry,) = env.store.quarantined("servers")
    assert "400 KB" in entry.reason
    record = entry.record
    assert record["dynamodb"]["Keys"] == {"id": {"N": "7"}}
    assert record["omitted"] == ["NewImage"]  # said, not silently dropped
    assert record["eventID"] == env.events.records[0]["eventID"]


def test_user_name_comes_from_cognito_when_a_pool_is_configured(env: Env) -> None:
    idp = env.clients.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="users")["UserPool"]["Id"]
    idp.admin_create_user(
        UserPoolId=pool, Username="u1", UserAttributes=[{"Name": "name", "Value": "Ana Lima"}]
    )
    env.migration = env.migration.model_copy(update={"cognito_user_pool_id": pool})
    env.events.put("UserMembershipTable", member("u1", "s1", "admin", "ana@x.io"))
    env.events.put("UserMembershipTable", member("u2", "s1", "admin", "bo@x.io"))

    assert process_records(env.replicator(), env.events.records).response == {
        "batchItemFailures": []
    }

    u1, u2 = env.core("USER#u1", "METADATA"), env.core("USER#u2", "METADATA")
    assert u1 is not None and u1["name"] == {"S": "Ana Lima"}
    assert u2 is not None and u2["name"] == {"S": "bo"}  # not in the pool: from the email
