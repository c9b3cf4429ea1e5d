"""Your own migration without Python, end to end through the real `dualwrite` command:
OrdersTable re-keyed into CoreTable by a declarative mapping (migrations/orders-coretable.yaml)
beside the builtin servers route. preview, prepare, backfill with live writes and the
replicator running, a poison order quarantined, replicate, reconcile at parity; and the three
kinds of bad template refused (exit 2, naming the key) before anything is created.
"""

from __future__ import annotations

import random
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from dualwrite.aws.clients import Clients
from dualwrite.config import load_migration
from dualwrite.seed import SERVERS_DEFINITION, SERVERS_TABLE, generate, server_id, server_item
from dualwrite.seed import write_items as seed_write
from dualwrite.traffic import Op, apply_op
from tests.conftest import MIGRATIONS, Cli
from tests.orders_world import ORDERS_TABLE, OrdersTraffic, create_orders, generate_orders
from tests.parity import parity_problems

pytestmark = pytest.mark.e2e

PLAN = MIGRATIONS / "orders-coretable.yaml"
MIGRATION = load_migration(PLAN)
SERVERS, ORDERS = 20, 45


def _world(clients: Clients) -> list[dict[str, Any]]:
    from dualwrite.aws import tables

    tables.create_table(clients.dynamodb, SERVERS_DEFINITION)
    tables.wait_active(clients.dynamodb, SERVERS_TABLE)
    seed_write(clients, SERVERS_TABLE, generate(SERVERS, 0, 5).servers)
    orders = generate_orders(ORDERS)
    create_orders(clients, orders)
    return orders


def _with_mapping(tmp_path: Path, name: str, mapping: dict[str, Any]) -> Path:
    data = yaml.safe_load(PLAN.read_text())
    data["routes"][1]["mapping"] = mapping
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _nothing_created(clients: Clients) -> None:
    ddb = clients.dynamodb
    assert sorted(ddb.list_tables()["TableNames"]) == [ORDERS_TABLE, SERVERS_TABLE]
    for table in (ORDERS_TABLE, SERVERS_TABLE):
        assert not ddb.describe_table(TableName=table)["Table"].get("StreamSpecification")


def test_bad_templates_exit_2_naming_the_key_before_anything_is_created(
    cli: Cli, emulator_clients: Clients, tmp_path: Path
) -> None:
    _world(emulator_clients)
    good = {"PK": "CUSTOMER#{customerId}", "SK": "ORDER#{orderId}"}
    cases = {
        "unparseable": (
            {"key": {**good, "SK": "{orderId}{customerId}"}},
            "routes[1].mapping.key.SK: template '{orderId}{customerId}' cannot be parsed back",
        ),
        "not-a-key-attribute": (
            {"key": {**good, "SK": "ORDER#{orderNo}"}},
            "route orders: mapping.key.SK: placeholder {orderNo} is not a key attribute of the "
            "source (customerId (S, hash), orderId (S, range))",
        ),
        "owned-key-space": (
            {"key": {"PK": "SERVER#{customerId}", "SK": "{orderId}"}},
            "routes[1].mapping.key: route orders could write keys (PK=SERVER#*, SK=*) that "
            "route servers owns on CoreTable",
        ),
    }
    for name, (mapping, message) in cases.items():
        path = _with_mapping(tmp_path, name, mapping)
        for command in (["plan"], ["prepare", "--no-backup"], ["preview"]):
            result = cli.run(path, *command)
            assert result.code == 2, (name, command, result.stdout, result.stderr)
            assert message in result.stderr, (name, result.stderr)
            assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
        _nothing_created(emulator_clients)


def _writes(clients: Clients, traffic: OrdersTraffic, stop: threading.Event, max_ops: int) -> int:
    """Live writes: orders inserted, changed and deleted, servers changed and deleted."""
    client = clients.client("dynamodb")
    rng = random.Random(17)
    servers = list(range(SERVERS))
    done = 0
    while not stop.is_set() and done < max_ops:
        apply_op(client, traffic.next_op())
        if rng.random() < 0.3 and len(servers) > 1:
            i = rng.choice(servers)
            if rng.random() < 0.2:
                servers.remove(i)
                apply_op(client, Op(SERVERS_TABLE, "delete", key={"id": {"S": server_id(i)}}))
            else:
                apply_op(client, Op(SERVERS_TABLE, "put", server_item(rng, i)))
        done += 1
        stop.wait(0.01)
    return done


