"""prepare and plan against in-process moto."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from dualwrite import prepare as preparing
from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.config import load_migration, parse_migration
from dualwrite.control import ControlStore
from dualwrite.errors import AwsError, ConfigError
from dualwrite.seed import ensure_tables
from tests.conftest import MIGRATIONS
from tests.stripe_world import NEW, create_stripe_tables, schema

CORE = load_migration(MIGRATIONS / "coretable.yaml")
STRIPE = load_migration(MIGRATIONS / "stripe-rename.yaml")


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
    assert tables.stream_view(core) == "NEW_AND_OLD_IMAGES"  # read in reverse after cutover
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
    recorded = {b.table: b.backup_arn for b in preparing.backups(store)}
    assert (
        recorded["ServersTable"]
        == ddb.list_backups(TableName="ServersTable")["BackupSummaries"][0]["BackupArn"]
    )
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
    create_stripe_tables(moto_clients)
    plan = preparing.analyze(STRIPE, moto_clients)
    preparing.apply(STRIPE, moto_clients, plan)
    ddb = moto_clients.dynamodb
    for route in STRIPE.routes:
        assert schema(moto_clients, route.target) == schema(moto_clients, route.source), route.name
        assert tables.stream_view(ddb.describe_table(TableName=route.source)["Table"])
        assert tables.pitr_enabled(ddb, route.source)
    # the interesting fields really were there to clone
    subs = schema(moto_clients, NEW + "subscriptions")
    assert subs["billing"] == "PROVISIONED" and subs["throughput"] == (7, 4)
    assert subs["GSIs"][0]["throughput"] == (3, 2)
    assert schema(moto_clients, NEW + "invoices")["LSIs"]  # (moto reports no table class)
    customers = schema(moto_clients, NEW + "customers")
    assert customers["SSE"][1] == "KMS" and customers["deletion protection"] is True
    assert ("data", "pii") in customers["tags"]
    assert schema(moto_clients, NEW + "idempotency")["TTL"] == ("ENABLED", "expiresAt")


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


def _core_table(clients: Clients, **extra: Any) -> None:
    clients.dynamodb.create_table(
        TableName="CoreTable",
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def gsi1(hash_key: str, range_key: str) -> dict[str, Any]:
    return {
        "IndexName": "GSI1",
        "KeySchema": [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def test_an_existing_target_gets_the_stream_reverse_replication_reads(
    moto_clients: Clients,
) -> None:
    ensure_tables(moto_clients)
    ddb = moto_clients.dynamodb
    _core_table(moto_clients, GlobalSecondaryIndexes=[gsi1("SK", "PK")])
    action = f"enable target stream ({tables.STREAM_VIEW})"
    plan = preparing.analyze(CORE, moto_clients, backup=False)
    assert ("CoreTable", action) in {(a.table, a.action) for a in plan.changes}
    preparing.apply(CORE, moto_clients, plan, backup=False)
    core = ddb.describe_table(TableName="CoreTable")["Table"]
    assert tables.stream_view(core) == "NEW_AND_OLD_IMAGES"
    assert preparing.analyze(CORE, moto_clients, backup=False).changes == []
    # without reverse replication the target's stream is not needed
    data = yaml.safe_load((MIGRATIONS / "coretable.yaml").read_text(encoding="utf-8"))
    data["cutover"]["reverse"] = False
    no_reverse = parse_migration(data)
    ddb.update_table(TableName="CoreTable", StreamSpecification={"StreamEnabled": False})
    assert ("CoreTable", action) not in {
        (a.table, a.action) for a in preparing.analyze(no_reverse, moto_clients).changes
    }


def _interrupted_ttl(
    monkeypatch: pytest.MonkeyPatch, table: str | None
) -> Callable[[Any, str, str], None]:
    """tables.enable_ttl failing (throttled, Ctrl-C, credentials expired) for `table` (None:
    every table); returns the real one."""
    real = tables.enable_ttl

    def interrupted(client: Any, name: str, attribute: str) -> None:
        if table is None or name == table:
            raise AwsError("UpdateTimeToLive: ThrottlingException")
        real(client, name, attribute)

    monkeypatch.setattr(tables, "enable_ttl", interrupted)
    return real


def test_prepare_run_again_after_an_interruption_finishes_the_clone(
    moto_clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped between CreateTable and UpdateTimeToLive: the second run used to say "nothing
    to change", and the clone never got its TTL nor point-in-time recovery."""
    create_stripe_tables(moto_clients)
    real = _interrupted_ttl(monkeypatch, NEW + "idempotency")
    with pytest.raises(AwsError):
        preparing.apply(STRIPE, moto_clients, preparing.analyze(STRIPE, moto_clients))
    monkeypatch.setattr(tables, "enable_ttl", real)
    again = preparing.analyze(STRIPE, moto_clients)
    todo = {(a.table, a.action) for a in again.changes}
    assert (NEW + "idempotency", "enable TTL (expiresAt)") in todo
    assert (NEW + "idempotency", "enable point-in-time recovery") in todo
    preparing.apply(STRIPE, moto_clients, again)
    ddb = moto_clients.dynamodb
    assert tables.ttl_attribute(ddb, NEW + "idempotency") == "expiresAt"
    assert tables.pitr_enabled(ddb, NEW + "idempotency")
    assert preparing.analyze(STRIPE, moto_clients).changes == []


def test_prepare_run_again_after_an_interruption_sets_the_control_tables_ttl(
    moto_clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_tables(moto_clients)
    real = _interrupted_ttl(monkeypatch, None)
    plan = preparing.analyze(CORE, moto_clients, backup=False)
    with pytest.raises(AwsError):
        preparing.apply(CORE, moto_clients, plan, backup=False)
    monkeypatch.setattr(tables, "enable_ttl", real)
    preparing.apply(CORE, moto_clients, preparing.analyze(CORE, moto_clients, backup=False))
    assert tables.ttl_attribute(moto_clients.dynamodb, CORE.control_table) == "expires_at"


def test_an_existing_target_without_a_declared_index_is_refused(moto_clients: Clients) -> None:
    """The application's "users of a server" queries need GSI1 after cutover: prepare used
    to call the table ready."""
    ensure_tables(moto_clients)
    _core_table(moto_clients)
    with pytest.raises(ConfigError, match="GSI1 is missing on the existing table CoreTable"):
        preparing.analyze(CORE, moto_clients)
    moto_clients.dynamodb.delete_table(TableName="CoreTable")
    _core_table(moto_clients, GlobalSecondaryIndexes=[gsi1("PK", "SK")])  # the other way round
    with pytest.raises(ConfigError, match="GSI1 has another key"):
        preparing.analyze(CORE, moto_clients)


def test_a_control_table_naming_another_table_is_refused(moto_clients: Clients) -> None:
    ensure_tables(moto_clients)
    moto_clients.dynamodb.create_table(
        TableName="orders-prod",
        KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    migration = parse_migration(
        {**CORE.model_dump(mode="json", exclude_defaults=True), "control_table": "orders-prod"}
    )
    with pytest.raises(ConfigError, match="orders-prod exists with key orderId"):
        preparing.analyze(migration, moto_clients)
