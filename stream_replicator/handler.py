"""The Lambda entry point: `stream_replicator.handler.lambda_handler(event, context)`.

Configuration comes from the container's environment, read once at the first invocation
(dualwrite.runtime: `DUALWRITE_CONFIG`, `DUALWRITE_CONTROL_TABLE`, boto3's own
`AWS_ENDPOINT_URL`); tests and benchmarks pass `runtime=` instead.

The route of each record comes from its eventSourceARN's table name (a route's source, or a
route's target after a cutover: reverse replication, by key when routes share the target); a
record of a table no route reads or writes fails the whole invocation (loudly, never a silent
skip). The response is the
partial batch response of ReportBatchItemFailures.

Powertools Logger, Metrics (EMF, through dualwrite.metrics) and Tracer live here, at the
entry point only; the work is done by batch.process_records, which the local runner calls
too. Metrics count each record once, when its outcome is final (Processed.settled).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from dualwrite import metrics
from dualwrite.runtime import LambdaEvent, LambdaResponse, Runtime, shared
from stream_replicator.apply import Replicator
from stream_replicator.batch import process_records
from stream_replicator.results import metric_values

SERVICE = "dualwrite-replicator"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)


def replicator_of(runtime: Runtime) -> Replicator:
    """The container's replicator (its mappings and key schemas are cached across batches)."""
    return runtime.part(
        "replicator", lambda: Replicator(runtime.migration, runtime.clients, runtime.store)
    )


@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: LambdaEvent, context: Any, runtime: Runtime | None = None
) -> LambdaResponse:
    rt = runtime or shared()
    rep = replicator_of(rt)
    namespace = rt.migration.metrics_namespace
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        logger.append_keys(aws_request_id=request_id)
    processed = process_records(rep, event.get("Records") or [], context)
    for route, counts in processed.settled().items():
        metrics.emit(namespace, route, metric_values(counts))
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
                "ttl_deletes": counts.ttl_deletes,
                "reverse_replicated": counts.reverse_replicated,
                "foreign_writes": counts.foreign_writes,
                "unrepresentable": counts.unrepresentable,
                "waiting": counts.waiting,
                "skipped": counts.skipped,
                "lag_ms": counts.lag_ms,
            },
        )
    return processed.response
