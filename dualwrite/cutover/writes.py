"""Has an old table been written since the cutover? (for decommission)

Two witnesses. The stream: any record newer than the cutover is a write (deletes made by
DynamoDB's TTL are not: they come from the service, not from a writer still using the table;
moto also records writes that change nothing, and those do count). In AWS a stream keeps 24
hours, and the observation window is longer, so any application record left in the stream is
a write since cutover; moto keeps everything, so times are compared. CloudWatch
ConsumedWriteCapacityUnits (AWS/DynamoDB, Sum): hourly sums from the first full hour after
the cutover (an hour that began before it would count writes made before it); absent
datapoints (moto, or a table never written) give no opinion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dualwrite.aws.clients import Clients
from dualwrite.aws.errors import aws_call
from dualwrite.aws.streams import list_shards
from dualwrite.aws.tables import TableInfo
from dualwrite.control import iso
from dualwrite.cutover import streams
from dualwrite.jsondoc import JsonObject

HOUR = 3600
DAY = 86400
MAX_DATAPOINTS = 1440


@dataclass(frozen=True)
class WritesFact:
    table: str
    first_write_after: float | None  # time of a stream record newer than the cutover
    cloudwatch_units: float | None  # ConsumedWriteCapacityUnits since then; None: no data
    problem: str | None = None  # the stream could not be read

    @property
    def written(self) -> bool:
        return self.first_write_after is not None or bool(self.cloudwatch_units)

    def to_json(self) -> JsonObject:
        return {
            "table": self.table,
            "first_write_after_cutover": None
            if self.first_write_after is None
            else iso(self.first_write_after),
            "cloudwatch_write_units": self.cloudwatch_units,
            "problem": self.problem,
        }


def writes_since(info: TableInfo, clients: Clients, since: float, now: float) -> WritesFact:
    table = info.name
    units = consumed_write_units(clients.cloudwatch, table, since, now)
    stream_arn = info.enabled_stream_arn
    if not stream_arn:
        return WritesFact(table, None, units, f"no stream on {table}: cannot prove it is unused")
    first: float | None = None
    for shard in list_shards(clients.streams, stream_arn):
        for record in streams.records(clients.streams, stream_arn, shard["ShardId"]):
            t = streams.record_time(record)
            if t > since and not streams.is_ttl_expiry(record):
                first = t if first is None else min(first, t)
                break
    return WritesFact(table, first, units)


def consumed_write_units(cloudwatch: Any, table: str, since: float, now: float) -> float | None:
    start = math.ceil(since / HOUR) * HOUR
    if now - start < HOUR:
        return None  # no full hour after the cutover yet: the stream is the witness
    period = HOUR if (now - start) / HOUR <= MAX_DATAPOINTS else DAY
    with aws_call("GetMetricStatistics ConsumedWriteCapacityUnits"):
        response = cloudwatch.get_metric_statistics(
            Namespace="AWS/DynamoDB",
            MetricName="ConsumedWriteCapacityUnits",
            Dimensions=[{"Name": "TableName", "Value": table}],
            StartTime=datetime.fromtimestamp(start, UTC),
            EndTime=datetime.fromtimestamp(now, UTC),
            Period=period,
            Statistics=["Sum"],
        )
    points = response.get("Datapoints", [])
    if not points:
        return None
    return float(sum(float(p.get("Sum", 0.0)) for p in points))
