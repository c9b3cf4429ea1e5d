"""reconcile, status and quarantine through the real `dualwrite` command on the emulator:
parity, planted drift found exactly (exit 3), repair, metrics read back by status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dualwrite import seed as seeding
from dualwrite.aws.clients import Clients
from dualwrite.config import load_migration
from dualwrite.control import ControlStore
from tests.conftest import MIGRATIONS, Cli
from tests.functional.test_reconcile_support import (
    TARGET,
    populate_target,
    server_key,
    user_key,
    users_with_memberships,
)
from tests.orders_world import create_orders

pytestmark = pytest.mark.e2e

CORE = MIGRATIONS / "coretable.yaml"
SERVERS, MEMBERSHIPS = 20, 60


def _routes(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["route"]: r for r in payload["routes"]}


def _drift(r: dict[str, Any]) -> tuple[int, int, int]:
    return r["missing"], r["extra"], r["mismatched"]


def test_reconcile_drift_repair_and_status(cli: Cli, emulator_clients: Clients) -> None:
    assert (
        cli.run(
            CORE, "seed", "--servers", str(SERVERS), "--memberships", str(MEMBERSHIPS), "--json"
        ).code
        == 0
    )
    prepared = cli.run(CORE, "prepare", "--no-backup", "--json")
    assert prepared.code == 0, prepared.stderr
    # the backfill command is another component: fill the target from the mapping here
    migration = load_migration(CORE)
    data = seeding.generate(SERVERS, MEMBERSHIPS, 1)
    populate_target(emulator_clients, migration, data)
    users = users_with_memberships(data)

    clean = cli.run(CORE, "reconcile", "--json")
    assert clean.code == 0, clean.stderr
    payload = clean.json()
    assert payload["parity"] is True
    routes = _routes(payload)
    assert routes["servers"]["source_items"] == SERVERS
    assert routes["memberships"]["expected_target_items"] == len(data.memberships) + len(users)
    for r in routes.values():
        assert _drift(r) == (0, 0, 0) and r["parity_percent"] == 100.0 and r["repaired"] == 0

    ddb = emulator_clients.dynamodb
    ddb.delete_item(TableName=TARGET, Key=server_key(data.servers[3]["id"]["S"]))
    ddb.delete_item(TableName=TARGET, Key=server_key(data.servers[4]["id"]["S"]))
    ddb.put_item(TableName=TARGET, Item={**server_key("ghost"), "Type": {"S": "Server"}})
    wrong_user = sorted(users)[0]
    ddb.update_item(
        TableName=TARGET,
        Key=user_key(wrong_user),
        UpdateExpression="SET #n = :n",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":n": {"S": "not-them"}},
    )

    drifted = cli.run(CORE, "reconcile", "--json", "--segments", "2")
    assert drifted.code == 3, drifted.stderr
    payload = drifted.json()
    assert payload["parity"] is False
    routes = _routes(payload)
    assert _drift(routes["servers"]) == (2, 1, 0)
    assert _drift(routes["memberships"]) == (0, 0, 1)
    assert routes["servers"]["parity_percent"] == round(100 * (SERVERS - 2) / (SERVERS + 1), 4)

    status = cli.run(CORE, "status", "--json")
    assert status.code == 0, status.stderr
    st = status.json()
    assert st["quarantined"] == 0
    sroutes = _routes(st)
    servers = sroutes["servers"]
    assert servers["last_reconcile"]["parity"] is False
    assert servers["last_reconcile"]["missing"] == 2
    # metrics landed in the emulator's CloudWatch and came back through GetMetricData
    assert servers["metrics"]["ParityMissing"] == 2.0
    assert servers["metrics"]["ParityExtra"] == 1.0
    assert servers["metrics"]["ParityPercent"] == routes["servers"]["parity_percent"]
    assert sroutes["memberships"]["metrics"]["ParityMismatched"] == 1.0
    assert servers["event_source_mappings"] == []
    assert servers["replication"]["stream_arn"]

    repaired = cli.run(CORE, "reconcile", "--repair", "--json")
    assert repaired.code == 0, repaired.stderr
    payload = repaired.json()
    routes = _routes(payload)
    assert payload["parity"] is True
    assert _drift(routes["servers"]) == (2, 1, 0) and routes["servers"]["repaired"] == 3
    assert routes["memberships"]["repaired"] == 1
    fixed = ddb.get_item(TableName=TARGET, Key=user_key(wrong_user), ConsistentRead=True)["Item"]
    assert fixed["name"]["S"] != "not-them"

    terminal = cli.run(CORE, "reconcile")
    assert terminal.code == 0, terminal.stderr
    assert "servers" in terminal.stdout and "memberships" in terminal.stdout
    assert "parity" in terminal.stdout

    after = cli.run(CORE, "status", "--json").json()
    assert all(r["last_reconcile"]["parity"] for r in after["routes"])
    shown = cli.run(CORE, "status")
    assert shown.code == 0, shown.stderr
    assert "ServersTable" in shown.stdout and "ParityPercent" in shown.stdout


def test_quarantine_and_foreign_before_prepare_say_nothing_is_recorded(cli: Cli) -> None:
    """Before `prepare` there is no control table: the listings are empty and say why (exit
    0, one JSON object), and resolving anything is refused in one line (exit 2)."""
    for command in ("quarantine", "foreign"):
        listed = cli.run(CORE, command, "--json")
        assert listed.code == 0, listed.stderr
        assert listed.json()["unresolved"] == 0
        assert "does not exist yet" in listed.stderr and "prepare" in listed.stderr
        resolve = cli.run(CORE, command, "--resolve-all", "--reason", "x")
        assert resolve.code == 2, resolve.stderr
        assert "nothing to resolve" in resolve.stderr and "Traceback" not in resolve.stderr
    assert cli.run(CORE, "foreign", "--json").json()["routes"] == [
        {"route": r.name, "writes": []} for r in load_migration(CORE).routes
    ]
    assert cli.run(CORE, "quarantine", "--json").json()["entries"] == []


def test_quarantine_listing_and_resolution(cli: Cli, emulator_clients: Clients) -> None:
    assert cli.run(CORE, "seed", "--servers", "3", "--memberships", "3").code == 0
    assert cli.run(CORE, "prepare", "--no-backup").code == 0
    migration = load_migration(CORE)
    store = ControlStore(emulator_clients.dynamodb, migration.control_table)
    email = "private.person@example.com"
    first = store.quarantine(
        "memberships",
        "membership has no role",
        {"userId": {"S": "u"}, "serverId": {"S": "s"}, "email": {"S": email}},
        source="backfill",
    )
    store.quarantine(
        "servers",
        "source attribute(s) PK would overwrite the target's keys",
        {"id": {"S": "x"}},
        source="replicator",
    )

    listed = cli.run(CORE, "quarantine", "--json")
    assert listed.code == 0, listed.stderr
    entries = listed.json()["entries"]
    assert listed.json()["unresolved"] == 2
    assert {e["route"] for e in entries} == {"servers", "memberships"}
    assert email not in listed.stdout
    assert cli.run(CORE, "status", "--json").json()["quarantined"] == 2

    table = cli.run(CORE, "quarantine")
    assert table.code == 0 and "membership has no role" in table.stdout
    assert email not in table.stdout

    no_reason = cli.run(CORE, "quarantine", "--resolve-all")
    assert no_reason.code == 2 and "--reason" in no_reason.stderr
    unknown = cli.run(CORE, "quarantine", "--resolve", "nope")
    assert unknown.code == 2
    one = cli.run(CORE, "quarantine", "--resolve", first, "--reason", "role restored", "--json")
    assert one.code == 0, one.stderr
    assert one.json()["resolved"] == [first] and one.json()["unresolved"] == 1
    rest = cli.run(CORE, "quarantine", "--resolve-all", "--reason", "accepted", "--json")
    assert rest.code == 0 and rest.json()["unresolved"] == 0
    history = cli.run(CORE, "quarantine", "--all", "--json").json()
    assert {e["resolution"] for e in history["entries"]} == {"role restored", "accepted"}

    assert cli.run(CORE, "reconcile", "--route", "nope").code == 2


def test_reconcile_names_the_source_item_the_target_refuses_instead_of_a_repair(
    cli: Cli, emulator_clients: Clients, tmp_path: Path
) -> None:
    """A write the target refuses for good (an empty string a secondary index keys on) is
    quarantined and stays a difference: `reconcile` and `reconcile --repair` (exit 3 each)
    advise no repair, which cannot help, but name the source item to fix and the reason."""
    paid = [
        {"customerId": {"S": f"cus-{i}"}, "orderId": {"S": f"ord-{i}"}, "status": {"S": "paid"}}
        for i in range(5)
    ]
    empty = {"customerId": {"S": "cus-e"}, "orderId": {"S": "ord-e"}, "status": {"S": ""}}
    create_orders(emulator_clients, [*paid, empty])
    cfg = tmp_path / "orders-status-index.yaml"
    cfg.write_text(
        "control_table: dw-status\n"
        "routes:\n"
        "  - name: orders\n"
        "    source: OrdersTable\n"
        "    target: CoreTable\n"
        "    mapping:\n"
        '      key: {PK: "CUSTOMER#{customerId}", SK: "ORDER#{orderId}"}\n'
        "targets:\n"
        "  CoreTable:\n"
        "    key: {PK: S, SK: S}\n"
        "    indexes: [{name: ByStatus, key: {status: S, PK: S}}]\n"
    )
    for step in ("prepare", "backfill"):
        r = cli.run(cfg, step)
        assert r.code == 0, (step, r.stderr)
    check = cli.run(cfg, "reconcile")
    first = cli.run(cfg, "reconcile", "--repair")
    second = cli.run(cfg, "reconcile", "--repair", "--json")
    assert (check.code, first.code, second.code) == (3, 3, 3)
    for said in (check.stdout, first.stdout):
        assert "run `dualwrite reconcile --repair`" not in said, said[-600:]
        assert "fix the source item OrdersTable customerId=cus-e orderId=ord-e" in said, said
        assert "CoreTable PK=CUSTOMER#cus-e SK=ORDER#ord-e cannot be written" in said
        assert "the target table refuses it" in said
    (orders,) = second.json()["routes"]
    assert orders["repair_helps"] is False and orders["remaining"]["missing"] == 1
    assert any("fix the source item" in line for line in orders["advice"])
