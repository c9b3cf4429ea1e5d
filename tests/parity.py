"""An independent parity check for tests: the whole expected target, computed the simple way
(full scans, memberships grouped in memory), compared with the whole target. Small tables only.
"""

from __future__ import annotations

from typing import Any

from dualwrite.aws import tables
from dualwrite.config import Migration
from dualwrite.errors import UnmappableError
from dualwrite.mapping import build_mapping
from dualwrite.wire import Item, items_equal, key_id


def scan_all(ddb: Any, table: str) -> list[Item]:
    items: list[Item] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def expected_targets(ddb: Any, migration: Migration) -> dict[str, dict[str, Item]]:
    """target table -> key id -> expected item (quarantined items left out)."""
    out: dict[str, dict[str, Item]] = {}
    for route in migration.routes:
        desc = tables.describe(ddb, route.source)
        assert desc is not None
        mapping = build_mapping(route.mapping, tables.key_schema_of(desc))
        names = mapping.target_key.names
        expected = out.setdefault(route.target, {})
        groups: dict[str, tuple[dict[str, Any], list[Item]]] = {}
        for item in scan_all(ddb, route.source):
            try:
                target = mapping.transform(item)
            except UnmappableError:
                target = None
            if target is not None:
                expected[key_id({n: target[n] for n in names})] = target
            group = mapping.group_of(item)
            if group is not None:
                groups.setdefault(key_id({"g": group}), (group, []))[1].append(item)
        for group, members in groups.values():
            derived = mapping.derive(group, members)
            if derived is not None:
                expected[key_id({n: derived[n] for n in names})] = derived
    return out


def parity_problems(ddb: Any, migration: Migration) -> list[str]:
    """Human-readable differences between every target and the mapping of its sources."""
    problems: list[str] = []
    for target, expected in expected_targets(ddb, migration).items():
        desc = tables.describe(ddb, target)
        assert desc is not None
        names = tables.key_schema_of(desc).names
        actual = {key_id({n: it[n] for n in names}): it for it in scan_all(ddb, target)}
        for kid in expected.keys() - actual.keys():
            problems.append(f"{target}: missing {kid}")
        for kid in actual.keys() - expected.keys():
            problems.append(f"{target}: extra {kid}")
        for kid in expected.keys() & actual.keys():
            if not items_equal(expected[kid], actual[kid]):
                problems.append(f"{target}: mismatched {kid}")
    return sorted(problems)
