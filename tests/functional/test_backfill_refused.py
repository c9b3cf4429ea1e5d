"""A write the target table refuses for good (here an empty string its secondary index keys
on, legal in the source) is quarantined and counted; the rest of the segment is written,
and a re-run neither stops on it nor files it twice. Before, every run failed on it."""

from __future__ import annotations

from typing import Any

from backfill.job import run_backfill
from dualwrite.aws.clients import Clients
from dualwrite.config import parse_migration
from dualwrite.control import ControlStore
from dualwrite.wire import Item
from tests.functional.test_backfill_support import prepare, scan_all

MIGRATION: dict[str, Any] = {
    "control_table": "ctl",
    "routes": [{"name": "r", "source": "old-t", "target": "new-t", "mapping": "identity"}],
    "targets": {
        "new-t": {"key": {"id": "S"}, "indexes": [{"name": "ByStatus", "key": {"status": "S"}}]}
    },
}


def test_an_item_the_target_refuses_is_quarantined_and_the_rest_is_written(
    moto_clients: Clients,
) -> None:
    ddb = moto_clients.dynamodb
    ddb.create_table(
        TableName="old-t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    items: list[Item] = [{"id": {"S": f"i{n}"}, "status": {"S": "live"}} for n in range(30)]
    items.append({"id": {"S": "blank"}, "status": {"S": ""}})  # legal here, not in the index
    for item in items:
        ddb.put_item(TableName="old-t", Item=item)
    migration = parse_migration(MIGRATION)
    prepare(moto_clients, migration)
    store = ControlStore(ddb, "ctl")

    (route,) = run_backfill(migration, moto_clients, store).to_json()["routes"]

    assert (route["items_written"], route["quarantined"]) == (30, 1)
    assert sorted(scan_all(moto_clients, "new-t")) == sorted(
        k for k in scan_all(moto_clients, "old-t") if "blank" not in k
    )
    (entry,) = store.quarantined("r")
    assert entry.record["id"] == {"S": "blank"}
    assert entry.reason.startswith("the target table refuses it: ")
    assert "ValidationException" in entry.reason

    # the route is backfilled now: a re-run puts only what is absent, one item at a time
    (again,) = run_backfill(migration, moto_clients, store, restart=True).to_json()["routes"]
    assert (again["skipped_existing"], again["quarantined"]) == (30, 1)
    assert len(store.quarantined("r")) == 1  # not filed twice
