"""The parity job: `run_reconcile`, the in-process API behind `dualwrite reconcile`.

    run_reconcile(migration, clients, store, *, routes=None, repair=False, segments=None,
                  on_progress=None, publish_metrics=True, ...) -> ReconcileResult

checks every route (or the names in `routes`) in both directions: first one scan of each
table folded into per-bucket digests, then the exact item-by-item check (consistent
BatchGetItem both ways) only in the buckets whose digests differ (`exact=True` checks every
bucket item by item), re-reading both sides before judging;
optionally repairs with conditional writes (while a route is reverse, DESIGN.md section 8:
the source from the target, reverse_repair), stores each route's result with
ControlStore.save_reconcile (a ReconcileRecord: the cutover gate reads parity and at),
publishes ParityMissing/ParityExtra/ParityMismatched/ParityPercent per route (dimension Route)
with PutMetricData, and returns a ReconcileResult whose `to_json()` `reconcile --json` prints:

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
The run itself (phases, units, merge) is reconciler.run's, as in the scheduled check.
Raises ConfigError (exit 2) for a missing table or a mapping that does not fit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dualwrite import metrics
from dualwrite.aws import tables
from dualwrite.aws.clients import Clients
from dualwrite.aws.dynamo import RequestCounter
from dualwrite.config import Migration
from dualwrite.control import ControlStore, ReconcileRecord
from dualwrite.cutover.facts import read_through
from dualwrite.errors import AwsError, ConfigError, EndpointError
from dualwrite.jsondoc import JsonObject
from dualwrite.reverse.direction import Direction, Flow
from dualwrite.wire import key_id
from reconciler.advice import advise
from reconciler.compare import Difference, Tally, count_kinds, route_result
from reconciler.digest import DEFAULT_BUCKETS
from reconciler.passes import DEFAULT_PAGE_SIZE, Checker
from reconciler.quarantine import resolve_moot
from reconciler.reads import Sides
from reconciler.repair import RepairReport
from reconciler.repair import repair as repair_route
from reconciler.reverse_repair import reverse_repair
from reconciler.run import ReconcileRun
from reconciler.spec import RouteSpec, resolve_routes

DEFAULT_SEGMENTS = 4
DEFAULT_SETTLE_S = 1.0

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ReconcileResult:
    """What `reconcile` found (and repaired), per route; `to_json()` at the CLI edge."""

    routes: tuple[ReconcileRecord, ...]
    segments: int
    repair: bool
    duration_s: float
    requests: Mapping[str, int]

    @property
    def parity(self) -> bool:
        return all(r.parity for r in self.routes)

    def route(self, name: str) -> ReconcileRecord:
        return next(r for r in self.routes if r.route == name)

    def to_json(self) -> JsonObject:
        return {
            "parity": self.parity,
            "routes": [r.to_result_json() for r in self.routes],
            "segments": self.segments,
            "repair": self.repair,
            "duration_s": self.duration_s,
            "requests": dict(self.requests),
        }


def metric_values(result: ReconcileRecord | Mapping[str, Any]) -> dict[str, float]:
    """The parity metrics of a route result: the state the run leaves behind (a record, or
    its JSON as a Lambda returns it)."""
    record = (
        result
        if isinstance(result, ReconcileRecord)
        else ReconcileRecord.from_json(str(result.get("route", "")), result)
    )
    left = record.remaining
    return {
        metrics.PARITY_MISSING: float(left.missing),
        metrics.PARITY_EXTRA: float(left.extra),
        metrics.PARITY_MISMATCHED: float(left.mismatched),
        metrics.PARITY_PERCENT: float(record.parity_percent),
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
) -> ReconcileResult:
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
    total = [approx_items(specs)]
    progress = on_progress or (lambda _n, _t: None)
    progress(0, total[0])
    scanned = [0]

    def advance(n: int) -> None:
        scanned[0] += n
        progress(n, max(total[0], scanned[0]))

    def exact_phase(again: Sequence[RouteSpec]) -> None:
        total[0] += approx_items(again)

    checker = Checker(
        clients,
        {s.name: s for s in specs},
        page_size=page_size,
        settle_s=settle_s,
        on_items=advance,
        clock=clock,
        sleep=sleep,
        buckets=buckets,
    )
    run = ReconcileRun.start(specs, segs, buckets=buckets, exact=exact, now=store.now())
    run.advance(checker, specs, workers=workers, on_phase=exact_phase)

    results: list[ReconcileRecord] = []
    for spec in specs:
        if repair:
            result = _repair_route(
                run,
                spec,
                migration,
                clients,
                store,
                run.requests,
                resolve_quarantine=resolve_quarantine,
            )
        else:
            result = _advised(
                run.check_result(spec), spec, run.differences(spec.name), store, RepairReport()
            )
        # as of when its reads began: a scheduled run that began earlier and ends later must
        # not replace it (ControlStore.save_reconcile)
        result = replace(result, started_at=run.started_at)
        store.save_reconcile(result)
        if repair and result.parity:
            _repair_pass_done(store, spec.name, run.started_at)
        if publish_metrics:
            try:
                metrics.publish(
                    clients.cloudwatch,
                    migration.metrics_namespace,
                    spec.name,
                    metric_values(result),
                )
            except (AwsError, EndpointError) as exc:
                result = replace(result, metrics_error=str(exc))
        results.append(result)
    return ReconcileResult(
        routes=tuple(results),
        segments=segs,
        repair=repair,
        duration_s=round(clock() - started, 3),
        requests=dict(sorted(run.requests.counts.items())),
    )


def _advised(
    result: ReconcileRecord,
    spec: RouteSpec,
    remaining: Sequence[Difference],
    store: ControlStore,
    report: RepairReport,
    direction: Direction | None = None,
) -> ReconcileRecord:
    """The result with what fixes its remaining differences (a repair only advised when
    one can help); `direction`: the route's, when the caller has read it already."""
    if result.parity:
        return result
    state = direction if direction is not None else store.direction(spec.name)
    reverse = state.direction is Flow.REVERSE
    advice = advise(
        spec, remaining, store, reverse=reverse, refused=report.refused, held=report.held
    )
    return replace(result, advice=advice.lines, repair_helps=advice.repair_helps)


