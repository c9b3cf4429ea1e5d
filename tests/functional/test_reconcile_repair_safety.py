"""`reconcile --repair` where a wrong repair loses data (found by review): while reverse, a
write to an old table not yet listed as foreign is a difference too; while a switch drains,
neither side is the truth; a membership repair changes its user's User item; keys are
printed as text, never markup; a declarative key's order means nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.cli.app import main
from dualwrite.config import parse_migration
from dualwrite.control import ControlStore, Phase, control_table_definition
from dualwrite.reverse.direction import Direction, Flow
from reconciler.job import run_reconcile
from tests.functional.test_reconcile_support import (
    CORE_FILE,
    TARGET,
    build_core,
    by_route,
    counts,
    user_key,
    users_with_memberships,
)
from tests.orders_world import create_orders, generate_orders


def _run(clients: Clients, migration: Any, store: Any, **kw: Any) -> dict[str, Any]:
    return run_reconcile(
        migration, clients, store, settle_s=0, publish_metrics=False, **kw
    ).to_json()


def test_reverse_repair_that_deletes_a_last_membership_does_not_claim_parity(
    moto_clients: Clients,
) -> None:
    migration, store, data = build_core(moto_clients, servers=4, memberships=12)
    assert store.save_direction(
        "memberships",
        Direction(Flow.REVERSE, switched_at=1_600_000_000.0, overlap_s=3.0, old_drained=True),
        expected=Direction(),
    )
    user, members = sorted(users_with_memberships(data).items())[0]
    # after cutover the application removes every UserServer item of a user on the new
    # table (its User item stays): reverse replication has not applied it yet
    for m in members:
        moto_clients.dynamodb.delete_item(
            TableName=TARGET, Key=user_key(user, f"SERVER#{m['serverId']['S']}")
        )
    repaired = by_route(_run(moto_clients, migration, store, routes=["memberships"], repair=True))
    again = by_route(_run(moto_clients, migration, store, routes=["memberships"]))
    # the repair's verdict must describe the state it leaves behind
    assert repaired["memberships"]["parity"] is again["memberships"]["parity"], (
        repaired["memberships"]["parity"],
        counts(again["memberships"]),
    )
    assert repaired["memberships"]["parity"] is False and counts(again["memberships"]) == (0, 1, 0)
    assert repaired["memberships"]["remaining"]["extra"] == 1
    left = moto_clients.dynamodb.query(
        TableName="UserMembershipTable",
        KeyConditionExpression="userId = :u",
        ExpressionAttributeValues={":u": {"S": user}},
    )["Items"]
    assert left == []  # the memberships were repaired (deleted), as the target says


def test_reverse_repair_while_forward_still_drains_keeps_the_newer_source_write(
    moto_clients: Clients,
) -> None:
    migration, store, data = build_core(moto_clients, servers=4, memberships=3)
    # cutover just now: the forward direction still drains changes made before T+O
    assert store.save_direction(
        "servers",
        Direction(Flow.REVERSE, switched_at=time.time(), overlap_s=900.0, old_drained=False),
        expected=Direction(),
    )
    sid = data.servers[1]["id"]["S"]
    # a write to the old table made just before the switch, not replicated forward yet
    moto_clients.dynamodb.update_item(
        TableName="ServersTable",
        Key={"id": {"S": sid}},
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "region"},
        ExpressionAttributeValues={":r": {"S": "newest-before-cutover"}},
    )
    result = by_route(_run(moto_clients, migration, store, routes=["servers"], repair=True))
    source = moto_clients.dynamodb.get_item(
        TableName="ServersTable", Key={"id": {"S": sid}}, ConsistentRead=True
    )["Item"]
    assert source["region"] == {"S": "newest-before-cutover"}
    assert result["servers"]["repaired"] == 0 and result["servers"]["parity"] is False


def test_reverse_repair_never_deletes_a_foreign_write_the_replicator_has_not_seen_yet(
    moto_clients: Clients,
) -> None:
    migration, store, _data = build_core(moto_clients, servers=4, memberships=3)
    assert store.save_direction(
        "servers",
        Direction(Flow.REVERSE, switched_at=1_600_000_000.0, overlap_s=3.0, old_drained=True),
        expected=Direction(),
    )
    # a writer nobody re-pointed creates a server in the old table after cutover; the
    # reverse replicator has not read the source stream since, so it is not listed yet
    foreign = {"id": {"S": "srv-foreign"}, "name": {"S": "made by an unmoved writer"}}
    moto_clients.dynamodb.put_item(TableName="ServersTable", Item=foreign)
    result = by_route(_run(moto_clients, migration, store, routes=["servers"], repair=True))
    kept = moto_clients.dynamodb.get_item(
        TableName="ServersTable", Key={"id": {"S": "srv-foreign"}}, ConsistentRead=True
    ).get("Item")
    assert kept is not None, "the repair deleted a foreign write from the old table"
    assert result["servers"]["remaining"]["missing"] == 1


def _cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    """`dualwrite --config coretable.yaml ARGS` in process (moto is on)."""
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(CORE_FILE), *args])
    out = capsys.readouterr()
    return int(exited.value.code or 0), out.out, out.err


def test_drift_on_a_key_with_brackets_prints_its_table_and_exits_3(
    moto_clients: Clients, capsys: Any
) -> None:
    build_core(moto_clients, servers=3, memberships=3)
    # a server id is the user's data: any text, brackets included
    moto_clients.dynamodb.put_item(TableName="ServersTable", Item={"id": {"S": "rack[/]7"}})
    code, out, err = _cli(capsys, "reconcile", "--route", "servers")
    assert code == 3, err
    assert "rack[/]7" in out


def test_a_declarative_key_written_sk_first_fits_a_pk_sk_target(moto_clients: Clients) -> None:
    """A YAML mapping's key order means nothing: `key: {SK: ..., PK: ...}` names the same
    target key as `key: {PK: ..., SK: ...}`."""
    create_orders(moto_clients, generate_orders(6))
    tables.create_table(
        moto_clients.dynamodb,
        {
            "TableName": "CoreTable",
            "KeySchema": [
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": [
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    tables.create_table(moto_clients.dynamodb, control_table_definition("ctl"))
    migration = parse_migration(
        {
            "control_table": "ctl",
            "routes": [
                {
                    "name": "orders",
                    "source": "OrdersTable",
                    "target": "CoreTable",
                    "mapping": {"key": {"SK": "ORDER#{orderId}", "PK": "CUSTOMER#{customerId}"}},
                }
            ],
        }
    )
    result = _run(moto_clients, migration, ControlStore(moto_clients.dynamodb, "ctl"))
    assert result["routes"][0]["missing"] == 6  # nothing backfilled yet: every order missing


def test_drift_before_the_backfill_points_at_the_backfill_not_at_a_repair(
    moto_clients: Clients, capsys: Any
) -> None:
    """Every item missing because the route was never backfilled: the advice was `reconcile
    --repair`, whose parity the cutover gate does not count."""
    _migration, store, _data = build_core(moto_clients, servers=3, memberships=3)
    store.set_phase("servers", Phase.PENDING)
    moto_clients.dynamodb.delete_item(
        TableName=TARGET, Key={"PK": {"S": "SERVER#srv-000000"}, "SK": {"S": "METADATA"}}
    )
    code, out, _err = _cli(capsys, "reconcile", "--route", "servers")
    assert code == 3
    assert "servers: not backfilled yet: run `dualwrite backfill`" in out
    assert "reconcile --repair" not in out
