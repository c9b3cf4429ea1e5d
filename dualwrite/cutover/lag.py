"""Has replication caught up? One fact per route, decided honestly from what can be seen.

- Local runner (no Lambda event source mapping on the source stream): read the stream
  itself. For each shard, start after the replicator's checkpoint
  (ControlStore.shard(stream ARN, shard id): "sequence_number", "done") or at the trim
  horizon when there is none, and look at the first record not yet processed. Records are in
  order per shard, so that record is the oldest change still waiting; its age is the lag.
  No waiting record on any shard means caught up.
- AWS (the stream has event source mappings): every mapping must be Enabled and its
  LastProcessingResult not a PROBLEM; the lag is the newest IteratorAge (AWS/Lambda, Maximum,
  per function) of the last 15 minutes, else our own ReplicationLagMs (Maximum, per Route).
  With neither datapoint, the function was not invoked in 15 minutes: an enabled mapping
  invokes as soon as records arrive, so nothing is waiting, and the fact says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dualwrite.aws import streams as streams_api
from dualwrite.aws.clients import Clients
from dualwrite.aws.errors import aws_call
from dualwrite.aws.streams import EventSourceMapping, list_shards
from dualwrite.aws.tables import TableInfo
from dualwrite.control import ControlStore
from dualwrite.cutover import streams
from dualwrite.errors import AwsError, NotFoundError
from dualwrite.jsondoc import JsonObject
from dualwrite.metrics import REPLICATION_LAG_MS

METRIC_WINDOW_S = 15 * 60


@dataclass(frozen=True)
class ReplicationFact:
    route: str
    method: str  # "stream" (local runner) or "event source mapping" (AWS)
    pending_age_s: float | None  # age of the oldest change not yet applied; None: none
    problem: str | None = None  # replication cannot be judged or is not running
    detail: str = ""

    def to_json(self) -> JsonObject:
        return {
            "route": self.route,
            "method": self.method,
            "pending_age_s": None if self.pending_age_s is None else round(self.pending_age_s, 3),
            "problem": self.problem,
            "detail": self.detail,
        }


def replication_fact(
    route: str,
    source: TableInfo | None,
    clients: Clients,
    store: ControlStore,
    namespace: str,
    now: float,
) -> ReplicationFact:
    if source is None:
        return ReplicationFact(route, "stream", None, "the source table does not exist")
    stream_arn = source.enabled_stream_arn
    if not stream_arn:
        return ReplicationFact(
            route, "stream", None, f"no stream on {source.name} (run dualwrite prepare)"
        )
    mappings = event_source_mappings(clients.lambda_, stream_arn)
    if mappings:
        return _mapping_fact(route, mappings, clients.cloudwatch, namespace, now)
    return _stream_fact(route, stream_arn, clients.streams, store, now)


def event_source_mappings(lambda_client: Any, stream_arn: str) -> list[EventSourceMapping]:
    """The mappings reading the stream; none when the stream (or its table) is gone."""
    try:
        return streams_api.event_source_mappings(lambda_client, stream_arn)
    except NotFoundError:
        return []


def _stream_fact(
    route: str, stream_arn: str, streams_client: Any, store: ControlStore, now: float
) -> ReplicationFact:
    oldest: float | None = None
    checked = 0
    for shard in list_shards(streams_client, stream_arn):
        shard_id = shard["ShardId"]
        checkpoint = store.shard(stream_arn, shard_id)
        if checkpoint is not None and checkpoint.done:
            continue
        checked += 1
        after = checkpoint.sequence_number if checkpoint is not None else None
        try:
            first = next(
                iter(streams.records(streams_client, stream_arn, shard_id, after=after, limit=1)),
                None,
            )
        except AwsError as exc:
            if exc.code == "TrimmedDataAccessException":
                return ReplicationFact(
                    route,
                    "stream",
                    None,
                    f"shard {shard_id}: the checkpoint is older than the stream's retention "
                    "(changes were lost: run a backfill and a reconcile with --repair)",
                )
            raise
        if first is not None:
            t = streams.record_time(first)
            oldest = t if oldest is None else min(oldest, t)
    if oldest is None:
        return ReplicationFact(
            route, "stream", None, detail=f"no unprocessed record on {checked} open shard(s)"
        )
    age = max(0.0, now - oldest)
    return ReplicationFact(
        route, "stream", age, detail=f"oldest unprocessed record is {age:.0f}s old"
    )


def _mapping_fact(
    route: str,
    mappings: list[EventSourceMapping],
    cloudwatch: Any,
    namespace: str,
    now: float,
) -> ReplicationFact:
    method = "event source mapping"
    for m in mappings:
        if m.state != "Enabled":
            return ReplicationFact(
                route, method, None, f"event source mapping {m.uuid} is {m.state}"
            )
        result = str(m.last_processing_result or "")
        if result.startswith("PROBLEM"):
            return ReplicationFact(route, method, None, f"event source mapping {m.uuid}: {result}")
    worst: float | None = None
    for m in mappings:
        ms = latest_maximum(
            cloudwatch, "AWS/Lambda", "IteratorAge", [("FunctionName", m.function_name)], now
        )
        if ms is not None:
            worst = ms if worst is None else max(worst, ms)
    source = "IteratorAge"
    if worst is None:
        worst = latest_maximum(cloudwatch, namespace, REPLICATION_LAG_MS, [("Route", route)], now)
        source = REPLICATION_LAG_MS
    if worst is None:
        return ReplicationFact(
            route,
            method,
            None,
            detail=f"{len(mappings)} mapping(s) enabled, not invoked in the last "
            f"{METRIC_WINDOW_S // 60} minutes: nothing waiting",
        )
    return ReplicationFact(route, method, worst / 1000.0, detail=f"{source} {worst:.0f} ms")


def latest_maximum(
    cloudwatch: Any,
    namespace: str,
    metric: str,
    dimensions: list[tuple[str, str]],
    now: float,
    window_s: int = METRIC_WINDOW_S,
) -> float | None:
    """The Maximum of the newest 1-minute datapoint in the window, or None without data."""
    end = datetime.fromtimestamp(now, UTC)
    with aws_call(f"GetMetricStatistics {metric}"):
        response = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": n, "Value": v} for n, v in dimensions],
            StartTime=end - timedelta(seconds=window_s),
            EndTime=end,
            Period=60,
            Statistics=["Maximum"],
        )
    points = sorted(response.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return float(points[-1]["Maximum"]) if points else None
