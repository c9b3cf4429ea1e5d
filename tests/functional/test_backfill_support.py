"""Helpers for the backfill tests (no tests here): tables, expected targets, exact checks."""

from __future__ import annotations

from typing import Any

from dualwrite import prepare as preparing
from dualwrite import seed as seeding
from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.aws.dynamo import scan_pages
from dualwrite.config import Migration, parse_migration
from dualwrite.errors import UnmappableError
from dualwrite.mapping import build_mapping
from dualwrite.wire import Item, items_equal, key_id, key_of

CORETABLE: dict[str, Any] = {
    "control_table": "dualwrite-control",
    "routes": [
        {"name": "servers", "source": "ServersTable", "target": "CoreTable", "mapping": "servers"},
        {
            "name": "memberships",
            "source": "UserMembershipTable",
            "target": "CoreTable",
            "mapping": "memberships",
        },
    ],
    "targets": {"CoreTable": {"key": {"PK": "S", "SK": "S"}}},
}


def coretable() -> Migration:
    return parse_migration(CORETABLE)


def seed(clients: Clients, servers: list[Item], memberships: list[Item]) -> None:
    seeding.ensure_tables(clients)
    seeding.write_items(clients, seeding.SERVERS_TABLE, servers, workers=2)
    seeding.write_items(clients, seeding.MEMBERSHIPS_TABLE, memberships, workers=2)


def prepare(clients: Clients, migration: Migration) -> None:
    plan = preparing.analyze(migration, clients, backup=False)
    preparing.apply(migration, clients, plan, backup=False)


def scan_all(clients: Clients, table: str) -> dict[str, Item]:
    desc = tables.describe(clients.dynamodb, table)
    assert desc is not None
    names = tables.key_schema_of(desc).names
    out: dict[str, Item] = {}
    for page in scan_pages(clients.dynamodb, table, consistent=True):
        for item in page.items:
            out[key_id(key_of(item, names))] = item
    return out


def expected_target(
    clients: Clients, migration: Migration, routes: list[str] | None = None
) -> dict[str, Item]:
    """mapping(source), computed from whole tables: direct items plus one derived item per
    group from all of its members (sorted, independent of pages and segments)."""
    out: dict[str, Item] = {}
    for route in migration.routes:
        if routes is not None and route.name not in routes:
            continue
        desc = tables.describe(clients.dynamodb, route.source)
        assert desc is not None
        mapping = build_mapping(route.mapping, tables.key_schema_of(desc))
        groups: dict[str, tuple[Any, list[Item]]] = {}
        for item in scan_all(clients, route.source).values():
            group = mapping.group_of(item)
            if group is not None:
                groups.setdefault(key_id({"g": group}), (group, []))[1].append(item)
            try:
                target = mapping.transform(item)
            except UnmappableError:
                continue
            out[key_id(key_of(target, mapping.target_key.names))] = target
        for group, members in groups.values():
            derived = mapping.derive(group, members)
            if derived is not None:
                out[key_id(key_of(derived, mapping.target_key.names))] = derived
    return out


def assert_exact(actual: dict[str, Item], expected: dict[str, Item]) -> None:
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    assert not missing, f"{len(missing)} missing, e.g. {missing[:3]}"
    assert not extra, f"{len(extra)} extra, e.g. {extra[:3]}"
    wrong = [k for k in expected if not items_equal(expected[k], actual[k])]
    assert not wrong, f"{len(wrong)} differ, e.g. {wrong[:3]}"


class ClientProxy:
    """Wraps a boto3 DynamoDB client: counts calls by operation and lets a test inject
    faults (a hook may return a response, raise, or return None to call the real client)."""

    def __init__(self, real: Any, owner: CountingClients) -> None:
        self._real = real
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if not callable(attr) or name.startswith("_") or name in ("meta", "exceptions"):
            return attr

        def call(**kwargs: Any) -> Any:
            with self._owner.lock:
                self._owner.calls[name] = self._owner.calls.get(name, 0) + 1
            hook = self._owner.hooks.get(name)
            if hook is not None:
                response = hook(self._real, kwargs)
                if response is not None:
                    return response
            return attr(**kwargs)

        return call


class CountingClients(Clients):
    """Clients whose DynamoDB clients are ClientProxy objects (per thread, as usual)."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        import threading

        self.calls: dict[str, int] = {}
        self.hooks: dict[str, Any] = {}
        self.lock = threading.Lock()

    def client(self, service: str) -> Any:
        real = super().client(service)
        return ClientProxy(real, self) if service == "dynamodb" else real


def throttling_error(operation: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {
            "Error": {
                "Code": "ProvisionedThroughputExceededException",
                "Message": "injected throttling",
            }
        },
        operation,
    )
