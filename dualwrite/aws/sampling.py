"""The adapter behind the backfill estimate: DescribeTable of a route's source and target, and
one sampled Scan page of the source, mapped through the route (dualwrite.estimate)."""

from __future__ import annotations

from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.aws.dynamo import scan_pages
from dualwrite.config import Migration, Route
from dualwrite.errors import ConfigError
from dualwrite.estimate import Estimate, estimate, indexes_of, sample_of, write_budget
from dualwrite.mapping import build_mapping, is_identity

#: one page of the backfill's own size (DynamoDB also stops a page at 1 MB)
SAMPLE_LIMIT = 1000


def target_definition(
    clients: Clients, migration: Migration, route: Route, source: dict[str, Any]
) -> dict[str, Any]:
    """The target as it is, or as prepare will make it (declared, or cloned from the source)."""
    described = tables.describe(clients.dynamodb, route.target)
    if described is not None:
        return described
    declared = migration.targets.get(route.target)
    if declared is not None:
        return tables.declared_definition(route.target, declared)
    return source if is_identity(route.mapping) else {}


def estimate_route(
    clients: Clients, migration: Migration, route: Route, *, max_wcu: float | None = None
) -> Estimate:
    ddb = clients.dynamodb
    source = tables.describe(ddb, route.source)
    if source is None:
        raise ConfigError(f"route {route.name}: source table {route.source} does not exist")
    mapping = build_mapping(route.mapping, tables.key_schema_of(source))
    target = target_definition(clients, migration, route, source)
    page = next(
        scan_pages(ddb, route.source, limit=SAMPLE_LIMIT, extra={"ReturnConsumedCapacity": "NONE"})
    )
    sample = sample_of(page.items, mapping, indexes_of(target), complete=page.last_key is None)
    return estimate(
        sample,
        described_items=int(source.get("ItemCount", 0) or 0),
        described_bytes=int(source.get("TableSizeBytes", 0) or 0),
        budget=write_budget(target, max_wcu),
        prices=migration.pricing.prices(),
    )


def estimate_routes(
    clients: Clients, migration: Migration, names: list[str] | None = None, **options: Any
) -> dict[str, Estimate]:
    routes = migration.routes if names is None else [migration.route(n) for n in names]
    return {r.name: estimate_route(clients, migration, r, **options) for r in routes}