def _repair_pass_done(store: ControlStore, route: str, started_at: float) -> None:
    """The repair pass a backfill that outlived the stream's retention asks for (needs_repair,
    which the cutover gate refuses): done once a repair begun after the backfill completed
    leaves the route at parity."""
    phase = store.phase(route)
    completed = phase.backfill_completed_at
    if (
        phase.needs_repair
        and phase.backfilled
        and completed is not None
        and started_at >= completed
    ):
        store.save_phase(
            route,
            replace(
                phase,
                needs_repair=False,
                repair_reason=f"repaired (reconcile --repair at parity): {phase.repair_reason}",
            ),
        )


def _repair_route(
    run: ReconcileRun,
    spec: RouteSpec,
    migration: Migration,
    clients: Clients,
    store: ControlStore,
    requests: RequestCounter,
    *,
    resolve_quarantine: bool,
) -> ReconcileRecord:
    found_diffs = run.differences(spec.name)
    sides = Sides(clients, spec, requests)
    direction = store.direction(spec.name)
    if not direction.old_drained:
        # both sides are still written (in-flight invocations of the old direction): no
        # truth yet. A repair overwrote a source write made just before cutover, not yet
        # replicated forward, with the target's stale copy
        report = RepairReport(remaining=list(found_diffs))
        if found_diffs:
            report.notes.append(
                f"route {spec.name}: not repaired, the {direction.applying.value} direction "
                "still drains changes made before its switch: run dualwrite replicate "
                "--until-caught-up and repair again"
            )
    elif direction.direction is Flow.REVERSE:  # the target is the truth
        info = tables.info(clients.dynamodb, spec.source)

        def unread(since: float) -> str | None:
            return read_through(migration, clients, store, spec.name, info, since, store.now())

        report = reverse_repair(sides, found_diffs, store, unread)
    else:
        report = repair_route(sides, found_diffs)
    repaired_ids = {key_id(d.target_key) for d in report.repaired}
    samples = [d.sample(key_id(d.target_key) in repaired_ids) for d in found_diffs]
    result = route_result(
        spec.name,
        spec.source,
        spec.target,
        run.tallies.get(spec.name) or Tally(),
        found=count_kinds(found_diffs),
        remaining=count_kinds(report.remaining),
        repaired=len(report.repaired),
        settled=len(report.settled),
        samples=samples,
        mode="repair",
        notes=tuple(sorted(set(report.notes))),
        segments=run.segments,
        method="exact" if run.exact else "digest",
        exact_buckets=run.exact_buckets(spec.name),
    )
    result = _advised(result, spec, report.remaining, store, report, direction)
    resolved: list[str] = []
    if resolve_quarantine and result.parity:
        resolved = resolve_moot(store, sides)
    return replace(result, quarantine_resolved=len(resolved))
