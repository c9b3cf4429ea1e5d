"""`preview`: a few source items of each route beside what the mapping makes of them.

Reads only (DescribeTable, one Scan page per route); writes nothing and logs no item. The
judging is pure (`preview_items`); `preview_routes` reads the samples.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dualwrite.aws import tables
from dualwrite.aws.dynamo import scan_pages
from dualwrite.aws.sampling import target_definition
from dualwrite.config import Migration
from dualwrite.errors import ConfigError, UnmappableError
from dualwrite.jsondoc import JsonObject
from dualwrite.mapping import checked_mapping
from dualwrite.mapping.base import Mapping
from dualwrite.wire import Item, items_equal, to_lambda_json


@dataclass(frozen=True)
class Sample:
    """One source item, its target item or quarantine reason, and the inverse's verdict."""

    source: Item
    target: Item | None
    reason: str | None  # why it is quarantined; None when it maps
    #: inverse(target, source) == source; None when the mapping has no inverse (or the
    #: item is quarantined)
    round_trip: bool | None
    round_trip_problem: str | None = None

    def to_json(self) -> JsonObject:
        return {
            "source": to_lambda_json(self.source),
            "target": None if self.target is None else to_lambda_json(self.target),
            "quarantined": self.reason is not None,
            "reason": self.reason,
            "round_trip": self.round_trip,
            "round_trip_problem": self.round_trip_problem,
        }


@dataclass(frozen=True)
class RoutePreview:
    route: str
    source: str
    target: str
    mapping: str
    has_inverse: bool
    samples: tuple[Sample, ...]
    source_key: tuple[str, ...] = ()
    target_key: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        return {
            "route": self.route,
            "source": self.source,
            "target": self.target,
            "mapping": self.mapping,
            "has_inverse": self.has_inverse,
            "samples": [s.to_json() for s in self.samples],
        }


def preview_item(mapping: Mapping, item: Item) -> Sample:
    """What the mapping makes of one source item. Pure."""
    try:
        target = mapping.transform(item)
    except UnmappableError as exc:
        return Sample(item, None, exc.reason, None)
    if not mapping.has_inverse:
        return Sample(item, target, None, None)
    try:
        back = mapping.inverse(target, item)
    except UnmappableError as exc:
        return Sample(item, target, None, False, exc.reason)
    if items_equal(back, item):
        return Sample(item, target, None, True)
    differ = sorted(
        n for n in back.keys() | item.keys() if n not in back or n not in item or back[n] != item[n]
    )
    return Sample(item, target, None, False, f"attribute(s) {', '.join(differ)} come back changed")


def preview_items(mapping: Mapping, items: Iterable[Item]) -> tuple[Sample, ...]:
    return tuple(preview_item(mapping, item) for item in items)


def preview_routes(
    migration: Migration, ddb: Any, route: str | None, limit: int
) -> list[RoutePreview]:
    """Up to `limit` items of each route's source (one Scan page), previewed."""
    out = []
    for r in migration.routes_named(route):
        desc = tables.describe(ddb, r.source)
        if desc is None:
            raise ConfigError(f"route {r.name}: source table {r.source} does not exist")
        target_key = tables.key_schema_or_none(target_definition(ddb, migration, r, desc))
        mapping = checked_mapping(r.name, r.mapping, tables.key_schema_of(desc), target_key)
        page = next(scan_pages(ddb, r.source, limit=limit), None)
        items = page.items[:limit] if page is not None else []
        out.append(
            RoutePreview(
                r.name,
                r.source,
                r.target,
                str(r.mapping),
                mapping.has_inverse,
                preview_items(mapping, items),
                mapping.source_key.names,
                mapping.target_key.names,
            )
        )
    return out
