"""A customer's orders under the user's partition (`USER#<id>/ORDER#<id>`, the classic
single-table pattern) beside the builtin memberships route on CoreTable: memberships owns
only `USER#*/SERVER#*` and `USER#*/METADATA`, so neither reconcile nor reverse routing takes
an order item for one of its own."""

from __future__ import annotations

import random
from typing import Any

import pytest

from dualwrite import prepare as preparing
from dualwrite import seed as seeding
from dualwrite.aws.clients import Clients
from dualwrite.config import Migration, parse_migration
from dualwrite.control import ControlStore
from dualwrite.cutover.context import CutoverContext
from dualwrite.cutover.drain import reverse_writes
from dualwrite.cutover.facts import describe_routes
from dualwrite.wire import Item
from reconciler.expect import expected_items
from reconciler.job import run_reconcile
from stream_replicator.apply import Replicator
from stream_replicator.records import Change
from tests.functional.test_reconcile_support import TARGET, by_route, mapping_of
from tests.orders_world import create_orders, order_item

ORDERS_ROUTE = {
    "name": "orders",
    "source": "OrdersTable",
    "target": TARGET,
    "mapping": {
        "key": {"PK": "USER#{customerId}", "SK": "ORDER#{orderId}"},
        "set": {"Type": "Order"},
    },
}


def _migration() -> Migration:
    return parse_migration(
        {
            "routes": [
                {
                    "name": "servers",
                    "source": "ServersTable",
                    "target": TARGET,
                    "mapping": "servers",
                },
                {
                    "name": "memberships",
                    "source": "UserMembershipTable",
                    "target": TARGET,
                    "mapping": "memberships",
                },
                ORDERS_ROUTE,
            ],
            "targets": {TARGET: {"key": {"PK": "S", "SK": "S"}}},
        }
    )


def _world(clients: Clients) -> tuple[Migration, ControlStore, list[Item]]:
    """Sources, the prepared CoreTable filled as a backfill would, the orders of members."""
    migration = _migration()
    data = seeding.generate(4, 12, seed=7)
    seeding.ensure_tables(clients)
    seeding.write_items(clients, seeding.SERVERS_TABLE, data.servers, workers=2)
    seeding.write_items(clients, seeding.MEMBERSHIPS_TABLE, data.memberships, workers=2)
    rng = random.Random(5)
    users = sorted({m["userId"]["S"] for m in data.memberships})
    orders = []
    for i in range(9):  # in the same partitions as the users' UserServer and User items
        item = order_item(rng, 0, i)
        item["customerId"] = {"S": users[i % len(users)]}
        orders.append(item)
    create_orders(clients, orders)
    plan = preparing.analyze(migration, clients, backup=False)
    preparing.apply(migration, clients, plan, backup=False)
    sources = {"servers": data.servers, "memberships": data.memberships, "orders": orders}
    for route, items in sources.items():
        made = expected_items(mapping_of(clients, migration, route), items)
        seeding.write_items(clients, TARGET, made, workers=2)
    return migration, ControlStore(clients.dynamodb, migration.control_table), orders


@pytest.mark.parametrize("exact", [False, True])
def test_reconcile_reaches_parity_with_orders_in_the_users_partitions(
    moto_clients: Clients, exact: bool
) -> None:
    migration, store, orders = _world(moto_clients)
    result = run_reconcile(
        migration, moto_clients, store, settle_s=0, publish_metrics=False, exact=exact
    ).to_json()
    routes = by_route(result)
    for name in ("servers", "memberships", "orders"):
        route: dict[str, Any] = routes[name]
        assert (route["missing"], route["extra"], route["mismatched"]) == (0, 0, 0), (name, route)
        assert route["parity"] is True
    assert routes["orders"]["target_items"] == len(orders)
    members = routes["memberships"]
    assert members["target_items"] == members["expected_target_items"]  # no order among them


def test_a_target_stream_record_of_an_order_item_is_routed_to_orders(
    moto_clients: Clients,
) -> None:
    migration, store, orders = _world(moto_clients)
    customer, order = orders[0]["customerId"]["S"], orders[0]["orderId"]["S"]

    def record(sk: str) -> Change:
        keys = {"PK": {"S": f"USER#{customer}"}, "SK": {"S": sk}}
        return Change(0, TARGET, "MODIFY", "1", "e", {"Keys": keys}, None, False, {})

    rep = Replicator(migration, moto_clients, store)
    changes = [record(f"ORDER#{order}"), record("SERVER#s1"), record("METADATA")]
    routed = [r.name for r in rep.routes_for_target(TARGET, changes)]
    assert routed == ["orders", "memberships", "memberships"]


def test_a_switchs_drain_counts_an_order_record_for_orders_only(moto_clients: Clients) -> None:
    """drain.reverse_writes: memberships must not count (as unrepresentable) a change of
    an order item, which is the orders route's to write back."""
    migration, _store, orders = _world(moto_clients)
    source = orders[0]
    key = {
        "PK": {"S": f"USER#{source['customerId']['S']}"},
        "SK": {"S": f"ORDER#{source['orderId']['S']}"},
    }
    changed = expected_items(mapping_of(moto_clients, migration, "orders"), [source])[0]
    changed = {**changed, "status": {"S": "changed on the new table"}}
    record = {"eventName": "MODIFY", "dynamodb": {"Keys": key, "NewImage": changed}}
    ctx = CutoverContext.open(migration, moto_clients)
    routes = {r.route: r for r in describe_routes(migration, moto_clients)}
    assert reverse_writes(ctx, routes["memberships"], [record]) == 0
    assert reverse_writes(ctx, routes["orders"], [record]) == 1
