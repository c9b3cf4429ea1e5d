"""A file whose declarative `key:` names the sort key first ({SK: ..., PK: ...}) into a
table keyed PK (hash), SK (range): backfill and forward replication hold the partition key
to DynamoDB's 2048-byte limit and the sort key to 1024 (they took the file's order, so a
1500-byte partition key was quarantined for good and blocked the cutover)."""

from __future__ import annotations

from typing import Any

from dualwrite import prepare as preparing
from dualwrite.aws.clients import Clients
from dualwrite.backoff import Backoff
from dualwrite.config import Migration, parse_migration
from dualwrite.control import ControlStore
from stream_replicator.apply import Replicator
from stream_replicator.batch import process_records
from stream_replicator.events import lambda_record
from tests.functional.test_backfill_job import by_route
from tests.orders_world import create_orders

LONG_CUSTOMER = "c" * 1500
LONG_ORDER = "o" * 1020


def sk_first(*more_routes: dict[str, Any]) -> Migration:
    """Orders into CoreTable (declared PK, SK) by a `key:` naming the sort key first."""
    orders = {
        "name": "orders",
        "source": "OrdersTable",
        "target": "CoreTable",
        "mapping": {"key": {"SK": "ORDER#{orderId}", "PK": "CUSTOMER#{customerId}"}},
    }
    return parse_migration(
        {
            "control_table": "ctl",
            "routes": [orders, *more_routes],
            "targets": {"CoreTable": {"key": {"PK": "S", "SK": "S"}}},
        }
    )


def world(clients: Clients) -> Migration:
    orders = ((LONG_CUSTOMER, "o1"), ("c1", LONG_ORDER), ("c2", "o2"))
    create_orders(clients, [{"customerId": {"S": c}, "orderId": {"S": o}} for c, o in orders])
    migration = sk_first()
    preparing.apply(
        migration, clients, preparing.analyze(migration, clients, backup=False), backup=False
    )
    return migration


def target_keys(clients: Clients) -> set[tuple[int, str]]:
    items = clients.dynamodb.scan(TableName="CoreTable")["Items"]
    return {(len(i["PK"]["S"]), i["SK"]["S"]) for i in items}


def test_backfill_and_replication_take_the_key_roles_from_the_table(
    moto_clients: Clients,
) -> None:
    from backfill.job import run_backfill

    migration = world(moto_clients)
    store = ControlStore(moto_clients.dynamodb, "ctl")
    result = by_route(run_backfill(migration, moto_clients, store))["orders"]

    assert (result["items_written"], result["quarantined"]) == (2, 1)
    assert target_keys(moto_clients) == {(9 + 1500, "ORDER#o1"), (len("CUSTOMER#c2"), "ORDER#o2")}
    (held,) = store.quarantined("orders")
    assert "SK is 1026 bytes, over DynamoDB's 1024-byte limit" in held.reason

    # a new order of the long customer, through the replicator's Lambda entry point
    moto_clients.dynamodb.put_item(
        TableName="OrdersTable",
        Item={"customerId": {"S": LONG_CUSTOMER}, "orderId": {"S": "o3"}},
    )
    stream = moto_clients.dynamodb.describe_table(TableName="OrdersTable")["Table"][
        "LatestStreamArn"
    ]
    from dualwrite.aws.streams import list_shards
    from dualwrite.cutover import streams

    records = [
        lambda_record(r, stream, "us-east-1")
        for s in list_shards(moto_clients.streams, stream)
        for r in streams.records(moto_clients.streams, stream, s["ShardId"])
    ]
    rep = Replicator(migration, moto_clients, store, backoff=Backoff(sleep=lambda _s: None))
    out = process_records(rep, records)
    assert out.response["batchItemFailures"] == []
    assert (9 + 1500, "ORDER#o3") in target_keys(moto_clients)
