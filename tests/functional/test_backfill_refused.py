"""A write the target table refuses for good (here an empty string its secondary index keys
on, legal in the source) is quarantined and counted; the rest of the segment is written,
and a re-run neither stops on it nor files it twice; a repair of it stays a difference while
the other repairs are made, and reconcile advises fixing the source item, not a repair.
Before, every backfill run and every repair failed on it."""

from __future__ import annotations

from typing import Any

from backfill.job import run_backfill
from dualwrite.aws.clients import Clients
from dualwrite.config import Migration, parse_migration
from dualwrite.control import ControlStore
from dualwrite.wire import Item
from reconciler.job import run_reconcile
from tests.functional.test_backfill_support import prepare, scan_all

MIGRATION: dict[str, Any] = {
    "control_table": "ctl",
    "routes": [{"name": "r", "source": "old-t", "target": "new-t", "mapping": "identity"}],
    "targets": {
        "new-t": {"key": {"id": "S"}, "indexes": [{"name": "ByStatus", "key": {"status": "S"}}]}
    },
}


def _ready(clients: Clients) -> tuple[Migration, ControlStore]:
    ddb = clients.dynamodb
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
    prepare(clients, migration)
    return migration, ControlStore(ddb, "ctl")


def test_an_item_the_target_refuses_is_quarantined_and_the_rest_is_written(
    moto_clients: Clients,
) -> None:
    migration, store = _ready(moto_clients)

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


def test_a_repair_the_target_refuses_stays_a_difference_and_the_others_are_made(
    moto_clients: Clients,
) -> None:
    migration, store = _ready(moto_clients)
    run_backfill(migration, moto_clients, store)
    ddb = moto_clients.dynamodb
    ddb.delete_item(TableName="new-t", Key={"id": {"S": "i3"}})  # drift a repair can fix

    (check,) = run_reconcile(migration, moto_clients, store, settle_s=0.0).to_json()["routes"]
    assert check["repair_helps"] is True  # for i3
    (advice,) = check["advice"]  # and for "blank", what does help
    assert "fix the source item old-t id=blank" in advice and "ValidationException" in advice

    result = run_reconcile(migration, moto_clients, store, repair=True, settle_s=0.0)
    (after,) = result.to_json()["routes"]
    assert after["repair_helps"] is False and "id=blank" in after["advice"][0]

    assert not result.parity  # "blank" is still missing: the target refuses it
    assert ddb.get_item(TableName="new-t", Key={"id": {"S": "i3"}}).get("Item") is not None
    notes = result.to_json()["routes"][0].get("notes") or []
    assert any("id=blank: the target table refuses it" in n for n in notes), notes
