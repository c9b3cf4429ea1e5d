"""`plan` and `prepare` build a declarative mapping on its target's key as it exists, is
declared, or is planned by an earlier route: a `key:` named sort key first ({SK: ..., PK:
...}) into a target declared PK/SK is planned PK (hash), SK (range), and a second route
(servers) sharing the target is not refused for "another key schema"."""

from __future__ import annotations

from dualwrite import prepare as preparing
from dualwrite.aws.clients import Clients
from tests.functional.test_declarative_key_order_flow import sk_first
from tests.orders_world import create_orders


def _servers(clients: Clients) -> None:
    clients.dynamodb.create_table(
        TableName="ServersTable",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


SERVERS = {"name": "servers", "source": "ServersTable", "target": "CoreTable", "mapping": "servers"}


def test_prepare_accepts_sk_first_declarative_route_sharing_a_declared_target(
    moto_clients: Clients,
) -> None:
    create_orders(moto_clients, [{"customerId": {"S": "c1"}, "orderId": {"S": "o1"}}])
    _servers(moto_clients)
    plan = preparing.analyze(sk_first(SERVERS), moto_clients, backup=False)
    (create,) = [a for a in plan.actions if (a.table, a.action) == ("CoreTable", "create target")]
    assert create.needed and "key PK (S, hash), SK (S, range)" in create.detail


def test_prepare_describes_the_declared_key_in_the_tables_order(moto_clients: Clients) -> None:
    create_orders(moto_clients, [{"customerId": {"S": "c1"}, "orderId": {"S": "o1"}}])
    plan = preparing.analyze(sk_first(), moto_clients, backup=False)
    text = " ".join(str(a.to_json()) for a in plan.actions)
    assert "PK (S, hash), SK (S, range)" in text, text