def test_orders_beside_servers_on_one_core_table(cli: Cli, emulator_clients: Clients) -> None:
    orders = _world(emulator_clients)
    ddb = emulator_clients.dynamodb

    # preview: reads only, every sample round-trips, nothing is created
    previewed = cli.run(PLAN, "preview", "--limit", "3", "--json")
    assert previewed.code == 0, previewed.stderr
    routes = previewed.json()["routes"]
    assert [r["route"] for r in routes] == ["servers", "orders"]
    for r in routes:
        assert len(r["samples"]) == 3
        assert all(s["round_trip"] is True and s["quarantined"] is False for s in r["samples"])
    sample = routes[1]["samples"][0]
    source, target = sample["source"], sample["target"]
    assert target["PK"] == {"S": "CUSTOMER#" + source["customerId"]["S"]}
    assert target["SK"] == {"S": "ORDER#" + source["orderId"]["S"]}
    assert target["Type"] == {"S": "Order"} and target["amount"] == source["total"]
    assert "legacyFlag" not in target and "customerId" not in target and "total" not in target
    human = cli.run(PLAN, "preview", "--route", "orders", "--limit", "2")
    assert human.code == 0, human.stderr
    assert "orders: OrdersTable -> CoreTable" in human.stdout and "CUSTOMER#" in human.stdout
    assert "servers" not in human.stdout and human.stderr == ""
    _nothing_created(emulator_clients)

    planned = cli.run(PLAN, "plan", "--json")
    assert planned.code == 0, planned.stderr
    assert [r["mapping"] for r in planned.json()["routes"]] == [
        "servers",
        "declarative (PK=CUSTOMER#{customerId}, SK=ORDER#{orderId})",
    ]
    assert cli.run(PLAN, "plan").code == 0  # the human table takes it too
    prepared = cli.run(PLAN, "prepare", "--no-backup", "--json")
    assert prepared.code == 0, prepared.stderr

    # backfill with live writes and the replicator running before, during and after it
    traffic = OrdersTraffic(orders)
    replicator = cli.start(PLAN, "replicate", "--poll-interval", "0.2")
    try:
        _writes(emulator_clients, traffic, threading.Event(), 20)
        stop = threading.Event()
        writer = threading.Thread(target=_writes, args=(emulator_clients, traffic, stop, 10**6))
        writer.start()
        try:
            backfilled = cli.run(PLAN, "backfill", "--segments", "2", "--json")
        finally:
            stop.set()
            writer.join()
        assert backfilled.code == 0, backfilled.stderr
        assert [r["route"] for r in backfilled.json()["routes"]] == ["servers", "orders"]
        _writes(emulator_clients, traffic, threading.Event(), 20)
        # a poison order: its `amount` would be overwritten by the rename total -> amount
        poison = {"customerId": {"S": "cus-poison"}, "orderId": {"S": "ord-1"}}
        ddb.put_item(TableName=ORDERS_TABLE, Item={**poison, "amount": {"N": "1"}})
        _writes(emulator_clients, traffic, threading.Event(), 10)  # later writes still flow
    finally:
        replicator.send_signal(signal.SIGINT)
        _out, err = replicator.communicate(timeout=120)
    assert replicator.returncode == 0, err

    caught_up = cli.run(PLAN, "replicate", "--until-caught-up", "--json")
    assert caught_up.code == 0, caught_up.stderr
    assert caught_up.json()["failed"] == 0
    assert parity_problems(ddb, MIGRATION) == []
    status = cli.run(PLAN, "status", "--json")
    assert status.code == 0, status.stderr
    assert status.json()["quarantined"] == 1
    [entry] = [r for r in status.json()["routes"] if r["route"] == "orders"]
    assert entry["quarantined"] == 1

    reconciled = cli.run(PLAN, "reconcile", "--json")
    assert reconciled.code == 0, reconciled.stdout + reconciled.stderr
    assert reconciled.json()["parity"] is True
    by_route = {r["route"]: r for r in reconciled.json()["routes"]}
    assert by_route["orders"]["quarantined"] == 1
    assert by_route["orders"]["missing"] == by_route["orders"]["extra"] == 0
    assert by_route["servers"]["extra"] == 0  # neither route judges the other's items

    # the poison order is listed by preview as quarantined, with its reason
    all_orders = cli.run(PLAN, "preview", "--route", "orders", "--limit", "1000", "--json")
    samples = all_orders.json()["routes"][0]["samples"]
    [bad] = [s for s in samples if s["source"]["customerId"] == {"S": "cus-poison"}]
    assert bad["quarantined"] is True and bad["target"] is None
    assert "amount would overwrite" in bad["reason"]
    assert all(s["round_trip"] is True for s in samples if s is not bad)


def test_a_template_mistyped_after_prepare_is_refused_by_every_command(
    cli: Cli, emulator_clients: Clients, tmp_path: Path
) -> None:
    """Prepared with the good file, the template is then mistyped ({orderNo} for {orderId}).
    backfill, replicate, cutover and rollback each refuse it as plan does: exit 2, the same
    one line, before they change anything. Before, backfill died "unexpected KeyError", the
    replicator quarantined every live change through it, and cutover switched the routes to
    reverse replication through it."""
    _world(emulator_clients)
    assert cli.run(PLAN, "prepare").code == 0
    bad = tmp_path / "typo.yaml"
    bad.write_text(PLAN.read_text().replace("ORDER#{orderId}", "ORDER#{orderNo}"))
    line = (
        "route orders: mapping.key.SK: placeholder {orderNo} is not a key attribute of the "
        "source (customerId (S, hash), orderId (S, range))"
    )

    def refused(*args: str) -> None:
        result = cli.run(bad, *args)
        assert result.code == 2, (args, result.code, result.stderr)
        assert line in result.stderr and "Traceback" not in result.stderr, result.stderr

    refused("plan")
    refused("backfill")
    assert cli.run(PLAN, "backfill").code == 0
    ddb = emulator_clients.dynamodb
    live = {"customerId": {"S": "cus-live"}, "orderId": {"S": "ord-live"}, "total": {"N": "1"}}
    ddb.put_item(TableName=ORDERS_TABLE, Item=live)
    refused("replicate", "--until-caught-up")
    assert cli.run(PLAN, "quarantine", "--json").json()["entries"] == []
    assert cli.run(PLAN, "replicate", "--until-caught-up").code == 0
    key = {"PK": {"S": "CUSTOMER#cus-live"}, "SK": {"S": "ORDER#ord-live"}}
    assert "Item" in ddb.get_item(TableName="CoreTable", Key=key)
    assert cli.run(PLAN, "reconcile").code == 0
    refused("cutover")
    routes = cli.run(PLAN, "status", "--json").json()["routes"]
    assert {r["route"]: r["direction"] for r in routes} == {
        "servers": "forward",
        "orders": "forward",
    }
    refused("rollback")
