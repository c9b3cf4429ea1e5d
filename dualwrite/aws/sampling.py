"""The adapter behind the backfill estimate: DescribeTable of a route's source and target, and
one sampled Scan page of the source, mapped through the route (dualwrite.estimate)."""

from __future__ import annotations

from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.aws.dynamo import scan_pages
from dualwrite.config import Migration, Route
from dualwrite.errors import ConfigError
from dualwrite.estimate import (
    Estimate,
    count_is_stale,
    estimate,
    indexes_of,
    sample_of,
    write_budget,
)
from dualwrite.mapping import checked_mapping, is_identity

#: one page of the backfill's own size (DynamoDB also stops a page at 1 MB)
SAMPLE_LIMIT = 1000
#: a table bigger than the sample whose ItemCount is below what the sample saw (a new table:
#: DescribeTable refreshes it only every few hours) is counted from one scan segment of this
#: many, up to EXTRAPOLATION_PAGES pages, scaled up
EXTRAPOLATION_SEGMENTS = 16
EXTRAPOLATION_PAGES = 4


def extrapolated_items(client: Any, table: str) -> int:
    """Segment 0's items times the segment count: a parallel scan spreads items over its
    segments by key hash. A lower bound when the segment is longer than the pages read."""
    seen = 0
    pages = scan_pages(
        client,
        table,
        segment=0,
        total_segments=EXTRAPOLATION_SEGMENTS,
        limit=SAMPLE_LIMIT,
        extra={"ReturnConsumedCapacity": "NONE"},
    )
    for _, page in zip(range(EXTRAPOLATION_PAGES), pages, strict=False):
        seen += len(page.items)
    return seen * EXTRAPOLATION_SEGMENTS


def target_definition(
    ddb: Any, migration: Migration, route: Route, source: dict[str, Any]
) -> dict[str, Any]:
    """The target as it is, or as prepare will make it (declared, or cloned from the source;
    {}: made from the mapping's key)."""
    described = tables.describe(ddb, route.target)
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
    target = target_definition(ddb, migration, route, source)
    mapping = checked_mapping(
        route.name, route.mapping, tables.key_schema_of(source), tables.key_schema_or_none(target)
    )
    page = next(
        scan_pages(ddb, route.source, limit=SAMPLE_LIMIT, extra={"ReturnConsumedCapacity": "NONE"})
    )
    sample = sample_of(page.items, mapping, indexes_of(target), complete=page.last_key is None)
    described = int(source.get("ItemCount", 0) or 0)
    if count_is_stale(sample, described):
        described = max(described, extrapolated_items(ddb, route.source))
    return estimate(
        sample,
        described_items=described,
        described_bytes=int(source.get("TableSizeBytes", 0) or 0),
        budget=write_budget(target, max_wcu),
        prices=migration.pricing.prices(),
    )


def estimate_routes(
    clients: Clients, migration: Migration, names: list[str] | None = None, **options: Any
) -> dict[str, Estimate]:
    routes = migration.routes if names is None else [migration.route(n) for n in names]
    return {r.name: estimate_route(clients, migration, r, **options) for r in routes}
