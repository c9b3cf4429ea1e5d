"""How long and how much a route's backfill costs, before anything is copied. Pure.

From a sample of source items (one Scan page, see dualwrite.aws.sampling) mapped through the
route's mapping, scaled to the table's item count:

- write units: DynamoDB bills a write 1 unit per started KB of the item written, once for the
  table and once for each secondary index the item lands in (an index holds an item only
  when the item has the index's key attributes; its entry is the projected attributes);
- read units: a Scan reads eventually consistent, half a read unit per started 4 KB, counted
  over the bytes read (pages of up to 1 MB, so the rounding per page is negligible);
- seconds: the write units at a budget of write units per second (--max-wcu, else what the
  target table allows, see write_budget);
- cost: on-demand request prices (Prices; the migration file's `pricing:` overrides them).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dualwrite.errors import UnmappableError
from dualwrite.jsondoc import JsonObject
from dualwrite.mapping.base import Mapping
from dualwrite.wire import Item, item_size, key_id

KB = 1024
READ_UNIT_BYTES = 4 * KB
#: us-east-1 on-demand list prices (Standard table class) in USD per million request units,
#: as on https://aws.amazon.com/dynamodb/pricing/on-demand/ since the 2024-11-01 price cut
#: ($0.625 per million write request units, $0.125 per million read request units)
WRITE_USD_PER_MILLION = 0.625
READ_USD_PER_MILLION = 0.125
#: DynamoDB's default per-table quota of write request units per second (on-demand), the
#: ceiling when neither --max-wcu nor the table says less (Service Quotas, "Table-level
#: write throughput limit")
DEFAULT_TABLE_WRITE_UNITS = 40_000
#: the stream keeps changes 24 h; a backfill should leave a margin for replication to start
STREAM_RETENTION_S = 24 * 3600.0
RETENTION_SHARE = 0.8


@dataclass(frozen=True)
class Prices:
    write_usd_per_million: float = WRITE_USD_PER_MILLION
    read_usd_per_million: float = READ_USD_PER_MILLION


@dataclass(frozen=True)
class IndexShape:
    """A secondary index as far as write costs go: its key and what it projects."""

    name: str
    key: tuple[str, ...]
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    included: tuple[str, ...] = ()


def indexes_of(definition: MappingABC[str, Any]) -> list[IndexShape]:
    """The secondary indexes of a DescribeTable result or CreateTable definition."""
    out = []
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        for index in definition.get(kind) or []:
            projection = index.get("Projection") or {}
            out.append(
                IndexShape(
                    str(index["IndexName"]),
                    tuple(str(k["AttributeName"]) for k in index["KeySchema"]),
                    str(projection.get("ProjectionType", "ALL")),
                    tuple(str(a) for a in projection.get("NonKeyAttributes") or ()),
                )
            )
    return out


def write_budget(definition: MappingABC[str, Any] | None, max_wcu: float | None) -> float:
    """Write units per second the backfill can use: what the target table allows (its
    provisioned write capacity, else its on-demand maximum, else its warm throughput, else
    the default table quota), or --max-wcu when that is lower."""
    table = definition or {}
    billing = table.get("BillingMode") or (table.get("BillingModeSummary") or {}).get("BillingMode")
    provisioned = (table.get("ProvisionedThroughput") or {}).get("WriteCapacityUnits")
    limit = float(DEFAULT_TABLE_WRITE_UNITS)
    candidates = (
        None if billing == "PAY_PER_REQUEST" else provisioned,
        (table.get("OnDemandThroughput") or {}).get("MaxWriteRequestUnits"),
        (table.get("WarmThroughput") or {}).get("WriteUnitsPerSecond"),
    )
    for value in candidates:
        if isinstance(value, int | float) and value > 0:
            limit = float(value)
            break
    return min(limit, float(max_wcu)) if max_wcu else limit


def units(size: int, unit: int = KB) -> int:
    """Started units of `unit` bytes (at least 1)."""
    return max(1, math.ceil(size / unit))


def index_entry(
    item: MappingABC[str, Any], table_key: Sequence[str], index: IndexShape
) -> dict[str, Any] | None:
    """The attributes of an item an index stores, or None when the item is not in it."""
    if not all(name in item for name in index.key):
        return None
    if index.projection == "ALL":
        return dict(item)
    keep = set(table_key) | set(index.key)
    if index.projection == "INCLUDE":
        keep |= set(index.included)
    return {k: v for k, v in item.items() if k in keep}


def write_units_of(item: Item, table_key: Sequence[str], indexes: Sequence[IndexShape]) -> int:
    """Write units of putting one target item: the table, then each index it lands in."""
    total = units(item_size(item))
    for index in indexes:
        entry = index_entry(item, table_key, index)
        if entry is not None:
            total += units(item_size(entry))
    return total


@dataclass(frozen=True)
class Sample:
    """What a sample of source items turns into on the target."""

    source_items: int
    source_bytes: int
    target_items: int
    write_units: int
    #: the sample is the whole table (its Scan ended within the page)
    complete: bool


def sample_of(
    items: Sequence[Item],
    mapping: Mapping,
    indexes: Sequence[IndexShape],
    *,
    complete: bool,
) -> Sample:
    """Map a sample through the route: direct target items, and the derived item of each
    group seen (a group cut by the page's end is counted from its members in the page)."""
    names = mapping.target_key.names
    targets: list[Item] = []
    groups: dict[str, tuple[Any, list[Item]]] = {}
    for item in items:
        with contextlib.suppress(UnmappableError):  # a quarantined item is not written
            targets.append(mapping.transform(item))
        group = mapping.group_of(item)
        if group is not None:
            groups.setdefault(key_id({"g": group}), (group, []))[1].append(item)
    for group, members in groups.values():
        derived = mapping.derive(group, members)
        if derived is not None:
            targets.append(derived)
    return Sample(
        source_items=len(items),
        source_bytes=sum(item_size(it) for it in items),
        target_items=len(targets),
        write_units=sum(write_units_of(t, names, indexes) for t in targets),
        complete=complete,
    )


def count_is_stale(sample: Sample, described_items: int) -> bool:
    """DescribeTable's ItemCount cannot be trusted: the table goes on past the sample, yet
    the count is no more than the sample saw (a new table: the count is refreshed only every
    few hours)."""
    return not sample.complete and described_items <= sample.source_items


@dataclass(frozen=True)
class Estimate:
    items: int
    bytes: int
    write_units: int
    read_units: int
    backfill_seconds: float
    cost_usd: float
    #: items the estimate was scaled from, and whether they were the whole table
    sampled_items: int = 0
    exact: bool = False
    write_budget: float = 0.0

    def to_json(self) -> JsonObject:
        return asdict(self)

    @property
    def hours(self) -> float:
        return self.backfill_seconds / 3600


def estimate(
    sample: Sample,
    *,
    described_items: int,
    described_bytes: int,
    budget: float,
    prices: Prices = Prices(),
) -> Estimate:
    """Scale a sample to the table. DescribeTable's counts are refreshed every few hours (0 on
    a new or emulated table): the sample corrects them, and is exact when it saw everything."""
    items = sample.source_items if sample.complete else max(described_items, sample.source_items)
    if sample.source_items:
        scale = items / sample.source_items
        size = round(sample.source_bytes * scale)
        writes = math.ceil(sample.write_units * scale)
    else:  # nothing to sample: an empty table, or DescribeTable alone
        size, writes = (0, 0) if sample.complete else (described_bytes, 0)
    reads = math.ceil(size / READ_UNIT_BYTES / 2) if size else 0
    cost = writes * prices.write_usd_per_million / 1e6 + reads * prices.read_usd_per_million / 1e6
    return Estimate(
        items=items,
        bytes=size,
        write_units=writes,
        read_units=reads,
        backfill_seconds=round(writes / budget, 1) if budget > 0 else math.inf,
        cost_usd=round(cost, 6),
        sampled_items=sample.source_items,
        exact=sample.complete,
        write_budget=budget,
    )


def retention_limit_s(retention_s: float = STREAM_RETENTION_S) -> float:
    return retention_s * RETENTION_SHARE


def over_retention(est: Estimate, retention_s: float = STREAM_RETENTION_S) -> bool:
    return est.backfill_seconds > retention_limit_s(retention_s)


def wcu_to_fit(est: Estimate, retention_s: float = STREAM_RETENTION_S) -> int:
    """The smallest --max-wcu that brings the backfill within the retention share."""
    return math.ceil(est.write_units / retention_limit_s(retention_s))


def rate_text(wcu: float) -> str:
    """A write budget for people: 40,000 or 0.001."""
    return f"{wcu:,.0f}" if wcu >= 10 else f"{wcu:g}"


def refusal(route: str, est: Estimate, retention_s: float = STREAM_RETENTION_S) -> str:
    """The one line `backfill` prints when it refuses."""
    limit_h = retention_limit_s(retention_s) / 3600
    return (
        f"route {route}: the backfill would take about {est.hours:,.1f} h "
        f"({est.write_units:,} write units at {rate_text(est.write_budget)} WCU/s), over "
        f"{RETENTION_SHARE:.0%} of the stream's {retention_s / 3600:.0f} h retention "
        f"({limit_h:.1f} h): raise --max-wcu to at least {wcu_to_fit(est, retention_s):,}, run "
        "it on the backfill state machine (Step Functions, see README), or pass "
        "--accept-retention-risk"
    )
