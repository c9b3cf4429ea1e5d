"""The Lambda entry point: `stream_replicator.handler.lambda_handler(event, context)`.

Configuration: `DUALWRITE_CONFIG` is the path of the migration file packaged with the
function; it is read at the first invocation (never at import) and cached for the container.
`DUALWRITE_CONTROL_TABLE` optionally overrides the control table. boto3's own
`AWS_ENDPOINT_URL` points the function at an emulator.

The route of each record comes from its eventSourceARN's table name; a record of a table no
route reads fails the whole invocation (loudly, never a silent skip). The response is the
partial batch response of ReportBatchItemFailures.

Powertools Logger, Metrics (EMF) and Tracer live here, at the entry point only; the work is
done by batch.process_records, which the local runner calls too.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from dualwrite import metrics as names
from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.config import load_migration
from dualwrite.control import ControlStore
from dualwrite.errors import ConfigError
from stream_replicator.apply import BatchResult, Replicator, metric_values
from stream_replicator.batch import process_records

SERVICE = "dualwrite-replicator"

logger = Logger(service=SERVICE)
metrics = Metrics()
tracer = Tracer(service=SERVICE)

_cache: dict[tuple[str | None, ...], Replicator] = {}
_installed: list[Replicator] = []


def replicator() -> Replicator:
    """The replicator of this container, built from the environment at first use."""
    if _installed:
        return _installed[0]
    env = os.environ
    path = env.get("DUALWRITE_CONFIG")
    if not path:
        raise ConfigError(
            "DUALWRITE_CONFIG is not set: it must name the migration file packaged with the "
            "function (e.g. DUALWRITE_CONFIG=migrations/coretable.yaml)"
        )
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    control = env.get("DUALWRITE_CONTROL_TABLE")
    key = (path, control, region, env.get("AWS_ENDPOINT_URL"))
    cached = _cache.get(key)
    if cached is not None:
        return cached
    migration = load_migration(path)
    clients = Clients(AwsSettings(region=region))
    store = ControlStore(clients.dynamodb, control or migration.control_table)
    built = Replicator(migration, clients, store)
    _cache.clear()
    _cache[key] = built
    return built


def install(replicator: Replicator) -> None:
    """Use this replicator for the following invocations (benchmarks, tests)."""
    _installed[:] = [replicator]


def reset() -> None:
    """Forget the cached or installed replicator (tests switch files and endpoints)."""
    _cache.clear()
    _installed.clear()


def _emit(result: BatchResult, namespace: str) -> None:
    """EMF metrics, one dimension (Route). The decorated handler's Metrics flushes the first
    route; an event that spans several routes (rare) gets one more blob per route."""
    for i, (route, counts) in enumerate(result.routes.items()):
        provider = metrics.provider if i == 0 else AmazonCloudWatchEMFProvider(namespace=namespace)
        # POWERTOOLS_SERVICE_NAME would add a "service" dimension: keep Route the only one
        provider.service = ""
        provider.add_dimension(name="Route", value=route)
        for name, value in metric_values(counts).items():
            provider.add_metric(name=name, unit=names.unit_of(name), value=value)
        if i:
            provider.flush_metrics()


@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rep = replicator()
    namespace = rep.migration.metrics_namespace
    metrics.provider.namespace = namespace
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        logger.append_keys(aws_request_id=request_id)
    records = event.get("Records") or []
    processed = process_records(rep, records, context)
    _emit(processed.result, namespace)
    for route, counts in processed.result.routes.items():
        # counts only: logs never carry item contents
        logger.info(
            "batch applied",
            extra={
                "route": route,
                "records": counts.records,
                "applied": counts.applied,
                "failed": counts.failed,
                "held": counts.held,
                "quarantined": counts.quarantined,
                "lag_ms": counts.lag_ms,
            },
        )
    return processed.response
