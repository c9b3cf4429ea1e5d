"""The parity job: `run_reconcile`, the in-process API behind `dualwrite reconcile`.

    run_reconcile(migration, clients, store, *, routes=None, repair=False, segments=None,
                  on_progress=None, publish_metrics=True, ...) -> dict

checks every route (or the names in `routes`) in both directions: first one scan of each
table folded into per-bucket digests, then the exact item-by-item check (consistent
BatchGetItem both ways) only in the buckets whose digests differ (`exact=True` checks every
bucket item by item), re-reading both sides before judging;
optionally repairs with conditional writes, stores each route's result with
ControlStore.save_reconcile (the cutover gate reads "parity" and "at"), publishes
ParityMissing/ParityExtra/ParityMismatched/ParityPercent per route (dimension Route) with
PutMetricData, and returns

    {"parity": bool, "routes": [{"route", "source", "target", "source_items",
      "expected_target_items", "target_items", "missing", "extra", "mismatched",
      "quarantined", "repaired", "settled", "remaining": {missing, extra, mismatched},
      "parity", "parity_percent", "found_parity_percent", "differences": [...],
      "quarantine_resolved", "method", "exact_buckets"}], "segments", "repair",
     "duration_s", "requests"}

The counts (missing/extra/mismatched) are what was found; `repaired` what this run fixed;
`settled` what a concurrent writer fixed first (the repair's condition failed and a re-read
found the item right). `parity`, `parity_percent`, `remaining` and the published metrics
describe the state the run leaves behind (without --repair: what was found).
`on_progress(advance, approx_total)` is called from worker threads as items are scanned.
Raises ConfigError (exit 2) for a missing table or a mapping that does not fit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from dualwrite import metrics
from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.aws.dynamo import RequestCounter
from dualwrite.config import Migration
from dualwrite.control import ControlStore
from dualwrite.errors import AwsError, ConfigError, EndpointError
from dualwrite.wire import key_id
from reconciler.compare import (
    EXTRA,
    MISMATCHED,
    MISSING,
    Difference,
    Tally,
    check_result,
    count_kinds,
    route_result,
)
from reconciler.digest import DEFAULT_BUCKETS
from reconciler.passes import DEFAULT_PAGE_SIZE, Checker, UnitState, plan_units, run_units
from reconciler.quarantine import resolve_moot
from reconciler.reads import Sides
from reconciler.repair import repair as repair_route
from reconciler.spec import RouteSpec, resolve_routes

DEFAULT_SEGMENTS = 4
DEFAULT_SETTLE_S = 1.0

Progress = Callable[[int, int], None]


def metric_values(result: dict[str, Any]) -> dict[str, float]:
    """The parity metrics of a route result: the state the run leaves behind."""
    left = result["remaining"]
    return {
        metrics.PARITY_MISSING: float(left[MISSING]),
        metrics.PARITY_EXTRA: float(left[EXTRA]),
        metrics.PARITY_MISMATCHED: float(left[MISMATCHED]),
        metrics.PARITY_PERCENT: float(result["parity_percent"]),
    }


def approx_items(specs: Sequence[RouteSpec]) -> int:
    """Items the check will scan, from DescribeTable's approximate counts."""
    targets = {s.target: s.approx_target_items for s in specs}
    return sum(s.approx_source_items for s in specs) + sum(targets.values())


