"""`plan` and `prepare` build a declarative mapping on its target's key as it exists, is
declared, or is planned by an earlier route: a `key:` named sort key first ({SK: ..., PK:
...}) into a target declared PK/SK is planned PK (hash), SK (range), and a second route
(servers) sharing the target is not refused for "another key schema"."""

from __future__ import annotations

from dualwrite import prepare as preparing
from dualwrite.aws.clients import Clients
from dualwrite.config import Migration, parse_migration
from tests.orders_world import create_orders


def _servers(clients: Clients) -> None:
    clients.dynamodb.create_table(
        TableName="ServersTable",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _migration() -> Migration:
    return parse_migration(
        {
            "control_table": "ctl",
            "routes": [
                {
                    "name": "orders",
                    "source": "OrdersTable",
                    "target": "CoreTable",
                    "mapping": {"key": {"SK": "ORDER#{orderId}", "PK": "CUSTOMER#{customerId}"}},
                },
                {
                    "name": "servers",
                    "source": "ServersTable",
                    "target": "CoreTable",
                    "mapping": "servers",
                },
            ],
            "targets": {"CoreTable": {"key": {"PK": "S", "SK": "S"}}},
        }
    )


def test_prepare_accepts_sk_first_declarative_route_sharing_a_declared_target(
    moto_clients: Clients,
) -> None:
    create_orders(moto_clients, [{"customerId": {"S": "c1"}, "orderId": {"S": "o1"}}])
    _servers(moto_clients)
    plan = preparing.analyze(_migration(), moto_clients, backup=False)
    detail = [a.to_json() for a in plan.actions if a.to_json().get("table") == "CoreTable"]
    assert detail  # the target is planned


def test_prepare_describes_the_declared_key_in_the_tables_order(moto_clients: Clients) -> None:
    create_orders(moto_clients, [{"customerId": {"S": "c1"}, "orderId": {"S": "o1"}}])
    m = parse_migration(
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
            "targets": {"CoreTable": {"key": {"PK": "S", "SK": "S"}}},
        }
    )
    plan = preparing.analyze(m, moto_clients, backup=False)
    text = " ".join(str(a.to_json()) for a in plan.actions)
    assert "PK (S, hash), SK (S, range)" in text, text
