"""A small OrdersTable for the declarative-mapping example (migrations/orders-coretable.yaml):
its items and live traffic on it. Pure generators (a seeded random.Random); `create_orders`
makes and fills the table."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.seed import write_items
from dualwrite.traffic import Op
from dualwrite.wire import Item

ORDERS_TABLE = "OrdersTable"
ORDERS_DEFINITION: dict[str, Any] = {
    "TableName": ORDERS_TABLE,
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
STATUSES = ("placed", "paid", "shipped", "refunded")


def order_item(rng: random.Random, customer: int, order: int) -> Item:
    item: Item = {
        "customerId": {"S": f"cus-{customer:04d}"},
        "orderId": {"S": f"ord-{order:06d}"},
        "total": {"N": f"{rng.randrange(100, 100_000) / 100}"},
        "status": {"S": rng.choice(STATUSES)},
        "lines": {
            "L": [
                {"M": {"sku": {"S": f"sku-{rng.randrange(50)}"}, "qty": {"N": str(q + 1)}}}
                for q in range(rng.randrange(1, 4))
            ]
        },
        "note": {"S": rng.choice(("", "gift ✨", "leave at door", "café"))},
    }
    if rng.random() < 0.3:
        item["legacyFlag"] = {"BOOL": rng.random() < 0.5}
    return item


def generate_orders(n: int, seed: int = 3) -> list[Item]:
    rng = random.Random(seed)
    return [order_item(rng, i % max(1, n // 3), i) for i in range(n)]


@dataclass
class OrdersTraffic:
    """Inserts, updates and deletes of orders, always of keys that exist (or existed)."""

    orders: list[Item]
    seed: int = 11
    rng: random.Random = field(init=False)
    live: list[tuple[int, int]] = field(init=False)
    next_order: int = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.live = [
            (int(o["customerId"]["S"][4:]), int(o["orderId"]["S"][4:])) for o in self.orders
        ]
        self.next_order = max((o for _c, o in self.live), default=-1) + 1

    def next_op(self) -> Op:
        r = self.rng.random()
        if r < 0.5 and self.live:  # an order changes
            c, o = self.rng.choice(self.live)
            return Op(ORDERS_TABLE, "put", order_item(self.rng, c, o))
        if r < 0.8 or len(self.live) < 2:  # a new order
            c, o = self.rng.randrange(20), self.next_order
            self.next_order += 1
            self.live.append((c, o))
            return Op(ORDERS_TABLE, "put", order_item(self.rng, c, o))
        c, o = self.live.pop(self.rng.randrange(len(self.live)))
        key = {"customerId": {"S": f"cus-{c:04d}"}, "orderId": {"S": f"ord-{o:06d}"}}
        return Op(ORDERS_TABLE, "delete", key=key)


def create_orders(clients: Clients, orders: list[Item]) -> None:
    tables.create_table(clients.dynamodb, ORDERS_DEFINITION)
    tables.wait_active(clients.dynamodb, ORDERS_TABLE)
    write_items(clients, ORDERS_TABLE, orders)