def run_reconcile(
    migration: Migration,
    clients: Clients,
    store: ControlStore,
    *,
    routes: Sequence[str] | str | None = None,
    repair: bool = False,
    segments: int | None = None,
    on_progress: Progress | None = None,
    publish_metrics: bool = True,
    settle_s: float = DEFAULT_SETTLE_S,
    page_size: int = DEFAULT_PAGE_SIZE,
    workers: int | None = None,
    resolve_quarantine: bool = True,
    exact: bool = False,
    buckets: int = DEFAULT_BUCKETS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Check (and optionally repair) parity; see the module docstring for the result."""
    started = clock()
    clients = clients.shared()  # many short-lived worker threads, one client each service
    names = [routes] if isinstance(routes, str) else (list(routes) if routes else None)
    specs = resolve_routes(migration, clients, names)
    if tables.describe(clients.dynamodb, migration.control_table) is None:
        raise ConfigError(
            f"control table {migration.control_table} does not exist: run `dualwrite prepare`"
        )
    segs = segments or DEFAULT_SEGMENTS
    units = plan_units(specs, segs)
    total = approx_items(specs)
    progress = on_progress or (lambda _n, _t: None)
    progress(0, total)
    routes_by_name = {s.name: s for s in specs}
    scanned = [0]

    def advance(n: int) -> None:
        scanned[0] += n
        progress(n, max(total, scanned[0]))

    def checker(**mode: Any) -> Checker:
        return Checker(
            clients,
            routes_by_name,
            page_size=page_size,
            settle_s=settle_s,
            on_items=advance,
            clock=clock,
            sleep=sleep,
            buckets=buckets,
            **mode,
        )

    states = {u.uid: UnitState() for u in units}
    exact_buckets: dict[str, int] = {}
    if exact:
        outcome = run_units(checker(), units, states, workers=workers)
        requests = outcome.requests
    else:
        # phase 1: one scan of each table folded into digests; phase 2: the exact check,
        # only where a bucket's digests differ
        first = run_units(checker(digest=True), units, states, workers=workers)
        requests = first.requests
        only = {name: d.mismatched() for name, d in first.digests.items() if d.mismatched()}
        exact_buckets = {name: len(b) for name, b in only.items()}
        outcome = first
        if only:
            again = [s for s in specs if s.name in only]
            total += approx_items(again)
            again_units = plan_units(again, segs)
            second = run_units(
                checker(only=only),
                again_units,
                {u.uid: UnitState() for u in again_units},
                workers=workers,
            )
            outcome = second
            for op, n in second.requests.counts.items():
                requests.add(op, n)

    results: list[dict[str, Any]] = []
    for spec in specs:
        tally = Tally()
        for state in states.values():
            if spec.name in state.tallies:
                tally.add(state.tallies[spec.name])
        # the same key may be judged by both passes when a source changed in between
        found_diffs = list(
            {key_id(d.target_key): d for d in outcome.differences if d.route == spec.name}.values()
        )
        result = _finish_route(
            spec,
            tally,
            found_diffs,
            clients=clients,
            store=store,
            repair=repair,
            requests=requests,
            resolve_quarantine=resolve_quarantine,
        )
        result["segments"] = segs
        result["method"] = "exact" if exact else "digest"
        result["exact_buckets"] = None if exact else exact_buckets.get(spec.name, 0)
        store.save_reconcile(spec.name, result)
        if publish_metrics:
            try:
                metrics.publish(
                    clients.cloudwatch,
                    migration.metrics_namespace,
                    spec.name,
                    metric_values(result),
                )
            except (AwsError, EndpointError) as exc:
                result["metrics_error"] = str(exc)
        results.append(result)
    return {
        "parity": all(r["parity"] for r in results),
        "routes": results,
        "segments": segs,
        "repair": repair,
        "duration_s": round(clock() - started, 3),
        "requests": dict(sorted(requests.counts.items())),
    }


def _finish_route(
    spec: RouteSpec,
    tally: Tally,
    found_diffs: list[Difference],
    *,
    clients: Clients,
    store: ControlStore,
    repair: bool,
    requests: RequestCounter,
    resolve_quarantine: bool,
) -> dict[str, Any]:
    found = count_kinds(found_diffs)
    if not repair:
        result = check_result(spec, tally, found, [d.sample() for d in found_diffs])
        result["mode"] = "check"
        result["quarantine_resolved"] = 0
        return result
    sides = Sides(clients, spec, requests)
    report = repair_route(sides, found_diffs)
    repaired_ids = {key_id(d.target_key) for d in report.repaired}
    samples = [d.sample(key_id(d.target_key) in repaired_ids) for d in found_diffs]
    result = route_result(
        spec.name,
        spec.source,
        spec.target,
        tally,
        found=found,
        remaining=count_kinds(report.remaining),
        repaired=len(report.repaired),
        settled=len(report.settled),
        samples=samples,
    )
    result["mode"] = "repair"
    if report.notes:
        result["notes"] = sorted(set(report.notes))
    resolved: list[str] = []
    if resolve_quarantine and result["parity"]:
        resolved = resolve_moot(store, sides)
    result["quarantine_resolved"] = len(resolved)
    return result
