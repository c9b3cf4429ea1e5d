"""Issue 14's "done when", through the real `dualwrite` command on the emulator: both
migrations through backfill, replicate, reconcile, cutover, application writes to the new
tables, replicate, a foreign write to an old table, late writes, rollback, application writes
to the old tables, replicate; then old and new tables agree exactly, every write made after
the cutover is in both, `foreign_writes` counts only the foreign write, and reconcile exits 0.

Times: the overlap is set to OVERLAP_S in the migration file. Late writes are made right
after the cutover returns (inside the overlap); the foreign write after `replicate
--until-caught-up` has drained the old direction, which it does only once the overlap is
over, so it is after T+O by construction.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dualwrite.aws.clients import Clients
from dualwrite.cli.demo_reverse import user_server_item
from dualwrite.config import load_migration
from tests.conftest import MIGRATIONS, Cli
from tests.parity import parity_problems, scan_all
from tests.stripe_world import NAMES, NEW, OLD, create_stripe_tables

pytestmark = pytest.mark.e2e

OVERLAP_S = 6


def _config(tmp_path: Path, name: str) -> Path:
    data = yaml.safe_load((MIGRATIONS / name).read_text(encoding="utf-8"))
    data["cutover"] = {**data.get("cutover", {}), "overlap_seconds": OVERLAP_S}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _ok(result: Any) -> Any:
    assert result.code == 0, result.stdout + result.stderr
    return result.json()


def _replicate(cli: Cli, config: Path) -> Any:
    out = _ok(cli.run(config, "replicate", "--until-caught-up", "--json"))
    assert out["failed"] == 0
    return out


def _routes(cli: Cli, config: Path) -> dict[str, Any]:
    status = _ok(cli.run(config, "status", "--json"))
    return {r["route"]: r for r in status["routes"]}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _get(clients: Clients, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    got = clients.dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)
    return got.get("Item")


def _by_key(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {json.dumps(i, sort_keys=True, default=repr): i for i in items}


# --- CoreTable ----------------------------------------------------------------------------


def test_coretable_cutover_writes_rollback_loses_nothing(
    cli: Cli, emulator_clients: Clients, tmp_path: Path
) -> None:
    clients, ddb = emulator_clients, emulator_clients.dynamodb
    config = _config(tmp_path, "coretable.yaml")
    migration = load_migration(config)
    assert cli.run(config, "seed", "--servers", "12", "--memberships", "30").code == 0
    assert cli.run(config, "prepare", "--no-backup").code == 0
    assert cli.run(config, "backfill").code == 0
    _replicate(cli, config)
    assert _ok(cli.run(config, "reconcile", "--json"))["parity"] is True
    before = _routes(cli, config)
    assert {r: v["direction"] for r, v in before.items()} == {
        "servers": "forward",
        "memberships": "forward",
    }

    servers = sorted(i["id"]["S"] for i in scan_all(ddb, "ServersTable"))
    members: dict[str, list[dict[str, Any]]] = {}
    for item in scan_all(ddb, "UserMembershipTable"):
        members.setdefault(item["userId"]["S"], []).append(item)
    # a user with two memberships or more (one is removed), another whose email changes
    multi = sorted(u for u, ms in members.items() if len(ms) >= 2)
    removed_user, email_user = multi[0], multi[-1]
    removed_server = members[removed_user][0]["serverId"]["S"]
    role_item = next(m for u, ms in sorted(members.items()) if u != removed_user for m in ms)
    role_user, role_server = role_item["userId"]["S"], role_item["serverId"]["S"]

    cut = _ok(cli.run(config, "cutover", "--json"))
    assert cut["status"] == "done"
    # late writes: made inside the overlap by writers that still see the old tables
    ddb.update_item(
        TableName="ServersTable",
        Key={"id": _s(servers[0])},
        UpdateExpression="SET #n = :n",
        ExpressionAttributeNames={"#n": "late_note"},
        ExpressionAttributeValues={":n": _s("written during the overlap")},
    )
    assert {r: v["direction"] for r, v in _routes(cli, config).items()} == {
        "servers": "reverse",
        "memberships": "reverse",
    }

    # the application now writes CoreTable only
    new_server = {
        "PK": _s("SERVER#srv-after-cutover"),
        "SK": _s("METADATA"),
        "Type": _s("Server"),
        "name": _s("made after the cutover"),
        "region": _s("eu-west-1"),
    }
    ddb.put_item(TableName="CoreTable", Item=new_server)
    ddb.update_item(
        TableName="CoreTable",
        Key={"PK": _s(f"SERVER#{servers[1]}"), "SK": _s("METADATA")},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": _s("updated-after-cutover")},
    )
    ddb.delete_item(
        TableName="CoreTable", Key={"PK": _s(f"SERVER#{servers[2]}"), "SK": _s("METADATA")}
    )
    ddb.put_item(
        TableName="CoreTable",
        Item={
            "PK": _s("USER#user-after-cutover"),
            "SK": _s("METADATA"),
            "Type": _s("User"),
            "email": _s("newbie@example.com"),
            "name": _s("newbie"),
        },
    )
    ddb.put_item(
        TableName="CoreTable", Item=user_server_item("user-after-cutover", servers[3], "admin")
    )
    ddb.update_item(
        TableName="CoreTable",
        Key={"PK": _s(f"USER#{email_user}"), "SK": _s("METADATA")},
        UpdateExpression="SET email = :e, #n = :n",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":e": _s("changed@example.com"), ":n": _s("changed")},
    )
    role = "viewer" if role_item.get("role", {}).get("S") != "viewer" else "moderator"
    ddb.put_item(TableName="CoreTable", Item=user_server_item(role_user, role_server, role))
    ddb.delete_item(
        TableName="CoreTable",
        Key={"PK": _s(f"USER#{removed_user}"), "SK": _s(f"SERVER#{removed_server}")},
    )
    _replicate(cli, config)  # drains forward past T+O, then applies the new tables' changes

    # the old tables hold every one of those writes
    assert _get(clients, "ServersTable", {"id": _s("srv-after-cutover")}) == {
        "id": _s("srv-after-cutover"),
        "name": _s("made after the cutover"),
        "region": _s("eu-west-1"),
    }
    updated = _get(clients, "ServersTable", {"id": _s(servers[1])})
    assert updated is not None and updated["status"] == _s("updated-after-cutover")
    assert _get(clients, "ServersTable", {"id": _s(servers[2])}) is None
    late = _get(clients, "ServersTable", {"id": _s(servers[0])})
    assert late is not None and late["late_note"] == _s("written during the overlap")
    newbie = _get(
        clients,
        "UserMembershipTable",
        {"userId": _s("user-after-cutover"), "serverId": _s(servers[3])},
    )
    assert newbie is not None
    assert (newbie["role"], newbie["email"]) == (_s("admin"), _s("newbie@example.com"))
    for m in members[email_user]:
        got = _get(
            clients, "UserMembershipTable", {"userId": m["userId"], "serverId": m["serverId"]}
        )
        assert got is not None and got["email"] == _s("changed@example.com")
    changed = _get(
        clients, "UserMembershipTable", {"userId": _s(role_user), "serverId": _s(role_server)}
    )
    assert changed is not None and changed["role"] == _s(role)
    assert (
        _get(
            clients,
            "UserMembershipTable",
            {"userId": _s(removed_user), "serverId": _s(removed_server)},
        )
        is None
    )
    assert parity_problems(ddb, migration) == []  # and the late write reached CoreTable too

    # a writer nobody re-pointed writes an old table
    foreign = {
        "userId": _s(multi[1] if len(multi) > 2 else "user-foreign"),
        "serverId": _s(servers[4]),
        "role": _s("viewer"),
        "email": _s("stray@example.com"),
    }
    ddb.put_item(TableName="UserMembershipTable", Item=foreign)
    _replicate(cli, config)
    routes = _routes(cli, config)
    assert {r: v["foreign_writes"] for r, v in routes.items()} == {"servers": 0, "memberships": 1}

    back = _ok(cli.run(config, "rollback", "--json"))
    assert back["status"] == "done"
    _replicate(cli, config)  # reverse drains, forward resumes and carries the foreign write
    assert {r: v["direction"] for r, v in _routes(cli, config).items()} == {
        "servers": "forward",
        "memberships": "forward",
    }

    # the application writes the old tables again
    ddb.put_item(
        TableName="ServersTable",
        Item={"id": _s("srv-after-rollback"), "name": _s("made after the rollback")},
    )
    ddb.update_item(
        TableName="UserMembershipTable",
        Key={"userId": _s(role_user), "serverId": _s(role_server)},
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "role"},
        ExpressionAttributeValues={":r": _s("admin")},
    )
    _replicate(cli, config)

    assert parity_problems(ddb, migration) == []  # target == mapping(source), exactly
    for key in (
        {"PK": _s("SERVER#srv-after-cutover"), "SK": _s("METADATA")},
        {"PK": _s("SERVER#srv-after-rollback"), "SK": _s("METADATA")},
        {"PK": _s(f"USER#{foreign['userId']['S']}"), "SK": _s(f"SERVER#{servers[4]}")},
    ):
        assert _get(clients, "CoreTable", key) is not None, key
    admin = _get(
        clients, "CoreTable", {"PK": _s(f"USER#{role_user}"), "SK": _s(f"SERVER#{role_server}")}
    )
    assert admin is not None and admin["role"] == _s("admin")
    assert {r: v["foreign_writes"] for r, v in _routes(cli, config).items()} == {
        "servers": 0,
        "memberships": 1,
    }
    assert _ok(cli.run(config, "reconcile", "--json"))["parity"] is True


# --- the Stripe rename --------------------------------------------------------------------


def test_stripe_rename_cutover_writes_rollback_loses_nothing(
    cli: Cli, emulator_clients: Clients, tmp_path: Path
) -> None:
    from tests.e2e.test_stripe_rename import create_functions

    clients, ddb = emulator_clients, emulator_clients.dynamodb
    config = _config(tmp_path, "stripe-rename.yaml")
    create_stripe_tables(clients)
    for n in range(10):  # enough customers to update five and delete two
        ddb.put_item(
            TableName=OLD + "customers",
            Item={"customerId": _s(f"cus_extra_{n:02}"), "email": _s(f"extra{n}@example.com")},
        )
    create_functions(clients)
    assert cli.run(config, "prepare", "--no-backup").code == 0
    assert cli.run(config, "backfill").code == 0
    _replicate(cli, config)
    assert _ok(cli.run(config, "reconcile", "--json"))["parity"] is True

    customers_old, customers_new = OLD + "customers", NEW + "customers"
    existing = sorted(i["customerId"]["S"] for i in scan_all(ddb, customers_old))
    cut = _ok(cli.run(config, "cutover", "--json"))
    assert cut["status"] == "done" and cut["cut_over"] is True
    late_key = {"customerId": _s(existing[0])}
    ddb.update_item(  # a late write through the old environment, inside the overlap
        TableName=customers_old,
        Key=late_key,
        UpdateExpression="SET #p = :p",
        ExpressionAttributeNames={"#p": "plan"},
        ExpressionAttributeValues={":p": _s("late")},
    )

    # the application writes the new tables: 15 new customers, 5 updated, 2 deleted
    for n in range(15):
        ddb.put_item(
            TableName=customers_new,
            Item={
                "customerId": _s(f"cus_new_{n:02}"),
                "email": _s(f"new{n}@example.com"),
                "stripeCustomerId": _s(f"stripe_new_{n}"),
            },
        )
    for cid in existing[1:6]:
        ddb.update_item(
            TableName=customers_new,
            Key={"customerId": _s(cid)},
            UpdateExpression="SET balance = :b",
            ExpressionAttributeValues={":b": {"N": "42"}},
        )
    for cid in existing[6:8]:
        ddb.delete_item(TableName=customers_new, Key={"customerId": _s(cid)})
    _replicate(cli, config)
    # a writer nobody re-pointed, after the overlap
    ddb.put_item(
        TableName=customers_old,
        Item={"customerId": _s("cus_foreign"), "email": _s("stray@example.com")},
    )
    _replicate(cli, config)
    assert _routes(cli, config)["customers"]["foreign_writes"] == 1

    assert _ok(cli.run(config, "rollback", "--json"))["status"] == "done"
    _replicate(cli, config)
    ddb.put_item(  # the application writes the old tables again
        TableName=customers_old,
        Item={"customerId": _s("cus_after_rollback"), "email": _s("back@example.com")},
    )
    _replicate(cli, config)

    for name in NAMES:  # old and new agree exactly
        assert _by_key(scan_all(ddb, OLD + name)) == _by_key(scan_all(ddb, NEW + name)), name
    old_ids = {i["customerId"]["S"] for i in scan_all(ddb, customers_old)}
    assert {f"cus_new_{n:02}" for n in range(15)} <= old_ids
    assert not {existing[6], existing[7]} & old_ids
    assert {"cus_foreign", "cus_after_rollback"} <= old_ids
    for cid in existing[1:6]:
        got = _get(clients, customers_old, {"customerId": _s(cid)})
        assert got is not None and got["balance"] == {"N": "42"}
    late = _get(clients, customers_new, late_key)
    assert late is not None and late["plan"] == _s("late")
    routes = _routes(cli, config)
    assert {r: v["foreign_writes"] for r, v in routes.items()} == {
        "customers": 1,
        "subscriptions": 0,
        "invoices": 0,
        "idempotency": 0,
    }
    assert _ok(cli.run(config, "reconcile", "--json"))["parity"] is True
