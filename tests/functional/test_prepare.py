"""prepare and plan against in-process moto."""

from __future__ import annotations

from typing import Any

import pytest

from dualwrite import prepare as preparing
from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.config import load_migration, parse_migration
from dualwrite.control import ControlStore
from dualwrite.errors import ConfigError
from dualwrite.seed import ensure_tables
from tests.conftest import MIGRATIONS

CORE = load_migration(MIGRATIONS / "coretable.yaml")
STRIPE = load_migration(MIGRATIONS / "stripe-rename.yaml")


def _stripe_tables(clients: Clients) -> None:
    ddb = clients.dynamodb
    kms = clients.client("kms")
    key_arn = kms.create_key(Description="stripe")["KeyMetadata"]["Arn"]
    base = "ai-nexus-dev-stripe-"
    ddb.create_table(
        TableName=base + "customers",
        KeySchema=[{"AttributeName": "customerId", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "customerId", "AttributeType": "S"},
            {"AttributeName": "email", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "email-index",
                "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn},
        Tags=[{"Key": "app", "Value": "stripe"}, {"Key": "env", "Value": "dev"}],
        DeletionProtectionEnabled=True,
    )
    ddb.create_table(
        TableName=base + "subscriptions",
        KeySchema=[
            {"AttributeName": "customerId", "KeyType": "HASH"},
            {"AttributeName": "subscriptionId", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "customerId", "AttributeType": "S"},
            {"AttributeName": "subscriptionId", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "createdAt", "AttributeType": "N"},
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "created-index",
                "KeySchema": [
                    {"AttributeName": "customerId", "KeyType": "HASH"},
                    {"AttributeName": "createdAt", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "status-index",
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["plan"]},
                "ProvisionedThroughput": {"ReadCapacityUnits": 3, "WriteCapacityUnits": 2},
            }
        ],
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 7, "WriteCapacityUnits": 4},
        TableClass="STANDARD_INFREQUENT_ACCESS",
    )
    ddb.create_table(
        TableName=base + "invoices",
        KeySchema=[{"AttributeName": "invoiceId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "invoiceId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.create_table(
        TableName=base + "idempotency",
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(
        TableName=base + "idempotency",
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"},
    )


def _schema(ddb: Any, name: str) -> dict[str, Any]:
    d = ddb.describe_table(TableName=name)["Table"]

    def idx(xs: list[dict[str, Any]] | None, throughput: bool) -> list[Any]:
        out = []
        for x in xs or []:
            entry = [x["IndexName"], x["KeySchema"], x["Projection"]]
            if throughput:
                pt = x.get("ProvisionedThroughput", {})
                entry.append((pt.get("ReadCapacityUnits"), pt.get("WriteCapacityUnits")))
            out.append(entry)
        return sorted(out, key=lambda e: e[0])

    pt = d.get("ProvisionedThroughput", {})
    tags = ddb.list_tags_of_resource(ResourceArn=d["TableArn"]).get("Tags", [])
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    return {
        "KeySchema": d["KeySchema"],
        "AttributeDefinitions": sorted(d["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        "GSI": idx(d.get("GlobalSecondaryIndexes"), True),
        "LSI": idx(d.get("LocalSecondaryIndexes"), False),
        "Billing": tables.billing_mode(d),
        "Throughput": (pt.get("ReadCapacityUnits"), pt.get("WriteCapacityUnits")),
        "SSE": {k: v for k, v in (d.get("SSEDescription") or {}).items() if k != "Status"},
        "TableClass": (d.get("TableClassSummary") or {}).get("TableClass"),
        "DeletionProtection": d.get("DeletionProtectionEnabled"),
        "Tags": sorted((t["Key"], t["Value"]) for t in tags),
        "TTL": (ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")),
    }


def test_coretable_prepare_creates_everything_then_changes_nothing(moto_clients: Clients) -> None:
    ensure_tables(moto_clients)
    plan = preparing.analyze(CORE, moto_clients)
    assert {(a.table, a.action) for a in plan.changes} >= {
        ("dualwrite-control", "create control table"),
        ("ServersTable", "on-demand backup"),
        ("UserMembershipTable", f"enable stream ({tables.STREAM_VIEW})"),
        ("CoreTable", "create target"),
    }
    assert preparing.analyze(CORE, moto_clients).changes  # plan changed nothing
    done = preparing.apply(CORE, moto_clients, plan)
    assert done
    ddb = moto_clients.dynamodb
    core = ddb.describe_table(TableName="CoreTable")["Table"]
    assert tables.key_schema_of(core).names == ("PK", "SK")
    [gsi] = core["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "GSI1"
    assert [k["AttributeName"] for k in gsi["KeySchema"]] == ["SK", "PK"]
    for source in ("ServersTable", "UserMembershipTable"):
        d = ddb.describe_table(TableName=source)["Table"]
        assert tables.stream_view(d) == "NEW_AND_OLD_IMAGES"
        assert tables.pitr_enabled(ddb, source)
        backups = ddb.list_backups(TableName=source)["BackupSummaries"]
        assert len(backups) == 1 and backups[0]["BackupStatus"] == "AVAILABLE"
    store = ControlStore(ddb, CORE.control_table)
    assert {r.sk for r in store.query("BACKUP")} == {"ServersTable", "UserMembershipTable"}
    again = preparing.analyze(CORE, moto_clients)
    assert again.changes == []
    assert preparing.apply(CORE, moto_clients, again) == []
    assert len(ddb.list_backups(TableName="ServersTable")["BackupSummaries"]) == 1


def test_no_backup_skips_backups(moto_clients: Clients) -> None:
    ensure_tables(moto_clients)
    plan = preparing.analyze(CORE, moto_clients, backup=False)
    preparing.apply(CORE, moto_clients, plan, backup=False)
    assert moto_clients.dynamodb.list_backups()["BackupSummaries"] == []


def test_stripe_targets_are_cloned_field_by_field(moto_clients: Clients) -> None:
    _stripe_tables(moto_clients)
    plan = preparing.analyze(STRIPE, moto_clients)
    preparing.apply(STRIPE, moto_clients, plan)
    ddb = moto_clients.dynamodb
    for route in STRIPE.routes:
        source, target = _schema(ddb, route.source), _schema(ddb, route.target)
        assert target == source, route.name
        assert tables.stream_view(ddb.describe_table(TableName=route.source)["Table"])
        assert tables.pitr_enabled(ddb, route.source)
    # the interesting fields really were there to clone
    subs = _schema(ddb, "diatonic-ai-stripe-subscriptions")
    assert subs["Billing"] == "PROVISIONED" and subs["Throughput"] == (7, 4)
    assert subs["LSI"]  # (moto reports no TableClassSummary: see test_clone_definition)
    customers = _schema(ddb, "diatonic-ai-stripe-customers")
    assert customers["SSE"]["SSEType"] == "KMS" and customers["DeletionProtection"] is True
    assert ("app", "stripe") in customers["Tags"]
    assert _schema(ddb, "diatonic-ai-stripe-idempotency")["TTL"] == ("ENABLED", "expiresAt")


def test_missing_source_is_refused_before_anything_is_written(moto_clients: Clients) -> None:
    with pytest.raises(ConfigError, match="source table ServersTable does not exist"):
        preparing.analyze(CORE, moto_clients)
    assert moto_clients.dynamodb.list_tables()["TableNames"] == []


def test_wrong_stream_view_is_refused_with_the_fix(moto_clients: Clients) -> None:
    ensure_tables(moto_clients)
    moto_clients.dynamodb.update_table(
        TableName="UserMembershipTable",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    )
    with pytest.raises(ConfigError, match=r"KEYS_ONLY.*NEW_AND_OLD_IMAGES.*StreamEnabled=false"):
        preparing.analyze(CORE, moto_clients)
    assert "CoreTable" not in moto_clients.dynamodb.list_tables()["TableNames"]


def test_incompatible_existing_target_is_refused(moto_clients: Clients) -> None:
    ensure_tables(moto_clients)
    moto_clients.dynamodb.create_table(
        TableName="CoreTable",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(ConfigError, match="CoreTable exists with key id"):
        preparing.analyze(CORE, moto_clients)


def test_mapping_that_does_not_fit_the_source_is_refused(moto_clients: Clients) -> None:
    ensure_tables(moto_clients)
    wrong = parse_migration(
        {
            "routes": [
                {
                    "name": "m",
                    "source": "ServersTable",
                    "target": "CoreTable",
                    "mapping": "memberships",
                }
            ],
            "targets": {"CoreTable": {"key": {"PK": "S", "SK": "S"}}},
        }
    )
    with pytest.raises(ConfigError, match="needs a source keyed by hash 'userId'"):
        preparing.analyze(wrong, moto_clients)


def test_undeclared_target_of_a_non_identity_route_is_refused(moto_clients: Clients) -> None:
    ensure_tables(moto_clients)
    undeclared = parse_migration(
        {
            "routes": [
                {"name": "s", "source": "ServersTable", "target": "CoreTable", "mapping": "servers"}
            ],
        }
    )
    with pytest.raises(ConfigError, match="not declared under targets"):
        preparing.analyze(undeclared, moto_clients)
