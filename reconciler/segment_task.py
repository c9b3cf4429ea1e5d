"""Lambda entry points of the reconcile state machine (infra/statemachine/reconcile.asl.yaml).

- plan_handler({"input": {"route"?, "total_segments"?, "settle_s"?}, "execution": ARN})
  takes the lock and plans: {"skip": false, "run_id", "phase": "digest", "units": [0..n-1]},
  or {"skip": true, "running": ARN} when another execution holds the lock.
- segment_handler({"run_id", "phase", "unit"}) runs one unit (a Distributed Map child) until
  done or until the invocation's remaining time falls below the margin
  (DUALWRITE_RECONCILE_MARGIN_MS via dualwrite.runtime, default 60 s: the re-reads of the
  last page's candidates and the record's save fit in it): {"done": bool}; the map's loop
  continues it.
- combine_handler({"run_id"}) adds the digests up: {"exact": bool, "units": [...], ...}.
- finish_handler({"run_id", "execution", "failed"?}) stores each route's result as
  `dualwrite reconcile` does, emits ParityMissing / ParityExtra / ParityMismatched /
  ParityPercent per route (EMF, dimension Route only) and releases the lock; with
  "failed": true it only releases the lock.

The container's configuration (dualwrite.runtime: the migration file at DUALWRITE_CONFIG) is
read at the first invocation, never at import; tests pass `runtime=`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from dualwrite import metrics
from dualwrite.control.reconcile_results import ReconcileRecord
from dualwrite.errors import ConfigError
from dualwrite.runtime import LambdaEvent, LambdaResponse, Runtime, shared
from reconciler import sfn_lock
from reconciler.sfn_steps import Steps, deadline_after

SERVICE = "dualwrite-reconcile"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)


def steps(rt: Runtime) -> Steps:
    """The container's steps (resolved routes kept between invocations)."""
    return rt.part("reconcile-steps", lambda: Steps.of(rt.migration, rt.clients, rt.store))


def _str(event: LambdaEvent, key: str) -> str:
    value = event.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"event has no {key!r}")
    return value


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ConfigError(f"{key!r} must be a non-negative integer, got {value!r}")
    return int(value)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def plan_handler(
    event: LambdaEvent, context: Any, runtime: Runtime | None = None
) -> LambdaResponse:
    st = steps(runtime or shared())
    given = event.get("input") or {}
    if not isinstance(given, dict):
        raise ConfigError('the execution\'s input must be an object: {} or {"route": R}')
    route = given.get("route")
    if route is not None and (not isinstance(route, str) or not route):
        raise ConfigError("'route' must name a route of the migration file")
    total = given.get("total_segments")
    segments = _int(total, "total_segments") if total is not None else None
    if segments is not None and segments < 1:
        raise ConfigError("total_segments must be at least 1")
    plan = st.begin(
        execution=_str(event, "execution"),
        is_running=sfn_lock.execution_running(st.clients.client("stepfunctions")),
        route=route,
        total_segments=segments,
        settle_s=float(given.get("settle_s", 1.0)),
    )
    if plan["skip"]:
        logger.info("another reconcile is running", extra={"running": plan["running"]})
    else:
        logger.info(
            "reconcile planned", extra={"run_id": plan["run_id"], "units": len(plan["units"])}
        )
    return plan


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def segment_handler(
    event: LambdaEvent, context: Any, runtime: Runtime | None = None
) -> LambdaResponse:
    rt = runtime or shared()
    remaining_s = float(context.get_remaining_time_in_millis()) / 1000.0
    result = steps(rt).run_unit(
        _str(event, "run_id"),
        _str(event, "phase"),
        _int(event.get("unit"), "unit"),
        should_stop=deadline_after(remaining_s - rt.reconcile_margin_ms / 1000.0),
    )
    logger.info(
        "unit done" if result["done"] else "unit paused before the time limit", extra=result
    )
    return {"done": result["done"]}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def combine_handler(
    event: LambdaEvent, context: Any, runtime: Runtime | None = None
) -> LambdaResponse:
    out = steps(runtime or shared()).combine(_str(event, "run_id"))
    logger.info("digests combined", extra={"exact_buckets": out["exact_buckets"]})
    return out


def emit_parity(namespace: str, results: list[ReconcileRecord]) -> None:
    """One EMF blob per route (each carries its own Route dimension)."""
    from reconciler.job import metric_values

    for result in results:
        metrics.emit(namespace, result.route, metric_values(result))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def finish_handler(
    event: LambdaEvent, context: Any, runtime: Runtime | None = None
) -> LambdaResponse:
    st = steps(runtime or shared())
    execution = _str(event, "execution")
    if event.get("failed"):
        released = st.abandon(execution)
        logger.warning(
            "reconcile failed", extra={"error": event.get("error"), "released": released}
        )
        return {"released": released}
    results = st.finish(_str(event, "run_id"), execution)
    emit_parity(st.migration.metrics_namespace, results)
    summary = [
        {
            "route": r.route,
            "parity": r.parity,
            "parity_percent": r.parity_percent,
            **r.counts(),
        }
        for r in results
    ]
    for entry in summary:
        logger.info("reconcile complete", extra=entry)
    return {"parity": all(r.parity for r in results), "routes": summary}
