"""Metric names (DESIGN.md section 6) and the one way dualwrite emits them.

Namespace from the migration file, one dimension: Route (a CloudWatch metric is identified by
all of its dimensions, so any other, such as the `service` Powertools adds when a service
name is set, would leave every alarm and the dashboard without data).

- `emit(namespace, route, values)`: EMF on stdout through Powertools' CloudWatch EMF provider,
  for the Lambda handlers (CloudWatch Logs turns it into metrics);
- `publish(cloudwatch, namespace, route, values)`: PutMetricData, for the CLI and the local
  runner (never EMF on a terminal).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dualwrite.aws.errors import aws_call

DIMENSION = "Route"

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
TTL_DELETES = "TtlDeletes"
# reverse replication after cutover (DESIGN.md section 8)
REVERSE_REPLICATED_RECORDS = "ReverseReplicatedRecords"
FOREIGN_WRITES = "ForeignWrites"
UNREPRESENTABLE = "Unrepresentable"

UNITS: dict[str, str] = {
    REPLICATION_LAG_MS: "Milliseconds",
    PARITY_PERCENT: "Percent",
}

#: what the replicator, the backfill and the reconciler emit today
EMITTED = (
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
    TTL_DELETES,
)

#: every name of DESIGN.md section 6
ALL = (*EMITTED, REVERSE_REPLICATED_RECORDS, FOREIGN_WRITES, UNREPRESENTABLE)


def unit_of(name: str) -> str:
    return UNITS.get(name, "Count")


def emit(namespace: str, route: str, values: Mapping[str, float]) -> None:
    """One EMF blob on stdout: these values of one route, dimension Route only."""
    if not values:
        return
    provider = _provider(namespace)
    provider.add_dimension(name=DIMENSION, value=route)
    for name, value in values.items():
        provider.add_metric(name=name, unit=unit_of(name), value=value)
    provider.flush_metrics()


@functools.lru_cache(maxsize=4)
def _provider(namespace: str) -> Any:
    """One Powertools EMF provider per namespace (each flush empties it), made at first use:
    the CLI never emits EMF and its start stays fast."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
        AmazonCloudWatchEMFProvider,
    )

    provider = AmazonCloudWatchEMFProvider(namespace=namespace)
    # POWERTOOLS_SERVICE_NAME would add a "service" dimension: keep Route the only one
    provider.service = ""
    return provider


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
            "Dimensions": [{"Name": DIMENSION, "Value": route}],
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
