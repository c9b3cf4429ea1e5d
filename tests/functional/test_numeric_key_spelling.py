"""Numeric key ids on moto, which keeps a number's spelling as written ("1.50", "01") where
DynamoDB gives it back as "1.5", "1": forward embeds DynamoDB's spelling (SERVER#1.5), so the
reconciler maps the target key back to its source item, a repair deletes nothing, and an
update of the item in reverse lands on the source item it came from."""

from __future__ import annotations

import pytest

from dualwrite import prepare as preparing
from dualwrite import seed as seeding
from dualwrite.aws.clients import Clients
from dualwrite.config import Migration, parse_migration
from dualwrite.control import ControlStore
from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import KeySchema
from dualwrite.reverse.model import INSERT, MODIFY
from reconciler.expect import expected_items
from reconciler.job import run_reconcile
from tests.functional.test_reconcile_support import mapping_of
from tests.functional.test_reverse_writer import change, create, scan, writer

SERVERS = build_mapping("servers", KeySchema((("id", "N"),)))


def servers_world(clients: Clients, ids: list[str]) -> Migration:
    ddb = clients.dynamodb
    ddb.create_table(
        TableName="ServersTable",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for i in ids:
        ddb.put_item(TableName="ServersTable", Item={"id": {"N": i}, "name": {"S": "s" + i}})
    migration = parse_migration(
        {
            "control_table": "ctl",
            "routes": [
                {
                    "name": "servers",
                    "source": "ServersTable",
                    "target": "CoreTable",
                    "mapping": "servers",
                }
            ],
            "targets": {"CoreTable": {"key": {"PK": "S", "SK": "S"}}},
        }
    )
    preparing.apply(
        migration, clients, preparing.analyze(migration, clients, backup=False), backup=False
    )
    items = ddb.scan(TableName="ServersTable")["Items"]
    made = expected_items(mapping_of(clients, migration, "servers"), items)
    seeding.write_items(clients, "CoreTable", made, workers=1)
    return migration


@pytest.mark.parametrize("exact", [False, True])
def test_ids_spelled_as_moto_keeps_them_reconcile_at_parity_and_repair_nothing(
    moto_clients: Clients, exact: bool
) -> None:
    migration = servers_world(moto_clients, ["1.50", "01", "7"])
    keys = sorted(i["PK"]["S"] for i in moto_clients.dynamodb.scan(TableName="CoreTable")["Items"])
    assert keys == ["SERVER#1", "SERVER#1.5", "SERVER#7"]
    store = ControlStore(moto_clients.dynamodb, "ctl")
    result = run_reconcile(
        migration,
        moto_clients,
        store,
        settle_s=0,
        publish_metrics=False,
        exact=exact,
        repair=True,
    ).to_json()
    (route,) = result["routes"]
    assert result["parity"] is True and route["parity_percent"] == 100.0
    assert (route["missing"], route["extra"], route["mismatched"], route["repaired"]) == (
        0,
        0,
        0,
        0,
    )
    assert moto_clients.dynamodb.scan(TableName="CoreTable")["Count"] == 3


def test_a_reverse_update_of_such_an_id_lands_on_its_source_item(moto_clients: Clients) -> None:
    ddb = moto_clients.dynamodb
    create(ddb, "old", (("id", "N"),))
    create(ddb, "new", (("PK", "S"), ("SK", "S")))
    ddb.put_item(TableName="old", Item={"id": {"N": "1.50"}, "name": {"S": "a"}})
    (source,) = scan(ddb, "old")
    forwarded = SERVERS.transform(source)
    assert forwarded["PK"] == {"S": "SERVER#1.5"}
    updated = {**forwarded, "name": {"S": "b"}}
    result = writer(ddb, SERVERS, "old", "new").apply([change(SERVERS, MODIFY, updated)])
    assert result.unrepresentable == () and result.failed == ()
    (after,) = scan(ddb, "old")  # moto, like DynamoDB, takes 1.5 and 1.50 for one key
    assert after["name"] == {"S": "b"}


@pytest.mark.parametrize("user", ["abc", "01", "1e200", ""])
def test_a_membership_whose_numeric_user_no_key_holds_is_quarantined(
    moto_clients: Clients, user: str
) -> None:
    """Read with BatchGetItem, {"N": "abc"} fails the whole batch on DynamoDB (moto takes
    it): the record is unrepresentable, and the good one beside it lands."""
    ddb = moto_clients.dynamodb
    create(ddb, "old", (("userId", "N"), ("serverId", "S")))
    create(ddb, "new", (("PK", "S"), ("SK", "S")))
    m = build_mapping("memberships", KeySchema((("userId", "N"), ("serverId", "S"))))
    good = m.transform({"userId": {"N": "1"}, "serverId": {"S": "s1"}, "role": {"S": "viewer"}})
    bad = {**good, "PK": {"S": f"USER#{user}"}}
    assert m.source_key_for(bad) is None
    result = writer(ddb, m, "old", "new").apply([change(m, INSERT, good), change(m, INSERT, bad)])
    assert [i for i, _ in result.unrepresentable] == [1] and result.failed == ()
    assert len(scan(ddb, "old")) == 1
