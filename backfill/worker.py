"""Lambda entry points of the backfill state machine (Step Functions Distributed Map).

- plan_handler({"route": R, "total_segments": N?, "restart": bool?}) checks the route, marks
  it BACKFILLING and returns {"route": R, "total_segments": N, "segments": [{"route": R,
  "segment": i, "total_segments": N}, ...]} (a route with checkpoints keeps their N).
- lambda_handler({"route", "segment", "total_segments"}) copies one segment from its
  checkpoint and stops before the invocation's time runs out (remaining time below the
  safety margin, DUALWRITE_BACKFILL_MARGIN_MS, default 30 s, checked between pages): it
  returns {"done": false, ...} with the checkpoint saved, so the map's loop or retry calls it
  again and it continues; or {"done": true, "items_written": ...}.
- complete_handler({"route": R, "total_segments": N}) marks the route BACKFILLED when every
  segment is done (else raises BackfillIncompleteError so the state machine retries or
  fails) and enables the Lambda event source mappings on the route's source stream,
  returning {"route", "phase", "enabled_mappings": [uuids], "needs_repair"}.

The container's configuration (dualwrite.runtime: the migration file at DUALWRITE_CONFIG,
DUALWRITE_BACKFILL_MARGIN_MS) is read at the first invocation (never at import); boto3
resolves AWS_ENDPOINT_URL itself; tests pass `runtime=`. Powertools Logger and Tracer live
here, at the entry point only, and BackfillItems goes out as EMF through dualwrite.metrics
(dimension Route).
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger, Tracer

from backfill.lifecycle import complete_route, plan_route
from backfill.route import RouteJob, RouteSpec, check_control_table, check_route, cognito_names
from backfill.segment import copy_segment
from dualwrite import metrics
from dualwrite.aws.cognito import CognitoNames
from dualwrite.errors import ConfigError
from dualwrite.metrics import BACKFILL_ITEMS
from dualwrite.runtime import LambdaEvent, LambdaResponse, Runtime, shared

SERVICE = "dualwrite-backfill"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)


def _spec(rt: Runtime, route: str) -> RouteSpec:
    """The route's checks, once per container and route."""

    def check() -> RouteSpec:
        rt.part("backfill-control-table", lambda: check_control_table(rt.clients, rt.migration))
        return check_route(rt.clients, rt.migration, route)

    return rt.part(f"backfill-route:{route}", check)


def _names(rt: Runtime) -> CognitoNames | None:
    return rt.part("cognito-names", lambda: cognito_names(rt.clients, rt.migration))


def _int(event: dict[str, Any], key: str, *, required: bool = True) -> int | None:
    value = event.get(key)
    if value is None:
        if required:
            raise ConfigError(f"event has no {key!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ConfigError(f"event {key!r} must be a non-negative integer, got {value!r}")
    return int(value)


def _route(event: dict[str, Any]) -> str:
    route = event.get("route")
    if not isinstance(route, str) or not route:
        raise ConfigError("event has no 'route'")
    return route


def _warn(route: str, message: str) -> None:
    logger.warning(message, extra={"route": route})


#: a Step Functions state holds at most 256 KiB: the plan (every segment of the execution)
#: must fit, with room for the rest of the state
MAX_PLAN_BYTES = 200 * 1024


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def plan_handler(
    event: LambdaEvent, context: Any, runtime: Runtime | None = None
) -> LambdaResponse:
    """{"route": R} plans that route; {} every route (DESIGN.md section 9), their segments
    in one list (each names its route) and each route's total for its completion."""
    rt = runtime or shared()
    one = "route" in event
    names = [_route(event)] if one else [r.name for r in rt.migration.routes]
    total = _int(event, "total_segments", required=False)
    if total is not None and total < 1:
        raise ConfigError("total_segments must be at least 1")
    segments: list[dict[str, Any]] = []
    routes: list[dict[str, Any]] = []
    for route in names:
        plan = plan_route(
            rt.store,
            _spec(rt, route),
            segments=total,
            restart=bool(event.get("restart", False)),
            warn=partial(_warn, route),
        )
        logger.info(
            "backfill planned",
            extra={"route": route, "total_segments": plan.total, "todo": len(plan.todo)},
        )
        routes.append({"route": route, "total_segments": plan.total})
        segments.extend(
            {"route": route, "segment": i, "total_segments": plan.total} for i in range(plan.total)
        )
    out: LambdaResponse = {
        "route": names[0] if one else None,
        "total_segments": routes[0]["total_segments"] if one else None,
        "segments": segments,
        "routes": routes,
    }
    if len(json.dumps(out)) > MAX_PLAN_BYTES:
        raise ConfigError(
            f"{len(segments)} segments do not fit one execution's state (256 KiB): ask for "
            "fewer (total_segments), or run one route per execution"
        )
    return out


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(
    event: LambdaEvent, context: Any, runtime: Runtime | None = None
) -> LambdaResponse:
    rt = runtime or shared()
    route = _route(event)
    segment = _int(event, "segment")
    total = _int(event, "total_segments")
    assert segment is not None and total is not None
    if not 0 <= segment < total:
        raise ConfigError(f"segment {segment} is not within 0..{total - 1}")
    spec = _spec(rt, route)
    job = RouteJob(
        spec,
        rt.clients,
        rt.store,
        conditional=rt.store.is_backfilled(route),
        names=_names(rt),
    )
    job.load_quarantined()

    def has_time() -> bool:
        return int(context.get_remaining_time_in_millis()) > rt.backfill_margin_ms

    outcome = copy_segment(job, segment, total, has_time=has_time)
    metrics.emit(rt.migration.metrics_namespace, route, {BACKFILL_ITEMS: outcome.items_written})
    logger.info(
        "segment done" if outcome.done else "segment paused before the time limit",
        extra={
            "route": route,
            "segment": segment,
            "items_read": outcome.items_read,
            "items_written": outcome.items_written,
            "quarantined": outcome.quarantined,
        },
    )
    return outcome.to_json()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def complete_handler(
    event: LambdaEvent, context: Any, runtime: Runtime | None = None
) -> LambdaResponse:
    rt = runtime or shared()
    route = _route(event)
    total = _int(event, "total_segments")
    assert total is not None
    result = complete_route(
        rt.store,
        _spec(rt, route),
        total,
        lambda_client=rt.clients.lambda_,
        warn=lambda message: logger.warning(message, extra={"route": route}),
        replicator=rt.replicator_function,
    )
    enabled = [m.uuid for m in result.event_source_mappings if m.enabled]
    logger.info("route backfilled", extra={"route": route, "enabled_mappings": enabled})
    return {
        "route": route,
        "phase": result.phase.value,
        "enabled_mappings": enabled,
        "needs_repair": result.needs_repair,
        "event_source_mappings": [m.to_json() for m in result.event_source_mappings],
    }
