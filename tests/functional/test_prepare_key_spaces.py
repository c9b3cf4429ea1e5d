"""plan/prepare check a declarative route's placeholders against the source table, and a
custom class's declared key space against the routes sharing its target, before anything."""

from __future__ import annotations

from typing import Any

import pytest

from dualwrite import prepare as preparing
from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.config import parse_migration
from dualwrite.errors import ConfigError
from dualwrite.seed import SERVERS_DEFINITION

ORDERS_DEFINITION: dict[str, Any] = {
    "TableName": "OrdersTable",
    "KeySchema": [
        {"AttributeName": "customerId", "KeyType": "HASH"},
        {"AttributeName": "orderId", "KeyType": "RANGE"},
    ],
    "AttributeDefinitions": [
        {"AttributeName": "customerId", "AttributeType": "S"},
        {"AttributeName": "orderId", "AttributeType": "S"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}
PK_SK_DEFINITION: dict[str, Any] = {
    "TableName": "ShadowTable",
    "KeySchema": [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ],
    "AttributeDefinitions": [
        {"AttributeName": "PK", "AttributeType": "S"},
        {"AttributeName": "SK", "AttributeType": "S"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


def _migration(mapping: Any, source: str = "OrdersTable") -> Any:
    return parse_migration(
        {
            "routes": [
                {
                    "name": "servers",
                    "source": "ServersTable",
                    "target": "CoreTable",
                    "mapping": "servers",
                },
                {"name": "extra", "source": source, "target": "CoreTable", "mapping": mapping},
            ],
            "targets": {"CoreTable": {"key": {"PK": "S", "SK": "S"}}},
        }
    )


@pytest.fixture
def world(moto_clients: Clients) -> Clients:
    for definition in (SERVERS_DEFINITION, ORDERS_DEFINITION, PK_SK_DEFINITION):
        tables.create_table(moto_clients.dynamodb, definition)
    return moto_clients


def test_a_placeholder_that_is_no_key_attribute_is_refused_before_anything(
    world: Clients,
) -> None:
    bad = _migration({"key": {"PK": "CUSTOMER#{customerId}", "SK": "ORDER#{orderNo}"}})
    with pytest.raises(ConfigError) as info:
        preparing.analyze(bad, world)
    assert str(info.value) == (
        "route extra: mapping.key.SK: placeholder {orderNo} is not a key attribute of the "
        "source (customerId (S, hash), orderId (S, range))"
    )
    assert "CoreTable" not in world.dynamodb.list_tables()["TableNames"]
    good = _migration({"key": {"PK": "CUSTOMER#{customerId}", "SK": "ORDER#{orderId}"}})
    plan = preparing.analyze(good, world)
    assert [r.mapping for r in plan.routes] == [
        "servers",
        "declarative (PK=CUSTOMER#{customerId}, SK=ORDER#{orderId})",
    ]
    assert ("CoreTable", "create target") in {(a.table, a.action) for a in plan.changes}


def test_a_custom_key_space_is_checked_against_the_routes_beside_it(world: Clients) -> None:
    shadow = _migration("tests.unit.sample_keyspace_mapping:ServerShadow", "ShadowTable")
    with pytest.raises(
        ConfigError,
        match=r"^route extra: mapping .*ServerShadow could write "
        r"keys \(PK=SERVER#\*\) that route servers owns",
    ):
        preparing.analyze(shadow, world)
    carts = _migration("tests.unit.sample_keyspace_mapping:Carts", "ShadowTable")
    assert len(preparing.analyze(carts, world).routes) == 2
