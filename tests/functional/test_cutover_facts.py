"""What the gates read, on in-process moto: replication lag from the stream and the replicator's
checkpoints (local runner) or from event source mappings and CloudWatch (AWS); writes to an
old table since the cutover; the IAM warning; decommission's backups and deletes."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.config import parse_migration
from dualwrite.control import ControlStore, ShardCheckpoint, control_table_definition
from dualwrite.cutover import decommission as decommissioning
from dualwrite.cutover.facts import describe_routes, gather_decommission
from dualwrite.cutover.functions import LambdaFunctions
from dualwrite.cutover.gate import decide_decommission
from dualwrite.cutover.iam import RoleChecker, SimulationUnavailable, allowed_actions
from dualwrite.cutover.journal import APPLIED, CUTOVER, Entry
from dualwrite.cutover.lag import replication_fact
from dualwrite.cutover.writes import writes_since
from tests.functional.test_cutover_functions import make_functions

MIGRATION = parse_migration(
    {
        "control_table": "ctl",
        "routes": [{"name": "r", "source": "old-t", "target": "new-t", "mapping": "identity"}],
        "cutover": {"discover": True, "observation_days": 7},
    }
)


def make_table(clients: Clients, name: str, *, stream: bool = True, protect: bool = False) -> None:
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        "DeletionProtectionEnabled": protect,
    }
    if stream:
        kwargs["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
    clients.dynamodb.create_table(**kwargs)


def put(clients: Clients, table: str, key: str) -> None:
    clients.dynamodb.put_item(TableName=table, Item={"id": {"S": key}, "v": {"N": "1"}})


def stream_records(clients: Clients, table: str) -> tuple[str, str, list[dict[str, Any]]]:
    arn = clients.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = clients.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    it = clients.streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return arn, shard["ShardId"], clients.streams.get_records(ShardIterator=it)["Records"]


@pytest.fixture
def store(moto_clients: Clients) -> ControlStore:
    tables.create_table(moto_clients.dynamodb, control_table_definition("ctl"))
    return ControlStore(moto_clients.dynamodb, "ctl")


def fact(clients: Clients, store: ControlStore, now: float) -> Any:
    info = tables.info(clients.dynamodb, "old-t")
    return replication_fact("r", info, clients, store, "DualWrite", now)


def test_lag_from_the_stream_and_the_replicators_checkpoint(
    moto_clients: Clients, store: ControlStore
) -> None:
    make_table(moto_clients, "old-t")
    assert fact(moto_clients, store, time.time()).pending_age_s is None  # empty stream
    for k in ("a", "b", "c"):
        put(moto_clients, "old-t", k)
    arn, shard, records = stream_records(moto_clients, "old-t")
    first_at = records[0]["dynamodb"]["ApproximateCreationDateTime"].timestamp()

    later = first_at + 300
    pending = fact(moto_clients, store, later)
    assert pending.method == "stream" and pending.problem is None
    assert pending.pending_age_s == pytest.approx(300, abs=0.01)  # from the trim horizon

    store.save_shard(
        ShardCheckpoint(arn, shard, sequence_number=records[0]["dynamodb"]["SequenceNumber"])
    )
    second_at = records[1]["dynamodb"]["ApproximateCreationDateTime"].timestamp()
    assert fact(moto_clients, store, later).pending_age_s == pytest.approx(later - second_at)

    store.save_shard(
        ShardCheckpoint(arn, shard, sequence_number=records[-1]["dynamodb"]["SequenceNumber"])
    )
    caught_up = fact(moto_clients, store, later)
    assert caught_up.pending_age_s is None and "no unprocessed record" in caught_up.detail

    store.save_shard(
        ShardCheckpoint(arn, "other-shard", done=True)
    )  # unrelated shards do not matter
    assert fact(moto_clients, store, later).pending_age_s is None


def test_no_stream_is_a_problem(moto_clients: Clients, store: ControlStore) -> None:
    make_table(moto_clients, "old-t", stream=False)
    f = fact(moto_clients, store, time.time())
    assert f.problem is not None and "no stream on old-t" in f.problem


def test_lag_from_event_source_mappings_and_cloudwatch(
    moto_clients: Clients, store: ControlStore
) -> None:
    make_table(moto_clients, "old-t")
    put(moto_clients, "old-t", "a")  # would be 'behind' for the local runner check
    make_functions(moto_clients, {"replicator": {"X": "1"}})
    arn = moto_clients.dynamodb.describe_table(TableName="old-t")["Table"]["LatestStreamArn"]
    mapping = moto_clients.lambda_.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName="replicator",
        StartingPosition="TRIM_HORIZON",
        Enabled=False,
    )
    now = time.time() + 3600
    disabled = fact(moto_clients, store, now)
    assert disabled.method == "event source mapping"
    assert disabled.problem == f"event source mapping {mapping['UUID']} is Disabled"

    moto_clients.lambda_.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    idle = fact(moto_clients, store, time.time())
    assert idle.problem is None and idle.pending_age_s is None and "not invoked" in idle.detail

    moto_clients.cloudwatch.put_metric_data(
        Namespace="DualWrite",
        MetricData=[
            {
                "MetricName": "ReplicationLagMs",
                "Dimensions": [{"Name": "Route", "Value": "r"}],
                "Value": 2500.0,
                "Unit": "Milliseconds",
                "Timestamp": datetime.now(UTC),
            }
        ],
    )
    ours = fact(moto_clients, store, time.time() + 5)
    assert ours.pending_age_s == pytest.approx(2.5) and "ReplicationLagMs" in ours.detail

    moto_clients.cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "IteratorAge",
                "Dimensions": [{"Name": "FunctionName", "Value": "replicator"}],
                "Value": 90_000.0,
                "Timestamp": datetime.now(UTC),
            }
        ],
    )
    lambdas = fact(moto_clients, store, time.time() + 5)
    assert lambdas.pending_age_s == pytest.approx(90.0) and "IteratorAge" in lambdas.detail


def test_writes_since_the_cutover(moto_clients: Clients) -> None:
    make_table(moto_clients, "old-t")
    put(moto_clients, "old-t", "a")
    _arn, _shard, records = stream_records(moto_clients, "old-t")
    written_at = records[0]["dynamodb"]["ApproximateCreationDateTime"].timestamp()
    desc = tables.TableInfo.of(moto_clients.dynamodb.describe_table(TableName="old-t")["Table"])
    before = writes_since(desc, moto_clients, written_at - 10, written_at + 60)
    assert before.first_write_after == pytest.approx(written_at) and before.written
    after = writes_since(desc, moto_clients, written_at + 1, written_at + 60)
    assert after.first_write_after is None and not after.written and after.problem is None


def test_cloudwatch_write_units_from_the_first_full_hour(moto_clients: Clients) -> None:
    make_table(moto_clients, "old-t")
    desc = tables.TableInfo.of(moto_clients.dynamodb.describe_table(TableName="old-t")["Table"])
    now = time.time()
    moto_clients.cloudwatch.put_metric_data(
        Namespace="AWS/DynamoDB",
        MetricData=[
            {
                "MetricName": "ConsumedWriteCapacityUnits",
                "Dimensions": [{"Name": "TableName", "Value": "old-t"}],
                "Value": 4.0,
                "Timestamp": datetime.fromtimestamp(now, UTC),
            }
        ],
    )
    seen = writes_since(desc, moto_clients, now - 3 * 3600, now + 60)
    assert seen.cloudwatch_units == 4.0 and seen.written
    too_soon = writes_since(desc, moto_clients, now - 60, now + 60)  # no full hour yet
    assert too_soon.cloudwatch_units is None


def cutover_entry(at: float) -> Entry:
    return Entry(sk="c", action=CUTOVER, at=at, status=APPLIED)


def test_decommission_facts_then_backup_and_delete(
    moto_clients: Clients, store: ControlStore
) -> None:
    make_table(moto_clients, "old-t", protect=True)
    make_table(moto_clients, "new-t")
    put(moto_clients, "old-t", "a")
    table_arn = moto_clients.dynamodb.describe_table(TableName="old-t")["Table"]["TableArn"]
    make_functions(moto_clients, {"still-old": {"T": table_arn}, "moved": {"T": "new-t"}})
    fns = LambdaFunctions(moto_clients.lambda_)
    routes = describe_routes(MIGRATION, moto_clients)
    cut = cutover_entry(time.time() + 1)  # after the write above
    now = cut.at + 8 * 86400

    facts = gather_decommission(MIGRATION, moto_clients, fns, routes, [cut], now)
    assert [(v.function, v.variable) for v in facts.naming_old] == [("still-old", "T")]
    (old,) = facts.tables
    assert old.exists and old.deletion_protection and old.writes is not None
    assert not old.writes.written
    decision = decide_decommission(facts, now, 7, yes=True)
    assert decision.reasons == [
        f"still-old: still names an old table (T={table_arn}): cut over again"
    ]

    moto_clients.lambda_.update_function_configuration(
        FunctionName="still-old", Environment={"Variables": {"T": "new-t"}}
    )
    facts = gather_decommission(MIGRATION, moto_clients, fns, routes, [cut], now)
    assert decide_decommission(facts, now, 7, yes=True).ok
    assert not decide_decommission(facts, now, 7, yes=False).ok

    removed = decommissioning.decommission(
        moto_clients.dynamodb, store, [("old-t", True)], cutover_sk=cut.sk
    )
    assert [(r.table, r.deletion_protection_disabled) for r in removed] == [("old-t", True)]
    assert tables.describe(moto_clients.dynamodb, "old-t") is None
    backups = moto_clients.dynamodb.list_backups(TableName="old-t")["BackupSummaries"]
    assert [b["BackupArn"] for b in backups] == [removed[0].backup_arn]
    record = decommissioning.record_of(store, "old-t")
    assert record is not None and record.backup_arn == removed[0].backup_arn
    assert record.deletion_protection_disabled and record.cutover == cut.sk
    assert decommissioning.records(store) == [record]


def test_written_after_cutover_refuses(moto_clients: Clients) -> None:
    make_table(moto_clients, "old-t")
    make_table(moto_clients, "new-t")
    cut = cutover_entry(time.time() - 1)
    put(moto_clients, "old-t", "late")  # a writer still uses the old table
    routes = describe_routes(MIGRATION, moto_clients)
    facts = gather_decommission(
        MIGRATION, moto_clients, LambdaFunctions(moto_clients.lambda_), routes, [cut], cut.at + 9e5
    )
    (reason,) = decide_decommission(facts, cut.at + 9e5, 7, yes=False).reasons
    assert reason.startswith("old-t: written at") and "a writer still uses it" in reason


def test_iam_check_could_not_check_on_moto_and_reports_lost_actions(
    moto_clients: Clients,
) -> None:
    iam = moto_clients.client("iam")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    with pytest.raises(SimulationUnavailable, match="not available"):
        allowed_actions(iam, role, "arn:aws:dynamodb:us-east-1:123456789012:table/t")
    old, new = "arn:aws:dynamodb:::table/old", "arn:aws:dynamodb:::table/new"
    (unknown,) = RoleChecker(iam).check("f", role, {old: new})
    assert not unknown.checked and "could not check" in unknown.message()

    calls: list[str] = []

    def fake(_iam: Any, _role: str, arn: str) -> set[str]:
        calls.append(arn)
        return {"dynamodb:GetItem", "dynamodb:PutItem"} if arn == old else {"dynamodb:GetItem"}

    checker = RoleChecker(None, allowed=fake)
    (lost,) = checker.check("f", role, {old: new})
    assert lost.checked and lost.missing == ("dynamodb:PutItem",) and lost.table == "new"
    assert checker.check("g", role, {old: new})[0].function == "g"
    assert calls == [old, new]  # cached per role and table pair
