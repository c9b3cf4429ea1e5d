"""`reconciler.handler.lambda_handler`: the parity check on a schedule.

Each invocation runs one time-budgeted slice of the check (reconciler.scheduled) and, when a
run completes, stores each route's result and emits ParityMissing / ParityExtra /
ParityMismatched / ParityPercent per route as EMF (dualwrite.metrics, dimension Route).
The container's configuration (dualwrite.runtime: the migration file at DUALWRITE_CONFIG) is
read at the first invocation, never at import; tests pass `runtime=`.
Event (all optional): {"routes": [...], "segments": N, "settle_s": S, "workers": W}.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Tracer

from dualwrite import metrics
from dualwrite.jsondoc import JsonObject
from dualwrite.runtime import LambdaEvent, LambdaResponse, Runtime, shared

SERVICE = "dualwrite-reconciler"
#: time kept back from the invocation's budget to re-read candidates and save the checkpoint
MIN_RESERVE_S = 10.0
RESERVE_FRACTION = 0.2

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)


def _remaining_s(context: Any) -> float:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return float(getter()) / 1000.0 if callable(getter) else 900.0


def emit_parity(namespace: str, results: list[JsonObject]) -> None:
    """One EMF blob per route (each carries its own Route dimension)."""
    from reconciler.job import metric_values

    for result in results:
        metrics.emit(namespace, str(result["route"]), metric_values(result))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(
    event: LambdaEvent | None, context: Any, runtime: Runtime | None = None
) -> LambdaResponse:
    from reconciler.scheduled import run_slice

    event = event or {}
    rt = runtime or shared()
    migration, clients, store = rt.migration, rt.clients, rt.store
    settle_s = float(event.get("settle_s", 1.0))
    budget = _remaining_s(context)
    reserve = max(MIN_RESERVE_S + 3 * settle_s, RESERVE_FRACTION * budget)
    deadline = time.monotonic() + max(0.0, budget - reserve)
    summary = run_slice(  # JSON at the Lambda edge
        migration,
        clients,
        store,
        should_stop=lambda: time.monotonic() >= deadline,
        routes=event.get("routes"),
        segments=event.get("segments"),
        settle_s=settle_s,
        workers=event.get("workers"),
    ).to_json()
    if summary["complete"]:
        emit_parity(migration.metrics_namespace, summary["routes"])
        for r in summary["routes"]:
            logger.info(
                "reconcile complete",
                extra={
                    "route": r["route"],
                    "parity": r["parity"],
                    "parity_percent": r["parity_percent"],
                    "missing": r["missing"],
                    "extra": r["extra"],
                    "mismatched": r["mismatched"],
                    "quarantined": r["quarantined"],
                },
            )
    else:
        logger.info(
            "reconcile slice",
            extra={"units": summary["units"], "units_done": summary["units_done"]},
        )
    return summary
