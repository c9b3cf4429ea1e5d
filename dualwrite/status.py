"""`dualwrite status`: where every route stands, gathered from the control table, the
tables' streams, Lambda's event source mappings and CloudWatch.

The summaries of checkpoints (status_report) and metric results are pure functions; `gather`
does the reads and assembles a typed StatusReport (status_report), JSON only at the CLI.
Nothing here prints item contents: quarantine entries show route, id, reason and time only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from dualwrite import metrics
from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.aws.errors import aws_call
from dualwrite.aws.streams import EventSourceMapping, event_source_mappings
from dualwrite.config import Migration
from dualwrite.control import ControlStore, QuarantineEntry, RoutePhase
from dualwrite.cutover.decommission import record_of
from dualwrite.errors import AwsError, EndpointError
from dualwrite.jsondoc import JsonObject
from dualwrite.reverse.direction import Direction, Flow
from dualwrite.status_report import (
    QuarantineView,
    RouteStatus,
    StatusReport,
    summarize_segments,
    summarize_shards,
)
from dualwrite.wire import Key, from_lambda_json, to_lambda_json

#: metrics read back per route, with the statistic a dashboard or alarm would show for them
READ_BACK: dict[str, str] = {
    metrics.PARITY_PERCENT: "Minimum",
    metrics.PARITY_MISSING: "Maximum",
    metrics.PARITY_EXTRA: "Maximum",
    metrics.PARITY_MISMATCHED: "Maximum",
    metrics.REPLICATION_LAG_MS: "Maximum",
    metrics.REPLICATED_RECORDS: "Sum",
    metrics.QUARANTINED: "Sum",
    metrics.TTL_DELETES: "Sum",
}
METRIC_PERIOD_S = 60
METRIC_WINDOW = timedelta(hours=3)
LATEST_QUARANTINE = 10
#: foreign writes listed per route (all are counted)
FOREIGN_LISTED = 10


# --- pure summaries (summarize_segments, summarize_shards: status_report) ----------------
def _is_av(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1


def source_key_from_record(record: Any, key_names: Sequence[str]) -> Key | None:
    """The source key inside a quarantined item or stream record, or None.

    Stream records (Lambda JSON) carry it in dynamodb.Keys or the images; the backfill keeps
    the item itself; other writers may wrap it under item/key.
    """
    if not isinstance(record, Mapping) or not key_names:
        return None
    stream = record.get("dynamodb")
    places: list[Any] = []
    if isinstance(stream, Mapping):
        places += [stream.get("Keys"), stream.get("NewImage"), stream.get("OldImage")]
    for name in ("Keys", "keys", "Key", "key", "item", "Item", "NewImage", "OldImage", "image"):
        places.append(record.get(name))
    places.append(record)
    for place in places:
        if isinstance(place, Mapping) and all(_is_av(place.get(n)) for n in key_names):
            return {n: from_lambda_json(place[n]) for n in key_names}
    return None


def _stream_keys(record: Any) -> JsonObject | None:
    """The Keys of a stream record (Lambda JSON) that holds no source key: a target-stream
    record quarantined by reverse replication, keyed in the target."""
    stream = record.get("dynamodb") if isinstance(record, Mapping) else None
    keys = stream.get("Keys") if isinstance(stream, Mapping) else None
    if isinstance(keys, Mapping) and keys and all(_is_av(v) for v in keys.values()):
        return dict(keys)
    return None


def quarantine_view(entry: QuarantineEntry, key_names: Sequence[str] = ()) -> QuarantineView:
    """A quarantine entry with its source key but never the record (it may hold personal
    data such as emails)."""
    key = source_key_from_record(entry.record, key_names) if key_names else None
    return QuarantineView(
        id=entry.id,
        route=entry.route,
        key=to_lambda_json(key) if key is not None else _stream_keys(entry.record),
        reason=entry.reason,
        source=entry.source,
        at=entry.at,
        resolved=entry.resolved,
        resolved_at=entry.resolved_at,
        resolution=entry.resolution,
    )


def quarantine_entry(entry: QuarantineEntry, key_names: Sequence[str] = ()) -> JsonObject:
    """The JSON of quarantine_view (`quarantine --json` prints it)."""
    return quarantine_view(entry, key_names).to_json()


def source_key_names(migration: Migration, clients: Clients) -> dict[str, tuple[str, ...]]:
    """Each route's source key attribute names (routes whose source is gone are left out)."""
    out: dict[str, tuple[str, ...]] = {}
    for route in migration.routes:
        desc = tables.describe(clients.dynamodb, route.source)
        if desc is not None:
            out[route.name] = tables.key_schema_of(desc).names
    return out


def metric_queries(
    namespace: str, routes: Sequence[str], names: Mapping[str, str] = READ_BACK
) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str]]]:
    """GetMetricData queries for each route and metric, and query id -> (route, metric)."""
    queries: list[dict[str, Any]] = []
    index: dict[str, tuple[str, str]] = {}
    for i, route in enumerate(routes):
        for j, (name, stat) in enumerate(names.items()):
            qid = f"r{i}m{j}"
            index[qid] = (route, name)
            queries.append(
                {
                    "Id": qid,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": name,
                            "Dimensions": [{"Name": "Route", "Value": route}],
                        },
                        "Period": METRIC_PERIOD_S,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
            )
    return queries, index


