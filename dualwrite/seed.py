"""Realistic legacy data for ServersTable and UserMembershipTable.

The generators are pure (a seeded random.Random in, wire-format items out); `seed_tables`
creates the tables if needed and writes the items in 25-item batches from a few threads.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.aws.dynamo import BATCH_WRITE_MAX, batch_write
from dualwrite.errors import ThrottledError
from dualwrite.wire import Item

SERVERS_TABLE = "ServersTable"
MEMBERSHIPS_TABLE = "UserMembershipTable"

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2", "sa-east-1")
STATUSES = ("running", "stopped", "provisioning", "archived")
ROLES = ("admin", "moderator", "viewer", "viewer", "viewer", "moderator")
UNKNOWN_ROLES = ("owner", "guest", "Admin")
FIRST = (
    "ana",
    "bo",
    "chen",
    "dmitri",
    "eve",
    "farah",
    "gus",
    "hiro",
    "ines",
    "jo",
    "kwame",
    "lena",
    "mateo",
    "nia",
    "oskar",
    "priya",
    "quinn",
    "rosa",
    "sven",
    "tariq",
    "zoë",
)
WORDS = (
    "atlas",
    "nimbus",
    "quartz",
    "falcon",
    "ember",
    "harbor",
    "lumen",
    "onyx",
    "pixel",
    "tundra",
    "vertex",
    "zephyr",
    "サーバー",
    "Ωmega",
    "café",
)

SERVERS_DEFINITION: dict[str, Any] = {
    "TableName": SERVERS_TABLE,
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    "BillingMode": "PAY_PER_REQUEST",
}
MEMBERSHIPS_DEFINITION: dict[str, Any] = {
    "TableName": MEMBERSHIPS_TABLE,
    "KeySchema": [
        {"AttributeName": "userId", "KeyType": "HASH"},
        {"AttributeName": "serverId", "KeyType": "RANGE"},
    ],
    "AttributeDefinitions": [
        {"AttributeName": "userId", "AttributeType": "S"},
        {"AttributeName": "serverId", "AttributeType": "S"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


def server_id(i: int) -> str:
    return f"srv-{i:06d}"


def user_id(i: int) -> str:
    return f"user-{i:06d}"


def server_item(rng: random.Random, i: int, *, large: bool = False) -> Item:
    """A server with every attribute type; `large` ones carry a few hundred KB of binary."""
    name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}"
    item: Item = {
        "id": {"S": server_id(i)},
        "name": {"S": name},
        "region": {"S": rng.choice(REGIONS)},
        "status": {"S": rng.choice(STATUSES)},
        "ownerId": {"S": user_id(rng.randrange(0, max(1, i + 1)))},
        "createdAt": {"N": str(1_600_000_000 + rng.randrange(0, 200_000_000))},
        "cpu": {"N": str(rng.choice((0.5, 1, 2, 4, 8, 16)))},
        "balance": {
            "N": "12345678901234567890.123456789012345678"[: rng.randrange(5, 39)].rstrip(".")
        },
        "enabled": {"BOOL": rng.random() < 0.8},
        "tags": {"SS": sorted({rng.choice(WORDS) for _ in range(rng.randrange(1, 5))})},
        "ports": {"NS": sorted({str(rng.choice((22, 80, 443, 8080, 25565))) for _ in range(3)})},
        "config": {
            "M": {
                "maxPlayers": {"N": str(rng.randrange(2, 500))},
                "motd": {"S": f"Welcome to {name} ✨"},
                "whitelist": {"BOOL": rng.random() < 0.3},
                "limits": {"M": {"memoryMb": {"N": str(rng.choice((512, 1024, 4096)))}}},
            }
        },
        "history": {
            "L": [
                {
                    "M": {
                        "event": {"S": rng.choice(("start", "stop", "backup"))},
                        "at": {"N": str(1_700_000_000 + j)},
                    }
                }
                for j in range(rng.randrange(0, 4))
            ]
        },
        "icon": {"B": bytes(rng.randrange(256) for _ in range(rng.randrange(8, 64)))},
    }
    if rng.random() < 0.1:
        item["deletedAt"] = {"NULL": True}
    if rng.random() < 0.1:
        item["checksums"] = {"BS": [bytes([j, rng.randrange(256)]) for j in range(2)]}
    if large:
        item["snapshot"] = {"B": rng.randbytes(rng.randrange(150_000, 300_000))}
    return item


def membership_item(rng: random.Random, user: int, server: int, email: str | None) -> Item:
    role = rng.choice(UNKNOWN_ROLES) if rng.random() < 0.03 else rng.choice(ROLES)
    item: Item = {
        "userId": {"S": user_id(user)},
        "serverId": {"S": server_id(server)},
        "role": {"S": role},
        "joinedAt": {"N": str(1_650_000_000 + rng.randrange(0, 100_000_000))},
    }
    if email is not None:
        item["email"] = {"S": email}
    return item


@dataclass(frozen=True)
class SeedData:
    servers: list[Item]
    memberships: list[Item]


def generate(servers: int, memberships: int, seed: int = 1) -> SeedData:
    """Deterministic data: the same arguments give the same items."""
    rng = random.Random(seed)
    large = {rng.randrange(servers) for _ in range(min(3, servers // 50))} if servers else set()
    server_items = [server_item(rng, i, large=i in large) for i in range(servers)]
    member_items: list[Item] = []
    if servers and memberships:
        # about three memberships a user, and enough users for every membership asked for
        # (`seed --servers 1 --memberships 10` wrote 3)
        users = max(1, memberships // 3, -(-memberships // servers))
        pairs: set[tuple[int, int]] = set()
        while len(pairs) < memberships:
            pairs.add((rng.randrange(users), rng.randrange(servers)))
        emails: dict[int, str | None] = {}
        for u in range(users):
            first = rng.choice(FIRST)
            emails[u] = f"{first}.{u}@example.com" if rng.random() < 0.9 else None
        for u, s in sorted(pairs):
            email = emails[u] if rng.random() < 0.85 else None
            member_items.append(membership_item(rng, u, s, email))
    return SeedData(server_items, member_items)


def _chunks(items: list[Item], size: int) -> Iterator[list[Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ensure_tables(clients: Clients) -> list[str]:
    created = []
    for definition in (SERVERS_DEFINITION, MEMBERSHIPS_DEFINITION):
        if tables.describe(clients.dynamodb, definition["TableName"]) is None:
            tables.create_table(clients.dynamodb, definition)
            created.append(definition["TableName"])
    for definition in (SERVERS_DEFINITION, MEMBERSHIPS_DEFINITION):
        tables.wait_active(clients.dynamodb, definition["TableName"])
    return created


def write_items(
    clients: Clients,
    table: str,
    items: list[Item],
    *,
    workers: int = 4,
    on_batch: Callable[[int], None] = lambda _n: None,
) -> int:
    """Write items in 25-item batches from a few threads. Returns the number written."""

    def write(batch: list[Item]) -> int:
        left = batch_write(clients.dynamodb, table, [{"PutRequest": {"Item": it}} for it in batch])
        if left:
            raise ThrottledError(f"seed: {len(left)} items to {table} still unprocessed")
        on_batch(len(batch))
        return len(batch)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(write, _chunks(items, BATCH_WRITE_MAX)))
