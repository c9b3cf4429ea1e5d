"""`reconciler.handler.lambda_handler`: the parity check on a schedule.

Each invocation runs one time-budgeted slice of the check (reconciler.scheduled) and, when a
run completes, stores each route's result and emits ParityMissing / ParityExtra /
ParityMismatched / ParityPercent per route as EMF (Powertools Metrics, dimension Route).
The migration file is read from DUALWRITE_CONFIG at invocation time, never at import.
Event (all optional): {"routes": [...], "segments": N, "settle_s": S, "workers": W}.
"""

from __future__ import annotations

import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from dualwrite.aws.clients import AwsSettings, Clients
from dualwrite.config import load_migration
from dualwrite.control import ControlStore
from dualwrite.errors import ConfigError

SERVICE = "dualwrite-reconciler"
#: time kept back from the invocation's budget to re-read candidates and save the checkpoint
MIN_RESERVE_S = 10.0
RESERVE_FRACTION = 0.2

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics()  # Route is the only dimension the alarms and dashboard use

UNITS: dict[str, MetricUnit] = {"ParityPercent": MetricUnit.Percent}


def _remaining_s(context: Any) -> float:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return float(getter()) / 1000.0 if callable(getter) else 900.0


def emit_parity(namespace: str, results: list[dict[str, Any]]) -> None:
    """One EMF blob per route (each carries its own Route dimension)."""
    from reconciler.job import metric_values

    metrics.namespace = namespace
    for result in results:
        metrics.add_dimension("Route", str(result["route"]))
        for name, value in metric_values(result).items():
            metrics.add_metric(name=name, unit=UNITS.get(name, MetricUnit.Count), value=value)
        metrics.flush_metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    from reconciler.scheduled import run_slice

    event = event or {}
    path = os.environ.get("DUALWRITE_CONFIG")
    if not path:
        raise ConfigError("DUALWRITE_CONFIG must name the migration file")
    migration = load_migration(path)
    clients = Clients(AwsSettings())
    store = ControlStore(clients.dynamodb, migration.control_table)
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