def latest_values(
    results: Iterable[Mapping[str, Any]], index: Mapping[str, tuple[str, str]]
) -> dict[str, dict[str, tuple[float, datetime]]]:
    """route -> metric -> (latest value, its period's timestamp)."""
    out: dict[str, dict[str, tuple[float, datetime]]] = {}
    for res in results:
        where = index.get(str(res.get("Id")))
        points = list(zip(res.get("Timestamps") or [], res.get("Values") or [], strict=False))
        if where is None or not points:
            continue
        when, value = max(points, key=lambda p: p[0])
        out.setdefault(where[0], {})[where[1]] = (float(value), when)
    return out


# --- reads ------------------------------------------------------------------------------------
def read_metrics(
    cloudwatch: Any, namespace: str, routes: Sequence[str], now: datetime
) -> dict[str, dict[str, tuple[float, datetime]]]:
    """Latest datapoint of each read-back metric per route (one GetMetricData call per 500)."""
    queries, index = metric_queries(namespace, routes)
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=2)
    start = end - METRIC_WINDOW
    results: list[dict[str, Any]] = []
    for first in range(0, len(queries), 500):
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries[first : first + 500],
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampDescending",
        }
        while True:
            with aws_call("GetMetricData"):
                response = cloudwatch.get_metric_data(**kwargs)
            results += response.get("MetricDataResults", [])
            token = response.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
    return latest_values(results, index)


def _decommissioned_at(store: ControlStore, table: str) -> str | None:
    """When decommission deleted the table (its record; a killed run's: the next finishes
    it), None when it did not."""
    record = record_of(store, table)
    if record is None:
        return None
    return record.deleted_at or "pending (run dualwrite decommission again to finish it)"


def gather(
    migration: Migration,
    clients: Clients,
    store: ControlStore,
    *,
    now: Callable[[], float] = time.time,
) -> StatusReport:
    """Everything `status` shows (its JSON: StatusReport.to_json)."""
    at = datetime.fromtimestamp(now(), UTC)
    notes: list[str] = []
    # before `prepare` there is no control table: show what can be shown, and say so
    control = tables.describe(clients.dynamodb, migration.control_table) is not None
    if not control:
        notes.append(
            f"control table {migration.control_table} does not exist yet: run `dualwrite prepare`"
        )
    unresolved = store.quarantined() if control else []
    by_route: dict[str, int] = {}
    for entry in unresolved:
        by_route[entry.route] = by_route.get(entry.route, 0) + 1
    latest = sorted(unresolved, key=lambda e: e.at or "", reverse=True)

    names = [r.name for r in migration.routes]
    try:
        read_back = read_metrics(clients.cloudwatch, migration.metrics_namespace, names, at)
    except (AwsError, EndpointError) as exc:
        read_back = {}
        notes.append(f"metrics could not be read: {exc}")

    routes: list[RouteStatus] = []
    key_names: dict[str, tuple[str, ...]] = {}
    for route in migration.routes:
        info = tables.info(clients.dynamodb, route.source)
        if info is not None:
            key_names[route.name] = info.key.names
        stream_arn = info.stream_arn if info else None
        shards = [c.to_json() for c in store.shards(stream_arn)] if stream_arn and control else []
        mappings: list[EventSourceMapping] = []
        if stream_arn:
            try:
                mappings = event_source_mappings(clients.lambda_, stream_arn)
            except (AwsError, EndpointError) as exc:
                notes.append(f"{route.name}: event source mappings could not be listed: {exc}")
        phase = store.phase(route.name) if control else RoutePhase()
        recorded = store.last_reconcile(route.name) if control else None
        age = round(now() - recorded.at, 1) if recorded is not None and recorded.at > 0 else None
        values = read_back.get(route.name, {})
        direction = store.direction(route.name) if control else Direction()
        foreign = store.foreign_writes(route.name, unresolved_only=True) if control else []
        reverse = None
        if direction.switched_at is not None:
            target = tables.info(clients.dynamodb, route.target)
            arn = target.stream_arn if target else None
            reverse = summarize_shards(arn, [c.to_json() for c in store.shards(arn)] if arn else [])
        routes.append(
            RouteStatus(
                route=route.name,
                source=route.source,
                target=route.target,
                mapping=str(route.mapping),
                source_exists=info is not None,
                phase=phase.phase.value,
                phase_detail=phase.to_json(),
                backfill=summarize_segments(
                    [s.to_json() for s in store.segments(route.name)] if control else []
                ),
                replication=summarize_shards(stream_arn, shards),
                event_source_mappings=tuple(mappings),
                quarantined=by_route.get(route.name, 0),
                last_reconcile=recorded,
                reconcile_age_s=age,
                metrics={n: values[n][0] if n in values else None for n in READ_BACK},
                metrics_at={
                    name: values[name][1].isoformat() for name in READ_BACK if name in values
                },
                direction=direction.direction.value,
                switched_at=direction.switched_at,
                drain_pending=not direction.old_drained,
                switching_back_at=(
                    direction.next_at if direction.direction is Flow.REVERSE else None
                ),
                cutting_over_at=direction.next_at if direction.direction is Flow.FORWARD else None,
                reverse_replication=reverse,
                foreign_writes=len(foreign),
                foreign_keys=tuple(w.to_json() for w in foreign[:FOREIGN_LISTED]),
                source_decommissioned_at=_decommissioned_at(store, route.source)
                if info is None and control
                else None,
            )
        )
    return StatusReport(
        quarantined=len(unresolved),
        quarantine=tuple(
            quarantine_view(e, key_names.get(e.route, ())) for e in latest[:LATEST_QUARANTINE]
        ),
        routes=tuple(routes),
        metrics_namespace=migration.metrics_namespace,
        at=at.isoformat(),
        notes=tuple(notes),
    )
