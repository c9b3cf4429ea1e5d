"""Helpers for the reconcile and status tests (no tests here): a CoreTable migration whose
target is filled from the mapping, and ways to plant drift."""

from __future__ import annotations

from typing import Any

from dualwrite import prepare as preparing
from dualwrite import seed as seeding
from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.config import Migration, load_migration
from dualwrite.control import ControlStore
from dualwrite.mapping import build_mapping
from dualwrite.mapping.base import Mapping
from dualwrite.seed import SeedData
from dualwrite.wire import Item, Key
from reconciler.expect import expected_items
from tests.conftest import MIGRATIONS

CORE_FILE = MIGRATIONS / "coretable.yaml"
TARGET = "CoreTable"


def core() -> Migration:
    return load_migration(CORE_FILE)


def mapping_of(clients: Clients, migration: Migration, route: str) -> Mapping:
    r = migration.route(route)
    desc = tables.describe(clients.dynamodb, r.source)
    assert desc is not None
    return build_mapping(r.mapping, tables.key_schema_of(desc))


def populate_target(clients: Clients, migration: Migration, data: SeedData) -> int:
    """Write what the mapping makes of the seed data into the target (a stand-in backfill)."""
    n = 0
    for route, items in (("servers", data.servers), ("memberships", data.memberships)):
        made = expected_items(mapping_of(clients, migration, route), items)
        seeding.write_items(clients, migration.route(route).target, made, workers=2)
        n += len(made)
    return n


def build_core(
    clients: Clients, servers: int = 12, memberships: int = 36, seed: int = 7
) -> tuple[Migration, ControlStore, SeedData]:
    """Seeded sources, prepared tables, and a target at parity."""
    migration = core()
    data = seeding.generate(servers, memberships, seed)
    seeding.ensure_tables(clients)
    seeding.write_items(clients, seeding.SERVERS_TABLE, data.servers, workers=2)
    seeding.write_items(clients, seeding.MEMBERSHIPS_TABLE, data.memberships, workers=2)
    plan = preparing.analyze(migration, clients, backup=False)
    preparing.apply(migration, clients, plan, backup=False)
    populate_target(clients, migration, data)
    return migration, ControlStore(clients.dynamodb, migration.control_table), data


def server_key(server_id: str) -> Key:
    return {"PK": {"S": f"SERVER#{server_id}"}, "SK": {"S": "METADATA"}}


def user_key(user_id: str, sk: str = "METADATA") -> Key:
    return {"PK": {"S": f"USER#{user_id}"}, "SK": {"S": sk}}


def get_target(clients: Clients, key: Key) -> Item | None:
    item = clients.dynamodb.get_item(TableName=TARGET, Key=key, ConsistentRead=True).get("Item")
    return dict(item) if item else None


def by_route(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["route"]: r for r in result["routes"]}


def counts(route_result: dict[str, Any]) -> tuple[int, int, int]:
    return route_result["missing"], route_result["extra"], route_result["mismatched"]


def users_with_memberships(data: SeedData) -> dict[str, list[Item]]:
    out: dict[str, list[Item]] = {}
    for m in data.memberships:
        out.setdefault(m["userId"]["S"], []).append(m)
    return out
