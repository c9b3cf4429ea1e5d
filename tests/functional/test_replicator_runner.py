"""The local stream runner against moto's streams (in-process), and against a fake streams
client for what moto cannot do: shard splits (lineage), expired iterators, trimming."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dualwrite import prepare, seed
from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.backoff import Backoff
from dualwrite.config import Migration, load_migration
from dualwrite.control import ControlStore, Phase, ShardCheckpoint
from dualwrite.errors import ConfigError, UnmappableError
from dualwrite.mapping import build_mapping
from dualwrite.wire import Item, items_equal, key_id
from stream_replicator.apply import Replicator
from stream_replicator.runner import StreamRunner
from stream_replicator.runner_settings import RunnerSettings
from tests.conftest import MIGRATIONS


@dataclass
class Env:
    clients: Clients
    migration: Migration
    store: ControlStore
    notes: list[str] = field(default_factory=list)

    def runner(
        self,
        replicator: Replicator | None = None,
        streams: Any = None,
        cloudwatch: Any = None,
        **settings: Any,
    ) -> StreamRunner:
        settings.setdefault("poll_interval", 0.01)
        settings.setdefault("retry_backoff", Backoff(sleep=lambda _s: None, rand=lambda: 0.0))
        return StreamRunner(
            self.migration,
            self.clients,
            self.store,
            RunnerSettings(**settings),
            replicator=replicator,
            streams=streams,
            cloudwatch=cloudwatch,
            notify=self.notes.append,
        )

    def core(self, pk: str, sk: str = "METADATA") -> Item | None:
        got = self.clients.dynamodb.get_item(
            TableName="CoreTable", Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=True
        )
        item: Item | None = got.get("Item")
        return item


def scan_all(clients: Clients, table: str) -> list[Item]:
    items: list[Item] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = clients.dynamodb.scan(**kwargs)
        items += page.get("Items", [])
        if not page.get("LastEvaluatedKey"):
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def assert_target_is_mapping_of_source(clients: Clients, migration: Migration) -> int:
    """target == mapping(source), item for item, attribute for attribute."""
    expected: dict[tuple[str, str], Item] = {}
    for route in migration.routes:
        desc = tables.describe(clients.dynamodb, route.source)
        assert desc is not None
        mapping = build_mapping(route.mapping, tables.key_schema_of(desc))
        names = mapping.target_key.names
        source = scan_all(clients, route.source)
        groups: dict[str, tuple[Any, list[Item]]] = {}
        for item in source:
            try:
                target = mapping.transform(item)
            except UnmappableError:
                pass
            else:
                expected[(route.target, key_id({n: target[n] for n in names}))] = target
            group = mapping.group_of(item)
            if group is not None:
                groups.setdefault(key_id({"g": group}), (group, []))[1].append(item)
        for group, members in groups.values():
            derived = mapping.derive(group, members, None)
            assert derived is not None
            expected[(route.target, key_id({n: derived[n] for n in names}))] = derived
    actual: dict[tuple[str, str], Item] = {}
    for target_table in sorted({r.target for r in migration.routes}):
        for item in scan_all(clients, target_table):
            actual[(target_table, key_id({"PK": item["PK"], "SK": item["SK"]}))] = item
    assert sorted(actual) == sorted(expected)
    for k, item in expected.items():
        assert items_equal(actual[k], item), k
    return len(actual)


@pytest.fixture
def base(moto_clients: Clients) -> Env:
    """Empty sources with streams on, the control table and CoreTable (prepare)."""
    migration = load_migration(MIGRATIONS / "coretable.yaml")
    seed.ensure_tables(moto_clients)
    prepare.apply(
        migration,
        moto_clients,
        prepare.analyze(migration, moto_clients, backup=False),
        backup=False,
    )
    return Env(
        moto_clients, migration, ControlStore(moto_clients.dynamodb, migration.control_table)
    )


@pytest.fixture
def env(base: Env) -> Env:
    """`base` with a small seed written to the sources (so it is in their streams)."""
    data = seed.generate(12, 30, 7)
    seed.write_items(base.clients, seed.SERVERS_TABLE, data.servers)
    seed.write_items(base.clients, seed.MEMBERSHIPS_TABLE, data.memberships)
    return base


def live_changes(clients: Clients) -> None:
    """Updates, deletes and inserts on both sources, after the seed."""
    ddb = clients.dynamodb
    ddb.update_item(
        TableName="ServersTable",
        Key={"id": {"S": "srv-000001"}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "migrating"}},
    )
    ddb.delete_item(TableName="ServersTable", Key={"id": {"S": "srv-000002"}})
    ddb.put_item(TableName="ServersTable", Item={"id": {"S": "srv-new"}, "name": {"S": "n"}})
    members = scan_all(clients, "UserMembershipTable")
    first_user = members[0]["userId"]
    for m in members:
        if m["userId"] == first_user:  # this user loses every membership
            ddb.delete_item(
                TableName="UserMembershipTable",
                Key={"userId": m["userId"], "serverId": m["serverId"]},
            )
    ddb.put_item(
        TableName="UserMembershipTable",
        Item={
            "userId": {"S": "user-new"},
            "serverId": {"S": "srv-000003"},
            "role": {"S": "moderator"},
            "email": {"S": "new@example.com"},
        },
    )


def mark_backfilled(store: ControlStore, *routes: str) -> None:
    for route in routes:
        store.set_phase(route, Phase.BACKFILLED)


# --- against moto's streams ----------------------------------------------------------------
def test_runner_replicates_everything_and_resumes_from_checkpoints(env: Env) -> None:
    mark_backfilled(env.store, "servers", "memberships")
    live_changes(env.clients)

    summary = env.runner().run(until_caught_up=True)

    assert summary.caught_up is True
    assert summary.failed == 0 and summary.held_routes == []
    assert summary.records == summary.applied + summary.quarantined
    assert summary.records > 40
    assert isinstance(summary.lag_ms, int)
    assert_target_is_mapping_of_source(env.clients, env.migration)
    for route in env.migration.routes:
        desc = tables.describe(env.clients.dynamodb, route.source)
        assert desc is not None
        (shard,) = env.store.shards(desc["LatestStreamArn"])
        cp = shard.to_json()
        assert set(cp) >= {
            "route",
            "stream_arn",
            "shard_id",
            "parent_shard_id",
            "sequence_number",
            "done",
            "records",
            "lag_ms",
            "caught_up_at",
        }
        assert cp["route"] == route.name and cp["done"] is False
        assert cp["lag_ms"] == 0 and cp["caught_up_at"] is not None
    # one more change, then a new runner picks up after the checkpoints only
    env.clients.dynamodb.delete_item(TableName="ServersTable", Key={"id": {"S": "srv-000003"}})
    again = env.runner().run(until_caught_up=True)
    assert again.records == 1 and again.applied == 1
    assert_target_is_mapping_of_source(env.clients, env.migration)
    # the runner publishes its counts with PutMetricData, per route
    listed = env.clients.cloudwatch.list_metrics(
        Namespace="DualWrite", MetricName="ReplicatedRecords"
    )["Metrics"]
    assert {d["Value"] for m in listed for d in m["Dimensions"]} == {"servers", "memberships"}


def test_route_not_backfilled_is_held_then_replicated_once_backfilled(env: Env) -> None:
    mark_backfilled(env.store, "servers")
    summary = env.runner().run(until_caught_up=True)
    assert summary.held_routes == ["memberships"]
    assert any("memberships" in n and "not backfilled" in n for n in env.notes)
    assert env.core("USER#user-000000", "METADATA") is None
    assert env.core("SERVER#srv-000000") is not None

    mark_backfilled(env.store, "memberships")
    summary = env.runner().run(until_caught_up=True)
    assert summary.held_routes == []
    assert_target_is_mapping_of_source(env.clients, env.migration)


def test_stop_finishes_the_batch_checkpoints_and_the_next_run_continues(env: Env) -> None:
    mark_backfilled(env.store, "servers", "memberships")
    stop = threading.Event()
    runner = env.runner(batch_size=5)

    summary = runner.run(until_caught_up=True, stop=stop, on_progress=lambda _s: stop.set())

    assert summary.records == 5 and summary.caught_up is False
    rest = env.runner().run(until_caught_up=True)
    assert rest.records == 12 + 30 - 5  # nothing redone, nothing skipped
    assert_target_is_mapping_of_source(env.clients, env.migration)


def test_stream_that_is_off_is_a_config_error(env: Env) -> None:
    env.clients.dynamodb.update_table(
        TableName="ServersTable", StreamSpecification={"StreamEnabled": False}
    )
    with pytest.raises(ConfigError, match="no stream"):
        env.runner().run(until_caught_up=True)


# --- against a fake streams client ---------------------------------------------------------
def client_error(code: str, op: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, op)


@dataclass
class FakeShard:
    shard_id: str
    parent: str | None
    records: list[dict[str, Any]]
    closed: bool = False
    #: index of the first record still in the stream (older ones were trimmed)
    trimmed: int = 0


@dataclass
class FakeStreams:
    """DynamoDB Streams in memory: paginated DescribeStream, lineage, expiry, trimming."""

    arn: str
    shards: list[FakeShard]
    page_size: int = 1
    expire: int = 0
    iterator_calls: list[tuple[str, str, str | None]] = field(default_factory=list)

    def _shard(self, shard_id: str) -> FakeShard:
        return next(s for s in self.shards if s.shard_id == shard_id)

    def describe_stream(self, StreamArn: str, ExclusiveStartShardId: str | None = None) -> Any:
        assert StreamArn == self.arn
        ids = [s.shard_id for s in self.shards]
        start = ids.index(ExclusiveStartShardId) + 1 if ExclusiveStartShardId else 0
        page = self.shards[start : start + self.page_size]
        desc: dict[str, Any] = {
            "StreamArn": self.arn,
            "Shards": [
                {
                    "ShardId": s.shard_id,
                    **({"ParentShardId": s.parent} if s.parent else {}),
                    "SequenceNumberRange": {
                        "StartingSequenceNumber": "1",
                        **({"EndingSequenceNumber": "999"} if s.closed else {}),
                    },
                }
                for s in page
            ],
        }
        if start + self.page_size < len(self.shards):
            desc["LastEvaluatedShardId"] = page[-1].shard_id
        return {"StreamDescription": desc}

    def get_shard_iterator(
        self,
        StreamArn: str,
        ShardId: str,
        ShardIteratorType: str,
        SequenceNumber: str | None = None,
    ) -> Any:
        self.iterator_calls.append((ShardId, ShardIteratorType, SequenceNumber))
        shard = self._shard(ShardId)
        seqs = [r["dynamodb"]["SequenceNumber"] for r in shard.records]
        if ShardIteratorType == "TRIM_HORIZON":
            pos = shard.trimmed
        else:
            assert SequenceNumber is not None
            pos = seqs.index(SequenceNumber) + (ShardIteratorType == "AFTER_SEQUENCE_NUMBER")
            if seqs.index(SequenceNumber) < shard.trimmed:
                raise client_error("TrimmedDataAccessException", "GetShardIterator")
        return {"ShardIterator": f"{ShardId}|{pos}"}

    def get_records(self, ShardIterator: str, Limit: int) -> Any:
        if self.expire:
            self.expire -= 1
            raise client_error("ExpiredIteratorException", "GetRecords")
        shard_id, pos_text = ShardIterator.split("|")
        shard = self._shard(shard_id)
        pos = int(pos_text)
        batch = shard.records[pos : pos + Limit]
        end = pos + len(batch)
        nxt = None if shard.closed and end >= len(shard.records) else f"{shard_id}|{end}"
        return {"Records": batch, "NextShardIterator": nxt}


SEQ = iter(range(100, 100_000, 7))


def stream_record(name: str, server_id: str, **attrs: Any) -> dict[str, Any]:
    """A GetRecords record as boto3 returns it (datetimes, bytes)."""
    keys = {"id": {"S": server_id}}
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": datetime(2024, 5, 1, tzinfo=UTC),
        "Keys": keys,
        "SequenceNumber": str(next(SEQ)),
        "SizeBytes": 40,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if name == "REMOVE":
        body["OldImage"] = {**keys, "name": {"S": "old"}}
    else:
        body["NewImage"] = {**keys, "name": {"S": "srv"}, "icon": {"B": b"\x01"}, **attrs}
    return {
        "eventID": f"e{body['SequenceNumber']}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": body,
    }


def fake_env(env: Env, shards: list[FakeShard], **kwargs: Any) -> FakeStreams:
    mark_backfilled(env.store, "servers")
    desc = tables.describe(env.clients.dynamodb, "ServersTable")
    assert desc is not None
    fake = FakeStreams(desc["LatestStreamArn"], shards, **kwargs)
    return fake


def only_servers(migration: Migration) -> Migration:
    return migration.model_copy(update={"routes": [migration.route("servers")]})


def v(env: Env, server_id: str) -> str | None:
    item = env.core(f"SERVER#{server_id}")
    return None if item is None else str(item.get("v", {}).get("S"))


def test_parent_shard_is_drained_before_its_children(base: Env) -> None:
    parent = FakeShard(
        "p",
        None,
        [stream_record("INSERT", "k1", v={"S": "1"}), stream_record("MODIFY", "k1", v={"S": "2"})],
        closed=True,
    )
    left = FakeShard(
        "c1",
        "p",
        [stream_record("MODIFY", "k1", v={"S": "3"}), stream_record("INSERT", "k2")],
        closed=True,
    )
    right = FakeShard("c2", "p", [stream_record("INSERT", "k3", v={"S": "x"})])
    grandchild = FakeShard("g", "c1", [stream_record("REMOVE", "k2")])
    # listed children first, three pages: the runner must not go by listing order
    fake = fake_env(base, [left, grandchild, right, parent])
    base.migration = only_servers(base.migration)

    summary = base.runner(streams=fake).run(until_caught_up=True)

    assert summary.records == 6 and summary.failed == 0
    assert v(base, "k1") == "3"
    assert v(base, "k3") == "x"
    assert v(base, "k2") is None  # c1's insert, then its child's delete
    order = [shard for shard, _type, _seq in fake.iterator_calls]
    assert order.index("p") < order.index("c1") < order.index("g")
    assert order.index("p") < order.index("c2")
    cps = {c.shard_id: c.to_json() for c in base.store.shards(fake.arn)}
    assert cps["p"]["done"] is True and cps["p"]["records"] == 2
    assert cps["c1"]["parent_shard_id"] == "p" and cps["c1"]["done"] is True
    assert cps["c2"]["done"] is False and cps["c2"]["caught_up_at"] is not None
    assert cps["g"]["sequence_number"] == grandchild.records[0]["dynamodb"]["SequenceNumber"]


def test_expired_iterator_is_renewed_from_the_checkpoint(base: Env) -> None:
    shard = FakeShard("s", None, [stream_record("INSERT", f"k{i}") for i in range(6)])
    fake = fake_env(base, [shard], expire=2)
    base.migration = only_servers(base.migration)

    summary = base.runner(streams=fake, batch_size=4).run(until_caught_up=True)

    assert summary.renewed_iterators == 2
    assert summary.records == 6 and summary.applied == 6
    assert all(v(base, f"k{i}") is not None for i in range(6))


def test_checkpoint_older_than_the_trim_horizon_is_reported_loudly(base: Env) -> None:
    records = [stream_record("INSERT", f"k{i}") for i in range(5)]
    shard = FakeShard("s", None, records, trimmed=3)
    fake = fake_env(base, [shard])
    base.migration = only_servers(base.migration)
    base.store.save_shard(
        ShardCheckpoint(
            fake.arn, "s", route="servers", sequence_number=records[0]["dynamodb"]["SequenceNumber"]
        )
    )

    summary = base.runner(streams=fake).run(until_caught_up=True)

    assert summary.trimmed_shards == ["servers:s"]
    assert any("trimmed" in n and "reconcile --repair" in n for n in base.notes)
    assert summary.records == 2
    assert v(base, "k1") is None and v(base, "k3") is not None
    assert ("s", "TRIM_HORIZON", None) in fake.iterator_calls


class MetricsSink:
    """A CloudWatch client that keeps what PutMetricData sent."""

    def __init__(self) -> None:
        self.data: list[dict[str, Any]] = []

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
        self.data += MetricData

    def total(self, name: str) -> float:
        return sum(d["Value"] for d in self.data if d["MetricName"] == name)

    @property
    def dimensions(self) -> set[tuple[tuple[str, str], ...]]:
        return {tuple((x["Name"], x["Value"]) for x in d["Dimensions"]) for d in self.data}


class LeaveUnprocessed:
    """Leaves the writes of one target key unprocessed `times` times."""

    def __init__(self, real: Any, pk: str, times: int) -> None:
        self.real, self.pk, self.times = real, pk, times

    def batch_write_item(self, RequestItems: dict[str, Any], **kw: Any) -> Any:
        ((table, requests),) = RequestItems.items()
        left = [r for r in requests if self.times and r["PutRequest"]["Item"]["PK"]["S"] == self.pk]
        if left:
            self.times -= 1
        keep = [r for r in requests if r not in left]
        if keep:
            self.real.batch_write_item(RequestItems={table: keep}, **kw)
        return {"UnprocessedItems": {table: left} if left else {}}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def flaky_replicator(env: Env, pk: str, times: int) -> Replicator:
    """A replicator whose writes of target key `pk` are left unprocessed `times` times, each
    batch failing after one attempt (the runner redelivers it)."""
    return Replicator(
        env.migration,
        env.clients,
        env.store,
        dynamodb=LeaveUnprocessed(env.clients.dynamodb, pk, times),
        max_write_attempts=1,
        backoff=Backoff(sleep=lambda _s: None),
    )


def test_failures_are_redelivered_from_the_lowest_failed_record(base: Env) -> None:
    records = [stream_record("INSERT", f"k{i}", v={"S": str(i)}) for i in range(4)]
    shard = FakeShard("s", None, records)
    fake = fake_env(base, [shard])
    base.migration = only_servers(base.migration)
    rep = flaky_replicator(base, "SERVER#k1", times=2)

    cloudwatch = MetricsSink()
    summary = base.runner(streams=fake, replicator=rep, cloudwatch=cloudwatch, metrics_interval=0)
    summary = summary.run(until_caught_up=True)

    assert summary.failed == 2  # k1 reported twice, then written
    assert summary.records == 4  # each record counted once, when checkpointed
    # k2 and k3 were written along with each failed try of k1, but count once, when final
    assert summary.applied == 4
    assert cloudwatch.total("ReplicatedRecords") == 4
    assert cloudwatch.total("ReplicationFailures") == 2
    assert cloudwatch.dimensions == {(("Route", "servers"),)}
    assert [v(base, f"k{i}") for i in range(4)] == ["0", "1", "2", "3"]
    seq0 = records[0]["dynamodb"]["SequenceNumber"]
    assert fake.iterator_calls[1:3] == [
        ("s", "AFTER_SEQUENCE_NUMBER", seq0),
        ("s", "AFTER_SEQUENCE_NUMBER", seq0),
    ]


def test_a_record_that_keeps_failing_stops_only_its_shard(base: Env) -> None:
    records = [stream_record("INSERT", f"k{i}") for i in range(3)]
    fake = fake_env(base, [FakeShard("s", None, records)])
    base.migration = only_servers(base.migration)
    flaky = LeaveUnprocessed(base.clients.dynamodb, "SERVER#k1", times=10**6)
    rep = Replicator(base.migration, base.clients, base.store, dynamodb=flaky, max_write_attempts=1)

    summary = base.runner(streams=fake, replicator=rep, max_retries=3).run(until_caught_up=True)

    assert summary.stuck_shards == ["servers:s"]
    assert summary.caught_up is False  # nothing more to read, but not caught up
    assert summary.failed == 3 and summary.records == 1
    (cp,) = base.store.shards(fake.arn)
    assert cp.sequence_number == records[0]["dynamodb"]["SequenceNumber"]


def test_ttl_deletes_are_published_and_shown_by_status(base: Env) -> None:
    from rich.console import Console

    from dualwrite.cli.cmd_status import _print_status
    from dualwrite.status import gather

    expired = stream_record("REMOVE", "k1")
    # GetRecords names DynamoDB's TTL process as the record's user identity
    expired["userIdentity"] = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    records = [stream_record("INSERT", "k1"), stream_record("INSERT", "k2"), expired]
    fake = fake_env(base, [FakeShard("s", None, records)])
    base.migration = only_servers(base.migration)

    summary = base.runner(streams=fake).run(until_caught_up=True)

    assert summary.applied == 3 and v(base, "k1") is None
    status = gather(base.migration, base.clients, base.store).to_json()
    (servers,) = status["routes"]
    assert servers["metrics"]["TtlDeletes"] == 1.0
    assert servers["metrics"]["ReplicatedRecords"] == 3.0
    console = Console(record=True, width=200)
    _print_status(console, status)
    (row,) = [line for line in console.export_text().splitlines() if "TtlDeletes" in line]
    assert row.split() == ["TtlDeletes", "1"]
