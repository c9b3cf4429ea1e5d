"""Metric names (DESIGN.md section 6) and CloudWatch publishing for the CLI.

Lambdas emit the same names with Powertools Metrics (EMF); the CLI calls PutMetricData.
Namespace from the migration file, one dimension: Route.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dualwrite.aws.errors import aws_call

REPLICATED_RECORDS = "ReplicatedRecords"
REPLICATION_FAILURES = "ReplicationFailures"
QUARANTINED = "Quarantined"
REPLICATION_LAG_MS = "ReplicationLagMs"
BACKFILL_ITEMS = "BackfillItems"
PARITY_MISSING = "ParityMissing"
PARITY_EXTRA = "ParityExtra"
PARITY_MISMATCHED = "ParityMismatched"
PARITY_PERCENT = "ParityPercent"
UNKNOWN_ROLE = "UnknownRole"

UNITS: dict[str, str] = {
    REPLICATION_LAG_MS: "Milliseconds",
    PARITY_PERCENT: "Percent",
}

ALL = (
    REPLICATED_RECORDS,
    REPLICATION_FAILURES,
    QUARANTINED,
    REPLICATION_LAG_MS,
    BACKFILL_ITEMS,
    PARITY_MISSING,
    PARITY_EXTRA,
    PARITY_MISMATCHED,
    PARITY_PERCENT,
    UNKNOWN_ROLE,
)


def unit_of(name: str) -> str:
    return UNITS.get(name, "Count")


def publish(
    cloudwatch: Any,
    namespace: str,
    route: str,
    values: Mapping[str, float],
    *,
    timestamp: datetime | None = None,
) -> None:
    """PutMetricData for one route (at most 1,000 values per call; we send a handful)."""
    when = timestamp or datetime.now(UTC)
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": "Route", "Value": route}],
            "Timestamp": when,
            "Value": float(value),
            "Unit": unit_of(name),
        }
        for name, value in values.items()
    ]
    if not data:
        return
    with aws_call("PutMetricData"):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
